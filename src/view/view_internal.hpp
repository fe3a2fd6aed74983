// Private to wsi::view: helpers shared by the viewer (view.cpp) and the batch index (batch_view.cpp).
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace wsi::detail {

// The whole file; ConfigError naming it when it cannot be read.
std::string read_file(const std::filesystem::path& p);
// Parsed JSON; ConfigError naming the file and `what` it should be when it is not.
nlohmann::json read_json_file(const std::filesystem::path& p, const std::string& what);
// A relative path as a URL path: every byte but letters, digits and -_.~/ percent-encoded.
std::string url_path(const std::filesystem::path& relative);
// `target` relative to the folder `base_dir` (both made absolute first).
std::filesystem::path relative_to(const std::filesystem::path& target, const std::filesystem::path& base_dir);
// Writes `bytes` to `p`; WriteError naming it on failure.
void write_bytes(const std::filesystem::path& p, std::string_view bytes);

}  // namespace wsi::detail
