// The model sidecar contract and preprocessing, against hand-computed values.
#include <gtest/gtest.h>

#include <cmath>

#include "test_support.hpp"
#include "wsi/error.hpp"
#include "wsi/model.hpp"

namespace wsi {
namespace {

const char* kMinimal = R"({"format": "wsi-heatmap-model/1", "patch_size": 96, "mpp": 0.972, "output": "logit"})";

TEST(ModelSidecar, MinimalSidecarGetsDocumentedDefaults) {
  const ModelSpec s = ModelSpec::parse(kMinimal, "m.json");
  EXPECT_EQ(s.input_size, 96);
  EXPECT_EQ(s.resize, ResizeMode::none);
  EXPECT_DOUBLE_EQ(s.scale, 1.0 / 255.0);
  EXPECT_EQ(s.output, OutputKind::logit);
  EXPECT_TRUE(s.features_method.empty());  // no "gradcam" key: no Grad-CAM split
}

TEST(ModelSidecar, RoundTripsThroughJson) {
  ModelSpec s;
  s.name = "kaggle-cnn";
  s.input_size = 32;
  s.resize = ResizeMode::nearest;
  s.mean = {0.7, 0.5, 0.6};
  s.std = {0.2, 0.25, 0.3};
  s.bgr = true;
  s.output = OutputKind::softmax;
  s.positive_index = 1;
  const ModelSpec t = ModelSpec::parse(s.to_json(), "x.json");
  EXPECT_EQ(t.to_json(), s.to_json());
  EXPECT_EQ(t.features_method, "features");
  EXPECT_TRUE(t.bgr);
}

TEST(ModelSidecar, EveryErrorNamesTheKeyAndTheFix) {
  struct Case {
    const char* json;
    const char* message;
  };
  const Case cases[] = {
      {"[1, 2]", "must be a JSON object"},
      {"{", "is not valid JSON"},
      {R"({"patch_size": 96, "mpp": 1, "output": "logit"})", "\"format\" must be \"wsi-heatmap-model/1\""},
      {R"({"format": "wsi-heatmap-model/1", "mpp": 1, "output": "logit"})", "missing required key \"patch_size\""},
      {R"({"format": "wsi-heatmap-model/1", "patch_size": 96, "mpp": 1, "output": "logit", "men": [0,0,0]})",
       "unknown key \"men\""},
      {R"({"format": "wsi-heatmap-model/1", "patch_size": "96", "mpp": 1, "output": "logit"})",
       "\"patch_size\" must be an integer, not string"},
      {R"({"format": "wsi-heatmap-model/1", "patch_size": 96, "mpp": 1, "output": "logits"})",
       "\"output\" must be logit"},
      {R"({"format": "wsi-heatmap-model/1", "patch_size": 96, "mpp": 1, "output": "logit", "mean": [0, 0]})",
       "\"mean\" must be an array of 3 numbers"},
      {R"({"format": "wsi-heatmap-model/1", "patch_size": 96, "mpp": 1, "output": "logit", "input_size": 32})",
       "resize is \"none\""},
      {R"({"format": "wsi-heatmap-model/1", "patch_size": 96, "mpp": 1, "output": "logit", "std": [1, 0, 1]})",
       "std value must be positive"},
      {R"({"format": "wsi-heatmap-model/1", "patch_size": 96, "mpp": 1, "output": "logit", "positive_index": 1})",
       "only applies to \"output\": \"softmax\""},
      {R"({"format": "wsi-heatmap-model/1", "patch_size": 96, "mpp": 1, "output": "logit", "resize": "cubic"})",
       "\"resize\" must be none, nearest, bilinear or area"},
      {R"({"format": "wsi-heatmap-model/1", "patch_size": 96, "mpp": 1, "output": "logit", "channel_order": "rgb"})",
       "\"channel_order\" must be RGB or BGR"},
      {R"({"format": "wsi-heatmap-model/1", "patch_size": 96, "mpp": 1, "output": "logit", "gradcam": {"features": "f"}})",
       "needs both"},
      {R"({"format": "wsi-heatmap-model/1", "patch_size": 96, "mpp": 1, "output": "logit", "gradcam": {"feature": "f"}})",
       "unknown key \"gradcam.feature\""},
      {R"({"format": "wsi-heatmap-model/1", "patch_size": 96, "mpp": -1, "output": "logit"})", "mpp must be a positive"},
      // A resize to no size was taken as patch_size, silently (issue 20).
      {R"({"format": "wsi-heatmap-model/1", "patch_size": 224, "mpp": 1, "output": "logit", "resize": "area"})",
       "\"resize\": \"area\" needs \"input_size\", the network's input side in pixels"},
  };
  for (const Case& c : cases) {
    try {
      ModelSpec::parse(c.json, "models/m.json");
      ADD_FAILURE() << "accepted: " << c.json;
    } catch (const ConfigError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(c.message), std::string::npos) << "got: " << what;
      EXPECT_NE(what.find("m.json"), std::string::npos) << "no file in: " << what;
    }
  }
}

// Found by tests/fuzz (model_spec): nlohmann reports a number beyond double as out_of_range, not
// as a parse_error, and it escaped the family of errors.
TEST(ModelSidecar, NumberBeyondDoubleIsConfigError) {
  try {
    ModelSpec::parse(R"({"format": "wsi-heatmap-model/1", "patch_size": 96, "mpp": 1e999, "output": "logit"})",
                     "models/m.json");
    FAIL() << "accepted";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()),
              "model sidecar models/m.json is not valid JSON: number overflow parsing '1e999'");
  }
}

