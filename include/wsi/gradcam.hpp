// wsi/gradcam.hpp — batched Grad-CAM through the model contract's features/classify split.
//
// For a batch: A = features(x) computed without gradient; A is then made a leaf that requires
// grad; s = the positive-class score of classify(A) (the logit for "logit" models, the positive
// column of the logits for "softmax" models, the probability for "probability" models); the
// gradient of sum(s) with respect to A only (no parameter gradients: about one extra forward
// pass); channel weights = spatial mean of that gradient; CAM = ReLU(sum_c w_c * A_c); each
// patch's CAM divided by its own maximum (all-zero CAMs stay zero), then bilinearly upsampled
// (half-pixel centres, as PyTorch's align_corners=false) to the side of the patches given.
//
// Frames and units: cam pixel (x, y) of patch n is at cams[(n * P + y) * P + x], P = the side
// of the given patches (`side` as for Model::predict: the model's patch_size by default, or its
// input_size), aligned with the patch's pixels (row-major, like the RGB input). Values 0..1.
//
// Thread-safety: like Model::predict (one caller at a time per Model).
#pragma once

#include <cstdint>
#include <vector>

#include "wsi/model.hpp"

namespace wsi {

struct GradcamBatch {
  std::vector<float> probabilities;  // count values, as Model::predict
  std::vector<float> cams;           // count * P * P values in 0..1
  int size = 0;                      // P, the side of the patches given
};

// Throws ModelError when the model has no Grad-CAM split (with gradcam_unavailable_reason()).
GradcamBatch gradcam(const Model& model, const uint8_t* patches, int64_t count, int side = 0);

}  // namespace wsi
