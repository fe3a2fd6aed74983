// Model: TorchScript through LibTorch. The only translation unit of the model stage that includes
// LibTorch (a TU with torch headers costs ~15 s and 1.2 GB to compile here).
#include <ATen/Parallel.h>
#include <torch/script.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/version.h>

#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <set>
#include <sstream>
#include <thread>
#include <tuple>

#include "wsi/error.hpp"
#include "wsi/gradcam.hpp"
#include "wsi/model.hpp"
#include "model/nets.hpp"

#if __has_include(<torch/cuda.h>)
#include <torch/cuda.h>
#define WSI_HAVE_TORCH_CUDA_H 1
#endif

namespace wsi {
namespace fs = std::filesystem;

namespace {

// c10::Error messages carry a C++ backtrace after the first line, and TorchScript interpreter
// errors a TorchScript traceback before the Python-style "RuntimeError: ..." line; users need
// that one line.
std::string first_line(const std::string& s) {
  const auto at = s.rfind("Error: ");
  const std::string tail = at == std::string::npos ? s : s.substr(s.rfind('\n', at) + 1);
  const auto nl = tail.find('\n');
  return nl == std::string::npos ? tail : tail.substr(0, nl);
}

std::string shape_of(const torch::Tensor& t) {
  std::ostringstream s;
  s << "[";
  for (int64_t i = 0; i < t.dim(); ++i) s << (i ? ", " : "") << t.size(i);
  s << "]";
  return s.str();
}

// Converts 4-D weights to NHWC in place, so convolutions see matching layouts.
template <typename Params>
void to_channels_last(Params&& params) {
  torch::NoGradGuard no_grad;
  for (auto p : params)
    if (p.dim() == 4) p.set_data(p.contiguous(torch::MemoryFormat::ChannelsLast));
}

bool torch_cuda_available() {
#ifdef WSI_HAVE_TORCH_CUDA_H
  return torch::cuda::is_available();
#else
  return false;
#endif
}

}  // namespace

Precision parse_precision(const std::string& s) {
  if (s == "fp32") return Precision::fp32;
  if (s == "bf16") return Precision::bf16;
  if (s == "fp16") return Precision::fp16;
  throw UsageError("unknown precision '" + s + "': use fp32, bf16 or fp16");
}

Device parse_device(const std::string& s) {
  if (s == "cpu") return Device::cpu;
  if (s == "cuda") return Device::cuda;
  throw UsageError("unknown device '" + s + "': use cpu or cuda");
}

struct Model::Impl {
  fs::path path;
  ModelSpec spec;
  mutable torch::jit::Module module;          // TorchScript models
  std::shared_ptr<detail::NetImpl> net;      // built-in networks (sidecar "architecture")
  torch::Device device{torch::kCPU};
  torch::ScalarType dtype = torch::kFloat32;
  bool channels_last = true;
  bool gradcam = false;
  std::string gradcam_reason;
  mutable std::set<std::tuple<int64_t, int, bool>> warmed;  // warm_up()'s shapes: warm_key()
  // Side 0 means patch_size (as for predict()): one shape, one key.
  std::tuple<int64_t, int, bool> warm_key(int64_t batch, int side, bool with_gradcam) const {
    return {batch, side > 0 ? side : spec.patch_size, with_gradcam};
  }

  // The preprocessed batch as a tensor on the model's device (owns its memory).
  torch::Tensor input(const uint8_t* patches, int64_t count, int side) const {
    const int64_t S = spec.input_size;
    // On a GPU the batch is staged in pinned host memory so the copy can run asynchronously.
    const auto options = torch::TensorOptions().dtype(torch::kFloat32).pinned_memory(device != torch::kCPU);
    torch::Tensor x = torch::empty({count, 3, S, S}, options);
    preprocess(patches, count, spec, x.data_ptr<float>(), side);
    if (device != torch::kCPU || dtype != torch::kFloat32) x = x.to(device, dtype, /*non_blocking=*/true);
    // oneDNN's convolutions run up to 2x faster on NHWC (see MACHINE-NOTES); same values.
    return channels_last ? x.contiguous(torch::MemoryFormat::ChannelsLast) : x;
  }

  // Calls `method` and returns its tensor result; failures become a ModelError that says what to fix.
  torch::Tensor call(const std::string& method, const torch::Tensor& x) const {
    torch::jit::IValue out;
    try {
      if (net) {
        if (method == spec.features_method) return net->features(x);
        if (method == spec.classify_method) return net->classify(x);
        return net->forward(x);
      }
      out = module.get_method(method)({x});
    } catch (const std::exception& e) {  // c10::Error, or torch::jit::JITException
      std::ostringstream m;
      m << method << "() failed on a " << shape_of(x) << " float32 input";
      if (method == "forward") m << " (NCHW, input_size from its sidecar)";
      m << ": " << first_line(e.what()) << ". Check input_size, patch_size and resize in "
        << sidecar_path(path).string();
      throw ModelError(path, m.str());
    }
    if (!out.isTensor())
      throw ModelError(path, method + "() returns a " + out.tagKind() + ", not a tensor");
    return out.toTensor();
  }

