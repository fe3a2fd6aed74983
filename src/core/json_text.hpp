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
