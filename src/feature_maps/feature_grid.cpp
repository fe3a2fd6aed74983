// Feature-map grids, the choice of patches to show, and file stems (feature_maps.hpp): pure, no
// LibTorch, so they are unit-tested with made-up activations.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>

#include "core/vips.hpp"
#include "wsi/feature_maps.hpp"

namespace wsi {
namespace {

// Text: one line drawn by libvips (core/vips.hpp) in black over what is there, clipped to the image.
constexpr int kFontPixels = 11;
constexpr int kLineHeight = 14;  // a line of kFontPixels text and the space below it

int64_t text_width(const std::string& s) { return detail::render_text(s, kFontPixels).width; }

void draw_text(RgbImage& img, int64_t x, int64_t y, const std::string& s) {
  const detail::TextMask t = detail::render_text(s, kFontPixels);
  for (int64_t r = 0; r < std::min<int64_t>(t.height, kLineHeight); ++r)
    for (int64_t c = 0; c < t.width; ++c) {
      const int64_t px = x + c, py = y + r;
      if (px < 0 || py < 0 || px >= img.width || py >= img.height) continue;
      const int ink = t.ink[static_cast<size_t>(r * t.width + c)];
      uint8_t* q = img.at(px, py);
      for (int k = 0; k < 3; ++k) q[k] = static_cast<uint8_t>(q[k] * (255 - ink) / 255);
    }
}

std::string size_text(const FeatureLayer& l) { return std::to_string(l.height) + "x" + std::to_string(l.width); }

void check_layer(const FeatureLayer& layer, int64_t patch) {
  if (layer.channels < 1 || layer.height < 1 || layer.width < 1)
    throw std::invalid_argument("feature grid: layer '" + layer.name + "' has no activations");
  if (patch < 0 || patch >= layer.count())
    throw std::invalid_argument("feature grid: patch " + std::to_string(patch) + " of " +
                                std::to_string(layer.count()));
}

}  // namespace

std::vector<int64_t> feature_grid_channels(const FeatureLayer& layer, int64_t patch,
                                           const FeatureGridOptions& options) {
  check_layer(layer, patch);
  if (options.max_channels < 1) throw std::invalid_argument("feature grid: max_channels must be >= 1");
  std::vector<int64_t> all(static_cast<size_t>(layer.channels));
  std::iota(all.begin(), all.end(), int64_t{0});
  if (layer.channels <= options.max_channels) return all;
  const int64_t plane = layer.height * layer.width;
  const float* maps = layer.maps(patch);
  std::vector<double> mean(all.size());
  for (size_t c = 0; c < all.size(); ++c) {
    const float* m = maps + static_cast<int64_t>(c) * plane;
    mean[c] = std::accumulate(m, m + plane, 0.0) / static_cast<double>(plane);
  }
  std::stable_sort(all.begin(), all.end(),
                   [&](int64_t a, int64_t b) { return mean[static_cast<size_t>(a)] > mean[static_cast<size_t>(b)]; });
  all.resize(static_cast<size_t>(options.max_channels));
  std::sort(all.begin(), all.end());
  return all;
}

FeatureGridLayout feature_grid_layout(const FeatureLayer& layer, int64_t shown_channels, size_t title_lines,
                                      const FeatureGridOptions& options) {
  FeatureGridLayout g;
  const int64_t side = std::max(layer.height, layer.width);
  g.scale = side >= options.min_cell ? 1 : static_cast<int>((options.min_cell + side - 1) / side);
  g.cell_width = layer.width * g.scale;
  g.cell_height = layer.height * g.scale;
  const int64_t cells = shown_channels + 1;
  g.columns = static_cast<int>(std::ceil(std::sqrt(static_cast<double>(cells)) - 1e-9));
  g.rows = static_cast<int>((cells + g.columns - 1) / g.columns);
  g.title_height = FeatureGridLayout::kGap + static_cast<int64_t>(title_lines) * kLineHeight;
  g.width = FeatureGridLayout::kGap + g.columns * (g.cell_width + FeatureGridLayout::kGap);
  g.height = g.title_height + g.rows * (g.cell_height + FeatureGridLayout::kCaption + FeatureGridLayout::kGap);
  return g;
}

RgbImage render_feature_grid(const uint8_t* patch_rgb, int patch_side, const FeatureLayer& layer, int64_t patch,
                             const std::vector<std::string>& caption, const FeatureGridOptions& options) {
  if (patch_side < 1) throw std::invalid_argument("feature grid: patch side must be >= 1");
  const std::vector<int64_t> shown = feature_grid_channels(layer, patch, options);
  const auto n_shown = static_cast<int64_t>(shown.size());
  std::vector<std::string> title = {
      layer.name + ": " + layer.kind,
      std::to_string(layer.channels) + " channels of " + size_text(layer) + ", " +
          (n_shown == layer.channels
               ? std::string("all shown")
               : std::string("the ").append(std::to_string(n_shown)).append(" with the largest mean shown")),
      "each channel min-max scaled: black = its min, white = its max"};
  title.insert(title.end(), caption.begin(), caption.end());
  FeatureGridLayout g = feature_grid_layout(layer, n_shown, title.size(), options);
  for (const auto& line : title) g.width = std::max(g.width, 2 * FeatureGridLayout::kGap + text_width(line));

  RgbImage img(g.width, g.height);
  std::fill(img.pixels.begin(), img.pixels.end(), uint8_t{255});
  for (size_t i = 0; i < title.size(); ++i)
    draw_text(img, FeatureGridLayout::kGap, FeatureGridLayout::kGap + static_cast<int64_t>(i) * kLineHeight, title[i]);

  const auto caption_at = [&](int cell, const std::string& text) {
    draw_text(img, g.cell_x(cell), g.cell_y(cell) + g.cell_height + 2, text);
  };
  // Cell 0: the patch, nearest-resampled to the cell (PIL's NEAREST index rule, as preprocess()).
  for (int64_t y = 0; y < g.cell_height; ++y) {
    const auto sy =
        static_cast<int64_t>((static_cast<double>(y) + 0.5) * patch_side / static_cast<double>(g.cell_height));
    for (int64_t x = 0; x < g.cell_width; ++x) {
      const auto sx =
          static_cast<int64_t>((static_cast<double>(x) + 0.5) * patch_side / static_cast<double>(g.cell_width));
      std::copy_n(patch_rgb + (sy * patch_side + sx) * 3, 3, img.at(g.cell_x(0) + x, g.cell_y(0) + y));
    }
  }
  caption_at(0, "input");

  const int64_t plane = layer.height * layer.width;
  const float* maps = layer.maps(patch);
  std::vector<uint8_t> grey(static_cast<size_t>(plane));
  for (int64_t k = 0; k < n_shown; ++k) {
    const int64_t c = shown[static_cast<size_t>(k)];
    const float* m = maps + c * plane;
    const auto [lo, hi] = std::minmax_element(m, m + plane);
    const double min = *lo, range = static_cast<double>(*hi) - min;
    for (int64_t i = 0; i < plane; ++i)
      grey[static_cast<size_t>(i)] =
          range > 0 ? static_cast<uint8_t>(std::lround(255.0 * (static_cast<double>(m[i]) - min) / range)) : 0;
    const int cell = static_cast<int>(k + 1);
    const int64_t ox = g.cell_x(cell), oy = g.cell_y(cell);
    for (int64_t y = 0; y < g.cell_height; ++y)
      for (int64_t x = 0; x < g.cell_width; ++x) {
        const uint8_t v = grey[static_cast<size_t>((y / g.scale) * layer.width + x / g.scale)];
        uint8_t* q = img.at(ox + x, oy + y);
        q[0] = q[1] = q[2] = v;
      }
    caption_at(cell, std::to_string(c));
  }
  return img;
}

std::vector<int64_t> choose_feature_map_patches(const std::vector<float>& probabilities, const std::vector<int>& labels,
                                                int64_t n) {
  if (!labels.empty() && labels.size() != probabilities.size())
    throw std::invalid_argument("choose_feature_map_patches: " + std::to_string(labels.size()) + " labels for " +
                                std::to_string(probabilities.size()) + " probabilities");
  const auto total = static_cast<int64_t>(probabilities.size());
  n = std::clamp<int64_t>(n, 0, total);
  // Groups ordered from the most confident correct prediction to the least: tumour (or, without
  // labels, every patch) by falling probability, normal by rising probability.
  std::vector<int64_t> tumour, normal;
  for (int64_t i = 0; i < total; ++i) (labels.empty() || labels[static_cast<size_t>(i)] ? tumour : normal).push_back(i);
  const auto p = [&](int64_t i) { return probabilities[static_cast<size_t>(i)]; };
  std::stable_sort(tumour.begin(), tumour.end(), [&](int64_t a, int64_t b) { return p(a) > p(b); });
  std::stable_sort(normal.begin(), normal.end(), [&](int64_t a, int64_t b) { return p(a) < p(b); });
  const auto nt = static_cast<int64_t>(tumour.size()), nn = static_cast<int64_t>(normal.size());
  int64_t want_t = nt && nn ? (n + 1) / 2 : (nt ? n : 0), want_n = n - want_t;
  if (want_t > nt) want_n += want_t - nt, want_t = nt;  // one class too small: the other takes its share
  if (want_n > nn) want_t += want_n - nn, want_n = nn;
  std::vector<int64_t> out;
  const auto spread = [&](const std::vector<int64_t>& group, int64_t m) {
    const auto size = static_cast<int64_t>(group.size());
    for (int64_t k = 0; k < m; ++k) {
      const int64_t at = m == 1 ? 0 : std::llround(static_cast<double>(k * (size - 1)) / static_cast<double>(m - 1));
      out.push_back(group[static_cast<size_t>(at)]);
    }
  };
  spread(tumour, want_t);
  spread(normal, want_n);
  return out;
}

std::string feature_map_file_stem(const std::string& id) {
  if (id.empty()) return "patch";
  std::string s = id;
  for (char& c : s) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
    if (!ok) c = '_';
  }
  return s;
}

}  // namespace wsi
