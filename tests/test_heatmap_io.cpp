// Heatmap outputs (wsi/heatmap_io.hpp): the streaming pyramidal TIFF writer read back with libtiff
// (sizes, tags, SubIFD layout, exact level 0, each coarser level against a reference 2x2 shrink
// of the level above) and through OpenSlide 3.4.1's C API and python3-openslide (every pixel, at
// sizes around one tile); failure modes (destroyed early, unwritable directory, disk full, bad
// options); the inferno colour map and the overlay blend.
#include <gtest/gtest.h>
#include <openslide.h>
#include <sys/resource.h>
#include <tiffio.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "test_support.hpp"
#include "viewer_readback.hpp"
#include "wsi/error.hpp"
#include "wsi/heatmap_io.hpp"

namespace wsi {

void PrintTo(const LevelSize& s, std::ostream* os) { *os << s.width << "x" << s.height; }

namespace {

namespace fs = std::filesystem;
using Opts = PyramidTiffOptions;

constexpr int64_t kW = 1000, kH = 700;
constexpr double kMppX = 0.5, kMppY = 0.25;

// 128-px tiles: three levels (1000x700, 500x350, 250x175), each at least one tile.
Opts gray_options() {
  Opts o;
  o.width = kW;
  o.height = kH;
  o.tile = 128;
  o.channels = 1;
  o.mpp_x = kMppX;
  o.mpp_y = kMppY;
  o.description = "wsi-heatmap probability; slide=test.svs";
  return o;
}

// Level 0 of the u8 test map: a sawtooth gradient, so 2x2 blocks have unequal pixels.
uint8_t gradient(int64_t x, int64_t y) { return static_cast<uint8_t>((x + 3 * y) % 256); }

// Writes `pixels` (the whole level 0) in chunks of `chunk` rows, then finishes.
template <typename T>
void write_all(PyramidTiffWriter& w, const std::vector<T>& pixels, int64_t chunk) {
  const Opts& o = w.options();
  const int64_t row = o.width * o.channels;
  for (int64_t y = 0; y < o.height; y += chunk) w.write_rows(pixels.data() + y * row, std::min(chunk, o.height - y));
  w.finish();
}

std::vector<uint8_t> gradient_image(int64_t w, int64_t h) {
  std::vector<uint8_t> v(static_cast<size_t>(w * h));
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) v[static_cast<size_t>(y * w + x)] = gradient(x, y);
  return v;
}

using Dir = test::TiffLevel;

// Level k of the pyramid (level 0 or its SubIFD k - 1) read back with libtiff.
Dir read_dir(const fs::path& p, int level) { return test::read_tiff_level(p, level); }

bool is_bigtiff(const fs::path& p) {
  const test::TiffHandle f(p);
  return f.t && TIFFIsBigTIFF(f.t);
}

using test::ref_shrink_u8;

// ---------------------------------------------------------------------------------------------

// OpenSlide 3.4.1 misreads a non-JPEG level smaller than one tile (measured below): the tile
// shrinks to fit level 0 and the pyramid stops before a level smaller than it.
TEST(PyramidLevels, TileFitsLevel0AndLevelsStopBeforeOneSmallerThanATile) {
  struct Case {
    int64_t w, h;
    int tile, fitted;
    std::vector<LevelSize> levels;
  };
  const Case cases[] = {
      {1000, 700, 256, 256, {{1000, 700}, {500, 350}}},  // 250x175 would be smaller than a tile
      {1000, 700, 128, 128, {{1000, 700}, {500, 350}, {250, 175}}},
      {33, 25, 256, 16, {{33, 25}}},  // one pixel per patch of a 12000x9000 slide
      {300, 200, 256, 192, {{300, 200}}},
      {200, 3000, 256, 192, {{200, 3000}}},
      {256, 256, 256, 256, {{256, 256}}},
      {512, 1030, 256, 256, {{512, 1030}, {256, 515}}},
      {2000, 1100, 256, 256, {{2000, 1100}, {1000, 550}, {500, 275}}},
      {15, 300, 256, 16, {{15, 300}}},  // below 16 pixels: written, but 3.4.1 cannot decode it
  };
  for (const Case& c : cases) {
    Opts o = gray_options();
    o.width = c.w;
    o.height = c.h;
    o.tile = c.tile;
    EXPECT_EQ(pyramid_tile(o), c.fitted) << c.w << "x" << c.h;
    EXPECT_EQ(pyramid_levels(o), c.levels) << c.w << "x" << c.h;
  }
}

TEST(PyramidTiffWriter, U8GradientInOddChunksReadsBackWithTagsAndMeanLevels) {
  test::ScratchDir dir;
  const fs::path path = dir / "slide.prob.tif";
  const std::vector<uint8_t> img = gradient_image(kW, kH);
  {
    PyramidTiffWriter w(path, gray_options());
    write_all(w, img, 37);
    EXPECT_EQ(w.rows_written(), kH);
  }
  ASSERT_TRUE(fs::exists(path));
  EXPECT_TRUE(test::partial_files(dir.path()).empty());
  EXPECT_TRUE(is_bigtiff(path));
  // Level 0 alone in the main chain, levels 1 and 2 its SubIFDs (Bio-Formats' pyramid layout).
  EXPECT_EQ(test::tiff_main_directories(path), 1);
  ASSERT_EQ(test::tiff_level_count(path), 3);

  const std::vector<LevelSize> sizes{{1000, 700}, {500, 350}, {250, 175}};
  std::vector<uint8_t> expected = img;
  for (int k = 0; k < 3; ++k) {
    SCOPED_TRACE("level " + std::to_string(k));
    const Dir d = read_dir(path, k);
    EXPECT_EQ(d.width, sizes[size_t(k)].width);
    EXPECT_EQ(d.height, sizes[size_t(k)].height);
    EXPECT_EQ(d.tile_w, 128u);
    EXPECT_EQ(d.tile_h, 128u);
    EXPECT_EQ(d.subfiletype, k == 0 ? 0u : uint32_t{FILETYPE_REDUCEDIMAGE});
    EXPECT_EQ(d.spp, 1);
    EXPECT_EQ(d.bps, 8);
    EXPECT_EQ(d.format, SAMPLEFORMAT_UINT);
    EXPECT_EQ(d.photometric, PHOTOMETRIC_MINISBLACK);
    EXPECT_EQ(d.planar, PLANARCONFIG_CONTIG);
    // 32946, which ASAP's TIFF reader accepts (its source: 1, 5, 7, 32946 and 33005; not 8).
    EXPECT_EQ(d.compression, COMPRESSION_DEFLATE);
    EXPECT_EQ(d.resunit, RESUNIT_CENTIMETER);
    // 10000 / mpp pixels per cm at level 0, halved at each level.
    EXPECT_NEAR(d.xres, 20000.0 / (1 << k), 1e-3);
    EXPECT_NEAR(d.yres, 40000.0 / (1 << k), 1e-3);
    EXPECT_EQ(d.description, "wsi-heatmap probability; slide=test.svs");
    EXPECT_EQ(d.software.rfind("wsi-heatmap", 0), 0u) << d.software;
    EXPECT_EQ(d.bytes, expected);  // level 0 exact; coarser levels the rounded 2x2 mean
    if (k == 1) {
      // By hand: level-1 pixel (x, y) averages level-0 (2x..2x+1, 2y..2y+1) of (x + 3y) % 256.
      // (0,0): 0,1,3,4 -> 2. (10,5): 50,51,53,54 -> 52. (499,349): 3092..3096 % 256 -> 20,21,23,24 -> 22.
      // (127,0) straddles the wrap: 254,255,1,2 -> 128.
      EXPECT_EQ(d.at<uint8_t>(0, 0), 2);
      EXPECT_EQ(d.at<uint8_t>(10, 5), 52);
      EXPECT_EQ(d.at<uint8_t>(499, 349), 22);
      EXPECT_EQ(d.at<uint8_t>(127, 0), 128);
    }
    expected = ref_shrink_u8(expected, sizes[size_t(k)].width, sizes[size_t(k)].height, 1, false);
  }
}

TEST(PyramidTiffWriter, OddSizesAverageOnlyThePixelsThatExistAtEveryLevel) {
  test::ScratchDir dir;
  const fs::path path = dir / "odd.prob.tif";
  Opts o = gray_options();
  o.width = 333;
  o.height = 201;
  o.tile = 16;
  std::mt19937 rng(3);
  std::vector<uint8_t> img(333 * 201);
  for (auto& v : img) v = static_cast<uint8_t>(rng() & 255);
  {
    PyramidTiffWriter w(path, o);
    write_all(w, img, 1);  // one row at a time
  }
  const std::vector<LevelSize> sizes = pyramid_levels(o);
  ASSERT_EQ(test::tiff_level_count(path), static_cast<int>(sizes.size()));
  std::vector<uint8_t> expected = img;
  for (size_t k = 0; k < sizes.size(); ++k) {
    SCOPED_TRACE("level " + std::to_string(k));
    const Dir d = read_dir(path, static_cast<int>(k));
    EXPECT_EQ(d.width, sizes[k].width);
    EXPECT_EQ(d.height, sizes[k].height);
    EXPECT_EQ(d.bytes, expected);
    expected = ref_shrink_u8(expected, sizes[k].width, sizes[k].height, 1, false);
  }
  // By hand, the bottom-right level-1 pixel covers only level-0 (332, 200): it is that pixel.
  EXPECT_EQ(read_dir(path, 1).at<uint8_t>(166, 100), img[200 * 333 + 332]);
}

TEST(PyramidTiffWriter, MaxShrinkKeepsTheLargestValue) {
  test::ScratchDir dir;
  const fs::path path = dir / "labels.tif";
  Opts o = gray_options();
  o.shrink = Opts::Shrink::max;
  std::vector<uint8_t> img(static_cast<size_t>(kW * kH), 0);
  img[static_cast<size_t>(301 * kW + 601)] = 255;  // one tumour pixel
  const std::vector<uint8_t> grad = gradient_image(kW, kH);
  for (int64_t x = 0; x < kW; ++x) img[static_cast<size_t>(10 * kW + x)] = grad[static_cast<size_t>(10 * kW + x)];
  {
    PyramidTiffWriter w(path, o);
    write_all(w, img, 37);
  }
  ASSERT_EQ(test::tiff_level_count(path), 3);
  std::vector<uint8_t> expected = img;
  int64_t w = kW, h = kH;
  for (int k = 0; k < 3; ++k) {
    const Dir d = read_dir(path, k);
    EXPECT_EQ(d.bytes, expected) << "level " << k;
    expected = ref_shrink_u8(expected, w, h, 1, true);
    w = (w + 1) / 2;
    h = (h + 1) / 2;
  }
  EXPECT_EQ(read_dir(path, 1).at<uint8_t>(300, 150), 255);
  EXPECT_EQ(read_dir(path, 2).at<uint8_t>(150, 75), 255);
  // Row 10 of level 0 = (x + 30) % 256; level-1 (x, 5) = max of x' = 2x, 2x+1 -> (2x + 31) % 256 or wrap.
  EXPECT_EQ(read_dir(path, 1).at<uint8_t>(0, 5), 31);
  EXPECT_EQ(read_dir(path, 1).at<uint8_t>(112, 5), 255);  // 254, 255
  EXPECT_EQ(read_dir(path, 1).at<uint8_t>(113, 5), 1);    // 0, 1 after the wrap
}

TEST(PyramidTiffWriter, Float32RoundTripsAndMeansSkipNaN) {
  test::ScratchDir dir;
  const fs::path path = dir / "slide.prob.f32.tif";
  Opts o = gray_options();
  o.sample = Opts::SampleType::f32;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> img(static_cast<size_t>(kW * kH));
  for (int64_t y = 0; y < kH; ++y)
    for (int64_t x = 0; x < kW; ++x)
      img[static_cast<size_t>(y * kW + x)] = static_cast<float>(x) / 999.0f * static_cast<float>(y) / 699.0f;
  // Level-1 pixel (5, 5): three NaNs; (6, 5): all four NaN.
  img[10 * kW + 10] = img[10 * kW + 11] = img[11 * kW + 10] = nan;
  img[10 * kW + 12] = img[10 * kW + 13] = img[11 * kW + 12] = img[11 * kW + 13] = nan;
  {
    PyramidTiffWriter w(path, o);
    write_all(w, img, 37);
  }
  ASSERT_EQ(test::tiff_level_count(path), 3);
  const Dir d0 = read_dir(path, 0);
  EXPECT_EQ(d0.format, SAMPLEFORMAT_IEEEFP);
  EXPECT_EQ(d0.bps, 32);
  ASSERT_EQ(d0.bytes.size(), img.size() * 4);
  EXPECT_EQ(std::memcmp(d0.bytes.data(), img.data(), d0.bytes.size()), 0);  // bit-exact, NaNs included
  const Dir d1 = read_dir(path, 1);
  EXPECT_EQ(d1.width, 500u);
  auto px = [&](int64_t x, int64_t y) { return img[static_cast<size_t>(y * kW + x)]; };
  for (auto [x, y] : std::vector<std::pair<int64_t, int64_t>>{{0, 0}, {100, 40}, {499, 349}, {250, 17}}) {
    const float mean = (px(2 * x, 2 * y) + px(2 * x + 1, 2 * y) + px(2 * x, 2 * y + 1) + px(2 * x + 1, 2 * y + 1)) / 4;
    EXPECT_NEAR(d1.at<float>(x, y), mean, 1e-6) << x << "," << y;
  }
  EXPECT_FLOAT_EQ(d1.at<float>(5, 5), px(11, 11));
  EXPECT_TRUE(std::isnan(d1.at<float>(6, 5)));
  // Level 2 is the mean of level 1's means: here the mean of the 4x4 block of level 0.
  double sum = 0;
  for (int64_t y = 696; y < 700; ++y)
    for (int64_t x = 996; x < 1000; ++x) sum += px(x, y);
  EXPECT_NEAR(read_dir(path, 2).at<float>(249, 174), sum / 16, 1e-6);

  // OpenSlide opens float maps (level 0, properties) though it cannot decode their pixels.
  openslide_t* osr = openslide_open(path.c_str());
  ASSERT_NE(osr, nullptr);
  EXPECT_EQ(openslide_get_error(osr), nullptr);
  EXPECT_EQ(openslide_get_level_count(osr), 1);
  openslide_close(osr);
}

// A smooth RGB image: JPEG at quality 90 stays within a few levels of it.
std::vector<uint8_t> rgb_image(int64_t w, int64_t h) {
  std::vector<uint8_t> v(static_cast<size_t>(w * h * 3));
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) {
      uint8_t* p = &v[static_cast<size_t>((y * w + x) * 3)];
      p[0] = static_cast<uint8_t>(x * 255 / (w - 1));
      p[1] = static_cast<uint8_t>(y * 255 / (h - 1));
      p[2] = static_cast<uint8_t>(128 + 100 * std::sin(static_cast<double>(x + y) / 60.0));
    }
  return v;
}

