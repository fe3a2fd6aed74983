// The libtiff pixel backend (src/slide/tiff_tile_reader.cpp) against the libvips backend it
// replaced: byte-identical regions at every level, on generated and real generic TIFFs; a
// damaged tile fails only the reads that touch it; concurrent reads and a tiny tile cache change
// nothing.
#include <gtest/gtest.h>
#include <tiffio.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <random>
#include <thread>

#include "slide/pixel_reader.hpp"
#include "test_support.hpp"
#include "wsi/error.hpp"
#include "wsi/slide.hpp"
#include "wsi/synth.hpp"

namespace wsi {
namespace {

namespace fs = std::filesystem;
using test::testdata;

// A 3000 x 2000 synthetic slide (JPEG YCbCr, 256² tiles, levels down to 187 x 125) and its
// 1-band deflate mask, shared by the tests of this build.
struct SynthFiles {
  fs::path slide, mask;
};

const SynthFiles& synth_files() {
  static const SynthFiles f = [] {
    SynthFiles x;
    x.slide = test::fixture_dir() / "tiff-reader-3000x2000-s7.tif";
    x.mask = test::fixture_dir() / "tiff-reader-3000x2000-s7.mask.tif";
    if (!fs::exists(x.slide) || !fs::exists(x.mask)) {
      SynthParams p;
      p.width = 3000;
      p.height = 2000;
      p.seed = 7;
      SynthOutputs out;
      out.slide = x.slide;
      out.mask = x.mask;
      write_synthetic_slide(SynthScene(p), out, 2);
    }
    return x;
  }();
  return f;
}

struct Backends {
  std::vector<LevelInfo> levels;
  std::unique_ptr<detail::PixelReader> tiff, vips;
};

Backends open_both(const fs::path& path, size_t cache_bytes = detail::kTiffTileCacheBytes) {
  Backends b;
  b.levels = Slide(path).levels();
  b.tiff = detail::try_make_tiff_tile_reader(path, b.levels, cache_bytes);
  b.vips = detail::try_make_vips_tiff_reader(path, b.levels);
  return b;
}

std::vector<uint8_t> read(const detail::PixelReader& r, const Region& g) {
  std::vector<uint8_t> rgb(static_cast<size_t>(g.w * g.h * 3));
  r.read(g, rgb.data());
  return rgb;
}

// "" when equal, else the first differing pixel (a whole-buffer diff would flood the log).
std::string first_difference(const std::vector<uint8_t>& got, const std::vector<uint8_t>& want, const Region& g) {
  if (got.size() != want.size()) return "sizes differ";
  for (size_t i = 0; i < got.size(); ++i)
    if (got[i] != want[i]) {
      const auto px = static_cast<int64_t>(i / 3);
      return "pixel (" + std::to_string(px % g.w) + ", " + std::to_string(px / g.w) + ") channel " +
             std::to_string(i % 3) + ": " + std::to_string(got[i]) + " vs " + std::to_string(want[i]);
    }
  return "";
}

// Random regions at `level`: inside, across the right/bottom/top-left edges and wholly outside.
std::vector<Region> random_regions(const std::vector<LevelInfo>& levels, int level, int count, uint32_t seed) {
  std::mt19937 rng(seed);
  const LevelInfo& l = levels[static_cast<size_t>(level)];
  const int64_t w0 = levels[0].width, h0 = levels[0].height;
  auto uniform = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  std::vector<Region> v;
  for (int i = 0; i < count; ++i) {
    const int64_t w = uniform(1, std::min<int64_t>(l.width + 40, 400));
    const int64_t h = uniform(1, std::min<int64_t>(l.height + 40, 400));
    v.push_back(Region{level, uniform(-w0 / 10, w0), uniform(-h0 / 10, h0), w, h});
  }
  const auto ds = static_cast<int64_t>(std::ceil(l.downsample));
  v.push_back(Region{level, w0 - 30 * ds, h0 / 3, 100, 100});      // across the right edge
  v.push_back(Region{level, w0 / 3, h0 - 30 * ds, 100, 100});      // across the bottom edge
  v.push_back(Region{level, w0 - 10 * ds, h0 - 10 * ds, 64, 64});  // across the corner
  v.push_back(Region{level, -50 * ds, -50 * ds, 100, 100});        // across the top-left corner
  v.push_back(Region{level, w0 + 5, 0, 50, 50});                   // wholly outside
  v.push_back(Region{level, -1000 * ds, -1000 * ds, 20, 20});      // wholly outside
  v.push_back(Region{level, 0, 0, l.width, l.height});             // the whole level
  return v;
}

void expect_backends_agree(const fs::path& path, int per_level, size_t cache_bytes = detail::kTiffTileCacheBytes) {
  const Backends b = open_both(path, cache_bytes);
  ASSERT_TRUE(b.tiff) << path;
  ASSERT_TRUE(b.vips) << path;
  EXPECT_EQ(b.tiff->name(), "libtiff");
  for (int level = 0; level < static_cast<int>(b.levels.size()); ++level)
    for (const Region& g : random_regions(b.levels, level, per_level, 1234u + static_cast<uint32_t>(level)))
      EXPECT_EQ(first_difference(read(*b.tiff, g), read(*b.vips, g), g), "") << path.filename() << " " << to_string(g);
}

TEST(TiffTileReader, SyntheticJpegSlideMatchesLibvipsAtEveryLevel) {
  const Slide s(synth_files().slide);
  ASSERT_GE(s.level_count(), 4);
  EXPECT_LT(s.levels().back().width, 256) << "the smallest level should be smaller than one tile";
  expect_backends_agree(synth_files().slide, 40);
}

TEST(TiffTileReader, SyntheticOneBandDeflateMaskMatchesLibvips) { expect_backends_agree(synth_files().mask, 40); }

TEST(TiffTileReader, ATinyTileCacheGivesTheSameBytes) {
  expect_backends_agree(synth_files().slide, 15, 1);                  // nothing cached: every tile decoded per read
  expect_backends_agree(synth_files().slide, 15, 256 * 256 * 3 * 2);  // two tiles: constant eviction
}

TEST(TiffTileReader, BoxesLevelsSmallerThanATileMatchLibvips) {
  // OpenSlide 3.4.1 misdecodes levels 2 and 3 of this file.
  expect_backends_agree(testdata("slides/boxes.tiff"), 30);
}

TEST(TiffTileReader, CamelyonJpegYcbcrTilesMatchLibvips) {
  const fs::path path = testdata("slides/tumor_001aaf.tif");
  const Backends b = open_both(path);
  ASSERT_TRUE(b.tiff);
  ASSERT_TRUE(b.vips);
  for (const Region& g : {Region{0, 0, 0, 512, 512}, Region{0, 1000, 3000, 700, 300}, Region{0, 2900, 7000, 300, 300},
                          Region{0, 1500, 2500, 96, 96}})
    EXPECT_EQ(first_difference(read(*b.tiff, g), read(*b.vips, g), g), "") << to_string(g);
}

// Copies `from` to `to` with the bytes of level 0's tile at level-0 pixel (x, y) zeroed.
void copy_with_zeroed_tile(const fs::path& from, const fs::path& to, uint32_t x, uint32_t y) {
  fs::copy_file(from, to);
  uint64_t offset = 0, size = 0;
  {
    TIFF* t = TIFFOpen(to.c_str(), "r");
    ASSERT_NE(t, nullptr);
    uint64_t* offsets = nullptr;
    uint64_t* sizes = nullptr;
    ASSERT_TRUE(TIFFGetField(t, TIFFTAG_TILEOFFSETS, &offsets));
    ASSERT_TRUE(TIFFGetField(t, TIFFTAG_TILEBYTECOUNTS, &sizes));
    const uint32_t tile = TIFFComputeTile(t, x, y, 0, 0);
    offset = offsets[tile];
    size = sizes[tile];
    TIFFClose(t);
  }
  std::fstream f(to, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>(offset));
  const std::string zeros(size, '\0');
  f.write(zeros.data(), static_cast<std::streamsize>(zeros.size()));
  ASSERT_TRUE(f.good());
}

TEST(TiffTileReader, DamagedTileFailsOnlyReadsTouchingItAndSaysSo) {
  test::ScratchDir dir;
  const fs::path damaged = dir / "damaged.tif";
  copy_with_zeroed_tile(synth_files().slide, damaged, 512, 768);  // level-0 tile [512, 768) x [768, 1024)
  const Slide bad(damaged);
  const Slide good(synth_files().slide);
  ASSERT_EQ(bad.pixel_backend(), "libtiff");
  const Region touching{0, 700, 1000, 64, 64};
  testing::internal::CaptureStderr();
  for (int attempt = 0; attempt < 2; ++attempt) {
    try {
      bad.read_region(touching);
      ADD_FAILURE() << "the zeroed tile decoded";
    } catch (const RegionReadError& e) {
      const std::string msg = e.what();
      EXPECT_EQ(e.region(), touching);
      EXPECT_EQ(e.path(), damaged);
      EXPECT_NE(msg.find(damaged.string()), std::string::npos) << msg;
      EXPECT_NE(msg.find("x=700 y=1000"), std::string::npos) << msg;
      EXPECT_NE(msg.find("(512, 768)"), std::string::npos) << msg;
      EXPECT_NE(msg.find("damaged at this place; re-export it"), std::string::npos) << msg;
    }
  }
  // Elsewhere (other level-0 tiles, the same place at level 1), and after the failures, reads give
  // the intact file's pixels, and nothing is printed.
  for (const Region& g : {Region{0, 0, 0, 512, 512}, Region{0, 768, 768, 300, 300}, Region{0, 256, 1024, 256, 256},
                          Region{1, 0, 0, 1500, 1000}})
    EXPECT_EQ(first_difference(bad.read_region(g).pixels, good.read_region(g).pixels, g), "") << to_string(g);
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
}

TEST(TiffTileReader, ConcurrentReadsMatchSerialReads) {
  for (const size_t cache : {detail::kTiffTileCacheBytes, size_t{1} << 20}) {
    const Backends b = open_both(synth_files().slide, cache);
    std::vector<Region> regions;
    for (int level = 0; level < 3; ++level)
      for (const Region& g : random_regions(b.levels, level, 60, 99u + static_cast<uint32_t>(level)))
        regions.push_back(g);
    std::vector<std::vector<uint8_t>> serial;
    {
      const auto fresh = detail::try_make_tiff_tile_reader(synth_files().slide, b.levels, cache);
      for (const Region& g : regions) serial.push_back(read(*fresh, g));
    }
    constexpr int kThreads = 4;
    std::vector<std::vector<std::vector<uint8_t>>> got(kThreads, std::vector<std::vector<uint8_t>>(regions.size()));
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
      threads.emplace_back([&, t] {
        // Each thread walks all regions from a different start, so threads race for the same tiles.
        for (size_t k = 0; k < regions.size(); ++k) {
          const size_t i = (k + static_cast<size_t>(t) * regions.size() / kThreads) % regions.size();
          got[static_cast<size_t>(t)][i] = read(*b.tiff, regions[i]);
        }
      });
    for (auto& th : threads) th.join();
    for (int t = 0; t < kThreads; ++t)
      for (size_t i = 0; i < regions.size(); ++i)
        EXPECT_EQ(first_difference(got[static_cast<size_t>(t)][i], serial[i], regions[i]), "")
            << "thread " << t << " cache " << cache << " " << to_string(regions[i]);
  }
}

TEST(TiffTileReader, SlideUsesLibtiffForGenericTiffUnlessAnotherBackendIsForced) {
  EXPECT_EQ(Slide(testdata("slides/boxes.tiff")).pixel_backend(), "libtiff");
  EXPECT_EQ(Slide(synth_files().mask).pixel_backend(), "libtiff");
  EXPECT_EQ(Slide(testdata("slides/cmu-1-small-region.svs")).pixel_backend(), "openslide");
  ::setenv("WSI_PIXEL_BACKEND", "libvips", 1);
  EXPECT_EQ(Slide(testdata("slides/boxes.tiff")).pixel_backend(), "libvips");
  ::setenv("WSI_PIXEL_BACKEND", "openslide", 1);
  EXPECT_EQ(Slide(testdata("slides/boxes.tiff")).pixel_backend(), "openslide");
  ::setenv("WSI_PIXEL_BACKEND", "vips", 1);
  EXPECT_THROW(Slide(testdata("slides/boxes.tiff")), UsageError);
  ::unsetenv("WSI_PIXEL_BACKEND");
}

}  // namespace
}  // namespace wsi
