// The heatmap's overlay and thumbnail, strip by strip (overlay.hpp).
#include "wsi/overlay.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "wsi/error.hpp"

namespace wsi {
namespace {

// The thumbnail's running sums: each overlay pixel adds to the thumbnail pixel it maps to.
class ThumbnailSums {
 public:
  ThumbnailSums(const RasterGeometry& overlay, int64_t longest_side) : overlay_(overlay) {
    const int64_t longest = std::max(overlay.width, overlay.height);
    const int64_t side = std::min(std::max<int64_t>(1, longest_side), longest);
    width_ = std::max<int64_t>(1, overlay.width * side / longest);
    height_ = std::max<int64_t>(1, overlay.height * side / longest);
    sum_.assign(static_cast<size_t>(width_ * height_ * 3), 0);
    count_.assign(static_cast<size_t>(width_ * height_), 0);
  }

  // Overlay rows [v0, v0 + rows) as RGB.
  void add(const uint8_t* rgb, int64_t v0, int64_t rows) {
    const int64_t ow = overlay_.width;
    for (int64_t v = 0; v < rows; ++v) {
      const int64_t tv = (v0 + v) * height_ / overlay_.height;
      for (int64_t u = 0; u < ow; ++u) {
        const auto t = static_cast<size_t>(tv * width_ + u * width_ / ow);
        for (size_t c = 0; c < 3; ++c) sum_[t * 3 + c] += rgb[static_cast<size_t>(v * ow + u) * 3 + c];
        ++count_[t];
      }
    }
  }

  RgbImage image() const {
    RgbImage thumb(width_, height_);
    for (size_t t = 0; t < count_.size(); ++t)
      for (size_t c = 0; c < 3; ++c)
        thumb.pixels[t * 3 + c] =
            count_[t] ? static_cast<uint8_t>((sum_[t * 3 + c] + count_[t] / 2) / count_[t]) : uint8_t{255};
    return thumb;
  }

 private:
  RasterGeometry overlay_;
  int64_t width_ = 1, height_ = 1;
  std::vector<uint64_t> sum_, count_;
};

// The slide's pixels under overlay rows [v0, v0 + rows), box-averaged to the overlay's grid.
// Level pixels covering level-0 [0, width * d) x [v0 * d, (v0 + rows) * d) (inside the slide:
// stitch.hpp); white where they cannot be decoded.
void read_strip(const PatchSource& slide, const OverlayGeometry& g, int64_t v0, int64_t rows,
                std::vector<uint8_t>& level_rgb, std::vector<uint8_t>& out) {
  const RasterGeometry& og = g.overlay;
  const int64_t y0 = v0 * og.pixel, y1 = (v0 + rows) * og.pixel;
  Region r;
  r.level = g.level;
  r.x = 0;
  r.y = y0;
  r.w = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(static_cast<double>(og.width * og.pixel) / g.downsample)));
  r.h = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(static_cast<double>(y1 - y0) / g.downsample)));
  level_rgb.assign(static_cast<size_t>(r.w * r.h * 3), 255);
  try {
    slide.read_region(r, level_rgb.data());
  } catch (const RegionReadError&) {
    std::fill(level_rgb.begin(), level_rgb.end(), uint8_t{255});  // stays white
  }
  out.resize(static_cast<size_t>(og.width * rows * 3));
  box_resample(level_rgb.data(), r.w, r.h, out.data(), og.width, rows);
}

// Each overlay pixel's probability: that of the probability raster cell its centre falls in.
void sample_strip(const OverlayGeometry& g, const std::vector<float>& probabilities, int64_t v0, int64_t rows,
                  std::vector<float>& values) {
  const RasterGeometry& og = g.overlay;
  const RasterGeometry& pg = g.probability;
  const auto opx = static_cast<double>(og.pixel), ppx = static_cast<double>(pg.pixel);
  values.resize(static_cast<size_t>(og.width * rows));
  for (int64_t v = 0; v < rows; ++v) {
    const double cy = (static_cast<double>(v0 + v) + 0.5) * opx;
    const auto pv = std::min(pg.height - 1, static_cast<int64_t>(cy / ppx));
    for (int64_t u = 0; u < og.width; ++u) {
      const double cx = (static_cast<double>(u) + 0.5) * opx;
      const auto pu = std::min(pg.width - 1, static_cast<int64_t>(cx / ppx));
      values[static_cast<size_t>(v * og.width + u)] = probabilities[static_cast<size_t>(pv * pg.width + pu)];
    }
  }
}

}  // namespace

void box_resample(const uint8_t* src, int64_t w, int64_t h, uint8_t* dst, int64_t dw, int64_t dh) {
  for (int64_t v = 0; v < dh; ++v) {
    const int64_t y0 = v * h / dh, y1 = std::max(y0 + 1, (v + 1) * h / dh);
    for (int64_t u = 0; u < dw; ++u) {
      const int64_t x0 = u * w / dw, x1 = std::max(x0 + 1, (u + 1) * w / dw);
      uint32_t s[3] = {0, 0, 0};
      for (int64_t y = y0; y < y1; ++y)
        for (int64_t x = x0; x < x1; ++x)
          for (int c = 0; c < 3; ++c) s[c] += src[(y * w + x) * 3 + c];
      const auto n = static_cast<uint32_t>((y1 - y0) * (x1 - x0));
      for (int c = 0; c < 3; ++c) dst[(v * dw + u) * 3 + c] = static_cast<uint8_t>((s[c] + n / 2) / n);
    }
  }
}

RgbImage render_overlay(const PatchSource& slide, const OverlayGeometry& geometry, const std::vector<float>& probabilities,
                        const OverlayStyle& style,
                        const std::function<void(const uint8_t* rgb, int64_t rows)>& write_rows) {
  const RasterGeometry& og = geometry.overlay;
  const RasterGeometry& pg = geometry.probability;
  if (og.width < 1 || og.height < 1 || og.pixel < 1 || pg.width < 1 || pg.height < 1 || pg.pixel < 1 ||
      geometry.downsample <= 0 || probabilities.size() != static_cast<size_t>(pg.width * pg.height))
    throw std::invalid_argument("render_overlay: the probabilities do not fit their geometry");
  ThumbnailSums thumb(og, style.thumbnail_longest_side);
  // Strips of at most ~512 rows of the level read (bounded memory even without a pyramid).
  const int64_t strip = std::clamp<int64_t>(
      static_cast<int64_t>(512.0 * geometry.downsample / static_cast<double>(og.pixel)), 1, 64);
  std::vector<uint8_t> level_rgb, base_rgb, blended;
  std::vector<float> values;
  for (int64_t v0 = 0; v0 < og.height; v0 += strip) {
    const int64_t rows = std::min(strip, og.height - v0);
    read_strip(slide, geometry, v0, rows, level_rgb, base_rgb);
    sample_strip(geometry, probabilities, v0, rows, values);
    blended.resize(base_rgb.size());
    blend_overlay(base_rgb.data(), values.data(), og.width * rows, style.alpha, blended.data(), style.min_value);
    write_rows(blended.data(), rows);
    thumb.add(blended.data(), v0, rows);
  }
  return thumb.image();
}

}  // namespace wsi
