// Ground truth sources: mask slides read at the pyramid level a window needs, and polygons
// scan-filled per window. Neither ever holds a full-resolution raster.
#include <algorithm>
#include <cmath>
#include <sstream>

#include "wsi/error.hpp"
#include "wsi/labels.hpp"
#include "wsi/slide.hpp"

namespace wsi {
namespace fs = std::filesystem;

namespace {

class MaskTruth final : public GroundTruth {
 public:
  MaskTruth(const fs::path& path, const Slide& slide, const MaskValueMap& values)
      : mask_(path), values_(values) {
    const int64_t sw = slide.width(), sh = slide.height(), mw = mask_.width(), mh = mask_.height();
    if (mw == sw && mh == sh) {
      factor_ = 1;
    } else {
      // A known downsample: the same integer factor in x and y, up to one mask pixel of rounding
      // (pyramid writers round odd sizes either way).
      const int64_t f = mw > 0 ? std::llround(static_cast<double>(sw) / static_cast<double>(mw)) : 0;
      const bool fits = f >= 2 && std::llabs(mw * f - sw) <= f && std::llabs(mh * f - sh) <= f;
      if (!fits) {
        std::ostringstream m;
        m << "mask " << path.string() << " is " << mw << "x" << mh << " but the slide " << slide.path().string()
          << " is " << sw << "x" << sh
          << ", and that is not an integer downsample of it; export the mask at the slide's level-0 size (or an "
             "exact 2^k downsample), or check that the mask belongs to this slide";
        throw ConfigError(m.str());
      }
      factor_ = static_cast<double>(f);
    }
  }

  GrayImage classes(double x0, double y0, double scale, int64_t w, int64_t h) const override {
    GrayImage out(w, h, kClassNormal);
    if (w <= 0 || h <= 0) return out;
    // Into the mask's level-0 frame, then the coarsest mask level that still has one pixel per
    // sample (never coarser, so a thin tumour strip is not averaged away).
    const double mx0 = x0 / factor_, my0 = y0 / factor_, ms = scale / factor_;
    const auto& levels = mask_.levels();
    int level = 0;
    for (int l = 1; l < static_cast<int>(levels.size()); ++l)
      if (levels[static_cast<size_t>(l)].downsample <= ms * (1 + 1e-3)) level = l;
    const LevelInfo& info = levels[static_cast<size_t>(level)];
    const double ds = info.downsample;
    // Level-pixel index of each sample's centre; samples outside the mask are normal.
    auto index = [&](double origin, int64_t i) {
      return static_cast<int64_t>(std::floor((origin + (static_cast<double>(i) + 0.5) * ms) / ds));
    };
    const int64_t lx0 = std::max<int64_t>(0, index(mx0, 0)), ly0 = std::max<int64_t>(0, index(my0, 0));
    const int64_t lx1 = std::min<int64_t>(info.width - 1, index(mx0, w - 1));
    const int64_t ly1 = std::min<int64_t>(info.height - 1, index(my0, h - 1));
    if (lx1 < lx0 || ly1 < ly0) return out;
    // Level-0 origin whose floor(x / ds) is exactly lx0 (readers map level-0 x to floor(x / ds)).
    const auto origin = [&](int64_t l) { return static_cast<int64_t>(std::ceil(static_cast<double>(l) * ds - 1e-9)); };
    const Region r{level, origin(lx0), origin(ly0), lx1 - lx0 + 1, ly1 - ly0 + 1};
    const RgbImage px = mask_.read_region(r);
    for (int64_t j = 0; j < h; ++j) {
      const int64_t ly = index(my0, j);
      if (ly < ly0 || ly > ly1) continue;
      for (int64_t i = 0; i < w; ++i) {
        const int64_t lx = index(mx0, i);
        if (lx < lx0 || lx > lx1) continue;
        out.at(i, j) = values_.cls[px.at(lx - lx0, ly - ly0)[0]];
      }
    }
    return out;
  }

  std::string describe() const override {
    std::ostringstream s;
    s << "mask " << mask_.path().string() << " (" << mask_.width() << "x" << mask_.height() << ", downsample "
      << factor_ << " of the slide, " << mask_.level_count() << " levels)";
    return s.str();
  }

 private:
  Slide mask_;
  MaskValueMap values_;
  double factor_ = 1;  // slide level-0 pixels per mask level-0 pixel
};

class AnnotationTruth final : public GroundTruth {
 public:
  AnnotationTruth(AnnotationSet set, const Slide& slide) : set_(std::move(set)) {
    const double w = static_cast<double>(slide.width()), h = static_cast<double>(slide.height());
    bool overlaps = false;
    for (const Shape& s : set_.shapes) {
      if (s.max_x > 0 && s.max_y > 0 && s.min_x < w && s.min_y < h) overlaps = true;
      if (s.min_x < 0 || s.min_y < 0 || s.max_x > w || s.max_y > h) ++outside_;
    }
    if (!set_.shapes.empty() && !overlaps) {
      std::ostringstream m;
      m << "annotations " << set_.source.string() << ": none of the " << set_.shapes.size()
        << " shapes overlaps the slide " << slide.path().string() << " (" << slide.width() << "x" << slide.height()
        << " level-0 pixels; shapes span x " << set_.min_x() << ".." << set_.max_x() << ", y " << set_.min_y()
        << ".." << set_.max_y()
        << "). Check that they belong to this slide, or pass --annotation-scale when the slide is a downsampled "
           "export (e.g. 32 for a level-5 Camelyon TIFF)";
      throw ConfigError(m.str());
    }
  }

  GrayImage classes(double x0, double y0, double scale, int64_t w, int64_t h) const override {
    return rasterize(set_, x0, y0, scale, w, h);
  }

  std::string describe() const override {
    std::ostringstream s;
    s << set_.format << " " << set_.source.string() << " (" << set_.shapes.size() << " shapes";
    if (outside_) s << ", " << outside_ << " reaching outside the slide";
    s << ")";
    return s.str();
  }

 private:
  AnnotationSet set_;
  int64_t outside_ = 0;
};

}  // namespace

std::unique_ptr<GroundTruth> make_mask_truth(const fs::path& mask, const Slide& slide, const MaskValueMap& values) {
  return std::make_unique<MaskTruth>(mask, slide, values);
}

std::unique_ptr<GroundTruth> make_annotation_truth(AnnotationSet annotations, const Slide& slide) {
  return std::make_unique<AnnotationTruth>(std::move(annotations), slide);
}

}  // namespace wsi
