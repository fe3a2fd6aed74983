// Metrics against values computed by hand (and equal to scikit-learn's on the same inputs).
#include <gtest/gtest.h>

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
