// wsi/evaluate.hpp — a model on a labelled patch set (`wsi-heatmap evaluate`; library
// wsi::evaluate): ROC AUC and curve, confusion matrix and classification report at a threshold,
// every patch's prediction, a gallery of the worst mistakes with their Grad-CAM, and on request
// feature-map grids of chosen patches.
//
// Inputs: a patch set as open_patch_set() opens it (dataset.hpp: PCam *_x.h5 with its labels,
// a Kaggle labels CSV, a folder with train_labels.csv) and a model of the contract (model.hpp)
// whose patch_size is the set's. Probabilities and the threshold are the model's tumour
// probability in 0..1; a patch is predicted tumour at probability >= threshold (metrics.hpp).
//
// Outputs in the output directory, each written under a temporary name and renamed when complete:
//   predictions.csv   id,label,probability per patch in set order (6 significant digits);
//   report.txt        set, model, AUC, confusion matrix and classification report (the text
//                     PatchEvaluation::report_text holds);
//   metrics.json      the same figures, the gallery's description and the feature maps written;
//   roc.csv, roc.svg  the ROC curve (only when the set has both classes: otherwise no AUC);
//   top_losses.png    the `gallery` patches with the highest cross-entropy, 4 per row, a red bar
//                     of each one's probability above it and its Grad-CAM beside it when the
//                     model has a Grad-CAM split (gallery > 0 and a non-empty set);
//   feature_maps/     ID.conv1.png and ID.features.png per chosen patch (feature_maps.hpp's
//                     choose_feature_map_patches, render_feature_grid) when feature_maps > 0.
//
// Thread-safety: evaluate_patches uses its Model as Model::predict allows (one caller at a time)
// and writes its output directory; run concurrent evaluations into different directories.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include "wsi/metrics.hpp"
#include "wsi/model.hpp"

namespace wsi {

// Feature-map grids are two PNGs per patch; more than this many patches is a typo rather than a wish.
inline constexpr int kMaxFeatureMaps = 256;

struct PatchEvalOptions {
  std::filesystem::path data;       // the patch set (open_patch_set)
  std::filesystem::path model;      // NAME.pt with NAME.json beside it
  ModelOptions model_options;       // device, precision, threads
  std::filesystem::path out;        // output directory
  int batch = 64;                   // patches per forward pass, >= 1
  double threshold = 0.5;           // 0..1
  int gallery = 16;                 // patches in top_losses.png, 0 = none
  int feature_maps = 0;             // patches with feature-map grids, 0 (none) to kMaxFeatureMaps
};

struct PatchEvaluation {
  std::string data;                 // the set, described (PatchSet::describe)
  std::string model_name;           // the sidecar's name
  int64_t patches = 0;
  std::optional<double> auc;        // absent when the set has only one class
  ConfusionMatrix confusion;        // at the threshold
  ClassificationReport report;
  std::string report_text;          // report.txt
  bool gallery = false;             // top_losses.png written
  int64_t feature_map_patches = 0;  // patches with feature-map grids written
  // Why a layer's grids are missing ("" when written or not asked for): the model has no such layer.
  std::string first_conv_unavailable, features_unavailable;
};

// Checks the options (UsageError naming the flag: --batch, --threshold, --gallery,
// --feature-maps), opens the set and the model (their errors; ConfigError when the patch sizes
// differ), checks that the asked-for feature-map layers run, calls `prepare_out` with the output
// directory (the CLI checks and creates it there; without it the directory is created), predicts
// every patch in batches (`progress`(done, total) after each), and writes the outputs above.
PatchEvaluation evaluate_patches(const PatchEvalOptions& options,
                                 const std::function<void(const std::filesystem::path&)>& prepare_out = {},
                                 const std::function<void(int64_t done, int64_t total)>& progress = {});

}  // namespace wsi
