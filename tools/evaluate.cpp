// `wsi-heatmap evaluate DATA --model M.pt -o DIR`: a model on a labelled patch set (PCam HDF5 or
// Kaggle layout): ROC AUC and curve, confusion matrix, classification report, predictions, and a
// gallery of the worst mistakes with their Grad-CAM, and on request feature-map grids of chosen patches.
#include <algorithm>
#include <cmath>
#include <iomanip>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>

#include "core/json_text.hpp"
#include "commands.hpp"
#include "core/pending_file.hpp"
#include "core/svg_plot.hpp"
#include "progress.hpp"
#include "wsi/dataset.hpp"
#include "wsi/error.hpp"
#include "wsi/feature_maps.hpp"
#include "wsi/gradcam.hpp"
#include "wsi/image_io.hpp"
#include "wsi/metrics.hpp"
#include "wsi/model.hpp"

namespace wsi::cli {
namespace {
namespace fs = std::filesystem;

struct EvaluateOptions {
  std::string data, model, out, device = "cpu", precision = "fp32";
  int batch = 64, threads = 0, gallery = 16, feature_maps = 0;
  double threshold = 0.5;
  bool quiet = false;
};

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

constexpr int kMaxFeatureMaps = 256;  // two PNGs each; more is a typo rather than a wish

nlohmann::json layer_json(const std::optional<FeatureLayer>& l, const std::string& unavailable) {
  if (!l) return {{"skipped", unavailable}};
  return {{"layer", l->name}, {"kind", l->kind}, {"channels", l->channels}, {"height", l->height}, {"width", l->width}};
}

// Feature-map grids (feature_maps.hpp) of `n` chosen patches: DIR/<id>.conv1.png (the first
// convolution layer) and DIR/<id>.features.png (the Grad-CAM layer), those the model has.
nlohmann::json write_feature_maps(const PatchSet& set, const Model& model, const FeatureMaps& layers,
                                  const std::vector<float>& prob, int n, const fs::path& dir) {
  prepare_output_dir(dir);
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

void run_evaluate(const EvaluateOptions& opt) {
  if (opt.batch < 1) throw UsageError("--batch must be >= 1");
  if (!(opt.threshold >= 0 && opt.threshold <= 1)) throw UsageError("--threshold must be in 0..1");
  if (opt.gallery < 0) throw UsageError("--gallery must be 0 (none) or more, not " + std::to_string(opt.gallery));
  if (opt.feature_maps < 0 || opt.feature_maps > kMaxFeatureMaps)
    throw UsageError("--feature-maps must be 0 (none) to " + std::to_string(kMaxFeatureMaps) + " patches, not " +
                     std::to_string(opt.feature_maps));
  const auto set = open_patch_set(opt.data);
  ModelOptions mo;
  mo.device = parse_device(opt.device);
  mo.precision = parse_precision(opt.precision);
  mo.threads = opt.threads;
  const Model model(opt.model, mo);
  if (model.spec().patch_size != set->patch_size())
    throw ConfigError(set->describe() + " has " + std::to_string(set->patch_size()) + " px patches but " +
                      opt.model + " expects patch_size " + std::to_string(model.spec().patch_size));
  // Before the long pass: the layers exist and run (a model with neither is refused here).
  const FeatureMaps layers = opt.feature_maps > 0 ? feature_maps(model, nullptr, 0) : FeatureMaps{};
  const fs::path out(opt.out);
  prepare_output_dir(out);

  const int64_t n = set->size(), P = set->patch_size();
  std::vector<float> prob(static_cast<size_t>(n));
  std::vector<uint8_t> px(static_cast<size_t>(opt.batch * P * P * 3));
  ProgressBar bar("evaluate", !opt.quiet && ::isatty(STDERR_FILENO));
  for (int64_t first = 0; first < n; first += opt.batch) {
    const int64_t count = std::min<int64_t>(opt.batch, n - first);
    set->read(first, count, px.data());
    const auto p = model.predict(px.data(), count);
    std::copy(p.begin(), p.end(), prob.begin() + first);
    bar.update(first + count, n);
  }
  bar.finish();

  const auto& labels = set->labels();
  const std::vector<double> scores(prob.begin(), prob.end());
  const bool both = std::count(labels.begin(), labels.end(), 1) > 0 && std::count(labels.begin(), labels.end(), 0) > 0;
  const double auc = both ? roc_auc(scores, labels) : std::nan("");
  const ConfusionMatrix cm = confusion_matrix(scores, labels, opt.threshold);
  const ClassificationReport rep = classification_report(cm);

  std::ostringstream pred;
  pred << "id,label,probability\n" << std::setprecision(6);
  for (int64_t i = 0; i < n; ++i) pred << set->id(i) << "," << labels[static_cast<size_t>(i)] << "," << prob[static_cast<size_t>(i)] << "\n";
  detail::write_text_file(out / "predictions.csv", pred.str());
  if (both) {
    const auto roc = roc_curve(scores, labels);
    std::ostringstream rc;
    rc << "threshold,fpr,tpr\n" << std::setprecision(8);
    for (const auto& p : roc) rc << p.threshold << "," << p.fpr << "," << p.tpr << "\n";
    detail::write_text_file(out / "roc.csv", rc.str());
    detail::write_text_file(out / "roc.svg", roc_svg(roc, auc));
  }
  std::ostringstream text;
  text << set->describe() << "\nmodel " << opt.model << " (" << model.spec().name << ")\n\n";
  if (both) text << "ROC AUC " << std::fixed << std::setprecision(4) << auc << "\n\n";
  else text << "ROC AUC undefined: the set has only one class\n\n";
  text << "confusion matrix at threshold " << opt.threshold << " (rows: true, columns: predicted)\n"
       << "              normal  tumour\n"
       << "  normal  " << std::setw(8) << cm.tn << std::setw(8) << cm.fp << "\n"
       << "  tumour  " << std::setw(8) << cm.fn << std::setw(8) << cm.tp << "\n\n"
       << rep.to_text();
  detail::write_text_file(out / "report.txt", text.str());

  nlohmann::json j;
  j["data"] = set->describe();
  j["model"] = opt.model;
  j["patches"] = n;
  j["threshold"] = opt.threshold;
  j["auc"] = both ? nlohmann::json(auc) : nlohmann::json(nullptr);
  j["confusion"] = {{"tn", cm.tn}, {"fp", cm.fp}, {"fn", cm.fn}, {"tp", cm.tp}};
  auto cls = [](const ClassScores& c) {
    return nlohmann::json{{"precision", c.precision}, {"recall", c.recall}, {"f1", c.f1}, {"support", c.support}};
  };
  j["report"] = {{"normal", cls(rep.normal)}, {"tumour", cls(rep.tumour)}, {"macro_avg", cls(rep.macro)},
                 {"weighted_avg", cls(rep.weighted)}, {"accuracy", rep.accuracy}};

  if (opt.gallery > 0 && n > 0) {
    std::vector<int64_t> order(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), int64_t{0});
    auto loss = [&](int64_t i) {
      const double p = std::clamp(static_cast<double>(prob[static_cast<size_t>(i)]), 1e-7, 1 - 1e-7);
      return labels[static_cast<size_t>(i)] ? -std::log(p) : -std::log(1 - p);
    };
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return loss(a) > loss(b); });
    order.resize(std::min<size_t>(order.size(), static_cast<size_t>(opt.gallery)));
    write_png(gallery(*set, model, order, prob, model.has_gradcam()), out / "top_losses.png");
    j["gallery"] = model.has_gradcam() ? "top_losses.png (patch | Grad-CAM)"
                                       : "top_losses.png (no Grad-CAM: " + model.gradcam_unavailable_reason() + ")";
  }
  std::string maps_note;
  if (opt.feature_maps > 0 && n > 0) {
    j["feature_maps"] = write_feature_maps(*set, model, layers, prob, opt.feature_maps, out / "feature_maps");
    maps_note = ", feature_maps/ (" + std::to_string(j["feature_maps"]["patches"].size()) + " patches)";
  }
  detail::write_text_file(out / "metrics.json", detail::json_text(j, 2) + "\n");
  std::cout << text.str() << "wrote " << (out / "report.txt").string() << ", metrics.json, predictions.csv"
            << (both ? ", roc.csv, roc.svg" : "") << (opt.gallery > 0 ? ", top_losses.png" : "") << maps_note << "\n";
  if (opt.feature_maps > n && n > 0)
    std::cout << "feature maps: the set has " << n << " patches, fewer than --feature-maps " << opt.feature_maps
              << "; showing all\n";
  if (opt.feature_maps > 0 && !layers.first_conv)
    std::cout << "feature maps: no first-convolution grids: " << layers.first_conv_unavailable << "\n";
  if (opt.feature_maps > 0 && !layers.features)
    std::cout << "feature maps: no features grids: " << layers.features_unavailable << "\n";
}

}  // namespace

