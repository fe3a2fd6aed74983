#!/usr/bin/env bash
# The heatmap graph's feed ceiling on this machine, no GPU needed: the graph with a model that
# costs nothing (bench_feed), patches/s and patches/s per core at 1, 2, 4, ... threads up to the
# machine's cores, with and without the heatmap's own stitch stage. On a GPU machine this is the
# rate the graph can feed a device at; issue 18 asks that it be at least the bare ResNet50 fp16
# rate there (benchmarks/gpu.sh runs it beside the model).
#
#   benchmarks/feed.sh [BUILD_DIR]      (default build; builds nothing:
#                                        cmake --build BUILD_DIR -j2 --target wsi-heatmap bench_feed)
# Environment (all optional):
#   WSI_BENCH_SIZE    side of the generated slide (default 60000: a 60000² slide at 0.243 µm/px,
#                     the Radboud scans' resolution, ~5-6k tissue patches of 96 px at 0.972 µm)
#   WSI_BENCH_INPUT   96 (default: ResNet50's contract, read 1:1 from level 2) or 48 (the demo
#                     model's: read at 48 px from level 3)
#   WSI_BENCH_BATCH   patches per batch (default 256, as on a GPU)
#   WSI_BENCH_REPEAT  repetitions of each row (default 5); the table shows medians
# The slide is generated once into BUILD_DIR/bench-data (`wsi-heatmap synth`, seed 5; shared with
# heatmap_pipeline.sh). Prints the table last: `scaling` is the rate over (threads x the
# 1-thread rate), `stitch` the stitch stage's cost (1 - rate with it / rate without).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
bin=$build/wsi-heatmap
bench=$build/bench_feed
data=$build/bench-data
size=${WSI_BENCH_SIZE:-60000}
repeat=${WSI_BENCH_REPEAT:-5}
me=feed.sh
for f in "$bin" "$bench"; do
  [ -x "$f" ] || { echo "$me: no $f; build it: cmake --build $build -j2 --target wsi-heatmap bench_feed" >&2; exit 2; }
done
mkdir -p "$data"
# shellcheck source=benchmarks/common.sh
. "$root/benchmarks/common.sh"  # bench_slide
slide=$(bench_slide "$size" 0.243)
out=$(mktemp "${TMPDIR:-/tmp}/wsi-feed.XXXXXX.json")
trap 'rm -f "$out"' EXIT
WSI_BENCH_SLIDE=$slide "$bench" --benchmark_repetitions="$repeat" --benchmark_report_aggregates_only=true \
  --benchmark_out="$out" --benchmark_out_format=json >&2
/usr/bin/python3 - "$out" "$slide" "$(nproc)" <<'EOF'
import json, sys
out, slide, cores = sys.argv[1], sys.argv[2], int(sys.argv[3])
rows = {}
for b in json.load(open(out))["benchmarks"]:
    if b.get("aggregate_name") != "median":
        continue
    name = b["run_name"]  # feed/read/threads:T/real_time
    kind, threads = name.split("/")[1], int(name.split("threads:")[1].split("/")[0])
    rows[(kind, threads)] = b
print(f"\nfeed ceiling: {slide}, {cores} cores, medians of the repetitions")
print(f"{'threads':>7} {'read patches/s':>15} {'per core':>9} {'scaling':>8} {'reader CPU':>11} {'with stitch':>12} {'stitch':>7}")
one = rows.get(("read", 1), {}).get("patches/s")
for t in sorted({t for _, t in rows}):
    r, s = rows.get(("read", t)), rows.get(("stitch", t))
    if not r:
        continue
    rate = r["patches/s"]
    scaling = rate / (min(t, cores) * one) if one else float("nan")
    srate = s["patches/s"] if s else float("nan")
    print(f"{t:>7} {rate:>15.0f} {r['per_core']:>9.0f} {scaling:>8.2f} {r['read_cpu_us']:>8.1f} us {srate:>12.0f} {1 - srate / rate:>6.0%}")
EOF
