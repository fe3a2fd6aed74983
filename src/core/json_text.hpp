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
