// Fine-tuning: the init model, checked and loaded (see train.hpp and finetune.hpp).
#include "train/finetune.hpp"

#include <sstream>

#include "wsi/dataset.hpp"
#include "wsi/error.hpp"

namespace wsi {
namespace detail {

InitModel load_init(const TrainOptions& o, const PatchSet* data) {
  o.validate();
  if (o.init.empty()) throw std::invalid_argument("load_init without an init model");
  ModelSpec spec;
  {
    ModelOptions mo;
    mo.threads = o.threads;
    mo.channels_last = false;
    const Model checked(o.init, mo);  // the contract: sidecar, file, one forward pass
    spec = checked.spec();
  }
  const std::string init = o.init.string();
  if (data && data->patch_size() != spec.patch_size) {
    std::ostringstream m;
    m << data->describe() << " has " << data->patch_size() << " px patches but " << init << " expects patch_size "
      << spec.patch_size << " (at " << spec.mpp << " µm/px, its sidecar): extract patches of that size";
    throw ConfigError(m.str());
  }
  if (o.dropout >= 0 && !spec.architecture)
    throw UsageError("--dropout applies to the built-in networks; " + init +
                     " is TorchScript, whose dropout is part of the module");
  InitModel m{{}, TrainNet::load(o.init, spec, o.dropout)};
  InitSummary& s = m.summary;
  s.kind = spec.architecture ? "built-in " + spec.architecture->name : "TorchScript";
  s.spec = spec;
  if (o.freeze == "features") s.head = m.net.head();
  for (const auto& [name, p] : m.net.named_parameters()) {
    s.parameters += p.numel();
    if (TrainNet::in(s.head, name)) s.head_parameters += p.numel();
  }
  if (s.parameters == 0)
    throw UsageError(init +
                     ": the model has no parameters to train (was it frozen with torch.jit.freeze? export it "
                     "without freezing)");
  return m;
}

}  // namespace detail

InitSummary inspect_init(const TrainOptions& options, const PatchSet* data) {
  return detail::load_init(options, data).summary;
}

}  // namespace wsi
