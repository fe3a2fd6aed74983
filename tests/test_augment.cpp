// Training augmentation: exactness of the no-op and symmetry paths, determinism, bounded colour
// changes (augment.hpp).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <vector>

#include "wsi/augment.hpp"
#include "wsi/random.hpp"
#include "wsi/sampling.hpp"

namespace {

constexpr int P = 32;

std::vector<uint8_t> gradient_patch() {
  std::vector<uint8_t> img(P * P * 3);
  for (int y = 0; y < P; ++y)
    for (int x = 0; x < P; ++x) {
      uint8_t* px = &img[(y * P + x) * 3];
      px[0] = static_cast<uint8_t>(200 - 3 * x);
      px[1] = static_cast<uint8_t>(60 + 4 * y);
      px[2] = static_cast<uint8_t>((x * 7 + y * 13) % 251);
    }
  return img;
}

double mean_abs_diff(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += std::abs(int(a[i]) - int(b[i]));
  return s / static_cast<double>(a.size());
}

TEST(Augment, NoneIsAnExactCopy) {
  const auto in = gradient_patch();
  std::vector<uint8_t> out(in.size());
  wsi::augment_patch(in.data(), out.data(), P, wsi::AugmentParams::none(), 42);
  EXPECT_EQ(out, in);
}

TEST(Augment, QuarterTurnsAndFlipsAreExactSymmetriesOfTheSquare) {
  wsi::AugmentParams a = wsi::AugmentParams::none();
  a.rot90 = a.flips = true;
  const auto in = gradient_patch();
  std::vector<uint8_t> out(in.size()), sym(in.size());
  int seen = 0;
  for (uint64_t seed = 0; seed < 64; ++seed) {
    wsi::augment_patch(in.data(), out.data(), P, a, seed);
    bool matched = false;
    for (uint8_t op = 0; op < 8 && !matched; ++op) {
      wsi::apply_d4(op, in.data(), sym.data(), P);
      if (sym == out) matched = true, seen |= 1 << op;
    }
    EXPECT_TRUE(matched) << "seed " << seed << " is not one of the 8 symmetries";
  }
  EXPECT_EQ(seen, 0xff) << "all 8 symmetries should occur in 64 draws";
}

TEST(Augment, SameSeedSameResultOtherSeedOtherResult) {
  const auto in = gradient_patch();
  std::vector<uint8_t> a(in.size()), b(in.size()), c(in.size());
  wsi::augment_patch(in.data(), a.data(), P, {}, 7);
  wsi::augment_patch(in.data(), b.data(), P, {}, 7);
  wsi::augment_patch(in.data(), c.data(), P, {}, 8);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

TEST(Augment, UniformPatchStaysUniformUnderAnyGeometry) {
  // Rotation, zoom and translation resample with reflection at the borders: no fill colour.
  wsi::AugmentParams a;
  a.stain = a.hue = a.saturation = a.value = 0;
  std::vector<uint8_t> in(P * P * 3), out(in.size());
  for (size_t i = 0; i < in.size(); i += 3) in[i] = 180, in[i + 1] = 90, in[i + 2] = 150;
  for (uint64_t seed = 0; seed < 16; ++seed) {
    wsi::augment_patch(in.data(), out.data(), P, a, seed);
    EXPECT_EQ(out, in) << "seed " << seed;
  }
}

TEST(Augment, SmallRotationMovesPixelsButKeepsTheCentre) {
  wsi::AugmentParams a = wsi::AugmentParams::none();
  a.max_rotation_deg = 10;
  const auto in = gradient_patch();
  std::vector<uint8_t> out(in.size());
  wsi::augment_patch(in.data(), out.data(), P, a, 3);
  EXPECT_GT(mean_abs_diff(in, out), 0.5);
  // The four centre pixels of an even-sided patch surround the rotation centre.
  for (int ch = 0; ch < 3; ++ch) {
    const int c = ((P / 2) * P + P / 2) * 3 + ch;
    EXPECT_NEAR(out[c], in[c], 12);
  }
}

TEST(Augment, StainJitterIsMildAndKeepsGreyOrder) {
  wsi::AugmentParams a = wsi::AugmentParams::none();
  a.stain = 0.05;
  const auto in = gradient_patch();
  std::vector<uint8_t> out(in.size());
  for (uint64_t seed = 0; seed < 8; ++seed) {
    wsi::augment_patch(in.data(), out.data(), P, a, seed);
    EXPECT_GT(mean_abs_diff(in, out), 0.1);
    EXPECT_LT(mean_abs_diff(in, out), 20.0);
  }
  a.stain = 0;
  a.value = 0.0;
  wsi::augment_patch(in.data(), out.data(), P, a, 1);
  EXPECT_EQ(out, in);
}

TEST(Augment, HueShiftLeavesGreysGrey) {
  wsi::AugmentParams a = wsi::AugmentParams::none();
  a.hue = 0.1;
  a.saturation = 0.2;
  std::vector<uint8_t> in(P * P * 3), out(in.size());
  for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<uint8_t>(i / 3 % 256);
  wsi::augment_patch(in.data(), out.data(), P, a, 5);
  EXPECT_EQ(out, in);  // value untouched, greys have no hue or saturation
  a.value = 0.1;
  wsi::augment_patch(in.data(), out.data(), P, a, 5);
  for (size_t i = 0; i < in.size(); i += 3) {
    EXPECT_EQ(out[i], out[i + 1]);
    EXPECT_EQ(out[i], out[i + 2]);
  }
}

TEST(Random, UniformIsInRangeAndSeeded) {
  wsi::SplitMix64 a(1), b(1);
  for (int i = 0; i < 1000; ++i) {
    const double u = a.uniform();
    EXPECT_GE(u, 0.0);
    EXPECT_LT(u, 1.0);
    EXPECT_EQ(u, b.uniform());
  }
}

}  // namespace
