#!/usr/bin/env bash
# Peak memory of `wsi-heatmap` with the demo model on a generated 20000² and a 100000² slide (issue
# 5: the ratio must stay <= 1.3), with wall time and patch counts; the 100000² run doubles as the
# time for a Camelyon-sized slide, reported with the fraction of this machine's convolution rate
# the demo model reached.
#
#   benchmarks/heatmap_memory.sh [BUILD_DIR]      (default build; builds nothing:
#                                                  cmake --build BUILD_DIR -j2 --target wsi-heatmap bench_inference)
# Environment (all optional):
#   WSI_BENCH_THREADS     --threads (default 2)
#   WSI_BENCH_DEMO_MODEL  the model (default models/demo-cnn.pt; the GFLOP count needs a built-in
#                         cancernet, as the demo model is; otherwise that column is left out)
#   WSI_BENCH_SIZES       the two slide sides (default "20000 100000")
#
# Each run is `wsi-heatmap SLIDE -o DIR --model M --threads T -q` with every other option at its
# default (batch 64, Grad-CAM on, all outputs), under `/usr/bin/time -v`. Peak RSS is reported
# twice: the kernel's high-water mark of the process as /usr/bin/time gets it when the process
# ends (ru_maxrss of the child), and the summary's peak_rss_mib (getrusage in the process just
# before it writes NAME.summary.json, i.e. after every other output). They agree unless something
# after the summary (exit-time destructors, printing) raised the peak, or /usr/bin/time is an old
# GNU time that reports 4x (fixed in 1.8; Debian 12 has 1.9).
#
# Slides are generated once into BUILD_DIR/bench-data/heatmap-SIZE.tif (`wsi-heatmap synth`,
# seed 5, 5 tumours, 0.25 µm/px; 100000² takes ~4 min and ~1.1 GB of disk); a synthetic slide of
# that size already in a bench-data folder of this checkout (heatmap-, synth- or extract-SIZE.tif)
# is reused. The conv rate comes from bench_inference's conv benchmarks (same threads, same run).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
bin=$build/wsi-heatmap
bench=$build/bench_inference
threads=${WSI_BENCH_THREADS:-2}
model=${WSI_BENCH_DEMO_MODEL:-$root/models/demo-cnn.pt}
read -r -a sizes <<<"${WSI_BENCH_SIZES:-20000 100000}"
py=/usr/bin/python3
data=$build/bench-data

