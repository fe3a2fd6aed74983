// Model: TorchScript through LibTorch. The only translation unit of the model stage that includes
// LibTorch (a TU with torch headers costs ~15 s and 1.2 GB to compile here).
#include <ATen/Parallel.h>
#include <torch/script.h>
#include <torch/version.h>

#include <ATen/Context.h>
#include <c10/core/Event.h>
#include <c10/core/InferenceMode.h>
#include <c10/core/Stream.h>
#include <c10/core/StreamGuard.h>
#include <c10/core/impl/VirtualGuardImpl.h>
#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <thread>
#include <tuple>

#include "wsi/runtime.hpp"
#include "wsi/classifier.hpp"
#include "wsi/error.hpp"
#include "wsi/gradcam.hpp"
#include "wsi/model.hpp"
#include "gradcam/gradcam_maps.hpp"
#include "model/model_internals.hpp"
#include "model/nets.hpp"
#include "model/torch_messages.hpp"

#if __has_include(<torch/cuda.h>)
#include <torch/cuda.h>
#define WSI_HAVE_TORCH_CUDA_H 1
#endif

namespace wsi {
namespace fs = std::filesystem;

namespace {

using detail::shape_of;

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

// The GPU's marketing name through the CUDA driver API (libcuda.so.1 is where any CUDA
// LibTorch runs; looked up at run time so that the CPU build links no CUDA library).
std::string cuda_device_name(int ordinal) {
  void* lib = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_NOLOAD);
  if (!lib) lib = dlopen("libcuda.so.1", RTLD_LAZY);
  if (!lib) return "";
  using Init = int (*)(unsigned);
  using Get = int (*)(int*, int);
  using Name = int (*)(char*, int, int);
  const auto init = reinterpret_cast<Init>(dlsym(lib, "cuInit"));
  const auto get = reinterpret_cast<Get>(dlsym(lib, "cuDeviceGet"));
  const auto name = reinterpret_cast<Name>(dlsym(lib, "cuDeviceGetName"));
  char buf[256] = {};
  int dev = 0;
  if (!init || !get || !name || init(0) != 0 || get(&dev, ordinal) != 0 || name(buf, sizeof buf - 1, dev) != 0) return "";
  return buf;
}

// Host waits for an event, and device time between two events. c10::Event has synchronize()
// and elapsedTime() in LibTorch 2.x; Debian's 1.13 has neither (and no GPU to wait for).
template <typename E>
void wait_for(const E& e) {
  if constexpr (requires { e.synchronize(); }) {
    e.synchronize();
  } else {
    while (!e.query()) std::this_thread::yield();
  }
}
template <typename E>
double elapsed_seconds(const E& from, const E& to) {
  if constexpr (requires { from.elapsedTime(to); }) {
    return from.elapsedTime(to) / 1000.0;  // milliseconds
  } else {
    return 0.0;
  }
}

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

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
  Precision precision = Precision::fp32;
  bool channels_last = true;
  bool device_staging = false;  // uint8 to the device, converted there (always on CUDA)
  bool gradcam = false;
  std::string gradcam_reason;
  std::string device_name = "cpu";
  mutable std::set<std::tuple<int64_t, int, bool>> warmed;  // warm_up()'s shapes: warm_key()
  // Device-side preprocessing constants, made on first use: resize matrices by input side, and
  // the per-channel multiplier and offset of the normalisation ([1, 3, 1, 1] float32).
  mutable std::map<int, torch::Tensor> resize_matrix;
  mutable torch::Tensor norm_mul, norm_add;
  // CUDA: copies in, compute, copies back, each on a stream of its own (see model.hpp).
  std::optional<c10::Stream> upload, compute, download;

  // Side 0 means patch_size (as for predict()): one shape, one key.
  std::tuple<int64_t, int, bool> warm_key(int64_t batch, int side, bool with_gradcam) const {
    return {batch, side > 0 ? side : spec.patch_size, with_gradcam};
  }
  int side_of(int side) const {
    if (side != 0 && side != spec.patch_size && side != spec.input_size)
      throw std::invalid_argument("patches of side " + std::to_string(side) + " fit neither patch_size " +
                                  std::to_string(spec.patch_size) + " nor input_size " +
                                  std::to_string(spec.input_size));
    return side == 0 ? spec.patch_size : side;
  }

