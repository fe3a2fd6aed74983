// Tissue detection: the pure steps of tissue.hpp and TissueMask::fraction_in.
#include "wsi/tissue.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <vector>

#include "wsi/error.hpp"

namespace wsi {
namespace {

size_t npix(const GrayImage& m) { return static_cast<size_t>(m.width * m.height); }

std::string num(double v) {
  std::ostringstream o;
  o << v;
  return o.str();
}

// Half-widths of the rows of a digital disc: offsets (dx, dy) with dx² + dy² <= r².
std::vector<int64_t> disc_half_widths(int radius) {
  std::vector<int64_t> hw(static_cast<size_t>(2 * radius + 1));
  const int64_t r2 = static_cast<int64_t>(radius) * radius;
  for (int dy = -radius; dy <= radius; ++dy) {
    int64_t w = 0;
    while ((w + 1) * (w + 1) + static_cast<int64_t>(dy) * dy <= r2) ++w;
    hw[static_cast<size_t>(dy + radius)] = w;
  }
  return hw;
}

// "Is any pixel whose value is `set` within the disc?" for every pixel, where pixels outside the
// image count as set when `outside_set`. Each disc row is a horizontal run, so per image row we
// only need, for every x, the distance to the nearest set pixel of each row within the radius:
// O(width * height * (2r + 1)) time and O(width * (2r + 1)) memory.
GrayImage any_in_disc(const GrayImage& m, int radius, bool set_is_255, bool outside_set) {
  const int64_t w = m.width, h = m.height;
  GrayImage out(w, h);
  if (w == 0 || h == 0) return out;
  const std::vector<int64_t> hw = disc_half_widths(radius);
  const int64_t far = std::numeric_limits<int32_t>::max();
  // dist[row] = for each x, horizontal distance to the nearest set pixel in that row (capped);
  // pixels beyond the left/right edge are set when outside_set.
  auto row_distances = [&](int64_t y, std::vector<int64_t>& d) {
    d.assign(static_cast<size_t>(w), far);
    if (y < 0 || y >= h) {
      if (outside_set) std::fill(d.begin(), d.end(), 0);
      return;
    }
    const uint8_t* row = &m.pixels[static_cast<size_t>(y * w)];
    int64_t last = outside_set ? -1 : -far;  // position of the last set pixel seen from the left
    for (int64_t x = 0; x < w; ++x) {
      if ((row[x] != 0) == set_is_255) last = x;
      d[static_cast<size_t>(x)] = std::min(far, x - last);
    }
    last = outside_set ? w : far * 2;
    for (int64_t x = w - 1; x >= 0; --x) {
      if ((row[x] != 0) == set_is_255) last = x;
      d[static_cast<size_t>(x)] = std::min(d[static_cast<size_t>(x)], std::min(far, last - x));
    }
  };
  // A ring of 2r+1 row-distance buffers; row y+dy lives in slot (y+dy) mod (2r+1).
  const int64_t span = 2 * radius + 1;
  std::vector<std::vector<int64_t>> ring(static_cast<size_t>(span));
  for (int64_t yy = -radius; yy < radius; ++yy)
    row_distances(yy, ring[static_cast<size_t>(((yy % span) + span) % span)]);
  for (int64_t y = 0; y < h; ++y) {
    const int64_t add = y + radius;
    row_distances(add, ring[static_cast<size_t>(((add % span) + span) % span)]);
    uint8_t* o = &out.pixels[static_cast<size_t>(y * w)];
    for (int64_t dy = -radius; dy <= radius; ++dy) {
      const std::vector<int64_t>& d = ring[static_cast<size_t>((((y + dy) % span) + span) % span)];
      const int64_t lim = hw[static_cast<size_t>(dy + radius)];
      for (int64_t x = 0; x < w; ++x)
        if (d[static_cast<size_t>(x)] <= lim) o[x] = 255;
    }
  }
  return out;
}

GrayImage invert(GrayImage m) {
  for (auto& v : m.pixels) v = v ? 0 : 255;
  return m;
}

// Below this chroma (max - min of R, G, B) saturation is noise: near-black greys (marker crosses,
// dust, the slide's edge) reach 0.2 from a chroma of 9. Tissue this grey is paler than any
// saturation threshold.
constexpr int kMinChroma = 16;
// Ink pieces narrower than about twice this are specks, not marker strokes (µm).
constexpr double kInkSpeckUm = 8.0;
// Width of the blurred rim cleared around marker strokes (µm).
constexpr double kInkRimUm = 16.0;

int64_t radius_px(double um, double um_per_pixel) {
  return um <= 0 ? 0 : static_cast<int64_t>(std::lround(um / um_per_pixel));
}

}  // namespace

double TissueMask::fraction_in(int64_t x, int64_t y, int64_t w, int64_t h) const {
  if (w <= 0 || h <= 0 || mask.width == 0 || mask.height == 0) return 0.0;
  // Per-axis overlap lengths (level-0 px) between [a, a+len) and the mask cells it touches.
  auto overlaps = [](int64_t a, int64_t len, double cell, int64_t cells, int64_t& first) {
    std::vector<double> o;
    const double lo = static_cast<double>(a), hi = static_cast<double>(a + len);
    first = std::max<int64_t>(0, static_cast<int64_t>(std::floor(lo / cell)));
    const int64_t last = std::min<int64_t>(cells - 1, static_cast<int64_t>(std::floor(hi / cell)));
    for (int64_t i = first; i <= last; ++i)
      o.push_back(
          std::max(0.0, std::min(hi, static_cast<double>(i + 1) * cell) - std::max(lo, static_cast<double>(i) * cell)));
    return o;
  };
  int64_t i0 = 0, j0 = 0;
  const std::vector<double> ox = overlaps(x, w, downsample_x, mask.width, i0);
  const std::vector<double> oy = overlaps(y, h, downsample_y, mask.height, j0);
  double sum = 0.0;
  for (size_t j = 0; j < oy.size(); ++j) {
    if (oy[j] <= 0) continue;
    double row = 0.0;
    for (size_t i = 0; i < ox.size(); ++i)
      if (mask.at(i0 + static_cast<int64_t>(i), j0 + static_cast<int64_t>(j))) row += ox[i];
    sum += row * oy[j];
  }
  return std::clamp(sum / (static_cast<double>(w) * static_cast<double>(h)), 0.0, 1.0);
}

GrayImage saturation(const RgbImage& rgb) {
  GrayImage s(rgb.width, rgb.height);
  const size_t n = npix(s);
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* p = &rgb.pixels[3 * i];
    const int mx = std::max({p[0], p[1], p[2]}), mn = std::min({p[0], p[1], p[2]});
    s.pixels[i] = static_cast<uint8_t>(mx == 0 ? 0 : (255 * (mx - mn) + mx / 2) / mx);
  }
  return s;
}

