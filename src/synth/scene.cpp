#include <algorithm>
#include <array>
#include <cmath>
#include <numbers>
#include <random>

#include "synth/noise.hpp"
#include "wsi/error.hpp"
#include "wsi/synth.hpp"

namespace wsi {
namespace {

using synth::hash;
using synth::u01;
using synth::value_noise;

constexpr int kAngles = 720;  // samples of a blob's radius; also the outline's vertex count
constexpr double kTwoPi = 2.0 * std::numbers::pi;

// A star-shaped region: centre plus radius as a function of angle (level-0 px).
struct Blob {
  double cx = 0, cy = 0;
  std::array<float, kAngles> radius{};
  double rmin = 0, rmax = 0;

  static Blob make(std::mt19937_64& rng, double cx, double cy, double r0, double roughness) {
    Blob b;
    b.cx = cx;
    b.cy = cy;
    std::uniform_real_distribution<double> phase(0, kTwoPi), amp(0.3, 1.0);
    std::array<double, 24> a{}, ph{};
    double total = 0;
    for (int k = 2; k < 24; ++k) {
      a[k] = amp(rng) / std::pow(k, 1.4);
      ph[k] = phase(rng);
      total += a[k];
    }
    const double scale = roughness / total;  // keeps r within r0 * [1 - roughness, 1 + roughness]
    b.rmin = 1e300;
    for (int i = 0; i < kAngles; ++i) {
      const double t = kTwoPi * i / kAngles;
      double r = 1;
      for (int k = 2; k < 24; ++k) r += scale * a[k] * std::cos(k * t + ph[k]);
      b.radius[i] = static_cast<float>(r0 * r);
      b.rmin = std::min(b.rmin, r0 * r);
      b.rmax = std::max(b.rmax, r0 * r);
    }
    return b;
  }

  double radius_at(double dx, double dy) const {
    double t = std::atan2(dy, dx);
    if (t < 0) t += kTwoPi;
    const double f = t / kTwoPi * kAngles;
    const int i = static_cast<int>(f) % kAngles;
    const double w = f - std::floor(f);
    return radius[i] * (1 - w) + radius[(i + 1) % kAngles] * w;
  }

  // Relative radial position: < 1 inside, > 1 outside.
  double rho(double x, double y) const {
    const double dx = x - cx, dy = y - cy;
    const double d2 = dx * dx + dy * dy;
    if (d2 == 0) return 0;
    return std::sqrt(d2) / radius_at(dx, dy);
  }

  bool contains(double x, double y) const {
    const double dx = x - cx, dy = y - cy;
    const double d2 = dx * dx + dy * dy;
    if (d2 < rmin * rmin) return true;
    if (d2 > rmax * rmax) return false;
    return std::sqrt(d2) < radius_at(dx, dy);
  }

  bool bbox_hits(double x0, double y0, double x1, double y1) const {
    return cx + rmax >= x0 && cx - rmax <= x1 && cy + rmax >= y0 && cy - rmax <= y1;
  }

