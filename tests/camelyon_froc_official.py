#!/usr/bin/python3
"""The Camelyon16 lesion-level FROC as the challenge's official Evaluation_FROC.py computes it
(B. Ehteshami Bejnordi, 2016), ported function by function for tests/test_froc_official.cpp,
which checks wsi::camelyon_froc (FrocDefinition::official) against it.

The arithmetic is the script's, numpy types included: lesion scores in a float32 array, false
positive probabilities as Python floats, thresholds sorted(set(...))[1:], counts by numpy
comparisons, a (0, 0) point appended, numpy.interp over the reversed curve. What differs is
around it, and changes no number:
  * a mask is a binary PGM (P5) holding the ground truth AT the evaluation level; the script
    reads that level of a TIFF with OpenSlide and takes its first channel (tumour = 255);
  * scikit-image's measure.label(connectivity=2) and regionprops' major_axis_length become
    scipy.ndimage.label with a 3 x 3 structure and 4 sqrt(largest eigenvalue of the inertia
    tensor) in numpy, their definitions, so that Debian's python3-numpy and python3-scipy suffice;
  * np.object (removed in numpy 1.24) is object; there is no plot, and the results are printed
    for the test rather than as the script's "Avg FP = / Sensitivity =" lines.

Usage: camelyon_froc_official.py CASE_DIR...
Each CASE_DIR holds results/NAME.csv (one per slide, the detections), masks/NAME.pgm (the tumour
slides' masks; as in the script, a slide is a tumour slide when its CSV name less ".csv" equals
the first 8 characters of a mask's name) and `params` ("LEVEL RESOLUTION": the evaluation level
and the level-0 micrometres per pixel). For each case it prints
    case CASE_DIR
    thresholds T...   the swept thresholds, all_probs[1:], then inf for the appended point
    fps F...          average false positives per image at each
    sens S...         sensitivity at each (nan when there is no lesion: the script's 0 / 0)
    at A1 ... A6      the sensitivities at 1/4, 1/2, 1, 2, 4, 8 average false positives
    score M           their mean
    tumours N         lesions counted (ITCs excluded), over all slides
with every number as Python's repr, which strtod reads back exactly.
"""
import os
import sys

import numpy as np
from scipy import ndimage

EVAL_FPS = [0.25, 0.5, 1, 2, 4, 8]


def read_pgm(path):
    """The mask as a 2-D uint8 array (rows, columns). Only what the test writes: P5, maxval 255."""
    with open(path, 'rb') as f:
        magic, size, maxval, pixels = f.read().split(b'\n', 3)
    if magic != b'P5' or maxval != b'255':
        raise ValueError(path + ': not an 8-bit binary PGM')
    width, height = (int(v) for v in size.split())
    return np.frombuffer(pixels, dtype=np.uint8, count=width * height).reshape(height, width)


def evaluation_mask(mask, resolution, level):
    """computeEvaluationMask: tumour (255) dilated by half of 75 um, holes filled, 8-connected
    lesions labelled 1..n."""
    distance = ndimage.distance_transform_edt(255 - mask)  # to the nearest 255 pixel
    radius = 75 / (resolution * pow(2, level) * 2)
    filled = ndimage.binary_fill_holes(distance < radius)
    labels, _ = ndimage.label(filled, structure=np.ones((3, 3), dtype=int))
    return labels


def major_axis_length(region):
    """scikit-image's regionprops major_axis_length: 4 sqrt of the largest eigenvalue of the
    inertia tensor, i.e. of the second central moments divided by the area."""
    rows, cols = np.nonzero(region)
    r = rows - rows.mean()
    c = cols - cols.mean()
    tensor = np.array([[np.sum(c * c), -np.sum(r * c)], [-np.sum(r * c), np.sum(r * r)]]) / rows.size
    largest = max(np.clip(np.linalg.eigvalsh(tensor), 0, None))
    return 4 * np.sqrt(largest)


