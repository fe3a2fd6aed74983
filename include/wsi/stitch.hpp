// wsi/stitch.hpp — placing per-patch results on slide-aligned output rasters (pure, no I/O).
//
// Frames and units: everything is LEVEL-0 pixels of the slide. An output raster with pixel size
// `pixel` (level-0 pixels, may be fractional) covers [0, W0) x [0, H0) from the slide's origin:
// raster pixel (u, v) is the level-0 square [u * pixel, (u + 1) * pixel) x [v * pixel, ...).
// A viewer that scales the raster to the slide's physical size (its resolution tags) therefore
// overlays it exactly, whatever the grid's origin or stride.
//
//   * Probability raster (pixel = the grid stride, or stride / k so that cell borders fall on
//     pixel borders when patches overlap): pixel (u, v) takes the probability of the
//     patch whose stride cell — the stride x stride square centred on the patch's centre —
//     contains the pixel's centre; NaN where no patch was computed. With stride == patch size the
//     cell is the patch itself; with overlap each patch owns the central part it shares least.
//   * Saliency raster (pixel = patch size / cells_per_patch): every patch adds its Grad-CAM map,
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
  double pixel = 1;               // level-0 pixels per raster pixel
};

// The raster of pixel size `pixel` that covers a level-0 slide of `w0` x `h0` (ceil).
RasterGeometry raster_for(int64_t w0, int64_t h0, double pixel);

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