  std::vector<PointD> outline() const {
    std::vector<PointD> pts(kAngles);
    for (int i = 0; i < kAngles; ++i) {
      const double t = kTwoPi * i / kAngles;
      pts[i] = {cx + radius[i] * std::cos(t), cy + radius[i] * std::sin(t)};
    }
    return pts;
  }
};

struct PenStroke {
  std::vector<PointD> pts;
  double half_width = 0;
  std::array<float, 3> od{};  // ink absorbance per RGB channel
  double x0 = 0, y0 = 0, x1 = 0, y1 = 0;  // bbox incl. width
};

int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

double dist2_to_segment(double px, double py, const PointD& a, const PointD& b) {
  const double vx = b.x - a.x, vy = b.y - a.y;
  const double len2 = vx * vx + vy * vy;
  double t = len2 > 0 ? ((px - a.x) * vx + (py - a.y) * vy) / len2 : 0;
  t = std::clamp(t, 0.0, 1.0);
  const double dx = px - (a.x + t * vx), dy = py - (a.y + t * vy);
  return dx * dx + dy * dy;
}

// Nucleus populations: a jittered grid whose cells each hold at most one nucleus.
enum class Zone { glass, hole, stroma, capsule, lymphoid, tumour_nest, tumour_stroma };

// Field thresholds shared by zone_at() (nucleus centres) and background_row() (pixels).
constexpr double kHoleAbove = 0.80;      // hole_field above this: sinus / fat hole
constexpr double kNestAbove = 0.38;      // nest_field above this inside a tumour: tumour cell nest
constexpr double kLymphoidAbove = 0.36;  // lymphoid_field above this: lymphoid tissue, else stroma

constexpr int kLutH = 256;  // haematoxylin density 0..4 in steps of 1/64
constexpr int kLutE = 128;  // eosin density 0..2 in steps of 1/64

}  // namespace

void SynthParams::validate() const {
  auto bad = [](const std::string& what) { throw ConfigError("synth: " + what); };
  if (width < 64 || height < 64) bad("--size must be at least 64x64 pixels");
  if (width > 1'000'000 || height > 1'000'000) bad("--size is limited to 1000000x1000000 pixels");
  if (!(mpp >= 0.05 && mpp <= 20)) bad("--mpp must be between 0.05 and 20 micrometres per pixel");
  if (tumours < 0 || tumours > 100) bad("--tumours must be between 0 and 100");
  if (sections < 0 || sections > 6) bad("--sections must be between 0 (auto) and 6");
  if (!(stain_variation >= 0 && stain_variation <= 1)) bad("--stain-variation must be between 0 and 1");
  if (!(blur_sigma >= 0 && blur_sigma <= 20)) bad("--blur must be between 0 and 20 pixels");
  if (!(noise >= 0 && noise <= 1)) bad("--noise must be between 0 and 1");
}

struct SynthScene::Impl {
  SynthParams p;
  double um = 1;  // level-0 pixels per micrometre
  std::vector<Blob> sections;
  std::vector<Blob> tumours;
  std::vector<PenStroke> pens;
  std::vector<uint8_t> lut;  // [h][e] -> rgb

  // Population geometry, in level-0 pixels.
  double lymph_cell = 0, lymph_r = 0, tumour_cell = 0, tumour_r = 0, capsule = 0;
  double field_scale = 0, hole_scale = 0, nest_scale = 0, fibre_scale = 0;

  explicit Impl(const SynthParams& params) : p(params) {
    p.validate();
    um = 1.0 / p.mpp;
    lymph_cell = 7.6 * um;
    lymph_r = 3.3 * um;
    tumour_cell = 10.5 * um;
    tumour_r = 5.6 * um;
    capsule = 45 * um;
    field_scale = 260 * um;
    hole_scale = 90 * um;
    nest_scale = 55 * um;
    fibre_scale = 6 * um;
    std::mt19937_64 rng(p.seed * 0x9E3779B97F4A7C15ULL + 12345);
    place_sections(rng);
    place_tumours(rng);
    if (p.pen_marks) place_pens(rng);
    build_lut(rng);
  }

  void place_sections(std::mt19937_64& rng) {
    const double W = static_cast<double>(p.width), H = static_cast<double>(p.height);
    int n = p.sections;
    if (n == 0) n = std::clamp(static_cast<int>(std::lround(std::max(W, H) / std::min(W, H))), 1, 3);
    const bool horizontal = W >= H;
    const double cw = horizontal ? W / n : W, ch = horizontal ? H : H / n;
    std::uniform_real_distribution<double> jitter(-0.04, 0.04), size(0.29, 0.34);
    for (int i = 0; i < n; ++i) {
      const double cx = (horizontal ? (i + 0.5) * cw : 0.5 * W) + jitter(rng) * cw;
      const double cy = (horizontal ? 0.5 * H : (i + 0.5) * ch) + jitter(rng) * ch;
      sections.push_back(Blob::make(rng, cx, cy, size(rng) * std::min(cw, ch), 0.3));
    }
  }