  // Runs the network on `count` patches and turns its output into probabilities.
  std::vector<float> run(const uint8_t* patches, int64_t count, int side = 0) const {
    c10::InferenceMode guard;
    const torch::Tensor logits = call("forward", input(patches, count, side));
    const torch::Tensor p = probabilities(logits, count).contiguous();
    return std::vector<float>(p.data_ptr<float>(), p.data_ptr<float>() + count);
  }

  // The positive-class score Grad-CAM differentiates (same shape checks as probabilities()).
  torch::Tensor score(const torch::Tensor& out, int64_t count) const {
    (void)probabilities(out.detach(), count);  // validates the shape
    if (spec.output == OutputKind::softmax) return out.select(1, spec.positive_index);
    return out.reshape({count});
  }

  torch::Tensor probabilities(const torch::Tensor& out, int64_t count) const {
    torch::Tensor t = out.to(torch::kCPU).to(torch::kFloat32);
    torch::Tensor p;
    const auto bad = [&](const std::string& expected) {
      std::ostringstream m;
      m << "forward() returns shape " << shape_of(t) << " for " << count << " patches, but its sidecar says \"output\": \""
        << (spec.output == OutputKind::logit ? "logit" : spec.output == OutputKind::probability ? "probability" : "softmax")
        << "\", which needs " << expected << ". Fix \"output\" in " << sidecar_path(path).string();
      throw ModelError(path, m.str());
    };
    if (spec.output == OutputKind::softmax) {
      if (t.dim() != 2 || t.size(0) != count || t.size(1) < 2) bad("[N, K] logits with K >= 2");
      if (spec.positive_index >= t.size(1))
        bad("positive_index " + std::to_string(spec.positive_index) + " < K");
      p = t.softmax(1).select(1, spec.positive_index);
    } else {
      if (t.numel() != count || (t.dim() > 0 && t.size(0) != count)) bad("one value per patch ([N] or [N, 1])");
      p = t.reshape({count});
      if (spec.output == OutputKind::logit) p = p.sigmoid();
    }
    return p;
  }
};

Model::Model(const fs::path& path, const ModelOptions& options) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.path = path;
  if (!fs::is_regular_file(path)) throw UsageError(path.string() + ": no such model file");
  m.spec = ModelSpec::load_sidecar(path);
  if (options.device == Device::cuda) {
    if (!torch_cuda_available())
      throw ConfigError(std::string("--device cuda: this build's LibTorch ") + TORCH_VERSION +
                        " has no CUDA support or no GPU is visible; use --device cpu");
    m.device = torch::Device(torch::kCUDA);
  }
  const int threads = options.threads > 0 ? options.threads
                                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(threads);
  m.channels_last = options.channels_last;
  if (options.precision == Precision::fp16 && options.device != Device::cuda)
    throw ConfigError("--precision fp16 needs --device cuda; on a CPU use bf16");
  m.dtype = options.precision == Precision::bf16 ? torch::kBFloat16
            : options.precision == Precision::fp16 ? torch::kFloat16 : torch::kFloat32;
  if (m.spec.architecture) {
    m.net = detail::make_net(*m.spec.architecture);
    detail::load_net(*m.net, path, m.device);
    m.net->eval();
    m.net->to(m.dtype);
    if (m.channels_last) to_channels_last(m.net->parameters());
    m.spec.features_method = "features";  // built-ins always have the split
    m.spec.classify_method = "classify";
    m.gradcam = true;
  } else {
    try {
      m.module = torch::jit::load(path.string(), m.device);
    } catch (const c10::Error& e) {
      throw ModelError(path, "not a TorchScript file LibTorch " + std::string(TORCH_VERSION) + " can load (" +
                                 first_line(e.what()) + "); save it with torch.jit.script(model).save(...)");
    }
    m.module.eval();
    if (m.dtype != torch::kFloat32) m.module.to(m.dtype);
    if (m.channels_last) to_channels_last(m.module.parameters());
  }
  if (m.net) {
    // built-ins: set above
  } else if (m.spec.features_method.empty()) {
    m.gradcam_reason = "its sidecar names no \"gradcam\" methods";
  } else if (!m.module.find_method(m.spec.features_method) || !m.module.find_method(m.spec.classify_method)) {
    m.gradcam_reason = "the TorchScript module does not export the methods '" + m.spec.features_method + "' and '" +
                       m.spec.classify_method +
                       "' its sidecar names (export them with @torch.jit.export; tools/export_model.py does this)";
  } else {
    m.gradcam = true;
  }
  // The contract check: one patch of mid-grey through the whole path.
  const std::vector<uint8_t> grey(static_cast<size_t>(m.spec.patch_size) * static_cast<size_t>(m.spec.patch_size) * 3,
                                  128);
  (void)m.run(grey.data(), 1);
}

