#!/usr/bin/python3
"""Grad-CAM of one patch computed with PyTorch's autograd, independently of the C++ code, and
compared with the float32 .npy that `wsi-heatmap predict --gradcam` wrote for it.

Usage: gradcam_reference.py MODEL.pt PATCH.u8 CAM.npy
  MODEL.pt   a TorchScript model exporting features() and classify(), with MODEL.json beside it
  PATCH.u8   the patch's raw RGB bytes (P x P x 3, row-major), P = the sidecar's patch_size
  CAM.npy    what predict wrote
Prints the largest absolute difference; exits 1 when it is 1e-4 or more (or the file is not
float32 (P, P) little-endian C order).

The recipe (include/wsi/gradcam.hpp): preprocess as the sidecar says (nearest: source index
floor((i + 0.5) * P / S); scale, mean, std), A = features(x) as a leaf that requires grad,
s = the positive score of classify(A) (the logit for "logit" models), g = ds/dA, channel weights
= spatial mean of g, CAM = ReLU(sum_c w_c A_c), divided by its maximum, bilinearly upsampled
(align_corners=False) to P x P.
"""
import json
import sys

import numpy as np
import torch

model_path, patch_path, cam_path = sys.argv[1:4]
spec = json.load(open(model_path[:-3] + ".json"))
P = spec["patch_size"]
S = spec.get("input_size", P)
resize = spec.get("resize", "none")
if resize not in ("none", "nearest") or spec.get("output", "logit") != "logit":
    sys.exit("gradcam_reference.py handles logit models with resize none or nearest")

patch = np.fromfile(patch_path, dtype=np.uint8).reshape(P, P, 3)
idx = np.floor((np.arange(S) + 0.5) * P / S).astype(int)
x = patch[idx][:, idx].astype(np.float32) * np.float32(spec.get("scale", 1 / 255))
x = (x - np.array(spec.get("mean", [0, 0, 0]), np.float32)) / np.array(spec.get("std", [1, 1, 1]), np.float32)
x = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)[None]))

model = torch.jit.load(model_path).eval()
with torch.no_grad():
    a = model.features(x)
a = a.detach().requires_grad_(True)
s = model.classify(a).reshape(-1)
(g,) = torch.autograd.grad(s.sum(), [a])
with torch.no_grad():
    cam = torch.relu((g.mean(dim=(2, 3), keepdim=True) * a).sum(1))
    peak = cam.amax(dim=(1, 2), keepdim=True)
    cam = torch.where(peak > 0, cam / peak.clamp_min(1e-30), cam)
    cam = torch.nn.functional.interpolate(cam[:, None], size=(P, P), mode="bilinear", align_corners=False)[0, 0]

got = np.load(cam_path)
if got.dtype != np.dtype("<f4") or got.shape != (P, P) or not got.flags["C_CONTIGUOUS"]:
    sys.exit(f"{cam_path}: dtype {got.dtype.str} shape {got.shape}, not <f4 ({P}, {P}) C order")
diff = float(np.abs(got - cam.numpy()).max())
print(f"max abs difference {diff:.3g}, cam range {float(got.min()):.4f}..{float(got.max()):.4f}")
sys.exit(0 if diff < 1e-4 else 1)
