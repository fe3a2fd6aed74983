// evaluate_slides (slide_eval.hpp) called directly: ASAP polygons written by the test as ground
// truth (no slide files), patch and detection CSVs with hand-computed scores, notes, the outputs
// written, and bad options refused before anything is written.
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "test_support.hpp"
#include "wsi/error.hpp"
#include "wsi/slide_eval.hpp"

namespace wsi {
namespace {
namespace fs = std::filesystem;

void write(const fs::path& p, const std::string& text) { std::ofstream(p, std::ios::binary) << text; }

// An ASAP XML with one tumour rectangle [x0, x1) x [y0, y1) in level-0 pixels.
void write_tumour_xml(const fs::path& p, int x0, int y0, int x1, int y1) {
  const auto c = [](int order, int x, int y) {
    return "<Coordinate Order=\"" + std::to_string(order) + "\" X=\"" + std::to_string(x) + "\" Y=\"" +
           std::to_string(y) + "\" />\n";
  };
  write(p, "<?xml version=\"1.0\"?>\n<ASAP_Annotations>\n<Annotations>\n"
           "<Annotation Name=\"t\" Type=\"Polygon\" PartOfGroup=\"Tumor\"><Coordinates>\n" +
               c(0, x0, y0) + c(1, x1, y0) + c(2, x1, y1) + c(3, x0, y1) +
               "</Coordinates></Annotation>\n</Annotations>\n<AnnotationGroups />\n</ASAP_Annotations>\n");
}

// Two slides, 96 px patches. a: tumour over the top two patches, probabilities 0.9 and 0.4 there,
// 0.2 and 0.1 below. b: tumour over its top patch at 0.3, its normal patch at 0.6.
struct TwoSlides {
  test::ScratchDir dir;
  fs::path results = dir / "results", truth = dir / "truth";
  TwoSlides() {
    fs::create_directories(results);
    fs::create_directories(truth);
    write(results / "a.patches.csv", "x,y,width,height,probability\n0,0,96,96,0.9\n96,0,96,96,0.4\n"
                                     "0,96,96,96,0.2\n96,96,96,96,0.1\n");
    write(results / "b.patches.csv", "x,y,width,height,probability\n0,0,96,96,0.3\n0,96,96,96,0.6\n");
    write_tumour_xml(truth / "a.xml", 0, 0, 192, 96);
    write_tumour_xml(truth / "b.xml", 0, 0, 96, 96);
  }
  SlideEvalOptions options() const {
    SlideEvalOptions o;
    o.results = results;
    o.truth = {truth.string()};
    return o;
  }
};

TEST(SlideEvaluation, PolygonTruthLabelsPatchesAndScoresEachSlideAndAllPooled) {
  const TwoSlides s;
  fs::path prepared;
  const SlideEvaluation ev = evaluate_slides(s.options(), [&](const fs::path& p) { prepared = p; });
  EXPECT_EQ(prepared, s.results);  // no --out: the results directory
  ASSERT_EQ(ev.slides.size(), 2u);
  const SlideEvalEntry& a = ev.slides[0];
  EXPECT_EQ(a.name, "a");
  ASSERT_TRUE(a.patches);
  EXPECT_EQ(a.patches->patches, 4);
  EXPECT_EQ(a.patches->tumour, 2);
  EXPECT_EQ(a.patches->confusion.tp, 1);
  EXPECT_EQ(a.patches->confusion.fn, 1);
  EXPECT_EQ(a.patches->confusion.tn, 2);
  EXPECT_EQ(a.patches->confusion.fp, 0);
  EXPECT_DOUBLE_EQ(*a.patches->auc, 1.0);
  EXPECT_DOUBLE_EQ(*a.patches->dice, 2.0 / 3.0);
  ASSERT_TRUE(ev.slides[1].patches);
  EXPECT_DOUBLE_EQ(*ev.slides[1].patches->auc, 0.0);
  // Pooled: tumour {0.9, 0.4, 0.3} against normal {0.2, 0.1, 0.6}: 7 of 9 pairs ordered right.
  ASSERT_TRUE(ev.pooled);
  EXPECT_EQ(ev.pooled->patches, 6);
  EXPECT_NEAR(*ev.pooled->auc, 7.0 / 9.0, 1e-12);
  EXPECT_EQ(ev.pooled->confusion.tp, 1);
  EXPECT_EQ(ev.pooled->confusion.fn, 2);
  EXPECT_EQ(ev.pooled->confusion.fp, 1);
  EXPECT_DOUBLE_EQ(*ev.pooled->dice, 2.0 / 5.0);
  EXPECT_FALSE(ev.froc);
  EXPECT_EQ(ev.notes, std::vector<std::string>{"no NAME.froc.csv files, so no FROC"});
  EXPECT_EQ(ev.written, std::vector<std::string>{"evaluation.json"});
  const auto j = nlohmann::json::parse(test::slurp(s.results / "evaluation.json"));
  EXPECT_NEAR(j["pooled"]["auc"].get<double>(), 7.0 / 9.0, 1e-12);
  EXPECT_EQ(j["slides"][1]["patch_level"]["confusion"]["fp"], 1);
  EXPECT_EQ(j["label_rule"], "center:32");
  EXPECT_TRUE(j["froc"].is_null());
}

TEST(SlideEvaluation, FrocCountsPolygonLesionsAtTheGivenMppAndWritesTheCurve) {
  test::ScratchDir dir;
  // A 400 um lesion at 1 um per pixel (not an ITC), found at 0.9; a false positive at 0.8.
  write(dir / "a.froc.csv", "0.9,200,200\n0.8,900,900\n");
  write_tumour_xml(dir / "a.xml", 0, 0, 400, 400);
  SlideEvalOptions o;
  o.results = dir.path();
  o.truth = {(dir / "a.xml").string()};
  o.out = dir / "out";
  o.froc = FrocDefinition::corrected;
  try {
    evaluate_slides(o);
    FAIL() << "no mpp, yet a FROC";
  } catch (const UsageError& e) {
    EXPECT_EQ(std::string(e.what()), "a: the FROC needs the microns per pixel of the slide, and " +
                                         (dir / "a.xml").string() + " does not say; pass --mpp (level-0 um per pixel) or --slides");
  }
  o.mpp = 1;
  const SlideEvaluation ev = evaluate_slides(o);
  ASSERT_TRUE(ev.froc);
  EXPECT_EQ(ev.froc->lesions, 1);
  EXPECT_EQ(ev.slides[0].lesions, 1);
  EXPECT_EQ(ev.itc_excluded, 0);
  // The lesion is found before any false positive: sensitivity 1 at every operating point.
  for (const double s : ev.froc->sensitivity_at) EXPECT_DOUBLE_EQ(s, 1.0);
  EXPECT_DOUBLE_EQ(ev.froc->score, 1.0);
  EXPECT_FALSE(ev.pooled);
  EXPECT_EQ(ev.written, (std::vector<std::string>{"evaluation.json", "froc_curve.csv", "froc_curve.svg"}));
  for (const auto& f : ev.written) EXPECT_TRUE(fs::exists(dir / "out" / f)) << f;  // created without a callback
  const auto j = nlohmann::json::parse(test::slurp(dir / "out" / "evaluation.json"));
  EXPECT_EQ(j["froc"]["definition"], "corrected");
  EXPECT_EQ(j["slides"][0]["froc"]["lesion_map"]["downsample"], 8);  // 8 um per pixel, at most 10
  EXPECT_EQ(j["slides"][0]["froc"]["lesion_map"]["mpp_from"], "--mpp");
}

TEST(SlideEvaluation, NormalIfMissingTakesASlideWithoutTruthAsNormalAndSaysSo) {
  const TwoSlides s;
  write(s.results / "c.patches.csv", "x,y,width,height,probability\n0,0,96,96,0.7\n96,0,96,96,0.2\n");
  SlideEvalOptions o = s.options();
  try {
    evaluate_slides(o);
    FAIL() << "a slide without truth was accepted";
  } catch (const UsageError& e) {
    EXPECT_EQ(std::string(e.what()),
              "no ground truth for 1 of 3 slides: c (looked for NAME.tif, NAME_mask.tif, NAME.xml, NAME.json, "
              "NAME.geojson among --truth); pass their masks or annotations, or --normal-if-missing if they are "
              "normal slides");
  }
  o.normal_if_missing = true;
  const SlideEvaluation ev = evaluate_slides(o);
  ASSERT_EQ(ev.slides.size(), 3u);
  EXPECT_EQ(ev.slides[2].truth, "none: a normal slide (--normal-if-missing)");
  EXPECT_EQ(ev.slides[2].patches->tumour, 0);
  EXPECT_EQ(ev.slides[2].patches->confusion.fp, 1);
  EXPECT_FALSE(ev.slides[2].patches->auc);
  EXPECT_EQ(ev.slides[2].notes, std::vector<std::string>{"AUC undefined: every patch is normal"});
  EXPECT_EQ(ev.pooled->confusion.fp, 2);  // b's and c's
  const auto has = [&](const std::string& note) {
    return std::find(ev.notes.begin(), ev.notes.end(), note) != ev.notes.end();
  };
  EXPECT_TRUE(has("c: AUC undefined: every patch is normal"));
  EXPECT_TRUE(has("no ground truth for c: taken as normal (--normal-if-missing)"));
}

TEST(SlideEvaluation, BadOptionsAndPatchesAreRefusedWithoutWritingAnything) {
  const TwoSlides s;
  bool prepared = false;
  const auto refused = [&](const SlideEvalOptions& o) -> std::string {
    try {
      evaluate_slides(o, [&](const fs::path&) { prepared = true; });
    } catch (const Error& e) {
      return e.what();
    }
    return "(accepted)";
  };
  SlideEvalOptions o = s.options();
  o.threshold = 2;
  EXPECT_EQ(refused(o), "--threshold must be in 0..1");
  o = s.options();
  o.mpp = -1;
  EXPECT_EQ(refused(o), "--mpp must be a positive number of micrometres per level-0 pixel (e.g. 0.25 for a 40x "
                        "scan), not -1");
  o = s.options();
  o.truth.clear();
  EXPECT_EQ(refused(o), "--truth is required: give the ground-truth masks / annotations (files or directories), or "
                        "--normal-if-missing when every slide is normal");
  o = s.options();
  o.truth = {(s.truth / "nope.xml").string()};
  EXPECT_EQ(refused(o), (s.truth / "nope.xml").string() + ": no such file or directory (--truth)");
  EXPECT_FALSE(prepared);
  // A patch that is not square is found after the output directory is prepared, before any output.
  write(s.results / "b.patches.csv", "x,y,width,height,probability\n0,0,96,48,0.3\n");
  EXPECT_EQ(refused(s.options()), (s.results / "b.patches.csv").string() +
                                      ":2: the patch is 96 x 48 level-0 pixels; evaluate-slides labels square "
                                      "patches only");
  EXPECT_FALSE(fs::exists(s.results / "evaluation.json"));
}

TEST(LesionMapDownsample, LargestPowerOfTwoAtOrUnderTenMicrons) {
  EXPECT_EQ(lesion_map_downsample(0.243), 32);  // Camelyon16's level 5: 7.8 um
  EXPECT_EQ(lesion_map_downsample(0.25), 32);
  EXPECT_EQ(lesion_map_downsample(1), 8);
  EXPECT_EQ(lesion_map_downsample(2.5), 4);     // exactly 10 um
  EXPECT_EQ(lesion_map_downsample(5), 2);
  EXPECT_EQ(lesion_map_downsample(20), 1);      // coarser than 10 um already: level 0
}

}  // namespace
}  // namespace wsi
