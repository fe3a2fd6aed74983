// Camelyon16 lesion-level FROC (see metrics.hpp for the definition and the official script).
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <queue>
#include <sstream>
#include <string>

#include "wsi/error.hpp"
#include "wsi/metrics.hpp"

namespace wsi {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// 1-D squared Euclidean distance transform of f (Felzenszwalb & Huttenlocher).
void dt1d(const std::vector<double>& f, std::vector<double>& d, std::vector<int64_t>& v, std::vector<double>& z) {
  const auto n = static_cast<int64_t>(f.size());
  int64_t k = 0;
  v[0] = 0;
  z[0] = -kInf;
  z[1] = kInf;
  for (int64_t q = 1; q < n; ++q) {
    if (f[static_cast<size_t>(q)] == kInf) continue;
    while (true) {
      const int64_t p = v[static_cast<size_t>(k)];
      if (f[static_cast<size_t>(p)] == kInf) {  // no parabola yet: replace it
        v[static_cast<size_t>(k)] = q;
        break;
      }
      const double s = ((f[static_cast<size_t>(q)] + static_cast<double>(q * q)) -
                        (f[static_cast<size_t>(p)] + static_cast<double>(p * p))) /
                       (2.0 * static_cast<double>(q - p));
      if (s <= z[static_cast<size_t>(k)] && k > 0) {
        --k;
        continue;
      }
      ++k;
      v[static_cast<size_t>(k)] = q;
      z[static_cast<size_t>(k)] = s;
      z[static_cast<size_t>(k + 1)] = kInf;
      break;
    }
  }
  k = 0;
  for (int64_t q = 0; q < n; ++q) {
    while (z[static_cast<size_t>(k + 1)] < static_cast<double>(q)) ++k;
    const int64_t p = v[static_cast<size_t>(k)];
    const double fp = f[static_cast<size_t>(p)];
    d[static_cast<size_t>(q)] = fp == kInf ? kInf : static_cast<double>((q - p) * (q - p)) + fp;
  }
}

// Squared distance of every pixel to the nearest non-zero pixel of `mask`.
std::vector<double> squared_distance(const std::vector<uint8_t>& mask, int64_t w, int64_t h) {
  std::vector<double> g(static_cast<size_t>(w * h));
  for (size_t i = 0; i < g.size(); ++i) g[i] = mask[i] ? 0.0 : kInf;
  const int64_t n = std::max(w, h);
  std::vector<double> f(static_cast<size_t>(n)), d(static_cast<size_t>(n)), z(static_cast<size_t>(n + 1));
  std::vector<int64_t> v(static_cast<size_t>(n));
  for (int64_t x = 0; x < w; ++x) {  // columns
    f.resize(static_cast<size_t>(h));
    d.resize(static_cast<size_t>(h));
    for (int64_t y = 0; y < h; ++y) f[static_cast<size_t>(y)] = g[static_cast<size_t>(y * w + x)];
    dt1d(f, d, v, z);
    for (int64_t y = 0; y < h; ++y) g[static_cast<size_t>(y * w + x)] = d[static_cast<size_t>(y)];
  }
  for (int64_t y = 0; y < h; ++y) {  // rows
    f.assign(g.begin() + y * w, g.begin() + (y + 1) * w);
    d.resize(static_cast<size_t>(w));
    dt1d(f, d, v, z);
    std::copy(d.begin(), d.end(), g.begin() + y * w);
  }
  return g;
}

}  // namespace

