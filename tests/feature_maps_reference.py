#!/usr/bin/python3
"""Reference activations for tests/test_feature_maps.cpp, computed by PyTorch itself.

  feature_maps_reference.py resnet18 OUTDIR
      torchvision's resnet18 (1 output, seed 3, batch-norm statistics randomised so that they
      matter): OUTDIR/r18.pth (its state_dict, for tools/export_model.py --weights),
      OUTDIR/patches.u8 (3 random 64x64 RGB patches), and, from forward hooks on the eager
      network, OUTDIR/conv.f32 (output of the first nn.Conv2d in named_modules() order, whose name
      goes to OUTDIR/conv.name) and OUTDIR/features.f32 (layer4's output: what export_model.py's
      features() returns), float32 NCHW, on the patches normalised as export_model.py's sidecar
      says ((x / 255 - ImageNet mean) / ImageNet std).
  feature_maps_reference.py cnn MODELS OUTDIR
      MODELS/cnn.pt from tests/make_test_models.py on MODELS/patches.u8: OUTDIR/conv.f32 (its
      body.0 Conv2d) and OUTDIR/features.f32 (its features method), with the sidecar's nearest
      resize 96 -> 32 and mean/std done here in numpy.
"""
import json
import sys

import numpy as np
import torch


def save(path, t):
    t.detach().numpy().astype(np.float32).tofile(path)


def resnet18(out):
    import torchvision

    torch.manual_seed(3)
    net = torchvision.models.resnet18(num_classes=1).eval()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    torch.save(net.state_dict(), f"{out}/r18.pth")
    rng = np.random.default_rng(3)
    patches = rng.integers(0, 256, size=(3, 64, 64, 3), dtype=np.uint8)
    patches.tofile(f"{out}/patches.u8")
    mean = np.array([0.485, 0.456, 0.406], np.float32)
    std = np.array([0.229, 0.224, 0.225], np.float32)
    x = torch.from_numpy(np.ascontiguousarray(((patches / np.float32(255) - mean) / std).transpose(0, 3, 1, 2)))
    x = x.float()

    seen = {}
    name, conv = next((n, m) for n, m in net.named_modules() if isinstance(m, torch.nn.Conv2d))
    conv.register_forward_hook(lambda m, i, o: seen.__setitem__("conv", o))
    net.layer4.register_forward_hook(lambda m, i, o: seen.__setitem__("features", o))
    with torch.no_grad():
        net(x)
    save(f"{out}/conv.f32", seen["conv"])
    save(f"{out}/features.f32", seen["features"])
    with open(f"{out}/conv.name", "w") as f:
        f.write(name)


def cnn(models, out):
    m = torch.jit.load(f"{models}/cnn.pt").eval()
    with open(f"{models}/cnn.json") as f:
        side = json.load(f)
    patches = np.fromfile(f"{models}/patches.u8", np.uint8).reshape(-1, 96, 96, 3)
    size = side["input_size"]
    idx = np.floor((np.arange(size) + 0.5) * 96 / size).astype(int)
    x = patches[:, idx][:, :, idx].astype(np.float32) * np.float32(side["scale"])
    x = (x - np.array(side["mean"], np.float32)) / np.array(side["std"], np.float32)
    x = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    with torch.no_grad():
        save(f"{out}/conv.f32", getattr(m.body, "0")(x))
        save(f"{out}/features.f32", m.features(x))


if __name__ == "__main__":
    if sys.argv[1] == "resnet18":
        resnet18(sys.argv[2])
    else:
        cnn(sys.argv[2], sys.argv[3])
