// feature_maps(): the first convolution layer's and the Grad-CAM layer's activations
// (feature_maps.hpp), through the model's own input path (ModelInternals).
#include "wsi/feature_maps.hpp"

#include <c10/core/InferenceMode.h>
#include <torch/script.h>

#include <optional>

#include "model/model_internals.hpp"
#include "model/nets.hpp"
#include "model/torch_messages.hpp"
#include "wsi/error.hpp"
#include "wsi/model.hpp"

namespace wsi {
namespace {

struct Conv {
  std::string name;
  torch::jit::Module module;
};

// The first submodule of class Conv2d in definition order (named_modules() is pre-order over
// the attributes as they were assigned). The class name is checked exactly: torchvision's
// Conv2dNormActivation (a Sequential around one) must not count.
std::optional<Conv> first_conv2d(const torch::jit::Module& m) {
  for (const auto& s : m.named_modules()) {
    const auto& qualified = s.value.type()->name();
    if (qualified && qualified->name() == "Conv2d") return Conv{s.name, s.value};
  }
  return std::nullopt;
}

using detail::shape_of;
std::string reason_of(const std::exception& e) { return detail::torch_first_line(e.what()); }

FeatureLayer to_layer(const Model& model, std::string name, std::string kind, const torch::Tensor& t, bool keep) {
  if (t.dim() != 4)
    throw ModelError(model.path(), "layer '" + name + "' returns " + shape_of(t) + ", not N x C x H x W activations");
  FeatureLayer l;
  l.name = std::move(name);
  l.kind = std::move(kind);
  l.channels = t.size(1), l.height = t.size(2), l.width = t.size(3);
  if (keep) {
    const torch::Tensor c = t.to(torch::kCPU, torch::kFloat32).contiguous();
    l.values.assign(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
  }
  return l;
}

}  // namespace

FeatureMaps feature_maps(const Model& model, const uint8_t* patches, int64_t count, int side) {
  const ModelSpec& spec = model.spec();
  const bool keep = count > 0;
  // count 0: one mid-grey patch at the network's resolution checks the layers and gives their sizes.
  std::vector<uint8_t> grey;
  if (!keep) {
    grey.assign(static_cast<size_t>(spec.input_size) * static_cast<size_t>(spec.input_size) * 3, 128);
    patches = grey.data(), count = 1, side = spec.input_size;
  }
  detail::NetImpl* net = ModelInternals::net(model);
  const torch::jit::Module* module = ModelInternals::module(model);
  std::optional<Conv> conv;
  if (module) conv = first_conv2d(*module);

  FeatureMaps out;
  if (!net && !conv) out.first_conv_unavailable = "the TorchScript module has no Conv2d submodule";
  if (!model.has_gradcam()) out.features_unavailable = "no Grad-CAM layer: " + model.gradcam_unavailable_reason();
  if (!out.first_conv_unavailable.empty() && !out.features_unavailable.empty())
    throw ModelError(model.path(), "has no layer to show feature maps of: " + out.first_conv_unavailable +
                                       ", and its sidecar names no \"gradcam\" features method (export the "
                                       "model with tools/export_model.py, which adds one)");

  const c10::InferenceMode inference;
  const torch::Tensor x = ModelInternals::input(model, patches, count, side);
  if (net) {
    detail::NetLayer first = net->first_layer(x);
    out.first_conv = to_layer(model, first.name, first.kind, first.output, keep);
  } else if (conv) {
    torch::Tensor y;
    try {
      y = conv->module.forward({x}).toTensor();
    } catch (const std::exception& e) {
      throw ModelError(model.path(), "its first Conv2d submodule '" + conv->name + "' cannot take the network's " +
                                         shape_of(x) + " input (" + reason_of(e) +
                                         "); feature maps assume the network applies its first convolution to "
                                         "the input directly");
    }
    out.first_conv = to_layer(model, conv->name, "Conv2d output, before activation", y, keep);
  }
  if (model.has_gradcam())
    out.features = to_layer(model, spec.features_method, "the Grad-CAM layer (" + spec.features_method + " output)",
                            ModelInternals::call(model, spec.features_method, x), keep);
  return out;
}

}  // namespace wsi