int otsu_threshold(const uint64_t (&histogram)[256]) {
  double total = 0, sum_all = 0;
  for (int i = 0; i < 256; ++i) {
    total += static_cast<double>(histogram[i]);
    sum_all += static_cast<double>(i) * static_cast<double>(histogram[i]);
  }
  if (total == 0) return 0;
  double w0 = 0, sum0 = 0, best = -1;
  int best_lo = 0, best_hi = 0;
  for (int t = 1; t < 256; ++t) {
    w0 += static_cast<double>(histogram[t - 1]);
    sum0 += static_cast<double>(t - 1) * static_cast<double>(histogram[t - 1]);
    const double w1 = total - w0;
    if (w0 == 0 || w1 == 0) continue;
    const double m0 = sum0 / w0, m1 = (sum_all - sum0) / w1;
    const double var = w0 * w1 * (m0 - m1) * (m0 - m1);
    if (var > best * (1 + 1e-12)) {
      best = var;
      best_lo = best_hi = t;
    } else if (var >= best * (1 - 1e-12) && best_hi == t - 1) {
      best_hi = t;  // a plateau (empty bins between the classes): take its middle
    }
  }
  return best < 0 ? 0 : (best_lo + best_hi) / 2;
}

GrayImage pen_ink(const RgbImage& rgb) {
  GrayImage ink(rgb.width, rgb.height);
  const size_t n = npix(ink);
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* p = &rgb.pixels[3 * i];
    const int r = p[0], g = p[1], b = p[2];
    const int mx = std::max({r, g, b}), mn = std::min({r, g, b});
    const int chroma = mx - mn;
    if (chroma < 25 || mx == 0) continue;  // greys and glass: not ink
    const double sat = static_cast<double>(chroma) / mx;
    double hue;  // degrees
    if (mx == r)
      hue = 60.0 * std::fmod(static_cast<double>(g - b) / chroma + 6.0, 6.0);
    else if (mx == g)
      hue = 60.0 * (static_cast<double>(b - r) / chroma + 2.0);
    else
      hue = 60.0 * (static_cast<double>(r - g) / chroma + 4.0);
    // H&E is pink to purple (hue ~250°-345° even where it is darkest) with green as the weakest
    // channel. Green, cyan and clear blue never occur in it; red at 350°-10° only in blood (at
    // mask scale it is averaged with eosin below 345°). Dark red-violet is marker ink over ink.
    const bool green = hue >= 70 && hue < 190 && sat >= 0.2;
    const bool blue = hue >= 190 && hue < 245 && sat >= 0.25;
    const bool red = (hue >= 345 || hue < 15) && sat >= (hue >= 350 || hue < 10 ? 0.2 : 0.55);
    const bool dark = mx <= 100 && sat >= 0.4 && (hue >= 320 || hue < 15);
    if (green || blue || red || dark) ink.pixels[i] = 255;
  }
  return ink;
}

