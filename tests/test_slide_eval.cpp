// slide_eval.hpp: the result CSVs of the heatmap pipeline (good files and a table of bad rows with
// the exact message each must give), pairing results with ground-truth files, Dice.
#include <gtest/gtest.h>

#include <functional>

#include "wsi/error.hpp"
#include "wsi/slide_eval.hpp"

namespace wsi {
namespace {
namespace fs = std::filesystem;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no ConfigError)";
}

TEST(SlideEvalPatchCsv, ReadsColumnsByNameInAnyOrderIgnoringExtras) {
  const auto p = parse_patch_csv(
      "\xEF\xBB\xBFprobability, y ,x,width,height,extra\r\n"
      "0.25,200,100,96,96,foo\r\n"
      "\n"
      "1,0,373.5,373.5,373.5,\r\n",
      "a.patches.csv");
  ASSERT_EQ(p.size(), 2u);
  EXPECT_DOUBLE_EQ(p[0].x, 100);
  EXPECT_DOUBLE_EQ(p[0].y, 200);
  EXPECT_DOUBLE_EQ(p[0].width, 96);
  EXPECT_DOUBLE_EQ(p[0].height, 96);
  EXPECT_DOUBLE_EQ(p[0].probability, 0.25);
  EXPECT_EQ(p[0].line, 2);
  EXPECT_DOUBLE_EQ(p[1].x, 373.5);
  EXPECT_DOUBLE_EQ(p[1].probability, 1);
  EXPECT_EQ(p[1].line, 4);  // the blank line counts
}

TEST(SlideEvalPatchCsv, HeaderOnlyIsASlideWithoutPatches) {
  EXPECT_TRUE(parse_patch_csv("x,y,width,height,probability\n", "a.patches.csv").empty());
}

TEST(SlideEvalPatchCsv, EachBadInputNamesFileLineAndWhat) {
  const std::string h = "x,y,width,height,probability\n";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "s.patches.csv: empty file; the first line must be the header x,y,width,height,probability"},
      {"0,0,96,96,0.5\n", "s.patches.csv:1: no header line; the first line must name the columns x,y,width,height,probability"},
      {"x,y,w,h,probability\n", "s.patches.csv:1: the header has no column 'width' (expected x,y,width,height,probability)"},
      {"x,y,x,width,height,probability\n", "s.patches.csv:1: column 'x' appears twice in the header (expected x,y,width,height,probability)"},
      {h + "0,0,96,96,0.5\n0,96,96,96\n", "s.patches.csv:3: expected 5 fields as in the header, found 4"},
      {h + "0,0,96,96,abc\n", "s.patches.csv:2: 'abc' in column probability is not a finite number"},
      {h + "0,,96,96,0.5\n", "s.patches.csv:2: the y field is empty"},
      {h + "nan,0,96,96,0.5\n", "s.patches.csv:2: 'nan' in column x is not a finite number"},
      {h + "0,0,96,96,1.5\n", "s.patches.csv:2: probability 1.5 is outside 0..1"},
      {h + "0,0,96,96,-0.1\n", "s.patches.csv:2: probability -0.1 is outside 0..1"},
      {h + "0,0,0,96,0.5\n", "s.patches.csv:2: the patch extent must be positive (width 0, height 96)"},
      {h + "0,0,96,96,0.5 0.6\n", "s.patches.csv:2: '0.5 0.6' in column probability is not a finite number"},
  };
  for (const auto& [text, message] : cases)
    EXPECT_EQ(error_of([&] { parse_patch_csv(text, "s.patches.csv"); }), message) << text;
}

TEST(SlideEvalDetectionCsv, WithAndWithoutHeader) {
  const auto a = parse_detection_csv("0.9,100,200\n0.5, 3.5 ,4\n", "a.froc.csv");
  ASSERT_EQ(a.size(), 2u);
  EXPECT_DOUBLE_EQ(a[0].probability, 0.9);
  EXPECT_DOUBLE_EQ(a[0].x, 100);
  EXPECT_DOUBLE_EQ(a[0].y, 200);
  EXPECT_DOUBLE_EQ(a[1].x, 3.5);
  const auto b = parse_detection_csv("x,y,Confidence\n100,200,0.9\n", "b.froc.csv");
  ASSERT_EQ(b.size(), 1u);
  EXPECT_DOUBLE_EQ(b[0].probability, 0.9);
  EXPECT_DOUBLE_EQ(b[0].x, 100);
  EXPECT_DOUBLE_EQ(b[0].y, 200);
  EXPECT_EQ(parse_detection_csv("prob,x,y\n", "c.froc.csv").size(), 0u);
  EXPECT_EQ(parse_detection_csv("", "d.froc.csv").size(), 0u);  // no detections on this slide
}

