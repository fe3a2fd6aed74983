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
//     "input_size": 32,            // network input side after the resize (default: patch_size)
//     "resize": "nearest",         // none | nearest | bilinear | area (patch_size -> input_size)
//     "scale": 0.00392156862745098,// pixel value multiplier (1/255)
//     "mean": [0, 0, 0], "std": [1, 1, 1],  // after scaling: (x * scale - mean) / std
//     "channel_order": "RGB",      // RGB | BGR
//     "output": "logit",           // logit (1 value, sigmoid) | probability (1 value) |
//                                  // softmax (2+ logits, softmax, take positive_index)
//     "positive_index": 1,         // only for softmax
//     "gradcam": {"features": "features", "classify": "classify"}, // exported methods, optional;
//                                  // naming methods the module lacks is an error
//     "architecture": {"name": "cancernet", "width": 32, "blocks": 1}, // built-in networks only
//     "training": {...}            // recipe and metrics written by `train`; kept, not interpreted
//   }
//
// Built-in networks (`wsi-heatmap train --arch cancernet|resnet`) are saved as LibTorch's native
// parameter archive instead of TorchScript; "architecture" tells the loader which torch::nn
// network to rebuild before reading the weights. Everything else in the contract is the same,
// and Model treats both kinds alike (they always export features/classify).
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
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "wsi/classifier.hpp"

