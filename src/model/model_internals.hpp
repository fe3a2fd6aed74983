// What the torch library's other translation units (feature_maps.cpp, gradcam.cpp) use of a Model's private
// state (Model::Impl lives in torch_model.cpp). A friend of Model; the same thread rule as
// Model::predict.
#pragma once

#include <torch/script.h>

#include <cstdint>
#include <string>
#include <utility>

#include "model/nets.hpp"
#include "wsi/model.hpp"

namespace wsi {

struct ModelInternals {
  // The network's input for `count` patches, exactly as predict() makes it (side as there), on
  // the model's device, in its precision and memory format. The caller sets the grad mode.
  static torch::Tensor input(const Model& model, const uint8_t* patches, int64_t count, int side);
  // Calls "forward" or the sidecar's features/classify method; a failure is a ModelError that says
  // what to fix (as predict() reports it).
  static torch::Tensor call(const Model& model, const std::string& method, const torch::Tensor& x);
  // The patch side for `side` as predict() takes it (0: patch_size; else patch_size or
  // input_size); throws std::invalid_argument for another.
  static int patch_side(const Model& model, int side);
  // Grad-CAM of a batch `input()` made (gradcam.hpp): probabilities [count] and maps
  // [count, P, P], float32 on the model's device. Throws ModelError when the model has no
  // Grad-CAM split. Needs autograd: not under InferenceMode.
  static std::pair<torch::Tensor, torch::Tensor> gradcam(const Model& model, const torch::Tensor& x, int64_t count,
                                                         int64_t P);
  // The TorchScript module, or null for a built-in network; the built-in network, or null.
  static const torch::jit::Module* module(const Model& model);
  static detail::NetImpl* net(const Model& model);
};

}  // namespace wsi
