// wsi/train.hpp — training the built-in networks on labelled patch sets, and fine-tuning any
// model of the contract (model.hpp) (library wsi::train; this header includes no LibTorch).
//
// Recipe (what the seed notebooks did, made reproducible): binary cross-entropy on one logit,
// optionally class-weighted (weight of class c = N / (2 N_c), Keras' "balanced"), Adam with L2
// weight decay, a learning-rate schedule (cosine to 1 % of the start,
// or halve on a validation-AUC plateau), augmentation (augment.hpp) on every training patch,
// evaluation on the validation set after each epoch, early stopping when validation AUC has
// not improved for `patience` epochs, and the best epoch's weights kept as the model.
//
// Fine-tuning (`init` set): the network is the init model (TorchScript, or a built-in's native
// archive), with its sidecar's preprocessing; its architecture, input size, resize and mpp are
// kept (the fields arch, input_size, resize and mpp here are not used). The loss follows the
// sidecar's "output": logit -> BCE with logits; softmax -> cross-entropy with positive_index the
// tumour class and the other classes together the normal one (for 2 classes the usual
// cross-entropy); probability -> BCE on the probability clamped to [1e-7, 1 - 1e-7]. With
// freeze "features", epochs 1..freeze_epochs (stage 1) train the head only (the parameters
// classify() uses that features() does not), then a fresh Adam at finetune_lr trains everything
// (stage 2); the schedule restarts at each stage's rate, and the saved model is stage 2's best
// epoch (the first unfrozen epoch always replaces stage 1's checkpoint, which only warmed the
// head up), early stopping applying in stage 2 only. bn "frozen" keeps every batch-norm layer in
// eval mode while training (running statistics stay the init model's; their scale and shift
// still train when unfrozen). On the device (cuda), the network, batches and loss live there;
// patches are decoded, augmented and preprocessed on the CPU.
//
// Outputs, all written under temporary names and renamed when complete:
//   OUT.pt + OUT.json   the best checkpoint so far (built-in: native format; TorchScript in:
//                       TorchScript out) + sidecar with the recipe and its validation metrics
//                       under "training"; replaced on each improvement, so an interrupted run
//                       leaves the best model of the epochs it finished;
//   OUT.log.csv         one row per epoch (rewritten after each epoch);
//   OUT.curve.svg       the learning curve (loss and AUC per epoch).
//
// Determinism: for a given seed, data, options and thread count, two runs on the CPU produce
// identical weights and logs (shuffling and augmentation use SplitMix64 seeded per epoch and per
// patch; LibTorch's CPU kernels are deterministic at a fixed thread count). CUDA kernels may not be.
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
  Device device = Device::cpu;            // where the network and batches live

  // Fine-tuning (see above). Empty init: a new built-in network (arch).
  std::filesystem::path init;             // NAME.pt of the contract (NAME.json beside it)
  std::string freeze = "none";            // none | features
  int freeze_epochs = -1;                 // stage-1 epochs, 1..epochs-1; -1: 2 with freeze features
  double finetune_lr = -1;                // stage-2 rate in (0, 1]; -1: lr / 10
  std::string bn;                         // frozen | train; empty: frozen with init, else train

  void validate() const;                  // throws UsageError naming the option
  // The values the defaults above stand for.
  int stage1_epochs() const;              // 0 without freeze
  double stage2_lr() const;
  bool bn_frozen() const;
};

struct EpochRecord {
  int epoch = 0;  // 1-based
  double lr = 0;
  double train_loss = 0, train_auc = 0;
  double val_loss = 0, val_auc = 0, val_accuracy = 0;
  double seconds = 0;
  bool best = false;  // this epoch's weights are the saved checkpoint
  bool head_only = false;  // stage 1 of freeze "features": only the head trained
};

struct TrainProgress {
  int epoch = 0, epochs = 0;
  bool head_only = false;        // stage 1 of freeze "features"
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

// What fine-tuning from options.init trains, checked as train_model() checks it (the CLI says
// it before training). Throws what Model's constructor throws for the file and its sidecar,
// UsageError for options that do not fit the model (--dropout on TorchScript, --freeze on a
// model without a features/classify split or whose classify() has no parameters of its own),
// ConfigError when `data` (optional) has patches of another size than the sidecar's patch_size.
struct InitSummary {
  std::string kind;                 // "TorchScript" | "built-in cancernet" | "built-in resnet"
  ModelSpec spec;                   // its sidecar
  int64_t parameters = 0;           // trainable values (elements) in all
  int64_t head_parameters = 0;      // of the head (0 without a features/classify split)
  std::vector<std::string> head;    // the head's submodules / parameters (top-level names)
};
InitSummary inspect_init(const TrainOptions& options, const PatchSet* data = nullptr);

// Throws UsageError when `out` (".pt" appended when missing, as train_model does) names the
// init model: fine-tuning would overwrite the model it starts from.
void check_out_is_not_init(const TrainOptions& options, const std::filesystem::path& out);

// Throws ConfigError when `device` is cuda and this build's LibTorch or the machine has none.
void check_train_device(Device device);

// The CSV log and the learning-curve SVG (pure; used by train_model and tests).
std::string training_log_csv(const std::vector<EpochRecord>& epochs);
std::string learning_curve_svg(const std::vector<EpochRecord>& epochs, const std::string& title);

// ---- `wsi-heatmap train` in one call, and what it says (src/train/train_job.cpp) ----

// Opens `data` and `val` (empty: no validation set) with open_patch_set (dataset.hpp), refuses a
// validation set of another patch size (UsageError, as train_model says it), inspects the init
// model when fine-tuning (inspect_init), hands training_plan_text to `say` before anything is
// trained, then runs train_model. Throws what those throw.
TrainResult train_on_files(const std::filesystem::path& data, const std::filesystem::path& val,
                           const TrainOptions& options, const std::filesystem::path& out,
                           const std::function<void(const std::string& text)>& say = {},
                           const std::function<void(const TrainProgress&)>& progress = {},
                           const std::function<void(const EpochRecord&)>& on_epoch = {});

// The texts of `wsi-heatmap train` (pure; lines end in '\n' except progress_text's):
// what is trained on what and what it is validated on; `init` is inspect_init's summary when
// fine-tuning (then: the init model, its parameters, what each stage trains at which rate, and
// whether batch norm is frozen).
std::string training_plan_text(const TrainOptions& options, const PatchSet& train, const PatchSet* val,
                               const InitSummary* init);
// One epoch: "epoch 3: lr 0.000854  train loss 0.4123 AUC 0.9012  val loss ... 12.3 s  (best, saved)".
std::string epoch_text(const EpochRecord& epoch);
// The progress bar's tail: "loss 0.4123  best val AUC 0.9000  validating...".
std::string progress_text(const TrainProgress& progress);
// Why training stopped, the best epoch and its validation AUC, and the files written.
std::string train_summary_text(const TrainResult& result);

}  // namespace wsi
