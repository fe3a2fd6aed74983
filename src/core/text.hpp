// Small string helpers shared by the library's parsers. Private to src/.
#pragma once

#include <cctype>
#include <string>

namespace wsi::detail {

// ASCII lower case (file extensions, CSV headers, names compared without case); bytes >= 0x80
// (UTF-8) are left as they are, whatever the locale.
inline std::string ascii_lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

}  // namespace wsi::detail