  // The network's input from a batch of uint8 NHWC patches already on the model's device:
  // float32, converted, resized (W · X · Wᵀ with preprocess()'s weights), channel order applied,
  // normalised, then cast to the model's precision (channels-last when so configured). The same
  // arithmetic as preprocess(), in another summation order. The caller sets the grad mode.
  torch::Tensor prepare(const torch::Tensor& u8, int side) const {
    const int P = side_of(side), S = spec.input_size;
    torch::Tensor x = u8.permute({0, 3, 1, 2}).to(torch::kFloat32);  // N x 3 x P x P
    if (spec.bgr) x = x.flip({1});
    if (spec.resize != ResizeMode::none && P != S) {
      torch::Tensor& w = resize_matrix[P];
      if (!w.defined()) {
        const c10::InferenceMode normal_tensor(false);  // also usable outside inference mode
        std::vector<float> v = resize_weights(P, S, spec.resize);
        w = torch::from_blob(v.data(), {S, P}, torch::kFloat32).clone().to(device);
      }
      x = torch::matmul(torch::matmul(w, x), w.t());
    }
    if (!norm_mul.defined()) {
      const c10::InferenceMode normal_tensor(false);
      float mul[3], add[3];
      for (size_t c = 0; c < 3; ++c) {
        mul[c] = static_cast<float>(spec.scale / spec.std[c]);
        add[c] = static_cast<float>(-spec.mean[c] / spec.std[c]);
      }
      norm_mul = torch::from_blob(mul, {1, 3, 1, 1}, torch::kFloat32).clone().to(device);
      norm_add = torch::from_blob(add, {1, 3, 1, 1}, torch::kFloat32).clone().to(device);
    }
    x = torch::addcmul(norm_add, x, norm_mul).to(dtype);
    // oneDNN's convolutions run up to 2x faster on NHWC (see MACHINE-NOTES), cuDNN's tensor-core
    // kernels want it too; same values.
    return x.contiguous(channels_last ? torch::MemoryFormat::ChannelsLast : torch::MemoryFormat::Contiguous);
  }

  // The network's input from `count` patches in host memory.
  torch::Tensor input(const uint8_t* patches, int64_t count, int side) const {
    const int P = side_of(side);
    if (device_staging) {
      const torch::Tensor u8 =
          torch::from_blob(const_cast<uint8_t*>(patches), {count, P, P, 3}, torch::kUInt8).to(device);
      return prepare(u8, side);
    }
    const int64_t S = spec.input_size;
    torch::Tensor x = torch::empty({count, 3, S, S}, torch::kFloat32);
    preprocess(patches, count, spec, x.data_ptr<float>(), side);
    if (dtype != torch::kFloat32) x = x.to(dtype);
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
      m << ": " << detail::torch_first_line(e.what()) << ". Check input_size, patch_size and resize in "
        << sidecar_path(path).string();
      throw ModelError(path, m.str());
    }
    if (!out.isTensor())
      throw ModelError(path, method + "() returns a " + out.tagKind() + ", not a tensor");
    return out.toTensor();
  }

  // The positive-class score Grad-CAM differentiates (same shape checks as probabilities()).
  torch::Tensor score(const torch::Tensor& out, int64_t count) const {
    (void)probabilities(out.detach(), count);  // validates the shape
    if (spec.output == OutputKind::softmax) return out.select(1, spec.positive_index);
    return out.reshape({count});
  }

  // Probabilities (float32 [count], on the model's device) from the network's output.
  torch::Tensor probabilities(const torch::Tensor& out, int64_t count) const {
    const torch::Tensor t = out.to(torch::kFloat32);
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

  // Probabilities of a prepared batch (on the device). Caller: InferenceMode.
  torch::Tensor forward_probabilities(const torch::Tensor& x, int64_t count) const {
    return probabilities(call("forward", x), count);
  }

  // Grad-CAM of a prepared batch (gradcam.hpp): probabilities [count] and CAMs [count, P, P],
  // float32 on the device. The model's part: activations without a graph, then made the leaf
  // the positive-class score is differentiated by (gradcam_maps, src/gradcam/).
  std::pair<torch::Tensor, torch::Tensor> gradcam_tensors(const torch::Tensor& x, int64_t count, int64_t P) const {
    if (!gradcam) throw ModelError(path, "Grad-CAM is unavailable: " + gradcam_reason);
    torch::Tensor a;
    {
      torch::NoGradGuard no_grad;  // the feature extractor needs no graph
      a = call(spec.features_method, x);
    }
    if (a.dim() != 4)
      throw ModelError(path, spec.features_method + "() must return N x C x H x W activations, not " + shape_of(a));
    a = a.detach().requires_grad_(true);
    const torch::Tensor logits = call(spec.classify_method, a);
    torch::Tensor cam = detail::gradcam_maps(a, score(logits, count), P);
    return {probabilities(logits.detach(), count), cam};
  }

  std::vector<float> run(const uint8_t* patches, int64_t count, int side) const {
    c10::InferenceMode guard;
    const torch::Tensor p = forward_probabilities(input(patches, count, side), count).to(torch::kCPU).contiguous();
    return std::vector<float>(p.data_ptr<float>(), p.data_ptr<float>() + count);
  }
};

