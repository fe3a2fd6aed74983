// Pure slide helpers: mpp source order, bounds, level choice, alpha compositing.
#include <gtest/gtest.h>

#include "wsi/error.hpp"
#include "wsi/slide.hpp"

namespace wsi {
namespace {

using Props = std::map<std::string, std::string>;

TEST(ResolveMpp, OpenSlidePropertyWinsOverTiffResolution) {
  const Mpp m = resolve_mpp({{"openslide.mpp-x", "0.499"}, {"openslide.mpp-y", "0.5"},
                             {"tiff.XResolution", "40000"}, {"tiff.ResolutionUnit", "centimeter"}});
  EXPECT_EQ(m.source, MppSource::openslide_property);
  EXPECT_DOUBLE_EQ(m.x, 0.499);
  EXPECT_DOUBLE_EQ(m.y, 0.5);
  EXPECT_FALSE(m.is_guess());
}

TEST(ResolveMpp, TiffResolutionInCentimetresAndInches) {
  const Mpp cm = resolve_mpp({{"tiff.XResolution", "40000"}, {"tiff.YResolution", "20000"},
                              {"tiff.ResolutionUnit", "centimeter"}});
  EXPECT_EQ(cm.source, MppSource::tiff_resolution);
  EXPECT_DOUBLE_EQ(cm.x, 0.25);
  EXPECT_DOUBLE_EQ(cm.y, 0.5);
  const Mpp inch = resolve_mpp({{"tiff.XResolution", "101600"}, {"tiff.ResolutionUnit", "inch"}});
  EXPECT_EQ(inch.source, MppSource::tiff_resolution);
  EXPECT_DOUBLE_EQ(inch.x, 0.25);
  EXPECT_DOUBLE_EQ(inch.y, 0.25);
}

TEST(ResolveMpp, ScreenDefaultResolutionIsIgnoredWithANote) {
  // 72 dpi (28.35 px/cm) is what writers leave when they know nothing: 352 um/px is no scan.
  const Mpp m = resolve_mpp({{"tiff.XResolution", "28.346456527709961"}, {"tiff.ResolutionUnit", "centimeter"}});
  EXPECT_FALSE(m.known());
  EXPECT_NE(m.note.find("not a scan resolution"), std::string::npos) << m.note;
}

TEST(ResolveMpp, ResolutionWithoutUnitIsIgnored) {
  EXPECT_FALSE(resolve_mpp({{"tiff.XResolution", "40000"}, {"tiff.ResolutionUnit", "none"}}).known());
}

TEST(ResolveMpp, ObjectivePowerIsALastResortAndFlaggedAsGuess) {
  const Mpp m = resolve_mpp({{"openslide.objective-power", "40"}});
  EXPECT_EQ(m.source, MppSource::objective_power);
  EXPECT_TRUE(m.is_guess());
  EXPECT_DOUBLE_EQ(m.x, 0.25);
  EXPECT_NE(m.note.find("--mpp"), std::string::npos);
}

TEST(ResolveMpp, UserOverrideWinsOverEverything) {
  const Mpp m = resolve_mpp({{"openslide.mpp-x", "0.499"}, {"openslide.objective-power", "20"}}, 0.3);
  EXPECT_EQ(m.source, MppSource::user_override);
  EXPECT_DOUBLE_EQ(m.x, 0.3);
}

TEST(ResolveMpp, NonPositiveOverrideIsAUsageError) {
  EXPECT_THROW(resolve_mpp({}, 0.0), UsageError);
  EXPECT_THROW(resolve_mpp({}, -1.0), UsageError);
}

TEST(ResolveMpp, GarbagePropertiesGiveUnknown) {
  EXPECT_FALSE(resolve_mpp({{"openslide.mpp-x", "abc"}, {"openslide.objective-power", "-3"}}).known());
  EXPECT_FALSE(resolve_mpp({}).known());
}

TEST(ResolveBounds, UsesAllFourPropertiesOrTheWholeSlide) {
  const Bounds b = resolve_bounds({{"openslide.bounds-x", "10"}, {"openslide.bounds-y", "20"},
                                   {"openslide.bounds-width", "300"}, {"openslide.bounds-height", "400"}},
                                  1000, 2000);
  EXPECT_TRUE(b.from_properties);
  EXPECT_EQ(b.x, 10);
  EXPECT_EQ(b.height, 400);
  const Bounds whole = resolve_bounds({{"openslide.bounds-x", "10"}}, 1000, 2000);
  EXPECT_FALSE(whole.from_properties);
  EXPECT_EQ(whole.width, 1000);
  EXPECT_EQ(whole.height, 2000);
}

// boxes.tiff's real downsamples: 1, 2, 4.016, 8.086.
const std::vector<LevelInfo> kBoxesLevels = {{300, 250, 1.0}, {150, 125, 2.0},
                                             {75, 62, 4.0161290322580641}, {37, 31, 8.0863121185701843}};

TEST(ChooseLevel, PicksCoarsestLevelAtOrFinerThanTarget) {
  EXPECT_EQ(choose_level(kBoxesLevels, 1.0, 1.0).level, 0);
  EXPECT_EQ(choose_level(kBoxesLevels, 1.0, 1.9).level, 0);
  EXPECT_EQ(choose_level(kBoxesLevels, 1.0, 2.0).level, 1);
  // 4.0 is finer than level 2's 4.016: level 1, shrink by 2.
  const LevelChoice c = choose_level(kBoxesLevels, 1.0, 4.0);
  EXPECT_EQ(c.level, 1);
  EXPECT_DOUBLE_EQ(c.read_scale, 2.0);
  EXPECT_EQ(choose_level(kBoxesLevels, 1.0, 4.02).level, 2);
  const LevelChoice far = choose_level(kBoxesLevels, 1.0, 100.0);
  EXPECT_EQ(far.level, 3);
  EXPECT_NEAR(far.read_scale, 100.0 / 8.0863121185701843, 1e-12);
}

TEST(ChooseLevel, NearlyExactDownsampleCountsAsExact) {
  // The TCGA slide's level 1 has downsample 2.0005 for a nominal 2x.
  const std::vector<LevelInfo> levels = {{4443, 3567, 1.0}, {2221, 1783, 2.0005}};
  const LevelChoice c = choose_level(levels, 0.25, 0.5);
  EXPECT_EQ(c.level, 1);
  EXPECT_DOUBLE_EQ(c.read_scale, 1.0);
}

TEST(ChooseLevel, ToleranceAcceptsALevelThatMuchCoarserAndSaysHowMuchToEnlargeIt) {
  // 4.0 against level 2's 4.016 (0.4 % coarser): refused exactly, accepted with 1 %.
  EXPECT_EQ(choose_level(kBoxesLevels, 1.0, 4.0, 0.0).level, 1);
  const LevelChoice c = choose_level(kBoxesLevels, 1.0, 4.0, 0.01);
  EXPECT_EQ(c.level, 2);
  EXPECT_NEAR(c.read_scale, 4.0 / 4.0161290322580641, 1e-12);  // < 1: enlarge
  // A 2 % tolerance does not reach a level 4 % coarser.
  EXPECT_EQ(choose_level(kBoxesLevels, 1.0, 1.92, 0.02).level, 0);
  EXPECT_EQ(choose_level(kBoxesLevels, 1.0, 1.92, 0.05).level, 1);
}

TEST(ChooseLevel, TargetFinerThanLevelZeroUpsamplesLevelZero) {
  const LevelChoice c = choose_level(kBoxesLevels, 0.5, 0.25);
  EXPECT_EQ(c.level, 0);
  EXPECT_DOUBLE_EQ(c.read_scale, 0.5);
}

TEST(ChooseLevel, NonPositiveMppIsAConfigError) {
  EXPECT_THROW(choose_level(kBoxesLevels, 0.0, 1.0), ConfigError);
  EXPECT_THROW(choose_level(kBoxesLevels, 1.0, -1.0), ConfigError);
}

TEST(ArgbOverWhite, TransparentIsWhiteAndOpaqueIsUnchanged) {
  const uint32_t px[4] = {0x00000000u, 0xff102030u, 0x80400000u, 0x7f000000u};
  uint8_t rgb[12];
  argb_over_white_to_rgb(px, 4, rgb);
  EXPECT_EQ(rgb[0], 255);  // fully transparent: glass
  EXPECT_EQ(rgb[1], 255);
  EXPECT_EQ(rgb[2], 255);
  EXPECT_EQ(rgb[3], 0x10);  // opaque
  EXPECT_EQ(rgb[4], 0x20);
  EXPECT_EQ(rgb[5], 0x30);
  EXPECT_EQ(rgb[6], 0x40 + 0x7f);  // half-transparent premultiplied red over white
  EXPECT_EQ(rgb[7], 0x7f);
  EXPECT_EQ(rgb[9], 0x80);  // half-transparent black over white: grey
}

TEST(RegionToString, NamesTheLevelAndBothFrames) {
  const std::string s = to_string(Region{2, 1024, 2048, 96, 48});
  EXPECT_EQ(s, "level 2, x=1024 y=2048 (level-0 px), 96x48 (level-2 px)");
}

}  // namespace
}  // namespace wsi