struct Diff {
  double mean = 0;
  int max = 0;
};

Diff compare(const uint8_t* a, const uint8_t* b, size_t n) {
  Diff d;
  for (size_t i = 0; i < n; ++i) {
    const int e = std::abs(int{a[i]} - int{b[i]});
    d.mean += e;
    d.max = std::max(d.max, e);
  }
  d.mean /= static_cast<double>(n);
  return d;
}

Opts rgb_options() {
  Opts o = gray_options();
  o.channels = 3;
  o.compression = Opts::Compression::jpeg;
  o.description = "wsi-heatmap overlay";
  return o;
}

TEST(PyramidTiffWriter, RgbJpegWithinTolerance) {
  test::ScratchDir dir;
  const fs::path path = dir / "slide.overlay.tif";
  const std::vector<uint8_t> img = rgb_image(kW, kH);
  {
    PyramidTiffWriter w(path, rgb_options());
    write_all(w, img, 37);
  }
  ASSERT_EQ(test::tiff_level_count(path), 3);
  std::vector<uint8_t> expected = img;
  int64_t w = kW, h = kH;
  for (int k = 0; k < 3; ++k) {
    SCOPED_TRACE("level " + std::to_string(k));
    const Dir d = read_dir(path, k);
    EXPECT_EQ(d.compression, COMPRESSION_JPEG);
    EXPECT_EQ(d.photometric, PHOTOMETRIC_YCBCR);
    EXPECT_EQ(d.spp, 3);
    EXPECT_EQ(d.width, w);
    EXPECT_EQ(d.height, h);
    EXPECT_NEAR(d.xres, 20000.0 / (1 << k), 1e-3);
    ASSERT_EQ(d.bytes.size(), expected.size());
    const Diff e = compare(d.bytes.data(), expected.data(), expected.size());
    EXPECT_LT(e.mean, 2.0);
    EXPECT_LE(e.max, 24);
    expected = ref_shrink_u8(expected, w, h, 3, false);
    w = (w + 1) / 2;
    h = (h + 1) / 2;
  }
}

