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

namespace wsi {

// ---- Camelyon16 lesion-level FROC (as the challenge's Evaluation_FROC.py computes it) ----
//
// Per slide: the ground-truth tumour mask at some pyramid level (`um_per_pixel` µm per mask
// pixel) becomes an evaluation mask: tumour dilated by 75 µm / 2 (the official script's
// threshold, "75 µm is the size of 5 tumour cells", applied as a radius of half of it), holes
// filled, 8-connected lesions labelled. Lesions whose major axis (of the ellipse with the same
// second moments, like scikit-image's regionprops) is under 275 µm are isolated tumour cells
// (ITC): detections on them count neither as true nor as false positives.
// Detections are (probability, x, y) in LEVEL-0 pixels; `downsample` maps them to mask pixels.
// A detection outside every lesion is a false positive; a lesion's score is the highest
// probability of the detections on it. The FROC curve sweeps the threshold over every
// probability; sensitivities at 1/4, 1/2, 1, 2, 4 and 8 average false positives per slide are
// interpolated linearly (numpy.interp over the curve), and their mean is the challenge score.
// One deliberate difference: a lesion without any detection is never counted as found (the
// official script keeps a zero-filled score array, so such lesions, and ITCs, count as found at
// a threshold of 0, which can push its sensitivity above 1).

struct LesionMap {
  int64_t width = 0, height = 0;
  std::vector<int32_t> labels;  // 0 = background, 1..n = lesion id, row-major
  std::vector<bool> itc;        // itc[id - 1]: isolated tumour cells (excluded)
  int64_t lesions() const { return static_cast<int64_t>(itc.size()); }
};
// `mask`: row-major, non-zero = tumour, `width` x `height` mask pixels of `um_per_pixel` µm.
LesionMap camelyon_lesion_map(const std::vector<uint8_t>& mask, int64_t width, int64_t height, double um_per_pixel);

struct Detection {
  double probability = 0;
  double x = 0, y = 0;  // level-0 pixels
};

struct SlideTruth {
  LesionMap lesions;       // empty (no lesions) for a normal slide
  double downsample = 1;   // level-0 pixels per lesion-map pixel
};

struct FrocResult {
  std::vector<double> thresholds, avg_false_positives, sensitivity;  // the curve, thresholds ascending
  double sensitivity_at[6] = {0, 0, 0, 0, 0, 0};  // at 0.25, 0.5, 1, 2, 4, 8 FPs per slide
  double score = 0;                               // their mean
  int64_t lesions = 0;                            // non-ITC lesions over all slides
};
FrocResult camelyon_froc(const std::vector<SlideTruth>& truth, const std::vector<std::vector<Detection>>& detections);

}  // namespace wsi
