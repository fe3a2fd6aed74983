// `synth` output files: OpenSlide opens them with the expected pyramid and mpp, the mask shares
// the slide's level-0 geometry, and the mask's tumour falls on the darker, denser nuclei.
#include <gtest/gtest.h>

#include <openslide.h>

#include <fstream>
#include <sstream>

#include "test_support.hpp"
#include "wsi/error.hpp"
#include "wsi/slide.hpp"
#include "wsi/synth.hpp"

namespace wsi {
namespace {

struct Generated {
  test::ScratchDir dir;
  std::filesystem::path slide, mask, xml;
  SynthParams params;
};

std::unique_ptr<Generated> generate(uint64_t seed, int64_t size = 2048, double mpp = 0.25) {
  auto g = std::make_unique<Generated>();
  g->params.width = g->params.height = size;
  g->params.seed = seed;
  g->params.mpp = mpp;
  g->params.tumours = 2;
  g->slide = g->dir / "slide.tif";
  g->mask = g->dir / "mask.tif";
  g->xml = g->dir / "tumours.xml";
  SynthOutputs out;
  out.slide = g->slide;
  out.mask = g->mask;
  out.annotations = g->xml;
  write_synthetic_slide(SynthScene(g->params), out);
  return g;
}

TEST(SynthSlide, OpenSlideOpensItWithExpectedLevelsAndMpp) {
  const auto g = generate(1);
  const Slide s(g->slide);
  EXPECT_EQ(s.vendor(), "generic-tiff");
  ASSERT_EQ(s.level_count(), 4);  // 2048, 1024, 512, 256
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(s.level(i).width, 2048 >> i);
    EXPECT_DOUBLE_EQ(s.level(i).downsample, static_cast<double>(1 << i));
    EXPECT_EQ(s.level(i).tile_width, 256);
  }
  EXPECT_EQ(s.mpp().source, MppSource::tiff_resolution);
  EXPECT_NEAR(s.mpp().x, 0.25, 1e-6);
  EXPECT_NEAR(s.mpp().y, 0.25, 1e-6);
  EXPECT_EQ(s.choose_level(1.0).level, 2);
}

TEST(SynthSlide, MaskSharesLevelZeroGeometryAndIsBinary) {
  const auto g = generate(1);
  const Slide s(g->slide), m(g->mask);
  EXPECT_EQ(m.width(), s.width());
  EXPECT_EQ(m.height(), s.height());
  EXPECT_NEAR(m.mpp().x, 0.25, 1e-6);
  const RgbImage img = m.read_region(Region{0, 0, 0, m.width(), m.height()});
  int64_t tumour = 0;
  for (size_t i = 0; i < img.pixels.size(); i += 3) {
    ASSERT_TRUE(img.pixels[i] == 0 || img.pixels[i] == 255) << int(img.pixels[i]);
    tumour += img.pixels[i] == 255;
  }
  EXPECT_GT(tumour, 1000);
}

TEST(SynthSlide, MaskPyramidKeepsTumourAtCoarseLevels) {
  const auto g = generate(1);
  const Slide m(g->mask);
  const int last = m.level_count() - 1;
  const RgbImage img = m.read_region(Region{last, 0, 0, m.level(last).width, m.level(last).height});
  int64_t tumour = 0;
  for (size_t i = 0; i < img.pixels.size(); i += 3) tumour += img.pixels[i] > 0;
  EXPECT_GT(tumour, 0);
}

TEST(SynthSlide, SameSeedGivesIdenticalPixelsThroughOpenSlide) {
  const auto a = generate(5), b = generate(5), c = generate(6);
  const Slide sa(a->slide), sb(b->slide), sc(c->slide);
  const Region r{0, 512, 512, 1024, 1024};
  EXPECT_EQ(sa.read_region(r).pixels, sb.read_region(r).pixels);
  EXPECT_NE(sa.read_region(r).pixels, sc.read_region(r).pixels);
  const Region low{2, 0, 0, 512, 512};
  EXPECT_EQ(sa.read_region(low).pixels, sb.read_region(low).pixels);
}

TEST(SynthSlide, AnnotationsAreAsapXmlWithOnePolygonPerTumour) {
  const auto g = generate(1);
  std::ifstream in(g->xml);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string xml = ss.str();
  EXPECT_EQ(xml.rfind("<?xml", 0), 0u);
  size_t n = 0;
  for (size_t pos = 0; (pos = xml.find("Type=\"Polygon\"", pos)) != std::string::npos; ++pos) ++n;
  EXPECT_EQ(n, 2u);
}

TEST(SynthSlide, NoTemporaryFilesAreLeftBehind) {
  const auto g = generate(1);
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(g->dir.path())) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"mask.tif", "slide.tif", "tumours.xml"}));
}

TEST(SynthSlide, FailedWriteLeavesNothingUnderTheFinalName) {
  test::ScratchDir dir;
  SynthParams p;
  p.width = p.height = 512;
  SynthOutputs out;
  out.slide = dir / "missing-subdir" / "slide.tif";
  EXPECT_THROW(write_synthetic_slide(SynthScene(p), out), WriteError);
  EXPECT_FALSE(std::filesystem::exists(out.slide));
}