TEST(SlideEvalDetectionCsv, EachBadInputNamesFileLineAndWhat) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"0.9,100\n", "d.froc.csv:1: expected 3 fields (prob,x,y), found 2"},
      {"0.9,100,200\n0.8,1,2,3\n", "d.froc.csv:2: expected 3 fields (prob,x,y), found 4"},
      {"p,x,y\n", "d.froc.csv:1: the header has no column 'prob' (expected prob,x,y)"},
      {"prob,x,y\n0.5,1,2\n0.5,one,2\n", "d.froc.csv:3: 'one' in column x is not a finite number"},
      {"2,10,10\n", "d.froc.csv:1: probability 2 is outside 0..1"},
      {"0.5,10,inf\n", "d.froc.csv:1: 'inf' in column y is not a finite number"},
  };
  for (const auto& [text, message] : cases)
    EXPECT_EQ(error_of([&] { parse_detection_csv(text, "d.froc.csv"); }), message) << text;
}

TEST(SlideEvalDetectionCsv, MissingFileIsAUsageError) {
  EXPECT_THROW(read_detection_csv("/nonexistent/x.froc.csv"), UsageError);
  EXPECT_THROW(read_patch_csv("/nonexistent/x.patches.csv"), UsageError);
}

TEST(SlideEvalResults, PairsByNameAndIgnoresOtherFiles) {
  const auto r = pair_slide_results({"d/b.patches.csv", "d/a.froc.csv", "d/a.patches.csv", "d/b.froc.csv",
                                     "d/evaluation.json", "d/froc_curve.csv", "d/.b.froc.csv.partial-1-2",
                                     "d/.patches.csv", "d/tumor.1.patches.csv", "d/tumor.1.froc.csv"});
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].name, "a");
  EXPECT_EQ(*r[0].patches, fs::path("d/a.patches.csv"));
  EXPECT_EQ(*r[0].detections, fs::path("d/a.froc.csv"));
  EXPECT_EQ(r[1].name, "b");
  EXPECT_EQ(r[2].name, "tumor.1");
  // One kind only is fine when every slide has it.
  const auto p = pair_slide_results({"a.patches.csv", "b.patches.csv"});
  ASSERT_EQ(p.size(), 2u);
  EXPECT_FALSE(p[0].detections.has_value());
  EXPECT_TRUE(pair_slide_results({"notes.txt"}).empty());
}

TEST(SlideEvalResults, ASlideMissingOneKindIsNamed) {
  EXPECT_EQ(error_of([] { pair_slide_results({"d/a.patches.csv", "d/a.froc.csv", "d/b.patches.csv"}); }),
            "results incomplete: 1 slide(s) have no NAME.froc.csv beside their NAME.patches.csv (d/b.patches.csv) while "
            "1 other(s) have one; every slide needs the same result files (re-run those slides, or move the incomplete "
            "ones out of the directory)");
}

TEST(SlideEvalTruthFiles, KindAndKey) {
  EXPECT_EQ(truth_kind("a/Tumor_001_Mask.TIF"), TruthKind::mask);
  EXPECT_EQ(truth_kind("a.tiff"), TruthKind::mask);
  EXPECT_EQ(truth_kind("a.xml"), TruthKind::annotations);
  EXPECT_EQ(truth_kind("a.geojson"), TruthKind::annotations);
  EXPECT_FALSE(truth_kind("a.svs").has_value());
  EXPECT_EQ(truth_key("a/Tumor_001_Mask.tif"), "tumor_001");
  EXPECT_EQ(truth_key("s-mask.tif"), "s");
  EXPECT_EQ(truth_key("Tumor_001.xml"), "tumor_001");
  EXPECT_EQ(truth_key("_mask.tif"), "_mask");
}