namespace wsi {

enum class ResizeMode { none, nearest, bilinear, area };
enum class OutputKind { logit, probability, softmax };
const char* resize_mode_name(ResizeMode mode);  // "none" | "nearest" | "bilinear" | "area", as in the sidecar

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
  struct BuiltinNet {
    std::string name;  // "cancernet" | "resnet"
    int width = 32;    // channels of the first stage (later stages double it)
    int blocks = 1;    // residual blocks per stage (resnet only)
  };
  std::optional<BuiltinNet> architecture;  // set: a built-in network in native format
  std::string training_json;                // the "training" object, verbatim (may be empty)

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
// `side` is the pixel side of the given patches: 0 or patch_size (resized as above), or
// input_size (already at the network's resolution, e.g. read from a coarser pyramid level; only
// channel order and normalisation are applied). Any other side is a std::invalid_argument.
void preprocess(const uint8_t* patches, int64_t count, const ModelSpec& spec, float* out, int side = 0);

// preprocess()'s resize along one axis as a dense matrix: `out` rows of `in` weights (row-major),
// row o holding the weight of each input sample in output sample o. A patch resizes as
// W · X · Wᵀ per channel, which is how a device resizes a whole batch (two matrix products).
// `mode` none needs in == out (the identity).
std::vector<float> resize_weights(int in, int out, ResizeMode mode);
// The same resize as sparse taps: for each output sample, its (input index, weight) pairs (an
// image's rows and columns resize with these without a dense in x out matrix).
std::vector<std::vector<std::pair<int, float>>> resize_taps(int in, int out, ResizeMode mode);

// ---- Running a model (library wsi::torch; this header includes no LibTorch) ----

enum class Device { cpu, cuda };
Device parse_device(const std::string& s);  // "cpu" | "cuda"; throws UsageError

// Arithmetic of the forward pass. bf16 roughly doubles CPU throughput where the CPU has
// AVX512-BF16 (see MACHINE-NOTES) at ~1e-2 relative error in the logits; fp16 needs CUDA.
enum class Precision { fp32, bf16, fp16 };
Precision parse_precision(const std::string& s);  // "fp32" | "bf16" | "fp16"; throws UsageError

struct ModelOptions {
  Device device = Device::cpu;
  int threads = 0;  // intra-op threads; 0 = one per core (LibTorch's default here is 1); resolve_threads
  bool channels_last = true;  // NHWC weights and inputs (faster with oneDNN; same results)
  Precision precision = Precision::fp32;
  // Batches go to the model's device as uint8 NHWC and are converted, resized and normalised
  // there by tensor operations (always so on CUDA). On a CPU the default converts them with
  // preprocess() instead; this runs the device's path on the CPU, so that tests and benchmarks
  // check it against preprocess() without a GPU.
  bool device_staging = false;
};

// A loaded model: TorchScript module + sidecar. Loading checks the contract by running one
// patch of zeros: a forward that fails or an output shape that contradicts the sidecar is a
// ModelError saying what to fix. Thread-safety: predict() may be called from one thread at a
// time (a pipeline's serial inference stage); the module is shared, not copied.
//
// As a Classifier (classifier.hpp) it runs a graph's batches through slots. On CUDA a slot holds
// pinned host buffers and device buffers; start() queues the copy in on an upload stream, the
// conversion, resize, normalisation, forward pass (and Grad-CAM) on a compute stream, and the
// copy of the results back on a download stream, ordered by CUDA events, and returns; finish()
// waits on the last event. Batch k + 1's copy in, batch k's compute and batch k - 1's copy back
// then overlap. On CUDA a slot always computes full batches (the rows past `count` are ignored),
// so cuDNN's benchmark mode tunes one shape per run. On a CPU start() computes.
class Model final : public Classifier {
 public:
  // Throws UsageError (file or sidecar missing), ConfigError (bad sidecar), ModelError.
  explicit Model(const std::filesystem::path& path, const ModelOptions& options = {});
  ~Model() override;
  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const ModelSpec& spec() const override;
  const std::filesystem::path& path() const;
  // Classifier: slots for the heatmap graph (see above).
  std::unique_ptr<BatchSlot> make_slot(int64_t capacity, int side, bool with_gradcam) const override;
  bool asynchronous() const override;  // true on CUDA
  std::string device_name() const override;  // "cpu", or "cuda:0 (NVIDIA H200)"
  Precision precision() const;
  // Tumour probabilities (0..1) of `count` patches (side² RGB HWC uint8 each). `side` as for
  // preprocess(): 0 or spec().patch_size, or spec().input_size for patches the caller already
  // brought to the network's resolution (the heatmap reads them from the pyramid level closest
  // to it, which decodes up to 4x fewer pixels than reading at patch_size and resizing here).
  std::vector<float> predict(const uint8_t* patches, int64_t count, int side = 0) const;
  // Runs `batch` patches of mid-grey (side as for predict()) through predict(), or through
  // gradcam() when `with_gradcam`, unless this Model already ran that (batch, side, path): the
  // first batches of a new shape pay for growing the heap (page faults on fresh pages). Measured:
  // the demo model's first two batches of 64 took 45 and 37 ms against 22 steady, ResNet50's
  // 800 ms against 600. A pipeline calls it before its timed part, as bench_inference warms up
  // before timing. Same thread rule as predict(); throws what predict() and gradcam() throw.
  void warm_up(int64_t batch, int side, bool with_gradcam) const;
  // Whether warm_up() ran for that shape (side 0 and spec().patch_size are the same shape).
  bool warmed_up(int64_t batch, int side, bool with_gradcam) const;
  // Runs fn(thread, threads) once on each CPU thread the model's inference uses (LibTorch's
  // intra-op threads, ModelOptions::threads; `thread` in [0, threads)) and returns when all are
  // done; rethrows the first exception one threw. Called from the thread that runs predict(), it
  // uses the same OpenMP team: CPU work between batches (the heatmap's reading) then takes the
  // model's cores without a second set of threads competing with the team's spinning workers.
  // fn must not call predict() or on_each_thread(). Same thread rule as predict().
  void on_each_thread(const std::function<void(int thread, int threads)>& fn) const override;
  // Whether the TorchScript module exports the sidecar's features/classify methods; when not,
  // gradcam_unavailable_reason() says why in one sentence.
  bool has_gradcam() const;
  const std::string& gradcam_unavailable_reason() const;
  bool cuda_available() const;  // of this build and machine
  Device device() const;        // where it runs (ModelOptions::device)
  // Floating-point operations (2 x multiply-accumulates) of one patch's forward pass, for
  // reporting the fraction of the machine's speed reached; 0 when unknown (TorchScript models).
  double gflops_per_patch() const;

 private:
  friend class TorchSlot;
  friend struct ModelInternals;  // the torch library's other files (feature_maps.cpp, gradcam.cpp)
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace wsi
