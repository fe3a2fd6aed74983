#!/usr/bin/python3
"""Exports a PyTorch patch classifier into wsi-heatmap's model contract: NAME.pt (TorchScript)
plus the NAME.json sidecar (include/wsi/model.hpp), with the features/classify split Grad-CAM
uses (include/wsi/gradcam.hpp).

  export_model.py --arch resnet18 [--weights FILE.pth] [--num-classes 1|2] --out DIR/NAME.pt
  export_model.py --module my_net.py:MyNet [--weights FILE.pth] --out DIR/NAME.pt

--arch builds a torchvision model (resnet18, resnet50, mobilenet_v2, densenet121, densenet169,
efficientnet_b0) with its last layer sized for --num-classes outputs (1: "logit", read through a
sigmoid; 2: "softmax", class --positive-index is the tumour class), loads --weights (a
state_dict, strictly) and wraps it with exported features(x) (the last convolutional
activations, N x C x H x W) and classify(a) (pooling + head). A state_dict whose only
difference is a head of another size (torchvision's ImageNet weights, e.g. resnet50-0676ba61.pth
with 1000 classes) loads every backbone tensor strictly and gets a new, randomly initialised head
(--seed) for --num-classes, said on stderr: the model to fine-tune with `wsi-heatmap train --init`. --module takes your own nn.Module
(FILE.py:NAME or package.module:NAME; NAME is a class or function called with no arguments)
that already has features/classify methods; they are exported as they are.

The exported file is checked before it is written: it is reloaded, forward(x) must equal
classify(features(x)) on a random batch (atol 1e-5), and the output shape must fit the sidecar's
"output". Both files are written under temporary names and renamed into place.

Exit codes: 0 done; 2 usage (bad option, missing or unusable file, weights that do not fit);
1 the model fails its checks or cannot be exported. Errors are one line on stderr.
"""
import argparse
import importlib
import importlib.util
import json
import math
import os
import re
import sys
import warnings
import zipfile

PROG = "export_model.py"
FORMAT = "wsi-heatmap-model/1"
ARCHS = ("resnet18", "resnet50", "mobilenet_v2", "densenet121", "densenet169", "efficientnet_b0")
# The last layer of each architecture: the classes' layer, replaced when --weights has another size.
HEADS = {"resnet18": "fc", "resnet50": "fc", "mobilenet_v2": "classifier.1", "densenet121": "classifier",
         "densenet169": "classifier", "efficientnet_b0": "classifier.1"}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Failure(Exception):
    """An expected error: printed as one line, exit code `code`."""

    def __init__(self, message, code=2):
        super().__init__(message)
        self.code = code


def one_line(e):
    """An exception's message on one line (TorchScript and torch.load messages span many)."""
    lines = [l.strip() for l in str(e).splitlines() if l.strip()]
    text = lines[0] if lines else type(e).__name__
    return text if len(text) <= 300 else text[:297] + "..."


# ---- options ---------------------------------------------------------------------------------

class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse prints usage + message otherwise)
        raise Failure(f"{message} (see --help)")