GrayImage dilate(const GrayImage& mask, int radius) {
  if (radius <= 0) return mask;
  return any_in_disc(mask, radius, /*set_is_255=*/true, /*outside_set=*/false);
}

GrayImage erode(const GrayImage& mask, int radius) {
  if (radius <= 0) return mask;
  // A pixel stays iff no background pixel lies in its disc; outside the image is foreground.
  return invert(any_in_disc(mask, radius, /*set_is_255=*/false, /*outside_set=*/false));
}

GrayImage morph_close(const GrayImage& mask, int radius) { return erode(dilate(mask, radius), radius); }
GrayImage morph_open(const GrayImage& mask, int radius) { return dilate(erode(mask, radius), radius); }

GrayImage fill_holes(const GrayImage& mask, double max_area_px) {
  GrayImage out = mask;
  const int64_t w = mask.width, h = mask.height;
  if (w == 0 || h == 0 || !(max_area_px > 0)) return out;
  std::vector<uint8_t> seen(npix(mask), 0);
  std::vector<int64_t> region, queue;
  for (int64_t start = 0; start < w * h; ++start) {
    if (mask.pixels[static_cast<size_t>(start)] || seen[static_cast<size_t>(start)]) continue;
    // Collect one 4-connected background region.
    region.clear();
    queue.assign(1, start);
    seen[static_cast<size_t>(start)] = 1;
    bool touches_border = false;
    while (!queue.empty()) {
      const int64_t p = queue.back();
      queue.pop_back();
      region.push_back(p);
      const int64_t x = p % w, y = p / w;
      if (x == 0 || y == 0 || x == w - 1 || y == h - 1) touches_border = true;
      const int64_t nb[4] = {x > 0 ? p - 1 : -1, x < w - 1 ? p + 1 : -1, y > 0 ? p - w : -1, y < h - 1 ? p + w : -1};
      for (int64_t q : nb)
        if (q >= 0 && !mask.pixels[static_cast<size_t>(q)] && !seen[static_cast<size_t>(q)]) {
          seen[static_cast<size_t>(q)] = 1;
          queue.push_back(q);
        }
    }
    if (!touches_border && static_cast<double>(region.size()) <= max_area_px)
      for (int64_t p : region) out.pixels[static_cast<size_t>(p)] = 255;
  }
  return out;
}

GrayImage remove_small_components(const GrayImage& mask, double min_area_px, int64_t* removed) {
  GrayImage out = mask;
  int64_t dropped = 0;
  const int64_t w = mask.width, h = mask.height;
  if (min_area_px > 1 && w > 0 && h > 0) {
    std::vector<uint8_t> seen(npix(mask), 0);
    std::vector<int64_t> region, queue;
    for (int64_t start = 0; start < w * h; ++start) {
      if (!mask.pixels[static_cast<size_t>(start)] || seen[static_cast<size_t>(start)]) continue;
      region.clear();
      queue.assign(1, start);
      seen[static_cast<size_t>(start)] = 1;
      while (!queue.empty()) {
        const int64_t p = queue.back();
        queue.pop_back();
        region.push_back(p);
        const int64_t x = p % w, y = p / w;
        for (int64_t dy = -1; dy <= 1; ++dy)
          for (int64_t dx = -1; dx <= 1; ++dx) {
            const int64_t nx = x + dx, ny = y + dy;
            if (nx < 0 || ny < 0 || nx >= w || ny >= h) continue;
            const auto q = static_cast<size_t>(ny * w + nx);
            if (mask.pixels[q] && !seen[q]) {
              seen[q] = 1;
              queue.push_back(static_cast<int64_t>(q));
            }
          }
      }
      if (static_cast<double>(region.size()) < min_area_px) {
        ++dropped;
        for (int64_t p : region) out.pixels[static_cast<size_t>(p)] = 0;
      }
    }
  }
  if (removed) *removed = dropped;
  return out;
}