  void place_tumours(std::mt19937_64& rng) {
    std::uniform_real_distribution<double> u(0, 1);
    for (int t = 0; t < p.tumours; ++t) {
      const Blob& s = sections[static_cast<size_t>(t) % sections.size()];
      Blob best;
      double best_gap = -1e300;
      // Rejection sampling for tumours that do not touch each other; keep the best try.
      for (int attempt = 0; attempt < 40; ++attempt) {
        const double inner = 0.9 * s.rmin;
        double r0 = (250 + 950 * u(rng)) * um;
        r0 = std::min(r0, inner / (1.35 * 2));
        const double dmax = inner - 1.3 * r0;
        const double d = dmax * std::sqrt(u(rng)), a = kTwoPi * u(rng);
        Blob b = Blob::make(rng, s.cx + d * std::cos(a), s.cy + d * std::sin(a), r0, 0.28);
        double gap = 1e300;
        for (const Blob& o : tumours)
          gap = std::min(gap, std::hypot(o.cx - b.cx, o.cy - b.cy) - o.rmax - b.rmax);
        if (gap > best_gap) {
          best = b;
          best_gap = gap;
        }
        if (gap > 0) break;
      }
      tumours.push_back(best);
    }
  }

  void place_pens(std::mt19937_64& rng) {
    std::uniform_real_distribution<double> u(0, 1);
    const std::array<std::array<float, 3>, 3> inks = {{
        {1.05f, 0.25f, 0.85f},  // green marker
        {1.10f, 0.75f, 0.12f},  // blue marker
        {0.10f, 1.00f, 0.80f},  // red marker
    }};
    for (size_t i = 0; i < sections.size(); ++i) {
      const Blob& s = sections[i];
      PenStroke pen;
      pen.od = inks[(i + static_cast<size_t>(u(rng) * 3)) % 3];
      pen.half_width = (120 + 120 * u(rng)) * um;
      double a = kTwoPi * u(rng);
      for (int k = 0; k < 7; ++k, a += 0.18 + 0.1 * u(rng)) {
        const double r = s.rmax * (1.08 + 0.08 * u(rng));
        pen.pts.push_back({s.cx + r * std::cos(a), s.cy + r * std::sin(a)});
      }
      pen.x0 = pen.y0 = 1e300;
      pen.x1 = pen.y1 = -1e300;
      for (const auto& q : pen.pts) {
        pen.x0 = std::min(pen.x0, q.x - pen.half_width);
        pen.y0 = std::min(pen.y0, q.y - pen.half_width);
        pen.x1 = std::max(pen.x1, q.x + pen.half_width);
        pen.y1 = std::max(pen.y1, q.y + pen.half_width);
      }
      pens.push_back(std::move(pen));
    }
  }

  void build_lut(std::mt19937_64& rng) {
    // Optical-density vectors of haematoxylin and eosin (Macenko's reference), per RGB channel.
    std::array<double, 3> H = {0.5626, 0.7201, 0.4062}, E = {0.2159, 0.8012, 0.5581};
    double hs = 1.0, es = 1.0;
    if (p.stain_variation > 0) {
      std::uniform_real_distribution<double> u(-1, 1);
      const double v = p.stain_variation;
      for (auto& c : H) c = std::max(0.05, c + 0.12 * v * u(rng));
      for (auto& c : E) c = std::max(0.05, c + 0.12 * v * u(rng));
      hs = 1 + 0.3 * v * u(rng);
      es = 1 + 0.3 * v * u(rng);
    }
    lut.resize(static_cast<size_t>(kLutH * kLutE * 3));
    for (int h = 0; h < kLutH; ++h)
      for (int e = 0; e < kLutE; ++e)
        for (int c = 0; c < 3; ++c) {
          const double od = 0.025 + hs * H[c] * h / 64.0 + es * E[c] * e / 64.0;
          lut[static_cast<size_t>((h * kLutE + e) * 3 + c)] =
              static_cast<uint8_t>(std::lround(255.0 * std::exp(-od)));
        }
  }

  const Blob* section_at(double x, double y) const {
    for (const Blob& s : sections)
      if (s.contains(x, y)) return &s;
    return nullptr;
  }