// What a viewer gets back from OpenSlide (C API or python3-openslide) against level 0 as
// written: the same size, no transparent pixel, each channel exact (`tolerance` 0) or, for JPEG,
// within `tolerance` with a mean error under 2.
void expect_level0_reads_back(const test::ViewerLevel& got, const std::vector<uint8_t>& img, int64_t w, int64_t h,
                              int channels, int tolerance, const std::string& what) {
  ASSERT_EQ(got.width, w) << what;
  ASSERT_EQ(got.height, h) << what;
  size_t transparent = 0, wrong = 0;
  double err = 0;
  int worst = 0;
  for (size_t i = 0; i < got.argb.size(); ++i) {
    const uint32_t p = got.argb[i];
    transparent += p >> 24 != 255u;
    for (int c = 0; c < 3; ++c) {
      const int v = static_cast<int>((p >> (16 - 8 * c)) & 255u);
      const int want = img[i * static_cast<size_t>(channels) + static_cast<size_t>(channels == 3 ? c : 0)];
      const int e = std::abs(v - want);
      wrong += e > tolerance;
      err += e;
      worst = std::max(worst, e);
    }
  }
  EXPECT_EQ(transparent, 0u) << what;
  EXPECT_EQ(wrong, 0u) << what << ": worst channel error " << worst;
  if (tolerance > 0) {
    EXPECT_LT(err / (3.0 * static_cast<double>(got.argb.size())), 2.0) << what;
  }
}

