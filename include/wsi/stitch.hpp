// wsi/stitch.hpp — placing per-patch results on slide-aligned output rasters (pure, no I/O).
//
// Frames and units: everything is LEVEL-0 pixels of the slide. An output raster of a W0 x H0
// slide has an integer pixel size d (level-0 pixels) and W0 / d x H0 / d pixels (integer
// division), so that W0 / width == H0 / height == d: ASAP overlays a likelihood map only then,
// and scales it by exactly that quotient. Raster pixel (u, v) is the level-0 square
// [u * d, (u + 1) * d) x [v * d, (v + 1) * d) from the slide's origin, so the raster covers
// [0, width * d) x [0, height * d): the slide but a strip narrower than one raster pixel at its
// right and bottom edges. A viewer that scales the raster to the slide's physical size (its
// resolution tags, d times the slide's mpp) overlays it exactly too, whatever the grid's origin
// or stride.
//
//   * Probability raster (d about stride / 8, see plan.cpp): pixel (u, v) takes the probability
//     of the patch whose stride cell — the stride x stride square centred on the patch's centre —
//     contains the pixel's centre; NaN where no patch was computed. With stride == patch size the
//     cell is the patch itself; with overlap each patch owns the central part it shares least.
//     A d that does not divide the stride draws cells 8 or 9 pixels wide, their borders within
//     half a pixel of where they are; d <= stride keeps every cell at least one pixel wide.
//   * Saliency raster (d about patch size / cells_per_patch): every patch adds its Grad-CAM map,
//     area-resampled to the pixels it covers (coverage-weighted), and each pixel is the mean of
//     the patches that cover it (overlaps are averaged); NaN where no patch covers it.
//
// CamStitcher streams: patches must arrive in non-decreasing grid-row order; rows of the raster
// that no later patch can touch are handed to the sink at once, so memory holds only the rows
// spanned by one row of patches.
//
// Thread-safety: one thread at a time per object.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

namespace wsi {

struct RasterGeometry {
  int64_t width = 0, height = 0;  // raster pixels
  int64_t pixel = 1;              // d: level-0 pixels per raster pixel
};

// The raster of a level-0 slide of `w0` x `h0` with the largest d <= max_pixel (at least 1) for
// which w0 / (w0 / d) == d == h0 / (h0 / d) and, when the slide is large enough for it, both
// sides are at least `min_side` pixels; width = w0 / d, height = h0 / d. max_pixel within 1e-6
// (relative) below an integer counts as that integer. Throws ConfigError for max_pixel <= 0 or
// an empty slide.
RasterGeometry raster_for(int64_t w0, int64_t h0, double max_pixel, int64_t min_side = 1);

// Probability raster from patch results. `x`, `y` are the patches' level-0 top-left corners,
// `size_level0` their level-0 side, `stride_level0` the grid step. Cells are assigned by the
// centre rule above; when two patches claim a pixel (rounding at cell borders) the later wins.
std::vector<float> probability_raster(const RasterGeometry& g, const std::vector<int64_t>& x,
                                      const std::vector<int64_t>& y, const std::vector<float>& p, double size_level0,
                                      double stride_level0);

class CamStitcher {
 public:
  using RowSink = std::function<void(const float* row, int64_t v)>;  // one raster row, width floats
  // `cam_size`: side of each patch's saliency map (its pixel count per side).
  CamStitcher(const RasterGeometry& g, double size_level0, int cam_size, RowSink sink);
  // Adds one patch's map (cam_size² values, row-major). `grid_row` must not decrease.
  void add(int64_t x, int64_t y, int64_t grid_row, const float* cam);
  // Flushes every remaining row (NaN where nothing was added). Call once at the end.
  void finish();
  int64_t rows_emitted() const { return next_row_; }

 private:
  void emit_until(int64_t v_end);
  RasterGeometry g_;
  double size_;
  int cam_;
  RowSink sink_;
  int64_t next_row_ = 0;       // first row not yet emitted
  int64_t current_grid_row_ = -1;
  int64_t pending_top_ = 0;    // lowest raster row touched by the current grid row
  std::vector<double> sum_, weight_;  // rows [next_row_, next_row_ + rows_held_)
  int64_t rows_held_ = 0;
  std::vector<float> out_;
};

}  // namespace wsi