  bool tumour_at(double x, double y) const {
    for (const Blob& t : tumours)
      if (t.contains(x, y)) return true;
    return false;
  }

  double lymphoid_field(double x, double y) const {
    return 0.65 * value_noise(p.seed ^ 0x11, x / field_scale, y / field_scale) +
           0.35 * value_noise(p.seed ^ 0x12, x / (0.4 * field_scale), y / (0.4 * field_scale));
  }
  double hole_field(double x, double y) const {
    return 0.7 * value_noise(p.seed ^ 0x21, x / hole_scale, y / hole_scale) +
           0.3 * value_noise(p.seed ^ 0x22, x / (0.35 * hole_scale), y / (0.35 * hole_scale));
  }
  double nest_field(double x, double y) const {
    return value_noise(p.seed ^ 0x31, x / nest_scale, y / nest_scale);
  }

  Zone zone_at(double x, double y) const {
    const Blob* s = section_at(x, y);
    if (!s) return Zone::glass;
    if (s->rho(x, y) > 1 - capsule / s->rmin) return Zone::capsule;
    if (hole_field(x, y) > kHoleAbove) return Zone::hole;
    if (tumour_at(x, y)) return nest_field(x, y) > kNestAbove ? Zone::tumour_nest : Zone::tumour_stroma;
    return lymphoid_field(x, y) > kLymphoidAbove ? Zone::lymphoid : Zone::stroma;
  }

  // Background densities (no nuclei) of one row segment [x0, x0+w) at row y, into H and E.
  // The low-frequency fields are sampled on an absolute lattice every kStep pixels and
  // interpolated: 8x fewer noise evaluations, and any tiling still yields the same pixels.
  void background_row(int64_t x0, int64_t y, int64_t w, float* H, float* E) const {
    constexpr int64_t kStep = 8;
    const double py = static_cast<double>(y) + 0.5;
    std::fill(H, H + w, 0.0f);
    std::fill(E, E + w, 0.0f);
    const Blob* rows_sections[8];
    int ns = 0;
    for (const Blob& s : sections)
      if (std::abs(py - s.cy) <= s.rmax && ns < 8) rows_sections[ns++] = &s;
    if (ns == 0) return;
    const Blob* row_tumours[128];
    int nt = 0;
    for (const Blob& t : tumours)
      if (std::abs(py - t.cy) <= t.rmax && nt < 128) row_tumours[nt++] = &t;
    // Field samples at absolute x = k * kStep covering the segment.
    const int64_t k0 = floor_div(x0, kStep), k1 = floor_div(x0 + w, kStep) + 1;
    thread_local std::vector<float> lymph, hole, nest;
    lymph.resize(static_cast<size_t>(k1 - k0 + 1));
    hole.resize(lymph.size());
    nest.resize(lymph.size());
    for (int64_t k = k0; k <= k1; ++k) {
      const double sx = static_cast<double>(k * kStep);
      const auto i = static_cast<size_t>(k - k0);
      lymph[i] = static_cast<float>(lymphoid_field(sx, py));
      hole[i] = static_cast<float>(hole_field(sx, py));
      nest[i] = nt ? static_cast<float>(nest_field(sx, py)) : 0.0f;
    }
    for (int64_t x = 0; x < w; ++x) {
      const double px = static_cast<double>(x0 + x) + 0.5;
      bool inside = false, in_capsule = false;
      for (int i = 0; i < ns && !inside; ++i) {
        const Blob& s = *rows_sections[i];
        const double dx = px - s.cx, dy = py - s.cy, d2 = dx * dx + dy * dy;
        if (d2 > s.rmax * s.rmax) continue;
        const double inner = s.rmin - capsule;
        if (inner > 0 && d2 < inner * inner) {
          inside = true;
          break;
        }
        const double d = std::sqrt(d2), r = s.radius_at(dx, dy);
        inside = d < r;
        in_capsule = inside && d > r * (1 - capsule / s.rmin);
      }
      if (!inside) continue;
      // Same zone rules as zone_at(), with interpolated fields.
      const int64_t ax = x0 + x;
      const auto ki = static_cast<size_t>(floor_div(ax, kStep) - k0);
      const auto t = static_cast<float>(static_cast<double>(ax - floor_div(ax, kStep) * kStep) / kStep);
      auto lerp = [&](const std::vector<float>& f) { return f[ki] + (f[ki + 1] - f[ki]) * t; };
      auto fibre = [&] {
        return value_noise(p.seed ^ 0x41, (px + 0.6 * py) / (4 * fibre_scale), (py - 0.6 * px) / fibre_scale);
      };
      Zone z;
      if (in_capsule) {
        z = Zone::capsule;
      } else if (lerp(hole) > kHoleAbove) {
        z = Zone::hole;
      } else {
        bool tum = false;
        for (int i = 0; i < nt && !tum; ++i) tum = row_tumours[i]->contains(px, py);
        if (tum)
          z = lerp(nest) > kNestAbove ? Zone::tumour_nest : Zone::tumour_stroma;
        else
          z = lerp(lymph) > kLymphoidAbove ? Zone::lymphoid : Zone::stroma;
      }
      float& h = H[x];
      float& e = E[x];
      switch (z) {
        case Zone::glass: h = 0; e = 0; break;
        case Zone::hole: h = 0.02f; e = 0.04f; break;
        case Zone::capsule: h = 0.08f; e = static_cast<float>(0.75 + 0.45 * fibre()); break;
        case Zone::stroma: h = 0.07f; e = static_cast<float>(0.45 + 0.5 * fibre()); break;
        case Zone::lymphoid: h = 0.16f; e = 0.30f; break;
        case Zone::tumour_nest: h = 0.34f; e = 0.42f; break;
        case Zone::tumour_stroma: h = 0.08f; e = static_cast<float>(0.55 + 0.4 * fibre()); break;
      }
    }
  }

