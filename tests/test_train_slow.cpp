// Training and fine-tuning reach a stated quality on generated data (labelled `slow`: a minute or
// two at 2 cores).
#include <gtest/gtest.h>

#include "test_support.hpp"
#include "train_fixtures.hpp"
#include "wsi/dataset.hpp"
#include "wsi/metrics.hpp"
#include "wsi/model.hpp"
#include "wsi/train.hpp"

namespace wsi {
namespace {

TEST(TrainSlow, CancernetReachesValidationAuc095OnGeneratedPatchesAndHoldsOnAnUnseenScene) {
  test::ScratchDir dir;
  const auto train_path = test::write_scene_patches(dir.path(), "tr", 21, 4800);
  const auto val_path = test::write_scene_patches(dir.path(), "va", 22, 2400);
  const auto test_path = test::write_scene_patches(dir.path(), "te", 23, 2400);
  const auto train = open_patch_set(train_path), val = open_patch_set(val_path), held = open_patch_set(test_path);
  TrainOptions o;
  o.arch = {"cancernet", 16, 1};
  o.epochs = 6;
  o.batch = 32;
  o.lr = 2e-3;
  o.threads = 2;
  const TrainResult r = train_model(*train, val.get(), o, dir / "m");
  EXPECT_GE(r.best_val_auc, 0.95) << r.stop_reason;

  const Model m(dir / "m.pt", {Device::cpu, 2});
  std::vector<uint8_t> px(static_cast<size_t>(held->size()) * 96 * 96 * 3);
  held->read(0, held->size(), px.data());
  const auto p = m.predict(px.data(), held->size());
  const std::vector<double> scores(p.begin(), p.end());
  EXPECT_GE(roc_auc(scores, held->labels()), 0.95);
}

// Pretraining pays off on a new scene with few labelled patches. The scenes vary in stain and
// are noisy and blurred, so that colour alone does not tell tumour from normal. A cancernet
// trained on 4 scenes is fine-tuned with the two-stage recipe (1 epoch head only, 2 all) on 24
// patches of a fifth; the same network trains from scratch on those 24 for the same 3 epochs;
// both validate on 3 other scenes, for 5 seeds each. From scratch is a lottery on so few
// patches, fine-tuning is not. Measured (2 threads): scratch 0.22-0.93 (mean 0.55), fine-tuned
// 0.96 for every seed; asserted: fine-tuned >= 0.9 for every seed, mean gap >= 0.2.
TEST(TrainSlow, FineTuningAPretrainedModelBeatsScratchOnFewPatches) {
  test::ScratchDir dir;
  const test::SceneLook look{1.0, 1.0, 1.5};
  const auto pre = open_patch_set(test::write_scenes_patches(dir.path(), "pre", {1, 2, 3, 4}, 2400, look, 0, 1));
  const auto few = open_patch_set(test::write_scenes_patches(dir.path(), "few", {5}, 2400, look, 8, 1));
  const auto val = open_patch_set(test::write_scenes_patches(dir.path(), "val", {6, 7, 8}, 2400, look, 0, 1));
  TrainOptions base;
  base.arch = {"cancernet", 16, 1};
  base.batch = 16;
  base.threads = 2;
  TrainOptions p = base;
  p.epochs = 4;
  p.lr = 2e-3;
  const TrainResult pretrained = train_model(*pre, val.get(), p, dir / "pre");
  EXPECT_GE(pretrained.best_val_auc, 0.9);

  double scratch_sum = 0, finetuned_sum = 0;
  constexpr int kSeeds = 5;
  for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
    TrainOptions scratch = base;
    scratch.epochs = 3;
    scratch.seed = seed;
    const TrainResult s = train_model(*few, val.get(), scratch, dir / "scratch");
    TrainOptions ft = scratch;
    ft.init = pretrained.model;
    ft.freeze = "features";
    ft.freeze_epochs = 1;
    const TrainResult f = train_model(*few, val.get(), ft, dir / "finetuned");
    std::cout << "seed " << seed << ": " << s.train_patches << " patches (" << s.positives
              << " tumour), validation AUC from scratch " << s.best_val_auc << ", fine-tuned " << f.best_val_auc
              << "\n";
    EXPECT_LE(s.train_patches, 24);
    EXPECT_GE(f.best_val_auc, 0.9) << "seed " << seed;
    scratch_sum += s.best_val_auc;
    finetuned_sum += f.best_val_auc;
  }
  std::cout << "pretrained on " << pretrained.train_patches << " patches (val AUC " << pretrained.best_val_auc
            << "); mean validation AUC on " << val->size() << " patches: from scratch " << scratch_sum / kSeeds
            << ", fine-tuned " << finetuned_sum / kSeeds << "\n";
  EXPECT_GE((finetuned_sum - scratch_sum) / kSeeds, 0.2);
}

}  // namespace
}  // namespace wsi
