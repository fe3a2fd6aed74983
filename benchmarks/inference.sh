#!/usr/bin/env bash
# Inference throughput of the demo model and a ResNet50-size TorchScript model, with and without
# Grad-CAM, next to this machine's convolution rate, all measured in one run (see README.md).
#
#   benchmarks/inference.sh [--build DIR] [--demo-model FILE.pt] [--demo-gflops-per-patch X]
#                           [--threads N] [--min-time S] [--repetitions N] [--no-resnet50]
#
#   --build DIR        build dir holding bench_inference (default build/ of this checkout); this
#                      script builds nothing: cmake --build DIR -j2 --target bench_inference
#   --demo-model FILE  the demo model (default models/demo-cnn.pt of this checkout; skipped with a
#                      message if absent)
#   --demo-gflops-per-patch X
#                      GFLOP (2 x multiply-adds) of one forward pass of one demo-model patch.
#                      Without it: counted by Python for TorchScript (as for ResNet50), else the
#                      figure wsi::Model::gflops_per_patch() gives for built-in networks (native
#                      format, which Python cannot load). Also spelled --gflops-per-patch.
#   --threads N        intra-op threads (default 2, WSI_BENCH_THREADS of bench_inference)
#   --min-time S       Google Benchmark --benchmark_min_time per repetition (default 1)
#   --repetitions N    repetitions per benchmark; the table uses their median (default 3)
#   --no-resnet50      only the demo model
#
# The ResNet50 (torchvision, random weights, 96x96 input, 1 logit) is exported with
# tools/export_model.py into a scratch dir that is deleted at exit; that and the FLOP counts need
# /usr/bin/python3 with python3-torch and python3-torchvision (skipped with a message without).
# About 2 minutes on an idle 2-core machine with the defaults. Google Benchmark's own output goes to
# stderr; the table to stdout.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build
demo=$root/models/demo-cnn.pt
demo_gflops=
threads=2
min_time=1
reps=3
resnet50=1
usage() { sed -n '2,/^set /p' "$0" | grep '^#' | sed 's/^# \{0,1\}//' >&2; exit "$1"; }
while [ $# -gt 0 ]; do
  case $1 in
    --build) build=$2; shift 2 ;;
    --demo-model) demo=$2; shift 2 ;;
    --demo-gflops-per-patch | --gflops-per-patch) demo_gflops=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --min-time) min_time=$2; shift 2 ;;
    --repetitions) reps=$2; shift 2 ;;
    --no-resnet50) resnet50=0; shift ;;
    -h | --help) usage 0 ;;
    *) echo "inference.sh: unknown argument '$1'" >&2; usage 2 ;;
  esac
done

bin=$build/bench_inference
if [ ! -x "$bin" ]; then
  echo "inference.sh: no $bin; build it first: cmake --build $build -j2 --target bench_inference" >&2
  exit 2
fi
py=/usr/bin/python3
if [ ! -x "$py" ]; then
  echo "inference.sh: /usr/bin/python3 is needed (to read the benchmark's JSON output)" >&2
  exit 2
fi
have_torch=0
"$py" -c 'import torch, torchvision' 2>/dev/null && have_torch=1

