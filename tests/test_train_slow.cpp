// Training reaches a stated quality on generated data (labelled `slow`: about a minute at 2 cores).
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

}  // namespace
}  // namespace wsi