Model::~Model() = default;
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;

const ModelSpec& Model::spec() const { return impl_->spec; }
const fs::path& Model::path() const { return impl_->path; }
std::vector<float> Model::predict(const uint8_t* patches, int64_t count, int side) const {
  if (count <= 0) return {};
  return impl_->run(patches, count, side);
}
void Model::warm_up(int64_t batch, int side, bool with_gradcam) const {
  const auto key = impl_->warm_key(batch, side, with_gradcam);
  if (batch <= 0 || impl_->warmed.count(key)) return;
  const int s = std::get<1>(key);
  const std::vector<uint8_t> grey(static_cast<size_t>(batch) * static_cast<size_t>(s) * static_cast<size_t>(s) * 3,
                                  128);
  // Twice: the heap still grows during the second batch of a shape (the demo model's first three
  // batches of 64 fault in ~14k, ~7k and ~4.6k pages; later ones only when the heap grows again).
  for (int i = 0; i < 2; ++i) {
    if (with_gradcam)
      (void)gradcam(*this, grey.data(), batch, side);
    else
      (void)predict(grey.data(), batch, side);
  }
  impl_->warmed.insert(key);  // only once it worked
}
bool Model::warmed_up(int64_t batch, int side, bool with_gradcam) const {
  return impl_->warmed.count(impl_->warm_key(batch, side, with_gradcam)) > 0;
}
void Model::on_each_thread(const std::function<void(int, int)>& fn) const {
  const int threads = std::max(1, at::get_num_threads());
  at::parallel_for(0, threads, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) fn(static_cast<int>(t), threads);
  });
}
bool Model::has_gradcam() const { return impl_->gradcam; }
const std::string& Model::gradcam_unavailable_reason() const { return impl_->gradcam_reason; }
bool Model::cuda_available() const { return torch_cuda_available(); }
Device Model::device() const { return impl_->device.is_cuda() ? Device::cuda : Device::cpu; }
double Model::gflops_per_patch() const {
  return impl_->net ? 2.0 * impl_->net->macs(impl_->spec.input_size) / 1e9 : 0.0;
}

GradcamBatch gradcam(const Model& model, const uint8_t* patches, int64_t count, int side) {
  const Model::Impl& m = *model.impl_;
  if (!m.gradcam) throw ModelError(m.path, "Grad-CAM is unavailable: " + m.gradcam_reason);
  GradcamBatch out;
  const int64_t P = side == 0 ? m.spec.patch_size : side;
  out.size = static_cast<int>(P);
  if (count <= 0) return out;
  const torch::Tensor x = m.input(patches, count, side);
  torch::Tensor a;
  {
    torch::NoGradGuard no_grad;  // the feature extractor needs no graph
    a = m.call(m.spec.features_method, x);
  }
  if (a.dim() != 4)
    throw ModelError(m.path, m.spec.features_method + "() must return N x C x H x W activations, not " + shape_of(a));
  a = a.detach().requires_grad_(true);
  const torch::Tensor logits = m.call(m.spec.classify_method, a);
  const torch::Tensor s = m.score(logits, count);
  // Each patch's score depends only on its own activations, so one gradient of the sum gives
  // every patch's gradient at once; only with respect to A, not the parameters.
  const torch::Tensor g = torch::autograd::grad({s.sum()}, {a})[0];
  torch::Tensor cam;
  {
    torch::NoGradGuard no_grad;
    // In float32 whatever the model's precision (bf16 would quantise the normalised map).
    const torch::Tensor w = g.to(torch::kFloat32).mean({2, 3}, /*keepdim=*/true);
    cam = (w * a.detach().to(torch::kFloat32)).sum(1).relu();      // N x H x W
    const torch::Tensor peak = cam.amax({1, 2}, /*keepdim=*/true);
    cam = torch::where(peak > 0, cam / peak.clamp_min(1e-30), cam);
    // An explicit IntArrayRef: LibTorch 2.x adds an OptionalIntArrayRef overload that makes a
    // braced {P, P} ambiguous.
    const std::vector<int64_t> size{P, P};
    cam = at::upsample_bilinear2d(cam.unsqueeze(1), c10::IntArrayRef(size), /*align_corners=*/false).squeeze(1);
    cam = cam.to(torch::kCPU).to(torch::kFloat32).contiguous();
    const torch::Tensor p = m.probabilities(logits.detach(), count).contiguous();
    out.probabilities.assign(p.data_ptr<float>(), p.data_ptr<float>() + count);
  }
  out.cams.assign(cam.data_ptr<float>(), cam.data_ptr<float>() + cam.numel());
  return out;
}

}  // namespace wsi
