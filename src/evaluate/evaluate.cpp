// A model on a labelled patch set (evaluate.hpp): predictions, ROC, confusion matrix and report,
// the worst mistakes with their Grad-CAM, feature-map grids.
#include "wsi/evaluate.hpp"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>

#include "core/json_text.hpp"
#include "core/pending_file.hpp"
#include "core/svg_plot.hpp"
#include "wsi/dataset.hpp"
#include "wsi/error.hpp"
#include "wsi/feature_maps.hpp"
#include "wsi/gradcam.hpp"
#include "wsi/image_io.hpp"

namespace wsi {
namespace {
namespace fs = std::filesystem;

void check_options(const PatchEvalOptions& o) {
  if (o.batch < 1) throw UsageError("--batch must be >= 1");
  if (!(o.threshold >= 0 && o.threshold <= 1)) throw UsageError("--threshold must be in 0..1");
  if (o.gallery < 0) throw UsageError("--gallery must be 0 (none) or more, not " + std::to_string(o.gallery));
  if (o.feature_maps < 0 || o.feature_maps > kMaxFeatureMaps)
    throw UsageError("--feature-maps must be 0 (none) to " + std::to_string(kMaxFeatureMaps) + " patches, not " +
                     std::to_string(o.feature_maps));
}

void make_dir(const fs::path& dir) {
  std::error_code ec;
  if (!fs::create_directories(dir, ec) && ec) throw WriteError(dir, "cannot create the output directory: " + ec.message());
}

std::string roc_svg(const std::vector<RocPoint>& roc, double auc) {
  detail::PlotSpec p;
  p.x_label = "false positive rate";
  p.y_label = "true positive rate";
  detail::PlotSeries chance{"", "#bbb", {0, 1}, {0, 1}, true, false}, curve{"", "#c0392b", {}, {}, false, false};
  for (const auto& pt : roc) curve.x.push_back(pt.fpr), curve.y.push_back(pt.tpr);
  p.series = {chance, curve};
  std::ostringstream n;
  n << "AUC " << std::fixed << std::setprecision(4) << auc;
  p.notes = {n.str()};
  return detail::line_plot_svg(p);
}

// Worst mistakes: a grid of patches (and, beside each, its Grad-CAM blended in red).
RgbImage gallery(const PatchSet& set, const Model& model, const std::vector<int64_t>& worst,
                 const std::vector<float>& prob, bool with_cam) {
  const int P = set.patch_size();
  const int cols = 4, cell = with_cam ? 2 * P + 4 : P + 4;
  const int rows = static_cast<int>((worst.size() + cols - 1) / cols);
  RgbImage img(cols * cell, std::max(1, rows) * (P + 12));
  std::fill(img.pixels.begin(), img.pixels.end(), uint8_t{255});
  // The worst patches are scattered through the set: read them one by one, then one Grad-CAM batch.
  const size_t bytes = static_cast<size_t>(P * P * 3), plane = static_cast<size_t>(P * P);
  std::vector<uint8_t> all(worst.size() * bytes);
  for (size_t k = 0; k < worst.size(); ++k) set.read(worst[k], 1, all.data() + k * bytes);
  std::vector<float> cams;
  if (with_cam) cams = gradcam(model, all.data(), static_cast<int64_t>(worst.size())).cams;
  for (size_t k = 0; k < worst.size(); ++k) {
    const uint8_t* px = all.data() + k * bytes;
    const float* cam = with_cam ? cams.data() + k * plane : nullptr;
    const int ox = static_cast<int>(k % cols) * cell, oy = static_cast<int>(k / cols) * (P + 12) + 8;
    // A red bar above each patch: its length is the predicted tumour probability.
    const int bar = static_cast<int>(std::lround(static_cast<double>(prob[static_cast<size_t>(worst[k])]) * P));
    for (int x = 0; x < bar; ++x)
      for (int y = oy - 6; y < oy - 2; ++y) {
        uint8_t* q = img.at(ox + x, y);
        q[0] = 200, q[1] = 40, q[2] = 40;
      }
    std::vector<uint8_t> blended(with_cam ? bytes : 0);
    if (with_cam) blend_cam(px, cam, P * P, blended.data());
    for (int y = 0; y < P; ++y) {
      std::copy_n(px + y * P * 3, P * 3, img.at(ox, oy + y));
      if (with_cam) std::copy_n(blended.data() + y * P * 3, P * 3, img.at(ox + P + 2, oy + y));
    }
  }
  return img;
}

// The `count` patches with the highest cross-entropy, worst first (ties in set order).
std::vector<int64_t> worst_patches(const std::vector<float>& prob, const std::vector<int>& labels, int count) {
  std::vector<int64_t> order(prob.size());
  std::iota(order.begin(), order.end(), int64_t{0});
  auto loss = [&](int64_t i) {
    const double p = std::clamp(static_cast<double>(prob[static_cast<size_t>(i)]), 1e-7, 1 - 1e-7);
    return labels[static_cast<size_t>(i)] ? -std::log(p) : -std::log(1 - p);
  };
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return loss(a) > loss(b); });
  order.resize(std::min<size_t>(order.size(), static_cast<size_t>(count)));
  return order;
}

