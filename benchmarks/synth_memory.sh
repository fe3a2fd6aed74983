#!/usr/bin/env bash
# Peak memory and time of `wsi-heatmap synth` for one slide size: the check that memory does not
# grow with the slide. Usage: benchmarks/synth_memory.sh SIZE [BINARY] [OUTDIR]
#   e.g. benchmarks/synth_memory.sh 100000   (writes ~GBs to OUTDIR, default build/bench-data)
# Prints: size, wall seconds, peak RSS (MiB), output size. Deletes the slide afterwards.
set -euo pipefail
size=${1:?usage: synth_memory.sh SIZE [BINARY] [OUTDIR]}
bin=${2:-build/wsi-heatmap}
outdir=${3:-build/bench-data}
mkdir -p "$outdir"
out="$outdir/synth-mem-$size.tif"
# shellcheck source=peak_rss.sh
. "$(dirname "$0")/peak_rss.sh"
measure "$bin" synth --out "$out" --size "${size}x${size}" --seed 1 --tumours 5 >/dev/null
bytes=$(stat -c %s "$out")
rm -f "$out"
awk -v s="$size" -v t="$secs" -v m="$peak_mib" -v b="$bytes" 'BEGIN {
  printf "synth %dx%d: %.1f s wall, peak RSS %d MiB, slide %.2f GiB\n", s, s, t, m, b / 1073741824 }'
