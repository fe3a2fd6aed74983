// Loading and running TorchScript models through the sidecar contract. Models and reference
// outputs are made by tests/make_test_models.py with Debian's python3-torch (skipped without it).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unistd.h>

#include "test_support.hpp"
#include "wsi/dataset.hpp"
#include "wsi/error.hpp"
#include "wsi/gradcam.hpp"
#include "wsi/model.hpp"

namespace wsi {
namespace {

namespace fs = std::filesystem;

const fs::path* models() { return test::models_dir(); }

std::vector<uint8_t> patches() {
  const std::string bytes = test::slurp(*models() / "patches.u8");
  return std::vector<uint8_t>(bytes.begin(), bytes.end());
}

std::vector<float> expected(const std::string& name) {
  std::ifstream in(*models() / (name + ".expected"));
  std::vector<float> v;
  for (float f; in >> f;) v.push_back(f);
  return v;
}

void expect_matches_pytorch(const std::string& name) {
  const Model m(*models() / (name + ".pt"));
  const auto px = patches();
  const auto want = expected(name);
  ASSERT_EQ(px.size(), want.size() * 96 * 96 * 3);
  const auto got = m.predict(px.data(), static_cast<int64_t>(want.size()));
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-5) << name << " patch " << i;
  // Batch size does not change the answer.
  const auto one = m.predict(px.data() + 2 * 96 * 96 * 3, 1);
  EXPECT_NEAR(one[0], want[2], 1e-5);
}

TEST(TorchModel, LogitModelWithNearestResizeMatchesPytorch) {
  REQUIRE_MODELS();
  expect_matches_pytorch("cnn");
}

TEST(TorchModel, SoftmaxModelTakesThePositiveIndex) {
  REQUIRE_MODELS();
  expect_matches_pytorch("softmax");
}

TEST(TorchModel, GradcamAvailabilityFollowsExportedMethods) {
  REQUIRE_MODELS();
  EXPECT_TRUE(Model(*models() / "cnn.pt").has_gradcam());
  const Model soft(*models() / "softmax.pt");  // sidecar names no gradcam methods
  EXPECT_FALSE(soft.has_gradcam());
  EXPECT_NE(soft.gradcam_unavailable_reason().find("names no"), std::string::npos);
}

// A sidecar naming Grad-CAM methods the module lacks was once taken as "no Grad-CAM" (issue 20):
// it is a wrong sidecar, and loading says so.
TEST(TorchModel, SidecarNamingMethodsTheModuleLacksIsAnError) {
  REQUIRE_MODELS();
  const test::ScratchDir dir;
  const fs::path pt = dir / "claims.pt";
  fs::copy_file(*models() / "nosplit.pt", pt);
  std::ofstream(dir / "claims.json") << R"({"format": "wsi-heatmap-model/1", "patch_size": 96, "mpp": 0.972, )"
                                        R"("output": "logit", "gradcam": {"features": "features", "classify": "head"}})";
  try {
    const Model m(pt);
    FAIL() << "no exception";
  } catch (const ModelError& e) {
    EXPECT_EQ(std::string(e.what()),
              pt.string() + ": its sidecar " + (dir / "claims.json").string() +
                  " names the Grad-CAM methods 'features' and 'head', which the TorchScript module does not export: "
                  "export them with @torch.jit.export (tools/export_model.py does), or remove \"gradcam\" from the "
                  "sidecar");
  }
}

TEST(TorchModel, WarmUpRunsOncePerBatchSideAndPathAndLeavesResultsUnchanged) {
  REQUIRE_MODELS();
  const Model m(*models() / "cnn.pt");
  const auto px = patches();
  const auto before = m.predict(px.data(), 3);
  EXPECT_FALSE(m.warmed_up(4, 0, false));
  m.warm_up(4, 0, false);
  EXPECT_TRUE(m.warmed_up(4, 0, false));
  EXPECT_TRUE(m.warmed_up(4, 96, false)) << "side 0 is the sidecar's patch_size: the same shape";
  EXPECT_FALSE(m.warmed_up(4, 0, true)) << "Grad-CAM is another path";
  EXPECT_FALSE(m.warmed_up(8, 0, false)) << "another batch is another shape";
  m.warm_up(4, 0, true);
  EXPECT_TRUE(m.warmed_up(4, 0, true));
  const auto after = m.predict(px.data(), 3);
  for (size_t i = 0; i < before.size(); ++i) EXPECT_EQ(before[i], after[i]) << "patch " << i;
  // Grad-CAM on a model that lacks it is the same clear error as gradcam().
  const Model soft(*models() / "softmax.pt");
  EXPECT_THROW(soft.warm_up(2, 0, true), ModelError);
  EXPECT_FALSE(soft.warmed_up(2, 0, true));
}

TEST(TorchModel, OnEachThreadRunsOncePerIntraOpThreadOnDistinctThreadsAndRethrows) {
  REQUIRE_MODELS();
  ModelOptions o;
  o.threads = 2;
  const Model m(*models() / "cnn.pt", o);
  std::mutex mutex;
  std::vector<int> seen;
  std::set<std::thread::id> ids;
  m.on_each_thread([&](int t, int threads) {
    const std::lock_guard<std::mutex> lock(mutex);
    EXPECT_EQ(threads, 2);
    seen.push_back(t);
    ids.insert(std::this_thread::get_id());
  });
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, (std::vector<int>{0, 1}));
  // The heatmap relies on this to read with both cores (the model's OpenMP team).
  EXPECT_EQ(ids.size(), 2u) << "both calls ran on one thread: built without OpenMP?";
  EXPECT_THROW(m.on_each_thread([](int t, int) {
    if (t == 1) throw RegionReadError("slide.tif", Region{0, 0, 0, 1, 1}, "test");
  }),
               RegionReadError);
  // The model still runs after that.
  const auto px = patches();
  EXPECT_EQ(m.predict(px.data(), 2).size(), 2u);
}

