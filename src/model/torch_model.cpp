// Model: TorchScript through LibTorch. The only translation unit of the model stage that includes
// LibTorch (a TU with torch headers costs ~15 s and 1.2 GB to compile here).
#include <ATen/Parallel.h>
#include <torch/script.h>
#include <torch/version.h>

#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <sstream>
#include <thread>

#include "wsi/error.hpp"
#include "wsi/model.hpp"

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

bool torch_cuda_available() {
#ifdef WSI_HAVE_TORCH_CUDA_H
  return torch::cuda::is_available();
#else
  return false;
#endif
}

}  // namespace

Device parse_device(const std::string& s) {
  if (s == "cpu") return Device::cpu;
  if (s == "cuda") return Device::cuda;
  throw UsageError("unknown device '" + s + "': use cpu or cuda");
}

struct Model::Impl {
  fs::path path;
  ModelSpec spec;
  mutable torch::jit::Module module;
  torch::Device device{torch::kCPU};
  bool gradcam = false;
  std::string gradcam_reason;

  // Runs the network on `count` preprocessed patches and turns its output into probabilities.
  std::vector<float> run(const uint8_t* patches, int64_t count) const {
    const int64_t S = spec.input_size;
    std::vector<float> input(static_cast<size_t>(count * 3 * S * S));
    preprocess(patches, count, spec, input.data());
    c10::InferenceMode guard;
    torch::Tensor x = torch::from_blob(input.data(), {count, 3, S, S}, torch::kFloat32);
    if (device != torch::kCPU) x = x.to(device);
    torch::jit::IValue out;
    try {
      out = module.forward({x});
    } catch (const std::exception& e) {  // c10::Error, or torch::jit::JITException
      std::ostringstream m;
      m << "the model failed on a " << count << "x3x" << S << "x" << S
        << " float32 input (NCHW, input_size from its sidecar): " << first_line(e.what())
        << ". Check input_size, patch_size and resize in " << sidecar_path(path).string();
      throw ModelError(path, m.str());
    }
    if (!out.isTensor())
      throw ModelError(path, "forward() returns a " + out.tagKind() +
                                 ", not a tensor; export a module whose forward returns the logits tensor");
    torch::Tensor t = out.toTensor().to(torch::kCPU).to(torch::kFloat32);
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
    p = p.contiguous();
    return std::vector<float>(p.data_ptr<float>(), p.data_ptr<float>() + count);
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
  try {
    m.module = torch::jit::load(path.string(), m.device);
  } catch (const c10::Error& e) {
    throw ModelError(path, "not a TorchScript file LibTorch " + std::string(TORCH_VERSION) + " can load (" +
                               first_line(e.what()) + "); save it with torch.jit.script(model).save(...)");
  }
  m.module.eval();
  if (m.spec.features_method.empty()) {
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
std::vector<float> Model::predict(const uint8_t* patches, int64_t count) const {
  if (count <= 0) return {};
  return impl_->run(patches, count);
}
bool Model::has_gradcam() const { return impl_->gradcam; }
const std::string& Model::gradcam_unavailable_reason() const { return impl_->gradcam_reason; }
bool Model::cuda_available() const { return torch_cuda_available(); }

}  // namespace wsi