// OpenSlide 3.4.1 (generic-tiff) follows the main IFD chain, so it lists level 0 only (the
// SubIFD levels are for Bio-Formats) and reads every pixel of it: exact for uint8 maps, within
// JPEG's error for RGB overlays; through the C API and python3-openslide alike.
TEST(PyramidTiffWriter, OpenSlideListsLevel0AndReadsEveryPixel) {
  test::ScratchDir dir;
  const fs::path rgb = dir / "slide.overlay.tif", gray = dir / "slide.prob.tif";
  const std::vector<uint8_t> img = rgb_image(kW, kH), grad = gradient_image(kW, kH);
  {
    PyramidTiffWriter w(rgb, rgb_options());
    write_all(w, img, 37);
    PyramidTiffWriter g(gray, gray_options());
    write_all(g, grad, 64);
  }
  openslide_t* osr = openslide_open(rgb.c_str());
  ASSERT_NE(osr, nullptr) << "OpenSlide does not recognise the file";
  ASSERT_EQ(openslide_get_error(osr), nullptr) << openslide_get_error(osr);
  EXPECT_EQ(openslide_get_level_count(osr), 1);
  EXPECT_STREQ(openslide_get_property_value(osr, OPENSLIDE_PROPERTY_NAME_VENDOR), "generic-tiff");
  EXPECT_STREQ(openslide_get_property_value(osr, OPENSLIDE_PROPERTY_NAME_COMMENT), "wsi-heatmap overlay");
  EXPECT_STREQ(openslide_get_property_value(osr, "tiff.ResolutionUnit"), "centimeter");
  openslide_close(osr);
  ASSERT_EQ(test::tiff_level_count(rgb), 3);  // the pyramid is there, in SubIFDs

  for (const auto& [path, pixels, channels, tolerance] :
       {std::tuple{rgb, img, 3, 24}, std::tuple{gray, grad, 1, 0}}) {
    const std::vector<test::ViewerLevel> c = test::openslide_c_levels(path);
    ASSERT_EQ(c.size(), 1u) << path;
    expect_level0_reads_back(c[0], pixels, kW, kH, channels, tolerance, "C API " + path.string());
    if (!test::python_openslide_available()) continue;
    const test::PythonReadback py = test::python_openslide_readback(path);
    ASSERT_EQ(py.levels.size(), 1u) << path;
    expect_level0_reads_back(py.levels[0], pixels, kW, kH, channels, tolerance, "python " + path.string());
  }
  if (!test::python_openslide_available()) WSI_SKIP_MISSING() << "python3-openslide is not installed (Debian: python3-openslide)";
}

