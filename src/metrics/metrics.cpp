#include "wsi/metrics.hpp"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <numeric>

#include "wsi/error.hpp"

namespace wsi {

namespace {

void check(const std::vector<double>& scores, const std::vector<int>& labels, bool need_both) {
  if (scores.size() != labels.size())
    throw ConfigError("metrics: " + std::to_string(scores.size()) + " scores but " + std::to_string(labels.size()) +
                      " labels");
  for (int l : labels)
    if (l != 0 && l != 1) throw ConfigError("metrics: labels must be 0 or 1, found " + std::to_string(l));
  if (need_both) {
    const auto pos = std::count(labels.begin(), labels.end(), 1);
    if (pos == 0 || pos == static_cast<long>(labels.size()))
      throw ConfigError("metrics: ROC AUC needs both classes, but every label is " +
                        std::string(pos == 0 ? "0" : "1"));
  }
}

// Indices sorted by score, descending.
std::vector<size_t> by_score_desc(const std::vector<double>& scores) {
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  return order;
}

ClassScores scores_of(int64_t tp, int64_t fp, int64_t fn) {
  ClassScores c;
  c.precision = tp + fp > 0 ? static_cast<double>(tp) / static_cast<double>(tp + fp) : 0.0;
  c.recall = tp + fn > 0 ? static_cast<double>(tp) / static_cast<double>(tp + fn) : 0.0;
  c.f1 = c.precision + c.recall > 0 ? 2 * c.precision * c.recall / (c.precision + c.recall) : 0.0;
  c.support = tp + fn;
  return c;
}

}  // namespace

double roc_auc(const std::vector<double>& scores, const std::vector<int>& labels) {
  check(scores, labels, true);
  // Mann–Whitney U with mid-ranks over ascending scores.
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  double rank_sum_pos = 0;
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j < order.size() && scores[order[j]] == scores[order[i]]) ++j;
    const double mid = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2.0;  // ranks i+1..j
    for (size_t k = i; k < j; ++k)
      if (labels[order[k]] == 1) rank_sum_pos += mid;
    i = j;
  }
  const auto n_pos = static_cast<double>(std::count(labels.begin(), labels.end(), 1));
  const double n_neg = static_cast<double>(labels.size()) - n_pos;
  return (rank_sum_pos - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg);
}

std::vector<RocPoint> roc_curve(const std::vector<double>& scores, const std::vector<int>& labels) {
  check(scores, labels, true);
  const auto n_pos = static_cast<double>(std::count(labels.begin(), labels.end(), 1));
  const double n_neg = static_cast<double>(labels.size()) - n_pos;
  std::vector<RocPoint> curve{{std::numeric_limits<double>::infinity(), 0.0, 0.0}};
  const auto order = by_score_desc(scores);
  double tp = 0, fp = 0;
  for (size_t i = 0; i < order.size();) {
    const double t = scores[order[i]];
    for (; i < order.size() && scores[order[i]] == t; ++i) (labels[order[i]] ? tp : fp) += 1;
    curve.push_back({t, fp / n_neg, tp / n_pos});
  }
  return curve;
}

ConfusionMatrix confusion_matrix(const std::vector<double>& scores, const std::vector<int>& labels,
                                 double threshold) {
  check(scores, labels, false);
  ConfusionMatrix cm;
  for (size_t i = 0; i < scores.size(); ++i) {
    const bool pred = scores[i] >= threshold;
    if (labels[i]) ++(pred ? cm.tp : cm.fn);
    else ++(pred ? cm.fp : cm.tn);
  }
  return cm;
}

ClassificationReport classification_report(const ConfusionMatrix& cm) {
  ClassificationReport r;
  r.tumour = scores_of(cm.tp, cm.fp, cm.fn);
  r.normal = scores_of(cm.tn, cm.fn, cm.fp);  // class 0 seen as the positive class
  r.total = cm.tn + cm.fp + cm.fn + cm.tp;
  r.accuracy = r.total ? static_cast<double>(cm.tp + cm.tn) / static_cast<double>(r.total) : 0.0;
  r.macro.precision = (r.normal.precision + r.tumour.precision) / 2;
  r.macro.recall = (r.normal.recall + r.tumour.recall) / 2;
  r.macro.f1 = (r.normal.f1 + r.tumour.f1) / 2;
  r.macro.support = r.total;
  const double n0 = static_cast<double>(r.normal.support), n1 = static_cast<double>(r.tumour.support);
  const double n = r.total ? static_cast<double>(r.total) : 1.0;
  r.weighted.precision = (n0 * r.normal.precision + n1 * r.tumour.precision) / n;
  r.weighted.recall = (n0 * r.normal.recall + n1 * r.tumour.recall) / n;
  r.weighted.f1 = (n0 * r.normal.f1 + n1 * r.tumour.f1) / n;
  r.weighted.support = r.total;
  return r;
}

std::string ClassificationReport::to_text(int digits) const {
  char line[160];
  std::string out;
  std::snprintf(line, sizeof line, "%14s %10s %10s %10s %10s\n\n", "", "precision", "recall", "f1-score", "support");
  out += line;
  auto row = [&](const char* name, const ClassScores& c) {
    std::snprintf(line, sizeof line, "%14s %10.*f %10.*f %10.*f %10lld\n", name, digits, c.precision, digits, c.recall,
                  digits, c.f1, static_cast<long long>(c.support));
    out += line;
  };
  row("normal (0)", normal);
  row("tumour (1)", tumour);
  out += "\n";
  std::snprintf(line, sizeof line, "%14s %10s %10s %10.*f %10lld\n", "accuracy", "", "", digits, accuracy,
                static_cast<long long>(total));
  out += line;
  row("macro avg", macro);
  row("weighted avg", weighted);
  return out;
}

}  // namespace wsi
