// Placing per-patch results on slide-aligned rasters (see stitch.hpp).
#include "wsi/stitch.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "wsi/error.hpp"

namespace wsi {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// For one axis: the raster pixels a patch [start, start + size) touches and, for each, the
// overlap (level-0 length) with each of the patch's `n` map pixels.
struct AxisWeights {
  int64_t first = 0;                       // first raster pixel
  std::vector<std::vector<std::pair<int, double>>> taps;  // per raster pixel: (map pixel, overlap)
};

AxisWeights axis_weights(double start, double size, int n, double pixel, int64_t limit) {
  AxisWeights w;
  const double end = start + size, step = size / n;
  const int64_t lo = std::max<int64_t>(0, static_cast<int64_t>(std::floor(start / pixel)));
  const int64_t hi = std::min<int64_t>(limit, static_cast<int64_t>(std::ceil(end / pixel)));
  w.first = lo;
  for (int64_t u = lo; u < hi; ++u) {
    const double a = std::max(start, static_cast<double>(u) * pixel), b = std::min(end, static_cast<double>(u + 1) * pixel);
    std::vector<std::pair<int, double>> taps;
    if (b > a) {
      const int k0 = std::clamp(static_cast<int>(std::floor((a - start) / step)), 0, n - 1);
      const int k1 = std::clamp(static_cast<int>(std::ceil((b - start) / step)), 1, n);
      for (int k = k0; k < k1; ++k) {
        const double o = std::min(b, start + (k + 1) * step) - std::max(a, start + k * step);
        if (o > 0) taps.emplace_back(k, o);
      }
    }
    w.taps.push_back(std::move(taps));
  }
  return w;
}

}  // namespace

RasterGeometry raster_for(int64_t w0, int64_t h0, double max_pixel, int64_t min_side) {
  if (!(max_pixel > 0) || !std::isfinite(max_pixel)) throw ConfigError("raster pixel size must be positive");
  if (w0 < 1 || h0 < 1) throw ConfigError("raster of an empty slide (" + std::to_string(w0) + "x" + std::to_string(h0) + ")");
  const int64_t shorter = std::min(w0, h0);
  int64_t d = std::clamp<int64_t>(static_cast<int64_t>(std::floor(max_pixel * (1 + 1e-6))), 1, shorter);
  if (min_side > 1) d = std::max<int64_t>(1, std::min(d, shorter / min_side));
  // The quotients W0 / d that give d back are those of d = W0 / q; d = 1 always does.
  while (d > 1 && (w0 / (w0 / d) != d || h0 / (h0 / d) != d)) --d;
  return RasterGeometry{w0 / d, h0 / d, d};
}

std::vector<float> probability_raster(const RasterGeometry& g, const std::vector<int64_t>& x,
                                      const std::vector<int64_t>& y, const std::vector<float>& p, double size_level0,
                                      double stride_level0) {
  std::vector<float> out(static_cast<size_t>(g.width * g.height), kNaN);
  const auto pixel = static_cast<double>(g.pixel);
  const auto span = [&](double centre, int64_t limit) {
    // Pixels whose centre (u + 0.5) * pixel lies in [centre - stride/2, centre + stride/2).
    const double a = (centre - stride_level0 / 2) / pixel - 0.5, b = (centre + stride_level0 / 2) / pixel - 0.5;
    const int64_t lo = std::max<int64_t>(0, static_cast<int64_t>(std::ceil(a)));
    const int64_t hi = std::min<int64_t>(limit, static_cast<int64_t>(std::ceil(b)));
    return std::pair<int64_t, int64_t>{lo, hi};
  };
  for (size_t i = 0; i < p.size(); ++i) {
    const auto [u0, u1] = span(static_cast<double>(x[i]) + size_level0 / 2, g.width);
    const auto [v0, v1] = span(static_cast<double>(y[i]) + size_level0 / 2, g.height);
    for (int64_t v = v0; v < v1; ++v)
      for (int64_t u = u0; u < u1; ++u) out[static_cast<size_t>(v * g.width + u)] = p[i];
  }
  return out;
}