def triple(text):
    try:
        v = [float(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not three comma-separated numbers")
    if len(v) != 3 or not all(math.isfinite(x) for x in v):
        raise argparse.ArgumentTypeError(f"'{text}' is not three comma-separated numbers (R,G,B)")
    return v


def parse_args(argv):
    p = Parser(prog=PROG, description=__doc__.split("\n\n")[0],
               formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--arch", choices=ARCHS, help="a torchvision architecture")
    src.add_argument("--module", metavar="FILE.py:NAME",
                     help="your nn.Module with features/classify (FILE.py:NAME or pkg.mod:NAME)")
    p.add_argument("--weights", metavar="FILE.pth",
                   help="state_dict to load (strict; for --arch, a head of another size, e.g. ImageNet's 1000 "
                        "classes, is replaced by a new one); default random weights")
    p.add_argument("--num-classes", type=int, choices=(1, 2),
                   help="--arch outputs: 1 = logit, 2 = softmax (default 1)")
    p.add_argument("--output", choices=("logit", "probability", "softmax"),
                   help="sidecar output kind (default: from --num-classes, or from the --module's output shape)")
    p.add_argument("--out", required=True, metavar="DIR/NAME.pt", help="TorchScript file; NAME.json is written beside it")
    p.add_argument("--patch-size", type=int, default=96, help="slide pixels per patch side at --mpp (default 96)")
    p.add_argument("--input-size", type=int, help="network input side (default: --patch-size)")
    p.add_argument("--mpp", type=float, default=0.972, help="microns per pixel the model was trained at (default 0.972)")
    p.add_argument("--resize", choices=("none", "nearest", "bilinear", "area"),
                   help="patch -> input resize (default none; needed when --input-size differs)")
    p.add_argument("--scale", type=float, default=1 / 255, help="pixel multiplier before mean/std (default 1/255)")
    p.add_argument("--mean", type=triple, default=list(IMAGENET_MEAN), help="R,G,B (default ImageNet 0.485,0.456,0.406)")
    p.add_argument("--std", type=triple, default=list(IMAGENET_STD), help="R,G,B (default ImageNet 0.229,0.224,0.225)")
    p.add_argument("--channel-order", choices=("RGB", "BGR"), default="RGB")
    p.add_argument("--positive-index", type=int, help="softmax column of the tumour class (default 1)")
    p.add_argument("--name", help="model name (default: NAME of --out)")
    p.add_argument("--description", help="free text for the sidecar")
    p.add_argument("--seed", type=int, default=0, help="torch.manual_seed for random weights and the check batch (default 0)")
    a = p.parse_args(argv)

    if not a.out.endswith(".pt") or os.path.basename(a.out) == ".pt":
        raise Failure(f"--out {a.out}: must name a NAME.pt file (NAME.json is written beside it)")
    out_dir = os.path.dirname(os.path.abspath(a.out))
    if not os.path.isdir(out_dir):
        raise Failure(f"--out {a.out}: directory {out_dir} does not exist; create it first")
    if os.path.isdir(a.out):
        raise Failure(f"--out {a.out}: is a directory; name a NAME.pt file")
    if a.weights is not None and not os.path.isfile(a.weights):
        raise Failure(f"--weights {a.weights}: " + ("is a directory" if os.path.isdir(a.weights) else "no such file"))
    if a.weights is not None:
        precheck_weights(a.weights)
    if a.input_size is None:
        a.input_size = a.patch_size
    for opt, v in (("--patch-size", a.patch_size), ("--input-size", a.input_size)):
        if not 1 <= v <= 4096:
            raise Failure(f"{opt} {v}: must be 1..4096 pixels")
    if a.resize is None:
        a.resize = "none"
        if a.input_size != a.patch_size:
            raise Failure(f"--input-size {a.input_size} differs from --patch-size {a.patch_size}: "
                          "pass --resize nearest|bilinear|area (how the network was trained)")
    elif a.resize == "none" and a.input_size != a.patch_size:
        raise Failure(f"--resize none needs --input-size == --patch-size ({a.input_size} != {a.patch_size})")
    if not (math.isfinite(a.mpp) and 0 < a.mpp <= 1000):
        raise Failure(f"--mpp {a.mpp}: must be microns per pixel > 0 (0.25 is 40x, 0.5 is 20x)")
    if not (math.isfinite(a.scale) and a.scale > 0):
        raise Failure(f"--scale {a.scale}: must be > 0 (1/255 = 0.00392156862745098 maps 0..255 to 0..1)")
    if any(s <= 0 for s in a.std):
        raise Failure(f"--std {','.join(map(str, a.std))}: every value must be > 0")
    if a.arch is not None:
        a.num_classes = 1 if a.num_classes is None else a.num_classes
        kind = "logit" if a.num_classes == 1 else "softmax"
        if a.output is not None and a.output != kind:
            raise Failure(f"--output {a.output} does not fit --num-classes {a.num_classes} "
                          f"(torchvision heads return logits: use --output {kind} or leave it out)")
        a.output = kind
    elif a.num_classes is not None:
        raise Failure("--num-classes applies to --arch; a --module's outputs are its own (see --output)")
    if a.module is not None:
        spec, sep, name = a.module.rpartition(":")
        if not sep or not spec or not name:
            raise Failure(f"--module {a.module}: write FILE.py:NAME or package.module:NAME")
        if is_file_spec(spec) and not os.path.isfile(spec):
            raise Failure(f"--module {a.module}: {spec}: no such file")
    if a.positive_index is not None:
        if a.output not in (None, "softmax"):
            raise Failure(f"--positive-index applies to softmax output only, not {a.output}")
        if a.positive_index < 0:
            raise Failure(f"--positive-index {a.positive_index}: must be a class index >= 0")
        if a.arch is not None and a.positive_index >= a.num_classes:
            raise Failure(f"--positive-index {a.positive_index}: the model has {a.num_classes} outputs")
    if a.name is not None and not a.name.strip():
        raise Failure("--name must not be empty")
    return a


# ---- building the model ----------------------------------------------------------------------

def import_torch():
    try:
        import torch
    except ImportError as e:
        raise Failure(f"PyTorch is needed ({one_line(e)}): pip install torch (Debian: apt install python3-torch)")
    return torch


def make_wrappers(torch):
    """The Grad-CAM split of each torchvision layout; TorchScript-compatible."""
    nn, F = torch.nn, torch.nn.functional

    class ResNetSplit(nn.Module):
        """torchvision ResNet: conv1..layer4 | avgpool + flatten + fc."""

        def __init__(self, m):
            super().__init__()
            self.conv1, self.bn1, self.relu, self.maxpool = m.conv1, m.bn1, m.relu, m.maxpool
            self.layer1, self.layer2, self.layer3, self.layer4 = m.layer1, m.layer2, m.layer3, m.layer4
            self.avgpool, self.fc = m.avgpool, m.fc

        @torch.jit.export
        def features(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            return self.layer4(self.layer3(self.layer2(self.layer1(x))))

        @torch.jit.export
        def classify(self, a):
            return self.fc(torch.flatten(self.avgpool(a), 1))

        def forward(self, x):
            return self.classify(self.features(x))

    class SequentialSplit(nn.Module):
        """MobileNetV2 / EfficientNet: .features | adaptive average pool + flatten + .classifier."""

        def __init__(self, m):
            super().__init__()
            self.body, self.classifier = m.features, m.classifier

        @torch.jit.export
        def features(self, x):
            return self.body(x)

        @torch.jit.export
        def classify(self, a):
            return self.classifier(torch.flatten(F.adaptive_avg_pool2d(a, (1, 1)), 1))

        def forward(self, x):
            return self.classify(self.features(x))

    class DenseNetSplit(nn.Module):
        """DenseNet: .features + ReLU (torchvision applies it in forward) | pool + .classifier."""

        def __init__(self, m):
            super().__init__()
            self.body, self.classifier = m.features, m.classifier

        @torch.jit.export
        def features(self, x):
            return F.relu(self.body(x))

        @torch.jit.export
        def classify(self, a):
            return self.classifier(torch.flatten(F.adaptive_avg_pool2d(a, (1, 1)), 1))

        def forward(self, x):
            return self.classify(self.features(x))

    return {"resnet18": ResNetSplit, "resnet50": ResNetSplit, "mobilenet_v2": SequentialSplit,
            "efficientnet_b0": SequentialSplit, "densenet121": DenseNetSplit, "densenet169": DenseNetSplit}


def precheck_weights(path):
    """Rejects files torch.save did not write before torch is imported (that takes seconds)."""
    how = "save one with torch.save(model.state_dict(), PATH)"
    try:
        with open(path, "rb") as f:
            magic = f.read(2)
    except OSError as e:
        raise Failure(f"--weights {path}: cannot be read ({e.strerror})")
    if magic != b"PK" and magic[:1] != b"\x80":  # torch.save: zip (>= 1.6) or legacy pickle
        raise Failure(f"--weights {path}: is not a file torch.save wrote; {how}")
    if magic == b"PK":
        try:
            with zipfile.ZipFile(path) as z:
                torchscript = any(n.endswith("/constants.pkl") or n == "constants.pkl" for n in z.namelist())
        except (zipfile.BadZipFile, OSError):
            torchscript = False
        if torchscript:
            raise Failure(f"--weights {path}: is a TorchScript model, not a state_dict; a TorchScript file "
                          "only needs its NAME.json sidecar (see include/wsi/model.hpp), or pass the "
                          "state_dict it was trained with")


def load_state_dict(torch, path):
    """The state_dict in `path` (also accepted: {"state_dict": ...} checkpoints, "module." prefixes)."""
    kwargs = {"map_location": "cpu"}
    try:
        import inspect
        if "weights_only" in inspect.signature(torch.load).parameters:
            kwargs["weights_only"] = True  # tensors and plain containers only: no code runs
    except (TypeError, ValueError):
        pass
    how = "save one with torch.save(model.state_dict(), PATH)"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obj = torch.load(path, **kwargs)
    except Exception as e:  # noqa: BLE001 - torch.load raises many kinds
        text = " ".join(str(e).split())
        unsupported = re.search(r"Unsupported (class|global) ([\w.]+)", text)
        if unsupported:  # a whole pickled model or a checkpoint with objects in it
            raise Failure(f"--weights {path}: holds a pickled {unsupported.group(2)}, not only tensors; "
                          f"load it in Python and {how}")
        raise Failure(f"--weights {path}: cannot be read as a PyTorch state_dict "
                      f"({type(e).__name__}: {one_line(e)}); {how}")
    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in obj.items()):
        raise Failure(f"--weights {path}: is not a state_dict (a dict of name -> tensor); "
                      "save one with torch.save(model.state_dict(), PATH)")
    if all(k.startswith("module.") for k in obj):  # saved from nn.DataParallel
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def counter(k):
    """Batch norm's step counter: absent from files saved before PyTorch 0.4.1 (torchvision's
    older ImageNet downloads), unused by the layer when momentum is set; the model's 0 stays."""
    return k.endswith(".num_batches_tracked")


def apply_weights(torch, model, path, what, head=None, sd=None):
    """Loads `path` into `model` strictly (but see counter()); tensors under `head` (a module
    name) are left out."""
    sd = load_state_dict(torch, path) if sd is None else sd
    own = model.state_dict()
    if head is not None:
        own = {k: v for k, v in own.items() if not k.startswith(head + ".")}
        sd = {k: v for k, v in sd.items() if not k.startswith(head + ".")}
    missing = [k for k in own if k not in sd and not counter(k)]
    unexpected = [k for k in sd if k not in own]
    mismatched = [k for k in own if k in sd and tuple(sd[k].shape) != tuple(own[k].shape)]

    def some(keys, show=lambda k: k):
        return ", ".join(show(k) for k in keys[:3]) + (f" (+{len(keys) - 3} more)" if len(keys) > 3 else "")

    problems = []
    if mismatched:
        problems.append("shape mismatch " + some(
            mismatched, lambda k: f"{k} {list(sd[k].shape)} in file vs {list(own[k].shape)} in model"))
    if missing:
        problems.append(f"{len(missing)} missing keys: {some(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys: {some(unexpected)}")
    if problems:
        raise Failure(f"--weights {path}: does not fit {what}: " + "; ".join(problems) +
                      " (check --arch/--module and --num-classes)")
    try:
        result = model.load_state_dict(sd, strict=False)
        left = [k for k in result.missing_keys if not counter(k) and not (head and k.startswith(head + "."))]
        if result.unexpected_keys or left:
            raise RuntimeError(f"keys left over: {result.unexpected_keys + left}")
    except Exception as e:  # noqa: BLE001
        raise Failure(f"--weights {path}: does not fit {what}: {one_line(e)}")


def densenet_keys(sd):
    """torchvision's DenseNet downloads (densenet169-b2777c0a.pth) name layers 'norm.1', 'conv.2':
    renamed to the modules' 'norm1', 'conv2', as torchvision does when it loads them."""
    pattern = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")
    out = {}
    for k, v in sd.items():
        m = pattern.match(k)
        out[m.group(1) + m.group(2) if m else k] = v
    return out


def other_head_size(torch, model, sd, head):
    """The class count of `sd`'s head when it differs from `model`'s and is the only difference."""
    own = model.state_dict()
    keys = (head + ".weight", head + ".bias")
    if {k for k in sd if not counter(k)} != {k for k in own if not counter(k)} or not all(k in own for k in keys):
        return None
    if any(tuple(sd[k].shape) != tuple(own[k].shape) for k in own if k not in keys and k in sd):
        return None
    w, b = sd[keys[0]], sd[keys[1]]
    if w.dim() != 2 or b.dim() != 1 or w.shape[1] != own[keys[0]].shape[1] or b.shape[0] != w.shape[0]:
        return None
    return int(w.shape[0]) if w.shape[0] != own[keys[0]].shape[0] else None


def build_arch(torch, a):
    try:
        import torchvision
    except ImportError as e:
        raise Failure(f"--arch needs torchvision ({one_line(e)}): pip install torchvision "
                      "(Debian: apt install python3-torchvision), or pass your own --module")
    ctor = getattr(torchvision.models, a.arch, None)
    if ctor is None:
        raise Failure(f"--arch {a.arch}: this torchvision ({torchvision.__version__}) does not have it")
    try:
        net = ctor(num_classes=a.num_classes)  # no pretrained download: weights come from --weights
    except Exception as e:  # noqa: BLE001
        raise Failure(f"--arch {a.arch}: torchvision {torchvision.__version__} cannot build it ({one_line(e)})", 1)
    a.head_replaced = None
    if a.weights is not None:
        what = f"torchvision {a.arch} with {a.num_classes} output(s)"
        sd = load_state_dict(torch, a.weights)
        if a.arch.startswith("densenet"):
            sd = densenet_keys(sd)
        classes = other_head_size(torch, net, sd, HEADS[a.arch])
        if classes is None:
            apply_weights(torch, net, a.weights, what, sd=sd)
        else:  # e.g. ImageNet's 1000 classes: the backbone strictly, a new head (initialised at --seed)
            apply_weights(torch, net, a.weights, what, head=HEADS[a.arch], sd=sd)
            a.head_replaced = classes
            print(f"{PROG}: head: {classes} {'ImageNet ' if classes == 1000 else ''}classes replaced by a new "
                  f"{a.num_classes}-logit layer", file=sys.stderr)
    return make_wrappers(torch)[a.arch](net), net.eval()


def is_file_spec(spec):
    return spec.endswith(".py") or os.sep in spec or "/" in spec


def build_module(torch, a):
    spec, _, name = a.module.rpartition(":")
    try:
        if is_file_spec(spec):
            sys.path.insert(0, os.path.dirname(os.path.abspath(spec)))  # its own imports
            mod_name = os.path.splitext(os.path.basename(spec))[0]
            loader = importlib.util.spec_from_file_location(mod_name, spec)
            mod = importlib.util.module_from_spec(loader)
            sys.modules[mod_name] = mod  # TorchScript looks the class's source up through it
            loader.loader.exec_module(mod)
        else:
            mod = importlib.import_module(spec)
    except Failure:
        raise
    except Exception as e:  # noqa: BLE001 - the user's code
        raise Failure(f"--module {a.module}: importing {spec} failed: {type(e).__name__}: {one_line(e)}")
    factory = getattr(mod, name, None)
    if factory is None:
        raise Failure(f"--module {a.module}: {spec} has no '{name}'")
    try:
        net = factory()
    except Exception as e:  # noqa: BLE001
        raise Failure(f"--module {a.module}: {name}() failed: {type(e).__name__}: {one_line(e)} "
                      "(NAME must be callable with no arguments: add a small factory function)")
    if not isinstance(net, torch.nn.Module):
        raise Failure(f"--module {a.module}: {name}() returned {type(net).__name__}, not a torch.nn.Module")
    if a.weights is not None:
        apply_weights(torch, net, a.weights, f"{name}")
    # Methods that forward() does not call are dropped by scripting unless marked for export.
    for method in ("features", "classify"):
        fn = getattr(type(net), method, None)
        if callable(fn) and not hasattr(fn, "_torchscript_modifier"):
            torch.jit.export(fn)
    return net


# ---- exporting and checking ------------------------------------------------------------------

def has_method(scripted, name):
    try:
        return scripted._c._has_method(name)
    except AttributeError:
        return hasattr(scripted, name)


def to_torchscript(torch, net, input_size):
    try:
        return torch.jit.script(net), "scripted"
    except Exception as e:  # noqa: BLE001
        reason = one_line(e)
    x = torch.randn(1, 3, input_size, input_size)
    print(f"{PROG}: note: torch.jit.script failed ({reason}); falling back to torch.jit.trace, "
          "which records one run: data-dependent branches are frozen and Grad-CAM methods "
          "(features/classify) may be missing", file=sys.stderr)
    try:
        if callable(getattr(net, "features", None)) and callable(getattr(net, "classify", None)):
            with torch.no_grad():
                a = net.features(x)
            return torch.jit.trace_module(net, {"forward": x, "features": x, "classify": a}), "traced"
    except Exception:  # noqa: BLE001 - try forward alone
        pass
    try:
        return torch.jit.trace(net, x), "traced"
    except Exception as e:  # noqa: BLE001
        raise Failure(f"cannot export the model: scripting failed ({reason}) and tracing failed ({one_line(e)})", 1)


def check(torch, m, a, out_name, reference=None):
    """Checks the reloaded module against the contract; returns (outputs, features shape, max diff)."""
    batch = 3  # differs from the trace batch (1): a traced batch size would show here
    x = torch.randn(batch, 3, a.input_size, a.input_size)
    with torch.no_grad():
        try:
            y = m(x)
        except Exception as e:  # noqa: BLE001
            raise Failure(f"{out_name}: forward() failed on a [{batch}, 3, {a.input_size}, {a.input_size}] input: "
                          f"{one_line(e)} (is --input-size right?)", 1)
    if not torch.is_tensor(y) or y.dtype not in (torch.float32, torch.float64):
        raise Failure(f"{out_name}: forward() must return a float tensor, not {type(y).__name__}", 1)
    shape = list(y.shape)
    if a.output is None:  # --module without --output: read it off the shape
        a.output = "softmax" if y.dim() == 2 and y.shape[1] >= 2 else "logit"
    if a.output == "softmax":
        if y.dim() != 2 or y.shape[0] != batch or y.shape[1] < 2:
            raise Failure(f"{out_name}: forward() returns shape {shape} for {batch} patches; "
                          "\"softmax\" needs [N, K] logits with K >= 2", 1)
        pi = 1 if a.positive_index is None else a.positive_index
        if pi >= y.shape[1]:
            raise Failure(f"--positive-index {pi}: the model returns only {y.shape[1]} classes")
        a.positive_index = pi
    elif y.numel() != batch or (y.dim() > 0 and y.shape[0] != batch):
        raise Failure(f"{out_name}: forward() returns shape {shape} for {batch} patches; "
                      f"\"{a.output}\" needs one value per patch ([N] or [N, 1])", 1)
    if not bool(torch.isfinite(y).all()):
        raise Failure(f"{out_name}: forward() returns non-finite values on a random batch", 1)
    if a.output == "probability" and not bool(((y >= 0) & (y <= 1)).all()):
        raise Failure(f"{out_name}: \"probability\" output must lie in 0..1; use --output logit if the model "
                      "returns logits", 1)

    if reference is not None:
        with torch.no_grad():
            want = reference(x)
        d = float((want.reshape(y.shape) - y).abs().max()) if want.numel() == y.numel() else math.inf
        if not d <= 1e-5:
            raise Failure(f"{out_name}: the export differs from torchvision's {a.arch} forward "
                          f"(max |difference| {d:.3g}): a bug in this exporter's split, please report it", 1)
    if not (has_method(m, "features") and has_method(m, "classify")):
        return shape, None, None
    with torch.no_grad():
        try:
            feats = m.features(x)
            z = m.classify(feats)
        except Exception as e:  # noqa: BLE001
            raise Failure(f"{out_name}: classify(features(x)) failed: {one_line(e)}", 1)
    if not torch.is_tensor(feats) or feats.dim() != 4 or feats.shape[0] != batch:
        got = list(feats.shape) if torch.is_tensor(feats) else type(feats).__name__
        raise Failure(f"{out_name}: features() must return N x C x H x W activations, not {got}", 1)
    if not torch.is_tensor(z) or list(z.shape) != shape:
        got = list(z.shape) if torch.is_tensor(z) else type(z).__name__
        raise Failure(f"{out_name}: classify(features(x)) returns {got} but forward(x) returns {shape}", 1)
    diff = float((z - y).abs().max())
    if not diff <= 1e-5:
        raise Failure(f"{out_name}: forward(x) != classify(features(x)) (max |difference| {diff:.3g} > 1e-5): "
                      "forward must be exactly classify(features(x)) for Grad-CAM to explain it", 1)
    return shape, list(feats.shape[1:]), diff


def sidecar(a, name, gradcam, outputs, framework):
    d = {"format": FORMAT, "name": name}
    d["description"] = a.description if a.description is not None else (
        f"{a.arch or a.module} exported by tools/export_model.py")
    d.update({"patch_size": a.patch_size, "mpp": a.mpp, "input_size": a.input_size, "resize": a.resize,
              "scale": a.scale, "mean": a.mean, "std": a.std, "channel_order": a.channel_order,
              "output": a.output})
    if a.output == "softmax":
        d["positive_index"] = a.positive_index
    if gradcam:
        d["gradcam"] = {"features": "features", "classify": "classify"}
    # "architecture" is reserved for built-in networks (it makes the loader rebuild one); provenance
    # of an export goes under "training", which the loader keeps but does not interpret.
    d["training"] = {"source": a.arch if a.arch else a.module, "outputs": outputs, "exported_with": framework,
                     "weights": os.path.basename(a.weights) if a.weights else f"random (--seed {a.seed})"}
    if getattr(a, "head_replaced", None):
        d["training"]["head"] = (f"new {a.num_classes}-logit layer, random (--seed {a.seed}), in place of the "
                                 f"file's {a.head_replaced} classes: fine-tune it (wsi-heatmap train --init)")
    return d


def write_atomically(final, write):
    tmp = os.path.join(os.path.dirname(os.path.abspath(final)),
                       f".{os.path.basename(final)}.partial-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, final)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise


def export(a):
    torch = import_torch()
    torch.manual_seed(a.seed)
    reference = None  # for --arch: torchvision's own forward, which the export must reproduce
    if a.arch:
        net, reference = build_arch(torch, a)
    else:
        net = build_module(torch, a)
    net = net.cpu().eval()
    ts, how = to_torchscript(torch, net, a.input_size)

    out = os.path.abspath(a.out)
    name = a.name if a.name is not None else os.path.splitext(os.path.basename(out))[0]
    json_path = os.path.splitext(out)[0] + ".json"
    out_dir = os.path.dirname(out)
    probe = os.path.join(out_dir, f".{os.path.basename(out)}.partial-{os.getpid()}")
    try:
        ts.save(probe)  # check what C++ will load: the saved file, reloaded
        m = torch.jit.load(probe, map_location="cpu").eval()
        shape, feat_shape, diff = check(torch, m, a, a.out, reference)
        gradcam = feat_shape is not None
        outputs = shape[1] if len(shape) == 2 else 1
        side = sidecar(a, name, gradcam, outputs, f"torch {torch.__version__}, {how}")
        text = json.dumps(side, indent=2) + "\n"
        os.replace(probe, out)
    except BaseException:
        try:
            os.remove(probe)
        except OSError:
            pass
        raise
    write_atomically(json_path, lambda p: open(p, "w", encoding="utf-8").write(text))

    split = (f"Grad-CAM on {feat_shape[0]}x{feat_shape[1]}x{feat_shape[2]} features "
             f"(forward == classify(features), max |diff| {diff:.1e})") if gradcam else \
        "no Grad-CAM (the module has no features/classify methods)"
    print(f"exported {side['training']['source']} ({how}, {outputs} output(s), "
          f"\"{a.output}\") to {a.out} + {os.path.basename(json_path)}: input 3x{a.input_size}x{a.input_size} "
          f"from {a.patch_size} px at {a.mpp} um/px, {split}"
          + ("" if a.weights else "; random weights (no --weights)"))


def main(argv):
    a = None
    try:
        a = parse_args(argv)
        export(a)
    except Failure as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return e.code
    except OSError as e:  # writing the output (disk full, permissions)
        print(f"{PROG}: error: {e.filename or (a.out if a else '')}: {e.strerror or one_line(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