GrayImage tissue_mask_from_rgb(const RgbImage& rgb, double um_per_pixel, const TissueParams& params,
                               TissueStats* stats) {
  params.validate();
  if (!(um_per_pixel > 0) || !std::isfinite(um_per_pixel))
    throw ConfigError("tissue: the image's µm per pixel must be a positive number (got " + num(um_per_pixel) + ")");
  TissueStats st;
  const size_t n = static_cast<size_t>(rgb.width * rgb.height);
  const GrayImage sat = saturation(rgb);
  auto radius = [&](double um) { return static_cast<int>(radius_px(um, um_per_pixel)); };

  // Ink: pixels of ink colour, plus the rim of real strokes (ink pieces that survive an opening,
  // so isolated dark specks of dense tissue do not count): a marker sits on the coverslip, out of
  // focus, and its blurred edge mixes ink and glass into colours H&E also has.
  GrayImage ink(rgb.width, rgb.height), strokes(rgb.width, rgb.height);
  if (params.remove_pen) {
    ink = pen_ink(rgb);
    strokes = dilate(morph_open(ink, radius(kInkSpeckUm)), radius(kInkRimUm));
    for (size_t i = 0; i < n; ++i) ink.pixels[i] |= strokes.pixels[i];
  }

  // 1-2. Candidates: neither glass nor black artefacts. Otsu sees the glass too (without it, a
  // slide whose glass is all near-white would have its tissue split in two: pale vs. dark) but
  // not black pixels or ink, so big ink strokes do not pull the threshold up.
  std::vector<uint8_t> candidate(n, 0);
  uint64_t hist[256] = {};
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* p = &rgb.pixels[3 * i];
    const int mx = std::max({p[0], p[1], p[2]}), mn = std::min({p[0], p[1], p[2]});
    if (mx <= params.black_threshold) continue;
    if (mn < params.white_threshold && mx - mn >= kMinChroma) candidate[i] = 1;
    if (!ink.pixels[i]) ++hist[sat.pixels[i]];
  }
  const int otsu = otsu_threshold(hist);
  const int floor_t = static_cast<int>(std::ceil(params.min_saturation * 255.0 - 1e-9));
  const int used = std::max(otsu, floor_t);
  st.otsu_threshold = otsu / 255.0;
  st.used_threshold = used / 255.0;

  // 3. Ink pixels that would otherwise have been tissue are dropped (and counted).
  GrayImage mask(rgb.width, rgb.height);
  for (size_t i = 0; i < n; ++i) {
    if (!candidate[i] || sat.pixels[i] < used) continue;
    if (ink.pixels[i])
      ++st.pen_pixels;
    else
      mask.pixels[i] = 255;
  }

  // 4-6. Morphology, holes, small pieces, margin; µm converted to this image's pixels. Closing,
  // hole filling and the margin would bring strokes back where tissue surrounds or touches them,
  // so strokes are cleared again after them (isolated ink-coloured specks are not: the closing
  // rightly refills those).
  auto clear_strokes = [&] {
    for (size_t i = 0; i < n; ++i)
      if (strokes.pixels[i]) mask.pixels[i] = 0;
  };
  const double px_area = um_per_pixel * um_per_pixel;
  mask = morph_close(mask, radius(params.closing_um));
  mask = morph_open(mask, radius(params.opening_um));
  mask = fill_holes(mask, params.max_hole_um2 / px_area);
  clear_strokes();
  mask = remove_small_components(mask, params.min_component_um2 / px_area, &st.removed_components);
  mask = dilate(mask, radius(params.margin_um));
  clear_strokes();

  int64_t on = 0;
  for (uint8_t v : mask.pixels) on += v ? 1 : 0;
  st.tissue_fraction = n ? static_cast<double>(on) / static_cast<double>(n) : 0.0;
  if (stats) *stats = st;
  return mask;
}

}  // namespace wsi
