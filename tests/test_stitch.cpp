// Placing per-patch results on slide-aligned rasters (stitch.hpp): exact cells, overlap
// averaging, streaming order, no half-patch shifts.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <vector>

#include "wsi/error.hpp"
#include "wsi/stitch.hpp"

namespace wsi {
namespace {

// ASAP overlays a likelihood map only when slide width / map width == slide height / map height
// (integer division, its VisualizationWorkstationExtensionPlugin; checked here by that rule, not
// by ASAP) and then scales it by that quotient: the raster's pixel d must be that quotient.
TEST(Stitch, RasterPixelIsTheIntegerQuotientOfTheSlideByTheRasterOnBothAxes) {
  struct Case {
    int64_t w0, h0;
    double max_pixel;
    int64_t min_side, pixel, width, height;
  };
  const Case cases[] = {
      {960, 960, 96, 1, 96, 10, 10},
      {1000, 500, 96, 1, 83, 12, 6},  // 96 gives 1000 / 10 = 100 across
      // The tester's 12000 x 9000 slide at one pixel per 363-px cell: 33 x 25 gave 363 and 360.
      {12000, 9000, 363.75, 1, 333, 36, 27},
      {12000, 9000, 363.75 / 8, 16, 45, 266, 200},
      {4096, 4096, 12, 16, 12, 341, 341},
      {4096, 4096, 11.9999999, 16, 12, 341, 341},  // an mpp's rounding does not cost a pixel
      {100, 3000, 50, 16, 6, 16, 500},              // at least 16 pixels a side
      {10, 10, 4, 16, 1, 10, 10},                   // a slide too small for that: d = 1
      {7, 5, 0.5, 1, 1, 7, 5},
  };
  for (const Case& c : cases) {
    const RasterGeometry g = raster_for(c.w0, c.h0, c.max_pixel, c.min_side);
    EXPECT_EQ(g.pixel, c.pixel) << c.w0 << "x" << c.h0 << " max " << c.max_pixel;
    EXPECT_EQ(g.width, c.width) << c.w0 << "x" << c.h0;
    EXPECT_EQ(g.height, c.height) << c.w0 << "x" << c.h0;
  }
  EXPECT_THROW(raster_for(10, 10, 0), ConfigError);
  EXPECT_THROW(raster_for(0, 10, 1), ConfigError);
}

// Against a brute-force search: d is the largest integer up to max_pixel that satisfies the rule.
TEST(Stitch, RasterPixelIsTheLargestThatSatisfiesTheRuleAgainstABruteForceSearch) {
  for (int64_t w0 : {97, 1000, 4097, 12000, 99991})
    for (int64_t h0 : {89, 700, 9000, 40000})
      for (double max_pixel : {1.0, 7.5, 46.66, 373.248, 2000.0}) {
        const RasterGeometry g = raster_for(w0, h0, max_pixel);
        EXPECT_EQ(w0 / g.width, g.pixel);
        EXPECT_EQ(h0 / g.height, g.pixel);
        EXPECT_LE(static_cast<double>(g.pixel), std::max(1.0, max_pixel));
        int64_t best = 1;
        for (int64_t d = 1; d <= std::min<int64_t>({w0, h0, static_cast<int64_t>(max_pixel)}); ++d)
          if (w0 / (w0 / d) == d && h0 / (h0 / d) == d) best = d;
        EXPECT_EQ(g.pixel, best) << w0 << "x" << h0 << " max " << max_pixel;
      }
}

TEST(Stitch, ProbabilityRasterPutsEachPatchOnItsOwnCell) {
  // Grid anchored at the slide origin, stride == patch: cell == patch, one pixel each.
  const RasterGeometry g = raster_for(400, 300, 100);
  const auto r = probability_raster(g, {0, 100, 300}, {0, 0, 200}, {0.1f, 0.2f, 0.9f}, 100, 100);
  ASSERT_EQ(r.size(), 12u);
  EXPECT_FLOAT_EQ(r[0], 0.1f);
  EXPECT_FLOAT_EQ(r[1], 0.2f);
  EXPECT_FLOAT_EQ(r[2 * 4 + 3], 0.9f);
  int nan = 0;
  for (float v : r) nan += std::isnan(v) ? 1 : 0;
  EXPECT_EQ(nan, 9);
}

TEST(Stitch, OverlappingPatchesOwnTheirCentralCell) {
  // Patches of 200 at stride 100: patch at x=0 is centred at 100, so it owns [50, 150), i.e.
  // the raster pixel whose centre is 50..150 -> pixel 0 (centre 50) and not pixel 1 (centre 150).
  const RasterGeometry g = raster_for(500, 100, 100);
  const auto r = probability_raster(g, {0, 100, 200}, {0, 0, 0}, {0.1f, 0.2f, 0.3f}, 200, 100);
  // Row 0: pixel centres y = 50; patch centre y = 100 owns [50, 150) -> includes 50.
  EXPECT_FLOAT_EQ(r[0], 0.1f);
  EXPECT_FLOAT_EQ(r[1], 0.2f);
  EXPECT_FLOAT_EQ(r[2], 0.3f);
  EXPECT_TRUE(std::isnan(r[3]));
}

TEST(Stitch, CamOfOnePatchLandsOnItsPixelsWithFractionalGeometry) {
  // Patch of 96 level-0 px at (48, 0), map 4x4 of value = column index; raster pixel 12 px.
  const RasterGeometry g = raster_for(192, 96, 12);
  std::map<int64_t, std::vector<float>> rows;
  CamStitcher s(g, 96, 4, [&](const float* row, int64_t v) { rows[v].assign(row, row + g.width); });
  std::vector<float> cam(16);
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x) cam[y * 4 + x] = static_cast<float>(x);
  s.add(48, 0, 0, cam.data());
  s.finish();
  ASSERT_EQ(rows.size(), 8u);
  // Raster pixels 4..11 cover the patch; each map column spans 2 raster pixels.
  for (int64_t v = 0; v < 8; ++v) {
    EXPECT_TRUE(std::isnan(rows[v][3]));
    for (int u = 4; u < 12; ++u) EXPECT_FLOAT_EQ(rows[v][u], static_cast<float>((u - 4) / 2)) << u;
    EXPECT_TRUE(std::isnan(rows[v][12]));
  }
}

TEST(Stitch, OverlapsAreAveraged) {
  const RasterGeometry g = raster_for(150, 100, 10);
  std::map<int64_t, std::vector<float>> rows;
  CamStitcher s(g, 100, 1, [&](const float* row, int64_t v) { rows[v].assign(row, row + g.width); });
  const float a = 1.0f, b = 0.0f;
  s.add(0, 0, 0, &a);
  s.add(50, 0, 0, &b);
  s.finish();
  EXPECT_FLOAT_EQ(rows[0][2], 1.0f);   // only the first patch
  EXPECT_FLOAT_EQ(rows[0][7], 0.5f);   // both
  EXPECT_FLOAT_EQ(rows[0][12], 0.0f);  // only the second
}

TEST(Stitch, RowsAreEmittedInOrderAsSoonAsNoLaterPatchCanTouchThem) {
  const RasterGeometry g = raster_for(100, 400, 10);
  std::vector<int64_t> order;
  int64_t emitted_before_second = -1;
  CamStitcher s(g, 100, 1, [&](const float*, int64_t v) { order.push_back(v); });
  const float one = 1.0f;
  s.add(0, 0, 0, &one);
  s.add(0, 100, 1, &one);  // grid row 1 starts at y = 100: rows 0..9 are final
  emitted_before_second = s.rows_emitted();
  s.add(0, 200, 2, &one);
  EXPECT_EQ(emitted_before_second, 10);
  EXPECT_EQ(s.rows_emitted(), 20);
  s.finish();
  ASSERT_EQ(order.size(), 40u);
  for (size_t i = 0; i < order.size(); ++i) EXPECT_EQ(order[i], static_cast<int64_t>(i));
  EXPECT_THROW(s.add(0, 0, 0, &one), ConfigError);
}

}  // namespace
}  // namespace wsi
