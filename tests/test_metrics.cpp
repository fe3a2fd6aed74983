// Metrics against values computed by hand (and equal to scikit-learn's on the same inputs).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>

#include "wsi/error.hpp"
#include "wsi/metrics.hpp"

namespace wsi {
namespace {

TEST(RocAuc, ScikitLearnDocExampleIs075) {
  EXPECT_DOUBLE_EQ(roc_auc({0.1, 0.4, 0.35, 0.8}, {0, 0, 1, 1}), 0.75);
}

TEST(RocAuc, TiesCountOneHalf) {
  // Pairs (pos, neg): (0.5, 0.1) 1, (0.5, 0.5) 0.5, (0.9, 0.1) 1, (0.9, 0.5) 1 -> 3.5 / 4.
  EXPECT_DOUBLE_EQ(roc_auc({0.1, 0.5, 0.5, 0.9}, {0, 0, 1, 1}), 0.875);
  EXPECT_DOUBLE_EQ(roc_auc({0.5, 0.5, 0.5, 0.5}, {0, 1, 0, 1}), 0.5);
  EXPECT_DOUBLE_EQ(roc_auc({1, 2, 3}, {1, 0, 0}), 0.0);
}

TEST(RocAuc, EqualsPairCountingOnRandomData) {
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> coarse(0, 9);  // many ties
  std::vector<double> s;
  std::vector<int> l;
  for (int i = 0; i < 300; ++i) {
    l.push_back(i % 3 == 0);
    s.push_back(coarse(rng) + (l.back() ? 2 : 0));
  }
  double pairs = 0, wins = 0;
  for (size_t i = 0; i < s.size(); ++i)
    for (size_t j = 0; j < s.size(); ++j)
      if (l[i] == 1 && l[j] == 0) {
        pairs += 1;
        wins += s[i] > s[j] ? 1.0 : s[i] == s[j] ? 0.5 : 0.0;
      }
  EXPECT_NEAR(roc_auc(s, l), wins / pairs, 1e-12);
}

TEST(RocAuc, OneClassOrMismatchedSizesAreErrors) {
  EXPECT_THROW(roc_auc({0.1, 0.2}, {1, 1}), ConfigError);
  EXPECT_THROW(roc_auc({0.1}, {1, 0}), ConfigError);
  EXPECT_THROW(roc_auc({0.1, 0.2}, {2, 0}), ConfigError);
}

TEST(RocCurve, OnePointPerDistinctScoreFromInfinity) {
  const auto c = roc_curve({0.1, 0.4, 0.35, 0.8}, {0, 0, 1, 1});
  ASSERT_EQ(c.size(), 5u);
  EXPECT_TRUE(std::isinf(c[0].threshold));
  const double fpr[] = {0, 0, 0.5, 0.5, 1}, tpr[] = {0, 0.5, 0.5, 1, 1}, thr[] = {0.8, 0.4, 0.35, 0.1};
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_DOUBLE_EQ(c[i].fpr, fpr[i]) << i;
    EXPECT_DOUBLE_EQ(c[i].tpr, tpr[i]) << i;
    if (i > 0) {
      EXPECT_DOUBLE_EQ(c[i].threshold, thr[i - 1]);
    }
  }
  // Tied scores move both rates in one step.
  const auto t = roc_curve({0.5, 0.5, 0.2}, {1, 0, 0});
  ASSERT_EQ(t.size(), 3u);
  EXPECT_DOUBLE_EQ(t[1].fpr, 0.5);
  EXPECT_DOUBLE_EQ(t[1].tpr, 1.0);
}

TEST(ConfusionAndReport, MatchScikitLearnsClassificationReport) {
  // y_true [0,1,1,0,1], y_pred [0,1,0,0,1] (scores 0/1, threshold 0.5; >= counts as positive).
  const ConfusionMatrix cm = confusion_matrix({0, 1, 0, 0, 1}, {0, 1, 1, 0, 1});
  EXPECT_EQ(cm.tn, 2);
  EXPECT_EQ(cm.fp, 0);
  EXPECT_EQ(cm.fn, 1);
  EXPECT_EQ(cm.tp, 2);
  const auto r = classification_report(cm);
  EXPECT_NEAR(r.normal.precision, 2.0 / 3, 1e-12);
  EXPECT_NEAR(r.normal.recall, 1.0, 1e-12);
  EXPECT_NEAR(r.normal.f1, 0.8, 1e-12);
  EXPECT_EQ(r.normal.support, 2);
  EXPECT_NEAR(r.tumour.precision, 1.0, 1e-12);
  EXPECT_NEAR(r.tumour.recall, 2.0 / 3, 1e-12);
  EXPECT_EQ(r.tumour.support, 3);
  EXPECT_NEAR(r.accuracy, 0.8, 1e-12);
  EXPECT_NEAR(r.macro.precision, 5.0 / 6, 1e-12);
  EXPECT_NEAR(r.weighted.precision, (2 * 2.0 / 3 + 3 * 1.0) / 5, 1e-12);
  EXPECT_NEAR(r.weighted.recall, 0.8, 1e-12);
  const std::string text = r.to_text();
  EXPECT_NE(text.find("weighted avg"), std::string::npos);
  EXPECT_NE(text.find("0.8667"), std::string::npos) << text;
  EXPECT_EQ(confusion_matrix({0.5}, {1}, 0.5).tp, 1);  // threshold is inclusive
}

TEST(ConfusionAndReport, EmptyClassesGiveZerosNotNan) {
  const auto r = classification_report(confusion_matrix({0.1, 0.2}, {0, 0}));
  EXPECT_EQ(r.tumour.precision, 0.0);
  EXPECT_EQ(r.tumour.recall, 0.0);
  EXPECT_EQ(r.tumour.f1, 0.0);
  EXPECT_EQ(r.accuracy, 1.0);
}

}  // namespace
}  // namespace wsi