// Caught by fuzz_model_spec's check that an accepted integer keeps its value (on a hand-made
// seed; the mutations did not reach it): 2^32 + 96 was read as patch_size 96.
TEST(ModelSidecar, IntegersBeyondIntAreOutOfRangeNotWrapped) {
  const auto message = [](const std::string& key_value) {
    try {
      ModelSpec::parse(R"({"format": "wsi-heatmap-model/1", "mpp": 1, "output": "softmax", )" + key_value + "}",
                       "models/m.json");
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("(accepted)");
  };
  EXPECT_EQ(message(R"("patch_size": 4294967392)"),
            "model sidecar models/m.json: patch_size must be in 8..4096");
  EXPECT_EQ(message(R"("patch_size": -4294967200)"),
            "model sidecar models/m.json: patch_size must be in 8..4096");
  EXPECT_EQ(message(R"("patch_size": 96, "positive_index": 18446744073709551615)"),
            "model sidecar models/m.json: positive_index must be a class index >= 0");
}

// Dumping "training" recursed once per level: a deep enough file overflowed the stack. Found while
// writing the fuzz targets (issue 20), on inputs larger than their 8 KB.
TEST(ModelSidecar, JsonNestedTooDeepIsConfigErrorNotAStackOverflow) {
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  try {
    ModelSpec::parse(R"({"format": "wsi-heatmap-model/1", "patch_size": 96, "mpp": 1, "output": "logit", )"
                     R"("training": {"curve": )" + deep + "}}", "models/m.json");
    FAIL() << "accepted";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), "model sidecar models/m.json: JSON nested more than 512 levels deep (arrays and objects)");
  }
}

TEST(ModelSidecar, MissingSidecarSaysWhatToWrite) {
  test::ScratchDir dir;
  try {
    ModelSpec::load_sidecar(dir / "net.pt");
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("net.json"), std::string::npos) << e.what();
  }
  std::ofstream(dir / "net.json") << kMinimal;
  EXPECT_EQ(ModelSpec::load_sidecar(dir / "net.pt").patch_size, 96);
}

// A P x P patch whose red channel is the pixel index (mod 256), green = 10, blue = 200.
std::vector<uint8_t> ramp(int p) {
  std::vector<uint8_t> v(static_cast<size_t>(p * p * 3));
  for (int i = 0; i < p * p; ++i) {
    v[static_cast<size_t>(i * 3)] = static_cast<uint8_t>(i % 256);
    v[static_cast<size_t>(i * 3 + 1)] = 10;
    v[static_cast<size_t>(i * 3 + 2)] = 200;
  }
  return v;
}

