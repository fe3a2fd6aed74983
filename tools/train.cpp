// `wsi-heatmap train DATA [--val VAL] -o OUT`: trains a built-in network (cancernet or resnet), or
// fine-tunes a model of the contract (--init), on a labelled patch set (PCam HDF5 or Kaggle
// layout) and writes OUT.pt + OUT.json (the model contract), OUT.log.csv and OUT.curve.svg.
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "commands.hpp"
#include "progress.hpp"
#include "wsi/error.hpp"
#include "wsi/train.hpp"

namespace wsi::cli {
namespace {

struct TrainCli {
  std::string data, val, out, resize = "area", init, device = "cpu";
  TrainOptions opt;
  bool no_augment = false, no_class_weights = false, quiet = false;
  std::vector<std::string> given;  // the options on the command line that --init refuses
};

// -o OUT names the model file (OUT.pt, with OUT.json and the logs beside it).
void check_model_path(const std::string& out) {
  namespace fs = std::filesystem;
  const fs::path p(out);
  if (out.empty() || !p.has_filename() || p.filename() == "." || p.filename() == "..")
    throw UsageError("--out '" + out + "': give the model's file name, e.g. DIR/model.pt");
  if (fs::is_directory(p))
    throw UsageError("--out " + out + ": is a directory; give the model's file name, e.g. " + (p / "model.pt").string());
  const fs::path dir = p.parent_path().empty() ? fs::path(".") : p.parent_path();
  if (!fs::is_directory(dir))
    throw UsageError("--out " + out + ": the directory " + dir.string() + " does not exist; create it first");
  if (::access(dir.c_str(), W_OK) != 0)
    throw UsageError(dir.string() + ": the output directory is not writable; fix its permissions or choose another");
}

void run_train(TrainCli& c) {
  TrainOptions o = c.opt;
  o.init = c.init;
  if (!c.init.empty())
    for (const std::string& flag : c.given)
      throw UsageError(flag + " does not apply to --init: the network, its input size, resize and mpp come from " +
                       c.init + " and its sidecar");
  o.device = parse_device(c.device);
  if (c.no_augment) o.augment = AugmentParams::none();
  o.class_weights = !c.no_class_weights;
  if (c.resize == "nearest") o.resize = ResizeMode::nearest;
  else if (c.resize == "bilinear") o.resize = ResizeMode::bilinear;
  else if (c.resize == "area") o.resize = ResizeMode::area;
  else throw UsageError("--resize must be nearest, bilinear or area, not '" + c.resize + "'");
  if (o.name == "model") o.name = std::filesystem::path(c.out).stem().string();
  // The options and the output path before anything is read or said: "training ..." on stdout
  // must not precede a refusal of the command line.
  o.validate();
  check_model_path(c.out);
  check_out_is_not_init(o, c.out);
  check_train_device(o.device);

  ProgressBar bar("epoch 1", !c.quiet && ::isatty(STDERR_FILENO) != 0);
  const auto say = [](const std::string& text) { std::cout << text << std::flush; };
  const auto progress = [&](const TrainProgress& p) {
    bar.set_label("epoch " + std::to_string(p.epoch) + "/" + std::to_string(p.epochs) + (p.head_only ? " (head)" : ""));
    bar.update(p.done, p.total, progress_text(p));
  };
  const auto on_epoch = [&](const EpochRecord& e) {
    bar.finish();
    say(epoch_text(e));
  };
  const TrainResult r = train_on_files(c.data, c.val, o, c.out, say, progress, on_epoch);
  bar.finish();
  std::cout << train_summary_text(r);
}

}  // namespace

void setup_train(CLI::App& app) {
  auto c = std::make_shared<TrainCli>();
  CLI::App* sub = app.add_subcommand(
      "train", "Train a built-in patch classifier (cancernet or resnet), or fine-tune a model (--init), on labelled patches");
  sub->add_option("data", c->data, "Training set: a PCam *_x.h5 file, a Kaggle labels CSV, or a directory with train_labels.csv")
      ->required();
  sub->add_option("--val", c->val, "Validation set (same layouts); default: a random --val-fraction of the training set");
  sub->add_option("--out,-o", c->out, "Output model path OUT(.pt); OUT.json, OUT.log.csv and OUT.curve.svg are written beside it")
      ->required();
  sub->add_option("--name", c->opt.name, "Model name in the sidecar (default: OUT's file name)");
  sub->add_option("--arch", c->opt.arch.name, "cancernet (small separable CNN) or resnet (ResNet for 96 px patches)")
      ->capture_default_str();
  sub->add_option("--width", c->opt.arch.width, "Channels of the first stage (later stages double it)")->capture_default_str();
  sub->add_option("--blocks", c->opt.arch.blocks, "Residual blocks per stage (resnet)")->capture_default_str();
  sub->add_option("--dropout", c->opt.dropout,
                  "Dropout probability of the head while training, 0..1 (default: cancernet 0.5 with half of it after each "
                  "stage, resnet 0)");
  sub->add_option("--input-size", c->opt.input_size, "Network input side; patches are resized to it")->capture_default_str();
  sub->add_option("--resize", c->resize, "Resize policy when --input-size differs from the patch size: nearest, bilinear, area")
      ->capture_default_str();
  sub->add_option("--mpp", c->opt.mpp, "Micrometres per pixel of the training patches (written to the sidecar; PCam: 0.972)")
      ->capture_default_str();
  sub->add_option("--epochs", c->opt.epochs, "Maximum epochs")->capture_default_str();
  sub->add_option("--batch", c->opt.batch, "Patches per step")->capture_default_str();
  sub->add_option("--lr", c->opt.lr, "Adam learning rate")->capture_default_str();
  sub->add_option("--weight-decay", c->opt.weight_decay, "L2 weight decay")->capture_default_str();
  sub->add_option("--schedule", c->opt.schedule, "Learning-rate schedule: cosine, plateau (halve after 2 epochs without gain), none")
      ->capture_default_str();
  sub->add_option("--patience", c->opt.patience, "Stop after this many epochs without a validation-AUC gain")->capture_default_str();
  sub->add_option("--val-fraction", c->opt.val_fraction, "Share of the training set held out when --val is not given")
      ->capture_default_str();
  sub->add_option("--max-patches-per-epoch", c->opt.max_patches_per_epoch, "Patches per epoch (0 = all)")->capture_default_str();
  sub->add_flag("--no-augment", c->no_augment, "Disable augmentation");
  sub->add_option("--rotation", c->opt.augment.max_rotation_deg, "Max random rotation, degrees")->capture_default_str();
  sub->add_option("--zoom", c->opt.augment.max_zoom, "Max random zoom (0.2 = 80-120 %)")->capture_default_str();
  sub->add_option("--shift", c->opt.augment.max_shift, "Max random translation, fraction of the patch side")->capture_default_str();
  sub->add_option("--stain-jitter", c->opt.augment.stain, "H&E optical-density jitter strength (0 = off)")->capture_default_str();
  sub->add_option("--hue", c->opt.augment.hue, "Max hue shift, turns (0 = off)")->capture_default_str();
  sub->add_option("--saturation", c->opt.augment.saturation, "Max saturation scale change (0 = off)")->capture_default_str();
  sub->add_option("--brightness", c->opt.augment.value, "Max value (brightness) scale change (0 = off)")->capture_default_str();
  sub->add_flag("--no-class-weights", c->no_class_weights, "Do not weight the loss by inverse class frequency");
  sub->add_option("--seed", c->opt.seed, "Seed for initialisation, shuffling, augmentation and the validation split")
      ->capture_default_str();
  add_threads_option(*sub, c->opt.threads, "Threads (0 = one per core); results are reproducible at a fixed count");
  sub->add_option("--init", c->init,
                  "Fine-tune this model (NAME.pt + NAME.json: TorchScript, or a built-in that train wrote) instead of "
                  "training a new network; its sidecar's preprocessing and output are kept, and the result is saved in its "
                  "format");
  sub->add_option("--freeze", c->opt.freeze,
                  "With --init: 'features' trains only the head (what classify uses beyond features) for --freeze-epochs, "
                  "then everything at --finetune-lr")
      ->capture_default_str();
  sub->add_option("--freeze-epochs", c->opt.freeze_epochs, "Epochs that train the head only (default 2 with --freeze features)");
  sub->add_option("--finetune-lr", c->opt.finetune_lr, "Learning rate after the frozen epochs (default: --lr / 10)");
  sub->add_option("--bn", c->opt.bn,
                  "Batch norm while training: frozen (eval mode, the init model's running statistics kept) or train "
                  "(default: frozen with --init, else train)");
  sub->add_option("--device", c->device, "cpu, or cuda (a LibTorch built with CUDA and a GPU)")->capture_default_str();
  sub->add_flag("--quiet,-q", c->quiet, "No progress bar");
  sub->callback([c, sub] {
    for (const char* flag : {"--arch", "--width", "--blocks", "--input-size", "--resize", "--mpp"})
      if (sub->count(flag) > 0) c->given.emplace_back(flag);
    run_train(*c);
  });
}

}  // namespace wsi::cli