// Sizes around one tile, where 3.4.1 went wrong with 256-px tiles: its TIFFRGBAImage path draws a
// level narrower or shorter than a tile with the wrong stride (measured before the fix: a 33x25
// map read back 0.5 % right and all transparent, 300x200 0.1 % right). With the tile fitted to
// level 0 every pixel reads back, for gray and RGB deflate and RGB JPEG, through the C API and
// python3-openslide.
TEST(PyramidTiffWriter, OpenSlideReadsEveryPixelOfMapsAroundOneTile) {
  test::ScratchDir dir;
  const std::pair<int64_t, int64_t> sizes[] = {{33, 25}, {16, 16}, {17, 40}, {300, 200}, {200, 300}, {257, 255}};
  struct Kind {
    const char* name;
    int channels;
    Opts::Compression compression;
    int tolerance;
  };
  const Kind kinds[] = {{"gray-deflate", 1, Opts::Compression::deflate, 0},
                        {"rgb-deflate", 3, Opts::Compression::deflate, 0},
                        {"rgb-jpeg", 3, Opts::Compression::jpeg, 24}};
  for (const auto& [w, h] : sizes)
    for (const Kind& kind : kinds) {
      const std::string what = std::string(kind.name) + " " + std::to_string(w) + "x" + std::to_string(h);
      Opts o = kind.channels == 3 ? rgb_options() : gray_options();
      o.width = w;
      o.height = h;
      o.tile = 256;
      o.compression = kind.compression;
      const std::vector<uint8_t> img = kind.channels == 3 ? rgb_image(w, h) : gradient_image(w, h);
      const fs::path path = dir / (what + ".tif");
      {
        PyramidTiffWriter writer(path, o);
        write_all(writer, img, 7);
      }
      const std::vector<test::ViewerLevel> c = test::openslide_c_levels(path);
      ASSERT_EQ(c.size(), 1u) << what;
      expect_level0_reads_back(c[0], img, w, h, kind.channels, kind.tolerance, "C API " + what);
      if (!test::python_openslide_available()) continue;
      const test::PythonReadback py = test::python_openslide_readback(path);
      ASSERT_EQ(py.levels.size(), 1u) << what;
      expect_level0_reads_back(py.levels[0], img, w, h, kind.channels, kind.tolerance, "python " + what);
    }
  if (!test::python_openslide_available()) WSI_SKIP_MISSING() << "python3-openslide is not installed (Debian: python3-openslide)";
}

