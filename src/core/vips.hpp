// Private: libvips start-up and error capture shared by the stages that use libvips.
#pragma once

#include <string>

namespace wsi::detail {

// Starts libvips once per process (thread-safe). Throws wsi::Error if it cannot start.
void ensure_vips_started();

// Takes and clears libvips' (thread-local) error buffer, trimmed to one line.
std::string take_vips_error();

}  // namespace wsi::detail
