// tools/export_model.py: torchvision classifiers exported into the model contract load with
// wsi::Model, predict and explain with wsi::gradcam; its errors are one line with exit code 2.
// Skipped unless /usr/bin/python3 has torch and torchvision (Debian: python3-torchvision).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "test_support.hpp"
#include "wsi/error.hpp"
#include "wsi/gradcam.hpp"
#include "wsi/model.hpp"
#include "wsi/train.hpp"

namespace wsi {
namespace {

namespace fs = std::filesystem;

// Whether /usr/bin/python3 has torch and torchvision. Looked up, not imported: importing them takes
// ~2 s per test process, and a broken install should fail the export tests with the script's
// message rather than skip them.
bool python_has_torchvision() {
  return std::system("/usr/bin/python3 -c 'import importlib.util as u, sys; "
                     "sys.exit(not (u.find_spec(\"torch\") and u.find_spec(\"torchvision\")))' "
                     ">/dev/null 2>&1") == 0;
}

#define REQUIRE_TORCHVISION()                                                                   \
  if (!python_has_torchvision())                                                               \
    WSI_SKIP_MISSING() << "/usr/bin/python3 with torch and torchvision is needed (Debian: python3-torch " \
                    "python3-torchvision)";

// Runs tools/export_model.py with `args` (each shell-quoted), stdout/stderr captured.
test::CliResult run_export(const std::vector<std::string>& args) {
  test::ScratchDir dir;
  std::string cmd = "/usr/bin/python3 ";
  cmd.append(test::shell_quote(std::string(WSI_SOURCE_DIR) + "/tools/export_model.py"));
  for (const auto& a : args) cmd.append(" ").append(test::shell_quote(a));
  cmd.append(" >").append(test::shell_quote((dir / "out").string()));
  cmd.append(" 2>").append(test::shell_quote((dir / "err").string())).append(" </dev/null");
  const int status = std::system(cmd.c_str());
  test::CliResult r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.signalled = WIFSIGNALED(status);
  r.out = test::slurp(dir / "out");
  r.err = test::slurp(dir / "err");
  return r;
}

// `n` 96 x 96 RGB patches with structure (a dark blob on a pinkish, noisy background).
std::vector<uint8_t> patches(int n) {
  std::vector<uint8_t> px(static_cast<size_t>(n) * 96 * 96 * 3);
  uint32_t s = 12345;
  for (int k = 0; k < n; ++k)
    for (int y = 0; y < 96; ++y)
      for (int x = 0; x < 96; ++x) {
        s = s * 1664525u + 1013904223u;
        const int noise = static_cast<int>(s >> 27);  // 0..31
        const int dx = x - 20 - 15 * k, dy = y - 30 - 10 * k;
        const bool blob = dx * dx + dy * dy < 300;
        uint8_t* p = &px[((static_cast<size_t>(k) * 96 + y) * 96 + x) * 3];
        p[0] = static_cast<uint8_t>(blob ? 60 + noise : 220 - noise);
        p[1] = static_cast<uint8_t>(blob ? 30 + noise : 160 - noise);
        p[2] = static_cast<uint8_t>(blob ? 120 + noise : 200 - noise);
      }
  return px;
}

void expect_predicts_and_explains(const Model& m) {
  const int n = 4;
  const auto px = patches(n);
  const auto p = m.predict(px.data(), n);
  ASSERT_EQ(p.size(), static_cast<size_t>(n));
  for (float v : p) {
    EXPECT_TRUE(std::isfinite(v));
    EXPECT_GE(v, 0.0f);
    EXPECT_LE(v, 1.0f);
  }
  ASSERT_TRUE(m.has_gradcam()) << m.gradcam_unavailable_reason();
  const GradcamBatch g = gradcam(m, px.data(), n);
  ASSERT_EQ(g.size, 96);
  ASSERT_EQ(g.cams.size(), static_cast<size_t>(n) * 96 * 96);
  float peak = 0;
  for (float v : g.cams) {
    ASSERT_TRUE(std::isfinite(v));
    ASSERT_GE(v, 0.0f);
    ASSERT_LE(v, 1.0f + 1e-6f);
    peak = std::max(peak, v);
  }
  EXPECT_GT(peak, 0.5f) << "each non-zero map is normalised to peak near 1";
  for (int i = 0; i < n; ++i) EXPECT_NEAR(g.probabilities[static_cast<size_t>(i)], p[static_cast<size_t>(i)], 1e-5);
}

TEST(ExportModel, Resnet18LogitLoadsPredictsAndExplains) {
  REQUIRE_TORCHVISION();
  test::ScratchDir dir;
  const auto r = run_export({"--arch", "resnet18", "--num-classes", "1", "--seed", "1", "--patch-size", "96",
                             "--input-size", "96", "--mpp", "0.5", "--out", (dir / "r18.pt").string()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("exported resnet18"), std::string::npos) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << "one-line summary: " << r.out;
  EXPECT_TRUE(test::partial_files(dir.path()).empty());
  const Model m(dir / "r18.pt");
  EXPECT_EQ(m.spec().name, "r18");
  EXPECT_EQ(m.spec().output, OutputKind::logit);
  EXPECT_DOUBLE_EQ(m.spec().mpp, 0.5);
  EXPECT_DOUBLE_EQ(m.spec().mean[0], 0.485);  // ImageNet statistics by default
  EXPECT_DOUBLE_EQ(m.spec().std[2], 0.225);
  EXPECT_NEAR(m.spec().scale, 1.0 / 255.0, 1e-12);
  expect_predicts_and_explains(m);
}

TEST(ExportModel, MobilenetV2SoftmaxLoadsPredictsAndExplains) {
  REQUIRE_TORCHVISION();
  test::ScratchDir dir;
  const auto r = run_export({"--arch", "mobilenet_v2", "--num-classes", "2", "--seed", "2", "--name", "mnv2",
                             "--out", (dir / "m.pt").string()});
  ASSERT_EQ(r.code, 0) << r.err;
  const Model m(dir / "m.pt");
  EXPECT_EQ(m.spec().name, "mnv2");
  EXPECT_EQ(m.spec().output, OutputKind::softmax);
  EXPECT_EQ(m.spec().positive_index, 1);
  expect_predicts_and_explains(m);
}

TEST(ExportModel, BadWeightsFileIsExit2NamingTheFile) {
  REQUIRE_TORCHVISION();
  test::ScratchDir dir;
  const std::string bad = (dir / "my weights.pth").string();
  std::ofstream(bad) << "not a checkpoint";
  const std::string out = (dir / "x.pt").string();
  for (const std::string& w : {bad, (dir / "absent.pth").string()}) {
    const auto r = run_export({"--arch", "resnet18", "--weights", w, "--out", out});
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_NE(r.err.find(w), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line, no traceback: " << r.err;
    EXPECT_EQ(r.err.find("Traceback"), std::string::npos) << r.err;
  }
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(dir / "x.json"));
  EXPECT_TRUE(test::partial_files(dir.path()).empty());
}

// The head `train --init --freeze features` trains on an export: what classify() uses beyond
// features() (found in the TorchScript graphs).
InitSummary head_of(const fs::path& model) {
  TrainOptions o;
  o.init = model;
  o.freeze = "features";
  o.threads = 2;
  return inspect_init(o);
}

// A DenseNet ImageNet file as torchvision's downloads are: tensors named 'norm.1' for 'norm1', no
// batch-norm step counters (made here from torchvision's own densenet169 at 1000 classes, random
// weights).
TEST(ExportModel, Densenet169WithImagenetStyleWeightsLoadsPredictsExplainsAndHasAHeadToFineTune) {
  REQUIRE_TORCHVISION();
  test::ScratchDir dir;
  const fs::path pth = dir / "densenet169-imagenet.pth";
  const std::string make =
      "/usr/bin/python3 -c 'import re, sys, torch, torchvision; torch.manual_seed(5); "
      "sd = torchvision.models.densenet169(num_classes=1000).state_dict(); "
      "old = lambda k: re.sub(r\"(denselayer\\d+\\.(norm|relu|conv))([12])\\.\", r\"\\1.\\3.\", k); "
      "torch.save({old(k): v for k, v in sd.items() if not k.endswith(\"num_batches_tracked\")}, sys.argv[1]); "
      "assert any(\".norm.1.\" in old(k) for k in sd)' " +
      test::shell_quote(pth.string());
  ASSERT_EQ(std::system(make.c_str()), 0);
  const auto r = run_export({"--arch", "densenet169", "--weights", pth.string(), "--seed", "3", "--out",
                             (dir / "d169.pt").string()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "export_model.py: head: 1000 ImageNet classes replaced by a new 1-logit layer\n");
  const Model m(dir / "d169.pt");
  EXPECT_EQ(m.spec().output, OutputKind::logit);
  expect_predicts_and_explains(m);
  const InitSummary s = head_of(dir / "d169.pt");
  EXPECT_EQ(s.head, std::vector<std::string>{"classifier"});
  EXPECT_EQ(s.head_parameters, 1664 + 1);
}

// A torchvision ImageNet state_dict (here torchvision's own resnet18 at 1000 classes with random
// weights, saved as the downloads are) keeps every backbone tensor and gets a new head.
TEST(ExportModel, ImagenetStateDictKeepsEveryBackboneTensorAndGetsANewHead) {
  REQUIRE_TORCHVISION();
  test::ScratchDir dir;
  const fs::path py = dir / "check.py", pth = dir / "resnet18-imagenet.pth", out_txt = dir / "check.txt";
  std::ofstream(py) << R"(import sys, torch, torchvision
mode, pth = sys.argv[1], sys.argv[2]
if mode == "make":
    torch.manual_seed(11)
    sd = torchvision.models.resnet18(num_classes=1000).state_dict()
    torch.save(sd, pth)
    del sd["layer4.1.bn2.running_var"]
    torch.save(sd, pth.replace(".pth", "-short.pth"))
else:
    sd = torch.load(pth)
    ts = torch.jit.load(sys.argv[3]).state_dict()
    backbone = [k for k in sd if not k.startswith("fc.")]
    same = sum(1 for k in backbone if k in ts and torch.equal(ts[k], sd[k]))
    print(f"{same} of {len(backbone)} backbone tensors equal; head {list(ts['fc.weight'].shape)} "
          f"{list(ts['fc.bias'].shape)}; file head {list(sd['fc.weight'].shape)}")
)";
  const auto python = [&](const std::string& args) {
    const std::string cmd = "/usr/bin/python3 " + test::shell_quote(py.string()) + " " + args + " >" +
                            test::shell_quote(out_txt.string()) + " 2>&1";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << test::slurp(out_txt);
    return test::slurp(out_txt);
  };
  (void)python("make " + test::shell_quote(pth.string()));
  const auto r = run_export({"--arch", "resnet18", "--weights", pth.string(), "--num-classes", "1", "--seed", "2",
                             "--out", (dir / "r18.pt").string()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "export_model.py: head: 1000 ImageNet classes replaced by a new 1-logit layer\n");
  EXPECT_EQ(python("check " + test::shell_quote(pth.string()) + " " + test::shell_quote((dir / "r18.pt").string())),
            "120 of 120 backbone tensors equal; head [1, 512] [1]; file head [1000, 512]\n");
  const Model m(dir / "r18.pt");
  EXPECT_EQ(m.spec().output, OutputKind::logit);
  EXPECT_DOUBLE_EQ(m.spec().mean[0], 0.485);  // ImageNet statistics stay the default
  expect_predicts_and_explains(m);
  EXPECT_EQ(head_of(dir / "r18.pt").head, std::vector<std::string>{"fc"});

  // A file that fits neither the whole model nor its backbone stays an error.
  const std::string shorter = (dir / "resnet18-imagenet-short.pth").string();
  const auto bad = run_export({"--arch", "resnet18", "--weights", shorter, "--out", (dir / "bad.pt").string()});
  EXPECT_EQ(bad.code, 2) << bad.err;
  EXPECT_EQ(bad.err, "export_model.py: error: --weights " + shorter +
                         ": does not fit torchvision resnet18 with 1 output(s): shape mismatch fc.weight [1000, 512] in "
                         "file vs [1, 512] in model, fc.bias [1000] in file vs [1] in model; 1 missing keys: "
                         "layer4.1.bn2.running_var (check --arch/--module and --num-classes)\n");
  EXPECT_FALSE(fs::exists(dir / "bad.pt"));
}

// Option errors are found before torch is imported: only python3 is needed.
TEST(ExportModel, UsageErrorsAreOneLineExit2) {
  if (!fs::exists("/usr/bin/python3")) WSI_SKIP_MISSING() << "/usr/bin/python3 is absent";
  test::ScratchDir dir;
  const std::string out = (dir / "x.pt").string();
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--arch", "vgg16", "--out", out}, "invalid choice: 'vgg16'"},
      {{"--arch", "resnet18", "--input-size", "64", "--out", out}, "--resize"},
      {{"--arch", "resnet18", "--mean", "0.5,0.5", "--out", out}, "--mean"},
      {{"--arch", "resnet18", "--out", (dir / "x.pth").string()}, "NAME.pt"},
      {{"--arch", "resnet18", "--positive-index", "1", "--out", out}, "softmax"},
      {{"--module", "no-colon", "--out", out}, "FILE.py:NAME"},
      {{"--arch", "resnet18"}, "--out"},
  };
  for (const auto& [args, want] : cases) {
    const auto r = run_export(args);
    EXPECT_EQ(r.code, 2) << want << ": " << r.err;
    EXPECT_NE(r.err.find(want), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  EXPECT_TRUE(fs::is_empty(dir.path()));
}

}  // namespace
}  // namespace wsi
