// Built-in networks and `train`: the saved model loads through the same contract as TorchScript
// models, training is deterministic for a seed, outputs are complete, and bad data is refused.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "test_support.hpp"
#include "train_fixtures.hpp"
#include "wsi/dataset.hpp"
#include "wsi/error.hpp"
#include "wsi/gradcam.hpp"
#include "wsi/model.hpp"
#include "wsi/train.hpp"

namespace wsi {
namespace {
namespace fs = std::filesystem;

// One small generated set, made once per process.
const fs::path& small_set() {
  static const test::ScratchDir dir;
  static const fs::path path = test::write_scene_patches(dir.path(), "small", 11, 1800);
  return path;
}

TrainOptions quick(uint64_t seed = 1) {
  TrainOptions o;
  o.arch = {"cancernet", 8, 1};
  o.epochs = 2;
  o.batch = 16;
  o.threads = 2;
  o.seed = seed;
  return o;
}

TEST(Train, SavedBuiltinModelLoadsThroughTheContractWithGradcam) {
  const auto set = open_patch_set(small_set());
  test::ScratchDir out;
  const TrainResult r = train_model(*set, nullptr, quick(), out / "net");
  ASSERT_EQ(r.epochs.size(), 2u);
  EXPECT_TRUE(fs::exists(out / "net.pt"));
  EXPECT_TRUE(fs::exists(out / "net.json"));
  EXPECT_TRUE(fs::exists(out / "net.log.csv"));
  EXPECT_TRUE(fs::exists(out / "net.curve.svg"));
  EXPECT_TRUE(test::partial_files(out.path()).empty());

  const Model model(out / "net.pt", {Device::cpu, 2});
  EXPECT_EQ(model.spec().input_size, 48);
  EXPECT_EQ(model.spec().resize, ResizeMode::area);
  ASSERT_TRUE(model.spec().architecture);
  EXPECT_EQ(model.spec().architecture->width, 8);
  EXPECT_TRUE(model.has_gradcam());
  EXPECT_GT(model.gflops_per_patch(), 0.0);
  std::vector<uint8_t> px(4 * 96 * 96 * 3);
  set->read(0, 4, px.data());
  const auto p = model.predict(px.data(), 4);
  ASSERT_EQ(p.size(), 4u);
  for (float v : p) EXPECT_TRUE(v >= 0 && v <= 1);
  const GradcamBatch g = gradcam(model, px.data(), 4);
  ASSERT_EQ(g.cams.size(), 4u * 96 * 96);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(g.probabilities[i], p[i], 1e-5);

  // The sidecar records the recipe and the best validation AUC.
  const auto side = nlohmann::json::parse(test::slurp(out / "net.json"));
  EXPECT_EQ(side["training"]["recipe"]["seed"], 1);
  EXPECT_EQ(side["training"]["best"]["epoch"], r.best_epoch);
  EXPECT_DOUBLE_EQ(side["training"]["best"]["val_auc"].get<double>(), r.best_val_auc);
  const std::string csv = test::slurp(out / "net.log.csv");
  EXPECT_EQ(csv.substr(0, csv.find('\n')), "epoch,lr,train_loss,train_auc,val_loss,val_auc,val_accuracy,seconds,best");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 3);
}

TEST(Train, SameSeedGivesIdenticalWeightsOtherSeedDoesNot) {
  const auto set = open_patch_set(small_set());
  test::ScratchDir out;
  (void)train_model(*set, nullptr, quick(5), out / "a");
  (void)train_model(*set, nullptr, quick(5), out / "b");
  (void)train_model(*set, nullptr, quick(6), out / "c");
  std::vector<uint8_t> px(8 * 96 * 96 * 3);
  set->read(0, 8, px.data());
  const auto pa = Model(out / "a.pt").predict(px.data(), 8);
  const auto pb = Model(out / "b.pt").predict(px.data(), 8);
  const auto pc = Model(out / "c.pt").predict(px.data(), 8);
  EXPECT_EQ(pa, pb);
  EXPECT_NE(pa, pc);
}

TEST(Train, DropoutIsATrainingOptionRecordedInTheRecipe) {
  // The architecture's default (cancernet 0.5) is written as the value used; another rate trains
  // other weights from the same seed, and the saved model loads the same way (no layout change).
  const auto set = open_patch_set(small_set());
  test::ScratchDir out;
  (void)train_model(*set, nullptr, quick(5), out / "d");
  TrainOptions o = quick(5);
  o.dropout = 0.0;
  (void)train_model(*set, nullptr, o, out / "z");
  EXPECT_DOUBLE_EQ(nlohmann::json::parse(test::slurp(out / "d.json"))["training"]["recipe"]["dropout"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(nlohmann::json::parse(test::slurp(out / "z.json"))["training"]["recipe"]["dropout"].get<double>(), 0.0);
  std::vector<uint8_t> px(8 * 96 * 96 * 3);
  set->read(0, 8, px.data());
  EXPECT_NE(Model(out / "d.pt").predict(px.data(), 8), Model(out / "z.pt").predict(px.data(), 8));
}

TEST(Train, StreamedSetsVisitEveryTrainingPatchOncePerEpoch) {
  // cache_bytes 0 forces the streaming path (shuffled windows of contiguous blocks).
  const auto set = open_patch_set(small_set());
  for (int64_t cache : {int64_t{0}, int64_t{1} << 30}) {
    test::ScratchDir out;
    TrainOptions o = quick();
    o.epochs = 1;
    o.cache_bytes = cache;
    int64_t seen = 0, total = 0;
    const TrainResult r = train_model(*set, nullptr, o, out / "s", [&](const TrainProgress& p) {
      seen = p.done;
      total = p.total;
    });
    EXPECT_EQ(total, r.train_patches);
    EXPECT_GE(seen, r.train_patches - 1) << "cache " << cache;  // a last batch of one is dropped
    EXPECT_LE(seen, r.train_patches);
    EXPECT_GT(r.val_patches, 0);
  }
}

TEST(Train, EarlyStoppingKeepsTheBestEpoch) {
  const auto set = open_patch_set(small_set());
  test::ScratchDir out;
  TrainOptions o = quick();
  o.epochs = 30;
  o.patience = 1;
  o.lr = 0.05;  // noisy on purpose: validation AUC soon fails to improve
  const TrainResult r = train_model(*set, nullptr, o, out / "es");
  EXPECT_LT(r.epochs.size(), 30u);
  EXPECT_NE(r.stop_reason.find("early stop"), std::string::npos) << r.stop_reason;
  int best = 0;
  for (const auto& e : r.epochs) if (e.best) best = e.epoch;
  EXPECT_EQ(best, r.best_epoch);
  EXPECT_EQ(r.epochs.back().epoch, r.best_epoch + 1);
}

TEST(Train, ResnetArchitectureTrainsAndLoads) {
  const auto set = open_patch_set(small_set());
  test::ScratchDir out;
  TrainOptions o = quick();
  o.arch = {"resnet", 8, 1};
  o.epochs = 1;
  o.input_size = 96;
  (void)train_model(*set, nullptr, o, out / "res");
  const Model m(out / "res.pt");
  EXPECT_EQ(m.spec().resize, ResizeMode::none);
  EXPECT_EQ(m.spec().architecture->name, "resnet");
  EXPECT_TRUE(m.has_gradcam());
}

TEST(Train, WeightsOfAnotherArchitectureAreAClearModelError) {
  const auto set = open_patch_set(small_set());
  test::ScratchDir out;
  TrainOptions o = quick();
  o.epochs = 1;
  (void)train_model(*set, nullptr, o, out / "w8");
  std::string side = test::slurp(out / "w8.json");
  side.replace(side.find("\"width\": 8"), 10, "\"width\": 16");
  std::ofstream(out / "w8.json") << side;
  try {
    Model m(out / "w8.pt");
    FAIL() << "loaded weights of width 8 as width 16";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("same architecture, width and blocks"), std::string::npos) << e.what();
  }
}

TEST(Train, OneClassOnlyIsRefusedWithCounts) {
  test::ScratchDir dir;
  auto w = make_pcam_writer(dir.path(), "neg", "train", 96);
  std::vector<uint8_t> rgb(96 * 96 * 3, 200);
  for (int i = 0; i < 20; ++i) {
    PatchRecord r;
    r.rgb = rgb.data();
    r.x = i;
    w->add(r);
  }
  w->commit();
  const auto set = open_patch_set(dir / "neg_train_x.h5");
  try {
    (void)train_model(*set, nullptr, quick(), dir / "m");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("0 tumour"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(dir / "m.pt"));
}

TEST(Train, BadOptionsNameTheFlag) {
  TrainOptions o;
  o.schedule = "step";
  EXPECT_THROW(o.validate(), UsageError);
  TrainOptions small_batch;
  small_batch.batch = 1;
  try {
    small_batch.validate();
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--batch"), std::string::npos);
  }
}

TEST(Train, LearningCurveSvgHasBothChartsAndMarksTheBestEpoch) {
  std::vector<EpochRecord> e(3);
  for (int i = 0; i < 3; ++i) {
    e[i].epoch = i + 1;
    e[i].train_loss = 0.6 - 0.1 * i;
    e[i].val_loss = 0.5 - 0.05 * i;
    e[i].train_auc = 0.8 + 0.05 * i;
    e[i].val_auc = 0.85 + 0.04 * i;
  }
  e[2].best = true;
  const std::string svg = learning_curve_svg(e, "demo");
  EXPECT_NE(svg.find("loss (BCE)"), std::string::npos);
  EXPECT_NE(svg.find("ROC AUC"), std::string::npos);
  EXPECT_NE(svg.find("best: epoch 3, val AUC 0.9300"), std::string::npos);
  EXPECT_EQ(svg.rfind("</svg>\n"), svg.size() - 7);
}

}  // namespace
}  // namespace wsi