TEST(TorchModel, OutputShapeContradictingTheSidecarIsAClearError) {
  REQUIRE_MODELS();
  try {
    Model m(*models() / "wrong.pt");
    FAIL();
  } catch (const ModelError& e) {
    const std::string w = e.what();
    EXPECT_NE(w.find("returns shape [1, 10]"), std::string::npos) << w;
    EXPECT_NE(w.find("wrong.json"), std::string::npos) << w;
  }
}

TEST(Gradcam, MatchesTheAutogradReferenceWithin1e4) {
  REQUIRE_MODELS();
  const Model m(*models() / "cnn.pt");
  const auto px = patches();
  const int64_t n = 5;
  const GradcamBatch g = gradcam(m, px.data(), n);
  ASSERT_EQ(g.size, 96);
  ASSERT_EQ(g.cams.size(), static_cast<size_t>(n * 96 * 96));
  const std::string ref_bytes = test::slurp(*models() / "cnn.cam");
  ASSERT_EQ(ref_bytes.size(), g.cams.size() * sizeof(float));
  std::vector<float> ref(g.cams.size());
  std::memcpy(ref.data(), ref_bytes.data(), ref_bytes.size());
  double max_err = 0, max_ref = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    max_err = std::max(max_err, static_cast<double>(std::abs(ref[i] - g.cams[i])));
    max_ref = std::max(max_ref, static_cast<double>(std::abs(ref[i])));
  }
  ASSERT_GT(max_ref, 0.5);  // normalised maps peak near 1: the comparison is not vacuous
  EXPECT_LE(max_err / max_ref, 1e-4) << "max abs error " << max_err;
  // Its probabilities are predict()'s.
  const auto p = m.predict(px.data(), n);
  for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(g.probabilities[static_cast<size_t>(i)], p[static_cast<size_t>(i)], 1e-6);
  // Each patch's map is its own: computing one patch alone gives the same map.
  const GradcamBatch one = gradcam(m, px.data() + 3 * 96 * 96 * 3, 1);
  for (size_t i = 0; i < one.cams.size(); ++i) ASSERT_NEAR(one.cams[i], g.cams[3 * 96 * 96 + i], 1e-5);
}