void setup_evaluate(CLI::App& app) {
  auto opt = std::make_shared<EvaluateOptions>();
  CLI::App* sub = app.add_subcommand("evaluate", "Evaluate a model on a labelled patch set (PCam HDF5 or Kaggle layout)");
  sub->add_option("data", opt->data, "A PCam *_x.h5 file, a Kaggle labels CSV, or a directory with train_labels.csv")
      ->required();
  sub->add_option("--model,-m", opt->model, "TorchScript model with its .json sidecar")->required();
  sub->add_option("--out,-o", opt->out, "Output directory for the report")->required();
  sub->add_option("--batch", opt->batch, "Patches per forward pass")->capture_default_str();
  sub->add_option("--threshold", opt->threshold, "Probability at or above which a patch counts as tumour")
      ->capture_default_str();
  sub->add_option("--gallery", opt->gallery, "Worst mistakes to show in top_losses.png (0 = none)")
      ->capture_default_str();
  sub->add_option("--feature-maps", opt->feature_maps,
                  "Patches to show the first conv layer's and the Grad-CAM layer's activations of, as PNG grids in "
                  "DIR/feature_maps/ (0 = none; both classes, from the most confident to the worst)")
      ->capture_default_str();
  sub->add_option("--device", opt->device, "cpu or cuda")->capture_default_str();
  sub->add_option("--precision", opt->precision, "fp32, bf16 or fp16 (CUDA)")->capture_default_str();
  add_threads_option(*sub, opt->threads, "Inference threads (0 = one per core)");
  sub->add_flag("--quiet,-q", opt->quiet, "No progress bar");
  sub->callback([opt] { run_evaluate(*opt); });
}

}  // namespace wsi::cli
