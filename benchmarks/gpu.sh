#!/usr/bin/env bash
# Issue 18's measurements on a GPU machine, in one run of about 3-5 minutes, ratios printed last.
#
#   source .gpu/device-build.sh && bash benchmarks/gpu.sh      (../shared/gpu/README.md: how to
#                                                                pack .gpu/ and run it there)
# device-build.sh builds wsi-heatmap and bench_inference into $WSI_BUILD; this script builds
# bench_feed there too. Everything it writes goes to $OUT (the device tool brings it back), else
# /tmp/wsi-gpu-out: the summaries, the logs, gpu-table.txt.
#
# What it measures, on one generated slide "Camelyon16-sized": 70000 x 70000 pixels at 0.486
# µm/px (34 x 34 mm, about 46k tissue patches of 96 px at 0.972 µm, each read 1:1 from a pyramid
# level as on a 0.243 µm Camelyon16 scan's level 2; generated at 0.486 µm so that synth takes
# seconds rather than minutes), batch 256, all cores:
#   * the graph (`wsi-heatmap SLIDE --device cuda`): ResNet50 (torchvision, random weights, 96 px,
#     tools/export_model.py) and the demo model (built-in cancernet, 48 px input), fp32 and fp16,
#     with and without Grad-CAM: graph patches/s, end to end seconds without the warm-up, the
#     model's time split (summary.json timings_s.model), SM utilisation during the graph
#     (nvidia-smi utilization.gpu sampled every 100 ms);
#   * the bare model in the same run (bench_inference, WSI_BENCH_DEVICE=cuda): forward/batch:256
#     (the network alone on an input already on the device: what a python loop measures),
#     slots/batch:256 and slots_cam/batch:256 (our staging ring without reading: uint8 in,
#     probabilities and CAMs back);
#   * the feed ceiling: the graph with a TorchScript model that costs nothing (`null`, fp16), and
#     bench_feed (the graph over the slide with a free in-process model, readers only).
# Targets (issue 18): graph >= 0.8 x bare for ResNet50 fp16 and fp32 with and without Grad-CAM;
# Grad-CAM >= 0.7 x without; demo-cnn faster than ResNet50; feed ceiling >= bare ResNet50 fp16;
# the Camelyon-sized slide end to end (warm-up apart) < 3 s with ResNet50 fp16.
#
# A dry run of the script itself on a machine without a GPU (small slide, CPU, fp32 only):
#   WSI_BUILD=build WSI_BIN=build/wsi-heatmap WSI_GPU_DEVICE=cpu WSI_GPU_PRECISIONS=fp32 \
#     WSI_GPU_SIZE=8000 WSI_PY=/usr/bin/python3 bash benchmarks/gpu.sh
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${WSI_BUILD:-}
bin=${WSI_BIN:-}
[ -n "$build" ] && [ -x "$bin" ] || { echo "gpu.sh: source .gpu/device-build.sh first (it sets WSI_BUILD and WSI_BIN)" >&2; exit 2; }
out=${OUT:-/tmp/wsi-gpu-out}
py=${WSI_PY:-python3}
data=/tmp/wsi-gpu-data
device=${WSI_GPU_DEVICE:-cuda}
precisions=${WSI_GPU_PRECISIONS:-fp16 fp32}
size=${WSI_GPU_SIZE:-70000}
mkdir -p "$out" "$data"
t0=$(date +%s)
say() { echo "== gpu.sh [$(( $(date +%s) - t0 )) s] $*" >&2; }

say "machine: $(nproc) cores; $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null)"
say "build bench_feed"
cmake --build "$build" -j "$(nproc)" --target bench_feed >"$out/build-feed.log" 2>&1 || { tail -20 "$out/build-feed.log"; exit 1; }

say "models: resnet50 (export), null, demo"
"$py" "$root/tools/export_model.py" --arch resnet50 --out "$data/resnet50.pt" >"$out/export.log" 2>&1 || { cat "$out/export.log"; exit 1; }
# (TorchScript compiles from source, so the maker is a file, not a here-document on stdin.)
cat >"$data/make_null.py" <<'EOF'
import json, sys, torch
class Null(torch.nn.Module):
    """Costs nothing: the first pixel's red value as the logit (the graph's feed ceiling)."""
    def forward(self, x):
        return x[:, 0:1, 0, 0]