[ -x "$bin" ] || { echo "heatmap_memory.sh: no $bin; build it: cmake --build $build -j2 --target wsi-heatmap" >&2; exit 2; }
[ -x "$py" ] || { echo "heatmap_memory.sh: /usr/bin/python3 is needed (to read the JSON outputs)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "heatmap_memory.sh: /usr/bin/time is needed (Debian: time)" >&2; exit 2; }
[ -f "$model" ] || { echo "heatmap_memory.sh: no model $model (train it, or set WSI_BENCH_DEMO_MODEL)" >&2; exit 2; }
[ ${#sizes[@]} = 2 ] || { echo "heatmap_memory.sh: WSI_BENCH_SIZES needs two sizes" >&2; exit 2; }
mkdir -p "$data"
scratch=$(mktemp -d "${TMPDIR:-/tmp}/wsi-heatmap-memory.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

me=heatmap_memory.sh
# shellcheck source=benchmarks/common.sh
. "$root/benchmarks/common.sh"  # bench_slide, machine_busy

slides=()
for s in "${sizes[@]}"; do slides+=("$(bench_slide "$s")"); done

args=()
for i in 0 1; do
  slide=${slides[$i]} out=$scratch/run-$i
  mkdir -p "$out"
  echo "heatmap_memory.sh: $(basename "$slide") ($(du -h "$slide" | cut -f1)), $threads threads ..." >&2
  b0=$(machine_busy)
  /usr/bin/time -v -o "$scratch/time-$i" "$bin" "$slide" -o "$out" --model "$model" --threads "$threads" -q >&2
  b1=$(machine_busy)
  args+=("${sizes[$i]}" "$slide" "$out/$(basename "$slide" .tif).summary.json" "$scratch/time-$i" "$b0" "$b1")
done

conv=
if [ -x "$bench" ]; then
  echo "heatmap_memory.sh: the machine's conv rate (bench_inference conv/*, $threads threads) ..." >&2
  WSI_BENCH_THREADS=$threads "$bench" --benchmark_filter='^conv/' --benchmark_min_time=1 \
    --benchmark_out="$scratch/conv.json" --benchmark_out_format=json >&2 2>&1 && conv=$scratch/conv.json
else
  echo "heatmap_memory.sh: no $bench: the fraction of the conv rate is left out" >&2
fi

"$py" - "$model" "${conv:-none}" "${args[@]}" <<'EOF'
import json, os, re, sys

model, conv_json, rest = sys.argv[1], sys.argv[2], sys.argv[3:]


def time_v(path):
    """Wall seconds, CPU seconds and max RSS (MiB) from `/usr/bin/time -v`."""
    text = open(path).read()
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1)) / 1024
    user = float(re.search(r"User time \(seconds\): ([\d.]+)", text).group(1))
    sys_ = float(re.search(r"System time \(seconds\): ([\d.]+)", text).group(1))
    e = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", text).group(1).split(":")
    wall = sum(float(x) * 60 ** i for i, x in enumerate(reversed(e)))
    return wall, user + sys_, rss


def cancernet_gflops(sidecar):
    """GFLOP (2 x multiply-adds) of one patch: the same count as wsi::Model::gflops_per_patch()
    (src/model/nets.cpp, CancerNet::macs): separable convs (depthwise 3x3 + pointwise 1x1) in
    stages of 1, 2, 3 convs of width w, 2w, 4w, each stage followed by a 2x2 max-pool, then
    fc 4w -> 256 (+256). None for other networks."""
    arch = sidecar.get("architecture") or {}
    if arch.get("name") != "cancernet":
        return None
    w, side, cin, macs = arch.get("width", 32), sidecar["input_size"], 3, 0.0
    for stage, convs in enumerate((1, 2, 3)):
        cout = w << stage
        for _ in range(convs):
            macs += cin * 9 * side * side + cin * cout * side * side
            cin = cout
        side //= 2
    return 2 * (macs + cin * 256 + 256) / 1e9


sidecar = json.load(open(os.path.splitext(model)[0] + ".json"))
gflops = cancernet_gflops(sidecar)
conv = None
if conv_json != "none":
    rates = [b["GFLOP/s"] for b in json.load(open(conv_json))["benchmarks"] if "GFLOP/s" in b]
    conv = max(rates) if rates else None

rows = []
for i in range(0, len(rest), 6):
    size, slide, summary, timef, b0, b1 = rest[i:i + 6]
    s = json.load(open(summary))
    wall, cpu, rss = time_v(timef)
    others = max(0.0, (float(b1) - float(b0) - cpu) / wall) if wall > 0 else 0.0
    rows.append(dict(size=int(size), slide=slide, s=s, wall=wall, cpu=cpu, rss=rss, others=others))

p0 = rows[0]["s"]["parameters"]
print(f"\nPeak memory and time of wsi-heatmap, model {sidecar['name']}, batch {p0['batch']}, "
      f"Grad-CAM {'on' if p0['gradcam'] else 'off'}, other options at their defaults")
head = (f"{'slide':<16} {'grid':>7} {'tissue':>7} {'tissue%':>7} {'wall s':>7} {'graph s':>7} {'p/s':>7} "
        f"{'RSS time -v':>11} {'RSS summary':>11} {'cores':>5} {'others':>6}")
print(head)
print("-" * len(head))
for r in rows:
    s, p = r["s"], r["s"]["patches"]
    t = s["timings_s"]
    print(f"{r['size']:>6}x{r['size']:<9} {p['grid']:>7} {p['processed']:>7} {100 * p['tissue'] / max(1, p['grid']):6.1f}% "
          f"{r['wall']:7.1f} {t['graph']:7.1f} {s['patches_per_second']:7.0f} {r['rss']:8.0f} MiB {s['peak_rss_mib']:7.0f} MiB "
          f"{r['cpu'] / r['wall']:5.2f} {r['others']:5.2f}{' !' if r['others'] > 0.25 else ''}")
small, large = rows
print(f"\npeak RSS ratio {large['size']}² / {small['size']}²: {large['rss'] / small['rss']:.3f} (time -v), "
      f"{large['s']['peak_rss_mib'] / small['s']['peak_rss_mib']:.3f} (summary); issue 5 asks <= 1.3, for "
      f"{(large['size'] / small['size']) ** 2:.0f}x the pixels")
for r in rows:
    t = r["s"]["timings_s"]
    split = ", ".join(f"{k} {t[k]:.1f}" for k in ("survey", "graph", "write", "total"))
    print(f"  {r['size']}²: {split} s (summary); process wall {r['wall']:.1f} s incl. start-up and model loading")

L = large["s"]
t, n = L["timings_s"], L["patches"]["processed"]
print(f"\nCamelyon-sized slide: the {large['size']}² run took {large['wall']:.1f} s wall ({t['total']:.1f} s in run_heatmap) "
      f"for {n} tissue patches of {L['patches']['grid']} grid cells ({100 * L['patches']['tissue'] / max(1, L['patches']['grid']):.0f}% tissue).")
# A Camelyon16 slide: ~100k x 200k px at 0.243 µm/px, 20-40 % tissue; the same 96 px patches at
# 0.972 µm cover 384 px of it.
cam_grid = (100000 // 384) * (200000 // 384)
lo, hi = int(0.2 * cam_grid), int(0.4 * cam_grid)
per_patch = t["graph"] / n if n else 0
fixed = t["survey"] * 2 + t["write"] * 2  # survey and outputs scale with the slide's area (2x ours)
print(f"  a Camelyon16 slide (~100k x 200k px at 0.243 µm/px, {cam_grid} grid cells, 20-40 % tissue = {lo}-{hi} patches)"
      f" would take about {fixed + lo * per_patch:.0f}-{fixed + hi * per_patch:.0f} s at this run's rates"
      f" (graph time per patch x patches + 2x this run's survey and write)")
if gflops is not None:
    achieved = gflops * n / t["graph"]
    infer = gflops * n / t["inference_total"] if t["inference_total"] > 0 else None
    line = f"  demo model: {gflops:.4f} GFLOP/patch (wsi::Model::gflops_per_patch's count): {achieved:.1f} GFLOP/s over the graph time"
    if infer:
        line += f", {infer:.1f} GFLOP/s inside the inference node"
    print(line)
    if conv:
        print(f"  machine's conv rate (bench_inference conv/*, same threads): {conv:.1f} GFLOP/s -> {100 * achieved / conv:.1f} % of it"
              + (f" ({100 * infer / conv:.1f} % inside the inference node)" if infer else ""))
else:
    print(f"  no GFLOP count: {sidecar['name']} is not a built-in cancernet (the fraction of the conv rate is left out)")
worst = max(r["others"] for r in rows)
if worst > 0.25:
    print(f"WARNING: other processes used up to {worst:.2f} cores during these runs: re-run on an idle machine.")
EOF
