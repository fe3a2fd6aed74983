// JSON text for files and terminals. Names inside (slide paths, annotation groups, shape names)
// come from the user's files and may be any bytes; nlohmann's dump() throws on bytes that are not
// UTF-8, which would turn a harmless odd name into a failed run. Here they become U+FFFD.
// Private to the library and the CLI.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace wsi::detail {

// `indent` as for nlohmann::json::dump (-1: one line).
inline std::string json_text(const nlohmann::json& j, int indent = -1) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace wsi::detail

namespace wsi::detail {

// nlohmann's message without its "[json.exception.parse_error.101] " tag (an internal code the
// user cannot act on): "parse error at line 1, column 34: syntax error ...".
inline std::string json_error_text(const nlohmann::json::exception& e) {
  std::string m = e.what();
  if (m.rfind("[json.exception.", 0) == 0)
    if (const size_t end = m.find("] "); end != std::string::npos) m.erase(0, end + 2);
  return m;
}

}  // namespace wsi::detail
