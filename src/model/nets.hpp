// The built-in networks (torch::nn), private to the torch-linked stages (model and train).
//
// Both split into features(x) -> N x C x h x w activations and classify(A) -> N x 1 logits, so
// Grad-CAM works on them exactly as on TorchScript models that export the same split.
//   cancernet: in the spirit of PyImageSearch's CancerNet / the seeds' "vanilla CNN": three
//              stages of depthwise-separable 3x3 convolutions (1, 2, 3 convs; widths w, 2w, 4w),
//              each conv + ReLU + batch norm, 2x2 max pooling and dropout 0.25 after each stage;
//              head: global average pooling, dense 256 + ReLU + batch norm + dropout 0.5, 1 logit.
//              Global pooling (instead of CancerNet's flatten) keeps it a few hundred KB and
//              independent of the input size.
//   resnet:    a ResNet for small patches: 3x3 stem (w, stride 2), four stages of `blocks`
//              basic residual blocks (w, 2w, 4w, 8w; strides 1, 2, 2, 2), global average
//              pooling, 1 logit. At 96x96 input the last activation map is 6x6.
//   Dropout: see make_net().
// Input: float32 N x 3 x S x S, preprocessed per the sidecar. Thread-safety: a network is used
// by one thread at a time.
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <memory>

#include "wsi/model.hpp"

namespace wsi::detail {

// A layer's output with its name and what it is (feature_maps.hpp's FeatureLayer).
struct NetLayer {
  std::string name, kind;
  torch::Tensor output;
};

class NetImpl : public torch::nn::Module {
 public:
  virtual torch::Tensor features(const torch::Tensor& x) = 0;
  // The first block, as Keras shows a network's first layer (feature_maps.hpp): cancernet's
  // "s0c0" separable convolution + ReLU before its batch norm; resnet's "stem" conv + BN + ReLU.
  virtual NetLayer first_layer(const torch::Tensor& x) = 0;
  virtual torch::Tensor classify(const torch::Tensor& a) = 0;
  torch::Tensor forward(const torch::Tensor& x) { return classify(features(x)); }
  // Multiply-accumulates of one forward pass on a 1 x 3 x S x S input (convolutions and dense).
  virtual double macs(int input_size) const = 0;
};

// The dropout probability an architecture trains with when none is given: cancernet 0.5 (its
// head; 0.25 after each stage, i.e. half the head's), resnet 0 (none).
double default_dropout(const std::string& arch);

// Builds an untrained network (He-initialised; deterministic under torch::manual_seed).
// `dropout` in [0, 1) is the head's dropout probability (before the logit for resnet; cancernet's
// stages drop half of it); negative means default_dropout(arch.name). Dropout is active in
// training mode only, so it does not change inference or the saved weights' layout.
// Throws ConfigError for an unknown name.
std::shared_ptr<NetImpl> make_net(const ModelSpec::BuiltinNet& arch, double dropout = -1);

// Native format: LibTorch's parameter/buffer archive. save_net writes under a temporary name and
// renames; load_net throws ModelError naming the file when it does not fit the architecture.
void save_net(NetImpl& net, const std::filesystem::path& path);
void load_net(NetImpl& net, const std::filesystem::path& path, const torch::Device& device);

}  // namespace wsi::detail
