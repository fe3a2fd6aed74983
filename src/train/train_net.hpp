// The network `train` optimises, private to src/train: a new built-in network, or a model of the
// contract loaded for fine-tuning (a built-in's native archive or a TorchScript module), behind
// one interface. It knows which parameters are the features and which the head (the Grad-CAM
// split: what classify() uses that features() does not), puts batch-norm layers in eval mode on
// request, and saves in the format it came in.
//
// Thread-safety: one thread at a time (LibTorch modules are not thread-safe to train).
#pragma once

#include <torch/script.h>
#include <torch/torch.h>

#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "model/nets.hpp"
#include "wsi/model.hpp"

namespace wsi::detail {

// The attributes of `self` that `method` of `module` reads (prim::GetAttr on self in its graph,
// nested blocks included), following calls to the module's own other methods: the top-level
// submodules, parameters and buffers the method uses. Throws ModelError when the module lacks it.
std::set<std::string> attributes_used(const torch::jit::Module& module, const std::string& method,
                                      const std::filesystem::path& path);

class TrainNet {
 public:
  // A new built-in network (make_net: deterministic under torch::manual_seed).
  static TrainNet fresh(const ModelSpec::BuiltinNet& arch, double dropout);
  // The model at `path` whose sidecar is `spec`: its architecture rebuilt with `dropout`
  // (negative: the default) and its weights read, or its TorchScript module loaded. Throws
  // ModelError for a file that does not load.
  static TrainNet load(const std::filesystem::path& path, const ModelSpec& spec, double dropout);

  bool torchscript() const { return !net_; }
  torch::Tensor forward(const torch::Tensor& x);
  std::vector<std::pair<std::string, torch::Tensor>> named_parameters() const;
  std::vector<std::pair<std::string, torch::Tensor>> named_buffers() const;

  // The head: the top-level names (submodules or parameters) with parameters that classify uses
  // and features does not. Throws UsageError naming the model when there is no features/
  // classify split, or when the head has no parameters.
  std::vector<std::string> head() const;
  // Whether parameter `name` (as named_parameters() names it) belongs to one of `head`.
  static bool in(const std::vector<std::string>& head, const std::string& name);

  // Training or eval mode; with bn_frozen every batch-norm layer stays in eval mode.
  void set_mode(bool training, bool bn_frozen);
  void to(const torch::Device& device);
  // Writes `path` under a temporary name and renames it (native archive or TorchScript, saved
  // from the CPU). Throws WriteError.
  void save(const std::filesystem::path& path);

 private:
  TrainNet() = default;
  std::shared_ptr<NetImpl> net_;  // built-in
  torch::jit::Module module_;     // TorchScript (when !net_)
  std::filesystem::path path_;    // where it was loaded from (messages)
  std::string features_method_ = "features", classify_method_ = "classify";
  torch::Device device_{torch::kCPU};
};

}  // namespace wsi::detail