// A caller that brings patches to the input size itself (the heatmap, reading a coarser level)
// gets what the model would compute from the full patches resized as its sidecar says.
TEST(TorchModel, PatchesGivenAtTheInputSizeAreOnlyNormalised) {
  REQUIRE_MODELS();
  const Model m(*models() / "cnn.pt");  // 96 px -> 32 px, nearest
  const auto px = patches();
  const int64_t n = 5, P = 96, S = 32;
  const auto nearest = [&](int64_t o) { return (2 * o + 1) * P / (2 * S); };  // floor((o + 0.5) P / S)
  std::vector<uint8_t> small(static_cast<size_t>(n * S * S * 3));
  for (int64_t k = 0; k < n; ++k)
    for (int64_t y = 0; y < S; ++y)
      for (int64_t x = 0; x < S; ++x) {
        const int64_t sy = nearest(y), sx = nearest(x);
        for (int64_t c = 0; c < 3; ++c)
          small[static_cast<size_t>(((k * S + y) * S + x) * 3 + c)] = px[static_cast<size_t>(((k * P + sy) * P + sx) * 3 + c)];
      }
  const auto want = m.predict(px.data(), n);
  const auto got = m.predict(small.data(), n, static_cast<int>(S));
  for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(got[static_cast<size_t>(i)], want[static_cast<size_t>(i)], 1e-6) << i;
  const GradcamBatch g = gradcam(m, small.data(), n, static_cast<int>(S));
  EXPECT_EQ(g.size, S);
  EXPECT_EQ(g.cams.size(), static_cast<size_t>(n * S * S));
  // Any other side is a caller's bug, not a guess.
  EXPECT_THROW((void)m.predict(small.data(), 1, 50), std::invalid_argument);
}

// The device's path (uint8 to the device, converted, resized and normalised by tensor operations
// there: what a GPU runs) gives the host path's (preprocess()) results within 1e-5, for every
// resize mode, channel order and side a caller may feed; and a Classifier slot gives predict()'s
// and gradcam()'s results. Run on the CPU, so CI checks the GPU's arithmetic without a GPU.
TEST(TorchModel, DeviceStagingGivesTheHostPathsProbabilitiesAndCamsWithin1e5) {
  REQUIRE_MODELS();
  const test::ScratchDir dir;
  const auto px = patches();
  const int64_t n = 5;
  struct Variant {
    const char* name;
    ResizeMode resize;
    int input;
    bool bgr;
  };
  for (const Variant v : {Variant{"nearest", ResizeMode::nearest, 32, false}, Variant{"bilinear", ResizeMode::bilinear, 40, true},
                          Variant{"area", ResizeMode::area, 36, false}, Variant{"area48", ResizeMode::area, 48, true}}) {
    SCOPED_TRACE(v.name);
    // cnn.pt (a tiny CNN with a Grad-CAM split; global pooling takes any input size) under another sidecar.
    ModelSpec spec = ModelSpec::parse(test::slurp(*models() / "cnn.json"), "cnn.json");
    spec.resize = v.resize;
    spec.input_size = v.input;
    spec.bgr = v.bgr;
    const fs::path pt = dir.path() / (std::string(v.name) + ".pt");
    fs::copy_file(*models() / "cnn.pt", pt);
    std::ofstream(sidecar_path(pt)) << spec.to_json();
    ModelOptions host_options, device_options;
    device_options.device_staging = true;
    const Model host(pt, host_options), device(pt, device_options);
    // Patches at patch_size (resized on the way) and, for the area models, already at input_size.
    std::vector<int> sides{0};
    if (v.resize == ResizeMode::area) sides.push_back(v.input);
    for (const int side : sides) {
      const int P = side ? side : 96;
      std::vector<uint8_t> in(px.begin(), px.begin() + n * P * P * 3);  // any pixels will do
      const auto want = host.predict(in.data(), n, side);
      const auto got = device.predict(in.data(), n, side);
      for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(got[size_t(i)], want[size_t(i)], 1e-5) << "side " << side << " patch " << i;
      const GradcamBatch gw = gradcam(host, in.data(), n, side), gg = gradcam(device, in.data(), n, side);
      ASSERT_EQ(gw.cams.size(), gg.cams.size());
      double err = 0;
      for (size_t i = 0; i < gw.cams.size(); ++i) err = std::max(err, double(std::abs(gw.cams[i] - gg.cams[i])));
      EXPECT_LE(err, 1e-5) << "side " << side;
      // Through a slot (the heatmap graph's way), twice, so that a reused slot is checked too.
      for (const Model* m : {&host, &device}) {
        const std::unique_ptr<BatchSlot> slot = m->make_slot(8, side, true);
        for (int round = 0; round < 2; ++round) {
          std::copy(in.begin(), in.end(), slot->pixels());
          slot->start(n - round);
          slot->finish();
          for (int64_t i = 0; i < n - round; ++i) {
            EXPECT_NEAR(slot->probabilities()[i], want[size_t(i)], 1e-5) << "slot patch " << i;
            EXPECT_NEAR(slot->cams()[i * P * P + P * P / 2], gw.cams[size_t(i * P * P + P * P / 2)], 1e-5);
          }
        }
        EXPECT_EQ(slot->timings().batches, 2);
        EXPECT_FALSE(m->asynchronous());  // a CPU computes in start()
      }
    }
  }
}

