// wsi/overlay.hpp — the heatmap's overlay: the slide at the overlay's resolution with the
// probability colour map blended in (NAME.overlay.tif), and its thumbnail (NAME.thumb.png).
//
// render_overlay() reads the slide in strips of overlay rows, box-averages each strip's level
// pixels to overlay pixels, takes each overlay pixel's probability from the probability raster
// cell its centre falls in, and blends (blend_overlay, heatmap_io.hpp). Strips go to a callback
// top to bottom (a PyramidTiffWriter's write_rows, say), so memory is bounded by a strip whatever
// the slide's size; the thumbnail is accumulated from the same strips.
//
// Frames and units: an overlay pixel (u, v) covers level-0 pixels [u d, (u+1) d) x [v d, (v+1) d)
// with d = geometry.overlay.pixel; a probability raster pixel likewise with its own d (both
// RasterGeometry, stitch.hpp). Images are 8-bit RGB, row-major, interleaved (region.hpp).
//
// Thread-safety: reentrant; `slide` is read from the calling thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "wsi/heatmap_io.hpp"
#include "wsi/patch_source.hpp"
#include "wsi/region.hpp"
#include "wsi/stitch.hpp"

namespace wsi {

struct OverlayGeometry {
  RasterGeometry overlay;      // the overlay's raster
  RasterGeometry probability;  // the raster the colours come from (same level-0 extent)
  int level = 0;               // the slide level the overlay is read from
  double downsample = 1;       // that level's level-0 pixels per level pixel (> 0)
};

struct OverlayStyle {
  double alpha = 0.5;                      // colour map weight, 0..1 (blend_overlay)
  double min_value = kOverlayMinValue;     // values below it (and NaN) leave the slide as it is
  int64_t thumbnail_longest_side = 1024;   // the thumbnail's longer side at most (>= 1)
};

// Box-averages `src` (w x h RGB) into `dst` (dw x dh RGB): each output pixel is the rounded mean
// of source pixels [u w / dw, max(that + 1, (u+1) w / dw)) on each axis. dw <= w and dh <= h give
// true box means; larger outputs repeat source pixels.
void box_resample(const uint8_t* src, int64_t w, int64_t h, uint8_t* dst, int64_t dw, int64_t dh);

// Renders the overlay of `probabilities` (geometry.probability's width * height values, NaN =
// none) over `slide`, calling write_rows(rgb, rows) for consecutive strips of overlay rows
// (overlay.width * rows * 3 bytes each, valid during the call), and returns the thumbnail: the
// overlay box-averaged (per thumbnail pixel, the rounded mean of the overlay pixels that map to
// it) to at most style.thumbnail_longest_side pixels on its longer side, keeping the aspect ratio
// (rounded down, at least 1). A strip whose pixels the slide cannot decode (RegionReadError)
// counts as white glass; the probabilities are blended over it all the same. Throws what
// write_rows throws; std::invalid_argument when the probabilities do not fit their geometry.
RgbImage render_overlay(const PatchSource& slide, const OverlayGeometry& geometry, const std::vector<float>& probabilities,
                        const OverlayStyle& style,
                        const std::function<void(const uint8_t* rgb, int64_t rows)>& write_rows);

}  // namespace wsi