  // Draws every nucleus of one population that touches the rectangle.
  void draw_nuclei(bool tumour_pop, int64_t x0, int64_t y0, int64_t w, int64_t h, float* H,
                   float* E) const {
    const double cell = tumour_pop ? tumour_cell : lymph_cell;
    const double rmax = (tumour_pop ? tumour_r * 1.9 : lymph_r * 1.5) + 2;
    const auto gx0 = static_cast<int64_t>(std::floor((static_cast<double>(x0) - rmax) / cell)) - 1;
    const auto gy0 = static_cast<int64_t>(std::floor((static_cast<double>(y0) - rmax) / cell)) - 1;
    const auto gx1 = static_cast<int64_t>(std::floor((static_cast<double>(x0 + w) + rmax) / cell)) + 1;
    const auto gy1 = static_cast<int64_t>(std::floor((static_cast<double>(y0 + h) + rmax) / cell)) + 1;
    const uint64_t salt = tumour_pop ? 0x7A : 0x1A;
    for (int64_t gy = gy0; gy <= gy1; ++gy)
      for (int64_t gx = gx0; gx <= gx1; ++gx) {
        const uint64_t k = hash(p.seed, gx, gy, salt);
        const double cx = (static_cast<double>(gx) + 0.15 + 0.7 * u01(hash(k, 1))) * cell;
        const double cy = (static_cast<double>(gy) + 0.15 + 0.7 * u01(hash(k, 2))) * cell;
        if (cx + rmax < static_cast<double>(x0) || cx - rmax > static_cast<double>(x0 + w) ||
            cy + rmax < static_cast<double>(y0) || cy - rmax > static_cast<double>(y0 + h))
          continue;
        const Zone z = zone_at(cx, cy);
        double presence = 0;
        if (tumour_pop) {
          presence = z == Zone::tumour_nest ? 0.97 : 0.0;
        } else {
          switch (z) {
            case Zone::lymphoid: presence = 0.72; break;
            case Zone::tumour_stroma: presence = 0.30; break;
            case Zone::stroma: presence = 0.10; break;
            case Zone::capsule: presence = 0.05; break;
            default: presence = 0;
          }
        }
        if (u01(hash(k, 3)) >= presence) continue;
        draw_one(tumour_pop, z, k, cx, cy, x0, y0, w, h, H, E);
      }
  }

