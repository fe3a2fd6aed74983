#!/usr/bin/python3
"""CLAM-style baseline for `wsi-heatmap extract`: one OpenSlide read_region per patch.

Reads exactly the patches our run wrote (coordinates from its meta CSV), the way common
Python scripts do it: python3-openslide read_region at the level our run used, PIL box resize to
the patch size, the label from a read_region of the mask (centre 32x32 rule), and h5py datasets
appended in chunks with gzip. Prints one line: `baseline <patches> <seconds>`.
Usage: extract_baseline.py SLIDE MASK META_CSV SUMMARY_JSON OUT_H5
"""
import csv
import json
import sys
import time

import h5py
import numpy as np
import openslide
from PIL import Image


def main():
    slide_path, mask_path, meta_csv, summary_json, out_h5 = sys.argv[1:6]
    summary = json.load(open(summary_json))
    level = summary["slides"][0]["level"]
    p = summary["parameters"]["patch_size"]
    rows = list(csv.DictReader(open(meta_csv)))
    t0 = time.perf_counter()
    slide = openslide.OpenSlide(slide_path)
    mask = openslide.OpenSlide(mask_path)
    ds = slide.level_downsamples[level]
    size0 = int(rows[0]["patch_size_level0"]) if rows else p
    read = max(1, round(size0 / ds))
    with h5py.File(out_h5, "w") as f:
        x = f.create_dataset("x", (0, p, p, 3), maxshape=(None, p, p, 3), dtype="uint8",
                             chunks=(64, p, p, 3), compression="gzip", compression_opts=4)
        y = f.create_dataset("y", (0, 1, 1, 1), maxshape=(None, 1, 1, 1), dtype="uint8",
                             chunks=(64, 1, 1, 1), compression="gzip")
        bx, by = [], []

        def flush():
            n = x.shape[0]
            x.resize(n + len(bx), axis=0)
            x[n:] = np.stack(bx)
            y.resize(n + len(by), axis=0)
            y[n:] = np.array(by, dtype=np.uint8).reshape(-1, 1, 1, 1)
            bx.clear()
            by.clear()

        for r in rows:
            cx, cy = int(r["coord_x"]), int(r["coord_y"])
            img = slide.read_region((cx, cy), level, (read, read)).convert("RGB")
            if read != p:
                img = img.resize((p, p), Image.BOX)
            m = np.asarray(mask.read_region((cx, cy), 0, (size0, size0)).convert("L"))
            c0, c1 = size0 * 32 // p, size0 * 64 // p
            bx.append(np.asarray(img))
            by.append(1 if m[c0:c1, c0:c1].any() else 0)
            if len(bx) == 64:
                flush()
        if bx:
            flush()
    print(f"baseline {len(rows)} {time.perf_counter() - t0:.3f}")


if __name__ == "__main__":
    main()
