// wsi/model.hpp — the model contract: a TorchScript file plus a JSON sidecar.
//
// A model is `NAME.pt` (TorchScript) with `NAME.json` beside it. The sidecar says what the network
// expects and returns, so wsi-heatmap can feed any PyTorch-trained patch classifier correctly:
//
//   {
//     "format": "wsi-heatmap-model/1",
//     "name": "demo-cnn", "description": "...",
//     "patch_size": 96,            // slide pixels per patch side, at `mpp`
//     "mpp": 0.972,                // µm per pixel the model was trained at
//     "input_size": 32,            // network input side after the resize
//     "resize": "nearest",         // none | nearest | bilinear | area (patch_size -> input_size)
//     "scale": 0.00392156862745098,// pixel value multiplier (1/255)
//     "mean": [0, 0, 0], "std": [1, 1, 1],  // after scaling: (x * scale - mean) / std
//     "channel_order": "RGB",      // RGB | BGR
//     "output": "logit",           // logit (1 value, sigmoid) | probability (1 value) |
//                                  // softmax (2+ logits, softmax, take positive_index)
//     "positive_index": 1,         // only for softmax
//     "gradcam": {"features": "features", "classify": "classify"}  // exported methods, optional
//   }
//
// Unknown keys, wrong types and out-of-range values are errors that name the key and say what is
// allowed (a typo such as "men" must not silently mean "no normalisation").
//
// Frames and units: patches are RGB uint8, row-major HWC (like wsi::RgbImage); network inputs
// are float32 NCHW. Thread-safety: ModelSpec and preprocess() are pure values/functions.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace wsi {

enum class ResizeMode { none, nearest, bilinear, area };
enum class OutputKind { logit, probability, softmax };

struct ModelSpec {
  std::string name = "model";
  std::string description;
  int patch_size = 96;
  double mpp = 0.972;
  int input_size = 96;
  ResizeMode resize = ResizeMode::none;
  double scale = 1.0 / 255.0;
  std::array<double, 3> mean{0, 0, 0};
  std::array<double, 3> std{1, 1, 1};
  bool bgr = false;
  OutputKind output = OutputKind::logit;
  int positive_index = 1;
  std::string features_method = "features";  // empty: no Grad-CAM split
  std::string classify_method = "classify";

  // Throws ConfigError naming the problem (e.g. input_size != patch_size with resize "none").
  void validate() const;
  // Parses sidecar JSON text; `source` is used in messages. Throws ConfigError.
  static ModelSpec parse(const std::string& json_text, const std::filesystem::path& source);
  // Reads `<model>.json` beside `model_path` (NAME.pt -> NAME.json). Throws UsageError when the
  // sidecar is missing (with what to write), ConfigError when it is invalid.
  static ModelSpec load_sidecar(const std::filesystem::path& model_path);
  std::string to_json() const;  // the sidecar text, round-trips through parse()
};

std::filesystem::path sidecar_path(const std::filesystem::path& model_path);

// Converts `count` patches (patch_size² RGB uint8 HWC each, back to back) into the network
// input: float32 NCHW, count x 3 x input_size x input_size, resized as the spec says, channel
// order applied, then (x * scale - mean[c]) / std[c]. `out` must hold that many floats.
//   nearest:  source pixel floor((i + 0.5) * patch / input) — PIL's NEAREST, which Keras'
//             flow_from_dataframe(target_size) uses;
//   bilinear: half-pixel centres, edge clamped (PyTorch align_corners=false, no antialias);
//   area:     coverage-weighted mean (exact for any ratio).
void preprocess(const uint8_t* patches, int64_t count, const ModelSpec& spec, float* out);

}  // namespace wsi
