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
start=$(date +%s.%N)
"$bin" synth --out "$out" --size "${size}x${size}" --seed 1 --tumours 5 >/dev/null &
pid=$!
peak_kb=0
# VmHWM is the process's peak resident set so far; poll it until the process ends.
while kill -0 "$pid" 2>/dev/null; do
  kb=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
  [ -n "$kb" ] && [ "$kb" -gt "$peak_kb" ] && peak_kb=$kb
  sleep 0.2
done
wait "$pid"
end=$(date +%s.%N)
bytes=$(stat -c %s "$out")
rm -f "$out"
awk -v s="$size" -v t0="$start" -v t1="$end" -v kb="$peak_kb" -v b="$bytes" 'BEGIN {
  printf "synth %dx%d: %.1f s wall, peak RSS %.0f MiB, slide %.2f GiB\n", s, s, t1 - t0, kb / 1024, b / 1073741824 }'
