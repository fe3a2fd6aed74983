// Training augmentation (see augment.hpp).
#include "wsi/augment.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <numbers>

#include "wsi/random.hpp"

namespace wsi {
namespace {

// Reflects a coordinate into [0, n - 1] (mirror without repeating the edge pixel: ... 2 1 0 1 2 ...).
double reflect(double v, int n) {
  if (n == 1) return 0;
  const double period = 2.0 * (n - 1);
  v = std::fmod(std::fabs(v), period);
  return v > n - 1 ? period - v : v;
}

// Ruifrok & Johnston's H, E, DAB optical-density vectors (rows), as scikit-image's rgb2hed.
constexpr double kHed[3][3] = {{0.65, 0.70, 0.29}, {0.07, 0.99, 0.11}, {0.27, 0.57, 0.78}};

std::array<std::array<double, 3>, 3> invert(const double m[3][3]) {
  std::array<std::array<double, 3>, 3> inv{};
  const double det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) -
                     m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
                     m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) {
      const int a = (j + 1) % 3, b = (j + 2) % 3, c = (i + 1) % 3, d = (i + 2) % 3;
      inv[static_cast<size_t>(i)][static_cast<size_t>(j)] = (m[a][c] * m[b][d] - m[a][d] * m[b][c]) / det;
    }
  return inv;
}

// Normalised stain rows and the inverse used for deconvolution (OD row-vector x inverse = C).
struct Stains {
  double m[3][3];
  std::array<std::array<double, 3>, 3> inv;
  std::array<float, 256> od;  // -log((v + 1) / 256) per byte value
  Stains() {
    for (int i = 0; i < 3; ++i) {
      const double n = std::sqrt(kHed[i][0] * kHed[i][0] + kHed[i][1] * kHed[i][1] + kHed[i][2] * kHed[i][2]);
      for (int j = 0; j < 3; ++j) m[i][j] = kHed[i][j] / n;
    }
    inv = invert(m);
    for (int v = 0; v < 256; ++v) od[static_cast<size_t>(v)] = static_cast<float>(-std::log((v + 1) / 256.0));
  }
};
const Stains& stains() {
  static const Stains s;
  return s;
}

uint8_t to_byte(double v) { return static_cast<uint8_t>(std::clamp(std::lround(v), 0L, 255L)); }

void geometric(const uint8_t* src, uint8_t* dst, int P, const AugmentParams& a, SplitMix64& rng) {
  // Output pixel centre q maps to source point M (q - c - t) / z + c, with M the inverse rotation
  // and flips; composing them into one 2x2 matrix keeps it one bilinear pass.
  const int k = a.rot90 ? static_cast<int>(rng.below(4)) : 0;
  const bool fh = a.flips && rng.below(2), fv = a.flips && rng.below(2);
  const double theta = a.max_rotation_deg > 0 ? rng.uniform(-a.max_rotation_deg, a.max_rotation_deg) : 0.0;
  const double zoom = a.max_zoom > 0 ? rng.uniform(1 - a.max_zoom, 1 + a.max_zoom) : 1.0;
  const double tx = a.max_shift > 0 ? rng.uniform(-a.max_shift, a.max_shift) * P : 0.0;
  const double ty = a.max_shift > 0 ? rng.uniform(-a.max_shift, a.max_shift) * P : 0.0;
  const double angle = (theta + 90.0 * k) * std::numbers::pi / 180.0;
  const double cs = std::cos(angle), sn = std::sin(angle);
  double m00 = cs / zoom, m01 = sn / zoom, m10 = -sn / zoom, m11 = cs / zoom;
  if (fh) m00 = -m00, m01 = -m01;
  if (fv) m10 = -m10, m11 = -m11;
  // Exact quarter turns: snap tiny residues so the identity stays an exact copy.
  for (double* v : {&m00, &m01, &m10, &m11})
    if (std::fabs(*v) < 1e-12) *v = 0;
  const double c = (P - 1) / 2.0;
  for (int y = 0; y < P; ++y) {
    for (int x = 0; x < P; ++x) {
      const double qx = x - c - tx, qy = y - c - ty;
      const double sx = reflect(m00 * qx + m01 * qy + c, P), sy = reflect(m10 * qx + m11 * qy + c, P);
      const int x0 = std::min(static_cast<int>(sx), P - 1), y0 = std::min(static_cast<int>(sy), P - 1);
      const int x1 = std::min(x0 + 1, P - 1), y1 = std::min(y0 + 1, P - 1);
      const double fx = sx - x0, fy = sy - y0;
      const uint8_t* p00 = src + (static_cast<size_t>(y0) * P + x0) * 3;
      const uint8_t* p01 = src + (static_cast<size_t>(y0) * P + x1) * 3;
      const uint8_t* p10 = src + (static_cast<size_t>(y1) * P + x0) * 3;
      const uint8_t* p11 = src + (static_cast<size_t>(y1) * P + x1) * 3;
      uint8_t* o = dst + (static_cast<size_t>(y) * P + x) * 3;
      for (int ch = 0; ch < 3; ++ch) {
        const double top = p00[ch] + fx * (p01[ch] - p00[ch]);
        const double bottom = p10[ch] + fx * (p11[ch] - p10[ch]);
        o[ch] = to_byte(top + fy * (bottom - top));
      }
    }
  }
}

