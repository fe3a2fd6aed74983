// Private: the tensor half of Grad-CAM (gradcam.hpp), shared by wsi::gradcam() and the model's
// batch slots (torch_model.cpp), which run it on the model's device and streams. What a model
// contributes (its features/classify split and its positive-class score) stays in Model::Impl.
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace wsi::detail {

// Grad-CAM maps from `activations` (N x C x H x W, a leaf that requires grad, which `score`
// [N], each patch's positive-class score, was computed from): the gradient of sum(score) with
// respect to the activations only; channel weights = its spatial mean; CAM = ReLU(sum_c w_c A_c)
// in float32 whatever the activations' precision; each map divided by its own maximum (all-zero
// maps stay zero); bilinearly upsampled (align_corners=false) to `side` x `side`. Returns
// float32 [N, side, side] on the activations' device, without a graph. Needs autograd: not
// under InferenceMode.
torch::Tensor gradcam_maps(const torch::Tensor& activations, const torch::Tensor& score, int64_t side);

}  // namespace wsi::detail
