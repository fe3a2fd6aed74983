#include "wsi/grid.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <vector>

#include "wsi/error.hpp"
#include "wsi/tissue.hpp"

namespace wsi {

EdgePolicy parse_edge_policy(const std::string& s) {
  if (s == "inside") return EdgePolicy::inside;
  if (s == "pad") return EdgePolicy::pad;
  throw UsageError("unknown edge policy '" + s + "': use inside or pad");
}

void GridParams::validate() const {
  if (patch_size < 8 || patch_size > 4096)
    throw ConfigError("grid: patch size " + std::to_string(patch_size) + " is outside 8..4096");
  if (stride < 1 || stride > patch_size * 4)
    throw ConfigError("grid: stride " + std::to_string(stride) + " must be in 1.." + std::to_string(patch_size * 4) +
                      " (patch pixels)");
  if (!level && (!target_mpp || !(*target_mpp > 0.0) || !std::isfinite(*target_mpp)))
    throw ConfigError("grid: target mpp must be a positive number of micrometres per pixel (or give a level)");
  if (level && *level < 0) throw ConfigError("grid: level must be >= 0");
  if (!(min_tissue >= 0.0 && min_tissue <= 1.0))
    throw ConfigError("grid: minimum tissue fraction must be in 0..1");
}

namespace {

// Level pixels to read for `size` output pixels. Within the 1e-3 tolerance choose_level uses,
// read 1:1 rather than resample by 0.1 %.
int64_t read_size_for(int size, double read_scale) {
  return std::abs(read_scale - 1.0) <= 1e-3 ? size : std::max<int64_t>(1, std::llround(size * read_scale));
}

}  // namespace

PatchGeometry resolve_geometry(const std::vector<LevelInfo>& levels, double level0_mpp, const GridParams& params) {
  params.validate();
  if (levels.empty()) throw ConfigError("grid: the slide has no levels");
  PatchGeometry g;
  g.patch_size = params.patch_size;
  if (params.level) {
    if (*params.level >= static_cast<int>(levels.size()))
      throw ConfigError("grid: level " + std::to_string(*params.level) + " does not exist (the slide has " +
                        std::to_string(levels.size()) + " levels)");
    g.level = *params.level;
    g.level_downsample = levels[static_cast<size_t>(g.level)].downsample;
    g.target_mpp = level0_mpp > 0 ? level0_mpp * g.level_downsample : 0.0;
    g.read_size = params.patch_size;
    g.size_level0 = params.patch_size * g.level_downsample;
    g.stride_level0 = params.stride * g.level_downsample;
    return g;
  }
  if (!(level0_mpp > 0))
    throw ConfigError("the slide has no microns-per-pixel metadata, so the target resolution " +
                      std::to_string(*params.target_mpp) +
                      " um/px cannot be found: pass --mpp (the slide's level-0 um/px) or --level");
  const double target = *params.target_mpp;
  if (target < level0_mpp * (1 - 1e-3)) {
    std::ostringstream m;
    m << "target resolution " << target << " um/px is finer than the slide's level 0 (" << level0_mpp
      << " um/px); wsi-heatmap does not upsample: use --target-mpp " << level0_mpp << " or coarser, or --level 0";
    throw ConfigError(m.str());
  }
  const LevelChoice c = choose_level(levels, level0_mpp, target);
  g.level = c.level;
  g.level_downsample = levels[static_cast<size_t>(c.level)].downsample;
  g.target_mpp = target;
  const double ratio = target / level0_mpp;  // level-0 pixels per target pixel
  g.size_level0 = params.patch_size * ratio;
  g.stride_level0 = params.stride * ratio;
  g.read_size = read_size_for(params.patch_size, c.read_scale);
  return g;
}

PatchGeometry geometry_for_size(const std::vector<LevelInfo>& levels, const PatchGeometry& g, int out_size) {
  if (out_size < 1) throw ConfigError("grid: patch output size must be >= 1, not " + std::to_string(out_size));
  if (out_size == g.patch_size) return g;
  PatchGeometry r = g;
  r.patch_size = out_size;
  r.target_mpp = g.target_mpp * g.patch_size / out_size;
  // In level-0 pixels as the "mpp" unit: choose_level then compares downsamples.
  const double px = g.size_level0 / out_size;
  const LevelChoice c = choose_level(levels, 1.0, px);
  r.level = c.level;
  r.level_downsample = levels[static_cast<size_t>(c.level)].downsample;
  r.read_size = read_size_for(out_size, c.read_scale);
  return r;
}

PatchGeometry resolve_geometry(const Slide& slide, const GridParams& params) {
  return resolve_geometry(slide.levels(), slide.mpp().known() ? (slide.mpp().x + slide.mpp().y) / 2 : 0.0, params);
}

PatchGrid make_grid(const Bounds& bounds, const PatchGeometry& geometry, const GridParams& params,
                    const TissueMask* tissue) {
  PatchGrid grid;
  grid.geometry = geometry;
  grid.origin_x = bounds.x;
  grid.origin_y = bounds.y;
  const double size = geometry.size_level0, stride = geometry.stride_level0;
  auto count = [&](int64_t extent_px) -> int64_t {
    const double extent = static_cast<double>(extent_px);
    if (params.edge == EdgePolicy::pad) return extent_px > 0 ? static_cast<int64_t>(std::ceil(extent / stride)) : 0;
    if (extent + 1e-6 < size) return 0;
    // Patches fully inside: the last start s satisfies s + size <= extent.
    return static_cast<int64_t>(std::floor((extent - size) / stride + 1e-9)) + 1;
  };
  grid.cols = count(bounds.width);
  grid.rows = count(bounds.height);
  const int64_t side = std::llround(size);
  for (int64_t r = 0; r < grid.rows; ++r) {
    const int64_t y = bounds.y + std::llround(static_cast<double>(r) * stride);
    for (int64_t c = 0; c < grid.cols; ++c) {
      const int64_t x = bounds.x + std::llround(static_cast<double>(c) * stride);
      float frac = 1.0f;
      if (tissue) frac = static_cast<float>(tissue->fraction_in(x, y, side, side));
      if (tissue && (frac < params.min_tissue || (params.min_tissue > 0 && frac <= 0.0f))) continue;
      grid.patches.push_back({x, y, static_cast<int32_t>(c), static_cast<int32_t>(r), frac});
    }
  }
  return grid;
}

Region patch_region(const GridPatch& patch, const PatchGeometry& geometry) {
  return Region{geometry.level, patch.x, patch.y, geometry.read_size, geometry.read_size};
}

void resample_area(const uint8_t* src, int64_t src_size, uint8_t* dst, int64_t dst_size) {
  if (src_size == dst_size) {
    std::copy_n(src, static_cast<size_t>(src_size * src_size * 3), dst);
    return;
  }
  // Separable. Taps: the source indices [first[o], first[o] + count[o]) under output index o and
  // their coverage weights (normalised), the same along both axes.
  const auto m = static_cast<size_t>(dst_size);
  std::vector<int64_t> first(m), count(m), offset(m);
  std::vector<float> w;
  const double scale = static_cast<double>(src_size) / static_cast<double>(dst_size);
  for (size_t o = 0; o < m; ++o) {
    const double a = static_cast<double>(o) * scale, b = a + scale;
    first[o] = static_cast<int64_t>(std::floor(a));
    const int64_t last = std::min<int64_t>(src_size - 1, static_cast<int64_t>(std::ceil(b)) - 1);
    offset[o] = static_cast<int64_t>(w.size());
    std::vector<double> cover;
    double total = 0;
    for (int64_t i = first[o]; i <= last; ++i) {
      cover.push_back(std::max(0.0, std::min<double>(b, static_cast<double>(i + 1)) - std::max<double>(a, static_cast<double>(i))));
      total += cover.back();
    }
    for (const double c : cover) w.push_back(static_cast<float>(c / total));
    count[o] = static_cast<int64_t>(cover.size());
  }
  // Vertical pass first, over whole source rows (contiguous, so the compiler vectorises it),
  // then the horizontal pass on dst_size rows only: the scalar per-pixel work is on the small
  // image. Float sums: within 1e-4 of exact, so a result differs from exact rounding only at ties.
  const int64_t row = src_size * 3;
  std::vector<float> cols(m * static_cast<size_t>(row));
  for (size_t o = 0; o < m; ++o) {
    float* acc = cols.data() + o * static_cast<size_t>(row);
    const float* wt = w.data() + offset[o];
    const uint8_t* p0 = src + first[o] * row;
    for (int64_t j = 0; j < row; ++j) acc[j] = wt[0] * static_cast<float>(p0[j]);
    for (int64_t k = 1; k < count[o]; ++k) {
      const float wk = wt[k];
      const uint8_t* p = src + (first[o] + k) * row;
      for (int64_t j = 0; j < row; ++j) acc[j] += wk * static_cast<float>(p[j]);
    }
  }
  for (size_t y = 0; y < m; ++y) {
    const float* r = cols.data() + y * static_cast<size_t>(row);
    uint8_t* q = dst + y * m * 3;
    for (size_t o = 0; o < m; ++o, q += 3) {
      const float* wt = w.data() + offset[o];
      const float* p = r + first[o] * 3;
      float a0 = 0, a1 = 0, a2 = 0;
      for (int64_t k = 0; k < count[o]; ++k, p += 3) {
        a0 += wt[k] * p[0];
        a1 += wt[k] * p[1];
        a2 += wt[k] * p[2];
      }
      q[0] = static_cast<uint8_t>(std::clamp(a0 + 0.5f, 0.0f, 255.0f));
      q[1] = static_cast<uint8_t>(std::clamp(a1 + 0.5f, 0.0f, 255.0f));
      q[2] = static_cast<uint8_t>(std::clamp(a2 + 0.5f, 0.0f, 255.0f));
    }
  }
}

}  // namespace wsi
