// wsi/grid.hpp — the sliding-window patch grid over a slide.
//
// Frames and units:
//   * Patch positions (GridPatch::x, y) are LEVEL-0 pixels (int64) of the patch's top-left corner.
//   * patch_size and stride are pixels AT THE TARGET RESOLUTION (target_mpp µm per pixel, PCam's
//     0.972 µm by default), i.e. the pixels the patch has once extracted.
//   * PatchGeometry::size_level0 / stride_level0 convert them to level-0 pixels (may be
//     non-integer; positions are rounded to the nearest level-0 pixel, never accumulated). When
//     the level is read 1:1 (its mpp within 1e-3 of the target) they are exactly patch_size and
//     stride times the level's downsample: the pixels read, not the mpp's ratio, which carries
//     the rounding of the slide's resolution tag.
//
// Reading: the patch is read at the coarsest level whose mpp is <= the target (never coarser, so
// no detail is invented) as a read_size x read_size region of that level, then area-resampled to
// patch_size when read_size != patch_size. A target finer than level 0 is refused (we do not
// upsample).
//
// mpp_tolerance (opt-in, default 0 = exact) relaxes "<= the target" to "<= target * (1 + tol)":
// a 2.0 µm level serves a 1.944 µm model with tol 0.03, so a 0.25 µm scan decodes 4x fewer pixels
// than from its 1.0 µm level. The patch keeps its exact level-0 footprint (the grid, and so every
// output, is the same as without it); only its pixels come from the coarser level, enlarged by
// at most 1 + tol. The same rule admits level 0 for a target up to tol finer than it.
//
// Edge policy: the grid starts at the top-left of openslide.bounds-* (or of level 0) and a
// patch is kept only when it lies entirely inside those bounds (`EdgePolicy::inside`, the
// default; the last partial row and column are dropped). `EdgePolicy::pad` keeps the partial
// patches; their outside part reads as white glass. A leftover strip shorter than 1/1000 of a
// stride makes no cell and an overhang that short still counts as inside, so that a slide of
// exactly n patches gives n cells whatever the rounding of its mpp.
//
// Thread-safety: everything here is a pure function of its arguments.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "wsi/params.hpp"
#include "wsi/patch_source.hpp"
#include "wsi/region.hpp"
#include "wsi/slide.hpp"

namespace wsi {

struct TissueMask;

enum class EdgePolicy { inside, pad };
EdgePolicy parse_edge_policy(const std::string& s);  // "inside" | "pad"; throws UsageError

struct GridParams {
  int patch_size = 96;                 // target pixels, 8..4096
  int stride = 96;                     // target pixels, 1..patch_size*4 (< patch_size = overlap)
  std::optional<double> target_mpp = 0.972;  // µm per target pixel (PCam 10x)
  std::optional<int> level;            // read this level 1:1 instead (overrides target_mpp)
  double mpp_tolerance = 0.0;          // relative, 0..0.25: accept a level this much coarser (above)
  double min_tissue = 0.5;             // minimum tissue fraction of a patch, 0..1 (0 = all)
  EdgePolicy edge = EdgePolicy::inside;

  void validate() const;  // throws ConfigError naming the option that sets the field (--stride, ...)
};

// The flags, JSON keys, defaults, help and checks of GridParams (params.hpp), but patch_size: a
// heatmap takes it from the model, extract adds --patch-size. --level excludes --target-mpp.
const ParamTable<GridParams>& grid_param_table();
std::string to_string(EdgePolicy e);  // "inside" | "pad"

// How patches are read, resolved against one slide.
struct PatchGeometry {
  int level = 0;              // slide level read
  double level_downsample = 1.0;
  double target_mpp = 0.0;    // µm per patch pixel (0 when the slide's mpp is unknown and a level was given)
  int patch_size = 96;        // output pixels
  int64_t read_size = 96;     // level pixels read per patch side
  double size_level0 = 96;    // level-0 pixels per patch side
  double stride_level0 = 96;  // level-0 pixels between neighbouring patches
};

struct GridPatch {
  int64_t x = 0, y = 0;      // level-0 top-left
  int32_t col = 0, row = 0;  // grid indices
  float tissue = 1.0f;       // tissue fraction 0..1
};

struct PatchGrid {
  PatchGeometry geometry;
  int64_t origin_x = 0, origin_y = 0;  // level-0 position of grid cell (0, 0)
  int64_t cols = 0, rows = 0;          // full grid size before the tissue filter
  std::vector<GridPatch> patches;      // kept patches, row-major order
};

// Resolves the read geometry from level sizes and level-0 mpp (0 = unknown). Throws
// ConfigError: unknown mpp without an explicit level ("pass --mpp"), target finer than level 0,
// level out of range.
PatchGeometry resolve_geometry(const std::vector<LevelInfo>& levels, double level0_mpp, const GridParams& params);
PatchGeometry resolve_geometry(const Slide& slide, const GridParams& params);

// The same patches (same level-0 origin, size_level0 and stride) delivered at `out_size` pixels
// instead of g.patch_size: read from the coarsest level whose pixels are no larger than the
// patch's pixels at that size (within choose_level's 1e-3), so a model that resizes its 96-pixel
// patches to a 48-pixel input can be fed from a level 2x coarser and decode 4x fewer pixels.
// read_size is out_size when that level matches within 1e-3, else size_level0 / the level's
// downsample, rounded (then resample_area to out_size). target_mpp scales with the size (0 stays 0).
// `tolerance` is GridParams::mpp_tolerance.
PatchGeometry geometry_for_size(const std::vector<LevelInfo>& levels, const PatchGeometry& g, int out_size,
                                double tolerance = 0.0);

// The mpp tolerance (a fraction) that would let `g` read the next coarser level instead of its
// own: that level's downsample over g's level-0 pixels per delivered pixel, minus 1. nullopt when
// g reads its level 1:1 (nothing to gain) or already reads the coarsest level. Callers turn a
// small one into a hint ("--mpp-tolerance 0.03 decodes 4x fewer pixels").
std::optional<double> tolerance_for_next_level(const std::vector<LevelInfo>& levels, const PatchGeometry& g);

// That hint as a sentence when the tolerance is at most `max_tolerance`, else "".
std::string mpp_tolerance_hint(const std::vector<LevelInfo>& levels, const PatchGeometry& g,
                               double max_tolerance = 0.05);

// Lays the grid over `bounds` and keeps patches whose tissue fraction (from `tissue`; every
// patch counts as full tissue when it is null) is >= params.min_tissue.
PatchGrid make_grid(const Bounds& bounds, const PatchGeometry& geometry, const GridParams& params,
                    const TissueMask* tissue);

// The region to read for a patch (level-0 x, y; level-pixel size read_size).
Region patch_region(const GridPatch& patch, const PatchGeometry& geometry);

// Area-averaging resample of a square RGB image (src_size² → dst_size²), exact for any ratio:
// each output pixel is the coverage-weighted mean of the input pixels under it.
void resample_area(const uint8_t* src, int64_t src_size, uint8_t* dst, int64_t dst_size);

// Reads one patch the way every patch reader does (the heatmap graph, `extract`): the region of
// patch_region() from `source`, area-resampled to geometry.patch_size when read_size differs.
// `out` holds patch_size² RGB; `scratch` is the caller's reusable buffer (one per thread).
// Throws RegionReadError from the source (`out` is then undefined).
void read_patch(const PatchSource& source, const GridPatch& patch, const PatchGeometry& geometry, uint8_t* out,
                std::vector<uint8_t>& scratch);

}  // namespace wsi