torch.jit.script(Null().eval()).save(f"{sys.argv[1]}/null.pt")
json.dump({"format": "wsi-heatmap-model/1", "name": "null", "patch_size": 96, "mpp": 0.972, "output": "logit"},
          open(f"{sys.argv[1]}/null.json", "w"))
EOF
"$py" "$data/make_null.py" "$data" || exit 1
demo=$root/models/demo-cnn.pt

slide=$data/camelyon-size.tif
say "slide: $slide ($size x $size at 0.486 um/px)"
"$bin" synth --out "$slide" --size "${size}x$size" --mpp 0.486 --seed 5 --tumours 5 >"$out/synth.log" 2>&1 || { cat "$out/synth.log"; exit 1; }
say "slide ready"

# heatmap LABEL MODEL PRECISION on|off: one graph run, nvidia-smi sampling beside it.
heatmap() {
  local label=$1 model=$2 prec=$3 cam=$4 flag=() smi rc
  [ "$cam" = off ] && flag=(--no-gradcam)
  rm -rf "${data:?}/$label"; mkdir -p "$data/$label"
  smi=
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=timestamp,utilization.gpu --format=csv,noheader,nounits -lms 100 >"$out/$label.smi" 2>/dev/null &
    smi=$!
  fi
  "$bin" "$slide" -o "$data/$label" --model "$model" --device "$device" --precision "$prec" --batch 256 -q "${flag[@]}" \
    >"$out/$label.log" 2>&1
  rc=$?
  date +%s.%N >"$out/$label.end"
  [ -z "$smi" ] || { kill "$smi" 2>/dev/null; wait "$smi" 2>/dev/null; }
  cp "$data/$label/camelyon-size.summary.json" "$out/$label.summary.json" 2>/dev/null
  say "$label: exit $rc $(tail -1 "$out/$label.log")"
}
for m in resnet50 demo; do
  model=$data/resnet50.pt; [ $m = demo ] && model=$demo
  for prec in $precisions; do
    for cam in off on; do heatmap "$m-$prec-cam$cam" "$model" "$prec" "$cam"; done
  done
done
null_prec=fp16; [ "$device" = cuda ] || null_prec=fp32
heatmap "null-$null_prec-camoff" "$data/null.pt" "$null_prec" off

# Bare rates, same batch, the side each graph fed (48 px for the demo model).
for m in resnet50 demo; do
  model=$data/resnet50.pt side=96; [ $m = demo ] && model=$demo side=48
  for prec in $precisions; do
    say "bare $m $prec"
    WSI_BENCH_MODEL=$model WSI_BENCH_DEVICE=$device WSI_BENCH_PRECISION=$prec WSI_BENCH_BATCHES=256 WSI_BENCH_SIDE=$side \
      WSI_BENCH_THREADS=$(nproc) "$build/bench_inference" --benchmark_filter='^(forward|slots|slots_cam)/batch:256' \
      --benchmark_min_time=1 --benchmark_out="$out/bare-$m-$prec.json" --benchmark_out_format=json \
      >"$out/bare-$m-$prec.log" 2>&1 || say "bench_inference $m $prec failed: $(tail -2 "$out/bare-$m-$prec.log")"
  done
done
say "feed: bench_feed at $(nproc) threads"
WSI_BENCH_SLIDE=$slide WSI_BENCH_BATCH=256 "$build/bench_feed" --benchmark_filter="feed/(read|stitch)/threads:$(nproc)/" \
  --benchmark_repetitions=3 --benchmark_report_aggregates_only=true \
  --benchmark_out="$out/feed.json" --benchmark_out_format=json >"$out/feed.log" 2>&1 || say "bench_feed failed: $(tail -2 "$out/feed.log")"

say "table"
"$py" - "$out" "$(nproc)" "$size" "$device" <<'EOF' | tee "$out/gpu-table.txt"
import json, os, sys
out, cores, size, device = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
def load(p):
    try:
        return json.load(open(p))
    except Exception:
        return None
def bare(m, prec, name):
    j = load(f"{out}/bare-{m}-{prec}.json")
    for b in (j or {}).get("benchmarks", []):
        if b["name"].startswith(name + "/batch:256"):
            return b.get("patches/s")
