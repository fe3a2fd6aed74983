// wsi/train.hpp — training the built-in networks on labelled patch sets (library wsi::train;
// this header includes no LibTorch).
//
// Recipe (what the seed notebooks did, made reproducible): binary cross-entropy on one logit,
// optionally class-weighted (weight of class c = N / (2 N_c), Keras' "balanced"), Adam with L2
// weight decay, a learning-rate schedule (cosine to 1 % of the start,
// or halve on a validation-AUC plateau), augmentation (augment.hpp) on every training patch,
// evaluation on the validation set after each epoch, early stopping when validation AUC has
// not improved for `patience` epochs, and the best epoch's weights kept as the model.
//
// Outputs, all written under temporary names and renamed when complete:
//   OUT.pt + OUT.json   the best checkpoint so far (native format + sidecar with the recipe and
//                       its validation metrics under "training"); replaced on each improvement,
//                       so an interrupted run leaves the best model of the epochs it finished;
//   OUT.log.csv         one row per epoch (rewritten after each epoch);
//   OUT.curve.svg       the learning curve (loss and AUC per epoch).
//
// Determinism: for a given seed, data, options and thread count, two runs produce identical
// weights and logs (shuffling and augmentation use SplitMix64 seeded per epoch and per patch;
// LibTorch's CPU kernels are deterministic at a fixed thread count).
//
// Thread-safety: train_model() uses LibTorch's global thread setting; run one at a time.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "wsi/augment.hpp"
#include "wsi/model.hpp"

namespace wsi {

class PatchSet;

struct TrainOptions {
  ModelSpec::BuiltinNet arch{"cancernet", 32, 1};
  std::string name = "model";
  double dropout = -1;                    // head dropout in [0, 1); negative: the arch's default
                                          // (cancernet 0.5, resnet 0); see model/nets.hpp
  int input_size = 48;                    // network input side (patches are resized to it)
  ResizeMode resize = ResizeMode::area;   // used when input_size != patch size
  double mpp = 0.972;                     // µm per patch pixel of the training data (sidecar)
  int epochs = 20;
  int batch = 64;
  double lr = 1e-3;
  double weight_decay = 1e-4;
  std::string schedule = "cosine";        // cosine | plateau | none
  int patience = 5;                       // epochs without validation-AUC gain before stopping
  bool class_weights = true;
  AugmentParams augment;                  // AugmentParams::none() to disable
  double val_fraction = 0.1;              // held out of the training set when no validation set
  int64_t max_patches_per_epoch = 0;      // 0 = the whole training set each epoch
  uint64_t seed = 1;
  int threads = 0;                        // 0 = one per core
  int64_t cache_bytes = int64_t{4} << 30; // sets up to this size are decoded once, kept in RAM

  void validate() const;                  // throws UsageError naming the option
};

struct EpochRecord {
  int epoch = 0;  // 1-based
  double lr = 0;
  double train_loss = 0, train_auc = 0;
  double val_loss = 0, val_auc = 0, val_accuracy = 0;
  double seconds = 0;
  bool best = false;  // this epoch's weights are the saved checkpoint
};

struct TrainProgress {
  int epoch = 0, epochs = 0;
  int64_t done = 0, total = 0;   // training patches this epoch
  double loss = 0;               // running mean training loss this epoch
  double best_val_auc = 0;       // so far (0 before the first evaluation)
  bool validating = false;
};

struct TrainResult {
  std::vector<EpochRecord> epochs;
  int best_epoch = 0;
  double best_val_auc = 0;
  std::string stop_reason;   // "completed N epochs" or "early stop: ..."
  std::filesystem::path model, log_csv, curve_svg;
  int64_t train_patches = 0, val_patches = 0;
  int64_t positives = 0, negatives = 0;  // in the training part
};

// Trains on `train` (validating on `val`, or on a seeded random val_fraction of `train` when
// `val` is null) and writes OUT = `out` (".pt" is appended when missing). Throws UsageError /
// ConfigError for unusable options or data (e.g. one class only), WriteError for outputs.
TrainResult train_model(const PatchSet& train, const PatchSet* val, const TrainOptions& options,
                        const std::filesystem::path& out,
                        const std::function<void(const TrainProgress&)>& progress = {},
                        const std::function<void(const EpochRecord&)>& on_epoch = {});

// The CSV log and the learning-curve SVG (pure; used by train_model and tests).
std::string training_log_csv(const std::vector<EpochRecord>& epochs);
std::string learning_curve_svg(const std::vector<EpochRecord>& epochs, const std::string& title);

}  // namespace wsi
