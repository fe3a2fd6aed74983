#include "wsi/grid.hpp"

#include <algorithm>
#include <cmath>
#include <iomanip>
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

namespace {

// Within the 1e-3 tolerance choose_level uses, a level is read 1:1 rather than resampled by 0.1 %.
bool reads_one_to_one(double read_scale) { return std::abs(read_scale - 1.0) <= 1e-3; }

// Level pixels to read for `size` output pixels.
int64_t read_size_for(int size, double read_scale) {
  return reads_one_to_one(read_scale) ? size : std::max<int64_t>(1, std::llround(size * read_scale));
}

// A strip of the bounds shorter than this fraction of a stride makes no cell, and a patch that
// overhangs them by less counts as inside: an mpp read back from a TIFF rational is off by up to
// ~1e-5, which would otherwise turn n whole cells into n + 1 (pad) or n - 1 (inside).
constexpr double kCellTolerance = 1e-3;

}  // namespace

PatchGeometry resolve_geometry(const std::vector<LevelInfo>& levels, double level0_mpp, const GridParams& params) {
  params.validate();
  if (levels.empty()) throw ConfigError("grid: the slide has no levels");
  PatchGeometry g;
  g.patch_size = params.patch_size;
  if (params.level) {
    if (*params.level >= static_cast<int>(levels.size()))
      throw ConfigError("--level " + std::to_string(*params.level) + ": the slide has " + std::to_string(levels.size()) +
                        " levels (0.." + std::to_string(levels.size() - 1) + "); pick one of them");
    g.level = *params.level;
    g.level_downsample = levels[static_cast<size_t>(g.level)].downsample;
    g.target_mpp = level0_mpp > 0 ? level0_mpp * g.level_downsample : 0.0;
    g.read_size = params.patch_size;
    g.size_level0 = params.patch_size * g.level_downsample;
    g.stride_level0 = params.stride * g.level_downsample;
    return g;
  }
  if (!(level0_mpp > 0)) {
    std::ostringstream m;
    m << "the slide has no microns-per-pixel metadata, so the target resolution " << *params.target_mpp
      << " um/px cannot be found: pass --mpp (the slide's level-0 um/px) or --level";
    throw ConfigError(m.str());
  }
  const double target = *params.target_mpp;
  if (level0_mpp > target * (1 + std::max(params.mpp_tolerance, 1e-3))) {
    std::ostringstream m;
    const double needed = std::ceil((level0_mpp / target - 1) * 1000) / 1000;
    m << "target resolution " << target << " um/px is finer than the slide's level 0 (" << level0_mpp
      << " um/px); patches are not upsampled unasked: use --target-mpp " << level0_mpp << " or coarser, --level 0";
    if (needed <= 0.25) m << ", or --mpp-tolerance " << needed << " (enlarge level 0 by that fraction)";
    throw ConfigError(m.str());
  }
  const double ratio = target / level0_mpp;  // level-0 pixels per target pixel
  const int64_t longest = std::max(levels[0].width, levels[0].height);
  if (params.patch_size * ratio > static_cast<double>(longest)) {
    std::ostringstream m;
    m << "target resolution " << target << " um/px makes a " << params.patch_size << "-pixel patch "
      << params.patch_size * target / 1000 << " mm wide, larger than the whole slide (" << levels[0].width << " x "
      << levels[0].height << " pixels at " << level0_mpp << " um/px): check --target-mpp";
    throw ConfigError(m.str());
  }
  const LevelChoice c = choose_level(levels, level0_mpp, target, params.mpp_tolerance);
  g.level = c.level;
  g.level_downsample = levels[static_cast<size_t>(c.level)].downsample;
  g.target_mpp = target;
  g.read_size = read_size_for(params.patch_size, c.read_scale);
  if (reads_one_to_one(c.read_scale)) {
    // Read 1:1, a patch is read_size level pixels: that, not target / level0_mpp, is its
    // footprint. They differ only by the mpp's rounding (0.972 µm stored as a TIFF rational reads
    // back as 0.97200004), which would make a slide of exactly n patches n + 1 cells wide.
    g.size_level0 = params.patch_size * g.level_downsample;
    g.stride_level0 = params.stride * g.level_downsample;
  } else {
    g.size_level0 = params.patch_size * ratio;
    g.stride_level0 = params.stride * ratio;
  }
  return g;
}

