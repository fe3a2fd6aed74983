// Small string helpers shared by the library's parsers. Private to src/.
#pragma once

#include <cctype>
#include <string>
#include <string_view>
#include <vector>

namespace wsi::detail {

// Appends `clause` to a "; "-separated message (notes, captured library errors).
inline void append_clause(std::string& message, std::string_view clause) {
  if (!message.empty()) message += "; ";
  message += clause;
}

// ASCII lower case (file extensions, CSV headers, names compared without case); bytes >= 0x80
// (UTF-8) are left as they are, whatever the locale.
inline std::string ascii_lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

// Splits one CSV line with RFC 4180 quoting (a quoted field may hold commas and doubled quotes;
// it must end on the same line). A trailing '\r' (CRLF files) is dropped.
inline std::vector<std::string> parse_csv_row(std::string_view line) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        fields.back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        fields.back() += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.emplace_back();
    } else if (c != '\r') {
      fields.back() += c;
    }
  }
  return fields;
}

}  // namespace wsi::detail