nlohmann::json layer_json(const std::optional<FeatureLayer>& l, const std::string& unavailable) {
  if (!l) return {{"skipped", unavailable}};
  return {{"layer", l->name}, {"kind", l->kind}, {"channels", l->channels}, {"height", l->height}, {"width", l->width}};
}

// Feature-map grids (feature_maps.hpp) of `n` chosen patches: DIR/<id>.conv1.png (the first
// convolution layer) and DIR/<id>.features.png (the Grad-CAM layer), those the model has.
nlohmann::json write_feature_maps(const PatchSet& set, const Model& model, const FeatureMaps& layers,
                                  const std::vector<float>& prob, int n, const fs::path& dir,
                                  const std::function<void(const fs::path&)>& prepare_dir) {
  prepare_dir(dir);
  const int P = set.patch_size();
  std::vector<uint8_t> px(static_cast<size_t>(P * P * 3));
  nlohmann::json j = {{"first_conv", layer_json(layers.first_conv, layers.first_conv_unavailable)},
                      {"features", layer_json(layers.features, layers.features_unavailable)},
                      {"patches", nlohmann::json::array()}};
  for (const int64_t i : choose_feature_map_patches(prob, set.labels(), n)) {
    const auto k = static_cast<size_t>(i);
    set.read(i, 1, px.data());
    const FeatureMaps f = feature_maps(model, px.data(), 1);
    std::ostringstream p;
    p << std::fixed << std::setprecision(3) << prob[k];
    const std::vector<std::string> caption = {
        "patch " + set.id(i),
        std::string("label ") + (set.labels()[k] ? "tumour" : "normal") + ", p(tumour) " + p.str()};
    const std::string stem = feature_map_file_stem(set.id(i));
    nlohmann::json files = nlohmann::json::array();
    for (const auto& [layer, suffix] :
         {std::pair{&f.first_conv, ".conv1.png"}, std::pair{&f.features, ".features.png"}}) {
      if (!*layer) continue;
      write_png(render_feature_grid(px.data(), P, **layer, 0, caption), dir / (stem + suffix));
      files.push_back("feature_maps/" + stem + suffix);
    }
    j["patches"].push_back({{"id", set.id(i)}, {"label", set.labels()[k]}, {"probability", prob[k]}, {"files", files}});
  }
  return j;
}

// Every patch's probability, in batches.
std::vector<float> predict_all(const PatchSet& set, const Model& model, int batch,
                               const std::function<void(int64_t, int64_t)>& progress) {
  const int64_t n = set.size(), P = set.patch_size();
  std::vector<float> prob(static_cast<size_t>(n));
  std::vector<uint8_t> px(static_cast<size_t>(batch * P * P * 3));
  for (int64_t first = 0; first < n; first += batch) {
    const int64_t count = std::min<int64_t>(batch, n - first);
    set.read(first, count, px.data());
    const auto p = model.predict(px.data(), count);
    std::copy(p.begin(), p.end(), prob.begin() + first);
    if (progress) progress(first + count, n);
  }
  return prob;
}

std::string report_text(const PatchEvaluation& e, const PatchEvalOptions& o) {
  const ConfusionMatrix& cm = e.confusion;
  std::ostringstream text;
  text << e.data << "\nmodel " << o.model.string() << " (" << e.model_name << ")\n\n";
  if (e.auc) text << "ROC AUC " << std::fixed << std::setprecision(4) << *e.auc << "\n\n";
  else text << "ROC AUC undefined: the set has only one class\n\n";
  text << "confusion matrix at threshold " << o.threshold << " (rows: true, columns: predicted)\n"
       << "              normal  tumour\n"
       << "  normal  " << std::setw(8) << cm.tn << std::setw(8) << cm.fp << "\n"
       << "  tumour  " << std::setw(8) << cm.fn << std::setw(8) << cm.tp << "\n\n"
       << e.report.to_text();
  return text.str();
}