TEST(TorchModel, ResizeWeightsAreOneRowPerOutputSummingToOne) {
  for (const ResizeMode mode : {ResizeMode::nearest, ResizeMode::bilinear, ResizeMode::area}) {
    const std::vector<float> w = resize_weights(96, 36, mode);
    ASSERT_EQ(w.size(), 96u * 36u);
    for (int o = 0; o < 36; ++o) {
      double sum = 0;
      for (int i = 0; i < 96; ++i) sum += w[size_t(o * 96 + i)];
      EXPECT_NEAR(sum, 1.0, 1e-6) << o;
    }
  }
  // Nearest picks floor((o + 0.5) * 96 / 36): output 0 takes input 1.
  EXPECT_EQ(resize_weights(96, 36, ResizeMode::nearest)[1], 1.0f);
  EXPECT_THROW(resize_weights(96, 36, ResizeMode::none), std::invalid_argument);
}

TEST(Gradcam, ModelWithoutTheSplitSaysWhy) {
  REQUIRE_MODELS();
  const Model m(*models() / "nosplit.pt");
  const std::vector<uint8_t> px(96 * 96 * 3, 100);
  try {
    gradcam(m, px.data(), 1);
    FAIL();
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("Grad-CAM is unavailable"), std::string::npos) << e.what();
  }
}

TEST(TorchModel, NotTorchScriptAndMissingFilesAreClearErrors) {
  test::ScratchDir dir;
  std::ofstream(dir / "junk.pt") << "not a zip";
  std::ofstream(dir / "junk.json")
      << R"({"format": "wsi-heatmap-model/1", "patch_size": 96, "mpp": 0.972, "output": "logit"})";
  try {
    Model m(dir / "junk.pt");
    FAIL();
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("not a TorchScript file"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Model(dir / "absent.pt"), UsageError);
  std::ofstream(dir / "lonely.pt") << "x";
  EXPECT_THROW(Model(dir / "lonely.pt"), UsageError);  // no sidecar
}

TEST(TorchModel, RealPathmlFixtureLoadsAndWrongInputShapeSaysWhatToFix) {
  const fs::path pt = test::shared_testdata("models/pathml-fixtures/test.pt");
  if (!fs::exists(pt)) WSI_SKIP_MISSING() << "../shared/testdata-real is absent";
  test::ScratchDir dir;
  fs::copy_file(pt, dir / "simple.pt");
  // Linear(10 -> 1): it cannot take image patches, and the error must say so.
  std::ofstream(dir / "simple.json")
      << R"({"format": "wsi-heatmap-model/1", "patch_size": 96, "mpp": 0.972, "output": "logit"})";
  try {
    Model m(dir / "simple.pt");
    FAIL();
  } catch (const ModelError& e) {
    const std::string w = e.what();
    EXPECT_NE(w.find("forward() failed on a [1, 3, 96, 96] float32 input"), std::string::npos) << w;
    EXPECT_NE(w.find("input_size"), std::string::npos) << w;
    EXPECT_EQ(w.find('\n'), std::string::npos) << "one line, no backtrace: " << w;
  }
}

TEST(TorchModel, CudaOnACpuBuildSaysSo) {
  REQUIRE_MODELS();
  ModelOptions o;
  o.device = Device::cuda;
  const Model cpu(*models() / "cnn.pt");
  if (cpu.cuda_available()) GTEST_SKIP() << "this machine has CUDA";
  try {
    Model m(*models() / "cnn.pt", o);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("--device cpu"), std::string::npos) << e.what();
  }
}