// One batch's memory and, on CUDA, its events (see Model in model.hpp).
class TorchSlot final : public BatchSlot {
 public:
  TorchSlot(const Model::Impl& m, int64_t capacity, int side, bool with_gradcam)
      : m_(m), capacity_(capacity), side_(m.side_of(side)), cam_(with_gradcam) {
    if (capacity < 1) throw std::invalid_argument("a batch slot needs a capacity of at least one patch");
    if (with_gradcam && !m.gradcam) throw ModelError(m.path, "Grad-CAM is unavailable: " + m.gradcam_reason);
    const bool cuda = m.device.is_cuda();
    const auto host = torch::TensorOptions().pinned_memory(cuda);
    host_in_ = torch::empty({capacity, side_, side_, 3}, host.dtype(torch::kUInt8));
    host_prob_ = torch::empty({capacity}, host.dtype(torch::kFloat32));
    if (cam_) host_cam_ = torch::empty({capacity, side_, side_}, host.dtype(torch::kFloat32));
    if (!cuda) return;
    const auto dev = torch::TensorOptions().device(m.device);
    dev_in_ = torch::empty({capacity, side_, side_, 3}, dev.dtype(torch::kUInt8));
    dev_prob_ = torch::empty({capacity}, dev.dtype(torch::kFloat32));
    if (cam_) dev_cam_ = torch::empty({capacity, side_, side_}, dev.dtype(torch::kFloat32));
    for (auto& e : events_) e.emplace(m.device.type(), c10::EventFlag::BACKEND_DEFAULT);  // timing on
  }
  ~TorchSlot() override {
    // Queued copies still use this slot's memory: let them end before it is freed.
    if (pending_) try {
        wait_for(*events_[kDownloaded]);
      } catch (...) {  // a device failure was or will be reported by finish()'s caller
      }
  }
  TorchSlot(const TorchSlot&) = delete;
  TorchSlot& operator=(const TorchSlot&) = delete;

  int64_t capacity() const override { return capacity_; }
  int side() const override { return side_; }
  uint8_t* pixels() override { return host_in_.data_ptr<uint8_t>(); }
  const float* probabilities() const override { return host_prob_.data_ptr<float>(); }
  const float* cams() const override { return cam_ ? host_cam_.data_ptr<float>() : nullptr; }
  const BatchTimings& timings() const override { return timings_; }

  void start(int64_t count) override {
    if (count < 1 || count > capacity_)
      throw std::invalid_argument("a batch of " + std::to_string(count) + " patches in a slot of " +
                                  std::to_string(capacity_));
    count_ = count;
    const auto t0 = Clock::now();
    if (m_.device.is_cuda())
      queue_on_device();
    else
      compute_here();
    timings_.staging += m_.device.is_cuda() ? seconds_since(t0) : 0.0;
    ++timings_.batches;
  }

