// `wsi-heatmap train` as the library gives it: train_on_files (sets opened from files, the plan
// said before the first epoch) and the texts the CLI prints (plan, epoch line, progress, summary).
#include <gtest/gtest.h>

#include "test_support.hpp"
#include "wsi/dataset.hpp"
#include "wsi/error.hpp"
#include "wsi/train.hpp"

namespace wsi {
namespace {
namespace fs = std::filesystem;

// NAME_train_x.h5 of uniform grey `side` px patches: `n` dark tumour ones, then `n` light normal ones.
fs::path grey_set(const fs::path& dir, const std::string& name, int n, int side = 96) {
  auto w = make_pcam_writer(dir, name, "train", side);
  std::vector<uint8_t> px(static_cast<size_t>(side * side * 3));
  for (int i = 0; i < 2 * n; ++i) {
    std::fill(px.begin(), px.end(), static_cast<uint8_t>(i < n ? 40 + i : 200 + i));
    PatchRecord r;
    r.rgb = px.data();
    r.label = i < n ? 1 : 0;
    r.wsi = name;
    w->add(r);
  }
  w->commit();
  return dir / (name + "_train_x.h5");
}

TEST(TrainTexts, EpochLineHasFourDecimalsAndMarksHeadOnlyAndBest) {
  EpochRecord e;
  e.epoch = 3;
  e.lr = 0.000854321;
  e.train_loss = 0.41234;
  e.train_auc = 0.9;
  e.val_loss = 0.5;
  e.val_auc = 0.95;
  e.val_accuracy = 0.875;
  e.seconds = 12.34;
  e.head_only = e.best = true;
  EXPECT_EQ(epoch_text(e),
            "epoch 3: lr 0.000854  train loss 0.4123 AUC 0.9000  val loss 0.5000 AUC 0.9500 acc 0.8750  12.3 s  "
            "(head only)  (best, saved)\n");
  e.head_only = e.best = false;
  e.lr = 0.001;
  EXPECT_EQ(epoch_text(e), "epoch 3: lr 0.001  train loss 0.4123 AUC 0.9000  val loss 0.5000 AUC 0.9500 acc 0.8750  12.3 s\n");
}

TEST(TrainTexts, ProgressTailShowsTheBestAucOnceThereIsOneAndValidation) {
  TrainProgress p;
  p.loss = 0.31234;
  EXPECT_EQ(progress_text(p), "loss 0.3123");
  p.best_val_auc = 0.9;
  p.validating = true;
  EXPECT_EQ(progress_text(p), "loss 0.3123  best val AUC 0.9000  validating...");
}

TEST(TrainTexts, SummaryNamesWhyItStoppedTheBestEpochAndTheFiles) {
  TrainResult r;
  r.stop_reason = "completed 2 epochs";
  r.best_epoch = 2;
  r.best_val_auc = 0.98765;
  r.model = "d/m.pt";
  r.log_csv = "d/m.log.csv";
  r.curve_svg = "d/m.curve.svg";
  EXPECT_EQ(train_summary_text(r),
            "completed 2 epochs; best epoch 2, validation AUC 0.9877\nwrote d/m.pt (+ .json), d/m.log.csv, d/m.curve.svg\n");
}

TEST(TrainTexts, PlanSaysTheNetworkOrTheInitModelItsStagesAndTheValidation) {
  test::ScratchDir dir;
  const auto set = open_patch_set(grey_set(dir.path(), "g", 2));
  const std::string data = set->describe();
  TrainOptions o;
  o.arch = {"resnet", 8, 2};
  EXPECT_EQ(training_plan_text(o, *set, nullptr, nullptr),
            "training resnet (width 8, 2 blocks/stage) on " + data + "\nvalidating on a random 0.1 of it\n");
  o.arch = {"cancernet", 16, 1};
  EXPECT_EQ(training_plan_text(o, *set, set.get(), nullptr),
            "training cancernet (width 16) on " + data + "\nvalidating on " + data + "\n");
  o.init = "m.pt";
  o.freeze = "features";
  InitSummary s;
  s.kind = "TorchScript";
  s.parameters = 100;
  s.head_parameters = 10;
  s.head = {"fc", "bias"};
  EXPECT_EQ(training_plan_text(o, *set, nullptr, &s),
            "fine-tuning m.pt (TorchScript, 100 parameters) on " + data +
                "\nepochs 1-2: the head only (fc, bias; 10 parameters) at lr 0.001; then everything at lr 0.0001; "
                "batch norm frozen\nvalidating on a random 0.1 of it\n");
  o.freeze = "none";
  o.bn = "train";
  EXPECT_EQ(training_plan_text(o, *set, nullptr, &s),
            "fine-tuning m.pt (TorchScript, 100 parameters) on " + data +
                "\neverything trained at lr 0.001; batch norm trained\nvalidating on a random 0.1 of it\n");
}

TEST(TrainOnFiles, SaysThePlanBeforeTheFirstEpochThenTrains) {
  test::ScratchDir dir;
  TrainOptions o;
  o.arch = {"cancernet", 8, 1};
  o.epochs = 1;
  o.batch = 8;
  o.threads = 1;
  std::vector<std::string> events;
  const TrainResult r = train_on_files(
      grey_set(dir.path(), "t", 8), grey_set(dir.path(), "v", 2), o, dir / "m",
      [&](const std::string& text) { events.push_back(text.substr(0, text.find(' '))); }, {},
      [&](const EpochRecord& e) { events.push_back("epoch " + std::to_string(e.epoch)); });
  EXPECT_EQ(events, (std::vector<std::string>{"training", "epoch 1"}));
  EXPECT_EQ(r.train_patches, 16);
  EXPECT_EQ(r.val_patches, 4);
  EXPECT_TRUE(fs::exists(dir / "m.pt"));
  EXPECT_TRUE(fs::exists(dir / "m.json"));
}

TEST(TrainOnFiles, AValidationSetOfAnotherPatchSizeIsRefusedBeforeThePlan) {
  test::ScratchDir dir;
  bool said = false;
  const TrainOptions o;
  try {
    train_on_files(grey_set(dir.path(), "t", 4), grey_set(dir.path(), "v", 2, 64), o, dir / "m",
                   [&](const std::string&) { said = true; });
    FAIL() << "a 64 px validation set was accepted for 96 px training patches";
  } catch (const UsageError& e) {
    EXPECT_EQ(std::string(e.what()), "the validation set has 64 px patches, the training set 96 px: use sets extracted "
                                     "with the same patch size");
  }
  EXPECT_FALSE(said);
  EXPECT_FALSE(fs::exists(dir / "m.pt"));
}

}  // namespace
}  // namespace wsi