TEST(PyramidTiffWriter, OpenslideShowPropertiesAcceptsTheFile) {
  if (std::system("command -v openslide-show-properties >/dev/null 2>&1") != 0)
    WSI_SKIP_MISSING() << "openslide-show-properties is not installed (Debian: openslide-tools)";
  test::ScratchDir dir;
  const fs::path path = dir / "slide.prob.tif";
  {
    PyramidTiffWriter w(path, gray_options());
    write_all(w, gradient_image(kW, kH), 37);
  }
  const fs::path out = dir / "props.txt";
  const std::string cmd = "openslide-show-properties " + test::shell_quote(path.string()) + " >" +
                          test::shell_quote(out.string()) + " 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << test::slurp(out);
  const std::string props = test::slurp(out);
  EXPECT_NE(props.find("openslide.vendor: 'generic-tiff'"), std::string::npos) << props;
  EXPECT_NE(props.find("openslide.level-count: '1'"), std::string::npos) << props;
  EXPECT_NE(props.find("openslide.level[0].width: '1000'"), std::string::npos) << props;
  EXPECT_NE(props.find("tiff.Software: 'wsi-heatmap"), std::string::npos) << props;
}

// Rows reach the disk as soon as a row of tiles is complete, not at finish().
TEST(PyramidTiffWriter, WritesLevel0TilesAsSoonAsATileRowIsComplete) {
  test::ScratchDir dir;
  Opts o = gray_options();
  o.tile = 256;
  o.compression = Opts::Compression::none;
  auto pending_bytes = [&] {
    uintmax_t n = 0;
    for (const auto& p : test::partial_files(dir.path())) n += fs::file_size(p);
    return n;
  };
  const std::vector<uint8_t> img = gradient_image(kW, kH);
  PyramidTiffWriter w(dir / "a.tif", o);
  w.write_rows(img.data(), 255);
  EXPECT_LT(pending_bytes(), 4096u);
  w.write_rows(img.data() + 255 * kW, 1);
  EXPECT_GE(pending_bytes(), 256u * 1024u);  // 4 tiles of 256 x 256 bytes
  EXPECT_FALSE(fs::exists(dir / "a.tif"));
}

TEST(PyramidTiffWriter, DestroyedBeforeFinishLeavesNoFile) {
  test::ScratchDir dir;
  const fs::path path = dir / "slide.cam.tif";
  const std::vector<uint8_t> img = gradient_image(kW, kH);
  {
    PyramidTiffWriter w(path, gray_options());
    w.write_rows(img.data(), 600);
    EXPECT_FALSE(test::partial_files(dir.path()).empty());
  }
  EXPECT_FALSE(fs::exists(path));
  EXPECT_TRUE(test::partial_files(dir.path()).empty());
}

TEST(PyramidTiffWriter, MovedWriterCarriesOnAndMoveAssignmentDropsTheUnfinishedFile) {
  test::ScratchDir dir;
  const std::vector<uint8_t> img = gradient_image(kW, kH);
  std::vector<PyramidTiffWriter> writers;
  writers.emplace_back(dir / "a.tif", gray_options());
  writers[0].write_rows(img.data(), 300);
  PyramidTiffWriter b(std::move(writers[0]));
  writers.clear();
  b.write_rows(img.data() + 300 * kW, kH - 300);
  PyramidTiffWriter c(dir / "c.tif", gray_options());
  c.write_rows(img.data(), 10);
  c = std::move(b);  // c's unfinished file is dropped
  c.finish();
  EXPECT_EQ(read_dir(dir / "a.tif", 0).bytes, img);
  EXPECT_FALSE(fs::exists(dir / "c.tif"));
  EXPECT_TRUE(test::partial_files(dir.path()).empty());
}

TEST(PyramidTiffWriter, MisuseIsALogicError) {
  test::ScratchDir dir;
  const std::vector<uint8_t> img = gradient_image(kW, kH);
  PyramidTiffWriter w(dir / "x.tif", gray_options());
  w.write_rows(img.data(), 100);
  EXPECT_THROW(w.finish(), std::logic_error);
  EXPECT_THROW(w.write_rows(img.data(), kH), std::logic_error);
  w.write_rows(img.data() + 100 * kW, kH - 100);
  w.finish();
  w.finish();  // no-op
  EXPECT_THROW(w.write_rows(img.data(), 1), std::logic_error);
  EXPECT_TRUE(fs::exists(dir / "x.tif"));
}

void expect_write_error(const fs::path& path, const std::string& fragment) {
  try {
    PyramidTiffWriter w(path, gray_options());
    write_all(w, gradient_image(kW, kH), 37);
    ADD_FAILURE() << "no WriteError for " << path;
  } catch (const WriteError& e) {
    std::cout << "  message: " << e.what() << "\n";
    EXPECT_EQ(e.path(), path);
    EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(path));
}

