// wsi/image_io.hpp — small image outputs for people to look at (galleries, overlays).
#pragma once

#include <filesystem>

#include "wsi/region.hpp"

namespace wsi {

// Writes `image` as PNG under a temporary name, renamed when complete. Throws WriteError.
void write_png(const RgbImage& image, const std::filesystem::path& out);

}  // namespace wsi