TEST(EvaluateCli, RealKagglePatchesEvaluateEndToEnd) {
  REQUIRE_MODELS();
  const fs::path csv = test::shared_testdata("pcam/kaggle-train-tbayetird/mock_train_labels.csv");
  if (!fs::exists(csv)) WSI_SKIP_MISSING() << "../shared/testdata-real is absent";
  test::ScratchDir out;
  const auto r = test::run_wsi({"evaluate", csv.string(), "--model", (*models() / "cnn.pt").string(), "-o",
                                out.path().string(), "-q"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(test::slurp(out / "metrics.json"));
  const auto& c = j["confusion"];
  EXPECT_EQ(c["tn"].get<int>() + c["fp"].get<int>(), 10);  // the 15 real patches: 10 normal, 5 tumour
  EXPECT_EQ(c["fn"].get<int>() + c["tp"].get<int>(), 5);
  EXPECT_GE(j["auc"].get<double>(), 0.0);
  EXPECT_LE(j["auc"].get<double>(), 1.0);
  for (const char* f : {"report.txt", "predictions.csv", "roc.csv", "roc.svg", "top_losses.png"})
    EXPECT_TRUE(fs::exists(out / f)) << f;
  EXPECT_NE(test::slurp(out / "report.txt").find("weighted avg"), std::string::npos);
  EXPECT_TRUE(test::partial_files(out.path()).empty());
}

TEST(EvaluateCli, PcamSetMatchesPredictAndRejectsOtherPatchSizes) {
  REQUIRE_MODELS();
  test::ScratchDir dir;
  const auto px = patches();  // 5 patches of 96 x 96
  {
    auto w = make_pcam_writer(dir.path(), "t", "test", 96);
    for (int i = 0; i < 5; ++i) {
      PatchRecord rec;
      rec.rgb = px.data() + i * 96 * 96 * 3;
      rec.label = static_cast<uint8_t>(i % 2);
      rec.wsi = "synthetic";
      w->add(rec);
    }
    w->commit();
  }
  const auto r = test::run_wsi({"evaluate", (dir / "t_test_x.h5").string(), "--model",
                                (*models() / "cnn.pt").string(), "-o", (dir / "ev").string(), "-q", "--gallery", "0"});
  ASSERT_EQ(r.code, 0) << r.err;
  // predictions.csv holds exactly what predict() returns.
  const auto want = expected("cnn");
  std::istringstream in(test::slurp(dir / "ev" / "predictions.csv"));
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "id,label,probability");
  for (size_t i = 0; std::getline(in, line); ++i) {
    const double p = std::stod(line.substr(line.rfind(',') + 1));
    EXPECT_NEAR(p, want[i], 1e-5) << line;
  }
  // A model for other patch sizes is refused with both sizes named.
  std::ofstream(dir / "small.json") << R"({"format": "wsi-heatmap-model/1", "patch_size": 48, "mpp": 0.972,
      "input_size": 32, "resize": "nearest", "output": "logit"})";
  fs::copy_file(*models() / "cnn.pt", dir / "small.pt");
  const auto bad = test::run_wsi({"evaluate", (dir / "t_test_x.h5").string(), "--model", (dir / "small.pt").string(),
                                  "-o", (dir / "ev2").string(), "-q"});
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("expects patch_size 48"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace wsi

namespace wsi {
namespace {

TEST(ModelPrecision, Bf16OnCpuAgreesWithFp32AndFp16NeedsCuda) {
  REQUIRE_MODELS();
  const auto px = patches();
  const int64_t n = static_cast<int64_t>(px.size() / (96 * 96 * 3));
  ModelOptions o;
  o.threads = 2;
  const auto p32 = Model(*models() / "cnn.pt", o).predict(px.data(), n);
  o.precision = Precision::bf16;
  const Model bf(*models() / "cnn.pt", o);
  const auto p16 = bf.predict(px.data(), n);
  ASSERT_EQ(p16.size(), p32.size());
  for (size_t i = 0; i < p32.size(); ++i) EXPECT_NEAR(p16[i], p32[i], 0.03) << i;
  const GradcamBatch g = gradcam(bf, px.data(), n);
  EXPECT_EQ(g.cams.size(), static_cast<size_t>(n) * 96 * 96);
  o.precision = Precision::fp16;
  EXPECT_THROW(Model(*models() / "cnn.pt", o), UsageError);  // an option conflict: exit 2
  EXPECT_THROW(parse_precision("fp8"), UsageError);
}

}  // namespace
}  // namespace wsi