  void draw_one(bool tumour_pop, Zone z, uint64_t k, double cx, double cy, int64_t x0, int64_t y0,
                int64_t w, int64_t h, float* H, float* E) const {
    double a = 0, b = 0, peak = 0;
    const double angle = kTwoPi * u01(hash(k, 4));
    if (tumour_pop) {
      // Pleomorphic: log-normal-ish size, irregular shape, darker and textured.
      const double s = std::exp(0.28 * (u01(hash(k, 5)) + u01(hash(k, 6)) + u01(hash(k, 7)) - 1.5) * 2);
      a = tumour_r * s;
      b = a * (0.6 + 0.4 * u01(hash(k, 8)));
      peak = 1.9 + 0.8 * u01(hash(k, 9));
    } else if (z == Zone::stroma || z == Zone::capsule || z == Zone::tumour_stroma) {
      // Fibroblasts: thin and elongated.
      a = lymph_r * 1.5;
      b = lymph_r * 0.45;
      peak = 1.3 + 0.4 * u01(hash(k, 9));
    } else {
      a = lymph_r * (0.85 + 0.3 * u01(hash(k, 5)));
      b = a * (0.85 + 0.15 * u01(hash(k, 8)));
      peak = 1.6 + 0.5 * u01(hash(k, 9));
    }
    const double ca = std::cos(angle), sa = std::sin(angle);
    const double ext = std::max(a, b) * (tumour_pop ? 1.25 : 1.05) + 1;
    const int64_t px0 = std::max(x0, static_cast<int64_t>(std::floor(cx - ext)));
    const int64_t py0 = std::max(y0, static_cast<int64_t>(std::floor(cy - ext)));
    const int64_t px1 = std::min(x0 + w, static_cast<int64_t>(std::ceil(cx + ext)) + 1);
    const int64_t py1 = std::min(y0 + h, static_cast<int64_t>(std::ceil(cy + ext)) + 1);
    // Irregular nuclear outline for tumour cells: radius wobble by angle.
    const double wob1 = tumour_pop ? 0.14 * u01(hash(k, 10)) : 0, ph1 = kTwoPi * u01(hash(k, 11));
    const double wob2 = tumour_pop ? 0.08 * u01(hash(k, 12)) : 0, ph2 = kTwoPi * u01(hash(k, 13));
    const double nx = cx + 0.3 * a * (u01(hash(k, 14)) - 0.5), ny = cy + 0.3 * b * (u01(hash(k, 15)) - 0.5);
    const double nr = tumour_pop ? 0.13 * a : 0;
    const double cph1 = std::cos(ph1), sph1 = std::sin(ph1), cph2 = std::cos(ph2), sph2 = std::sin(ph2);
    const double edge = std::max(1.0, 0.08 * a);  // soft edge width in pixels
    for (int64_t py = py0; py < py1; ++py)
      for (int64_t px = px0; px < px1; ++px) {
        const double dx = static_cast<double>(px) + 0.5 - cx, dy = static_cast<double>(py) + 0.5 - cy;
        const double u = dx * ca + dy * sa, v = -dx * sa + dy * ca;
        double d = std::sqrt((u / a) * (u / a) + (v / b) * (v / b));
        if (tumour_pop) {
          // sin(3t + ph), sin(5t + ph) from cos t and sin t by multiple-angle identities.
          const double rr = std::sqrt(u * u + v * v);
          const double c = rr > 0 ? u / rr : 1, sn = rr > 0 ? v / rr : 0;
          const double c2 = c * c, s2 = sn * sn;
          const double s3 = sn * (3 - 4 * s2), c3 = c * (4 * c2 - 3);
          const double s5 = sn * (16 * s2 * s2 - 20 * s2 + 5), c5 = c * (16 * c2 * c2 - 20 * c2 + 5);
          d /= 1 + wob1 * (s3 * cph1 + c3 * sph1) + wob2 * (s5 * cph2 + c5 * sph2);
        }
        const double inside = std::clamp((1 - d) * std::min(a, b) / edge + 0.5, 0.0, 1.0);
        if (inside <= 0) continue;
        double dens = peak;
        if (tumour_pop) {
          // Coarse chromatin and a nucleolus.
          dens *= 0.75 + 0.5 * value_noise(k, static_cast<double>(px) / (1.2 * um), static_cast<double>(py) / (1.2 * um));
          const double ndx = static_cast<double>(px) + 0.5 - nx, ndy = static_cast<double>(py) + 0.5 - ny;
          if (ndx * ndx + ndy * ndy < nr * nr) dens += 0.9;
          dens *= 0.85 + 0.3 * d;  // chromatin rim: darker at the nuclear membrane
        }
        const size_t i = static_cast<size_t>((py - y0) * w + (px - x0));
        const auto val = static_cast<float>(dens * inside);
        H[i] = std::max(H[i], val);
        E[i] *= static_cast<float>(1 - 0.7 * inside);
      }
  }

