// `wsi-heatmap evaluate-slides` end to end on a generated slide: its mask and ASAP XML as ground
// truth, patch CSVs whose probability is each patch's true tumour fraction (AUC 1, Dice 1) or its
// inverse, FROC detections with hand-computed operating points, and bad inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <future>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <queue>
#include <sstream>

#include "test_support.hpp"
#include "wsi/slide.hpp"

namespace wsi {
namespace {
namespace fs = std::filesystem;
using test::run_wsi;

constexpr int64_t kSize = 4000;  // level-0 pixels, 1 um each: a 4 mm node
constexpr int64_t kPatch = 96;   // level-0 pixels per patch side, so label samples are pixels

struct PatchTruth {
  int64_t x, y;
  double fraction;  // exact tumour fraction of the 96 x 96 level-0 pixels
};

struct Fixture {
  fs::path slide, mask, xml;
  std::vector<PatchTruth> patches;
  std::vector<std::pair<double, double>> lesion_centres;  // level-0, inside each lesion
};

// Generated once per test process (deterministic, written atomically, so parallel processes agree).
const Fixture& fixture() {
  static const Fixture fx = [] {
    Fixture f;
    const fs::path dir = test::fixture_dir();
    f.slide = dir / "evalslides.tif";
    f.mask = dir / "evalslides_mask.tif";
    f.xml = dir / "evalslides.xml";
    if (!fs::exists(f.slide) || !fs::exists(f.mask) || !fs::exists(f.xml)) {
      const auto r = run_wsi({"synth", "--out", f.slide.string(), "--mask", f.mask.string(), "--annotations",
                              f.xml.string(), "--size", "4000x4000", "--mpp", "1", "--tumours", "2", "--seed", "1"});
      EXPECT_EQ(r.code, 0) << r.err;
    }
    const Slide mask(f.mask);
    for (int64_t y = 0; y + kPatch <= kSize; y += kPatch)
      for (int64_t x = 0; x + kPatch <= kSize; x += kPatch) {
        const RgbImage px = mask.read_region({0, x, y, kPatch, kPatch});
        int64_t tumour = 0;
        for (int64_t i = 0; i < kPatch * kPatch; ++i) tumour += px.pixels[static_cast<size_t>(i * 3)] != 0;
        f.patches.push_back({x, y, static_cast<double>(tumour) / (kPatch * kPatch)});
      }
    // Lesions on mask level 3 (8 um per pixel, what the FROC's lesion map reads): 8-connected
    // components; each one's pixel nearest its centroid is a point inside it.
    int level = -1;
    for (int l = 0; l < mask.level_count(); ++l)
      if (std::abs(mask.level(l).downsample - 8) < 0.01) level = l;
    EXPECT_GE(level, 0);
    const LevelInfo& li = mask.level(level);
    const RgbImage m = mask.read_region({level, 0, 0, li.width, li.height});
    std::vector<int> seen(static_cast<size_t>(li.width * li.height), 0);
    for (int64_t s = 0; s < li.width * li.height; ++s) {
      if (!m.pixels[static_cast<size_t>(s * 3)] || seen[static_cast<size_t>(s)]) continue;
      std::vector<int64_t> comp;
      std::queue<int64_t> q;
      q.push(s);
      seen[static_cast<size_t>(s)] = 1;
      while (!q.empty()) {
        const int64_t i = q.front();
        q.pop();
        comp.push_back(i);
        for (int64_t dy = -1; dy <= 1; ++dy)
          for (int64_t dx = -1; dx <= 1; ++dx) {
            const int64_t nx = i % li.width + dx, ny = i / li.width + dy;
            if (nx < 0 || ny < 0 || nx >= li.width || ny >= li.height) continue;
            const int64_t j = ny * li.width + nx;
            if (m.pixels[static_cast<size_t>(j * 3)] && !seen[static_cast<size_t>(j)]) {
              seen[static_cast<size_t>(j)] = 1;
              q.push(j);
            }
          }
      }
      double cx = 0, cy = 0;
      for (int64_t i : comp) cx += static_cast<double>(i % li.width), cy += static_cast<double>(i / li.width);
      cx /= static_cast<double>(comp.size()), cy /= static_cast<double>(comp.size());
      int64_t best = comp[0];
      auto d2 = [&](int64_t i) {
        return std::pow(static_cast<double>(i % li.width) - cx, 2) + std::pow(static_cast<double>(i / li.width) - cy, 2);
      };
      for (int64_t i : comp)
        if (d2(i) < d2(best)) best = i;
      f.lesion_centres.push_back({(static_cast<double>(best % li.width) + 0.5) * 8, (static_cast<double>(best / li.width) + 0.5) * 8});
    }
    return f;
  }();
  return fx;
}

void write(const fs::path& p, const std::string& text) {
  std::ofstream f(p, std::ios::binary);
  f << text;
}

// NAME.patches.csv with probability = f(true fraction).
template <typename F>
void write_patches(const fs::path& p, F prob) {
  std::ostringstream s;
  s << "x,y,width,height,probability\n" << std::setprecision(17);
  for (const auto& t : fixture().patches) s << t.x << "," << t.y << "," << kPatch << "," << kPatch << "," << prob(t.fraction) << "\n";
  write(p, s.str());
}

// Detections: lesion 1 at 0.9, lesion 2 at 0.6, a false positive on the glass at the corner at 0.8;
// in the official script's form (no header, integer x, y), or with the `prob,x,y` header of our
// older files.
void write_detections(const fs::path& p, bool header = false) {
  const auto& c = fixture().lesion_centres;
  std::ostringstream s;
  s << (header ? "prob,x,y\n" : "") << "0.9," << c[0].first << "," << c[0].second << "\n0.6," << c[1].first << ","
    << c[1].second << "\n0.8,20,20\n";
  write(p, s.str());
}

nlohmann::json report(const fs::path& dir) { return nlohmann::json::parse(test::slurp(dir / "evaluation.json")); }

struct Counts {
  int64_t tp = 0, fp = 0, fn = 0, tn = 0;
  // 2TP / (2TP + FP + FN + extra_fp)
  double dice(int64_t extra_fp = 0) const {
    return 2.0 * static_cast<double>(tp) / static_cast<double>(2 * tp + fp + fn + extra_fp);
  }
};
// Confusion counts of the fixture's patches for label = fraction >= 0.5, prediction = prob >= 0.5.
template <typename F>
Counts counts(F prob) {
  Counts c;
  for (const auto& t : fixture().patches) {
    const bool l = t.fraction >= 0.5, p = prob(t.fraction) >= 0.5;
    ++(l ? (p ? c.tp : c.fn) : (p ? c.fp : c.tn));
  }
  return c;
}

TEST(CliEvaluateSlides, FixtureHasTwoLesionsAndTumourPatches) {
  const Fixture& fx = fixture();
  ASSERT_EQ(fx.lesion_centres.size(), 2u);
  const Counts c = counts([](double f) { return f; });
  EXPECT_GT(c.tp, 20);
  EXPECT_GT(c.tn, 500);
}

TEST(CliEvaluateSlides, TrueFractionsScoreAucAndDiceOneAndBothFrocDefinitionsAreHandComputed) {
  const Fixture& fx = fixture();
  ASSERT_EQ(fx.lesion_centres.size(), 2u);
  test::ScratchDir d;
  write_patches(d / "evalslides.patches.csv", [](double f) { return f; });
  write_detections(d / "evalslides.froc.csv");
  const auto r = run_wsi({"evaluate-slides", "--results", d.path().string(), "--truth", fx.mask.string(),
                          "--label-rule", "fraction:0.5"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(r.err.empty()) << r.err;
  const auto j = report(d.path());
  const Counts c = counts([](double f) { return f; });
  const auto& s = j["slides"][0];
  EXPECT_EQ(s["name"], "evalslides");
  EXPECT_EQ(s["patch_level"]["patches"], fx.patches.size());
  EXPECT_EQ(s["patch_level"]["tumour_patches"], c.tp);
  EXPECT_DOUBLE_EQ(s["patch_level"]["auc"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(s["patch_level"]["dice"].get<double>(), 1.0);
  EXPECT_EQ(s["patch_level"]["confusion"]["tp"], c.tp);
  EXPECT_EQ(s["patch_level"]["confusion"]["fp"], 0);
  EXPECT_EQ(s["patch_level"]["confusion"]["fn"], 0);
  EXPECT_EQ(s["patch_level"]["confusion"]["tn"], c.tn);
  EXPECT_DOUBLE_EQ(j["pooled"]["auc"].get<double>(), 1.0);
  // The lesion map: 1 um/px slide -> downsample 8 (8 um per pixel), 500 x 500.
  EXPECT_EQ(s["froc"]["lesions"], 2);
  EXPECT_EQ(s["froc"]["itc_excluded"], 0);
  EXPECT_EQ(s["froc"]["lesion_map"]["downsample"], 8.0);
  EXPECT_EQ(s["froc"]["lesion_map"]["width"], 500);
  // One slide; TP 0.9, 0.6 (float32 scores 0.9f = 0.89999998, 0.6f); FP 0.8.
  // Official: no lesion missed, so all_probs[1:] drops the lowest, 0.6f: lesion 2 is never
  // found. Thresholds 0.8 (1 FP, 1/2), 0.9f (0, 1/2), then (0, 0): 1/2 everywhere.
  const auto& f = j["froc"];
  const char* at[6] = {"1/4", "1/2", "1", "2", "4", "8"};
  EXPECT_EQ(f["definition"], "official");
  for (int k = 0; k < 6; ++k) EXPECT_DOUBLE_EQ(f["sensitivity_at_fp_per_slide"][at[k]].get<double>(), 0.5) << at[k];
  EXPECT_NEAR(f["score"].get<double>(), 0.5, 1e-12);
  EXPECT_EQ(f["lesions"], 2);
  ASSERT_EQ(f["curve"].size(), 3u);
  EXPECT_TRUE(f["curve"][2][0].is_null());  // the (0, 0) point's threshold, +inf
  EXPECT_EQ(test::slurp(d / "froc_curve.csv"),
            "threshold,avg_false_positives_per_slide,sensitivity\n0.8,1,0.5\n0.8999999762,0,0.5\ninf,0,0\n");
  EXPECT_NE(test::slurp(d / "froc_curve.svg").find("FROC score 0.5000"), std::string::npos);
  EXPECT_NE(r.out.find("FROC (official) over 1 slide(s), 2 lesion(s)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("FROC score (mean) 0.5000"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1.0000  1.0000"), std::string::npos) << r.out;
  EXPECT_TRUE(test::partial_files(d.path()).empty());

  // Run again into another directory: the first run's outputs in the results directory are not
  // taken for results, and the numbers are the same.
  test::ScratchDir o;
  const auto r2 = run_wsi({"evaluate-slides", "--results", d.path().string(), "--truth", fx.mask.string(),
                           "--label-rule", "fraction:0.5", "-o", (o / "sub").string()});
  ASSERT_EQ(r2.code, 0) << r2.err;
  EXPECT_EQ(report(o / "sub")["froc"]["score"], f["score"]);

  // --froc corrected: every probability a threshold. Curve (avg FP, sensitivity) by falling
  // threshold: 0.9 (0, 1/2), 0.8 (1, 1/2), 0.6 (1, 1) -> at 1/4, 1/2: 1/2; at 1 .. 8: 1; mean 5/6.
  const auto rc = run_wsi({"evaluate-slides", "--results", d.path().string(), "--truth", fx.mask.string(),
                           "--label-rule", "fraction:0.5", "--froc", "corrected", "-o", (o / "corrected").string()});
  ASSERT_EQ(rc.code, 0) << rc.err;
  const auto cf = report(o / "corrected")["froc"];
  EXPECT_EQ(cf["definition"], "corrected");
  const double want[6] = {0.5, 0.5, 1, 1, 1, 1};
  for (int k = 0; k < 6; ++k)
    EXPECT_DOUBLE_EQ(cf["sensitivity_at_fp_per_slide"][at[k]].get<double>(), want[k]) << at[k];
  EXPECT_NEAR(cf["score"].get<double>(), 5.0 / 6.0, 1e-12);
  EXPECT_EQ(test::slurp(o / "corrected" / "froc_curve.csv"),
            "threshold,avg_false_positives_per_slide,sensitivity\n0.6,1,1\n0.8,1,0.5\n0.9,0,0.5\n");
  EXPECT_NE(rc.out.find("FROC (corrected) over 1 slide(s)"), std::string::npos) << rc.out;
  EXPECT_NE(rc.out.find("FROC score (mean) 0.8333"), std::string::npos) << rc.out;
}

TEST(CliEvaluateSlides, InvertedProbabilitiesScoreAucZero) {
  const Fixture& fx = fixture();
  test::ScratchDir d;
  const auto inv = [](double f) { return 1 - f; };
  write_patches(d / "evalslides.patches.csv", inv);
  const auto r = run_wsi({"evaluate-slides", "-r", d.path().string(), "-t", fx.mask.string(), "--label-rule",
                          "fraction:0.5", "--threshold", "0.5"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = report(d.path());
  const Counts c = counts(inv);
  const auto& p = j["slides"][0]["patch_level"];
  EXPECT_DOUBLE_EQ(p["auc"].get<double>(), 0.0);
  EXPECT_EQ(p["confusion"]["fp"], c.fp);
  EXPECT_EQ(p["confusion"]["fn"], c.fn);
  EXPECT_DOUBLE_EQ(p["dice"].get<double>(), c.dice());
  EXPECT_LT(p["dice"].get<double>(), 0.1);
  EXPECT_TRUE(j["froc"].is_null());
  EXPECT_NE(r.out.find("no NAME.froc.csv files, so no FROC"), std::string::npos) << r.out;
}

TEST(CliEvaluateSlides, NormalSlideAddsFalsePositivesToThePooledScoresAndTheFroc) {
  const Fixture& fx = fixture();
  test::ScratchDir d;
  write_patches(d / "evalslides.patches.csv", [](double f) { return f; });
  write_detections(d / "evalslides.froc.csv");
  // A normal slide: 10 patches, one predicted tumour; one detection at 0.95.
  std::string normal = "x,y,width,height,probability\n";
  for (int i = 0; i < 10; ++i) normal += std::to_string(i * 96) + ",0,96,96," + (i == 3 ? "0.7" : "0.1") + "\n";
  write(d / "normal_1.patches.csv", normal);
  write(d / "normal_1.froc.csv", "0.95,500,500\n");

  const auto missing = run_wsi({"evaluate-slides", "--results", d.path().string(), "--truth", fx.mask.string()});
  EXPECT_EQ(missing.code, 2);
  EXPECT_NE(missing.err.find("no ground truth for 1 of 2 slides: normal_1"), std::string::npos) << missing.err;
  EXPECT_NE(missing.err.find("--normal-if-missing"), std::string::npos) << missing.err;

  // The whole fixture directory as --truth: the mask wins over the XML and over the slide itself.
  const auto r = run_wsi({"evaluate-slides", "--results", d.path().string(), "--truth", fx.mask.parent_path().string(),
                          "--normal-if-missing", "--label-rule", "fraction:0.5"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = report(d.path());
  ASSERT_EQ(j["slides"].size(), 2u);
  EXPECT_EQ(j["slides"][0]["name"], "evalslides");
  EXPECT_NE(j["slides"][0]["truth"].get<std::string>().find(fx.mask.string()), std::string::npos);
  const auto& n = j["slides"][1];
  EXPECT_EQ(n["truth"], "none: a normal slide (--normal-if-missing)");
  EXPECT_TRUE(n["patch_level"]["auc"].is_null());
  EXPECT_DOUBLE_EQ(n["patch_level"]["dice"].get<double>(), 0.0);
  EXPECT_EQ(n["patch_level"]["confusion"]["fp"], 1);
  const Counts c = counts([](double f) { return f; });
  EXPECT_EQ(j["pooled"]["confusion"]["tp"], c.tp);
  EXPECT_EQ(j["pooled"]["confusion"]["fp"], 1);
  EXPECT_EQ(j["pooled"]["confusion"]["tn"], c.tn + 9);
  EXPECT_DOUBLE_EQ(j["pooled"]["dice"].get<double>(), c.dice(1));
  EXPECT_LT(j["pooled"]["auc"].get<double>(), 1.0);
  // Two slides; TP 0.9, 0.6; FP 0.8, 0.95. Official (0.6f, the lowest, skipped), by falling
  // threshold (avg FP, sensitivity): (0, 0) appended, 0.95 (1/2, 0), 0.9f (1/2, 1/2), 0.8 (1, 1/2).
  // At 1/4, between (0, 0) and (1/2, 0): 0; at 1/2 the last 1/2-FP point: 1/2; beyond: 1/2;
  // mean 2.5 / 6. (Corrected: 0, 1/2, then 1 from 1 FP, with 0.6 at (1, 1); mean 4.5 / 6.)
  const double want[6] = {0, 0.5, 0.5, 0.5, 0.5, 0.5};
  const char* at[6] = {"1/4", "1/2", "1", "2", "4", "8"};
  for (int k = 0; k < 6; ++k)
    EXPECT_DOUBLE_EQ(j["froc"]["sensitivity_at_fp_per_slide"][at[k]].get<double>(), want[k]) << at[k];
  EXPECT_NEAR(j["froc"]["score"].get<double>(), 2.5 / 6, 1e-12);
  EXPECT_NE(r.out.find("no ground truth for normal_1: taken as normal"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("evalslides: ground truth from " + fx.mask.string()), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("AUC undefined: every patch is normal"), std::string::npos) << r.out;
}

TEST(CliEvaluateSlides, AnnotationsAgreeWithTheMask) {
  const Fixture& fx = fixture();
  test::ScratchDir d;
  write_patches(d / "evalslides.patches.csv", [](double f) { return f; });
  write_detections(d / "evalslides.froc.csv", /*header=*/true);  // our older files still read
  // Polygons carry no mpp: the FROC asks for it, or for the slide.
  const auto no_mpp = run_wsi({"evaluate-slides", "--results", d.path().string(), "--truth", fx.xml.string()});
  EXPECT_EQ(no_mpp.code, 2);
  EXPECT_NE(no_mpp.err.find("evalslides: the FROC needs the microns per pixel of the slide, and " + fx.xml.string() +
                            " does not say; pass --mpp"),
            std::string::npos)
      << no_mpp.err;
  for (const std::vector<std::string>& extra : {std::vector<std::string>{"--mpp", "1"},
                                                std::vector<std::string>{"--slides", fx.slide.string()}}) {
    std::vector<std::string> args = {"evaluate-slides", "--results", d.path().string(), "--truth", fx.xml.string(),
                                     "--label-rule", "fraction:0.5"};
    args.insert(args.end(), extra.begin(), extra.end());
    const auto r = run_wsi(args);
    ASSERT_EQ(r.code, 0) << extra[0] << ": " << r.err;
    const auto j = report(d.path());
    const auto& p = j["slides"][0]["patch_level"];
    EXPECT_GT(p["auc"].get<double>(), 0.999) << extra[0];
    EXPECT_GT(p["dice"].get<double>(), 0.97) << extra[0];
    EXPECT_EQ(j["slides"][0]["froc"]["lesions"], 2) << extra[0];
    EXPECT_NEAR(j["froc"]["score"].get<double>(), 0.5, 1e-12) << extra[0];  // as from the mask
  }
}

TEST(CliEvaluateSlides, EachBadInputGivesOneClearLineAndItsExitCode) {
  const Fixture& fx = fixture();
  test::ScratchDir d;
  const std::string dir = d.path().string(), mask = fx.mask.string();
  write(d / "evalslides.patches.csv", "x,y,width,height,probability\n0,0,96,96,0.5\n96,0,96,96,abc\n");
  test::ScratchDir outside;
  write(outside / "evalslides.patches.csv", "x,y,width,height,probability\n0,0,96,96,0.5\n4096,0,96,96,0.5\n");
  test::ScratchDir incomplete;
  write(incomplete / "a.patches.csv", "x,y,width,height,probability\n");
  write(incomplete / "a.froc.csv", "");
  write(incomplete / "b.patches.csv", "x,y,width,height,probability\n");
  test::ScratchDir empty;
  test::ScratchDir bad_froc;
  write(bad_froc / "evalslides.froc.csv", "0.5,10,10\n0.5,10\n");
  test::ScratchDir off_map;
  write(off_map / "evalslides.froc.csv", "0.5,10,10\n0.75,4000,10\n");
  struct Case {
    std::vector<std::string> args;
    int code;
    std::string needle;
  };
  const std::vector<Case> cases = {
      {{"--results", dir, "--truth", mask}, 1,
       dir + "/evalslides.patches.csv:3: 'abc' in column probability is not a finite number"},
      {{"--results", bad_froc.path().string(), "--truth", mask}, 1,
       bad_froc.path().string() + "/evalslides.froc.csv:2: expected 3 fields (prob,x,y), found 2"},
      {{"--results", off_map.path().string(), "--truth", mask}, 1,
       "FROC: slide evalslides: the detection at x=4000, y=10 (probability 0.75) falls outside its 500 x 500 lesion "
       "map (downsample 8), where the official Camelyon16 script fails"},
      {{"--results", dir, "--truth", mask, "--froc", "best"}, 2, "--froc: best not in {official,corrected}"},
      {{"--results", outside.path().string(), "--truth", mask}, 1,
       outside.path().string() + "/evalslides.patches.csv:3: the patch at x=4096 y=0 lies outside the 4000 x 4000 "
                                 "level-0 pixels of mask " + mask},
      {{"--results", incomplete.path().string(), "--normal-if-missing"}, 1,
       "1 slide(s) have no NAME.froc.csv beside their NAME.patches.csv (" + incomplete.path().string() + "/b.patches.csv)"},
      {{"--results", empty.path().string(), "--normal-if-missing"}, 1,
       empty.path().string() + ": no NAME.patches.csv or NAME.froc.csv files here"},
      {{"--results", dir + "/nope", "--truth", mask}, 2, dir + "/nope: no such directory"},
      {{"--results", dir, "--truth", dir + "/nope.tif"}, 2, dir + "/nope.tif: no such file or directory (--truth)"},
      {{"--results", dir, "--truth", dir + "/evalslides.patches.csv"}, 2,
       dir + "/evalslides.patches.csv: not a ground-truth file"},
      {{"--results", dir}, 2, "--truth is required"},
      {{"--results", dir, "--truth", mask, "--label-rule", "middle"}, 2, "unknown label rule 'middle'"},
      {{"--results", dir, "--truth", mask, "--threshold", "2"}, 2, "--threshold must be in 0..1"},
      {{"--truth", mask}, 2, "--results is required"},
  };
  // Each run is mostly the executable's start-up (LibTorch), so they run side by side.
  std::vector<std::future<test::CliResult>> runs;
  for (const Case& c : cases) {
    std::vector<std::string> args = {"evaluate-slides"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    runs.push_back(std::async(std::launch::async, [args] { return run_wsi(args); }));
  }
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    const auto r = runs[i].get();
    EXPECT_EQ(r.code, c.code) << c.needle << "\n" << r.err;
    EXPECT_FALSE(r.signalled);
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_EQ(r.err.rfind("wsi-heatmap: error: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find(c.needle), std::string::npos) << "want: " << c.needle << "\ngot:  " << r.err;
  }
  EXPECT_FALSE(fs::exists(d / "evaluation.json"));
  EXPECT_TRUE(test::partial_files(d.path()).empty());
}

}  // namespace
}  // namespace wsi
