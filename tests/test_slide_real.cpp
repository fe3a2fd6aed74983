// Real third-party slides in testdata/ (see testdata/ATTRIBUTION.md): dimensions, levels, mpp,
// associated images, and the level-0 / level-k coordinate frames.
#include <gtest/gtest.h>

#include <thread>

#include "test_support.hpp"
#include "wsi/error.hpp"
#include "wsi/slide.hpp"

namespace wsi {
namespace {

using test::testdata;

TEST(RealSlides, AperioCmu1SmallRegion) {
  const Slide s(testdata("slides/cmu-1-small-region.svs"));
  EXPECT_EQ(s.vendor(), "aperio");
  ASSERT_EQ(s.level_count(), 1);
  EXPECT_EQ(s.width(), 2220);
  EXPECT_EQ(s.height(), 2967);
  EXPECT_EQ(s.level(0).tile_width, 240);
  EXPECT_EQ(s.mpp().source, MppSource::openslide_property);
  EXPECT_NEAR(s.mpp().x, 0.499, 1e-9);
  EXPECT_NEAR(s.mpp().y, 0.499, 1e-9);
  std::vector<std::string> names;
  for (const auto& a : s.associated_images()) names.push_back(a.name);
  EXPECT_EQ(names, (std::vector<std::string>{"label", "macro", "thumbnail"}));
  const RgbImage thumb = s.read_associated_image("thumbnail");
  EXPECT_GT(thumb.width, 0);
  EXPECT_EQ(thumb.pixels.size(), static_cast<size_t>(thumb.width * thumb.height * 3));
  EXPECT_THROW(s.read_associated_image("no-such-image"), SlideError);
}

TEST(RealSlides, CmuRegionIsRealTissueNotBlank) {
  const Slide s(testdata("slides/cmu-1-small-region.svs"));
  const RgbImage img = s.read_region(Region{0, 1000, 1000, 256, 256});
  double sum = 0;
  for (uint8_t v : img.pixels) sum += v;
  const double mean = sum / static_cast<double>(img.pixels.size());
  EXPECT_LT(mean, 235.0);  // H&E tissue, not white glass
  EXPECT_GT(mean, 60.0);
}

TEST(RealSlides, TcgaJpeg2000HasTwoLevelsAndNoMpp) {
  const Slide s(testdata("slides/tcga-cr-7395-01a-01-ts1.svs"));
  EXPECT_EQ(s.vendor(), "aperio");
  ASSERT_EQ(s.level_count(), 2);
  EXPECT_EQ(s.level(0).width, 4443);
  EXPECT_EQ(s.level(0).height, 3567);
  EXPECT_EQ(s.level(1).width, 2221);
  EXPECT_EQ(s.level(1).height, 1783);
  EXPECT_NEAR(s.level(1).downsample, 2.0005, 1e-4);
  EXPECT_FALSE(s.mpp().known());
  EXPECT_THROW(s.choose_level(1.0), ConfigError);
  // JPEG 2000 tiles decode.
  const RgbImage img = s.read_region(Region{1, 1000, 1000, 64, 64});
  EXPECT_EQ(img.width, 64);
}

TEST(RealSlides, TcgaMppOverrideEnablesLevelChoice) {
  SlideOptions o;
  o.mpp_override = 0.25;
  const Slide s(testdata("slides/tcga-cr-7395-01a-01-ts1.svs"), o);
  EXPECT_EQ(s.mpp().source, MppSource::user_override);
  const LevelChoice c = s.choose_level(0.5);
  EXPECT_EQ(c.level, 1);
  EXPECT_DOUBLE_EQ(c.read_scale, 1.0);
}

TEST(RealSlides, Camelyon16Tumor001Level5) {
  const Slide s(testdata("slides/tumor_001aaf.tif"));
  EXPECT_EQ(s.vendor(), "generic-tiff");
  ASSERT_EQ(s.level_count(), 1);
  EXPECT_EQ(s.width(), 3072);
  EXPECT_EQ(s.height(), 7168);
  EXPECT_EQ(s.level(0).tile_width, 512);
  // The file says 72 dpi in inches: a default, not the scan resolution.
  EXPECT_FALSE(s.mpp().known());
  EXPECT_EQ(s.property("tiff.Software").value_or(""), "Philips DP v1.0");
}

TEST(RealSlides, SmallSvsIs16x16WithMpp) {
  const Slide s(testdata("slides/small.svs"));
  EXPECT_EQ(s.width(), 16);
  EXPECT_EQ(s.height(), 16);
  EXPECT_NEAR(s.mpp().x, 0.499, 1e-9);
}

TEST(RealSlides, BoxesHasFourLevelsWithNonIntegerDownsamples) {
  const Slide s(testdata("slides/boxes.tiff"));
  EXPECT_EQ(s.vendor(), "generic-tiff");
  ASSERT_EQ(s.level_count(), 4);
  const int64_t w[] = {300, 150, 75, 37}, h[] = {250, 125, 62, 31};
  const double ds[] = {1, 2, 4.0161290322580641, 8.0863121185701843};
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(s.level(i).width, w[i]);
    EXPECT_EQ(s.level(i).height, h[i]);
    EXPECT_NEAR(s.level(i).downsample, ds[i], 1e-9);
  }
  EXPECT_FALSE(s.mpp().known()) << "72 dpi must not be taken as a scan resolution";
  EXPECT_FALSE(s.mpp().note.empty());
}

struct Rgb {
  int r, g, b;
};
Rgb pixel(const RgbImage& img, int64_t x, int64_t y) {
  const uint8_t* p = img.at(x, y);
  return {p[0], p[1], p[2]};
}
void expect_colour(const Rgb& got, const Rgb& want, const std::string& where) {
  EXPECT_NEAR(got.r, want.r, 40) << where;
  EXPECT_NEAR(got.g, want.g, 40) << where;
  EXPECT_NEAR(got.b, want.b, 40) << where;
}

// Known level-0 points of boxes.tiff (checked on boxes.png, the same picture).
struct KnownPoint {
  int64_t x, y;
  Rgb colour;
  const char* name;
};
const KnownPoint kBoxPoints[] = {
    {40, 40, {255, 0, 0}, "red box"},
    {100, 150, {0, 0, 255}, "blue box"},
    {250, 200, {0, 255, 0}, "green box"},
    {10, 10, {255, 255, 255}, "glass top-left"},
    {290, 240, {255, 255, 255}, "glass bottom-right"},
};

TEST(RegionFrames, RegionOriginIsLevelZeroAtEveryLevel) {
  const Slide s(testdata("slides/boxes.tiff"));
  for (int level = 0; level < s.level_count(); ++level) {
    const double ds = s.level(level).downsample;
    for (const auto& kp : kBoxPoints) {
      // A 5x5 level-k read whose top-left is given in level-0 pixels; the point is at (2, 2).
      const auto off = static_cast<int64_t>(std::llround(2 * ds));
      const RgbImage img = s.read_region(Region{level, kp.x - off, kp.y - off, 5, 5});
      expect_colour(pixel(img, 2, 2), kp.colour,
                    std::string(kp.name) + " at level " + std::to_string(level));
    }
  }
}

TEST(RegionFrames, WholeLevelReadPutsBoxesAtLevelZeroPositionDividedByDownsample) {
  const Slide s(testdata("slides/boxes.tiff"));
  for (int level = 1; level < s.level_count(); ++level) {
    const LevelInfo& l = s.level(level);
    const RgbImage img = s.read_region(Region{level, 0, 0, l.width, l.height});
    for (const auto& kp : kBoxPoints) {
      const auto x = static_cast<int64_t>(static_cast<double>(kp.x) / l.downsample);
      const auto y = static_cast<int64_t>(static_cast<double>(kp.y) / l.downsample);
      expect_colour(pixel(img, x, y), kp.colour, std::string(kp.name) + " at level " + std::to_string(level));
    }
  }
}

TEST(RegionFrames, PixelsOutsideTheSlideAreWhiteGlass) {
  const Slide s(testdata("slides/boxes.tiff"));
  const RgbImage img = s.read_region(Region{0, 280, 230, 40, 40});  // crosses the bottom-right corner
  expect_colour(pixel(img, 39, 39), {255, 255, 255}, "beyond the slide");
  const RgbImage neg = s.read_region(Region{0, -20, -20, 10, 10});
  expect_colour(pixel(neg, 5, 5), {255, 255, 255}, "negative coordinates");
}

TEST(RegionFrames, BadRegionsAreRegionReadErrorsNamingFileAndRegion) {
  const Slide s(testdata("slides/boxes.tiff"));
  try {
    s.read_region(Region{7, 0, 0, 10, 10});
    FAIL() << "level 7 does not exist";
  } catch (const RegionReadError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("boxes.tiff"), std::string::npos) << msg;
    EXPECT_NE(msg.find("level 7"), std::string::npos) << msg;
    EXPECT_EQ(e.region().level, 7);
  }
  EXPECT_THROW(s.read_region(Region{0, 0, 0, 0, 10}), RegionReadError);
  EXPECT_THROW(s.read_region(Region{0, 0, 0, 100000, 100000}), RegionReadError);
}

