// `wsi-heatmap predict INPUT... -o DIR --model M.pt`: a model on patch images (TIFF, PNG, JPEG of
// any size), folders of them (Kaggle's test/), and labelled patch sets (PCam HDF5, Kaggle layout).
#include "wsi/predict.hpp"

#include <cmath>
#include <iomanip>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>

#include "commands.hpp"
#include "progress.hpp"
#include "wsi/error.hpp"
#include "wsi/model.hpp"

namespace wsi::cli {
namespace {
namespace fs = std::filesystem;

struct PredictCli {
  std::vector<std::string> inputs;
  std::string out, model, device = "cpu", precision = "fp32", resize, submission, gradcam;
  std::optional<double> mpp;
  int batch = 64, threads = 0;
  double threshold = 0.5, min_purple = 0;
  bool submission_labels = false, quiet = false;
};

std::string number(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

void run_predict_cli(const PredictCli& c) {
  PredictOptions o;
  if (c.batch < 1) throw UsageError("--batch must be >= 1");
  if (!(c.threshold >= 0 && c.threshold <= 1))
    throw UsageError("--threshold must be in 0..1, not " + number(c.threshold));
  if (!(c.min_purple >= 0 && c.min_purple <= 1))
    throw UsageError(
        "--min-purple must be in 0..1 (the fraction of purple pixels a patch needs; 0 = keep every "
        "patch), not " +
        number(c.min_purple));
  if (c.mpp && !(*c.mpp > 0 && std::isfinite(*c.mpp)))
    throw UsageError(
        "--mpp must be a positive number of micrometres per pixel of the images (e.g. 0.25 for a 40x "
        "scan), not " +
        number(*c.mpp));
  if (!c.resize.empty()) {
    if (c.resize == "area")
      o.patching.resize = ResizeMode::area;
    else if (c.resize == "bilinear")
      o.patching.resize = ResizeMode::bilinear;
    else if (c.resize == "nearest")
      o.patching.resize = ResizeMode::nearest;
    else
      throw UsageError("--resize must be area, bilinear or nearest, not '" + c.resize + "'");
  }
  if (c.mpp && o.patching.resize)
    throw UsageError(
        "--mpp and --resize exclude each other (--mpp cuts images into tiles at the model's "
        "resolution, --resize shrinks each whole); give one");
  if (!c.submission.empty()) {
    const fs::path s(c.submission), dir = s.parent_path();
    if (fs::is_directory(s))
      throw UsageError("--kaggle-submission " + c.submission + ": is a directory; give a file name, e.g. " +
                       (s / "submission.csv").string());
    // The output folder itself is created below, so a submission inside it is fine (the README's example).
    const bool in_out = !dir.empty() && fs::weakly_canonical(dir) == fs::weakly_canonical(fs::path(c.out));
    if (!dir.empty() && !in_out && !fs::is_directory(dir))
      throw UsageError("--kaggle-submission " + c.submission + ": the directory " + dir.string() +
                       " does not exist; create it first");
  }
  o.patching.mpp = c.mpp;
  o.batch = c.batch;
  o.threshold = c.threshold;
  o.min_purple = c.min_purple;
  o.kaggle_submission = c.submission;
  o.submission_labels = c.submission_labels;
  for (const auto& i : c.inputs) o.inputs.emplace_back(i);
  ModelOptions mo;
  mo.device = parse_device(c.device);
  mo.precision = parse_precision(c.precision);
  mo.threads = c.threads;
  if (fs::is_directory(c.model)) throw UsageError(c.model + ": is a directory, not a model file; pass NAME.pt");
  const fs::path out(c.out);
  prepare_output_dir(out);
  const Model model(c.model, mo);
  if (!c.gradcam.empty()) {
    if (!model.has_gradcam())
      throw UsageError("--gradcam: " + c.model + " has no Grad-CAM split: " + model.gradcam_unavailable_reason());
    prepare_output_dir(c.gradcam);
    o.gradcam_dir = c.gradcam;
  }
  ProgressBar bar("predict", !c.quiet && ::isatty(STDERR_FILENO));
  o.progress = [&bar](int64_t done, int64_t total) { bar.update(done, total); };
  const PredictSummary s = run_predict(model, o, out);
  bar.finish();

  std::cout << "predicted " << s.predicted << " patches of " << s.inputs << " inputs: " << s.positives
            << " at or above " << c.threshold;
  if (s.auc) std::cout << ", ROC AUC " << std::fixed << std::setprecision(4) << *s.auc << std::defaultfloat;
  std::cout << "\n";
  if (s.skipped_inputs)
    std::cout << "skipped " << s.skipped_inputs << " (see " << (out / "skipped.csv").string() << ")\n";
  if (s.below_min_purple) std::cout << s.below_min_purple << " patches below --min-purple " << c.min_purple << "\n";
  std::cout << "wrote " << (out / "predictions.csv").string() << ", skipped.csv, summary.json";
  if (!c.submission.empty()) std::cout << ", " << c.submission;
  if (!c.gradcam.empty()) std::cout << "; Grad-CAM .npy and .png in " << c.gradcam;
  std::cout << "\n";
}

}  // namespace

void setup_predict(CLI::App& app) {
  auto c = std::make_shared<PredictCli>();
  CLI::App* sub = app.add_subcommand(
      "predict", "Predict patch images (TIFF, PNG, JPEG of any size), folders of them and patch sets");
  sub->add_option("inputs", c->inputs,
                  "Image files, folders of images (e.g. Kaggle's test/), PCam *_x.h5, Kaggle labels CSVs or folders "
                  "with train_labels.csv")
      ->required();
  sub->add_option("--out,-o", c->out, "Output directory (created if missing)")->required();
  sub->add_option("--model,-m", c->model, "Model NAME.pt with its NAME.json sidecar")->required();
  sub->add_option("--mpp", c->mpp,
                  "The images' micrometres per pixel: resample them to the model's and cut patch-size tiles");
  sub->add_option("--resize", c->resize, "area, bilinear or nearest: resize each larger image whole to the patch");
  sub->add_option("--threshold", c->threshold, "Probability at or above which a patch is labelled 1")
      ->capture_default_str();
  sub->add_option("--min-purple", c->min_purple,
                  "Skip patches with a smaller fraction of H&E-coloured pixels (0..1; 0 = keep every patch)")
      ->capture_default_str();
  sub->add_option("--kaggle-submission", c->submission,
                  "Also write Kaggle's id,label CSV (label = probability; see --submission-labels)");
  sub->add_flag("--submission-labels", c->submission_labels,
                "Write 0/1 at --threshold in the submission instead of probabilities");
  sub->add_option("--gradcam", c->gradcam,
                  "Directory for each patch's Grad-CAM: ID.npy (float32, patch side², 0..1) and ID.png");
  sub->add_option("--batch", c->batch, "Patches per forward pass")->capture_default_str();
  sub->add_option("--device", c->device, "cpu or cuda")->capture_default_str();
  sub->add_option("--precision", c->precision, "fp32, bf16 or fp16 (CUDA)")->capture_default_str();
  add_threads_option(*sub, c->threads, "Inference threads (0 = one per core)");
  sub->add_flag("--quiet,-q", c->quiet, "No progress bar");
  sub->callback([c] { run_predict_cli(*c); });
}

}  // namespace wsi::cli
