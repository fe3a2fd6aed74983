#!/usr/bin/python3
"""Makes the TorchScript models the model tests load, and the reference outputs PyTorch itself
computes for them (an independent implementation of the sidecar's preprocessing).

Usage: make_test_models.py OUTDIR     (deterministic: fixed seeds)
"""
import json
import sys

import numpy as np
import torch

out = sys.argv[1]
torch.manual_seed(0)
rng = np.random.default_rng(0)


class TinyCnn(torch.nn.Module):
    def __init__(self, outputs=1):
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU())
        self.head = torch.nn.Linear(16, outputs)

    @torch.jit.export
    def features(self, x):
        return self.body(x)

    @torch.jit.export
    def classify(self, a):
        return self.head(a.mean(dim=(2, 3)))

    def forward(self, x):
        return self.classify(self.features(x))


class NoSplit(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 1, 3)

    def forward(self, x):
        return self.conv(x).mean(dim=(1, 2, 3))


class Wrong(torch.nn.Module):
    def forward(self, x):
        return x.mean(dim=(2, 3)).repeat(1, 4)[:, :10]


class Darkness(torch.nn.Module):
    """Probability = sigmoid(20 (0.6 - mean intensity)): a known function of the patch, for
    checking that stitched heatmaps line up with the slide (dark = 'tumour')."""

    @torch.jit.export
    def features(self, x):
        return 0.6 - x.mean(dim=1, keepdim=True)

    @torch.jit.export
    def classify(self, a):
        return 20.0 * a.mean(dim=(2, 3))

    def forward(self, x):
        return self.classify(self.features(x))


def sidecar(name, **kw):
    d = {"format": "wsi-heatmap-model/1", "name": name, "patch_size": 96, "mpp": 0.972}
    d.update(kw)
    with open(f"{out}/{name}.json", "w") as f:
        json.dump(d, f, indent=2)


def preprocess(patches, size, mean, std):
    """Independent of the C++: PIL-style nearest indices, then scale/mean/std, NCHW."""
    idx = np.floor((np.arange(size) + 0.5) * 96 / size).astype(int)
    x = patches[:, idx][:, :, idx].astype(np.float32) / 255.0
    x = (x - np.array(mean, np.float32)) / np.array(std, np.float32)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


patches = rng.integers(0, 256, size=(5, 96, 96, 3), dtype=np.uint8)
patches.tofile(f"{out}/patches.u8")
mean, std = [0.70, 0.55, 0.65], [0.15, 0.20, 0.18]

cnn = torch.jit.script(TinyCnn().eval())
cnn.save(f"{out}/cnn.pt")
sidecar("cnn", input_size=32, resize="nearest", scale=1 / 255, mean=mean, std=std, output="logit",
        gradcam={"features": "features", "classify": "classify"})
with torch.no_grad():
    p = torch.sigmoid(cnn(preprocess(patches, 32, mean, std))).reshape(-1)
np.savetxt(f"{out}/cnn.expected", p.numpy(), fmt="%.8f")

soft = torch.jit.script(TinyCnn(outputs=2).eval())
soft.save(f"{out}/softmax.pt")
sidecar("softmax", input_size=96, scale=1 / 255, mean=mean, std=std, output="softmax", positive_index=1)
with torch.no_grad():
    p = torch.softmax(soft(preprocess(patches, 96, mean, std)), dim=1)[:, 1]
np.savetxt(f"{out}/softmax.expected", p.numpy(), fmt="%.8f")

torch.jit.script(NoSplit().eval()).save(f"{out}/nosplit.pt")
sidecar("nosplit", output="logit")

torch.jit.script(Darkness().eval()).save(f"{out}/darkness.pt")
sidecar("darkness", mpp=0.25, output="logit", gradcam={"features": "features", "classify": "classify"})
# The same function of the patch, behind an area resize 96 -> 48: the heatmap then reads its
# patches at 48 px from level 1 (mean intensity does not change with an area resize).
torch.jit.script(Darkness().eval()).save(f"{out}/darkness48.pt")
sidecar("darkness48", mpp=0.25, input_size=48, resize="area", output="logit",
        gradcam={"features": "features", "classify": "classify"})


class FailsOnDark(torch.nn.Module):
    """Darkness, except that forward() raises for a batch holding a dark pixel: an inference
    failure in the middle of a slide (the contract check's mid-grey patch passes)."""

    def forward(self, x):
        if bool(x.amin() < 0.3):
            raise RuntimeError("test model: dark patch")
        return 20.0 * (0.6 - x.mean(dim=(1, 2, 3)))


torch.jit.script(FailsOnDark().eval()).save(f"{out}/fails_on_dark.pt")
sidecar("fails_on_dark", mpp=0.25, output="logit")

torch.jit.script(Wrong().eval()).save(f"{out}/wrong.pt")
sidecar("wrong", output="logit")

# Grad-CAM reference for cnn.pt, computed with autograd exactly as include/wsi/gradcam.hpp states.
x = preprocess(patches, 32, mean, std)
with torch.no_grad():
    a = cnn.features(x)
a = a.detach().requires_grad_(True)
s = cnn.classify(a).reshape(-1)
(g,) = torch.autograd.grad(s.sum(), [a])
with torch.no_grad():
    cam = torch.relu((g.mean(dim=(2, 3), keepdim=True) * a).sum(1))
    peak = cam.amax(dim=(1, 2), keepdim=True)
    cam = torch.where(peak > 0, cam / peak.clamp_min(1e-30), cam)
    cam = torch.nn.functional.interpolate(cam[:, None], size=(96, 96), mode="bilinear",
                                          align_corners=False)[:, 0]
cam.numpy().astype(np.float32).tofile(f"{out}/cnn.cam")
