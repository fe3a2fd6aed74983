// Private to wsi::view: Deep Zoom tiles with libvips (dzsave), from a slide read through
// wsi::Slide region by region or from a results raster (NAME.prob.tif, ...).
// Thread-safety: each call owns its images; the Slide is read from libvips' worker threads
// (const Slide reads are thread-safe, see slide.hpp).
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

namespace wsi {
class Slide;
}

namespace wsi::detail {

struct DeepZoom {
  int64_t width = 0, height = 0;  // pixels of the full-resolution level
  int tile_size = 254, overlap = 1;
  std::string format;             // "jpg" or "png": the tiles' extension (DZI's Format)
  int64_t tiles = 0;              // tile files written
};

// Pixels done of total, from libvips' progress; may be called from a libvips thread (serialised).
using PixelProgress = std::function<void(int64_t done, int64_t total)>;

// The header of a raster written by the heatmap job: size and the JSON description's
// "level0_pixels_per_pixel" (0 when absent). Throws ConfigError naming the file.
struct RasterInfo {
  int64_t width = 0, height = 0;
  double level0_per_pixel = 0;
};
RasterInfo read_raster_info(const std::filesystem::path& tif);

// Tiles of `slide`'s level `level` resized by `scale` (<= 1) into dir/NAME.dzi and
// dir/NAME_files/ as JPEG of `quality`. Throws SlideError/RegionReadError (reads), WriteError
// (writes, naming `dir`), Error when cancelled.
DeepZoom slide_deep_zoom(const Slide& slide, int level, double scale, const std::filesystem::path& dir,
                         const std::string& name, int quality, const PixelProgress& progress,
                         const std::atomic<bool>* cancel);

// Tiles of page 0 of `tif` (a results raster) as PNG (lossless: the grey values are data) or,
// with `jpeg`, JPEG. `shrink` is how lower levels are made: "mean" or "max" (the probability
// layer: a small hot spot stays visible from afar). Throws ConfigError (unreadable raster),
// WriteError, Error when cancelled.
DeepZoom raster_deep_zoom(const std::filesystem::path& tif, const std::filesystem::path& dir, const std::string& name,
                          bool jpeg, const std::string& shrink, const PixelProgress& progress,
                          const std::atomic<bool>* cancel);

}  // namespace wsi::detail