TEST(SlideEvalTruthFiles, MatchPrefersANamedMaskThenAnnotationsThenAPlainTiff) {
  const auto m = match_truth({"tumor_001", "s", "normal_002", "x"},
                             {"gt/Tumor_001.xml", "gt/Tumor_001_Mask.tif", "d/s.tif", "d/s.xml", "gt/other.xml",
                              "gt/readme.txt", "d/x.tif"});
  ASSERT_EQ(m.truth.size(), 4u);
  ASSERT_TRUE(m.truth[0]);
  EXPECT_EQ(m.truth[0]->path, fs::path("gt/Tumor_001_Mask.tif"));
  EXPECT_EQ(m.truth[0]->kind, TruthKind::mask);
  ASSERT_TRUE(m.truth[1]);
  EXPECT_EQ(m.truth[1]->path, fs::path("d/s.xml"));  // d/s.tif may be the slide itself
  EXPECT_EQ(m.truth[1]->kind, TruthKind::annotations);
  EXPECT_FALSE(m.truth[2]);
  ASSERT_TRUE(m.truth[3]);
  EXPECT_EQ(m.truth[3]->path, fs::path("d/x.tif"));
  EXPECT_EQ(m.unmatched_names, std::vector<std::string>{"normal_002"});
  EXPECT_EQ(m.unused, std::vector<fs::path>{"gt/other.xml"});
  ASSERT_EQ(m.notes.size(), 2u);
  EXPECT_EQ(m.notes[0], "tumor_001: ground truth from gt/Tumor_001_Mask.tif (also matched, not used: gt/Tumor_001.xml)");
}

TEST(SlideEvalTruthFiles, TwoEquallyGoodCandidatesAreAnError) {
  EXPECT_EQ(error_of([] { match_truth({"a"}, {"x/a.xml", "x/A.json"}); }),
            "two ground-truth files match the slide a: x/a.xml and x/A.json; pass only one of them with --truth");
}

TEST(SlideEvalDice, TwoTpOverTwoTpPlusFpPlusFn) {
  EXPECT_DOUBLE_EQ(*dice({.tn = 5, .fp = 1, .fn = 2, .tp = 3}), 6.0 / 9.0);
  EXPECT_DOUBLE_EQ(*dice({.tn = 0, .fp = 0, .fn = 0, .tp = 4}), 1.0);
  EXPECT_DOUBLE_EQ(*dice({.tn = 9, .fp = 3, .fn = 0, .tp = 0}), 0.0);
  EXPECT_FALSE(dice({.tn = 9, .fp = 0, .fn = 0, .tp = 0}).has_value());  // nothing to find, nothing found
}

TEST(SlideEvalScorePatches, AucDiceAndConfusionAtTheThreshold) {
  // Labels 0 0 1 1 with scores 0.1 0.6 0.5 0.9: AUC 3/4; at 0.5: TP 2, FP 1, FN 0 -> Dice 4/5.
  const auto s = score_patches({0.1, 0.6, 0.5, 0.9}, {0, 0, 1, 1}, 0.5);
  EXPECT_EQ(s.patches, 4);
  EXPECT_EQ(s.tumour, 2);
  EXPECT_DOUBLE_EQ(*s.auc, 0.75);
  EXPECT_DOUBLE_EQ(*s.dice, 0.8);
  EXPECT_EQ(s.confusion.tp, 2);
  EXPECT_EQ(s.confusion.fp, 1);
  EXPECT_EQ(s.confusion.tn, 1);
  EXPECT_EQ(s.confusion.fn, 0);
  const auto normal = score_patches({0.1, 0.7}, {0, 0}, 0.5);
  EXPECT_FALSE(normal.auc.has_value());
  EXPECT_DOUBLE_EQ(*normal.dice, 0.0);
  const auto empty = score_patches({}, {}, 0.5);
  EXPECT_FALSE(empty.auc.has_value());
  EXPECT_FALSE(empty.dice.has_value());
  EXPECT_THROW(score_patches({0.5}, {}, 0.5), ConfigError);
}

}  // namespace
}  // namespace wsi