ModelSpec spec(int patch, int input, ResizeMode r) {
  ModelSpec s;
  s.patch_size = patch;
  s.input_size = input;
  s.resize = r;
  s.scale = 1.0;
  return s;
}

TEST(Preprocess, NearestTakesPilCentresAndOutputIsNchw) {
  // 96 -> 32: output pixel o takes source floor((o + 0.5) * 3) = 3o + 1 (PIL NEAREST).
  const auto px = ramp(96);
  std::vector<float> out(3 * 32 * 32);
  preprocess(px.data(), 1, spec(96, 32, ResizeMode::nearest), out.data());
  EXPECT_FLOAT_EQ(out[0], static_cast<float>((1 * 96 + 1) % 256));                 // R at (0, 0)
  EXPECT_FLOAT_EQ(out[5 * 32 + 7], static_cast<float>((16 * 96 + 22) % 256));      // R at x=7, y=5
  EXPECT_FLOAT_EQ(out[32 * 32 + 3], 10.0f);                                        // G plane
  EXPECT_FLOAT_EQ(out[2 * 32 * 32 + 3], 200.0f);                                   // B plane
}

TEST(Preprocess, BilinearHalvingAveragesPairsAndAreaIsCoverageWeighted) {
  // 4 x 4 with red = index: bilinear 4 -> 2 samples at source 0.5 and 2.5.
  const auto px = ramp(4);
  std::vector<float> out(3 * 2 * 2);
  preprocess(px.data(), 1, spec(4, 2, ResizeMode::bilinear), out.data());
  EXPECT_FLOAT_EQ(out[0], (0 + 1 + 4 + 5) / 4.0f);
  EXPECT_FLOAT_EQ(out[3], (10 + 11 + 14 + 15) / 4.0f);
  // 3 -> 2 area: output 0 covers source [0, 1.5): weights 2/3, 1/3.
  const auto p3 = ramp(3);
  preprocess(p3.data(), 1, spec(3, 2, ResizeMode::area), out.data());
  const float row0 = (0 * 2.0f + 1 * 1.0f) / 3.0f, row1 = (3 * 2.0f + 4 * 1.0f) / 3.0f;
  EXPECT_NEAR(out[0], (row0 * 2 + row1 * 1) / 3.0f, 1e-5);
}

TEST(Preprocess, ScaleMeanStdAndBgrAreApplied) {
  const auto px = ramp(8);
  ModelSpec s = spec(8, 8, ResizeMode::none);
  s.scale = 1.0 / 255.0;
  s.mean = {0.5, 0.25, 0.75};
  s.std = {0.5, 0.25, 0.125};
  std::vector<float> out(3 * 64);
  preprocess(px.data(), 1, s, out.data());
  EXPECT_NEAR(out[9], (9 / 255.0 - 0.5) / 0.5, 1e-6);
  EXPECT_NEAR(out[64 + 9], (10 / 255.0 - 0.25) / 0.25, 1e-6);
  EXPECT_NEAR(out[128 + 9], (200 / 255.0 - 0.75) / 0.125, 1e-5);
  s.bgr = true;
  preprocess(px.data(), 1, s, out.data());
  EXPECT_NEAR(out[9], (200 / 255.0 - 0.5) / 0.5, 1e-5);  // channel 0 is now blue
  EXPECT_NEAR(out[128 + 9], (9 / 255.0 - 0.75) / 0.125, 1e-5);
}

TEST(Preprocess, BatchesAreIndependent) {
  auto two = ramp(8);
  const auto second = std::vector<uint8_t>(two.size(), 77);
  two.insert(two.end(), second.begin(), second.end());
  std::vector<float> out(2 * 3 * 16);
  preprocess(two.data(), 2, spec(8, 4, ResizeMode::area), out.data());
  for (int i = 0; i < 3 * 16; ++i) EXPECT_FLOAT_EQ(out[static_cast<size_t>(3 * 16 + i)], 77.0f);
}

}  // namespace
}  // namespace wsi
