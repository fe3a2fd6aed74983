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

// ---- Camelyon16 lesion-level FROC ---------------------------------------------------------------
//
// Two definitions (FrocDefinition). `official` is what the challenge's Evaluation_FROC.py
// (B. Ehteshami Bejnordi, 2016: computeEvaluationMask, computeITCList, readCSVContent,
// compute_FP_TP_Probs, computeFROC and its __main__) computes, quirks included, so the score is
// the one the challenge published; it is the default. `corrected` sweeps the curve as the
// script evidently meant to; its numbers are those of this tool before the official port.
//
// Lesion map (camelyon_lesion_map; both definitions; the script's computeEvaluationMask and
// computeITCList on a mask `um_per_pixel` µm per pixel, i.e. its resolution * 2^level):
//   * tumour = non-zero mask pixels (the script: first channel == 255);
//   * dilation: pixels whose exact Euclidean distance to the nearest tumour pixel is below
//     75 / (um_per_pixel * 2) mask pixels (the script's "75 µm, 5 tumour cells", used as a radius
//     of half of it: distance_transform_edt < threshold);
//   * holes filled (background not 4-connected to the border; binary_fill_holes), then
//     8-connected lesions labelled 1..n in raster order of their first pixel (measure.label,
//     connectivity 2);
//   * ITC (isolated tumour cells): a lesion whose major axis (4 sqrt(largest eigenvalue) of its
//     pixels' second central moments, scikit-image's regionprops major_axis_length) is below
//     275 / um_per_pixel mask pixels: 200 µm, the ITC limit, plus the 75 µm of dilation.
//
// Detections are (probability, x, y) in LEVEL-0 pixels; SlideTruth::downsample (level-0 pixels
// per lesion-map pixel, the script's 2^level) maps them onto the lesion map.
//
// official (compute_FP_TP_Probs, computeFROC, the interpolation of __main__), quirk by quirk:
//   1. Hit: mask pixel (trunc(x / downsample), trunc(y / downsample)), truncated toward zero like
//      Python's int(). A detection that maps outside the map is a ConfigError: the script fails
//      there (IndexError), or wraps round to the far edge for negative indices. On a slide
//      without any lesion label (a normal slide) every detection is a false positive and nothing
//      is looked up (the script's is_tumor == False branch).
//   2. On background (label 0): a false positive; its probability joins the FP list as read (a
//      double). On an ITC: ignored, neither a true nor a false positive. On a lesion: the
//      lesion's score becomes the probability when that is greater than the score so far, which
//      starts at 0, so the score is the highest probability on it and a probability-0 detection
//      finds nothing.
//   3. Lesion scores are float32 (the script's np.zeros(..., dtype=np.float32)), and EVERY label
//      of a slide contributes its score to the sweep: 0 for a missed lesion and for an ITC.
//   4. Thresholds: the distinct values, ascending, of the FP probabilities and the float32
//      lesion scores (sorted(set(...)); a double and a float32 that differ, 0.3 and 0.3f, are
//      two thresholds), WITHOUT THE LOWEST (all_probs[1:]). That is meant to drop the 0 of missed
//      lesions and ITCs; when there is no 0 (every lesion found and no ITC, or only normal
//      slides) it drops the lowest real probability, so a lesion found only by the lowest
//      detection is never counted.
//   5. At threshold t: false positives = FP probabilities >= t (in double); true positives =
//      lesion scores >= float32(t) (numpy compares a float32 array with a Python float in
//      float32); average FPs = false positives / slides (every slide, with lesions or not);
//      sensitivity = true positives / lesions (non-ITC, all slides).
//   6. Ties: equal values are one threshold, so they enter the curve together; a false positive
//      tied with a lesion's score at the top leaves no point with 0 FPs and some sensitivity:
//      the curve rises from the (0, 0) point of 7 straight to the tied point. Equal means equal
//      after 3: a false positive at 0.8 and a lesion's 0.8 are two thresholds, and as 0.8f =
//      0.800000012 > 0.8, threshold 0.8f counts the lesion without the false positive; at 0.9
//      (0.9f = 0.899999976 < 0.9) both thresholds count both, as a tie. Values a float32 holds
//      exactly (0.5, or any probability the heatmap writes: they are float32 values) just tie.
//   7. A last point (0 average FPs, sensitivity 0) is appended after the sweep (threshold +inf
//      in FrocResult).
//   8. Sensitivity at 1/4, 1/2, 1, 2, 4, 8 average FPs per slide: numpy.interp over the points in
//      reverse order (FPs ascending): at exactly a point's FPs, the last such point in that order
//      (the lowest threshold with those FPs, so the highest sensitivity); between two FP values,
//      linear from the last point of the lower to the first of the higher (its highest
//      threshold); beyond the largest FPs, the sensitivity at the lowest threshold swept. Score =
//      their mean.
//   9. The one deviation: with no lesion in any slide the script divides 0 by 0 (NaN
//      sensitivities); here every sensitivity, and the score, is 0.
//   Not ported: the script's file handling (a slide is a tumour slide when its CSV name, less
//   ".csv", equals the first 8 characters of a mask file's name; evaluate-slides pairs names as
//   slide_eval.hpp says) and its numpy 2 behaviour (NEP 50 compares a float32 scalar with a
//   Python float in float32, which reorders 0.3 and 0.3f; this follows numpy 1.x, under which
//   the script was written and which orders them by value).
//
// corrected: the same lesion map and hits (1, 2) except that a detection outside the map is a
//   false positive, the pixel is floor(x / downsample), and a lesion's score is the highest
//   probability on it even when that is 0 (found at threshold 0); lesion scores are doubles and
//   only lesions with a detection enter the sweep (a missed lesion or an ITC adds no threshold,
//   so it is never found); every distinct probability is a threshold, none skipped; no (0, 0) point:
//   below the curve's smallest average FPs, the sensitivity at the highest threshold is taken
//   (numpy.interp's left clamp), beyond its largest, that at the lowest; with no detections or
//   no lesions every sensitivity is 0.
//
// Thread-safety: pure functions.

enum class FrocDefinition { official, corrected };
// "official" / "corrected".
const char* froc_definition_name(FrocDefinition d);

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
  LesionMap lesions;      // empty (no lesions) for a normal slide
  double downsample = 1;  // level-0 pixels per lesion-map pixel (the script's 2^level)
  std::string name;       // for messages; empty = "slide K" (1-based)
};

struct FrocResult {
  FrocDefinition definition = FrocDefinition::official;
  // The curve, thresholds ascending; official: ends with the (0, 0) point at threshold +inf.
  std::vector<double> thresholds, avg_false_positives, sensitivity;
  double sensitivity_at[6] = {0, 0, 0, 0, 0, 0};  // at 0.25, 0.5, 1, 2, 4, 8 FPs per slide
  double score = 0;                               // their mean
  int64_t lesions = 0;                            // non-ITC lesions over all slides
};
// One detection list per slide, in the order of `truth`. Throws ConfigError when the sizes
// differ, when there is no slide, and (official) for a detection outside its slide's lesion map.
FrocResult camelyon_froc(const std::vector<SlideTruth>& truth, const std::vector<std::vector<Detection>>& detections,
                         FrocDefinition definition = FrocDefinition::official);

}  // namespace wsi