def sm_busy(label, s):
    # Mean utilization.gpu over the graph's window: it ended `write` seconds before the summary,
    # which the process wrote just before it ended.
    try:
        end = float(open(f"{out}/{label}.end").read())
        t = s["timings_s"]
        hi = end - t["write"]; lo = hi - t["graph"]
        from datetime import datetime
        vals = []
        for line in open(f"{out}/{label}.smi"):
            ts, u = [x.strip() for x in line.split(",")[:2]]
            when = datetime.strptime(ts, "%Y/%m/%d %H:%M:%S.%f").timestamp()
            if lo <= when <= hi:
                vals.append(float(u))
        return sum(vals) / len(vals) if vals else None
    except Exception:
        return None
fmt = lambda v, f="{:.0f}": "-" if v is None else f.format(v)
rows, res = [], {}
print(f"\n{device} run: {cores} cores, batch 256, slide {size}x{size} at 0.486 um/px")
print(f"{'run':<22}{'patches':>8}{'graph/s':>9}{'e2e s':>7}{'bare fwd/s':>11}{'slots/s':>9}{'graph/bare':>11}{'graph/slots':>12}{'SM busy':>8}  model time split (s: staging / in / compute / out / wait)")
for m in ("resnet50", "demo", "null"):
    for prec in ("fp16", "fp32"):
        for cam in ("off", "on"):
            label = f"{m}-{prec}-cam{cam}"
            s = load(f"{out}/{label}.summary.json")
            if not s:
                if os.path.exists(f"{out}/{label}.log"):
                    print(f"{label:<22} failed: {open(f'{out}/{label}.log').read().strip().splitlines()[-1:]}")
                continue
            t = s["timings_s"]; n = s["patches"]["processed"]
            rate = n / t["graph"] if t["graph"] > 0 else None
            e2e = t["total"] - t["warm_up"]
            fwd = bare(m, prec, "forward") if m != "null" else None
            slots = bare(m, prec, "slots_cam" if cam == "on" else "slots") if m != "null" else None
            tm = t.get("model", {})
            split = " / ".join(f"{tm.get(k, 0):.2f}" for k in ("host_staging", "copy_in", "compute", "copy_out", "wait"))
            res[label] = dict(rate=rate, e2e=e2e, fwd=fwd, slots=slots)
            print(f"{label:<22}{n:>8}{fmt(rate):>9}{e2e:>7.2f}{fmt(fwd):>11}{fmt(slots):>9}"
                  f"{fmt(rate / fwd if rate and fwd else None, '{:.2f}'):>11}{fmt(rate / slots if rate and slots else None, '{:.2f}'):>12}"
                  f"{fmt(sm_busy(label, s), '{:.0f}%'):>8}  {split}")
feed = load(f"{out}/feed.json")
for b in (feed or {}).get("benchmarks", []):
    if b.get("aggregate_name") == "median":
        print(f"bench_feed {b['run_name']}: {b['patches/s']:.0f} patches/s, {b['per_core']:.0f} per core, readers {b['read_cpu_us']:.0f} us CPU per patch")
print("\nratios (targets from issue 18):")
def ratio(name, a, b, target):
    if a is None or b is None:
        print(f"  {name}: not measured"); return
    print(f"  {name}: {a / b:.2f}  (target >= {target})")
g = lambda l, k="rate": res.get(l, {}).get(k)
for prec in ("fp16", "fp32"):
    ratio(f"resnet50 {prec}: graph / bare forward", g(f"resnet50-{prec}-camoff"), g(f"resnet50-{prec}-camoff", "fwd"), 0.8)
    ratio(f"resnet50 {prec} Grad-CAM: graph / bare Grad-CAM (slots_cam)", g(f"resnet50-{prec}-camon"), g(f"resnet50-{prec}-camon", "slots"), 0.8)
for m in ("resnet50", "demo"):
    for prec in ("fp16", "fp32"):
        ratio(f"{m} {prec}: Grad-CAM / without", g(f"{m}-{prec}-camon"), g(f"{m}-{prec}-camoff"), 0.7)
for prec in ("fp16", "fp32"):
    ratio(f"demo / resnet50 {prec}, graph", g(f"demo-{prec}-camoff"), g(f"resnet50-{prec}-camoff"), 1.0)
ratio("feed ceiling (null model graph) / bare resnet50 fp16 forward", g("null-fp16-camoff") or g("null-fp32-camoff"), g("resnet50-fp16-camoff", "fwd"), 1.0)
e = g("resnet50-fp16-camoff", "e2e")
print(f"  Camelyon-sized slide end to end, resnet50 fp16, warm-up apart: {fmt(e, '{:.2f}')} s (target < 3)")
EOF
say "done"