LesionMap camelyon_lesion_map(const std::vector<uint8_t>& mask, int64_t width, int64_t height, double um_per_pixel) {
  if (width <= 0 || height <= 0 || mask.size() != static_cast<size_t>(width * height))
    throw ConfigError("FROC: the ground-truth mask must hold width x height values");
  if (!(um_per_pixel > 0)) throw ConfigError("FROC: the mask's micrometres per pixel must be positive");
  LesionMap m;
  m.width = width;
  m.height = height;
  // Official: distance < 75 / (resolution * 2^level * 2) pixels.
  const double r = 75.0 / (um_per_pixel * 2.0);
  const auto d2 = squared_distance(mask, width, height);
  std::vector<uint8_t> in(d2.size());
  // sqrt of the exact integer squared distance, compared as the script compares it.
  for (size_t i = 0; i < d2.size(); ++i) in[i] = std::sqrt(d2[i]) < r;
  // Fill holes: background not 4-connected to the border becomes lesion.
  std::vector<uint8_t> outside(in.size(), 0);
  std::queue<int64_t> q;
  auto seed = [&](int64_t x, int64_t y) {
    const auto i = static_cast<size_t>(y * width + x);
    if (!in[i] && !outside[i]) outside[i] = 1, q.push(static_cast<int64_t>(i));
  };
  for (int64_t x = 0; x < width; ++x) seed(x, 0), seed(x, height - 1);
  for (int64_t y = 0; y < height; ++y) seed(0, y), seed(width - 1, y);
  while (!q.empty()) {
    const int64_t i = q.front();
    q.pop();
    const int64_t x = i % width, y = i / width;
    if (x > 0) seed(x - 1, y);
    if (x + 1 < width) seed(x + 1, y);
    if (y > 0) seed(x, y - 1);
    if (y + 1 < height) seed(x, y + 1);
  }
  // Label 8-connected lesions; second moments about the centroid in two passes, as
  // scikit-image's moments_central takes them.
  m.labels.assign(in.size(), 0);
  const double itc_axis_px = 275.0 / um_per_pixel;  // the script's 275 / (resolution * 2^level)
  int32_t next = 0;
  std::vector<int64_t> pixels;
  for (int64_t start = 0; start < width * height; ++start) {
    if (outside[static_cast<size_t>(start)] || m.labels[static_cast<size_t>(start)]) continue;
    const int32_t id = ++next;
    pixels.clear();
    m.labels[static_cast<size_t>(start)] = id;
    q.push(start);
    while (!q.empty()) {
      const int64_t i = q.front();
      q.pop();
      pixels.push_back(i);
      for (int64_t dy = -1; dy <= 1; ++dy)
        for (int64_t dx = -1; dx <= 1; ++dx) {
          const int64_t nx = i % width + dx, ny = i / width + dy;
          if (nx < 0 || ny < 0 || nx >= width || ny >= height) continue;
          const auto j = static_cast<size_t>(ny * width + nx);
          if (outside[j] || m.labels[j]) continue;
          m.labels[j] = id;
          q.push(static_cast<int64_t>(j));
        }
    }
    const auto n = static_cast<double>(pixels.size());
    double sx = 0, sy = 0;
    for (const int64_t i : pixels) sx += static_cast<double>(i % width), sy += static_cast<double>(i / width);
    const double mx = sx / n, my = sy / n;
    double cxx = 0, cyy = 0, cxy = 0;
    for (const int64_t i : pixels) {
      const double x = static_cast<double>(i % width) - mx, y = static_cast<double>(i / width) - my;
      cxx += x * x, cyy += y * y, cxy += x * y;
    }
    cxx /= n, cyy /= n, cxy /= n;
    // Major axis of the ellipse with the same second central moments: 4 * sqrt(largest eigenvalue).
    const double l1 = (cxx + cyy) / 2 + std::sqrt(std::max(0.0, (cxx - cyy) * (cxx - cyy) / 4 + cxy * cxy));
    m.itc.push_back(4.0 * std::sqrt(std::max(0.0, l1)) < itc_axis_px);
  }
  return m;
}