scratch=$(mktemp -d "${TMPDIR:-/tmp}/wsi-inference.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

# GFLOP (2 x multiply-adds of convolutions and matrix products) of one forward pass on one
# 1x3xSxS input, S = the sidecar's input_size. Counted at the ATen dispatcher
# (TorchDispatchMode), which sees the ops of scripted and traced modules alike (torch.profiler's
# with_flops misses the aten::_convolution calls of traced ones). Prints nothing on failure
# (and Python's last error line to stderr).
count_gflops() {
  [ "$have_torch" = 1 ] || return 0
  "$py" - "$1" <<'EOF' 2>"$scratch/flops.err" || { echo "  $(tail -n 1 "$scratch/flops.err")" >&2; return 0; }
import json, math, os, sys
import torch
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten
path = sys.argv[1]
size = json.load(open(os.path.splitext(path)[0] + ".json"))["input_size"]


class Count(TorchDispatchMode):
    flops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        op = func.overloadpacket
        if op in (aten.convolution, aten._convolution):
            x, w, transposed = args[0], args[1], args[6]
            # Each output (input, if transposed) element takes w.shape[1] * kh * kw multiply-adds.
            self.flops += 2 * (x if transposed else out).numel() * math.prod(w.shape[1:])
        elif op in (aten.mm, aten.bmm, aten.addmm, aten.baddbmm):
            a = args[0] if op in (aten.mm, aten.bmm) else args[1]
            self.flops += 2 * out.numel() * a.shape[-1]
        return out


module = torch.jit.load(path).eval()
with torch.no_grad(), Count() as c:
    module(torch.zeros(1, 3, size, size))
print(f"{c.flops / 1e9:.6g}")
EOF
}

# model name, .pt, GFLOP/patch ("" = unknown)
names=() paths=() gflops=()
if [ -f "$demo" ]; then
  g=$demo_gflops
  # Built-in networks (sidecar "architecture") are not TorchScript: bench_inference reports theirs.
  [ -n "$g" ] || grep -q '"architecture"' "${demo%.pt}.json" 2>/dev/null || g=$(count_gflops "$demo")
  names+=("$(basename "$demo" .pt)") paths+=("$demo") gflops+=("$g")
else
  echo "inference.sh: skipping the demo model: no $demo (train it, or pass --demo-model FILE.pt)" >&2
fi
if [ "$resnet50" = 1 ]; then
  if [ "$have_torch" = 1 ]; then
    echo "inference.sh: exporting resnet50 (random weights) to $scratch ..." >&2
    "$py" "$root/tools/export_model.py" --arch resnet50 --out "$scratch/resnet50.pt" >&2
    names+=(resnet50) paths+=("$scratch/resnet50.pt") gflops+=("$(count_gflops "$scratch/resnet50.pt")")
  else
    echo "inference.sh: skipping resnet50: /usr/bin/python3 lacks torch/torchvision (Debian: python3-torch python3-torchvision)" >&2
  fi
fi
if [ ${#names[@]} = 0 ]; then
  echo "inference.sh: no model to measure" >&2
  exit 1
fi

# One bench_inference process per model: the conv rate in each row's fraction is the one measured
# in the same process, a minute or two apart at most. A model that fails keeps its row (as failed).
for i in "${!names[@]}"; do
  echo "inference.sh: ${names[$i]} (${paths[$i]}), $threads threads" >&2
  WSI_BENCH_MODEL=${paths[$i]} WSI_BENCH_THREADS=$threads "$bin" \
    --benchmark_min_time="$min_time" --benchmark_repetitions="$reps" \
    --benchmark_display_aggregates_only=true \
    --benchmark_out="$scratch/run-$i.json" --benchmark_out_format=json >&2 ||
    { echo "inference.sh: bench_inference failed on ${paths[$i]} (its message is above)" >&2
      rm -f "$scratch/run-$i.json"; }
done

args=()
for i in "${!names[@]}"; do args+=("${names[$i]}" "${gflops[$i]}" "$scratch/run-$i.json"); done
"$py" - "$threads" "${args[@]}" <<'EOF'
import json, math, os, statistics, sys

threads, rest = sys.argv[1], sys.argv[2:]
BUSY = 0.25  # other processes' cores above which a row is marked


def medians(path):
    """{benchmark: {counter: median over its repetitions}} from Google Benchmark's JSON (the file
    holds every repetition even when the console shows only aggregates)."""
    reps = {}
    for b in json.load(open(path))["benchmarks"]:
        if b.get("run_type", "iteration") == "iteration":
            name = b.get("run_name", b["name"])
            reps.setdefault(name.removesuffix("/real_time"), []).append(b)
    return {name: {k: statistics.median(b[k] for b in bs) for k in ("patches/s", "GFLOP/s", "other_cores")
                   if all(k in b for b in bs)}
            for name, bs in reps.items()}


def fmt(x, width, spec):
    """x formatted with `spec` and right-aligned in `width`; '-' when unknown."""
    missing = x is None or (isinstance(x, float) and math.isnan(x))
    return format("-" if missing else format(x, spec), f">{width}")


print(f"\nInference on this machine, {threads} threads, float32, medians; conv = the machine's measured rate")
print("(one 3x3 64->64 56x56 batch-32 convolution, the faster of contiguous and channels-last).\n")
head = (f"{'model':<12} {'GFLOP/patch':>11} {'batch':>5} {'patches/s':>10} {'+Grad-CAM':>10} {'CAM cost':>8} "
        f"{'GFLOP/s':>8} {'of conv':>8}  {'other procs':>11}")
print(head)
print("-" * len(head))
worst = 0.0
unknown = []
for i in range(0, len(rest), 3):
    name, gf, path = rest[i], rest[i + 1], rest[i + 2]
    if not os.path.exists(path):
        print(f"{name:<12} bench_inference failed on this model: see its message above the table")
        continue
    gf = gf or json.load(open(path))["context"].get("gflops_per_patch")  # Model's own count
    gf = float(gf) if gf else None
    if gf is None:
        unknown.append(name)
    r = medians(path)
    cc = r.get("conv/contiguous", {}).get("GFLOP/s")
    cl = r.get("conv/channels_last", {}).get("GFLOP/s")
    conv_busy = max((r.get(k, {}).get("other_cores", 0.0) for k in ("conv/contiguous", "conv/channels_last")),
                    default=0.0)
    conv_busy = 0.0 if math.isnan(conv_busy) else conv_busy
    worst = max(worst, conv_busy)
    conv = max(x for x in (cc, cl) if x is not None) if (cc or cl) else None
    for batch in (1, 16, 64, 128):
        p = r.get(f"predict/batch:{batch}", {})
        g = r.get(f"gradcam/batch:{batch}", {})
        pr, gr = p.get("patches/s"), g.get("patches/s")
        busy = max((x.get("other_cores", 0.0) for x in (p, g) if x), default=0.0)
        busy = 0.0 if math.isnan(busy) else busy
        worst = max(worst, busy)
        achieved = gf * pr if gf is not None and pr else None
        print(f"{name:<12} {fmt(gf, 11, '.4g')} {batch:>5} {fmt(pr, 10, '.1f')} {fmt(gr, 10, '.1f')} "
              f"{fmt(pr / gr if pr and gr else None, 8, '.2f')} {fmt(achieved, 8, '.1f')} "
              f"{fmt(achieved / conv if achieved and conv else None, 8, '.1%')}  "
              f"{busy:6.2f} cores{' !' if busy > BUSY else ''}")
    print(f"{'':<12} conv rate in the same process: contiguous {fmt(cc, 0, '.1f')}, "
          f"channels-last {fmt(cl, 0, '.1f')} GFLOP/s  {conv_busy:6.2f} cores{' !' if conv_busy > BUSY else ''}")
print("""
patches/s  Model::predict, preprocessing included; +Grad-CAM: wsi::gradcam (probabilities + CAMs)
CAM cost   time per patch with Grad-CAM / without
GFLOP/s    GFLOP/patch x patches/s (forward pass only)
of conv    GFLOP/s / the conv rate measured in the same process
other procs  CPU other processes used meanwhile; rows marked ! are unreliable: re-run when idle""")
for name in unknown:
    print(f"No GFLOP count for {name}: pass --demo-gflops-per-patch.")
if worst > BUSY:
    print(f"WARNING: other processes used up to {worst:.2f} cores during this run.")
EOF
