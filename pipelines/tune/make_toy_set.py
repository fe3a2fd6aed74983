#!/usr/bin/python3
"""A toy PCam-layout train/validation pair and a small search space, to try tune.py in minutes.

    pipelines/tune/make_toy_set.py DIR

Writes DIR/train_{x,y}.h5 (2000 patches), DIR/valid_{x,y}.h5 (500), 32 px, and DIR/space.json
(cancernet at 32 px; width, lr, weight decay, dropout, batch and augment tuned). Tumour patches
are slightly less green with a coarse texture, and 10 % of labels are flipped, so the validation
AUC tops out near 0.92: generated data, for trying the tuner, not for judging models.
"""
import json
import sys
from pathlib import Path

SPACE = {
    "arch": "cancernet",
    "input_size": 32,
    "width": {"choices": [4, 8, 16]},
    "lr": {"type": "float", "low": 1e-4, "high": 3e-2, "log": True},
    "weight_decay": {"type": "float", "low": 1e-6, "high": 1e-3, "log": True},
    "dropout": {"type": "float", "low": 0.0, "high": 0.6},
    "batch": {"choices": [32, 64, 128]},
    "augment": {"type": "float", "low": 0.0, "high": 2.0},
}


def make(prefix, n, seed):
    import h5py
    import numpy as np

    rng = np.random.default_rng(seed)
    y = (np.arange(n) % 2).astype(np.uint8)
    rng.shuffle(y)
    x = rng.normal(195, 30, (n, 32, 32, 3))
    coarse = rng.normal(0, 25, (n, 8, 8, 1)).repeat(4, 1).repeat(4, 2)
    x[y == 1] += coarse[y == 1]
    x[y == 1, :, :, 1] -= 8
    y = np.where(rng.random(n) < 0.1, 1 - y, y).astype(np.uint8)
    for key, data in (("x", np.clip(x, 0, 255).astype(np.uint8)), ("y", y.reshape(n, 1, 1, 1))):
        name = f"{prefix}_{key}.h5"
        with h5py.File(name + ".tmp", "w") as f:
            f.create_dataset(key, data=data)
        Path(name + ".tmp").replace(name)


def main():
    if len(sys.argv) != 2:
        print("usage: make_toy_set.py DIR", file=sys.stderr)
        return 2
    out = Path(sys.argv[1])
    try:
        out.mkdir(parents=True, exist_ok=True)
        make(str(out / "train"), 2000, 1)
        make(str(out / "valid"), 500, 2)
        (out / "space.json.tmp").write_text(json.dumps(SPACE, indent=1) + "\n")
        (out / "space.json.tmp").replace(out / "space.json")
    except ImportError as e:
        print(f"make_toy_set.py: error: {e.name} is not installed (Debian: python3-h5py python3-numpy)", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"make_toy_set.py: error: {out}: {e.strerror}; choose a writable folder", file=sys.stderr)
        return 2
    print(f"wrote {out}/train_x.h5, train_y.h5 (2000 patches), valid_x.h5, valid_y.h5 (500), space.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
