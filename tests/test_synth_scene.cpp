// The synthetic scene as a pure function: determinism, tiling independence, ground truth.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "wsi/error.hpp"
#include "wsi/synth.hpp"

namespace wsi {
namespace {

SynthParams small_params(uint64_t seed = 7) {
  SynthParams p;
  p.width = 3000;
  p.height = 2000;
  p.seed = seed;
  p.mpp = 0.5;
  p.tumours = 3;
  return p;
}

std::vector<uint8_t> render(const SynthScene& s, int64_t x, int64_t y, int64_t w, int64_t h) {
  std::vector<uint8_t> rgb(static_cast<size_t>(w * h * 3));
  s.render_rgb(x, y, w, h, rgb.data());
  return rgb;
}

// A rectangle around the first tumour: tissue with nuclei of both kinds.
void tumour_box(const SynthScene& s, int64_t& x, int64_t& y) {
  const auto outline = s.tumour_outlines().at(0);
  x = static_cast<int64_t>(outline[0].x) - 200;
  y = static_cast<int64_t>(outline[0].y) - 100;
}

TEST(SynthScene, SameSeedGivesIdenticalPixels) {
  const SynthScene a(small_params()), b(small_params());
  int64_t x = 0, y = 0;
  tumour_box(a, x, y);
  EXPECT_EQ(render(a, x, y, 300, 200), render(b, x, y, 300, 200));
}

TEST(SynthScene, DifferentSeedGivesDifferentSlide) {
  const SynthScene a(small_params(1)), b(small_params(2));
  EXPECT_NE(render(a, 1000, 700, 300, 300), render(b, 1000, 700, 300, 300));
}

TEST(SynthScene, PixelsDoNotDependOnTiling) {
  // Streaming writers ask for arbitrary tiles; the seams must not show.
  for (double blur : {0.0, 1.5}) {
    SynthParams p = small_params();
    p.blur_sigma = blur;
    p.noise = 0.3;
    p.pen_marks = true;
    const SynthScene s(p);
    int64_t x = 0, y = 0;
    tumour_box(s, x, y);
    const auto whole = render(s, x, y, 200, 160);
    std::vector<uint8_t> tiled(whole.size());
    for (int64_t ty = 0; ty < 160; ty += 53)
      for (int64_t tx = 0; tx < 200; tx += 37) {
        const int64_t w = std::min<int64_t>(37, 200 - tx), h = std::min<int64_t>(53, 160 - ty);
        const auto part = render(s, x + tx, y + ty, w, h);
        for (int64_t r = 0; r < h; ++r)
          std::copy_n(&part[static_cast<size_t>(r * w * 3)], w * 3, &tiled[static_cast<size_t>(((ty + r) * 200 + tx) * 3)]);
      }
    EXPECT_EQ(whole, tiled) << "blur " << blur;
  }
}

TEST(SynthScene, MaskIsExactlyTheTumourOutlines) {
  const SynthScene s(small_params());
  const int64_t w = 3000, h = 2000;
  std::vector<uint8_t> mask(static_cast<size_t>(w * h));
  s.render_mask(0, 0, w, h, mask.data());
  int64_t positives = 0;
  for (int64_t y = 0; y < h; y += 7)
    for (int64_t x = 0; x < w; x += 7) {
      const uint8_t m = mask[static_cast<size_t>(y * w + x)];
      ASSERT_TRUE(m == 0 || m == 255);
      ASSERT_EQ(m == 255, s.is_tumour(static_cast<double>(x) + 0.5, static_cast<double>(y) + 0.5)) << x << "," << y;
      if (m) {
        ++positives;
        ASSERT_TRUE(s.is_tissue(static_cast<double>(x) + 0.5, static_cast<double>(y) + 0.5)) << "tumour outside tissue";
      }
    }
  EXPECT_GT(positives, 100);
}

TEST(SynthScene, OutlineCentroidsAreTumourAndOutlinesEnclose) {
  const SynthScene s(small_params());
  const auto outlines = s.tumour_outlines();
  ASSERT_EQ(outlines.size(), 3u);
  for (const auto& o : outlines) {
    ASSERT_GE(o.size(), 100u);
    double cx = 0, cy = 0;
    for (const auto& p : o) {
      cx += p.x;
      cy += p.y;
    }
    cx /= static_cast<double>(o.size());
    cy /= static_cast<double>(o.size());
    EXPECT_TRUE(s.is_tumour(cx, cy));
    // Just outside each vertex (away from the centroid) is not inside this outline's blob.
    int outside = 0;
    for (const auto& p : o) {
      const double dx = p.x - cx, dy = p.y - cy, d = std::hypot(dx, dy);
      outside += !s.is_tumour(p.x + 3 * dx / d, p.y + 3 * dy / d);
    }
    EXPECT_GT(outside, static_cast<int>(o.size() * 9 / 10));
  }
}

TEST(SynthScene, ZeroTumoursGivesAnEmptyMask) {
  SynthParams p = small_params();
  p.tumours = 0;
  const SynthScene s(p);
  EXPECT_TRUE(s.tumour_outlines().empty());
  std::vector<uint8_t> mask(500 * 500);
  s.render_mask(1000, 700, 500, 500, mask.data());
  EXPECT_EQ(std::accumulate(mask.begin(), mask.end(), 0), 0);
}

TEST(SynthScene, GlassIsWhiteAndTissueIsNot) {
  const SynthScene s(small_params());
  const auto corner = render(s, 0, 0, 32, 32);  // sections never reach the corners
  for (uint8_t v : corner) ASSERT_GE(v, 240);
  int64_t x = 0, y = 0;
  tumour_box(s, x, y);
  const auto tissue = render(s, x + 200, y + 100, 64, 64);
  const double mean = std::accumulate(tissue.begin(), tissue.end(), 0.0) / static_cast<double>(tissue.size());
  EXPECT_LT(mean, 220);
}

TEST(SynthScene, StainVariationChangesColoursButNotGeometry) {
  SynthParams a = small_params(), b = small_params();
  b.stain_variation = 1.0;
  const SynthScene sa(a), sb(b);
  int64_t x = 0, y = 0;
  tumour_box(sa, x, y);
  EXPECT_NE(render(sa, x, y, 100, 100), render(sb, x, y, 100, 100));
  EXPECT_EQ(sa.tumour_outlines()[0][0].x, sb.tumour_outlines()[0][0].x);
}

TEST(SynthScene, PenMarksAddColouredInk) {
  SynthParams p = small_params();
  const SynthScene plain(p);
  p.pen_marks = true;
  const SynthScene inked(p);
  const auto a = render(plain, 0, 0, 3000, 2000);
  const auto b = render(inked, 0, 0, 3000, 2000);
  EXPECT_NE(a, b);
}

TEST(SynthScene, InvalidParametersNameTheOption) {
  auto expect_bad = [](SynthParams p, const std::string& needle) {
    try {
      SynthScene s(p);
      FAIL() << needle;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  SynthParams p = small_params();
  p.width = 10;
  expect_bad(p, "--size");
  p = small_params();
  p.mpp = 0;
  expect_bad(p, "--mpp");
  p = small_params();
  p.tumours = -1;
  expect_bad(p, "--tumours");
  p = small_params();
  p.noise = 2;
  expect_bad(p, "--noise");
}

TEST(AsapXml, OnePolygonPerOutlineInTheTumorGroup) {
  const std::string xml = asap_xml({{{1, 2}, {3, 4}, {5, 6}}, {{7, 8}, {9, 10}, {11, 12}}});
  EXPECT_NE(xml.find("<ASAP_Annotations>"), std::string::npos);
  EXPECT_NE(xml.find("PartOfGroup=\"Tumor\""), std::string::npos);
  EXPECT_NE(xml.find("<Coordinate Order=\"2\" X=\"11\" Y=\"12\" />"), std::string::npos);
  size_t n = 0;
  for (size_t pos = 0; (pos = xml.find("<Annotation ", pos)) != std::string::npos; ++pos) ++n;
  EXPECT_EQ(n, 2u);
}

}  // namespace
}  // namespace wsi
