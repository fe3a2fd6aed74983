// `train --init`: fine-tuning TorchScript models (made by tests/make_finetune_models.py with
// Debian's python3-torch) and built-ins. Frozen features stay bit-identical through the frozen
// epochs, the head is found from the features/classify split, every output kind learns the
// labels the way Model reads them, the result keeps the contract, and runs are reproducible.
#include <gtest/gtest.h>
#include <torch/script.h>

#include <map>
#include <nlohmann/json.hpp>

#include "test_support.hpp"
#include "train_fixtures.hpp"
#include "wsi/dataset.hpp"
#include "wsi/error.hpp"
#include "wsi/gradcam.hpp"
#include "wsi/metrics.hpp"
#include "wsi/model.hpp"
#include "wsi/train.hpp"

namespace wsi {
namespace {
namespace fs = std::filesystem;

// The TorchScript models to start from, made once per build (remade when the script changes).
const fs::path* finetune_models() {
  static const fs::path* dir = []() -> const fs::path* {
    if (std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0) return nullptr;
    static fs::path d = test::fixture_dir() / "finetune-models";
    const std::string script = std::string(WSI_SOURCE_DIR) + "/tests/make_finetune_models.py";
    const std::string stamp = std::to_string(std::hash<std::string>{}(test::slurp(script)));
    if (!fs::exists(d / "logit.pt") || test::slurp(d / "script.stamp") != stamp) {
      const fs::path tmp = test::fixture_dir() / ("finetune-models.tmp-" + std::to_string(::getpid()));
      fs::create_directories(tmp);
      const std::string cmd = "/usr/bin/python3 " + test::shell_quote(script) + " " + test::shell_quote(tmp.string());
      if (std::system(cmd.c_str()) != 0) return nullptr;
      std::ofstream(tmp / "script.stamp") << stamp;
      std::error_code ec;
      fs::remove_all(d, ec);
      fs::rename(tmp, d, ec);
      fs::remove_all(tmp, ec);
    }
    return &d;
  }();
  return dir;
}

#define REQUIRE_FINETUNE_MODELS()                                                                        \
  if (!finetune_models())                                                                                \
  WSI_SKIP_MISSING() << "/usr/bin/python3 with torch is needed to make the TorchScript models (Debian: " \
                        "python3-torch)"

fs::path ts(const std::string& name) { return *finetune_models() / (name + ".pt"); }

// One small generated set (about 250 patches of 96 px), made once per process.
const fs::path& small_set() {
  static const test::ScratchDir dir;
  static const fs::path path = test::write_scene_patches(dir.path(), "small", 11, 1800);
  return path;
}

TrainOptions quick(uint64_t seed = 1) {
  TrainOptions o;
  o.epochs = 3;
  o.batch = 16;
  o.threads = 2;
  o.seed = seed;
  return o;
}

TrainOptions frozen_for(const fs::path& init, int frozen_epochs, const std::string& bn = "frozen") {
  TrainOptions o = quick();
  o.init = init;
  o.freeze = "features";
  o.freeze_epochs = frozen_epochs;
  o.epochs = frozen_epochs + 1;
  o.bn = bn;
  return o;
}

// A built-in (width 8) trained for one epoch: the init of the built-in tests.
fs::path builtin_init(const test::ScratchDir& dir, const std::string& arch = "cancernet") {
  const auto set = open_patch_set(small_set());
  TrainOptions o = quick();
  o.arch = {arch, 8, 1};
  o.epochs = 1;
  if (arch == "resnet") o.input_size = 96;
  return train_model(*set, nullptr, o, dir / ("init-" + arch)).model;
}

// Every parameter and buffer of a saved model (TorchScript or native archive), by name.
struct Tensors {
  std::map<std::string, torch::Tensor> parameters, buffers;
};
Tensors tensors(const fs::path& path) {
  const torch::jit::Module m = torch::jit::load(path.string());
  Tensors t;
  for (const auto& p : m.named_parameters()) t.parameters[p.name] = p.value;
  for (const auto& b : m.named_buffers()) t.buffers[b.name] = b.value;
  return t;
}

bool in_head(const std::string& name, const std::vector<std::string>& head) {
  return std::find(head.begin(), head.end(), name.substr(0, name.find('.'))) != head.end();
}

// Runs a fine-tune with features frozen for `freeze_epochs` and keeps a copy of the checkpoint
// after the frozen epochs and after the first unfrozen one (the first epoch of each stage is
// always saved: it is the stage's first best).
struct TwoStages {
  TrainResult result;
  fs::path after_frozen, after_unfrozen;
};
TwoStages run_two_stages(const TrainOptions& o, const test::ScratchDir& dir) {
  const auto set = open_patch_set(small_set());
  TwoStages s{{}, dir / "after-frozen.pt", dir / "after-unfrozen.pt"};
  s.result = train_model(*set, nullptr, o, dir / "ft", {}, [&](const EpochRecord& e) {
    if (e.epoch == o.freeze_epochs) fs::copy_file(dir / "ft.pt", s.after_frozen);
    if (e.epoch == o.freeze_epochs + 1) fs::copy_file(dir / "ft.pt", s.after_unfrozen);
  });
  return s;
}

// After the frozen epochs every features parameter and every batch-norm statistic is the init
// model's, bit for bit, and each head parameter changed; the first unfrozen epoch changes the
// features too.
void expect_frozen_then_trained(const fs::path& init, const std::vector<std::string>& head) {
  test::ScratchDir dir;
  const TwoStages s = run_two_stages(frozen_for(init, 2), dir);
  ASSERT_EQ(s.result.epochs.size(), 3u);
  EXPECT_TRUE(s.result.epochs[0].head_only && s.result.epochs[1].head_only);
  EXPECT_FALSE(s.result.epochs[2].head_only);
  const Tensors before = tensors(init), after = tensors(s.after_frozen);
  ASSERT_EQ(before.parameters.size(), after.parameters.size());
  int frozen = 0, trained = 0;
  for (const auto& [name, t] : before.parameters) {
    ASSERT_TRUE(after.parameters.count(name)) << name;
    if (in_head(name, head)) {
      EXPECT_FALSE(torch::equal(t, after.parameters.at(name))) << name << " (head) did not train";
      ++trained;
    } else {
      EXPECT_TRUE(torch::equal(t, after.parameters.at(name))) << name << " (features) changed while frozen";
      ++frozen;
    }
  }
  EXPECT_GT(frozen, 0);
  EXPECT_GT(trained, 0);
  ASSERT_FALSE(before.buffers.empty());
  for (const auto& [name, t] : before.buffers)
    EXPECT_TRUE(torch::equal(t, after.buffers.at(name))) << name << " (batch-norm statistic) changed with --bn frozen";

  // Stage 2 trains everything, and its first epoch's weights replace stage 1's checkpoint.
  ASSERT_TRUE(s.result.epochs[2].best);
  EXPECT_EQ(s.result.best_epoch, 3);
  const Tensors unfrozen = tensors(s.after_unfrozen);
  int moved = 0;
  for (const auto& [name, t] : before.parameters)
    if (!in_head(name, head)) moved += torch::equal(t, unfrozen.parameters.at(name)) ? 0 : 1;
  EXPECT_EQ(moved, frozen) << "every features parameter trains after the frozen epochs";
}

TEST(TrainInit, FrozenParametersUnchangedAfterTheFrozenEpochsTorchScript) {
  REQUIRE_FINETUNE_MODELS();
  expect_frozen_then_trained(ts("logit"), {"head"});
}

TEST(TrainInit, FrozenParametersUnchangedAfterTheFrozenEpochsBuiltin) {
  test::ScratchDir dir;
  expect_frozen_then_trained(builtin_init(dir), {"fc1", "bn1", "fc2"});
}

TEST(TrainInit, BnTrainUpdatesRunningStatisticsOfFrozenFeatures) {
  // --bn train: the features' parameters stay frozen, their batch-norm statistics follow the data.
  REQUIRE_FINETUNE_MODELS();
  test::ScratchDir dir;
  const TwoStages s = run_two_stages(frozen_for(ts("logit"), 1, "train"), dir);
  const Tensors before = tensors(ts("logit")), after = tensors(s.after_frozen);
  for (const auto& [name, t] : before.parameters)
    if (!in_head(name, {"head"})) {
      EXPECT_TRUE(torch::equal(t, after.parameters.at(name))) << name;
    }
  for (const char* name : {"body.1.running_mean", "body.1.running_var", "body.5.running_mean"})
    EXPECT_FALSE(torch::equal(before.buffers.at(name), after.buffers.at(name))) << name;
}

TEST(TrainInit, HeadIsWhatClassifyUsesBeyondFeatures) {
  REQUIRE_FINETUNE_MODELS();
  test::ScratchDir dir;
  TrainOptions o = quick();
  o.freeze = "features";
  o.init = ts("logit");
  InitSummary s = inspect_init(o);
  EXPECT_EQ(s.kind, "TorchScript");
  EXPECT_EQ(s.head, std::vector<std::string>{"head"});
  EXPECT_EQ(s.head_parameters, 16 + 1);
  EXPECT_EQ(s.parameters, (3 * 9 * 8 + 8) + 2 * 8 + (8 * 9 * 16 + 16) + 2 * 16 + 17);
  o.init = builtin_init(dir);
  s = inspect_init(o);
  EXPECT_EQ(s.kind, "built-in cancernet");
  EXPECT_EQ(s.head, (std::vector<std::string>{"fc1", "bn1", "fc2"}));
  o.init = builtin_init(dir, "resnet");
  EXPECT_EQ(inspect_init(o).head, std::vector<std::string>{"fc"});

  const auto refused = [&](const std::string& model, const std::string& message) {
    o.init = ts(model);
    try {
      (void)inspect_init(o);
      ADD_FAILURE() << model << ": --freeze features accepted";
    } catch (const UsageError& e) {
      EXPECT_EQ(std::string(e.what()), o.init.string() + message);
    }
  };
  refused("nosplit", ": --freeze features needs the model's features/classify split, and its sidecar " +
                         (*finetune_models() / "nosplit.json").string() +
                         " names no \"gradcam\" methods; export the model with both (tools/export_model.py does)");
  refused("headless",
          ": --freeze features leaves nothing to train: classify() uses no parameters that features() does not");
  o.freeze = "none";  // without freezing, no split is needed
  o.init = ts("nosplit");
  EXPECT_EQ(inspect_init(o).head_parameters, 0);
}

TEST(TrainInit, FineTunedTorchScriptKeepsTheContractAndRecordsTheRecipe) {
  REQUIRE_FINETUNE_MODELS();
  const auto set = open_patch_set(small_set());
  test::ScratchDir dir;
  TrainOptions o = frozen_for(ts("logit"), 1);
  o.name = "ft-logit";
  o.finetune_lr = 2e-4;
  const TrainResult r = train_model(*set, nullptr, o, dir / "ft");
  EXPECT_TRUE(test::partial_files(dir.path()).empty());
  EXPECT_NO_THROW((void)torch::jit::load((dir / "ft.pt").string())) << "TorchScript in, TorchScript out";

  const Model m(dir / "ft.pt", {Device::cpu, 2});
  const ModelSpec& init = Model(ts("logit")).spec();
  EXPECT_FALSE(m.spec().architecture);
  EXPECT_EQ(m.spec().name, "ft-logit");
  EXPECT_EQ(m.spec().input_size, init.input_size);
  EXPECT_EQ(m.spec().resize, ResizeMode::area);
  EXPECT_EQ(m.spec().mean, init.mean);
  EXPECT_EQ(m.spec().std, init.std);
  EXPECT_EQ(m.spec().output, OutputKind::logit);
  EXPECT_TRUE(m.has_gradcam());
  std::vector<uint8_t> px(4 * 96 * 96 * 3);
  set->read(0, 4, px.data());
  const auto p = m.predict(px.data(), 4);
  ASSERT_EQ(p.size(), 4u);
  for (float v : p) EXPECT_TRUE(v >= 0 && v <= 1);
  EXPECT_EQ(gradcam(m, px.data(), 4).cams.size(), 4u * 96 * 96);

  const auto t = nlohmann::json::parse(test::slurp(dir / "ft.json"))["training"];
  const auto& recipe = t["recipe"];
  EXPECT_EQ(recipe["init"]["path"], ts("logit").string());
  EXPECT_EQ(recipe["init"]["sha1"], sha1_file(ts("logit")));
  EXPECT_EQ(recipe["init"]["name"], "logit");
  EXPECT_EQ(recipe["init"]["training"]["source"], "make_finetune_models.py");  // the init's own provenance
  EXPECT_EQ(recipe["arch"], "torchscript");
  EXPECT_EQ(recipe["freeze"], "features");
  EXPECT_EQ(recipe["freeze_epochs"], 1);
  EXPECT_DOUBLE_EQ(recipe["finetune_lr"].get<double>(), 2e-4);
  EXPECT_EQ(recipe["bn"], "frozen");
  EXPECT_EQ(recipe["head"], nlohmann::json::array({"head"}));
  EXPECT_EQ(recipe["seed"], 1);
  EXPECT_EQ(t["best"]["epoch"], r.best_epoch);
  EXPECT_TRUE(fs::exists(dir / "ft.log.csv"));
  EXPECT_TRUE(fs::exists(dir / "ft.curve.svg"));
}

TEST(TrainInit, BuiltinInitGivesANativeArchiveOfTheSameArchitecture) {
  test::ScratchDir dir;
  const fs::path init = builtin_init(dir);
  const auto set = open_patch_set(small_set());
  TrainOptions o = quick();
  o.init = init;
  o.epochs = 1;
  o.dropout = 0.2;  // a built-in is rebuilt, so its dropout is a training option
  (void)train_model(*set, nullptr, o, dir / "ft");
  const Model m(dir / "ft.pt");
  ASSERT_TRUE(m.spec().architecture);
  EXPECT_EQ(m.spec().architecture->name, "cancernet");
  EXPECT_EQ(m.spec().architecture->width, 8);
  EXPECT_EQ(m.spec().input_size, 48);
  const auto recipe = nlohmann::json::parse(test::slurp(dir / "ft.json"))["training"]["recipe"];
  EXPECT_EQ(recipe["init"]["kind"], "built-in cancernet");
  EXPECT_DOUBLE_EQ(recipe["dropout"].get<double>(), 0.2);
  EXPECT_EQ(recipe["freeze"], "none");
  EXPECT_EQ(recipe["bn"], "frozen");  // the default with --init
}

TEST(TrainInit, SameSeedGivesIdenticalWeights) {
  REQUIRE_FINETUNE_MODELS();
  const auto set = open_patch_set(small_set());
  test::ScratchDir dir;
  TrainOptions o = frozen_for(ts("logit"), 1);
  (void)train_model(*set, nullptr, o, dir / "a");
  (void)train_model(*set, nullptr, o, dir / "b");
  o.seed = 2;
  (void)train_model(*set, nullptr, o, dir / "c");
  const Tensors a = tensors(dir / "a.pt"), b = tensors(dir / "b.pt"), c = tensors(dir / "c.pt");
  bool all_same_c = true;
  for (const auto& [name, t] : a.parameters) {
    EXPECT_TRUE(torch::equal(t, b.parameters.at(name))) << name;
    all_same_c = all_same_c && torch::equal(t, c.parameters.at(name));
  }
  EXPECT_FALSE(all_same_c) << "another seed trains other weights";
}

TEST(TrainInit, EveryOutputKindLearnsTheLabelsAsModelReadsThem) {
  // Each init model ranks the patches backwards (make_finetune_models.py); softmax0's tumour
  // class is column 0. A loss on the wrong column or of the wrong sign would not turn them around
  // as Model (which reads positive_index) sees them.
  REQUIRE_FINETUNE_MODELS();
  const auto set = open_patch_set(small_set());
  std::vector<uint8_t> px(static_cast<size_t>(set->size()) * 96 * 96 * 3);
  set->read(0, set->size(), px.data());
  for (const char* kind : {"logit", "softmax0", "probability"}) {
    SCOPED_TRACE(kind);
    test::ScratchDir dir;
    TrainOptions o = quick();
    o.init = ts(kind);
    o.lr = 3e-3;
    o.augment = AugmentParams::none();
    const auto p0 = Model(o.init, {Device::cpu, 2}).predict(px.data(), set->size());
    EXPECT_LT(roc_auc(std::vector<double>(p0.begin(), p0.end()), set->labels()), 0.2) << "starts ranked backwards";
    const TrainResult r = train_model(*set, nullptr, o, dir / "ft");
    EXPECT_GE(r.best_val_auc, 0.85);
    const auto p = Model(dir / "ft.pt", {Device::cpu, 2}).predict(px.data(), set->size());
    EXPECT_GE(roc_auc(std::vector<double>(p.begin(), p.end()), set->labels()), 0.85);
  }
}

TEST(TrainInit, OptionsThatDoNotFitTheModelAreRefused) {
  REQUIRE_FINETUNE_MODELS();
  test::ScratchDir dir;
  TrainOptions o = quick();
  o.init = ts("logit");
  o.dropout = 0.3;
  try {
    (void)inspect_init(o);
    ADD_FAILURE() << "--dropout accepted for TorchScript";
  } catch (const UsageError& e) {
    EXPECT_EQ(std::string(e.what()), "--dropout applies to the built-in networks; " + o.init.string() +
                                         " is TorchScript, whose dropout is part of the module");
  }
  o.dropout = -1;
  auto w = make_pcam_writer(dir.path(), "p64", "train", 64);
  std::vector<uint8_t> rgb(64 * 64 * 3, 180);
  for (int i = 0; i < 8; ++i) {
    PatchRecord r;
    r.rgb = rgb.data();
    r.label = static_cast<uint8_t>(i % 2);
    w->add(r);
  }
  w->commit();
  const auto set = open_patch_set(dir / "p64_train_x.h5");
  try {
    (void)train_model(*set, nullptr, o, dir / "m");
    ADD_FAILURE() << "64 px patches accepted for a 96 px model";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), set->describe() + " has 64 px patches but " + o.init.string() +
                                         " expects patch_size 96 (at 0.972 µm/px, its sidecar): extract patches of "
                                         "that size");
  }
  EXPECT_FALSE(fs::exists(dir / "m.pt"));
}

TEST(TrainInit, CudaRequestWithoutCudaIsAClearError) {
  TrainOptions o = quick();
  o.device = Device::cuda;
  try {
    check_train_device(o.device);
    GTEST_SKIP() << "this build and machine have CUDA";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("--device cuda: this build's LibTorch"), std::string::npos) << e.what();
  }
  const auto set = open_patch_set(small_set());
  test::ScratchDir dir;
  EXPECT_THROW((void)train_model(*set, nullptr, o, dir / "m"), ConfigError);
  EXPECT_FALSE(fs::exists(dir / "m.pt"));
}

}  // namespace
}  // namespace wsi