def itc_labels(labels, resolution, level):
    """computeITCList: labels whose major axis is under 275 um (200 um plus the dilation)."""
    limit = 275 / (resolution * pow(2, level))
    return [label for label in range(1, np.amax(labels) + 1) if major_axis_length(labels == label) < limit]


def read_detections(path):
    """readCSVContent: every line is probability, x, y; float, int, int; no header."""
    probs, xs, ys = [], [], []
    with open(path, 'r') as f:
        for line in f.readlines():
            fields = line.rstrip().split(',')
            probs.append(float(fields[0]))
            xs.append(int(fields[1]))
            ys.append(int(fields[2]))
    return probs, xs, ys


def score_slide(ys, xs, probs, is_tumor, labels, itc, level):
    """compute_FP_TP_Probs: false positive probabilities, the float32 score of every label
    (0 = missed; ITCs stay 0), and the number of lesions less the ITCs."""
    n_labels = np.amax(labels)
    fp_probs = []
    tp_probs = np.zeros((n_labels,), dtype=np.float32)
    if is_tumor:
        for p, x, y in zip(probs, xs, ys):
            hit = labels[int(y / pow(2, level)), int(x / pow(2, level))]
            if hit == 0:
                fp_probs.append(p)
            elif hit not in itc and p > tp_probs[hit - 1]:
                tp_probs[hit - 1] = p
    else:
        fp_probs.extend(probs)
    return fp_probs, tp_probs, n_labels - len(itc)


def froc_curve(fp_lists, tp_arrays, n_images, n_tumours):
    """computeFROC: the sweep over all_probs[1:], then the (0, 0) point."""
    fps = [p for slide in fp_lists for p in slide]
    tps = [p for slide in tp_arrays for p in slide]
    thresholds = sorted(set(fps + tps))[1:]
    fp_counts = [(np.asarray(fps) >= t).sum() for t in thresholds] + [0]
    tp_counts = [(np.asarray(tps) >= t).sum() for t in thresholds] + [0]
    with np.errstate(invalid='ignore', divide='ignore'):  # no lesions: the script's 0 / 0
        sensitivity = np.asarray(tp_counts) / float(sum(n_tumours))
    return thresholds + [float('inf')], np.asarray(fp_counts) / float(n_images), sensitivity


def evaluate(case_dir):
    with open(os.path.join(case_dir, 'params')) as f:
        level, resolution = f.read().split()
    level, resolution = int(level), float(resolution)
    results = os.path.join(case_dir, 'results')
    masks = os.path.join(case_dir, 'masks')
    csvs = sorted(n for n in os.listdir(results) if n.endswith('.csv'))
    tumour_names = set(n[0:8] for n in os.listdir(masks) if n.endswith('.pgm')) if os.path.isdir(masks) else set()
    fp_lists, tp_arrays, n_tumours = [], [], []
    for csv in csvs:
        probs, xs, ys = read_detections(os.path.join(results, csv))
        is_tumor = csv[0:-4] in tumour_names
        if is_tumor:
            labels = evaluation_mask(read_pgm(os.path.join(masks, csv[0:-4] + '.pgm')), resolution, level)
            itc = itc_labels(labels, resolution, level)
        else:
            labels, itc = 0, []
        fp, tp, n = score_slide(ys, xs, probs, is_tumor, labels, itc, level)
        fp_lists.append(fp)
        tp_arrays.append(tp)
        n_tumours.append(n)
    thresholds, avg_fps, sensitivity = froc_curve(fp_lists, tp_arrays, len(csvs), n_tumours)
    at = np.interp(EVAL_FPS, avg_fps[::-1], sensitivity[::-1])
    out = ['case ' + case_dir]
    for key, values in (('thresholds', thresholds), ('fps', avg_fps), ('sens', sensitivity), ('at', at)):
        out.append(' '.join([key] + [repr(float(v)) for v in values]))
    out.append('score ' + repr(float(np.mean(at))))
    out.append('tumours ' + str(int(sum(n_tumours))))
    return '\n'.join(out)


if __name__ == '__main__':
    print('\n'.join(evaluate(d) for d in sys.argv[1:]))