PatchGeometry geometry_for_size(const std::vector<LevelInfo>& levels, const PatchGeometry& g, int out_size,
                                double tolerance) {
  if (out_size < 1) throw ConfigError("grid: patch output size must be >= 1, not " + std::to_string(out_size));
  if (out_size == g.patch_size) return g;
  PatchGeometry r = g;
  r.patch_size = out_size;
  r.target_mpp = g.target_mpp * g.patch_size / out_size;
  // In level-0 pixels as the "mpp" unit: choose_level then compares downsamples.
  const double px = g.size_level0 / out_size;
  const LevelChoice c = choose_level(levels, 1.0, px, tolerance);
  r.level = c.level;
  r.level_downsample = levels[static_cast<size_t>(c.level)].downsample;
  r.read_size = read_size_for(out_size, c.read_scale);
  return r;
}

std::optional<double> tolerance_for_next_level(const std::vector<LevelInfo>& levels, const PatchGeometry& g) {
  const auto next = static_cast<size_t>(g.level) + 1;
  if (g.read_size == g.patch_size || next >= levels.size()) return std::nullopt;
  const double px = g.size_level0 / g.patch_size;  // level-0 pixels per delivered pixel
  return levels[next].downsample / px - 1;
}

std::string mpp_tolerance_hint(const std::vector<LevelInfo>& levels, const PatchGeometry& g, double max_tolerance) {
  const std::optional<double> t = tolerance_for_next_level(levels, g);
  if (!t || *t > max_tolerance) return "";
  const auto next = static_cast<size_t>(g.level) + 1;
  const double fewer = std::pow(levels[next].downsample / levels[static_cast<size_t>(g.level)].downsample, 2);
  std::ostringstream m;
  m << "level " << next << " is only " << std::fixed << std::setprecision(1) << *t * 100
    << " % coarser than the patches' pixels: --mpp-tolerance " << std::setprecision(2)
    << std::ceil(*t * 100 - 1e-9) / 100 << " would read it instead of level " << g.level << ", "
    << std::defaultfloat << fewer << "x fewer pixels to decode (the same patches, a little less detail)";
  return m.str();
}