namespace {

constexpr double kFrocAt[6] = {0.25, 0.5, 1, 2, 4, 8};

FrocResult corrected_froc(const std::vector<SlideTruth>& truth, const std::vector<std::vector<Detection>>& detections) {
  FrocResult r;
  r.definition = FrocDefinition::corrected;
  std::vector<double> fp_probs, tp_probs;
  for (size_t s = 0; s < truth.size(); ++s) {
    const LesionMap& lm = truth[s].lesions;
    std::map<int32_t, double> best;
    for (const Detection& d : detections[s]) {
      const auto x = static_cast<int64_t>(std::floor(d.x / truth[s].downsample));
      const auto y = static_cast<int64_t>(std::floor(d.y / truth[s].downsample));
      const int32_t id = (x >= 0 && y >= 0 && x < lm.width && y < lm.height)
                             ? lm.labels[static_cast<size_t>(y * lm.width + x)]
                             : 0;
      if (id == 0) {
        fp_probs.push_back(d.probability);
      } else if (!lm.itc[static_cast<size_t>(id - 1)]) {
        auto [it, fresh] = best.emplace(id, d.probability);
        if (!fresh) it->second = std::max(it->second, d.probability);
      }
    }
    for (const auto& [id, p] : best) tp_probs.push_back(p);
    r.lesions += std::count(lm.itc.begin(), lm.itc.end(), false);
  }
  std::vector<double> all = fp_probs;
  all.insert(all.end(), tp_probs.begin(), tp_probs.end());
  std::sort(all.begin(), all.end());
  all.erase(std::unique(all.begin(), all.end()), all.end());
  std::sort(fp_probs.begin(), fp_probs.end());
  std::sort(tp_probs.begin(), tp_probs.end());
  const double slides = static_cast<double>(truth.size());
  for (double t : all) {
    const auto at_least = [t](const std::vector<double>& v) {
      return static_cast<double>(v.end() - std::lower_bound(v.begin(), v.end(), t));
    };
    r.thresholds.push_back(t);
    r.avg_false_positives.push_back(at_least(fp_probs) / slides);
    r.sensitivity.push_back(r.lesions ? at_least(tp_probs) / static_cast<double>(r.lesions) : 0.0);
  }
  // numpy.interp over the curve by increasing average FPs (thresholds descending).
  std::vector<std::pair<double, double>> pts;
  for (size_t i = r.thresholds.size(); i-- > 0;) pts.push_back({r.avg_false_positives[i], r.sensitivity[i]});
  double sum = 0;
  for (int k = 0; k < 6; ++k) {
    double v = 0;
    if (!pts.empty()) {
      if (kFrocAt[k] < pts.front().first) {
        v = pts.front().second;
      } else if (kFrocAt[k] >= pts.back().first) {
        v = pts.back().second;
      } else {
        const auto hi = std::upper_bound(pts.begin(), pts.end(), kFrocAt[k],
                                         [](double x, const std::pair<double, double>& p) { return x < p.first; });
        const auto lo = hi - 1;
        const double f = (kFrocAt[k] - lo->first) / (hi->first - lo->first);
        v = lo->second + f * (hi->second - lo->second);
      }
    }
    r.sensitivity_at[k] = v;
    sum += v;
  }
  r.score = sum / 6;
  return r;
}

std::string slide_label(const SlideTruth& t, size_t index) {
  return t.name.empty() ? "slide " + std::to_string(index + 1) : "slide " + t.name;
}

// numpy.interp(x, xp, fp) for non-decreasing xp, as numpy 1.x computes it (compiled_base.c): the
// last index j with xp[j] <= x; exact hits and the right end take fp[j]; left of xp[0], fp[0].
double numpy_interp(double x, const std::vector<double>& xp, const std::vector<double>& fp) {
  const size_t n = xp.size();
  if (x > xp[n - 1]) return fp[n - 1];
  if (x < xp[0]) return fp[0];
  const auto j = static_cast<size_t>(std::upper_bound(xp.begin(), xp.end(), x) - xp.begin()) - 1;
  if (j == n - 1 || xp[j] == x) return fp[j];
  const double slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j]);
  return slope * (x - xp[j]) + fp[j];
}

