// `extract` end to end on generated slides (known ground truth) and on the real Camelyon16
// Tumor_001 level-5 slide with its lesion annotation.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <tiffio.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "test_support.hpp"
#include "wsi/annotations.hpp"
#include "wsi/dataset.hpp"
#include "wsi/extract.hpp"
#include "wsi/slide.hpp"
#include "wsi/synth.hpp"

namespace wsi {
namespace {

namespace fs = std::filesystem;
using test::run_wsi;

// One generated 8000 x 6000 slide at 0.5 um/px (PCam patches are 186.6 level-0 px) with its
// mask and ASAP XML, shared by the tests of this build.
struct Fixture {
  fs::path slide, mask, xml;
  SynthParams params;
};

const Fixture& fixture() {
  static const Fixture f = [] {
    Fixture x;
    x.params.width = 8000;
    x.params.height = 6000;
    x.params.mpp = 0.5;
    x.params.seed = 11;
    x.params.tumours = 3;
    const fs::path dir = test::fixture_dir();
    x.slide = dir / "extract-8000x6000-s11.tif";
    x.mask = dir / "extract-8000x6000-s11.mask.tif";
    x.xml = dir / "extract-8000x6000-s11.xml";
    if (!fs::exists(x.slide) || !fs::exists(x.mask) || !fs::exists(x.xml)) {
      SynthOutputs out;
      out.slide = x.slide;
      out.mask = x.mask;
      out.annotations = x.xml;
      write_synthetic_slide(SynthScene(x.params), out, 2);
    }
    return x;
  }();
  return f;
}

struct MetaRow {
  int64_t y = 0, x = 0;
  bool tumor = false, center = false;
  std::string wsi;
  int label = 0;
  double fraction = 0;
  int copy = 0;
  std::string augment;
};

std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  bool quoted = false;
  for (char c : line) {
    if (c == '"') quoted = !quoted;
    else if (c == ',' && !quoted) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

// Reads a pcam meta CSV (PCam's columns first, ours after).
std::vector<MetaRow> read_meta(const fs::path& p) {
  std::ifstream in(p);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line.rfind("coord_y,coord_x,tumor_patch,center_tumor_patch,wsi,label,tumour_fraction,copy,augment", 0), 0u)
      << line;
  std::vector<MetaRow> rows;
  while (std::getline(in, line)) {
    const auto f = split_csv_line(line);
    if (f.size() < 9) continue;
    MetaRow r;
    r.y = std::stoll(f[0]);
    r.x = std::stoll(f[1]);
    r.tumor = f[2] == "True";
    r.center = f[3] == "True";
    r.wsi = f[4];
    r.label = std::stoi(f[5]);
    r.fraction = std::stod(f[6]);
    r.copy = std::stoi(f[7]);
    r.augment = f[8];
    rows.push_back(r);
  }
  return rows;
}

// Number of rows of dataset `name` in an HDF5 file (and its rank), via the HDF5 C API.
std::vector<hsize_t> h5_shape(const fs::path& file, const char* name) {
  std::vector<hsize_t> dims;
  const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) return dims;
  const hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
  if (d >= 0) {
    const hid_t s = H5Dget_space(d);
    dims.resize(static_cast<size_t>(H5Sget_simple_extent_ndims(s)));
    H5Sget_simple_extent_dims(s, dims.data(), nullptr);
    H5Sclose(s);
    H5Dclose(d);
  }
  H5Fclose(f);
  return dims;
}

nlohmann::json read_json(const fs::path& p) { return nlohmann::json::parse(test::slurp(p)); }

TEST(ExtractPcam, LabelsFollowTheMaskWithThePcamCentreRule) {
  const Fixture& fx = fixture();
  test::ScratchDir out;
  const auto r = run_wsi({"extract", fx.slide.string(), "--mask", fx.mask.string(), "-o", out.path().string(),
                          "--quiet", "--threads", "2"});
  ASSERT_EQ(r.code, 0) << r.err << r.out;
  const auto rows = read_meta(out / "patches_train_meta.csv");
  ASSERT_GT(rows.size(), 200u);
  EXPECT_EQ(h5_shape(out / "patches_train_x.h5", "x"), (std::vector<hsize_t>{rows.size(), 96, 96, 3}));
  EXPECT_EQ(h5_shape(out / "patches_train_y.h5", "y"), (std::vector<hsize_t>{rows.size(), 1, 1, 1}));

  // Independent check against the scene itself: the centre 32 x 32 samples of each patch.
  const SynthScene scene(fx.params);
  const double scale = 0.972 / fx.params.mpp;  // level-0 px per patch pixel
  int agree = 0, positives = 0;
  for (const auto& row : rows) {
    bool centre = false, any = false;
    for (int j = 0; j < 96; ++j)
      for (int i = 0; i < 96; ++i) {
        const bool t = scene.is_tumour(static_cast<double>(row.x) + (i + 0.5) * scale,
                                       static_cast<double>(row.y) + (j + 0.5) * scale);
        any |= t;
        if (i >= 32 && i < 64 && j >= 32 && j < 64) centre |= t;
      }
    agree += (centre == row.center) && (any == row.tumor);
    EXPECT_EQ(row.label, row.center ? 1 : 0);
    positives += row.label;
  }
  // Nearest-pixel mask sampling vs exact geometry may differ on a boundary pixel, nowhere else.
  EXPECT_GE(agree, static_cast<int>(rows.size()) - 2) << agree << " of " << rows.size();
  EXPECT_GT(positives, 5);
  EXPECT_TRUE(test::partial_files(out.path()).empty());

  const auto summary = read_json(out / "patches_summary.json");
  EXPECT_EQ(summary["splits"]["train"]["positives"].get<int>(), positives);
  EXPECT_EQ(summary["slides"][0]["level"].get<int>(), 0);  // 0.5 um slide, 0.972 target: level 0
  EXPECT_NE(summary["coordinates"].get<std::string>().find("level-0"), std::string::npos);
}

TEST(ExtractPcam, AnnotationsAndMaskGiveTheSameLabels) {
  const Fixture& fx = fixture();
  test::ScratchDir a, b;
  ASSERT_EQ(run_wsi({"extract", fx.slide.string(), "--mask", fx.mask.string(), "-o", a.path().string(), "-q"}).code, 0);
  const auto r = run_wsi({"extract", fx.slide.string(), "--annotations", fx.xml.string(), "-o", b.path().string(), "-q"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto ra = read_meta(a / "patches_train_meta.csv"), rb = read_meta(b / "patches_train_meta.csv");
  ASSERT_EQ(ra.size(), rb.size());
  int differ = 0;
  for (size_t i = 0; i < ra.size(); ++i) {
    ASSERT_EQ(ra[i].x, rb[i].x);
    differ += ra[i].label != rb[i].label;
  }
  EXPECT_LE(differ, 2);
}

TEST(ExtractPcam, UndersamplingIsExactAndDeterministic) {
  const Fixture& fx = fixture();
  test::ScratchDir a, b;
  for (const auto* d : {&a, &b}) {
    const auto r = run_wsi({"extract", fx.slide.string(), "--mask", fx.mask.string(), "-o", d->path().string(), "-q",
                            "--balance", "undersample", "--ratio", "1:2", "--seed", "5", "--label-rule", "any"});
    ASSERT_EQ(r.code, 0) << r.err;
  }
  const auto rows = read_meta(a / "patches_train_meta.csv");
  int pos = 0, neg = 0;
  for (const auto& row : rows) ++(row.label ? pos : neg);
  ASSERT_GT(pos, 0);
  EXPECT_EQ(neg, 2 * pos);
  EXPECT_EQ(test::slurp(a / "patches_train_meta.csv"), test::slurp(b / "patches_train_meta.csv"));
}

TEST(ExtractPcam, OversampledCopiesAreMarkedAndAugmented) {
  const Fixture& fx = fixture();
  test::ScratchDir out;
  const auto r = run_wsi({"extract", fx.slide.string(), "--mask", fx.mask.string(), "-o", out.path().string(), "-q",
                          "--balance", "oversample", "--augment", "--label-rule", "any"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto rows = read_meta(out / "patches_train_meta.csv");
  int pos = 0, neg = 0, copies = 0;
  for (const auto& row : rows) {
    ++(row.label ? pos : neg);
    if (row.copy > 0) {
      ++copies;
      EXPECT_FALSE(row.augment.empty());
    }
  }
  EXPECT_EQ(pos, neg);
  EXPECT_GT(copies, 0);
}

TEST(ExtractKaggle, IdsAreSha1OfPixelsAndLabelsCsvMatches) {
  const Fixture& fx = fixture();
  test::ScratchDir out;
  const auto r = run_wsi({"extract", fx.slide.string(), "--mask", fx.mask.string(), "-o", out.path().string(), "-q",
                          "--format", "kaggle", "--max-per-slide", "40", "--seed", "3"});
  ASSERT_EQ(r.code, 0) << r.err;
  std::ifstream labels(out / "train_labels.csv");
  std::string line;
  std::getline(labels, line);
  EXPECT_EQ(line, "id,label");
  int n = 0;
  while (std::getline(labels, line)) {
    const auto f = split_csv_line(line);
    ASSERT_EQ(f.size(), 2u);
    const fs::path tif = out / "train" / (f[0] + ".tif");
    TIFF* t = TIFFOpen(tif.c_str(), "r");
    ASSERT_NE(t, nullptr) << tif;
    uint32_t w = 0, h = 0;
    TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &w);
    TIFFGetField(t, TIFFTAG_IMAGELENGTH, &h);
    ASSERT_EQ(w, 96u);
    ASSERT_EQ(h, 96u);
    std::vector<uint8_t> px(96 * 96 * 3);
    for (uint32_t y = 0; y < h; ++y) TIFFReadScanline(t, px.data() + y * 96 * 3, y);
    TIFFClose(t);
    EXPECT_EQ(sha1_hex(px.data(), px.size()), f[0]);
    ++n;
  }
  EXPECT_EQ(n, 40);
}

TEST(ExtractSplits, NoSlideAppearsInTwoSplits) {
  const Fixture& fx = fixture();
  test::ScratchDir in, out;
  std::vector<std::string> args{"extract"};
  for (int i = 0; i < 6; ++i) {
    const fs::path link = in / ("case_" + std::to_string(i) + ".tif");
    fs::create_symlink(fx.slide, link);
    args.push_back(link.string());
  }
  for (int i = 0; i < 6; ++i) {  // the same mask for each link, in order
    args.push_back("--mask");
    args.push_back(fx.mask.string());
  }
  for (const std::string& a : std::initializer_list<std::string>{
           "-o", out.path().string(), "-q", "--split", "train=0.5,valid=0.25,test=0.25", "--max-per-slide", "10"})
    args.push_back(a);
  const auto r = run_wsi(args);
  ASSERT_EQ(r.code, 0) << r.err;
  std::map<std::string, std::set<std::string>> slides_of;
  for (const char* split : {"train", "valid", "test"})
    for (const auto& row : read_meta(out / ("patches_" + std::string(split) + "_meta.csv")))
      slides_of[split].insert(row.wsi);
  EXPECT_EQ(slides_of["train"].size(), 3u);
  EXPECT_EQ(slides_of["valid"].size(), 2u);  // 6 x 0.25 = 1.5: largest remainder, earlier split wins ties
  EXPECT_EQ(slides_of["test"].size(), 1u);
  std::set<std::string> all;
  size_t total = 0;
  for (auto& [split, s] : slides_of) {
    total += s.size();
    all.insert(s.begin(), s.end());
  }
  EXPECT_EQ(all.size(), total);
}

// Labels of a run with `mask` (one row per patch, in grid order).
std::vector<int> labels_with_mask(const fs::path& mask, const test::ScratchDir& out) {
  const Fixture& fx = fixture();
  const auto r = run_wsi({"extract", fx.slide.string(), "--mask", mask.string(), "-o", out.path().string(), "-q"});
  EXPECT_EQ(r.code, 0) << r.err;
  std::vector<int> v;
  for (const auto& row : read_meta(out / "patches_train_meta.csv")) v.push_back(row.label);
  return v;
}

TEST(ExtractMasks, CamelyonStyleOneAndOurs255GiveTheSameLabels) {
  const Fixture& fx = fixture();
  test::ScratchDir dir, a, b;
  // The same mask with tumour = 1 (Camelyon16's convention), via the vips command-line tool.
  const fs::path ones = dir / "mask1.tif";
  std::string cmd = "vips linear ";
  cmd.append(fx.mask.string()).append(" '").append(ones.string()).append(
      "[tile,pyramid,compression=deflate,region_shrink=max]' 0.003922 0 --uchar");
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  const auto l255 = labels_with_mask(fx.mask, a), l1 = labels_with_mask(ones, b);
  ASSERT_GT(std::count(l255.begin(), l255.end(), 1), 5);
  EXPECT_EQ(l1, l255);
}

TEST(ExtractMasks, MaskAtAKnownDownsampleIsRescaled) {
  const Fixture& fx = fixture();
  test::ScratchDir dir, a, b;
  // A mask exported at half the slide's size (4000 x 3000): labels agree except on boundaries.
  const fs::path half = dir / "half.tif";
  std::string cmd = "vips subsample ";
  cmd.append(fx.mask.string()).append(" '").append(half.string()).append(
      "[tile,pyramid,compression=deflate,region_shrink=max]' 2 2");
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  const auto full = labels_with_mask(fx.mask, a), halved = labels_with_mask(half, b);
  ASSERT_EQ(full.size(), halved.size());
  int differ = 0;
  for (size_t i = 0; i < full.size(); ++i) differ += full[i] != halved[i];
  EXPECT_LE(differ, 3) << differ << " of " << full.size();
}

TEST(ExtractBadInput, MaskOfOtherGeometryIsReportedAndOtherSlidesGoOn) {
  const Fixture& fx = fixture();
  test::ScratchDir out;
  const auto r = run_wsi({"extract", fx.slide.string(), test::testdata("slides/boxes.tiff").string(), "--mask",
                          fx.mask.string(), "--mask", fx.mask.string(), "-o", out.path().string(), "-q", "--mpp",
                          "0.5", "--min-tissue", "0"});
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.err.find("boxes.tiff"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("not an integer downsample"), std::string::npos) << r.err;
  // The good slide's patches are there.
  EXPECT_GT(read_meta(out / "patches_train_meta.csv").size(), 100u);
  const auto summary = read_json(out / "patches_summary.json");
  EXPECT_EQ(summary["failed_slides"].get<int>(), 1);
}

TEST(ExtractBadInput, AnnotationsOutsideTheSlideNameTheFix) {
  const Fixture& fx = fixture();
  test::ScratchDir out;
  const fs::path xml = out / "far.xml";
  std::ofstream(xml) << asap_xml({{{90000, 90000}, {91000, 90000}, {91000, 91000}}});
  const auto r = run_wsi({"extract", fx.slide.string(), "--annotations", xml.string(), "-o",
                          (out / "ds").string(), "-q"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("none of the 1 shapes overlaps"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--annotation-scale"), std::string::npos) << r.err;
}

TEST(ExtractBadInput, AnnotationsWithoutTumourFailTheSlideUnlessAllowed) {
  const Fixture& fx = fixture();
  test::ScratchDir out;
  const fs::path xml = out / "cells.xml";
  std::string text = asap_xml({{{100, 100}, {3000, 100}, {3000, 3000}}});
  const std::string tumour = "PartOfGroup=\"Tumor\"";
  for (auto at = text.find(tumour); at != std::string::npos; at = text.find(tumour))
    text.replace(at, tumour.size(), "PartOfGroup=\"Lymphocytes\"");
  std::ofstream(xml) << text;
  const auto r = run_wsi({"extract", fx.slide.string(), "--annotations", xml.string(), "-o", (out / "ds").string(), "-q"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find(xml.string() + ": no tumour in the annotations (groups found: 'Lymphocytes': 1 ignored)"),
            std::string::npos)
      << r.err;
  const auto allowed = run_wsi({"extract", fx.slide.string(), "--annotations", xml.string(), "-o",
                                (out / "ok").string(), "-q", "--allow-no-tumour"});
  EXPECT_EQ(allowed.code, 0) << allowed.err;
  const auto summary = read_json(out / "ok" / "patches_summary.json");
  EXPECT_EQ(summary["slides"][0]["annotation_groups"], "groups found: 'Lymphocytes': 1 ignored");
  EXPECT_EQ(summary["slides"][0]["positives"], 0);
  EXPECT_GT(summary["slides"][0]["negatives"].get<int>(), 0);
}

TEST(ExtractBadInput, MissingGroundTruthIsAUsageError) {
  const Fixture& fx = fixture();
  test::ScratchDir out;
  const auto r = run_wsi({"extract", fx.slide.string(), "-o", out.path().string()});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--unlabelled"), std::string::npos) << r.err;
}

TEST(ExtractBadInput, FullDiskLeavesNoDatasetUnderFinalNames) {
  const Fixture& fx = fixture();
  test::ScratchDir out;
  // 2 MB file-size limit with SIGXFSZ ignored: writes fail with EFBIG like on a full disk.
  const auto r = run_wsi({"extract", fx.slide.string(), "--mask", fx.mask.string(), "-o", out.path().string(), "-q",
                          "--min-tissue", "0"},
                         "ulimit -f 2048; trap '' XFSZ;");
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_FALSE(r.signalled);
  EXPECT_NE(r.err.find("patches_train"), std::string::npos) << r.err;
  for (const char* f : {"patches_train_x.h5", "patches_train_y.h5", "patches_train_meta.csv", "patches_summary.json"})
    EXPECT_FALSE(fs::exists(out / f)) << f;
  EXPECT_TRUE(test::partial_files(out.path()).empty());
}

// The Kaggle layout on a full disk once left patch TIFFs in train/ without train_labels.csv
// (issue 20): now the patches wait in a temporary folder that only a complete run renames.
TEST(ExtractBadInput, KaggleLayoutOnAFullDiskLeavesNoPatchFolderWithoutLabels) {
  const Fixture& fx = fixture();
  test::ScratchDir out;
  // Each 96² TIFF (27.8 KB) fits under a 32 KiB file-size limit; the meta CSV outgrows it.
  const auto r = run_wsi({"extract", fx.slide.string(), "--mask", fx.mask.string(), "-o", out.path().string(), "-q",
                          "--min-tissue", "0", "--format", "kaggle"},
                         "ulimit -f 32; trap '' XFSZ;");
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_FALSE(r.signalled);
  EXPECT_NE(r.err.find("train_meta.csv"), std::string::npos) << r.err;
  for (const char* f : {"train", "train_labels.csv", "train_meta.csv", "patches_summary.json"})
    EXPECT_FALSE(fs::exists(out / f)) << f;
  EXPECT_TRUE(test::partial_files(out.path()).empty());
  // Written again without the limit, the split's folder holds exactly the labelled patches, even
  // over a folder left by an earlier run.
  fs::create_directories(out / "train");
  std::ofstream(out / "train" / "stale.tif") << "x";
  const auto ok = run_wsi({"extract", fx.slide.string(), "--mask", fx.mask.string(), "-o", out.path().string(), "-q",
                           "--format", "kaggle"});
  ASSERT_EQ(ok.code, 0) << ok.err;
  size_t tifs = 0;
  for (const auto& e : fs::directory_iterator(out / "train")) tifs += e.path().extension() == ".tif";
  std::ifstream labels(out / "train_labels.csv");
  const size_t lines = static_cast<size_t>(std::count(std::istreambuf_iterator<char>(labels), {}, '\n'));
  EXPECT_EQ(tifs + 1, lines);
  EXPECT_FALSE(fs::exists(out / "train" / "stale.tif"));
  EXPECT_TRUE(test::partial_files(out.path()).empty());
}

TEST(ExtractBadInput, UnreadableRegionIsSkippedAndCounted) {
  const Fixture& fx = fixture();
  test::ScratchDir dir;
  const fs::path broken = dir / "broken.tif";
  fs::copy_file(fx.slide, broken);
  // Three level-0 tiles in the middle of the slide no longer decode.
  test::corrupt_tiles(broken, 4000, 3000, 3);
  test::ScratchDir out;
  const auto r = run_wsi({"extract", broken.string(), "--mask", fx.mask.string(), "-o", out.path().string(), "-q",
                          "--min-tissue", "0"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto summary = read_json(out / "patches_summary.json");
  const auto& s = summary["slides"][0];
  EXPECT_GT(s["read_failures"].get<int>(), 0) << s.dump();
  EXPECT_EQ(s["written"].get<int>() + s["read_failures"].get<int>(), s["selected"].get<int>());
  EXPECT_NE(r.out.find("failed to decode"), std::string::npos) << r.out;
}

TEST(ExtractBadInput, SlideWithoutTissueGivesEmptyValidDatasetAndANote) {
  test::ScratchDir dir;
  // A white pyramidal TIFF (glass only), written by the vips command-line tool.
  const fs::path white = dir / "white.tif";
  const std::string cmd = "vips black " + (dir / "b.v").string() + " 3000 3000 --bands 3 && vips linear " +
                          (dir / "b.v").string() + " '" + white.string() +
                          "[tile,pyramid,compression=jpeg]' 1 255 --uchar";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  const auto r = run_wsi({"extract", white.string(), "--unlabelled", "--mpp", "0.25", "-o",
                          (dir / "ds").string(), "-q"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("no tissue"), std::string::npos) << r.out;
  EXPECT_EQ(h5_shape(dir / "ds" / "patches_train_x.h5", "x"), (std::vector<hsize_t>{0, 96, 96, 3}));
}

// The real Camelyon16 Tumor_001 slide at level 5 (7.776 um/px, no mpp in the file) with the
// official lesion outlines in level-0 coordinates (divided by 32).
TEST(ExtractReal, Camelyon16Tumor001PositivesLieOnTheLesionsAndCoverThem) {
  const fs::path slide = test::shared_testdata("slides/camelyon16/tumor_001aaf.tif");
  const fs::path json = test::shared_testdata("annotations/camelyon16/Tumor_001.json");
  if (!fs::exists(slide) || !fs::exists(json)) WSI_SKIP_MISSING() << "../shared/testdata-real is absent";
  test::ScratchDir out;
  // 32 px patches at the slide's own 7.776 um/px (the level-5 export cannot give PCam's 0.972).
  const auto r = run_wsi({"extract", slide.string(), "--annotations", json.string(), "--annotation-scale", "32",
                          "--mpp", "7.776", "--target-mpp", "7.776", "--patch-size", "32", "--stride", "32",
                          "--label-rule", "any", "--min-tissue", "0.05", "-o", out.path().string(), "-q"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto rows = read_meta(out / "patches_train_meta.csv");
  ASSERT_GT(rows.size(), 500u);

  AnnotationOptions opt;
  opt.coordinate_scale = 32;
  const AnnotationSet lesions = load_annotations(json, opt);
  ASSERT_EQ(lesions.shapes.size(), 2u);
  // Every positive patch contains lesion samples; every lesion sample lies in a positive patch.
  std::set<std::pair<int64_t, int64_t>> positive_cells;
  for (const auto& row : rows) {
    const GrayImage c = rasterize(lesions, static_cast<double>(row.x), static_cast<double>(row.y), 1.0, 32, 32);
    const bool has = std::count(c.pixels.begin(), c.pixels.end(), kClassTumour) > 0;
    EXPECT_EQ(has, row.label == 1) << "patch at " << row.x << "," << row.y;
    if (row.label) positive_cells.insert({row.x / 32, row.y / 32});
  }
  ASSERT_GT(positive_cells.size(), 20u);
  const Slide s(slide);
  const GrayImage whole = rasterize(lesions, 0, 0, 4.0, s.width() / 4, s.height() / 4);
  int64_t lesion = 0, covered = 0;
  for (int64_t y = 0; y < whole.height; ++y)
    for (int64_t x = 0; x < whole.width; ++x)
      if (whole.at(x, y) == kClassTumour) {
        ++lesion;
        covered += positive_cells.count({(x * 4 + 2) / 32, (y * 4 + 2) / 32});
      }
  ASSERT_GT(lesion, 100);
  // Lesion samples on glass (tissue fraction below 5 %) are the only ones allowed to be missed.
  EXPECT_GE(static_cast<double>(covered) / static_cast<double>(lesion), 0.97) << covered << " of " << lesion;
}

}  // namespace
}  // namespace wsi