PatchGeometry resolve_geometry(const Slide& slide, const GridParams& params) {
  try {
    return resolve_geometry(slide.levels(), slide.mpp().known() ? (slide.mpp().x + slide.mpp().y) / 2 : 0.0, params);
  } catch (const ConfigError& e) {
    throw ConfigError(slide.path().string() + ": " + e.what());  // which slide: the grid alone does not know
  }
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
    if (params.edge == EdgePolicy::pad)
      return extent_px > 0 ? std::max<int64_t>(1, static_cast<int64_t>(std::ceil(extent / stride - kCellTolerance))) : 0;
    // Patches fully inside: the last start s satisfies s + size <= extent.
    return std::max<int64_t>(0, static_cast<int64_t>(std::floor((extent - size) / stride + kCellTolerance)) + 1);
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

void read_patch(const PatchSource& source, const GridPatch& patch, const PatchGeometry& geometry, uint8_t* out,
                std::vector<uint8_t>& scratch) {
  if (geometry.read_size == geometry.patch_size) {
    source.read_region(patch_region(patch, geometry), out);
    return;
  }
  scratch.resize(static_cast<size_t>(geometry.read_size * geometry.read_size * 3));
  source.read_region(patch_region(patch, geometry), scratch.data());
  resample_area(scratch.data(), geometry.read_size, out, geometry.patch_size);
}

namespace {

// The taps of an area resample from n to m samples along one axis, the same along both axes of a
// square patch: output o averages the k source samples idx[o * k + t] (t < k) with the normalised
// coverage weights w[o * k + t]. Every output gets the same tap count k (the widest; the extra taps
// carry weight 0 on an in-range index), so the loops below have no per-output bounds.
struct AreaTaps {
  int64_t from = 0, to = 0, k = 0;
  std::vector<int64_t> idx;
  std::vector<float> w;

  void build(int64_t n, int64_t m) {
    from = n;
    to = m;
    const double scale = static_cast<double>(n) / static_cast<double>(m);
    std::vector<std::vector<std::pair<int64_t, double>>> taps(static_cast<size_t>(m));
    k = 0;
    for (int64_t o = 0; o < m; ++o) {
      const double a = static_cast<double>(o) * scale, b = a + scale;
      const auto first = static_cast<int64_t>(std::floor(a));
      const int64_t last = std::min<int64_t>(n - 1, static_cast<int64_t>(std::ceil(b)) - 1);
      double total = 0;
      auto& t = taps[static_cast<size_t>(o)];
      for (int64_t i = first; i <= last; ++i) {
        const double c = std::max(0.0, std::min(b, static_cast<double>(i + 1)) - std::max(a, static_cast<double>(i)));
        t.emplace_back(i, c);
        total += c;
      }
      for (auto& [i, c] : t) c /= total;
      k = std::max<int64_t>(k, static_cast<int64_t>(t.size()));
    }
    idx.assign(static_cast<size_t>(m * k), 0);
    w.assign(static_cast<size_t>(m * k), 0.0f);
    for (size_t o = 0; o < taps.size(); ++o)
      for (size_t t = 0; t < static_cast<size_t>(k); ++t) {
        const size_t at = o * static_cast<size_t>(k) + t;
        idx[at] = t < taps[o].size() ? taps[o][t].first : taps[o].back().first;
        w[at] = t < taps[o].size() ? static_cast<float>(taps[o][t].second) : 0.0f;
      }
  }
};

// One output row of the horizontal pass: `m` RGB pixels from the vertically resampled row `r`,
// as floats (the rounding to bytes is a separate, vectorised loop). K > 0: that many taps,
// unrolled; K = 0: `k` taps.
template <int K>
void horizontal_row(const float* __restrict r, const int64_t* __restrict idx, const float* __restrict w, int64_t m,
                    int64_t k, float* __restrict out) {
  const int64_t n = K > 0 ? K : k;
  for (int64_t o = 0; o < m; ++o, out += 3) {
    float a0 = 0, a1 = 0, a2 = 0;
    for (int64_t t = 0; t < n; ++t) {
      const float wt = w[o * n + t];
      const float* __restrict p = r + idx[o * n + t] * 3;
      a0 += wt * p[0];
      a1 += wt * p[1];
      a2 += wt * p[2];
    }
    out[0] = a0;
    out[1] = a1;
    out[2] = a2;
  }
}

}  // namespace

void resample_area(const uint8_t* src, int64_t src_size, uint8_t* dst, int64_t dst_size) {
  if (src_size == dst_size) {
    std::copy_n(src, static_cast<size_t>(src_size * src_size * 3), dst);
    return;
  }
  // Readers call this once per patch with the same sizes: the taps and the scratch rows are kept
  // per thread (building them per call cost as much as the arithmetic).
  thread_local AreaTaps taps;
  thread_local std::vector<float> scratch;
  if (taps.from != src_size || taps.to != dst_size) taps.build(src_size, dst_size);
  const int64_t m = dst_size, k = taps.k, row = src_size * 3;
  const int64_t* idx = taps.idx.data();
  const float* w = taps.w.data();
  scratch.resize(static_cast<size_t>(m * row + m * 3));
  float* cols = scratch.data();
  // Vertical pass first, over whole source rows (contiguous, so the compiler vectorises it),
  // then the horizontal pass on dst_size rows only. __restrict: a uint8_t pointer may alias
  // anything, and without it the compiler reloads after every store and does not vectorise.
  // Float sums: within 1e-4 of exact, so a result differs from exact rounding only at ties.
  for (int64_t o = 0; o < m; ++o) {
    float* __restrict acc = cols + o * row;
    const uint8_t* __restrict p0 = src + idx[o * k] * row;
    const float w0 = w[o * k];
    for (int64_t j = 0; j < row; ++j) acc[j] = w0 * static_cast<float>(p0[j]);
    for (int64_t t = 1; t < k; ++t) {
      const float wt = w[o * k + t];
      const uint8_t* __restrict p = src + idx[o * k + t] * row;
      for (int64_t j = 0; j < row; ++j) acc[j] += wt * static_cast<float>(p[j]);
    }
  }
  float* line = scratch.data() + m * row;
  for (int64_t y = 0; y < m; ++y) {
    const float* r = cols + y * row;
    switch (k) {  // 2x..3x downsamples need 3 or 4 taps
      case 2: horizontal_row<2>(r, idx, w, m, k, line); break;
      case 3: horizontal_row<3>(r, idx, w, m, k, line); break;
      case 4: horizontal_row<4>(r, idx, w, m, k, line); break;
      default: horizontal_row<0>(r, idx, w, m, k, line); break;
    }
    uint8_t* __restrict q = dst + y * m * 3;
    for (int64_t j = 0; j < m * 3; ++j)
      q[j] = static_cast<uint8_t>(static_cast<int32_t>(std::min(std::max(line[j] + 0.5f, 0.0f), 255.0f)));
  }
}

}  // namespace wsi
