// wsi/metrics.hpp — binary classification metrics for patch datasets (pure functions).
//
// Conventions (those of scikit-learn, so numbers can be compared with it):
//   * labels are 0 (normal) / 1 (tumour); scores are any real numbers, higher = more tumour;
//   * roc_auc is the Mann–Whitney statistic with mid-ranks, so tied scores count one half;
//   * roc_curve has one point per distinct score, thresholds descending, starting at
//     (threshold +inf, fpr 0, tpr 0) — no intermediate points are dropped;
//   * a prediction is positive when score >= threshold;
//   * precision/recall/F1 of a class with no predicted (or no true) members are 0, not NaN.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace wsi {

// Area under the ROC curve. Throws ConfigError when sizes differ or one class is absent.
double roc_auc(const std::vector<double>& scores, const std::vector<int>& labels);

struct RocPoint {
  double threshold = 0;
  double fpr = 0;
  double tpr = 0;
};
std::vector<RocPoint> roc_curve(const std::vector<double>& scores, const std::vector<int>& labels);

struct ConfusionMatrix {
  int64_t tn = 0, fp = 0, fn = 0, tp = 0;
};
ConfusionMatrix confusion_matrix(const std::vector<double>& scores, const std::vector<int>& labels,
                                 double threshold = 0.5);

struct ClassScores {
  double precision = 0, recall = 0, f1 = 0;
  int64_t support = 0;
};

// scikit-learn's classification_report for the two classes.
struct ClassificationReport {
  ClassScores normal, tumour;  // class 0, class 1
  ClassScores macro, weighted; // averages; support = all samples
  double accuracy = 0;
  int64_t total = 0;
  // The familiar fixed-width table ("precision recall f1-score support" rows).
  std::string to_text(int digits = 4) const;
};
ClassificationReport classification_report(const ConfusionMatrix& cm);

}  // namespace wsi
