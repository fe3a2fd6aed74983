// The patch grid: level choice by mpp, level-0 geometry, edge policy, tissue filter, resampling.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "test_support.hpp"
#include "wsi/error.hpp"
#include "wsi/grid.hpp"
#include "wsi/slide.hpp"
#include "wsi/synth.hpp"
#include "wsi/tissue.hpp"

namespace wsi {
namespace {

std::vector<LevelInfo> pyramid(int64_t w, int64_t h, int n) {
  std::vector<LevelInfo> v;
  for (int i = 0; i < n; ++i) v.push_back({w >> i, h >> i, static_cast<double>(1 << i), 256, 256});
  return v;
}

TEST(GridGeometry, PcamTargetOn40xSlideReadsLevel1AndResamples) {
  // 0.25 um/px level 0, levels 0.25 / 0.5 / 1.0: 0.972 um is read from level 1 (0.5 um).
  const auto g = resolve_geometry(pyramid(100000, 80000, 3), 0.25, GridParams{});
  EXPECT_EQ(g.level, 1);
  EXPECT_DOUBLE_EQ(g.size_level0, 96 * 0.972 / 0.25);
  EXPECT_EQ(g.read_size, std::llround(96 * 0.972 / 0.5));  // 187 level-1 pixels
  EXPECT_EQ(g.patch_size, 96);
}

TEST(GridGeometry, ExactLevelMatchReadsOneToOne) {
  GridParams p;
  p.target_mpp = 1.0;
  const auto g = resolve_geometry(pyramid(8192, 8192, 4), 0.25, p);
  EXPECT_EQ(g.level, 2);
  EXPECT_EQ(g.read_size, 96);
  EXPECT_DOUBLE_EQ(g.size_level0, 384);
}

TEST(GridGeometry, ExplicitLevelOverridesTargetMpp) {
  GridParams p;
  p.level = 1;
  const auto g = resolve_geometry(pyramid(8192, 8192, 4), 0.0, p);  // mpp unknown is fine with a level
  EXPECT_EQ(g.level, 1);
  EXPECT_EQ(g.read_size, 96);
  EXPECT_DOUBLE_EQ(g.size_level0, 192);
  EXPECT_EQ(g.target_mpp, 0.0);
}

TEST(GridGeometry, UnknownMppWithoutLevelAsksForMpp) {
  try {
    resolve_geometry(pyramid(1000, 1000, 1), 0.0, GridParams{});
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("--mpp"), std::string::npos);
  }
}

TEST(GridGeometry, TargetFinerThanLevel0IsRefusedSayingWhatWouldDo) {
  const auto message = [](double level0_mpp, double target) {
    GridParams p;
    p.target_mpp = target;
    try {
      resolve_geometry(pyramid(1000, 1000, 1), level0_mpp, p);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const std::string far = message(7.776, 0.972);
  EXPECT_NE(far.find("--target-mpp 7.776 or coarser"), std::string::npos) << far;
  EXPECT_EQ(far.find("--mpp-tolerance"), std::string::npos) << far;  // 700 % is no tolerance
  const std::string near = message(0.25, 0.245);
  EXPECT_NE(near.find("--mpp-tolerance 0.021"), std::string::npos) << near;
}

TEST(GridGeometry, BadParamsAreRejected) {
  GridParams p;
  p.patch_size = 4;
  EXPECT_THROW(p.validate(), ConfigError);
  p = {};
  p.stride = 0;
  EXPECT_THROW(p.validate(), ConfigError);
  p = {};
  p.min_tissue = 1.5;
  EXPECT_THROW(p.validate(), ConfigError);
  p = {};
  p.mpp_tolerance = -0.01;
  EXPECT_THROW(p.validate(), ConfigError);
  p.mpp_tolerance = 0.3;  // more than a quarter: no longer "about the same resolution"
  EXPECT_THROW(p.validate(), ConfigError);
  p.mpp_tolerance = 0.25;
  EXPECT_NO_THROW(p.validate());
  p = {};
  p.level = 9;
  EXPECT_THROW(resolve_geometry(pyramid(1000, 1000, 2), 0.25, p), ConfigError);
}

PatchGeometry level0_geometry(int size, int stride) {
  GridParams p;
  p.level = 0;
  p.patch_size = size;
  p.stride = stride;
  return resolve_geometry(pyramid(100000, 100000, 1), 0.0, p);
}

TEST(GridLayout, InsidePolicyKeepsOnlyWholePatchesFromBoundsOrigin) {
  GridParams p;
  p.level = 0;
  const Bounds b{1000, 2000, 300, 200, true};  // 3 x 2 whole 96-px patches, with leftovers
  const auto grid = make_grid(b, level0_geometry(96, 96), p, nullptr);
  EXPECT_EQ(grid.cols, 3);
  EXPECT_EQ(grid.rows, 2);
  ASSERT_EQ(grid.patches.size(), 6u);
  EXPECT_EQ(grid.patches[0].x, 1000);
  EXPECT_EQ(grid.patches[0].y, 2000);
  EXPECT_EQ(grid.patches[5].x, 1000 + 2 * 96);
  EXPECT_EQ(grid.patches[5].y, 2000 + 96);
  for (const auto& g : grid.patches) {
    EXPECT_LE(g.x + 96, b.x + b.width);
    EXPECT_LE(g.y + 96, b.y + b.height);
  }
}

TEST(GridLayout, PadPolicyKeepsPartialPatches) {
  GridParams p;
  p.level = 0;
  p.edge = EdgePolicy::pad;
  const auto grid = make_grid(Bounds{0, 0, 300, 200, false}, level0_geometry(96, 96), p, nullptr);
  EXPECT_EQ(grid.cols, 4);
  EXPECT_EQ(grid.rows, 3);
}

TEST(GridLayout, OverlappingStrideGivesMorePatches) {
  GridParams p;
  p.level = 0;
  p.stride = 48;
  const auto grid = make_grid(Bounds{0, 0, 480, 96, false}, level0_geometry(96, 48), p, nullptr);
  EXPECT_EQ(grid.cols, 9);  // starts 0, 48, ..., 384
  EXPECT_EQ(grid.patches.back().x, 384);
}

// The mpp a TIFF resolution tag gives back is the nominal one rounded (0.972 µm as 0.9720004
// here, as a tester's slide had; 0.9719996 the other way): n whole patches stay n cells under
// both edge policies, read 1:1 from level 0 or 2x from a level-1 that is read 1:1.
TEST(GridLayout, RoundedMppOfASlideOfExactlyNPatchesGivesNCells) {
  for (const double mpp : {0.9720004, 0.9719996}) {
    for (const EdgePolicy edge : {EdgePolicy::inside, EdgePolicy::pad}) {
      GridParams p;
      p.target_mpp = 0.972;
      p.min_tissue = 0;
      p.edge = edge;
      const auto levels = pyramid(960 * 4, 768 * 4, 3);  // level 2 holds 10 x 8 patches
      const PatchGeometry g0 = resolve_geometry(pyramid(960, 768, 1), mpp, p);
      EXPECT_DOUBLE_EQ(g0.size_level0, 96);
      const PatchGrid grid0 = make_grid(Bounds{0, 0, 960, 768, false}, g0, p, nullptr);
      EXPECT_EQ(grid0.cols, 10) << mpp;
      EXPECT_EQ(grid0.rows, 8) << mpp;
      const PatchGeometry g2 = resolve_geometry(levels, mpp / 4, p);
      EXPECT_EQ(g2.level, 2);
      EXPECT_DOUBLE_EQ(g2.size_level0, 384);
      const PatchGrid grid2 = make_grid(Bounds{0, 0, 3840, 3072, false}, g2, p, nullptr);
      EXPECT_EQ(grid2.cols, 10) << mpp;
      EXPECT_EQ(grid2.rows, 8) << mpp;
    }
  }
}

// Resampled reads (no 1:1 level) keep the mpp ratio; a leftover of under 1/1000 of a stride
// makes no extra cell, a longer one does (pad), and an overhang that small still fits (inside).
TEST(GridLayout, LeftoversShorterThanAThousandthOfAStrideMakeNoCell) {
  GridParams p;
  p.level = 0;
  p.min_tissue = 0;
  p.edge = EdgePolicy::pad;
  PatchGeometry g = level0_geometry(96, 96);
  g.size_level0 = g.stride_level0 = 96.00005;  // 10 cells end at 960.0005
  EXPECT_EQ(make_grid(Bounds{0, 0, 960, 96, false}, g, p, nullptr).cols, 10);
  g.size_level0 = g.stride_level0 = 95.99995;  // 10 cells end at 959.9995
  EXPECT_EQ(make_grid(Bounds{0, 0, 960, 96, false}, g, p, nullptr).cols, 10);
  EXPECT_EQ(make_grid(Bounds{0, 0, 961, 96, false}, g, p, nullptr).cols, 11);
  p.edge = EdgePolicy::inside;
  g.size_level0 = g.stride_level0 = 96.00005;
  EXPECT_EQ(make_grid(Bounds{0, 0, 960, 96, false}, g, p, nullptr).cols, 10);
  EXPECT_EQ(make_grid(Bounds{0, 0, 959, 96, false}, g, p, nullptr).cols, 9);
  EXPECT_EQ(make_grid(Bounds{0, 0, 50, 96, false}, g, p, nullptr).cols, 0);
}

// The same end to end: synthetic slides of exactly 10 x 8 patches written with their mpp in the
// TIFF resolution tags (0.972 µm reads back coarser, 0.9 µm finer), opened, gridded at the mpp.
TEST(GridLayout, SyntheticSlideOfExactlyNPatchesWithATiffRationalMppGivesNCells) {
  const test::ScratchDir dir;
  for (const double mpp : {0.972, 0.9}) {
    SynthParams sp;
    sp.width = 960;
    sp.height = 768;
    sp.mpp = mpp;
    sp.tumours = 0;
    SynthOutputs out;
    out.slide = dir / ("exact-" + std::to_string(mpp) + ".tif");
    write_synthetic_slide(SynthScene(sp), out, 1);
    const Slide slide(out.slide);
    ASSERT_EQ(slide.mpp().source, MppSource::tiff_resolution);
    EXPECT_NE(slide.mpp().x, mpp) << "the tag gives " << slide.mpp().x << ": no rounding to guard against";
    EXPECT_NEAR(slide.mpp().x, mpp, 1e-6);
    for (const EdgePolicy edge : {EdgePolicy::inside, EdgePolicy::pad}) {
      GridParams p;
      p.target_mpp = mpp;
      p.min_tissue = 0;
      p.edge = edge;
      const PatchGrid grid = make_grid(slide.bounds(), resolve_geometry(slide, p), p, nullptr);
      EXPECT_EQ(grid.cols, 10) << mpp;
      EXPECT_EQ(grid.rows, 8) << mpp;
      EXPECT_EQ(grid.patches.size(), 80u) << mpp;
    }
  }
}

TEST(GridLayout, NonIntegerLevel0StepIsRoundedNotAccumulated) {
  // 0.972 / 0.25 = 3.888 level-0 px per target px: patch k starts at round(k * 373.248).
  const auto g = resolve_geometry(pyramid(100000, 100000, 1), 0.25, GridParams{});
  GridParams p;
  const auto grid = make_grid(Bounds{0, 0, 100000, 400, false}, g, p, nullptr);
  ASSERT_GT(grid.patches.size(), 200u);
  EXPECT_EQ(grid.patches[200].x, std::llround(200 * 373.248));
}

TEST(GridLayout, TissueFilterUsesMinimumFraction) {
  // A 4 x 1 mask, each pixel 96 level-0 px: tissue in the left half only.
  TissueMask m;
  m.mask = GrayImage(4, 1, 0);
  m.mask.at(0, 0) = m.mask.at(1, 0) = 255;
  m.downsample_x = m.downsample_y = 96;
  GridParams p;
  p.level = 0;
  p.min_tissue = 0.5;
  auto grid = make_grid(Bounds{0, 0, 384, 96, false}, level0_geometry(96, 48), p, &m);
  // Starts 0, 48, 96, 144, 192, 240, 288: fractions 1, 1, 1, .5, 0, 0, 0.
  ASSERT_EQ(grid.patches.size(), 4u);
  EXPECT_FLOAT_EQ(grid.patches[3].tissue, 0.5f);
  p.min_tissue = 0;
  grid = make_grid(Bounds{0, 0, 384, 96, false}, level0_geometry(96, 48), p, &m);
  EXPECT_EQ(grid.patches.size(), 7u);
}

TEST(GridRegion, PatchRegionIsLevel0OriginWithLevelSize) {
  const auto g = resolve_geometry(pyramid(100000, 80000, 3), 0.25, GridParams{});
  const Region r = patch_region(GridPatch{1234, 5678, 0, 0, 1}, g);
  EXPECT_EQ(r, (Region{1, 1234, 5678, g.read_size, g.read_size}));
}

TEST(GridGeometry, SmallerOutputSizeReadsTheCoarsestLevelThatStillResolvesIt) {
  // The demo model: 96 px at 0.972 um resized to 48 px = 1.944 um per input pixel.
  const auto g = resolve_geometry(pyramid(100000, 80000, 5), 0.25, GridParams{});
  const PatchGeometry r = geometry_for_size(pyramid(100000, 80000, 5), g, 48);
  EXPECT_EQ(r.level, 2);  // 1.0 um; level 3 (2.0 um) would be coarser than 1.944
  EXPECT_EQ(r.read_size, std::llround(96 * 0.972 / 1.0));  // 93 level-2 pixels, resampled to 48
  EXPECT_EQ(r.patch_size, 48);
  EXPECT_NEAR(r.target_mpp, 1.944, 1e-9);
  // The same patches: same level-0 footprint and stride, so the same grid.
  EXPECT_EQ(r.size_level0, g.size_level0);
  EXPECT_EQ(r.stride_level0, g.stride_level0);
  // On a Camelyon16 slide (0.243 um, levels 0.243 / 0.486 / 0.972 / 1.944) level 3 is exact:
  // 48 px read 1:1, nothing resampled.
  GridParams cam;
  cam.target_mpp = 0.972;
  const auto gc = resolve_geometry(pyramid(100000, 200000, 5), 0.243, cam);
  const PatchGeometry rc = geometry_for_size(pyramid(100000, 200000, 5), gc, 48);
  EXPECT_EQ(rc.level, 3);
  EXPECT_EQ(rc.read_size, 48);
  // The same size changes nothing; an explicit level is honoured the same way.
  EXPECT_EQ(geometry_for_size(pyramid(100000, 80000, 5), g, 96).level, g.level);
  GridParams lv;
  lv.level = 0;
  const auto g0 = resolve_geometry(pyramid(8192, 8192, 4), 0.25, lv);
  const PatchGeometry r0 = geometry_for_size(pyramid(8192, 8192, 4), g0, 48);
  EXPECT_EQ(r0.level, 1);
  EXPECT_EQ(r0.read_size, 48);
  EXPECT_THROW(geometry_for_size(pyramid(8192, 8192, 4), g0, 0), ConfigError);
}

TEST(GridGeometry, MppToleranceReadsACoarserLevelButKeepsTheExactFootprint) {
  // A 0.25 um scan (levels 0.25 / 0.5 / 1.0 / 2.0 / 4.0 um) and the demo model's 96 px at 0.972
  // um, fed at 48 px (1.944 um).
  const auto levels = pyramid(100000, 80000, 5);
  GridParams exact;
  exact.target_mpp = 0.972;
  const PatchGeometry ge = resolve_geometry(levels, 0.25, exact);
  const PatchGeometry re = geometry_for_size(levels, ge, 48, exact.mpp_tolerance);
  EXPECT_EQ(ge.level, 1);  // 0.5 um, shrunk from 187 px
  EXPECT_EQ(re.level, 2);  // 1.0 um, 93 px shrunk to 48
  EXPECT_EQ(re.read_size, 93);
  GridParams tol = exact;
  tol.mpp_tolerance = 0.03;  // 1.0 um is 2.9 % coarser than 0.972, 2.0 um 2.9 % coarser than 1.944
  const PatchGeometry gt = resolve_geometry(levels, 0.25, tol);
  const PatchGeometry rt = geometry_for_size(levels, gt, 48, tol.mpp_tolerance);
  EXPECT_EQ(gt.level, 2);
  EXPECT_EQ(gt.read_size, 93);  // 93 level-2 pixels enlarged to 96
  EXPECT_EQ(rt.level, 3);
  EXPECT_EQ(rt.read_size, 47);  // 47 level-3 pixels enlarged to 48: a quarter of the pixels to decode
  // The patches themselves do not move or grow: the same grid as the exact run.
  EXPECT_EQ(gt.size_level0, ge.size_level0);
  EXPECT_EQ(gt.stride_level0, ge.stride_level0);
  EXPECT_EQ(rt.size_level0, re.size_level0);
  EXPECT_DOUBLE_EQ(gt.target_mpp, 0.972);
  // 2 % does not reach the 2.9 % coarser level.
  tol.mpp_tolerance = 0.02;
  EXPECT_EQ(resolve_geometry(levels, 0.25, tol).level, 1);
  // A target slightly finer than level 0 is refused exactly, and enlarges level 0 within the tolerance.
  GridParams fine;
  fine.target_mpp = 0.245;
  EXPECT_THROW(resolve_geometry(levels, 0.25, fine), ConfigError);
  fine.mpp_tolerance = 0.03;
  const PatchGeometry g0 = resolve_geometry(levels, 0.25, fine);
  EXPECT_EQ(g0.level, 0);
  EXPECT_EQ(g0.read_size, 94);  // 96 * 0.245 / 0.25
}

TEST(GridGeometry, HintNamesTheToleranceThatReadsTheNextLevelOnlyWhenSmall) {
  const auto levels = pyramid(100000, 80000, 5);  // 0.25 / 0.5 / 1.0 / 2.0 / 4.0 um
  GridParams p;
  p.target_mpp = 0.972;
  const PatchGeometry g = resolve_geometry(levels, 0.25, p);  // level 1, 187 px shrunk to 96
  ASSERT_TRUE(tolerance_for_next_level(levels, g));
  EXPECT_NEAR(*tolerance_for_next_level(levels, g), 1.0 / 0.972 - 1, 1e-9);
  const std::string hint = mpp_tolerance_hint(levels, g);
  EXPECT_NE(hint.find("level 2 is only 2.9 % coarser"), std::string::npos) << hint;
  EXPECT_NE(hint.find("--mpp-tolerance 0.03 would read it instead of level 1, 4x fewer pixels"), std::string::npos)
      << hint;
  EXPECT_EQ(mpp_tolerance_hint(levels, g, 0.02), "");
  // Nothing to say when a level matches (read 1:1), when the tolerance already took the next
  // level, or when the next level is far coarser.
  p.target_mpp = 1.0;
  EXPECT_FALSE(tolerance_for_next_level(levels, resolve_geometry(levels, 0.25, p)));
  p.target_mpp = 0.972;
  p.mpp_tolerance = 0.03;
  EXPECT_EQ(mpp_tolerance_hint(levels, resolve_geometry(levels, 0.25, p)), "");
  p = {};
  p.target_mpp = 0.7;  // level 1 (0.5 um); level 2 is 43 % coarser
  EXPECT_EQ(mpp_tolerance_hint(levels, resolve_geometry(levels, 0.25, p)), "");
}

TEST(Resample, AreaAverageIsWithinOneLevelOfTheExactCoverageMean) {
  // Exact reference: each output pixel's coverage-weighted mean in double, on a textured image.
  for (const auto& [n, m] : {std::pair<int64_t, int64_t>{187, 96}, {93, 48}, {373, 48}, {50, 49}, {47, 48}, {93, 96}}) {
    std::vector<uint8_t> src(static_cast<size_t>(n * n * 3)), dst(static_cast<size_t>(m * m * 3));
    for (int64_t i = 0; i < n * n * 3; ++i) src[static_cast<size_t>(i)] = static_cast<uint8_t>((i * 7919 + (i / 3) % 13 * 17) % 256);
    resample_area(src.data(), n, dst.data(), m);
    const double s = static_cast<double>(n) / static_cast<double>(m);
    const auto d = [](int64_t v) { return static_cast<double>(v); };
    const auto cover = [&](int64_t o, int64_t i) {
      return std::max(0.0, std::min(d(o) * s + s, d(i) + 1.0) - std::max(d(o) * s, d(i)));
    };
    int worst = 0;
    for (int64_t oy = 0; oy < m; ++oy)
      for (int64_t ox = 0; ox < m; ++ox)
        for (int64_t c = 0; c < 3; ++c) {
          double sum = 0, wsum = 0;
          for (auto y = static_cast<int64_t>(d(oy) * s); y < std::min(n, static_cast<int64_t>(std::ceil(d(oy) * s + s))); ++y)
            for (auto x = static_cast<int64_t>(d(ox) * s); x < std::min(n, static_cast<int64_t>(std::ceil(d(ox) * s + s))); ++x) {
              const double w = cover(oy, y) * cover(ox, x);
              sum += w * src[static_cast<size_t>((y * n + x) * 3 + c)];
              wsum += w;
            }
          const int got = dst[static_cast<size_t>((oy * m + ox) * 3 + c)];
          worst = std::max(worst, std::abs(got - static_cast<int>(std::lround(sum / wsum))));
        }
    EXPECT_LE(worst, 1) << n << " -> " << m;
  }
}

TEST(Resample, AreaAverageOfIntegerFactorIsBlockMean) {
  std::vector<uint8_t> src(4 * 4 * 3), dst(2 * 2 * 3);
  for (int i = 0; i < 16; ++i) src[static_cast<size_t>(i * 3)] = static_cast<uint8_t>(i * 10);
  resample_area(src.data(), 4, dst.data(), 2);
  EXPECT_EQ(dst[0], (0 + 10 + 40 + 50) / 4);       // top-left block
  EXPECT_EQ(dst[3 * 3], (100 + 110 + 140 + 150) / 4);  // bottom-right block
}

TEST(Resample, NonIntegerFactorPreservesMeanAndConstants) {
  std::vector<uint8_t> src(187 * 187 * 3, 77), dst(96 * 96 * 3);
  resample_area(src.data(), 187, dst.data(), 96);
  for (uint8_t v : dst) ASSERT_EQ(v, 77);
  // A left/right split image keeps its mean within rounding.
  for (int y = 0; y < 187; ++y)
    for (int x = 0; x < 187; ++x) src[static_cast<size_t>((y * 187 + x) * 3)] = x < 93 ? 0 : 200;
  resample_area(src.data(), 187, dst.data(), 96);
  double mean_src = 0, mean_dst = 0;
  for (int i = 0; i < 187 * 187; ++i) mean_src += src[static_cast<size_t>(i * 3)];
  for (int i = 0; i < 96 * 96; ++i) mean_dst += dst[static_cast<size_t>(i * 3)];
  EXPECT_NEAR(mean_src / (187.0 * 187), mean_dst / (96.0 * 96), 0.6);
}

}  // namespace
}  // namespace wsi