FrocResult official_froc(const std::vector<SlideTruth>& truth, const std::vector<std::vector<Detection>>& detections) {
  FrocResult r;
  r.definition = FrocDefinition::official;
  std::vector<double> fp_probs;  // as read: Python floats
  std::vector<float> scores;     // one per lesion label of every slide, ITCs and missed ones included
  for (size_t s = 0; s < truth.size(); ++s) {
    const LesionMap& lm = truth[s].lesions;
    if (lm.lesions() == 0) {  // the script's normal-slide branch: no lookup
      for (const Detection& d : detections[s]) fp_probs.push_back(d.probability);
      continue;
    }
    std::vector<float> score(static_cast<size_t>(lm.lesions()), 0.0f);
    for (const Detection& d : detections[s]) {
      const double x = std::trunc(d.x / truth[s].downsample), y = std::trunc(d.y / truth[s].downsample);
      if (!(x >= 0 && y >= 0 && x < static_cast<double>(lm.width) && y < static_cast<double>(lm.height))) {
        std::ostringstream m;
        m << "FROC: " << slide_label(truth[s], s) << ": the detection at x=" << d.x << ", y=" << d.y << " (probability "
          << d.probability << ") falls outside its " << lm.width << " x " << lm.height << " lesion map (downsample "
          << truth[s].downsample << "), where the official Camelyon16 script fails (or wraps round, for negative "
          << "coordinates); check that the detections are in this slide's level-0 pixels (the corrected FROC counts "
          << "such a detection as a false positive)";
        throw ConfigError(m.str());
      }
      const int32_t id = lm.labels[static_cast<size_t>(static_cast<int64_t>(y) * lm.width + static_cast<int64_t>(x))];
      if (id == 0) {
        fp_probs.push_back(d.probability);
      } else if (!lm.itc[static_cast<size_t>(id - 1)]) {
        float& best = score[static_cast<size_t>(id - 1)];
        if (d.probability > static_cast<double>(best)) best = static_cast<float>(d.probability);
      }
    }
    scores.insert(scores.end(), score.begin(), score.end());
    r.lesions += std::count(lm.itc.begin(), lm.itc.end(), false);
  }
  std::vector<double> all = fp_probs;
  for (const float v : scores) all.push_back(static_cast<double>(v));
  std::sort(all.begin(), all.end());
  all.erase(std::unique(all.begin(), all.end()), all.end());
  std::sort(fp_probs.begin(), fp_probs.end());
  std::sort(scores.begin(), scores.end());
  const double slides = static_cast<double>(truth.size());
  const auto sensitivity = [&](double true_positives) {
    return r.lesions ? true_positives / static_cast<double>(r.lesions) : 0.0;  // the script: 0 / 0
  };
  for (size_t k = 1; k < all.size(); ++k) {  // all_probs[1:]
    const double t = all[k];
    const auto fps = fp_probs.end() - std::lower_bound(fp_probs.begin(), fp_probs.end(), t);
    const auto tps = scores.end() - std::lower_bound(scores.begin(), scores.end(), static_cast<float>(t));
    r.thresholds.push_back(t);
    r.avg_false_positives.push_back(static_cast<double>(fps) / slides);
    r.sensitivity.push_back(sensitivity(static_cast<double>(tps)));
  }
  r.thresholds.push_back(kInf);
  r.avg_false_positives.push_back(0);
  r.sensitivity.push_back(0);
  const std::vector<double> xp(r.avg_false_positives.rbegin(), r.avg_false_positives.rend());
  const std::vector<double> yp(r.sensitivity.rbegin(), r.sensitivity.rend());
  double sum = 0;
  for (int k = 0; k < 6; ++k) sum += r.sensitivity_at[k] = numpy_interp(kFrocAt[k], xp, yp);
  r.score = sum / 6;
  return r;
}

}  // namespace

const char* froc_definition_name(FrocDefinition d) { return d == FrocDefinition::official ? "official" : "corrected"; }

FrocResult camelyon_froc(const std::vector<SlideTruth>& truth, const std::vector<std::vector<Detection>>& detections,
                         FrocDefinition definition) {
  if (truth.size() != detections.size())
    throw ConfigError("FROC: " + std::to_string(truth.size()) + " ground truths but " +
                      std::to_string(detections.size()) + " detection lists");
  if (truth.empty()) throw ConfigError("FROC: no slides");
  return definition == FrocDefinition::official ? official_froc(truth, detections) : corrected_froc(truth, detections);
}

}  // namespace wsi
