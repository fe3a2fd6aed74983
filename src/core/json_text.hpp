// JSON text for files and terminals. Names inside (slide paths, annotation groups, shape names)
// come from the user's files and may be any bytes; nlohmann's dump() throws on bytes that are not
// UTF-8, which would turn a harmless odd name into a failed run. Here they become U+FFFD.
// Private to the library and the CLI.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace wsi::detail {

// `indent` as for nlohmann::json::dump (-1: one line).
inline std::string json_text(const nlohmann::json& j, int indent = -1) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

// nlohmann parses any depth without recursion, but copying, dumping and comparing a value recurse,
// so a file of a few hundred thousand '[' overflowed the stack. Our formats nest a handful of
// levels; parsers refuse text deeper than this before parsing it.
inline constexpr size_t kMaxJsonDepth = 512;

// The deepest nesting of arrays and objects in JSON text, strings skipped. Exact for valid JSON;
// for invalid text it only has to be a fair bound, the parser reports the actual error.
inline size_t json_depth(std::string_view text) {
  size_t depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > deepest) deepest = depth;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
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
