#!/usr/bin/env bash
# Slides/hour of `wsi-heatmap batch` over a directory of generated slides, next to the same slides
# run one by one (`wsi-heatmap SLIDE -o DIR`, one process per slide, as a shell loop would), in
# the same run: the batch layer's overhead (manifest, SHA-1s of the outputs, child processes)
# should be negligible.
#
#   benchmarks/batch_overhead.sh [BUILD_DIR]     (builds nothing: cmake --build BUILD_DIR --target wsi-heatmap)
# Environment: WSI_BENCH_SLIDES (how many, default 6), WSI_BENCH_SIZE (side, default 12000),
# WSI_BENCH_THREADS (default 2), WSI_BENCH_REPEAT (alternating runs of each, default 2).
# Slides are generated once into BUILD_DIR/bench-data/batch-SIZE/ (seeds 1..N).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
bin=$build/wsi-heatmap
n=${WSI_BENCH_SLIDES:-6}
size=${WSI_BENCH_SIZE:-12000}
threads=${WSI_BENCH_THREADS:-2}
repeat=${WSI_BENCH_REPEAT:-2}
data=$build/bench-data/batch-$size
me=batch_overhead.sh
[ -x "$bin" ] || { echo "$me: no $bin; build it: cmake --build $build --target wsi-heatmap" >&2; exit 2; }
mkdir -p "$data"
scratch=$(mktemp -d "${TMPDIR:-/tmp}/wsi-batch-bench.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
# shellcheck source=benchmarks/common.sh
. "$root/benchmarks/common.sh"  # machine_busy

for seed in $(seq "$n"); do
  f=$data/slide-$seed.tif
  [ -f "$f" ] || { echo "$me: generating $f (once)" >&2; "$bin" synth --out "$f" --size "${size}x$size" --seed "$seed" --tumours 2 >&2; }
done

now() { date +%s.%N; }
declare -a batch_s single_s others
for r in $(seq "$repeat"); do
  rm -rf "$scratch/batch" "$scratch/single"
  b0=$(machine_busy); t0=$(now)
  "$bin" batch "$data" -o "$scratch/batch" -q --threads "$threads" >/dev/null
  t1=$(now); b1=$(machine_busy)
  mkdir -p "$scratch/single"
  for f in "$data"/slide-*.tif; do "$bin" "$f" -o "$scratch/single" -q --threads "$threads" >/dev/null; done
  t2=$(now); b2=$(machine_busy)
  batch_s+=("$(awk -v a="$t0" -v b="$t1" "BEGIN{print b - a}")")
  single_s+=("$(awk -v a="$t1" -v b="$t2" "BEGIN{print b - a}")")
  # Busy cores of the whole machine over both runs (ours included: about threads when quiet).
  others+=("$(awk -v b0="$b0" -v b2="$b2" -v t0="$t0" -v t2="$t2" "BEGIN{print (b2 - b0) / (t2 - t0)}")")
done

/usr/bin/python3 - "$n" "$size" "$threads" "${batch_s[*]}" "${single_s[*]}" "${others[*]}" <<'PY'
import sys
n, size, threads = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
b = [float(x) for x in sys.argv[4].split()]
s = [float(x) for x in sys.argv[5].split()]
busy = [float(x) for x in sys.argv[6].split()]
print(f"\nbatch vs one by one: {n} generated {size}x{size} slides, demo model, {threads} threads")
print(f"{'run':>3} {'batch s':>8} {'single s':>9} {'batch slides/h':>15} {'single slides/h':>16} {'batch/single time':>18} {'busy cores':>10}")
for i, (x, y, c) in enumerate(zip(b, s, busy), 1):
    print(f"{i:>3} {x:8.1f} {y:9.1f} {n * 3600 / x:15.0f} {n * 3600 / y:16.0f} {x / y:18.3f} {c:10.2f}")
print(f"best: batch {min(b):.1f} s, one by one {min(s):.1f} s -> overhead {100 * (min(b) / min(s) - 1):+.1f} %"
      " (the batch also hashes every output and rewrites the manifest after each slide)")
PY
