// feature_maps() (feature_maps.hpp) against PyTorch's own activations, on the built-in networks,
// and `evaluate --feature-maps`. References: tests/feature_maps_reference.py with Debian's
// python3-torch (and python3-torchvision for the ResNet-18 hook); skipped without them.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "model/nets.hpp"
#include "test_support.hpp"
#include "wsi/dataset.hpp"
#include "wsi/error.hpp"
#include "wsi/feature_maps.hpp"
#include "wsi/model.hpp"

namespace wsi {
namespace {

namespace fs = std::filesystem;

// Looked up, not imported (importing costs ~2 s per test process).
bool python_has_torchvision() {
  return std::system(
             "/usr/bin/python3 -c 'import importlib.util as u, sys; "
             "sys.exit(not (u.find_spec(\"torch\") and u.find_spec(\"torchvision\")))' "
             ">/dev/null 2>&1") == 0;
}

// Runs /usr/bin/python3 SCRIPT ARGS... (script relative to the source tree); stderr on failure.
test::CliResult run_python(const std::string& script, const std::vector<std::string>& args) {
  test::ScratchDir dir;
  std::string cmd = "/usr/bin/python3 ";
  cmd.append(test::shell_quote(std::string(WSI_SOURCE_DIR) + "/" + script));
  for (const auto& a : args) cmd.append(" ").append(test::shell_quote(a));
  cmd.append(" >").append(test::shell_quote((dir / "out").string()));
  cmd.append(" 2>").append(test::shell_quote((dir / "err").string())).append(" </dev/null");
  const int status = std::system(cmd.c_str());
  test::CliResult r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = test::slurp(dir / "out");
  r.err = test::slurp(dir / "err");
  return r;
}

std::vector<float> read_f32(const fs::path& p) {
  const std::string bytes = test::slurp(p);
  std::vector<float> v(bytes.size() / sizeof(float));
  std::memcpy(v.data(), bytes.data(), v.size() * sizeof(float));
  return v;
}

std::vector<uint8_t> read_u8(const fs::path& p) {
  const std::string bytes = test::slurp(p);
  return std::vector<uint8_t>(bytes.begin(), bytes.end());
}

// Every value within 1e-4 of the reference, relative to max(1, |reference|) (deep layers reach
// tens; float32 summation orders differ between LibTorch's channels-last and PyTorch's kernels).
void expect_close(const std::vector<float>& got, const std::vector<float>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double d = std::abs(double{got[i]} - want[i]) / std::max(1.0, std::abs(double{want[i]}));
    if (d > worst) worst = d, at = i;
  }
  EXPECT_LE(worst, 1e-4) << what << ": value " << at << " is " << got[at] << ", PyTorch says " << want[at];
}

TEST(FeatureMaps, FirstConvEqualsPyTorchHook) {
  if (!python_has_torchvision())
    WSI_SKIP_MISSING() << "/usr/bin/python3 with torch and torchvision is needed (Debian: python3-torchvision)";
  test::ScratchDir dir;
  const auto ref = run_python("tests/feature_maps_reference.py", {"resnet18", dir.path().string()});
  ASSERT_EQ(ref.code, 0) << ref.err;
  const auto exp = run_python("tools/export_model.py",
                              {"--arch", "resnet18", "--num-classes", "1", "--weights", (dir / "r18.pth").string(),
                               "--patch-size", "64", "--out", (dir / "r18.pt").string()});
  ASSERT_EQ(exp.code, 0) << exp.err;
  const Model m(dir / "r18.pt", {Device::cpu, 2});
  const auto px = read_u8(dir / "patches.u8");
  ASSERT_EQ(px.size(), 3u * 64 * 64 * 3);
  const FeatureMaps f = feature_maps(m, px.data(), 3);
  ASSERT_TRUE(f.first_conv) << f.first_conv_unavailable;
  // The hook's module (PyTorch's named_modules() order) is the one found in the TorchScript file.
  EXPECT_EQ(f.first_conv->name, test::slurp(dir / "conv.name"));
  EXPECT_EQ(f.first_conv->name, "conv1");
  EXPECT_EQ(f.first_conv->kind, "Conv2d output, before activation");
  EXPECT_EQ(f.first_conv->channels, 64);
  EXPECT_EQ(f.first_conv->height, 32);  // stride 2 at input 64
  EXPECT_EQ(f.first_conv->width, 32);
  EXPECT_EQ(f.first_conv->count(), 3);
  expect_close(f.first_conv->values, read_f32(dir / "conv.f32"), "conv1");
  // The Grad-CAM layer: export_model.py's features() ends with layer4.
  ASSERT_TRUE(f.features) << f.features_unavailable;
  EXPECT_EQ(f.features->name, "features");
  EXPECT_EQ(f.features->channels, 512);
  EXPECT_EQ(f.features->height, 2);
  expect_close(f.features->values, read_f32(dir / "features.f32"), "layer4");
}

TEST(FeatureMaps, FeaturesEqualTheGradcamLayer) {
  REQUIRE_MODELS();
  test::ScratchDir dir;
  const fs::path& models = *test::models_dir();
  const auto ref = run_python("tests/feature_maps_reference.py", {"cnn", models.string(), dir.path().string()});
  ASSERT_EQ(ref.code, 0) << ref.err;
  const Model m(models / "cnn.pt", {Device::cpu, 2});
  const auto px = read_u8(models / "patches.u8");
  const int64_t n = static_cast<int64_t>(px.size() / (96 * 96 * 3));
  const FeatureMaps f = feature_maps(m, px.data(), n);
  ASSERT_TRUE(f.features);
  EXPECT_EQ(f.features->name, "features");
  EXPECT_EQ(f.features->kind, "the Grad-CAM layer (features output)");
  EXPECT_EQ(f.features->channels, 16);
  EXPECT_EQ(f.features->height, 16);  // input 32, one 2x2 pooling
  expect_close(f.features->values, read_f32(dir / "features.f32"), "features");
  ASSERT_TRUE(f.first_conv);
  EXPECT_EQ(f.first_conv->name, "body.0");  // inside the Sequential, before its ReLU
  EXPECT_EQ(f.first_conv->channels, 8);
  expect_close(f.first_conv->values, read_f32(dir / "conv.f32"), "body.0");
  // One patch at a time gives the same maps (no batch effects), and patches already at the
  // network's input size are accepted as for predict().
  const FeatureMaps one = feature_maps(m, px.data() + 2 * 96 * 96 * 3, 1);
  const auto plane = static_cast<size_t>(16 * 16 * 16);
  for (size_t i = 0; i < plane; ++i) ASSERT_FLOAT_EQ(one.features->values[i], f.features->values[2 * plane + i]);
  EXPECT_THROW(feature_maps(m, px.data(), 1, 50), std::invalid_argument);
}

TEST(FeatureMaps, CountZeroChecksTheLayersAndGivesTheirSizes) {
  REQUIRE_MODELS();
  const Model m(*test::models_dir() / "cnn.pt");
  const FeatureMaps f = feature_maps(m, nullptr, 0);
  ASSERT_TRUE(f.first_conv && f.features);
  EXPECT_EQ(f.first_conv->channels, 8);
  EXPECT_EQ(f.first_conv->height, 32);
  EXPECT_EQ(f.features->channels, 16);
  EXPECT_TRUE(f.first_conv->values.empty());
  EXPECT_TRUE(f.features->values.empty());
}

TEST(FeatureMaps, ModelsWithOneLayerGiveItAndSayWhyNotTheOther) {
  REQUIRE_MODELS();
  const fs::path& models = *test::models_dir();
  const std::vector<uint8_t> grey(96 * 96 * 3, 90);
  // nosplit.pt: a Conv2d, no Grad-CAM split.
  const FeatureMaps a = feature_maps(Model(models / "nosplit.pt"), grey.data(), 1);
  ASSERT_TRUE(a.first_conv);
  EXPECT_EQ(a.first_conv->name, "conv");
  EXPECT_EQ(a.first_conv->channels, 1);
  EXPECT_EQ(a.first_conv->height, 94);  // 3x3, no padding
  EXPECT_FALSE(a.features);
  EXPECT_EQ(a.features_unavailable, "no Grad-CAM layer: its sidecar names no \"gradcam\" methods");
  // darkness.pt: a features method, no Conv2d.
  const FeatureMaps b = feature_maps(Model(models / "darkness.pt"), grey.data(), 1);
  EXPECT_FALSE(b.first_conv);
  EXPECT_EQ(b.first_conv_unavailable, "the TorchScript module has no Conv2d submodule");
  ASSERT_TRUE(b.features);
  EXPECT_EQ(b.features->channels, 1);
  EXPECT_NEAR(b.features->values[0], 0.6 - 90 / 255.0, 1e-6);  // its features: 0.6 - mean intensity
  // fails_on_dark.pt: neither.
  try {
    (void)feature_maps(Model(models / "fails_on_dark.pt"), grey.data(), 1);
    FAIL() << "no layer to show";
  } catch (const ModelError& e) {
    EXPECT_EQ(std::string(e.what()),
              (models / "fails_on_dark.pt").string() +
                  ": has no layer to show feature maps of: the TorchScript module has no Conv2d submodule, and its "
                  "sidecar names no \"gradcam\" features method (export the model with tools/export_model.py, "
                  "which adds one)");
  }
}

// A built-in network with random weights and batch-norm statistics, saved as `train` saves one.
fs::path save_builtin(const fs::path& dir, const std::string& arch, std::shared_ptr<detail::NetImpl>& net) {
  torch::manual_seed(7);
  ModelSpec spec;
  spec.name = arch;
  spec.patch_size = spec.input_size = 32;
  spec.architecture = ModelSpec::BuiltinNet{arch, 4, 1};
  net = detail::make_net(*spec.architecture);
  {
    torch::NoGradGuard no_grad;
    for (auto& b : net->named_buffers())
      if (b.key().find("running_mean") != std::string::npos)
        b.value().uniform_(-0.3, 0.3);
      else if (b.key().find("running_var") != std::string::npos)
        b.value().uniform_(0.5, 2.0);
    for (auto& p : net->named_parameters())
      if (p.key().find("bias") != std::string::npos) p.value().uniform_(-0.2, 0.2);
  }
  net->eval();
  const fs::path pt = dir / (arch + ".pt");
  detail::save_net(*net, pt);
  std::ofstream(dir / (arch + ".json")) << spec.to_json();
  return pt;
}

TEST(FeatureMaps, BuiltinNetworksGiveTheirFirstBlock) {
  test::ScratchDir dir;
  std::vector<uint8_t> px(2 * 32 * 32 * 3);
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>((i * 37 + i / 96 * 11) % 256);
  for (const std::string arch : {"cancernet", "resnet"}) {
    SCOPED_TRACE(arch);
    std::shared_ptr<detail::NetImpl> net;
    const Model m(save_builtin(dir.path(), arch, net), {Device::cpu, 2});
    const FeatureMaps f = feature_maps(m, px.data(), 2);
    ASSERT_TRUE(f.first_conv && f.features);

    // The reference, from the weights with plain functional calls (not NetImpl::first_layer()).
    torch::Tensor x = torch::empty({2, 3, 32, 32});
    preprocess(px.data(), 2, m.spec(), x.data_ptr<float>());
    torch::NoGradGuard no_grad;
    const auto p = net->named_parameters();
    const auto b = net->named_buffers();
    torch::Tensor want;
    if (arch == "cancernet") {
      EXPECT_EQ(f.first_conv->name, "s0c0");
      EXPECT_EQ(f.first_conv->kind, "separable conv + ReLU, before batch norm");
      const torch::Tensor dw = torch::conv2d(x, p["s0c0.dw.weight"], {}, 1, 1, 1, /*groups=*/3);
      want = torch::relu(torch::conv2d(dw, p["s0c0.pw.weight"], p["s0c0.pw.bias"]));
    } else {
      EXPECT_EQ(f.first_conv->name, "stem");
      EXPECT_EQ(f.first_conv->kind, "conv + batch norm + ReLU");
      const torch::Tensor c = torch::conv2d(x, p["stem.weight"], {}, 2, 1);
      want = torch::relu(torch::batch_norm(c, p["stembn.weight"], p["stembn.bias"], b["stembn.running_mean"],
                                           b["stembn.running_var"], false, 0.1, 1e-5, false));
    }
    EXPECT_EQ(f.first_conv->channels, 4);
    EXPECT_EQ(f.first_conv->height, arch == "cancernet" ? 32 : 16);
    want = want.contiguous();
    expect_close(f.first_conv->values,
                 std::vector<float>(want.data_ptr<float>(), want.data_ptr<float>() + want.numel()),
                 arch + " first block");
    const torch::Tensor a = net->features(x).contiguous();
    EXPECT_EQ(f.features->channels, a.size(1));
    expect_close(f.features->values, std::vector<float>(a.data_ptr<float>(), a.data_ptr<float>() + a.numel()),
                 arch + " features");
  }
}

// ---- evaluate --feature-maps ----

// The 5 patches of make_test_models.py as a PCam set, labels 0 1 0 1 0.
fs::path pcam_of_test_patches(const fs::path& dir) {
  const auto px = read_u8(*test::models_dir() / "patches.u8");
  auto w = make_pcam_writer(dir, "t", "test", 96);
  for (int i = 0; i < 5; ++i) {
    PatchRecord rec;
    rec.rgb = px.data() + i * 96 * 96 * 3;
    rec.label = static_cast<uint8_t>(i % 2);
    rec.wsi = "synthetic";
    w->add(rec);
  }
  w->commit();
  return dir / "t_test_x.h5";
}

// Width and height from a PNG's IHDR chunk; {0, 0} when the file is not a PNG.
std::pair<uint32_t, uint32_t> png_size(const fs::path& p) {
  const std::string b = test::slurp(p);
  if (b.size() < 24 || b.compare(0, 8, "\x89PNG\r\n\x1a\n") != 0) return {0, 0};
  const auto be = [&](size_t at) {
    return (uint32_t{static_cast<uint8_t>(b[at])} << 24) | (uint32_t{static_cast<uint8_t>(b[at + 1])} << 16) |
           (uint32_t{static_cast<uint8_t>(b[at + 2])} << 8) | uint32_t{static_cast<uint8_t>(b[at + 3])};
  };
  return {be(16), be(20)};
}

TEST(EvaluateCli, FeatureMapsWritesOnePngPairPerChosenPatch) {
  REQUIRE_MODELS();
  test::ScratchDir dir;
  const fs::path set = pcam_of_test_patches(dir.path());
  const fs::path model = *test::models_dir() / "cnn.pt";
  const auto r = test::run_wsi({"evaluate", set.string(), "--model", model.string(), "-o", (dir / "ev").string(), "-q",
                                "--gallery", "0", "--feature-maps", "3"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("feature_maps/ (3 patches)"), std::string::npos) << r.out;

  // The chosen patches: choose_feature_map_patches() on the predictions, by id.
  const Model m(model);
  const auto px = read_u8(*test::models_dir() / "patches.u8");
  const auto prob = m.predict(px.data(), 5);
  const std::vector<int> labels = {0, 1, 0, 1, 0};
  const auto chosen = choose_feature_map_patches(prob, labels, 3);
  ASSERT_EQ(chosen.size(), 3u);
  std::set<std::string> want_files;
  const auto j = nlohmann::json::parse(test::slurp(dir / "ev" / "metrics.json"))["feature_maps"];
  EXPECT_EQ(j["first_conv"]["layer"], "body.0");
  EXPECT_EQ(j["features"]["channels"], 16);
  ASSERT_EQ(j["patches"].size(), 3u);
  for (size_t k = 0; k < chosen.size(); ++k) {
    const int64_t i = chosen[k];
    const std::string stem = "t_test_x.h5_" + std::to_string(i);
    EXPECT_EQ(j["patches"][k]["id"], "t_test_x.h5#" + std::to_string(i));
    EXPECT_EQ(j["patches"][k]["label"], labels[static_cast<size_t>(i)]);
    // Each PNG has the size of the grid the library renders for that patch and layer.
    const FeatureMaps f = feature_maps(m, px.data() + i * 96 * 96 * 3, 1);
    std::ostringstream p;
    p << std::fixed << std::setprecision(3) << prob[static_cast<size_t>(i)];
    const std::vector<std::string> caption = {
        "patch t_test_x.h5#" + std::to_string(i),
        std::string("label ") + (labels[static_cast<size_t>(i)] ? "tumour" : "normal") + ", p(tumour) " + p.str()};
    for (const auto& [layer, suffix] :
         {std::pair{&*f.first_conv, ".conv1.png"}, std::pair{&*f.features, ".features.png"}}) {
      const RgbImage grid = render_feature_grid(px.data() + i * 96 * 96 * 3, 96, *layer, 0, caption);
      const auto [w, h] = png_size(dir / "ev" / "feature_maps" / (stem + suffix));
      EXPECT_EQ(w, grid.width) << stem << suffix;
      EXPECT_EQ(h, grid.height) << stem << suffix;
      want_files.insert(stem + suffix);
    }
  }
  std::set<std::string> files;
  for (const auto& e : fs::directory_iterator(dir / "ev" / "feature_maps")) files.insert(e.path().filename().string());
  EXPECT_EQ(files, want_files);
  EXPECT_TRUE(test::partial_files(dir.path()).empty());

  // More than the set holds: all of it, said on stdout.
  const auto all = test::run_wsi({"evaluate", set.string(), "--model", model.string(), "-o", (dir / "all").string(),
                                  "-q", "--gallery", "0", "--feature-maps", "9"});
  ASSERT_EQ(all.code, 0) << all.err;
  EXPECT_NE(all.out.find("feature maps: the set has 5 patches, fewer than --feature-maps 9; showing all"),
            std::string::npos)
      << all.out;
  EXPECT_EQ(std::distance(fs::directory_iterator(dir / "all" / "feature_maps"), fs::directory_iterator()), 10);
}

TEST(EvaluateCli, FeatureMapsWithoutAGradcamSplitShowTheFirstConvOnly) {
  REQUIRE_MODELS();
  test::ScratchDir dir;
  const fs::path set = pcam_of_test_patches(dir.path());
  const fs::path models = *test::models_dir();
  const auto r = test::run_wsi({"evaluate", set.string(), "--model", (models / "nosplit.pt").string(), "-o",
                                (dir / "ev").string(), "-q", "--gallery", "0", "--feature-maps", "2"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("feature maps: no features grids: no Grad-CAM layer: its sidecar names no \"gradcam\" methods"),
            std::string::npos)
      << r.out;
  int conv = 0, other = 0;
  for (const auto& e : fs::directory_iterator(dir / "ev" / "feature_maps")) {
    const std::string name = e.path().filename().string();
    (name.size() > 10 && name.compare(name.size() - 10, 10, ".conv1.png") == 0 ? conv : other)++;
  }
  EXPECT_EQ(conv, 2);
  EXPECT_EQ(other, 0);
  // A model with neither layer is refused before anything is written.
  const auto bad = test::run_wsi({"evaluate", set.string(), "--model", (models / "fails_on_dark.pt").string(), "-o",
                                  (dir / "bad").string(), "-q", "--feature-maps", "2"});
  EXPECT_EQ(bad.code, 1);
  EXPECT_EQ(bad.err, "wsi-heatmap: error: " + (models / "fails_on_dark.pt").string() +
                         ": has no layer to show feature maps of: the TorchScript module has no Conv2d submodule, and "
                         "its sidecar names no \"gradcam\" features method (export the model with "
                         "tools/export_model.py, which adds one)\n");
  EXPECT_FALSE(fs::exists(dir / "bad"));
}

}  // namespace
}  // namespace wsi