  void finish() override {
    if (!pending_) return;
    const auto t0 = Clock::now();
    pending_ = false;
    wait_for(*events_[kDownloaded]);
    timings_.wait += seconds_since(t0);
    timings_.copy_in += elapsed_seconds(*events_[kStart], *events_[kUploaded]);
    timings_.compute += elapsed_seconds(*events_[kComputeStart], *events_[kComputed]);
    timings_.copy_out += elapsed_seconds(*events_[kDownloadStart], *events_[kDownloaded]);
  }

 private:
  enum { kStart, kUploaded, kComputeStart, kComputed, kDownloadStart, kDownloaded, kEvents };

  void compute_here() {
    const auto t0 = Clock::now();
    if (cam_) {
      torch::Tensor x;
      {
        torch::NoGradGuard no_grad;
        x = m_.input(host_in_.data_ptr<uint8_t>(), count_, side_);
      }
      timings_.staging += seconds_since(t0);
      const auto t1 = Clock::now();
      auto [p, cam] = m_.gradcam_tensors(x, count_, side_);
      torch::NoGradGuard no_grad;
      host_prob_.narrow(0, 0, count_).copy_(p);
      host_cam_.narrow(0, 0, count_).copy_(cam);
      timings_.compute += seconds_since(t1);
      return;
    }
    c10::InferenceMode guard;
    const torch::Tensor x = m_.input(host_in_.data_ptr<uint8_t>(), count_, side_);
    timings_.staging += seconds_since(t0);
    const auto t1 = Clock::now();
    host_prob_.narrow(0, 0, count_).copy_(m_.forward_probabilities(x, count_));
    timings_.compute += seconds_since(t1);
  }

  // Queues the batch on the model's three streams; returns without waiting.
  void queue_on_device() {
    const int64_t n = capacity_;  // full batches: one shape for cuDNN (rows past count_ ignored)
    {
      const c10::StreamGuard guard(*m_.upload);
      events_[kStart]->record(*m_.upload);
      dev_in_.narrow(0, 0, count_).copy_(host_in_.narrow(0, 0, count_), /*non_blocking=*/true);
      events_[kUploaded]->record(*m_.upload);
    }
    {
      const c10::StreamGuard guard(*m_.compute);
      events_[kUploaded]->block(*m_.compute);
      events_[kComputeStart]->record(*m_.compute);
      if (cam_) {
        torch::Tensor x;
        {
          torch::NoGradGuard no_grad;
          x = m_.prepare(dev_in_, side_);
        }
        auto [p, cam] = m_.gradcam_tensors(x, n, side_);
        torch::NoGradGuard no_grad;
        dev_prob_.copy_(p);
        dev_cam_.copy_(cam);
      } else {
        c10::InferenceMode inference;
        dev_prob_.copy_(m_.forward_probabilities(m_.prepare(dev_in_, side_), n));
      }
      events_[kComputed]->record(*m_.compute);
    }
    {
      const c10::StreamGuard guard(*m_.download);
      events_[kComputed]->block(*m_.download);
      events_[kDownloadStart]->record(*m_.download);
      host_prob_.narrow(0, 0, count_).copy_(dev_prob_.narrow(0, 0, count_), /*non_blocking=*/true);
      if (cam_) host_cam_.narrow(0, 0, count_).copy_(dev_cam_.narrow(0, 0, count_), /*non_blocking=*/true);
      events_[kDownloaded]->record(*m_.download);
    }
    pending_ = true;
  }

  const Model::Impl& m_;
  const int64_t capacity_;
  const int side_;
  const bool cam_;
  int64_t count_ = 0;
  bool pending_ = false;  // queued on the device, not yet finished
  torch::Tensor host_in_, host_prob_, host_cam_;  // pinned on CUDA
  torch::Tensor dev_in_, dev_prob_, dev_cam_;     // CUDA only
  std::optional<c10::Event> events_[kEvents];     // CUDA only
  BatchTimings timings_;
};