  void render_sharp(int64_t x0, int64_t y0, int64_t w, int64_t h, uint8_t* rgb) const {
    const size_t n = static_cast<size_t>(w * h);
    thread_local std::vector<float> H, E;
    H.assign(n, 0.0f);
    E.assign(n, 0.0f);
    const double fx0 = static_cast<double>(x0), fy0 = static_cast<double>(y0);
    const double fx1 = static_cast<double>(x0 + w), fy1 = static_cast<double>(y0 + h);
    bool any_tissue = false;
    for (const Blob& s : sections) any_tissue |= s.bbox_hits(fx0, fy0, fx1, fy1);
    if (any_tissue) {
      for (int64_t y = 0; y < h; ++y)
        background_row(x0, y0 + y, w, H.data() + y * w, E.data() + y * w);
      draw_nuclei(false, x0, y0, w, h, H.data(), E.data());
      bool any_tumour = false;
      for (const Blob& t : tumours) any_tumour |= t.bbox_hits(fx0 - tumour_r * 2, fy0 - tumour_r * 2, fx1 + tumour_r * 2, fy1 + tumour_r * 2);
      if (any_tumour) draw_nuclei(true, x0, y0, w, h, H.data(), E.data());
    }
    for (size_t i = 0; i < n; ++i) {
      const int qh = std::min(kLutH - 1, static_cast<int>(H[i] * 64.0f + 0.5f));
      const int qe = std::min(kLutE - 1, static_cast<int>(E[i] * 64.0f + 0.5f));
      const uint8_t* c = &lut[static_cast<size_t>((qh * kLutE + qe) * 3)];
      rgb[3 * i] = c[0];
      rgb[3 * i + 1] = c[1];
      rgb[3 * i + 2] = c[2];
    }
    for (const PenStroke& pen : pens) {
      if (pen.x1 < fx0 || pen.x0 > fx1 || pen.y1 < fy0 || pen.y0 > fy1) continue;
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x) {
          const double px = fx0 + static_cast<double>(x) + 0.5, py = fy0 + static_cast<double>(y) + 0.5;
          double d2 = 1e300;
          for (size_t s = 0; s + 1 < pen.pts.size(); ++s)
            d2 = std::min(d2, dist2_to_segment(px, py, pen.pts[s], pen.pts[s + 1]));
          if (d2 >= pen.half_width * pen.half_width) continue;
          uint8_t* c = &rgb[static_cast<size_t>(y * w + x) * 3];
          for (int ch = 0; ch < 3; ++ch)
            c[ch] = static_cast<uint8_t>(std::lround(c[ch] * std::exp(-pen.od[static_cast<size_t>(ch)])));
        }
    }
    if (p.noise > 0) {
      const double amp = 24.0 * p.noise;
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x) {
          const uint64_t k = hash(p.seed ^ 0x5151, x0 + x, y0 + y);
          uint8_t* c = &rgb[static_cast<size_t>(y * w + x) * 3];
          // Mostly luminance noise with a little chroma, like a sensor.
          const double l = amp * (u01(k) + u01(hash(k, 1)) - 1.0);
          for (int ch = 0; ch < 3; ++ch) {
            const double chroma = 0.25 * amp * (u01(hash(k, 2 + static_cast<uint64_t>(ch))) - 0.5);
            c[ch] = static_cast<uint8_t>(std::clamp(std::lround(c[ch] + l + chroma), 0L, 255L));
          }
        }
    }
  }
};