CamStitcher::CamStitcher(const RasterGeometry& g, double size_level0, int cam_size, RowSink sink)
    : g_(g), size_(size_level0), cam_(cam_size), sink_(std::move(sink)), out_(static_cast<size_t>(g.width)) {
  if (cam_size < 1) throw ConfigError("Grad-CAM map size must be positive");
}

void CamStitcher::emit_until(int64_t v_end) {
  v_end = std::min(v_end, g_.height);
  const auto W = static_cast<size_t>(g_.width);
  while (next_row_ < v_end) {
    if (rows_held_ > 0) {
      for (size_t u = 0; u < W; ++u)
        out_[u] = weight_[u] > 0 ? static_cast<float>(sum_[u] / weight_[u]) : kNaN;
      sum_.erase(sum_.begin(), sum_.begin() + static_cast<ptrdiff_t>(W));
      weight_.erase(weight_.begin(), weight_.begin() + static_cast<ptrdiff_t>(W));
      --rows_held_;
    } else {
      std::fill(out_.begin(), out_.end(), kNaN);
    }
    sink_(out_.data(), next_row_);
    ++next_row_;
  }
}

void CamStitcher::add(int64_t x, int64_t y, int64_t grid_row, const float* cam) {
  if (grid_row < current_grid_row_) throw ConfigError("CamStitcher: patches must arrive in grid-row order");
  if (grid_row > current_grid_row_) {
    current_grid_row_ = grid_row;
    // No later patch starts above y: raster rows ending at or above it are final.
    emit_until(y / g_.pixel);
  }
  const auto pixel = static_cast<double>(g_.pixel);
  const AxisWeights wx = axis_weights(static_cast<double>(x), size_, cam_, pixel, g_.width);
  const AxisWeights wy = axis_weights(static_cast<double>(y), size_, cam_, pixel, g_.height);
  const int64_t v_end = wy.first + static_cast<int64_t>(wy.taps.size());
  if (wy.first < next_row_) throw ConfigError("CamStitcher: a patch reaches rows already written");
  const auto W = static_cast<size_t>(g_.width);
  if (v_end - next_row_ > rows_held_) {
    rows_held_ = v_end - next_row_;
    sum_.resize(static_cast<size_t>(rows_held_) * W, 0.0);
    weight_.resize(static_cast<size_t>(rows_held_) * W, 0.0);
  }
  // Separable: first along x for each map row, then along y.
  std::vector<double> rowmix(wx.taps.size() * static_cast<size_t>(cam_), 0.0);
  std::vector<double> rowcov(wx.taps.size(), 0.0);
  for (size_t i = 0; i < wx.taps.size(); ++i)
    for (const auto& [k, o] : wx.taps[i]) {
      rowcov[i] += o;
      for (int r = 0; r < cam_; ++r) rowmix[i * static_cast<size_t>(cam_) + static_cast<size_t>(r)] += o * cam[r * cam_ + k];
    }
  for (size_t j = 0; j < wy.taps.size(); ++j) {
    const auto v = static_cast<size_t>(wy.first + static_cast<int64_t>(j) - next_row_);
    double colcov = 0;
    for (const auto& tap : wy.taps[j]) colcov += tap.second;
    for (size_t i = 0; i < wx.taps.size(); ++i) {
      double s = 0;
      for (const auto& [k, o] : wy.taps[j]) s += o * rowmix[i * static_cast<size_t>(cam_) + static_cast<size_t>(k)];
      const size_t at = v * W + static_cast<size_t>(wx.first) + i;
      sum_[at] += s;
      weight_[at] += rowcov[i] * colcov;
    }
  }
}

void CamStitcher::finish() { emit_until(g_.height); }

}  // namespace wsi