namespace wsi {
namespace {

std::vector<uint8_t> blank(int64_t w, int64_t h) { return std::vector<uint8_t>(static_cast<size_t>(w * h), 0); }

template <typename F>
std::string error_text(F f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no ConfigError)";
}

TEST(FrocLesions, DilationIsAnExactEuclideanRadiusOfHalf75Um) {
  // 15 um pixels: radius 75 / 30 = 2.5 px; pixels with dx^2 + dy^2 < 6.25 around one tumour pixel.
  auto m = blank(20, 20);
  m[10 * 20 + 10] = 255;
  const LesionMap lm = camelyon_lesion_map(m, 20, 20, 15.0);
  ASSERT_EQ(lm.lesions(), 1);
  EXPECT_EQ(std::count(lm.labels.begin(), lm.labels.end(), 1), 21);
  EXPECT_TRUE(lm.itc[0]);  // ~5 px across at 15 um: far under 275 um
}

TEST(FrocLesions, BigLesionsCountHolesAreFilledAndSmallOnesAreItc) {
  // 10 um pixels: a 30 x 30 ring (hole 20 x 20, wider than the 3.75 px dilation) and one speck.
  auto m = blank(100, 100);
  for (int y = 10; y < 40; ++y)
    for (int x = 10; x < 40; ++x)
      if (x < 15 || x >= 35 || y < 15 || y >= 35) m[static_cast<size_t>(y * 100 + x)] = 1;
  m[80 * 100 + 80] = 1;
  const LesionMap lm = camelyon_lesion_map(m, 100, 100, 10.0);
  ASSERT_EQ(lm.lesions(), 2);
  EXPECT_EQ(lm.labels[25 * 100 + 25], lm.labels[12 * 100 + 12]);  // the hole belongs to the ring
  EXPECT_FALSE(lm.itc[static_cast<size_t>(lm.labels[25 * 100 + 25] - 1)]);
  EXPECT_TRUE(lm.itc[static_cast<size_t>(lm.labels[80 * 100 + 80] - 1)]);
}

TEST(Froc, HandComputedCurveAndScoreInBothDefinitions) {
  auto m = blank(100, 100);
  for (int y = 10; y < 40; ++y)
    for (int x = 10; x < 40; ++x) m[static_cast<size_t>(y * 100 + x)] = 255;
  m[80 * 100 + 80] = 255;  // an ITC
  std::vector<SlideTruth> truth(2);
  truth[0].lesions = camelyon_lesion_map(m, 100, 100, 10.0);
  truth[1].lesions = camelyon_lesion_map(blank(100, 100), 100, 100, 10.0);  // a normal slide
  truth[0].downsample = truth[1].downsample = 4;  // detections in level-0 pixels, 4 per mask pixel
  const std::vector<std::vector<Detection>> det{
      {{0.55, 80, 80}, {0.4, 120, 100}, {0.7, 321, 321}, {0.6, 280, 40}, {0.3, 8, 380}},
      {{0.5, 200, 200}}};
  // Lesion score 0.55 (max of 0.55, 0.4); 0.7 hits the ITC (ignored); FPs 0.6, 0.3 and 0.5 on
  // two slides.
  // Official: the sweep holds the ITC's score 0 and the lesion's float32 0.55f; 0 is skipped.
  // Thresholds 0.3, 0.5, 0.55f, 0.6 -> avg FPs 1.5, 1, 0.5, 0.5; sensitivity 1, 1, 1, 0; then
  // (0, 0). At 1/4 between (0, 0) and (1/2, 0): 0; at 1/2 the last 1/2-FP point: 1.
  const FrocResult o = camelyon_froc(truth, det);
  EXPECT_EQ(o.definition, FrocDefinition::official);
  EXPECT_EQ(o.lesions, 1);
  const double inf = std::numeric_limits<double>::infinity();
  ASSERT_EQ(o.thresholds, (std::vector<double>{0.3, 0.5, static_cast<double>(0.55f), 0.6, inf}));
  EXPECT_EQ(o.avg_false_positives, (std::vector<double>{1.5, 1.0, 0.5, 0.5, 0}));
  EXPECT_EQ(o.sensitivity, (std::vector<double>{1, 1, 1, 0, 0}));
  // Corrected: thresholds 0.3, 0.5, 0.55, 0.6, the same points, no (0, 0): at 1/4, left of the
  // curve, the top threshold's 0.
  const FrocResult k = camelyon_froc(truth, det, FrocDefinition::corrected);
  EXPECT_EQ(k.definition, FrocDefinition::corrected);
  EXPECT_EQ(k.lesions, 1);
  ASSERT_EQ(k.thresholds, (std::vector<double>{0.3, 0.5, 0.55, 0.6}));
  EXPECT_EQ(k.avg_false_positives, (std::vector<double>{1.5, 1.0, 0.5, 0.5}));
  EXPECT_EQ(k.sensitivity, (std::vector<double>{1, 1, 1, 0}));
  const double want[6] = {0, 1, 1, 1, 1, 1};
  for (int i = 0; i < 6; ++i) {
    EXPECT_DOUBLE_EQ(o.sensitivity_at[i], want[i]) << i;
    EXPECT_DOUBLE_EQ(k.sensitivity_at[i], want[i]) << i;
  }
  EXPECT_DOUBLE_EQ(o.score, 5.0 / 6);
  EXPECT_DOUBLE_EQ(k.score, 5.0 / 6);
}

TEST(Froc, OfficialSkipsTheLowestThresholdAndInterpolatesFromTheZeroPoint) {
  // Two lesions found at 0.8 and 0.5; false positives at 0.9 and 0.2, one slide.
  auto m = blank(100, 100);
  for (int y = 5; y < 35; ++y)
    for (int x = 5; x < 35; ++x) m[static_cast<size_t>(y * 100 + x)] = 1;
  for (int y = 60; y < 90; ++y)
    for (int x = 60; x < 90; ++x) m[static_cast<size_t>(y * 100 + x)] = 1;
  std::vector<SlideTruth> truth(1);
  truth[0].lesions = camelyon_lesion_map(m, 100, 100, 10.0);
  const std::vector<std::vector<Detection>> det = {{{0.8, 20, 20}, {0.5, 70, 70}, {0.9, 50, 2}, {0.2, 2, 98}}};
  // Official: no lesion missed, so no 0 to skip: all_probs[1:] drops 0.2. Thresholds 0.5 (1 FP,
  // 1), 0.8f (1, 1/2), 0.9 (1, 0), then (0, 0): 0 up to 1 FP (the (0, 0)-(1, 0) stretch), 1 from
  // 1 FP on; score 4/6.
  const FrocResult o = camelyon_froc(truth, det);
  ASSERT_EQ(o.thresholds.size(), 4u);
  EXPECT_EQ(o.thresholds[0], 0.5);
  const double want[6] = {0, 0, 1, 1, 1, 1};
  for (int i = 0; i < 6; ++i) EXPECT_DOUBLE_EQ(o.sensitivity_at[i], want[i]) << i;
  EXPECT_DOUBLE_EQ(o.score, 4.0 / 6);
  // Corrected: thresholds 0.2 (2 FPs, 1), 0.5 (1, 1), 0.8 (1, 1/2), 0.9 (1, 0); left of 1 FP
  // the top threshold's 0 (numpy.interp's clamp); 1 at 1 and 2 FPs; score 4/6 as well.
  const FrocResult k = camelyon_froc(truth, det, FrocDefinition::corrected);
  ASSERT_EQ(k.thresholds.size(), 4u);
  EXPECT_EQ(k.thresholds[0], 0.2);
  for (int i = 0; i < 6; ++i) EXPECT_DOUBLE_EQ(k.sensitivity_at[i], want[i]) << i;
}

TEST(Froc, SizeMismatchAndNoSlidesAreErrors) {
  std::vector<SlideTruth> truth(1);
  EXPECT_EQ(error_text([&] { camelyon_froc(truth, {}); }), "FROC: 1 ground truths but 0 detection lists");
  EXPECT_EQ(error_text([&] { camelyon_froc({}, {}, FrocDefinition::corrected); }), "FROC: no slides");
}

TEST(Froc, OfficialRefusesADetectionOutsideTheLesionMapAndTruncatesTowardZero) {
  auto m = blank(10, 10);
  for (int y = 0; y < 10; ++y) m[static_cast<size_t>(y * 10)] = 1;  // tumour along the left edge
  std::vector<SlideTruth> truth(1);
  truth[0].lesions = camelyon_lesion_map(m, 10, 10, 30.0);  // 300 µm tall: a lesion, not an ITC
  ASSERT_EQ(truth[0].lesions.itc, std::vector<bool>{false});
  truth[0].downsample = 32;
  truth[0].name = "tumor_001";
  // x = -31: int(-31 / 32) = 0, column 0, the lesion (floor would give -1, outside: an FP).
  // With an FP at 0.25: thresholds 0.5 (0 FPs, 1), then (0, 0).
  const FrocResult inside = camelyon_froc(truth, {{{0.5, -31, 100}, {0.25, 200, 200}}});
  EXPECT_EQ(inside.thresholds, (std::vector<double>{0.5, std::numeric_limits<double>::infinity()}));
  EXPECT_EQ(inside.sensitivity, (std::vector<double>{1, 0}));
  EXPECT_EQ(error_text([&] { camelyon_froc(truth, {{{0.5, -32, 100}}}); }),
            "FROC: slide tumor_001: the detection at x=-32, y=100 (probability 0.5) falls outside its 10 x 10 lesion "
            "map (downsample 32), where the official Camelyon16 script fails (or wraps round, for negative "
            "coordinates); check that the detections are in this slide's level-0 pixels (the corrected FROC counts "
            "such a detection as a false positive)");
  truth[0].name.clear();
  EXPECT_EQ(error_text([&] { camelyon_froc(truth, {{{0.25, 320, 5}}}); }).substr(0, 54),
            "FROC: slide 1: the detection at x=320, y=5 (probabilit");
  // Corrected: a false positive (floor(-31 / 32) = -1 is outside too).
  const FrocResult k = camelyon_froc(truth, {{{0.5, -32, 100}, {0.25, -31, 100}}}, FrocDefinition::corrected);
  EXPECT_EQ(k.avg_false_positives, (std::vector<double>{2, 1}));
  // A slide without lesions looks nothing up: every detection is a false positive.
  std::vector<SlideTruth> normal(1);
  EXPECT_EQ(camelyon_froc(normal, {{{0.5, -1e6, 1e9}}}).thresholds.size(), 1u);
}

}  // namespace
}  // namespace wsi
