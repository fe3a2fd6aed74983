// The heatmap's overlay and thumbnail (overlay.hpp) over a slide held in memory: box means,
// which probability cell colours which overlay pixel, strips in order, white for unreadable
// strips, the thumbnail's size and means.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <functional>
#include <limits>
#include <stdexcept>
#include <utility>
#include <vector>

#include "wsi/error.hpp"
#include "wsi/heatmap_io.hpp"
#include "wsi/overlay.hpp"

namespace wsi {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// Level 0 only (downsample 1): pixel (x, y) is colour(x, y); throws for every read when `broken`.
class MemorySlide final : public PatchSource {
 public:
  explicit MemorySlide(std::function<std::array<uint8_t, 3>(int64_t, int64_t)> colour, bool broken = false)
      : colour_(std::move(colour)), broken_(broken) {}
  void read_region(const Region& r, uint8_t* rgb) const override {
    if (broken_) throw RegionReadError("memory.tif", r, "cannot decode");
    for (int64_t y = 0; y < r.h; ++y)
      for (int64_t x = 0; x < r.w; ++x) {
        const auto c = colour_(r.x + x, r.y + y);
        for (size_t k = 0; k < 3; ++k) rgb[static_cast<size_t>((y * r.w + x) * 3) + k] = c[k];
      }
  }

