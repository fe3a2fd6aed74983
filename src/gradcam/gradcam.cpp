// Grad-CAM (gradcam.hpp): the maps from a batch's activations and scores, and wsi::gradcam()
// through the model's own input path and features/classify split (ModelInternals).
#include "wsi/gradcam.hpp"

#include <torch/csrc/autograd/autograd.h>

#include <vector>

#include "gradcam/gradcam_maps.hpp"
#include "model/model_internals.hpp"
#include "wsi/error.hpp"

namespace wsi {

torch::Tensor detail::gradcam_maps(const torch::Tensor& activations, const torch::Tensor& score, int64_t side) {
  // Each patch's score depends only on its own activations, so one gradient of the sum gives
  // every patch's gradient at once; only with respect to A, not the parameters.
  const torch::Tensor g = torch::autograd::grad({score.sum()}, {activations})[0];
  const torch::NoGradGuard no_grad;
  // In float32 whatever the model's precision (bf16 would quantise the normalised map).
  const torch::Tensor w = g.to(torch::kFloat32).mean({2, 3}, /*keepdim=*/true);
  torch::Tensor cam = (w * activations.detach().to(torch::kFloat32)).sum(1).relu();  // N x H x W
  const torch::Tensor peak = cam.amax({1, 2}, /*keepdim=*/true);
  cam = torch::where(peak > 0, cam / peak.clamp_min(1e-30), cam);
  // An explicit IntArrayRef: LibTorch 2.x adds an OptionalIntArrayRef overload that makes a
  // braced {side, side} ambiguous.
  const std::vector<int64_t> size{side, side};
  return at::upsample_bilinear2d(cam.unsqueeze(1), c10::IntArrayRef(size), /*align_corners=*/false).squeeze(1);
}

GradcamBatch gradcam(const Model& model, const uint8_t* patches, int64_t count, int side) {
  if (!model.has_gradcam())
    throw ModelError(model.path(), "Grad-CAM is unavailable: " + model.gradcam_unavailable_reason());
  GradcamBatch out;
  const int P = ModelInternals::patch_side(model, side);
  out.size = P;
  if (count <= 0) return out;
  torch::Tensor x;
  {
    const torch::NoGradGuard no_grad;
    x = ModelInternals::input(model, patches, count, side);
  }
  auto [p, cam] = ModelInternals::gradcam(model, x, count, P);
  const torch::NoGradGuard no_grad;
  p = p.to(torch::kCPU).contiguous();
  cam = cam.to(torch::kCPU).contiguous();
  out.probabilities.assign(p.data_ptr<float>(), p.data_ptr<float>() + count);
  out.cams.assign(cam.data_ptr<float>(), cam.data_ptr<float>() + cam.numel());
  return out;
}

}  // namespace wsi
