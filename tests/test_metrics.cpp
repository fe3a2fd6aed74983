// Metrics against values computed by hand (and equal to scikit-learn's on the same inputs).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

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

TEST(Froc, HandComputedCurveAndScore) {
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
  // two slides. Thresholds 0.3, 0.5, 0.55, 0.6 -> avg FPs 1.5, 1, 0.5, 0.5; sensitivity 1, 1, 1, 0.
  const FrocResult r = camelyon_froc(truth, det);
  EXPECT_EQ(r.lesions, 1);
  ASSERT_EQ(r.thresholds, (std::vector<double>{0.3, 0.5, 0.55, 0.6}));
  EXPECT_EQ(r.avg_false_positives, (std::vector<double>{1.5, 1.0, 0.5, 0.5}));
  EXPECT_EQ(r.sensitivity, (std::vector<double>{1, 1, 1, 0}));
  const double want[6] = {0, 1, 1, 1, 1, 1};
  for (int k = 0; k < 6; ++k) EXPECT_DOUBLE_EQ(r.sensitivity_at[k], want[k]) << k;
  EXPECT_DOUBLE_EQ(r.score, 5.0 / 6);
}

TEST(Froc, InterpolatesBetweenOperatingPoints) {
  // Two lesions found at 0.8 and 0.5; false positives at 0.9 and 0.2, one slide.
  auto m = blank(100, 100);
  for (int y = 5; y < 35; ++y)
    for (int x = 5; x < 35; ++x) m[static_cast<size_t>(y * 100 + x)] = 1;
  for (int y = 60; y < 90; ++y)
    for (int x = 60; x < 90; ++x) m[static_cast<size_t>(y * 100 + x)] = 1;
  std::vector<SlideTruth> truth(1);
  truth[0].lesions = camelyon_lesion_map(m, 100, 100, 10.0);
  // Thresholds 0.2 (FP 2, sens 1), 0.5 (FP 1, sens 1), 0.8 (FP 1, sens 0.5), 0.9 (FP 1, sens 0).
  const FrocResult r = camelyon_froc(truth, {{{0.8, 20, 20}, {0.5, 70, 70}, {0.9, 50, 2}, {0.2, 2, 98}}});
  ASSERT_EQ(r.thresholds.size(), 4u);
  // At 0.25 and 0.5 FPs: below the first point (FP 1) -> its sensitivity (numpy.interp clamps).
  EXPECT_DOUBLE_EQ(r.sensitivity_at[0], 0.0);
  EXPECT_DOUBLE_EQ(r.sensitivity_at[2], 1.0);  // at 1 FP: the best operating point with 1 FP
  EXPECT_DOUBLE_EQ(r.sensitivity_at[3], 1.0);  // at 2 FPs
  EXPECT_THROW(camelyon_froc(truth, {}), ConfigError);
}

}  // namespace
}  // namespace wsi