 private:
  std::function<std::array<uint8_t, 3>(int64_t, int64_t)> colour_;
  bool broken_;
};

struct Rendered {
  std::vector<uint8_t> overlay;  // all strips, top to bottom
  std::vector<int64_t> strips;   // rows per strip
  RgbImage thumb;
};

Rendered render(const PatchSource& slide, const OverlayGeometry& g, const std::vector<float>& p,
                const OverlayStyle& style = {}) {
  Rendered r;
  r.thumb = render_overlay(slide, g, p, style, [&](const uint8_t* rgb, int64_t rows) {
    r.overlay.insert(r.overlay.end(), rgb, rgb + g.overlay.width * rows * 3);
    r.strips.push_back(rows);
  });
  return r;
}

TEST(Overlay, BoxResampleGivesTheRoundedMeanOfEachBlock) {
  // 4 x 2 grey-ish pixels into 2 x 1: blocks {10, 20, 30, 41} and {0, 0, 255, 1}.
  const std::vector<uint8_t> src = {10, 10, 10, 20, 20, 20, 0, 0, 0, 0, 0, 0,  //
                                    30, 30, 30, 41, 41, 41, 255, 255, 255, 1, 1, 1};
  std::vector<uint8_t> dst(6);
  box_resample(src.data(), 4, 2, dst.data(), 2, 1);
  EXPECT_EQ(dst, (std::vector<uint8_t>{25, 25, 25, 64, 64, 64}));  // 101/4 = 25.25, 256/4 = 64
}

TEST(Overlay, EachPixelIsBlendedWithTheProbabilityCellItsCentreFallsIn) {
  const MemorySlide slide([](int64_t, int64_t) { return std::array<uint8_t, 3>{100, 150, 200}; });
  OverlayGeometry g;
  g.overlay = {6, 4, 2};      // 12 x 8 level-0 pixels
  g.probability = {3, 2, 4};  // the same extent in 4 x 4 cells
  const std::vector<float> p = {kNaN, 0.9f, 0.2f,  //
                                1.0f, kNaN, kNaN};
  OverlayStyle style;
  style.alpha = 0.5;
  style.min_value = 0.5;
  const Rendered r = render(slide, g, p, style);
  ASSERT_EQ(r.overlay.size(), size_t{6 * 4 * 3});
  const uint8_t grey[3] = {100, 150, 200};
  for (int64_t v = 0; v < 4; ++v)
    for (int64_t u = 0; u < 6; ++u) {
      // Overlay pixel u covers level-0 [2u, 2u + 2): its centre 2u + 1 is in cell (2u + 1) / 4.
      const float value = p[static_cast<size_t>((2 * v + 1) / 4 * 3 + (2 * u + 1) / 4)];
      uint8_t expected[3];
      blend_overlay(grey, &value, 1, 0.5, expected, 0.5);
      const size_t at = static_cast<size_t>(v * 6 + u) * 3;
      for (size_t c = 0; c < 3; ++c) EXPECT_EQ(r.overlay[at + c], expected[c]) << "u=" << u << " v=" << v;
    }
  // Below min_value and NaN leave the slide; 0.9 and 1.0 colour it.
  EXPECT_EQ(r.overlay[(0 * 6 + 5) * 3], 100);  // 0.2
  EXPECT_NE(r.overlay[(0 * 6 + 2) * 3], 100);  // 0.9
}

TEST(Overlay, StripsCoverEveryRowOnceTopToBottom) {
  // Strips of 512 * downsample / pixel = 8 overlay rows: 20 rows come as 8, 8, 4. Each 64 x 64
  // block of the slide is one colour (green = 10 per block row), so row v's box mean is 10 v.
  const MemorySlide slide([](int64_t, int64_t y) {
    return std::array<uint8_t, 3>{0, static_cast<uint8_t>(y / 64 * 10), 0};
  });
  OverlayGeometry g;
  g.overlay = {3, 20, 64};
  g.probability = {3, 20, 64};
  const Rendered r = render(slide, g, std::vector<float>(60, kNaN));
  EXPECT_EQ(r.strips, (std::vector<int64_t>{8, 8, 4}));
  ASSERT_EQ(r.overlay.size(), size_t{3 * 20 * 3});
  for (int64_t v = 0; v < 20; ++v)
    for (int64_t u = 0; u < 3; ++u) EXPECT_EQ(r.overlay[static_cast<size_t>((v * 3 + u) * 3 + 1)], 10 * v) << v;
}

TEST(Overlay, AStripTheSlideCannotDecodeIsWhiteWithTheColoursStillBlended) {
  const MemorySlide slide([](int64_t, int64_t) { return std::array<uint8_t, 3>{0, 0, 0}; }, /*broken=*/true);
  OverlayGeometry g;
  g.overlay = {2, 1, 1};
  g.probability = {2, 1, 1};
  const std::vector<float> p = {kNaN, 1.0f};
  const Rendered r = render(slide, g, p);
  const uint8_t white[3] = {255, 255, 255};
  uint8_t coloured[3];
  blend_overlay(white, &p[1], 1, OverlayStyle{}.alpha, coloured, OverlayStyle{}.min_value);
  EXPECT_EQ(r.overlay, (std::vector<uint8_t>{255, 255, 255, coloured[0], coloured[1], coloured[2]}));
}

TEST(Overlay, ThumbnailFitsTheLongestSideKeepingTheAspectAndAveragesItsBlocks) {
  // Overlay 40 x 10 (red = 4 x) into a longest side of 8: 8 x 2, each pixel 5 x 5 overlay pixels
  // with mean red 4 (5 u + 2) = 20 u + 8.
  const MemorySlide slide([](int64_t x, int64_t) { return std::array<uint8_t, 3>{static_cast<uint8_t>(4 * x), 0, 0}; });
  OverlayGeometry g;
  g.overlay = {40, 10, 1};
  g.probability = {40, 10, 1};
  OverlayStyle style;
  style.thumbnail_longest_side = 8;
  const Rendered r = render(slide, g, std::vector<float>(400, kNaN), style);
  ASSERT_EQ(r.thumb.width, 8);
  ASSERT_EQ(r.thumb.height, 2);
  for (int64_t v = 0; v < 2; ++v)
    for (int64_t u = 0; u < 8; ++u) EXPECT_EQ(r.thumb.pixels[static_cast<size_t>((v * 8 + u) * 3)], 20 * u + 8) << u;
  // A longest side above the overlay's keeps the overlay's size.
  style.thumbnail_longest_side = 1024;
  EXPECT_EQ(render(slide, g, std::vector<float>(400, kNaN), style).thumb.width, 40);
}

TEST(Overlay, ProbabilitiesThatDoNotFitTheirRasterAreRejected) {
  const MemorySlide slide([](int64_t, int64_t) { return std::array<uint8_t, 3>{0, 0, 0}; });
  OverlayGeometry g;
  g.overlay = {2, 2, 1};
  g.probability = {2, 2, 1};
  EXPECT_THROW(render(slide, g, std::vector<float>(3, 0.f)), std::invalid_argument);
}

}  // namespace
}  // namespace wsi
