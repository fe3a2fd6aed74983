// `wsi-heatmap evaluate DATA --model M.pt -o DIR`: a model on a labelled patch set (PCam HDF5 or
// Kaggle layout): ROC AUC and curve, confusion matrix, classification report, predictions, and a
// gallery of the worst mistakes with their Grad-CAM, and on request feature-map grids of chosen
// patches (evaluate_patches, include/wsi/evaluate.hpp).
#include <iostream>
#include <memory>

#include "commands.hpp"
#include "progress.hpp"
#include "wsi/evaluate.hpp"

namespace wsi::cli {
namespace {
namespace fs = std::filesystem;

struct EvaluateCli {
  std::string data, model, out, device = "cpu", precision = "fp32";
  PatchEvalOptions opt;
  bool quiet = false;
};

void run_evaluate(EvaluateCli& c) {
  PatchEvalOptions& o = c.opt;
  o.data = c.data;
  o.model = c.model;
  o.out = c.out;
  o.model_options.device = parse_device(c.device);
  o.model_options.precision = parse_precision(c.precision);
  ProgressBar bar("evaluate", !c.quiet && ::isatty(STDERR_FILENO));
  const PatchEvaluation e =
      evaluate_patches(o, prepare_output_dir, [&bar](int64_t done, int64_t total) { bar.update(done, total); });
  bar.finish();
  std::cout << e.report_text << "wrote " << (o.out / "report.txt").string() << ", metrics.json, predictions.csv"
            << (e.auc ? ", roc.csv, roc.svg" : "") << (o.gallery > 0 ? ", top_losses.png" : "");
  if (o.feature_maps > 0 && e.patches > 0) std::cout << ", feature_maps/ (" << e.feature_map_patches << " patches)";
  std::cout << "\n";
  if (o.feature_maps > e.patches && e.patches > 0)
    std::cout << "feature maps: the set has " << e.patches << " patches, fewer than --feature-maps " << o.feature_maps
              << "; showing all\n";
  if (!e.first_conv_unavailable.empty())
    std::cout << "feature maps: no first-convolution grids: " << e.first_conv_unavailable << "\n";
  if (!e.features_unavailable.empty())
    std::cout << "feature maps: no features grids: " << e.features_unavailable << "\n";
}

}  // namespace

void setup_evaluate(CLI::App& app) {
  auto c = std::make_shared<EvaluateCli>();
  PatchEvalOptions& o = c->opt;
  CLI::App* sub = app.add_subcommand("evaluate", "Evaluate a model on a labelled patch set (PCam HDF5 or Kaggle layout)");
  sub->add_option("data", c->data, "A PCam *_x.h5 file, a Kaggle labels CSV, or a directory with train_labels.csv")
      ->required();
  sub->add_option("--model,-m", c->model, "TorchScript model with its .json sidecar")->required();
  sub->add_option("--out,-o", c->out, "Output directory for the report")->required();
  sub->add_option("--batch", o.batch, "Patches per forward pass")->capture_default_str();
  sub->add_option("--threshold", o.threshold, "Probability at or above which a patch counts as tumour")
      ->capture_default_str();
  sub->add_option("--gallery", o.gallery, "Worst mistakes to show in top_losses.png (0 = none)")->capture_default_str();
  sub->add_option("--feature-maps", o.feature_maps,
                  "Patches to show the first conv layer's and the Grad-CAM layer's activations of, as PNG grids in "
                  "DIR/feature_maps/ (0 = none; both classes, from the most confident to the worst)")
      ->capture_default_str();
  sub->add_option("--device", c->device, "cpu or cuda")->capture_default_str();
  sub->add_option("--precision", c->precision, "fp32, bf16 or fp16 (CUDA)")->capture_default_str();
  add_threads_option(*sub, o.model_options.threads, "Inference threads (0 = one per core)");
  sub->add_flag("--quiet,-q", c->quiet, "No progress bar");
  sub->callback([c] { run_evaluate(*c); });
}

}  // namespace wsi::cli
