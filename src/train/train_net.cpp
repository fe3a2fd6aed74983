// The network train optimises (see train_net.hpp).
#include "train/train_net.hpp"

#include <torch/csrc/jit/ir/ir.h>
#include <torch/version.h>

#include <algorithm>
#include <functional>

#include "core/pending_file.hpp"
#include "wsi/error.hpp"

namespace wsi::detail {
namespace fs = std::filesystem;

namespace {

void collect_attributes(const torch::jit::Module& module, const std::string& method, const fs::path& path,
                        std::set<std::string>& used, std::set<std::string>& visited) {
  if (!visited.insert(method).second) return;
  const auto m = module.find_method(method);
  if (!m) throw ModelError(path, "the TorchScript module has no method '" + method + "'");
  const std::shared_ptr<torch::jit::Graph> graph = m->graph();
  const torch::jit::Value* self = graph->inputs().at(0);
  const std::function<void(torch::jit::Block*)> walk = [&](torch::jit::Block* block) {
    for (torch::jit::Node* n : block->nodes()) {
      const bool on_self = !n->inputs().empty() && n->inputs()[0] == self;
      if (on_self && n->kind() == c10::prim::GetAttr) used.insert(n->s(c10::attr::name));
      // self.helper(x): the helper's attributes count as this method's.
      if (on_self && n->kind() == c10::prim::CallMethod)
        collect_attributes(module, n->s(c10::attr::name), path, used, visited);
      for (torch::jit::Block* sub : n->blocks()) walk(sub);
    }
  };
  walk(graph->block());
}

// "body.0.weight" belongs to top-level name "body"; "scale" to "scale".
std::string top_level(const std::string& name) { return name.substr(0, name.find('.')); }

}  // namespace

std::set<std::string> attributes_used(const torch::jit::Module& module, const std::string& method,
                                      const fs::path& path) {
  std::set<std::string> used, visited;
  collect_attributes(module, method, path, used, visited);
  return used;
}

TrainNet TrainNet::fresh(const ModelSpec::BuiltinNet& arch, double dropout) {
  TrainNet t;
  t.net_ = make_net(arch, dropout);
  return t;
}

TrainNet TrainNet::load(const fs::path& path, const ModelSpec& spec, double dropout) {
  TrainNet t;
  t.path_ = path;
  if (spec.architecture) {
    t.net_ = make_net(*spec.architecture, dropout);
    load_net(*t.net_, path, torch::kCPU);
  } else {
    try {
      t.module_ = torch::jit::load(path.string(), torch::kCPU);
    } catch (const c10::Error& e) {
      std::string what = e.what_without_backtrace();
      throw ModelError(path, "not a TorchScript file LibTorch " + std::string(TORCH_VERSION) + " can load (" +
                                 what.substr(0, what.find('\n')) + ")");
    }
    t.features_method_ = spec.features_method;
    t.classify_method_ = spec.classify_method;
  }
  torch::NoGradGuard no_grad;
  for (auto& [name, p] : t.named_parameters()) p.requires_grad_(true);
  return t;
}

torch::Tensor TrainNet::forward(const torch::Tensor& x) {
  if (net_) return net_->forward(x);
  return module_.forward({x}).toTensor();
}

std::vector<std::pair<std::string, torch::Tensor>> TrainNet::named_parameters() const {
  std::vector<std::pair<std::string, torch::Tensor>> v;
  if (net_) {
    for (const auto& p : net_->named_parameters()) v.emplace_back(p.key(), p.value());
  } else {
    for (const auto& p : module_.named_parameters()) v.emplace_back(p.name, p.value);
  }
  return v;
}

std::vector<std::pair<std::string, torch::Tensor>> TrainNet::named_buffers() const {
  std::vector<std::pair<std::string, torch::Tensor>> v;
  if (net_) {
    for (const auto& b : net_->named_buffers()) v.emplace_back(b.key(), b.value());
  } else {
    for (const auto& b : module_.named_buffers()) v.emplace_back(b.name, b.value);
  }
  return v;
}

std::vector<std::string> TrainNet::head() const {
  if (net_) return net_->head_modules();
  if (features_method_.empty())
    throw UsageError(path_.string() +
                     ": --freeze features needs the model's features/classify split, and its sidecar " +
                     sidecar_path(path_).string() +
                     " names no \"gradcam\" methods; export the model with both (tools/export_model.py does)");
  const std::set<std::string> features = attributes_used(module_, features_method_, path_);
  const std::set<std::string> classify = attributes_used(module_, classify_method_, path_);
  std::vector<std::string> head;
  for (const auto& [name, p] : named_parameters()) {
    const std::string top = top_level(name);
    if (classify.count(top) && !features.count(top) && std::find(head.begin(), head.end(), top) == head.end())
      head.push_back(top);
  }
  if (head.empty())
    throw UsageError(path_.string() + ": --freeze features leaves nothing to train: " + classify_method_ +
                     "() uses no parameters that " + features_method_ + "() does not");
  return head;
}

bool TrainNet::in(const std::vector<std::string>& head, const std::string& name) {
  return std::find(head.begin(), head.end(), top_level(name)) != head.end();
}

void TrainNet::set_mode(bool training, bool bn_frozen) {
  if (net_) {
    net_->train(training);
    if (training && bn_frozen)
      for (auto& m : net_->modules(/*include_self=*/false))
        if (m->as<torch::nn::BatchNorm1d>() || m->as<torch::nn::BatchNorm2d>()) m->eval();
    return;
  }
  module_.train(training);
  if (training && bn_frozen)
    for (const auto& m : module_.named_modules()) {
      const auto type = m.value.type()->name();
      if (type && type->qualifiedName().find("BatchNorm") != std::string::npos) {
        torch::jit::Module bn = m.value;  // a handle to the same object
        bn.train(false);
      }
    }
}

void TrainNet::to(const torch::Device& device) {
  device_ = device;
  if (net_)
    net_->to(device);
  else
    module_.to(device);
}

void TrainNet::save(const fs::path& path) {
  if (net_) {
    save_net(*net_, path);
    return;
  }
  PendingFile out(path);
  try {
    if (device_.is_cuda()) {  // a file that loads without a GPU
      torch::jit::Module copy = module_.deepcopy();
      copy.to(torch::kCPU);
      copy.save(out.tmp().string());
    } else {
      module_.save(out.tmp().string());
    }
  } catch (const c10::Error& e) {
    std::string what = e.what_without_backtrace();
    throw WriteError(path, "cannot save the TorchScript module: " + what.substr(0, what.find('\n')));
  }
  out.commit();
}

}  // namespace wsi::detail