SynthScene::SynthScene(const SynthParams& params) : impl_(std::make_unique<Impl>(params)) {}
SynthScene::~SynthScene() = default;
SynthScene::SynthScene(SynthScene&&) noexcept = default;
SynthScene& SynthScene::operator=(SynthScene&&) noexcept = default;

const SynthParams& SynthScene::params() const { return impl_->p; }

void SynthScene::render_rgb(int64_t x, int64_t y, int64_t w, int64_t h, uint8_t* rgb) const {
  if (impl_->p.blur_sigma <= 0) {
    impl_->render_sharp(x, y, w, h, rgb);
    return;
  }
  // Render with a margin, blur separably, crop: any tiling gives the same pixels.
  const double sigma = impl_->p.blur_sigma;
  const auto m = static_cast<int64_t>(std::ceil(3 * sigma));
  const int64_t W = w + 2 * m, H = h + 2 * m;
  std::vector<uint8_t> big(static_cast<size_t>(W * H * 3));
  impl_->render_sharp(x - m, y - m, W, H, big.data());
  std::vector<float> k(static_cast<size_t>(2 * m + 1));
  float ks = 0;
  for (int64_t i = -m; i <= m; ++i)
    ks += k[static_cast<size_t>(i + m)] = static_cast<float>(std::exp(-0.5 * static_cast<double>(i * i) / (sigma * sigma)));
  for (auto& v : k) v /= ks;
  std::vector<float> tmp(static_cast<size_t>(w * H * 3));
  for (int64_t yy = 0; yy < H; ++yy)
    for (int64_t xx = 0; xx < w; ++xx)
      for (int c = 0; c < 3; ++c) {
        float s = 0;
        for (int64_t i = 0; i <= 2 * m; ++i) s += k[static_cast<size_t>(i)] * big[static_cast<size_t>((yy * W + xx + i) * 3 + c)];
        tmp[static_cast<size_t>((yy * w + xx) * 3 + c)] = s;
      }
  for (int64_t yy = 0; yy < h; ++yy)
    for (int64_t xx = 0; xx < w; ++xx)
      for (int c = 0; c < 3; ++c) {
        float s = 0;
        for (int64_t i = 0; i <= 2 * m; ++i) s += k[static_cast<size_t>(i)] * tmp[static_cast<size_t>(((yy + i) * w + xx) * 3 + c)];
        rgb[static_cast<size_t>((yy * w + xx) * 3 + c)] = static_cast<uint8_t>(std::clamp(std::lround(s), 0L, 255L));
      }
}

void SynthScene::render_mask(int64_t x, int64_t y, int64_t w, int64_t h, uint8_t* mask) const {
  std::fill(mask, mask + w * h, uint8_t{0});
  const double fx0 = static_cast<double>(x), fy0 = static_cast<double>(y);
  for (const Blob& t : impl_->tumours) {
    if (!t.bbox_hits(fx0, fy0, fx0 + static_cast<double>(w), fy0 + static_cast<double>(h))) continue;
    for (int64_t yy = 0; yy < h; ++yy)
      for (int64_t xx = 0; xx < w; ++xx)
        if (t.contains(fx0 + static_cast<double>(xx) + 0.5, fy0 + static_cast<double>(yy) + 0.5))
          mask[yy * w + xx] = 255;
  }
}

bool SynthScene::is_tissue(double x, double y) const { return impl_->section_at(x, y) != nullptr; }
bool SynthScene::is_tumour(double x, double y) const { return impl_->tumour_at(x, y); }

std::vector<std::vector<PointD>> SynthScene::tumour_outlines() const {
  std::vector<std::vector<PointD>> out;
  for (const Blob& t : impl_->tumours) out.push_back(t.outline());
  return out;
}

}  // namespace wsi
