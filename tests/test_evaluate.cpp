// evaluate_patches (evaluate.hpp) called directly: tests/make_test_models.py's darkness model
// (probability = sigmoid(20 (0.6 - mean intensity))) on PCam sets of uniform grey patches written
// by the test, so AUC, confusion matrix, the worst mistakes and every output are known by hand.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

#include "test_support.hpp"
#include "wsi/dataset.hpp"
#include "wsi/error.hpp"
#include "wsi/evaluate.hpp"
#include "wsi/image_io.hpp"

namespace wsi {
namespace {
namespace fs = std::filesystem;

// NAME_test_x.h5 of uniform grey `side` px patches, one per (grey, label).
fs::path grey_set(const fs::path& dir, const std::string& name, const std::vector<std::pair<int, int>>& patches,
                  int side = 96) {
  auto w = make_pcam_writer(dir, name, "test", side);
  std::vector<uint8_t> px(static_cast<size_t>(side * side * 3));
  for (const auto& [grey, label] : patches) {
    std::fill(px.begin(), px.end(), static_cast<uint8_t>(grey));
    PatchRecord r;
    r.rgb = px.data();
    r.label = static_cast<uint8_t>(label);
    r.wsi = name;
    w->add(r);
  }
  w->commit();
  return dir / (name + "_test_x.h5");
}

double darkness(int grey) { return 1 / (1 + std::exp(-20 * (0.6 - grey / 255.0))); }

// Dark is tumour to the model; grey 60 is labelled normal (a confident false positive) and 240
// tumour (a confident miss).
const std::vector<std::pair<int, int>> kMixed = {{20, 1}, {40, 1}, {60, 0}, {200, 0}, {220, 0}, {240, 1}};

// The darkness model on a grey set NAME in DIR/, writing to DIR/out.
PatchEvalOptions darkness_on(const test::ScratchDir& dir, const std::string& name,
                             const std::vector<std::pair<int, int>>& patches) {
  PatchEvalOptions o;
  o.data = grey_set(dir.path(), name, patches);
  o.model = *test::models_dir() / "darkness.pt";
  o.out = dir / "out";
  return o;
}

TEST(EvaluatePatches, DarknessOnGreyPatchesGivesHandComputedFiguresAndEveryOutput) {
  REQUIRE_MODELS();
  test::ScratchDir dir;
  PatchEvalOptions o = darkness_on(dir, "mixed", kMixed);
  o.batch = 4;
  o.gallery = 2;
  std::vector<std::pair<int64_t, int64_t>> progress;
  const PatchEvaluation e =
      evaluate_patches(o, {}, [&](int64_t done, int64_t total) { progress.emplace_back(done, total); });
  EXPECT_EQ(progress, (std::vector<std::pair<int64_t, int64_t>>{{4, 6}, {6, 6}}));
  EXPECT_EQ(e.patches, 6);
  EXPECT_EQ(e.model_name, "darkness");
  // Tumour {20, 40, 240} against normal {60, 200, 220}: darker is likelier, so 6 of 9 pairs.
  ASSERT_TRUE(e.auc);
  EXPECT_NEAR(*e.auc, 6.0 / 9.0, 1e-12);
  EXPECT_EQ(e.confusion.tp, 2);
  EXPECT_EQ(e.confusion.fp, 1);
  EXPECT_EQ(e.confusion.fn, 1);
  EXPECT_EQ(e.confusion.tn, 2);
  EXPECT_NEAR(e.report.accuracy, 4.0 / 6.0, 1e-12);
  EXPECT_NE(e.report_text.find("ROC AUC 0.6667\n"), std::string::npos) << e.report_text;
  EXPECT_EQ(test::slurp(o.out / "report.txt"), e.report_text);
  // predictions.csv: every patch in set order with its label and probability.
  std::istringstream csv(test::slurp(o.out / "predictions.csv"));
  std::string line;
  std::getline(csv, line);
  EXPECT_EQ(line, "id,label,probability");
  for (const auto& [grey, label] : kMixed) {
    ASSERT_TRUE(std::getline(csv, line));
    const size_t c1 = line.find(','), c2 = line.rfind(',');
    EXPECT_EQ(line.substr(c1 + 1, c2 - c1 - 1), std::to_string(label)) << line;
    EXPECT_NEAR(std::stod(line.substr(c2 + 1)), darkness(grey), 1e-5) << line;
  }
  for (const char* f : {"roc.csv", "roc.svg", "metrics.json"}) EXPECT_TRUE(fs::exists(o.out / f)) << f;
  // The two worst mistakes side by side with their Grad-CAM: one row of 4 cells of 2 x 96 + 4 px.
  EXPECT_TRUE(e.gallery);
  const RgbImage g = read_image(o.out / "top_losses.png");
  EXPECT_EQ(g.width, 4 * (2 * 96 + 4));
  EXPECT_EQ(g.height, 96 + 12);
  const auto j = nlohmann::json::parse(test::slurp(o.out / "metrics.json"));
  EXPECT_EQ(j["confusion"]["fp"], 1);
  EXPECT_EQ(j["gallery"], "top_losses.png (patch | Grad-CAM)");
  EXPECT_TRUE(test::partial_files(o.out).empty());
}

TEST(EvaluatePatches, FeatureMapsOfAModelWithoutAConvolutionGiveFeaturesGridsOnlyAndSayWhy) {
  REQUIRE_MODELS();
  test::ScratchDir dir;
  PatchEvalOptions o = darkness_on(dir, "mixed", kMixed);
  o.gallery = 0;
  o.feature_maps = 2;
  std::vector<fs::path> prepared;
  const PatchEvaluation e = evaluate_patches(o, [&](const fs::path& p) {
    prepared.push_back(p);
    fs::create_directories(p);
  });
  EXPECT_EQ(prepared, (std::vector<fs::path>{o.out, o.out / "feature_maps"}));
  EXPECT_FALSE(e.gallery);
  EXPECT_FALSE(fs::exists(o.out / "top_losses.png"));
  EXPECT_EQ(e.feature_map_patches, 2);
  EXPECT_FALSE(e.first_conv_unavailable.empty());  // darkness has no convolution
  EXPECT_TRUE(e.features_unavailable.empty());
  const auto j = nlohmann::json::parse(test::slurp(o.out / "metrics.json"));
  ASSERT_EQ(j["feature_maps"]["patches"].size(), 2u);
  for (const auto& p : j["feature_maps"]["patches"]) {
    ASSERT_EQ(p["files"].size(), 1u);
    EXPECT_TRUE(fs::exists(o.out / p["files"][0].get<std::string>())) << p;
  }
}

TEST(EvaluatePatches, OneClassSetHasNoAucAndNoRocFiles) {
  REQUIRE_MODELS();
  test::ScratchDir dir;
  PatchEvalOptions o = darkness_on(dir, "normal", {{30, 0}, {230, 0}});
  const PatchEvaluation e = evaluate_patches(o);
  EXPECT_FALSE(e.auc);
  EXPECT_EQ(e.confusion.fp, 1);
  EXPECT_NE(e.report_text.find("ROC AUC undefined: the set has only one class"), std::string::npos);
  EXPECT_FALSE(fs::exists(o.out / "roc.csv"));
  EXPECT_TRUE(nlohmann::json::parse(test::slurp(o.out / "metrics.json"))["auc"].is_null());
}

TEST(EvaluatePatches, BadOptionsAndAnotherPatchSizeAreRefusedBeforeTheOutputIsPrepared) {
  REQUIRE_MODELS();
  test::ScratchDir dir;
  const PatchEvalOptions good = darkness_on(dir, "mixed", kMixed);
  bool prepared = false;
  const auto refused = [&](const PatchEvalOptions& o) -> std::string {
    try {
      evaluate_patches(o, [&](const fs::path&) { prepared = true; });
    } catch (const Error& e) {
      return e.what();
    }
    return "(accepted)";
  };
  PatchEvalOptions o = good;
  o.batch = 0;
  EXPECT_EQ(refused(o), "--batch must be >= 1");
  o = good;
  o.threshold = -0.5;
  EXPECT_EQ(refused(o), "--threshold must be in 0..1");
  o = good;
  o.gallery = -1;
  EXPECT_EQ(refused(o), "--gallery must be 0 (none) or more, not -1");
  o = good;
  o.feature_maps = kMaxFeatureMaps + 1;
  EXPECT_EQ(refused(o), "--feature-maps must be 0 (none) to 256 patches, not 257");
  o = good;
  o.data = grey_set(dir.path(), "small", {{30, 0}, {230, 1}}, 64);
  EXPECT_EQ(refused(o), "PCam " + o.data.string() + " (2 patches of 64x64) has 64 px patches but " + o.model.string() +
                            " expects patch_size 96");
  EXPECT_FALSE(prepared);
  EXPECT_FALSE(fs::exists(good.out));
}

}  // namespace
}  // namespace wsi
