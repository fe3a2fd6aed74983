// wsi/region.hpp — small value types for image areas and pixel buffers.
//
// Frames and units (the same everywhere in wsi-heatmap):
//   * Positions (x, y) are LEVEL-0 pixels, int64, origin at the top-left of the level-0 image.
//   * Sizes (w, h) of a Region are pixels AT THE REGION'S LEVEL (OpenSlide's convention).
//     A region at level k with downsample d covers about w*d by h*d level-0 pixels.
// Mixing the two is the classic bug of slide tools; keep them apart by always going through
// level_extent().
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace wsi {

struct Region {
  int level = 0;      // pyramid level the pixels are read from
  int64_t x = 0;      // left, level-0 pixels
  int64_t y = 0;      // top, level-0 pixels
  int64_t w = 0;      // width, level-`level` pixels
  int64_t h = 0;      // height, level-`level` pixels

  friend bool operator==(const Region&, const Region&) = default;
};

// "level 2, x=1024 y=2048 (level-0 px), 96x96 (level-2 px)" — for error messages and logs.
std::string to_string(const Region& r);

// Interleaved 8-bit RGB, row-major, no padding: pixel (x, y) channel c is
// pixels[(y * width + x) * 3 + c].
struct RgbImage {
  int64_t width = 0;
  int64_t height = 0;
  std::vector<uint8_t> pixels;

  RgbImage() = default;
  RgbImage(int64_t w, int64_t h) : width(w), height(h), pixels(static_cast<size_t>(w * h * 3)) {}
  const uint8_t* at(int64_t x, int64_t y) const { return &pixels[static_cast<size_t>((y * width + x) * 3)]; }
  uint8_t* at(int64_t x, int64_t y) { return &pixels[static_cast<size_t>((y * width + x) * 3)]; }
};

// 8-bit single-channel raster, row-major, no padding. Masks use 0 = no, 255 = yes; class maps
// use small codes documented where they are produced.
struct GrayImage {
  int64_t width = 0;
  int64_t height = 0;
  std::vector<uint8_t> pixels;

  GrayImage() = default;
  GrayImage(int64_t w, int64_t h, uint8_t fill = 0)
      : width(w), height(h), pixels(static_cast<size_t>(w * h), fill) {}
  uint8_t at(int64_t x, int64_t y) const { return pixels[static_cast<size_t>(y * width + x)]; }
  uint8_t& at(int64_t x, int64_t y) { return pixels[static_cast<size_t>(y * width + x)]; }
};

}  // namespace wsi
