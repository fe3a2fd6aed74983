#!/usr/bin/env bash
# Extraction throughput, end to end (read, label, write HDF5), of `wsi-heatmap extract` next to a
# plain Python baseline (python3-openslide + h5py, one read_region per patch, as CLAM-style
# scripts do) on the same generated slide, the same patches, measured in one run; plus peak RSS.
# Usage: benchmarks/extract_throughput.sh [SIZE=20000] [BINARY=build/wsi-heatmap] [DIR=build/bench-data]
# Prints patches/s of both and their ratio, and our peak RSS. Needs /usr/bin/python3 with
# python3-openslide and python3-h5py (tools/setup.sh installs them).
set -euo pipefail
size=${1:-20000}
bin=${2:-build/wsi-heatmap}
dir=${3:-build/bench-data}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$dir"
slide="$dir/extract-$size.tif"
mask="$dir/extract-$size.mask.tif"
[ -f "$slide" ] && [ -f "$mask" ] || "$bin" synth --out "$slide" --mask "$mask" --size "${size}x${size}" --seed 3 \
  --tumours 5 >/dev/null

# shellcheck source=peak_rss.sh
. "$here/peak_rss.sh"

out="$dir/extract-out-$size"
rm -rf "$out"
measure "$bin" extract "$slide" --mask "$mask" -o "$out" --quiet --threads "${WSI_BENCH_THREADS:-0}"
ours_secs=$secs ours_peak=$peak_mib
n=$(($(wc -l <"$out/patches_train_meta.csv") - 1))

measure /usr/bin/python3 "$here/extract_baseline.py" "$slide" "$mask" "$out/patches_train_meta.csv" \
  "$out/patches_summary.json" "$dir/baseline-$size.h5" >/dev/null
base_secs=$secs base_peak=$peak_mib

awk -v n="$n" -v a="$ours_secs" -v b="$base_secs" -v s="$size" -v pa="$ours_peak" -v pb="$base_peak" 'BEGIN {
  printf "slide %dx%d, %d patches (PCam 96x96 at 0.972 um, centre rule, HDF5 gzip)\n", s, s, n
  printf "  wsi-heatmap extract : %7.2f s  %8.0f patches/s  peak RSS %5d MiB (whole run: tissue mask, labels, HDF5)\n", a, n / a, pa
  printf "  python baseline     : %7.2f s  %8.0f patches/s  peak RSS %5d MiB (same patches, read_region each)\n", b, n / b, pb
  printf "  ratio (ours / baseline patches/s): %.1fx\n", b / a }'
rm -rf "$out" "$dir/baseline-$size.h5"
