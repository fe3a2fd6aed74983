#!/usr/bin/python3
"""Makes the small TorchScript models the fine-tuning tests (tests/test_finetune.cpp) start from,
each with its sidecar: a CNN with batch norm in its features and a linear head, exported with the
features/classify split, in the three output kinds; one without the split; one whose classify
has no parameters of its own.

Usage: make_finetune_models.py OUTDIR     (deterministic: fixed seeds)
"""
import json
import sys

import torch

out = sys.argv[1]
torch.manual_seed(0)
nn = torch.nn


class Small(nn.Module):
    """conv-BN-ReLU-pool, conv-BN-ReLU | mean pool, dropout, linear (sigmoid for "probability")."""

    def __init__(self, outputs=1, probability=False):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        self.drop = nn.Dropout(0.2)
        self.head = nn.Linear(16, outputs)
        self.probability = probability

    @torch.jit.export
    def features(self, x):
        return self.body(x)

    @torch.jit.export
    def classify(self, a):
        z = self.head(self.drop(a.mean(dim=(2, 3))))
        if self.probability:
            return torch.sigmoid(z)
        return z

    def forward(self, x):
        return self.classify(self.features(x))


class Headless(nn.Module):
    """All parameters in features; classify only averages."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 1, 3, padding=1)

    @torch.jit.export
    def features(self, x):
        return self.conv(x)

    @torch.jit.export
    def classify(self, a):
        return a.mean(dim=(1, 2, 3))

    def forward(self, x):
        return self.classify(self.features(x))


def flipped(net):
    """The head negated: with these seeds it then ranks the tests' generated patches backwards
    (ROC AUC about 0.06), so a test sees fine-tuning turn it around."""
    with torch.no_grad():
        net.head.weight.neg_()
        net.head.bias.neg_()
    return net


def save(net, name, split=True, **kw):
    # Running statistics that differ from a fresh layer's (0 and 1), so a test sees them kept.
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.8, 1.2)
    torch.jit.script(net.eval()).save(f"{out}/{name}.pt")
    d = {"format": "wsi-heatmap-model/1", "name": name, "patch_size": 96, "mpp": 0.972, "input_size": 32,
         "resize": "area", "scale": 1 / 255, "mean": [0.7, 0.55, 0.65], "std": [0.15, 0.2, 0.18]}
    if split:
        d["gradcam"] = {"features": "features", "classify": "classify"}
    d.update(kw)
    with open(f"{out}/{name}.json", "w") as f:
        json.dump(d, f, indent=2)


save(flipped(Small()), "logit", output="logit", training={"source": "make_finetune_models.py"})
save(Small(outputs=2), "softmax0", output="softmax", positive_index=0)  # tumour is class 0 (AUC about 0.1)
save(flipped(Small(probability=True)), "probability", output="probability")
save(Small(), "nosplit", split=False, output="logit")
save(Headless(), "headless", output="logit")