TEST(PyramidTiffWriter, MissingDirectoryIsAWriteError) {
  test::ScratchDir dir;
  expect_write_error(dir / "no-such-dir" / "slide.prob.tif", "does not exist");
}

TEST(PyramidTiffWriter, UncreatableFileIsAWriteError) {
  // /proc refuses new files even to root.
  expect_write_error("/proc/wsi-heatmap-test.prob.tif", "cannot create the file in /proc");
}

TEST(PyramidTiffWriter, ReadOnlyDirectoryIsAWriteError) {
  test::ScratchDir dir;
  const fs::path ro = dir / "read-only";
  fs::create_directory(ro);
  fs::permissions(ro, fs::perms::owner_read | fs::perms::owner_exec);
  if (::access(ro.c_str(), W_OK) == 0) {
    fs::permissions(ro, fs::perms::owner_all);
    GTEST_SKIP() << "running as root: a read-only directory is still writable";
  }
  expect_write_error(ro / "slide.prob.tif", "Permission denied");
  fs::permissions(ro, fs::perms::owner_all);
}

// Runs `body` with files limited to `bytes` (writes past it fail with EFBIG instead of SIGXFSZ).
template <typename F>
void with_file_size_limit(rlim_t bytes, F body) {
  rlimit old{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit small = old;
  small.rlim_cur = bytes;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  body();
  setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, old_handler);
}

std::vector<uint8_t> noise_image(int64_t w, int64_t h) {
  std::vector<uint8_t> img(static_cast<size_t>(w * h));
  std::mt19937 rng(1);
  for (auto& v : img) v = static_cast<uint8_t>(rng());
  return img;
}

// A full disk, simulated with a file-size limit (writes then fail with EFBIG, or come up short:
// libtiff then reports its own "write error", as with a real ENOSPC after a partial write).
TEST(PyramidTiffWriter, DiskFullIsAWriteErrorAndLeavesNoFile) {
  test::ScratchDir dir;
  const fs::path path = dir / "slide.prob.tif";
  Opts o = gray_options();
  o.compression = Opts::Compression::none;
  const std::vector<uint8_t> img = noise_image(kW, kH);
  std::string message;
  with_file_size_limit(64 * 1024, [&] {
    try {
      PyramidTiffWriter w(path, o);
      write_all(w, img, 37);
    } catch (const WriteError& e) {
      message = e.what();
      std::cout << "  message: " << message << "\n";
    }
  });
  EXPECT_NE(message.find(path.string()), std::string::npos) << message;
  EXPECT_NE(message.find("disk full"), std::string::npos) << message;
  EXPECT_FALSE(fs::exists(path));
  EXPECT_TRUE(test::partial_files(dir.path()).empty());
}

// Level 0 (12 uncompressed 64 KiB tiles) fits under the limit; appending level 1 does not.
TEST(PyramidTiffWriter, DiskFullWhileAppendingLevelsIsAWriteErrorFromFinish) {
  test::ScratchDir dir;
  const fs::path path = dir / "slide.prob.tif";
  Opts o = gray_options();
  o.tile = 256;
  o.compression = Opts::Compression::none;
  const std::vector<uint8_t> img = noise_image(kW, kH);
  std::string message;
  with_file_size_limit(12 * 65536 + 4096, [&] {
    PyramidTiffWriter w(path, o);
    for (int64_t y = 0; y < kH; y += 37) w.write_rows(img.data() + y * kW, std::min<int64_t>(37, kH - y));
    try {
      w.finish();
    } catch (const WriteError& e) {
      message = e.what();
      std::cout << "  message: " << message << "\n";
    }
    EXPECT_THROW(w.finish(), WriteError);  // the writer stays failed
  });
  EXPECT_NE(message.find(path.string() + ": writing tiles of level 1 failed"), std::string::npos) << message;
  EXPECT_NE(message.find("(is the disk full?)"), std::string::npos) << message;
  EXPECT_FALSE(fs::exists(path));
  EXPECT_TRUE(test::partial_files(dir.path()).empty());
}