Model::Model(const fs::path& path, const ModelOptions& options) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.path = path;
  if (fs::is_directory(path)) throw UsageError(path.string() + ": is a directory, not a model file; pass NAME.pt");
  if (!fs::is_regular_file(path)) throw UsageError(path.string() + ": no such model file");
  m.spec = ModelSpec::load_sidecar(path);
  if (std::error_code ec; fs::file_size(path, ec) == 0 && !ec)
    throw ModelError(path, "the file is empty (0 bytes); it was probably cut short while copying — copy it again");
  if (options.device == Device::cuda) {
    if (!torch_cuda_available())
      throw ConfigError(std::string("--device cuda: this build's LibTorch ") + TORCH_VERSION +
                        " has no CUDA support or no GPU is visible; use --device cpu");
    m.device = torch::Device(torch::kCUDA, 0);
    // cuDNN picks the fastest kernels for each input shape on first use (the warm-up), which
    // matters most for the depthwise convolutions of the built-in networks.
    at::globalContext().setBenchmarkCuDNN(true);
    const c10::impl::VirtualGuardImpl cuda(c10::DeviceType::CUDA);
    m.upload = cuda.getStreamFromGlobalPool(m.device);
    m.compute = cuda.getStreamFromGlobalPool(m.device);
    m.download = cuda.getStreamFromGlobalPool(m.device);
    const std::string name = cuda_device_name(0);
    m.device_name = "cuda:0" + (name.empty() ? std::string() : " (" + name + ")");
  }
  m.device_staging = options.device_staging || m.device.is_cuda();
  const int threads = resolve_threads(options.threads);
  at::set_num_threads(threads);
  m.channels_last = options.channels_last;
  if (options.precision == Precision::fp16 && options.device != Device::cuda)
    throw UsageError("--precision fp16 needs --device cuda; on a CPU use bf16");
  m.precision = options.precision;
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
                                 detail::torch_first_line(e.what()) + "); save it with torch.jit.script(model).save(...)");
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
    // A sidecar that promises what the module does not have is wrong, not a model without Grad-CAM.
    throw ModelError(path, "its sidecar " + sidecar_path(path).string() + " names the Grad-CAM methods '" +
                               m.spec.features_method + "' and '" + m.spec.classify_method +
                               "', which the TorchScript module does not export: export them with "
                               "@torch.jit.export (tools/export_model.py does), or remove \"gradcam\" from the sidecar");
  } else {
    m.gradcam = true;
  }
  // The contract check: one patch of mid-grey through the whole path.
  const std::vector<uint8_t> grey(static_cast<size_t>(m.spec.patch_size) * static_cast<size_t>(m.spec.patch_size) * 3,
                                  128);
  (void)m.run(grey.data(), 1, 0);
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
std::unique_ptr<BatchSlot> Model::make_slot(int64_t capacity, int side, bool with_gradcam) const {
  return std::make_unique<TorchSlot>(*impl_, capacity, side, with_gradcam);
}
bool Model::asynchronous() const { return impl_->device.is_cuda(); }
std::string Model::device_name() const { return impl_->device_name; }
Precision Model::precision() const { return impl_->precision; }
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

// ---- ModelInternals (model/model_internals.hpp) ----

torch::Tensor ModelInternals::input(const Model& model, const uint8_t* patches, int64_t count, int side) {
  return model.impl_->input(patches, count, side);
}
torch::Tensor ModelInternals::call(const Model& model, const std::string& method, const torch::Tensor& x) {
  return model.impl_->call(method, x);
}
const torch::jit::Module* ModelInternals::module(const Model& model) {
  return model.impl_->net ? nullptr : &model.impl_->module;
}
detail::NetImpl* ModelInternals::net(const Model& model) { return model.impl_->net.get(); }
int ModelInternals::patch_side(const Model& model, int side) { return model.impl_->side_of(side); }
std::pair<torch::Tensor, torch::Tensor> ModelInternals::gradcam(const Model& model, const torch::Tensor& x,
                                                                int64_t count, int64_t P) {
  return model.impl_->gradcam_tensors(x, count, P);
}

}  // namespace wsi
