// Label rules on synthetic class rasters with known answers, value maps, rule parsing.
#include <gtest/gtest.h>

#include "wsi/error.hpp"
#include "wsi/labels.hpp"

namespace wsi {
namespace {

// A 96 x 96 raster with a tumour rectangle [x0, x1) x [y0, y1).
std::vector<uint8_t> patch_with_tumour(int x0, int y0, int x1, int y1, uint8_t cls = kClassTumour) {
  std::vector<uint8_t> v(96 * 96, kClassNormal);
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x) v[static_cast<size_t>(y * 96 + x)] = cls;
  return v;
}

TEST(LabelRules, CenterRuleIgnoresTumourOutsideTheCentral32) {
  // Tumour in the corner only: PCam says negative, "any" says positive.
  const auto v = patch_with_tumour(0, 0, 10, 10);
  const auto c = label_patch(v.data(), 96, LabelRule::parse("center"), ExclusionPolicy::normal);
  EXPECT_EQ(c.label, 0);
  EXPECT_TRUE(c.any_tumour);
  EXPECT_FALSE(c.center_tumour);
  EXPECT_EQ(label_patch(v.data(), 96, LabelRule::parse("any"), ExclusionPolicy::normal).label, 1);
  EXPECT_NEAR(c.tumour_fraction, 100.0 / (96 * 96), 1e-12);
}

TEST(LabelRules, CenterRuleCountsOnePixelOnTheCentralSquareEdge) {
  // The central square is [32, 64): pixel 63 is in, pixel 64 is out.
  EXPECT_EQ(label_patch(patch_with_tumour(63, 63, 64, 64).data(), 96, LabelRule{}, ExclusionPolicy::normal).label, 1);
  EXPECT_EQ(label_patch(patch_with_tumour(64, 40, 65, 41).data(), 96, LabelRule{}, ExclusionPolicy::normal).label, 0);
  EXPECT_EQ(label_patch(patch_with_tumour(32, 32, 33, 33).data(), 96, LabelRule{}, ExclusionPolicy::normal).label, 1);
  EXPECT_EQ(label_patch(patch_with_tumour(31, 31, 32, 32).data(), 96, LabelRule{}, ExclusionPolicy::normal).label, 0);
}

TEST(LabelRules, FractionRuleUsesThreshold) {
  const auto v = patch_with_tumour(0, 0, 96, 48);  // exactly half
  EXPECT_EQ(label_patch(v.data(), 96, LabelRule::parse("fraction:0.5"), ExclusionPolicy::normal).label, 1);
  EXPECT_EQ(label_patch(v.data(), 96, LabelRule::parse("fraction:0.51"), ExclusionPolicy::normal).label, 0);
}

TEST(LabelRules, ExclusionIsNotTumourOrDropsThePatch) {
  const auto v = patch_with_tumour(40, 40, 50, 50, kClassExcluded);
  const auto n = label_patch(v.data(), 96, LabelRule{}, ExclusionPolicy::normal);
  EXPECT_EQ(n.label, 0);
  EXPECT_FALSE(n.dropped);
  EXPECT_NEAR(n.excluded_fraction, 100.0 / (96 * 96), 1e-12);
  EXPECT_TRUE(label_patch(v.data(), 96, LabelRule{}, ExclusionPolicy::skip).dropped);
}

TEST(LabelRules, ParseAcceptsDocumentedFormsAndRejectsOthers) {
  EXPECT_EQ(LabelRule::parse("center:16").center_size, 16);
  EXPECT_EQ(LabelRule::parse("fraction:0.25").threshold, 0.25);
  EXPECT_EQ(LabelRule::parse("fraction:0.25").to_string(), "fraction:0.25");
  for (const char* bad : {"middle", "fraction", "fraction:0", "fraction:2", "center:-1", "any:1"})
    EXPECT_THROW(LabelRule::parse(bad), UsageError) << bad;
}

TEST(MaskValues, DefaultIsNonZeroTumourSoOneAnd255AgreeWithCamelyon) {
  const MaskValueMap m;
  EXPECT_EQ(m.cls[0], kClassNormal);
  EXPECT_EQ(m.cls[1], kClassTumour);
  EXPECT_EQ(m.cls[255], kClassTumour);
}

TEST(MaskValues, ExplicitMapSupportsExclusionValue) {
  const auto m = MaskValueMap::parse("0=normal,1=tumour,2=exclude,255=tumour");
  EXPECT_EQ(m.cls[2], kClassExcluded);
  EXPECT_EQ(m.cls[1], kClassTumour);
  EXPECT_EQ(MaskValueMap::parse("255=normal").cls[255], kClassNormal);
  EXPECT_THROW(MaskValueMap::parse("256=tumour"), UsageError);
  EXPECT_THROW(MaskValueMap::parse("1=cancer"), UsageError);
  EXPECT_THROW(MaskValueMap::parse("tumour"), UsageError);
}

}  // namespace
}  // namespace wsi