nlohmann::json metrics_json(const PatchEvaluation& e, const PatchEvalOptions& o) {
  const ConfusionMatrix& cm = e.confusion;
  const ClassificationReport& rep = e.report;
  nlohmann::json j;
  j["data"] = e.data;
  j["model"] = o.model.string();
  j["patches"] = e.patches;
  j["threshold"] = o.threshold;
  j["auc"] = e.auc ? nlohmann::json(*e.auc) : nlohmann::json(nullptr);
  j["confusion"] = {{"tn", cm.tn}, {"fp", cm.fp}, {"fn", cm.fn}, {"tp", cm.tp}};
  auto cls = [](const ClassScores& c) {
    return nlohmann::json{{"precision", c.precision}, {"recall", c.recall}, {"f1", c.f1}, {"support", c.support}};
  };
  j["report"] = {{"normal", cls(rep.normal)}, {"tumour", cls(rep.tumour)}, {"macro_avg", cls(rep.macro)},
                 {"weighted_avg", cls(rep.weighted)}, {"accuracy", rep.accuracy}};
  return j;
}

}  // namespace

PatchEvaluation evaluate_patches(const PatchEvalOptions& o, const std::function<void(const fs::path&)>& prepare_out,
                                 const std::function<void(int64_t, int64_t)>& progress) {
  check_options(o);
  const auto set = open_patch_set(o.data);
  const Model model(o.model, o.model_options);
  if (model.spec().patch_size != set->patch_size())
    throw ConfigError(set->describe() + " has " + std::to_string(set->patch_size()) + " px patches but " +
                      o.model.string() + " expects patch_size " + std::to_string(model.spec().patch_size));
  // Before the long pass: the layers exist and run (a model with neither is refused here).
  const FeatureMaps layers = o.feature_maps > 0 ? feature_maps(model, nullptr, 0) : FeatureMaps{};
  const auto prepare_dir = prepare_out ? prepare_out : make_dir;
  prepare_dir(o.out);

  PatchEvaluation e;
  e.data = set->describe();
  e.model_name = model.spec().name;
  e.patches = set->size();
  const std::vector<float> prob = predict_all(*set, model, o.batch, progress);
  const auto& labels = set->labels();
  const std::vector<double> scores(prob.begin(), prob.end());
  const bool both = std::count(labels.begin(), labels.end(), 1) > 0 && std::count(labels.begin(), labels.end(), 0) > 0;
  if (both) e.auc = roc_auc(scores, labels);
  e.confusion = confusion_matrix(scores, labels, o.threshold);
  e.report = classification_report(e.confusion);

  std::ostringstream pred;
  pred << "id,label,probability\n" << std::setprecision(6);
  for (int64_t i = 0; i < e.patches; ++i)
    pred << set->id(i) << "," << labels[static_cast<size_t>(i)] << "," << prob[static_cast<size_t>(i)] << "\n";
  detail::write_text_file(o.out / "predictions.csv", pred.str());
  if (both) {
    const auto roc = roc_curve(scores, labels);
    std::ostringstream rc;
    rc << "threshold,fpr,tpr\n" << std::setprecision(8);
    for (const auto& p : roc) rc << p.threshold << "," << p.fpr << "," << p.tpr << "\n";
    detail::write_text_file(o.out / "roc.csv", rc.str());
    detail::write_text_file(o.out / "roc.svg", roc_svg(roc, *e.auc));
  }
  e.report_text = report_text(e, o);
  detail::write_text_file(o.out / "report.txt", e.report_text);

  nlohmann::json j = metrics_json(e, o);
  if (o.gallery > 0 && e.patches > 0) {
    write_png(gallery(*set, model, worst_patches(prob, labels, o.gallery), prob, model.has_gradcam()),
              o.out / "top_losses.png");
    e.gallery = true;
    j["gallery"] = model.has_gradcam() ? "top_losses.png (patch | Grad-CAM)"
                                       : "top_losses.png (no Grad-CAM: " + model.gradcam_unavailable_reason() + ")";
  }
  if (o.feature_maps > 0) {
    if (e.patches > 0) {
      j["feature_maps"] = write_feature_maps(*set, model, layers, prob, o.feature_maps, o.out / "feature_maps", prepare_dir);
      e.feature_map_patches = static_cast<int64_t>(j["feature_maps"]["patches"].size());
    }
    if (!layers.first_conv) e.first_conv_unavailable = layers.first_conv_unavailable;
    if (!layers.features) e.features_unavailable = layers.features_unavailable;
  }
  detail::write_text_file(o.out / "metrics.json", detail::json_text(j, 2) + "\n");
  return e;
}

}  // namespace wsi