TEST(PyramidTiffWriter, BadOptionsAreConfigErrorsThatSayWhatToFix) {
  struct Case {
    const char* name;
    void (*edit)(Opts&);
    const char* message;
  };
  const Case cases[] = {
      {"no width", [](Opts& o) { o.width = 0; }, "size 0x700 is not 1..4294967295 on each side"},
      {"2 channels", [](Opts& o) { o.channels = 2; }, "channels must be 1 or 3, not 2"},
      {"tile 100", [](Opts& o) { o.tile = 100; }, "tile size must be a multiple of 16 between 16 and 4096, not 100"},
      {"no mpp", [](Opts& o) { o.mpp_x = 0; }, "mpp must be positive"},
      {"float JPEG",
       [](Opts& o) {
         o.compression = Opts::Compression::jpeg;
         o.sample = Opts::SampleType::f32;
       },
       "JPEG needs 8-bit samples; use deflate for float32 maps"},
      {"JPEG quality 0",
       [](Opts& o) {
         o.compression = Opts::Compression::jpeg;
         o.jpeg_quality = 0;
       },
       "JPEG quality must be between 1 and 100, not 0"},
  };
  test::ScratchDir dir;
  for (const Case& c : cases) {
    Opts o = gray_options();
    c.edit(o);
    try {
      PyramidTiffWriter w(dir / "bad.tif", o);
      ADD_FAILURE() << c.name << ": no error";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(c.message), std::string::npos) << c.name << ": " << e.what();
      EXPECT_NE(std::string(e.what()).find("bad.tif"), std::string::npos) << c.name << ": " << e.what();
    }
  }
  EXPECT_TRUE(fs::is_empty(dir.path()));
}

// ---------------------------------------------------------------------------------------------

std::array<uint8_t, 3> colour(float v) {
  std::array<uint8_t, 3> c{};
  apply_colormap(&v, 1, c.data());
  return c;
}

double luminance(const std::array<uint8_t, 3>& c) { return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]; }

TEST(Colormap, InfernoEndpointsNaNAndClamping) {
  EXPECT_EQ(colour(0.0f), (std::array<uint8_t, 3>{0, 0, 4}));
  EXPECT_EQ(colour(1.0f), (std::array<uint8_t, 3>{252, 255, 164}));
  EXPECT_EQ(colour(0.5f), (std::array<uint8_t, 3>{187, 55, 85}));  // between entries 125 and 130
  EXPECT_EQ(colour(-3.0f), colour(0.0f));
  EXPECT_EQ(colour(7.0f), colour(1.0f));
  EXPECT_EQ(colour(std::numeric_limits<float>::quiet_NaN()), (std::array<uint8_t, 3>{255, 255, 255}));
}

TEST(Colormap, LuminanceIncreasesMonotonically) {
  std::vector<float> v(1001);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i) / 1000.0f;
  std::vector<uint8_t> rgb(v.size() * 3);
  apply_colormap(v.data(), static_cast<int64_t>(v.size()), rgb.data());
  auto lum = [&](size_t i) { return luminance({rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2]}); };
  for (size_t i = 1; i < v.size(); ++i) EXPECT_GE(lum(i), lum(i - 1) - 1.0) << "at " << v[i];  // byte rounding
  for (size_t i = 20; i < v.size(); i += 20) EXPECT_GT(lum(i), lum(i - 20)) << "at " << v[i];
  EXPECT_GT(lum(1000) - lum(0), 200);
}

TEST(Colormap, BlendLeavesNaNAndLowValuesUntouched) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> values{nan, 0.2f, 0.49f, 0.5f, 1.0f, nan};
  std::vector<uint8_t> slide(values.size() * 3);
  for (size_t i = 0; i < slide.size(); ++i) slide[i] = static_cast<uint8_t>(200 - 7 * i);
  std::vector<uint8_t> out(slide.size(), 0);
  blend_overlay(slide.data(), values.data(), static_cast<int64_t>(values.size()), 0.5, out.data());
  for (size_t i : std::array<size_t, 4>{0, 1, 2, 5})
    for (size_t c = 0; c < 3; ++c) EXPECT_EQ(out[3 * i + c], slide[3 * i + c]) << "pixel " << i;
  for (size_t i : std::array<size_t, 2>{3, 4}) {
    const auto cm = colour(values[i]);
    for (size_t c = 0; c < 3; ++c) {
      // (slide + colour) / 2 within rounding of the unrounded colour.
      EXPECT_NEAR(out[3 * i + c], (slide[3 * i + c] + cm[c]) / 2.0, 1.0) << "pixel " << i << " channel " << c;
    }
  }
  // 1.0 is exactly a control point: (s + c) / 2 rounded.
  EXPECT_EQ(out[12], static_cast<uint8_t>(std::lround((slide[12] + 252) / 2.0)));

  // alpha 1: the colour map; alpha 0: the slide; a lower threshold colours more; in place works.
  std::vector<uint8_t> full(slide.size());
  blend_overlay(slide.data(), values.data(), 6, 1.0, full.data(), 0.0);
  EXPECT_EQ((std::array<uint8_t, 3>{full[3], full[4], full[5]}), colour(0.2f));
  EXPECT_EQ((std::array<uint8_t, 3>{full[0], full[1], full[2]}),
            (std::array<uint8_t, 3>{slide[0], slide[1], slide[2]}));
  std::vector<uint8_t> same = slide;
  blend_overlay(same.data(), values.data(), 6, 0.0, same.data(), 0.0);
  EXPECT_EQ(same, slide);
}

}  // namespace
}  // namespace wsi