void stain_jitter(uint8_t* img, int64_t pixels, double s, SplitMix64& rng) {
  const Stains& st = stains();
  double alpha[3], beta[3];
  for (int i = 0; i < 3; ++i) alpha[i] = rng.uniform(1 - s, 1 + s), beta[i] = rng.uniform(-s, s);
  // OD' = (C * alpha + beta) M with C = OD inv(M): one 3x3 matrix and an offset per pixel.
  double t[3][3], off[3];
  for (int j = 0; j < 3; ++j) {
    off[j] = 0;
    for (int i = 0; i < 3; ++i) off[j] += beta[i] * st.m[i][j];
    for (int r = 0; r < 3; ++r) {
      t[r][j] = 0;
      for (int i = 0; i < 3; ++i) t[r][j] += st.inv[static_cast<size_t>(r)][static_cast<size_t>(i)] * alpha[i] * st.m[i][j];
    }
  }
  for (int64_t p = 0; p < pixels; ++p) {
    uint8_t* px = img + p * 3;
    const double od[3] = {st.od[px[0]], st.od[px[1]], st.od[px[2]]};
    for (int j = 0; j < 3; ++j) {
      const double v = od[0] * t[0][j] + od[1] * t[1][j] + od[2] * t[2][j] + off[j];
      px[j] = to_byte(256.0 * std::exp(-v) - 1.0);
    }
  }
}

void hsv_jitter(uint8_t* img, int64_t pixels, const AugmentParams& a, SplitMix64& rng) {
  const double dh = a.hue > 0 ? rng.uniform(-a.hue, a.hue) : 0.0;
  const double ks = a.saturation > 0 ? rng.uniform(1 - a.saturation, 1 + a.saturation) : 1.0;
  const double kv = a.value > 0 ? rng.uniform(1 - a.value, 1 + a.value) : 1.0;
  for (int64_t p = 0; p < pixels; ++p) {
    uint8_t* px = img + p * 3;
    const double r = px[0] / 255.0, g = px[1] / 255.0, b = px[2] / 255.0;
    const double mx = std::max({r, g, b}), mn = std::min({r, g, b}), d = mx - mn;
    double h = 0;
    if (d > 0) {
      if (mx == r) h = std::fmod((g - b) / d + 6.0, 6.0);
      else if (mx == g) h = (b - r) / d + 2.0;
      else h = (r - g) / d + 4.0;
      h /= 6.0;
    }
    double s = mx > 0 ? d / mx : 0.0;
    double v = mx;
    h = h + dh - std::floor(h + dh);
    s = std::clamp(s * ks, 0.0, 1.0);
    v = std::clamp(v * kv, 0.0, 1.0);
    const double hh = h * 6.0;
    const int sector = static_cast<int>(hh) % 6;
    const double f = hh - std::floor(hh);
    const double pp = v * (1 - s), q = v * (1 - s * f), tt = v * (1 - s * (1 - f));
    double rgb[3];
    switch (sector) {
      case 0: rgb[0] = v, rgb[1] = tt, rgb[2] = pp; break;
      case 1: rgb[0] = q, rgb[1] = v, rgb[2] = pp; break;
      case 2: rgb[0] = pp, rgb[1] = v, rgb[2] = tt; break;
      case 3: rgb[0] = pp, rgb[1] = q, rgb[2] = v; break;
      case 4: rgb[0] = tt, rgb[1] = pp, rgb[2] = v; break;
      default: rgb[0] = v, rgb[1] = pp, rgb[2] = q; break;
    }
    for (int ch = 0; ch < 3; ++ch) px[ch] = to_byte(rgb[ch] * 255.0);
  }
}

}  // namespace

void augment_patch(const uint8_t* src, uint8_t* dst, int size, const AugmentParams& params, uint64_t seed) {
  SplitMix64 rng(seed);
  const int64_t pixels = int64_t{size} * size;
  if (params.geometric()) geometric(src, dst, size, params, rng);
  else std::memcpy(dst, src, static_cast<size_t>(pixels) * 3);
  if (params.stain > 0) stain_jitter(dst, pixels, params.stain, rng);
  if (params.hue > 0 || params.saturation > 0 || params.value > 0) hsv_jitter(dst, pixels, params, rng);
}

}  // namespace wsi