TEST(RegionFrames, ConcurrentReadsMatchSerialReads) {
  const Slide s(testdata("slides/cmu-1-small-region.svs"));
  std::vector<Region> regions;
  for (int64_t y = 0; y + 96 <= 2967; y += 300)
    for (int64_t x = 0; x + 96 <= 2220; x += 300) regions.push_back(Region{0, x, y, 96, 96});
  std::vector<RgbImage> serial;
  for (const auto& r : regions) serial.push_back(s.read_region(r));
  std::vector<RgbImage> parallel(regions.size());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (size_t i = static_cast<size_t>(t); i < regions.size(); i += 4) parallel[i] = s.read_region(regions[i]);
    });
  for (auto& th : threads) th.join();
  for (size_t i = 0; i < regions.size(); ++i) EXPECT_EQ(parallel[i].pixels, serial[i].pixels) << to_string(regions[i]);
}

}  // namespace
}  // namespace wsi

namespace wsi {
namespace {

TEST(PixelBackend, GenericTiffIsDecodedByLibtiffVendorFormatsByOpenSlide) {
  EXPECT_EQ(Slide(test::testdata("slides/boxes.tiff")).pixel_backend(), "libtiff");
  EXPECT_EQ(Slide(test::testdata("slides/tumor_001aaf.tif")).pixel_backend(), "libtiff");
  EXPECT_EQ(Slide(test::testdata("slides/cmu-1-small-region.svs")).pixel_backend(), "openslide");
}

}  // namespace
}  // namespace wsi