// The point of the generator: tumour (mask = 255) sits on darker, denser nuclei than the rest of
// the tissue. Measured on the file as OpenSlide decodes it, JPEG and all.
// On a full disk libvips 8.14.1 crashed (a use-after-free when its TIFF writer fails:
// libvips#3411), and once a truncated slide was renamed into place with exit 0 (issue 20). File-size
// limits that cut the slide early, midway and near its end: one line, exit 1, no file, no
// temporary.
TEST(SynthSlide, FullDiskNeverCrashesNorLeavesATruncatedSlide) {
  test::ScratchDir dir;
  const auto slide = (dir / "s.tif").string();
  for (const char* limit_kib : {"300", "2000", "4500"}) {
    const auto r = test::run_wsi({"synth", "--out", slide, "--size", "8000x8000", "--seed", "2"},
                                 std::string("ulimit -f ") + limit_kib + "; trap '' XFSZ; exec");
    EXPECT_EQ(r.code, 1) << limit_kib << " KiB: " << r.err;
    EXPECT_FALSE(r.signalled) << limit_kib;
    EXPECT_EQ(r.err, "wsi-heatmap: error: " + slide + ": writing failed: File too large (is the disk full?)\n");
    EXPECT_FALSE(std::filesystem::exists(slide)) << limit_kib;
    EXPECT_TRUE(test::partial_files(dir.path()).empty()) << limit_kib;
  }
  const auto ok = test::run_wsi({"synth", "--out", slide, "--size", "8000x8000", "--seed", "2"});
  ASSERT_EQ(ok.code, 0) << ok.err;
  EXPECT_GT(std::filesystem::file_size(slide), 4500u * 1024u) << "the last limit must cut the slide near its end";
}

TEST(SynthSlide, TumourMaskFallsOnDarkerDenserNuclei) {
  const auto g = generate(3, 4096, 0.5);
  const Slide s(g->slide), m(g->mask);
  const Region r{0, 0, 0, 4096, 4096};
  const RgbImage img = s.read_region(r), mask = m.read_region(r);
  double sum_t = 0, sum_n = 0;
  int64_t n_t = 0, n_n = 0, nuc_t = 0, nuc_n = 0;
  for (size_t i = 0; i < img.pixels.size(); i += 3) {
    const int R = img.pixels[i], G = img.pixels[i + 1], B = img.pixels[i + 2];
    const double bright = (R + G + B) / 3.0;
    if (std::min({R, G, B}) > 215) continue;  // glass or holes
    const bool nucleus = bright < 110 && B > G;  // haematoxylin: dark purple-blue
    if (mask.pixels[i] == 255) {
      sum_t += bright;
      ++n_t;
      nuc_t += nucleus;
    } else {
      sum_n += bright;
      ++n_n;
      nuc_n += nucleus;
    }
  }
  ASSERT_GT(n_t, 10000);
  ASSERT_GT(n_n, 10000);
  const double frac_t = static_cast<double>(nuc_t) / static_cast<double>(n_t);
  const double frac_n = static_cast<double>(nuc_n) / static_cast<double>(n_n);
  const double mean_t = sum_t / static_cast<double>(n_t), mean_n = sum_n / static_cast<double>(n_n);
  RecordProperty("nuclear_fraction_tumour", std::to_string(frac_t));
  RecordProperty("nuclear_fraction_normal", std::to_string(frac_n));
  EXPECT_GT(frac_t, 1.3 * frac_n) << "tumour " << frac_t << " vs normal " << frac_n;
  EXPECT_LT(mean_t, mean_n - 10) << "tumour " << mean_t << " vs normal " << mean_n;
}

}  // namespace
}  // namespace wsi

namespace wsi {
namespace {

// Our generic-TIFF backend (libtiff) against OpenSlide itself, on levels both decode correctly
// (JPEG tiles): same frames, same pixels up to JPEG decoder rounding.
TEST(SynthSlide, GenericTiffBackendAgreesWithOpenSlide) {
  const auto g = generate(2, 2048, 0.5);
  const Slide s(g->slide);
  ASSERT_EQ(s.pixel_backend(), "libtiff");
  openslide_t* osr = openslide_open(g->slide.c_str());
  ASSERT_NE(osr, nullptr);
  for (int level = 0; level < s.level_count(); ++level) {
    const auto ds = static_cast<int64_t>(s.level(level).downsample);
    const Region r{level, 300 * ds, 200 * ds, 100, 90};  // level-0 origin on the level's grid
    const RgbImage mine = s.read_region(r);
    std::vector<uint32_t> argb(static_cast<size_t>(r.w * r.h));
    openslide_read_region(osr, argb.data(), r.x, r.y, r.level, r.w, r.h);
    ASSERT_EQ(openslide_get_error(osr), nullptr);
    std::vector<uint8_t> theirs(argb.size() * 3);
    argb_over_white_to_rgb(argb.data(), argb.size(), theirs.data());
    double diff = 0;
    for (size_t i = 0; i < theirs.size(); ++i) diff += std::abs(int(theirs[i]) - int(mine.pixels[i]));
    EXPECT_LT(diff / static_cast<double>(theirs.size()), 2.0) << "level " << level;
  }
  openslide_close(osr);
}

}  // namespace
}  // namespace wsi
