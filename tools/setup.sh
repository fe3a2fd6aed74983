#!/usr/bin/env bash
# One entry point for a fresh Debian 12 machine (run as root, or as a user with sudo):
#   tools/setup.sh demo   install what is missing, build, run the main job on the embedded default
#   tools/setup.sh test   install what is missing, build with warnings as errors, run the test suite
#   tools/setup.sh deps   only install the Debian packages (idempotent)
#   tools/setup.sh build  deps + release build
#   tools/setup.sh fuzz [EXECS]  deps + clang, build the fuzz preset, run each fuzz target EXECS times
# Everything comes from Debian's own packages (apt); nothing is downloaded from anywhere else.
set -euo pipefail
cd "$(dirname "$0")/.."

# Build tools, the libraries we link, the command-line tools tests call, and OpenBLAS so LibTorch
# does not fall back to the reference BLAS (25x slower, see ../shared/MACHINE-NOTES.md).
PACKAGES=(
  g++ cmake ninja-build pkg-config
  libopenslide-dev libvips-dev libtorch-dev libtbb-dev libtiff-dev libjpeg-dev
  libcli11-dev libgtest-dev libgmock-dev libbenchmark-dev nlohmann-json3-dev libhdf5-dev
  libxml2-dev libssl-dev libdeflate-dev
  libopenblas0-pthread
  openslide-tools libvips-tools hdf5-tools
  python3-h5py python3-openslide python3-numpy python3-torch python3-torchvision
  python3-optuna python3-matplotlib  # pipelines/tune/tune.py: the Bayesian search and its plot
)
# Only the test suite needs these: the workflow engines whose scripts in pipelines/ it runs
# (Snakemake locally; a single-node Slurm, started by tests/slurm_array.sh), and SciPy for the
# Python port of the official Camelyon16 FROC script (tests/camelyon_froc_official.py), and
# Chromium, which the viewer's browser tests drive headless over its DevTools pipe (ctest -L browser).
# groff renders the generated man page in its test (ctest -L docs).
TEST_PACKAGES=(snakemake slurmctld slurmd slurm-client munge python3-scipy chromium groff-base)
# Only the fuzz preset needs these: clang and its libFuzzer/sanitizer runtimes (tests/fuzz).
FUZZ_PACKAGES=(clang libclang-rt-14-dev)

log() { printf '[setup] %s\n' "$*" >&2; }

install_deps() {
  local missing=() wanted=("${PACKAGES[@]}" "$@")
  for p in "${wanted[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
  if [ ${#missing[@]} -eq 0 ]; then
    log "all ${#wanted[@]} Debian packages already installed"
    return
  fi
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { log "need root (or sudo) to install: ${missing[*]}"; exit 1; }
    sudo=(sudo)
  fi
  log "installing ${#missing[@]} missing packages: ${missing[*]}"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

jobs() { nproc 2>/dev/null || echo 2; }

build() {
  local preset=$1
  log "configuring and building (preset $preset)"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$(jobs)"
}

demo() {
  local slide=build/demo/demo-slide.tif
  if [ ! -f "$slide" ]; then
    log "generating the demo slide $slide (synthetic H&E lymph node, seed 1)"
    mkdir -p build/demo
    build/wsi-heatmap synth --out "$slide" --size 16384x16384 --seed 1 --mpp 0.25 --tumours 3 \
      --mask build/demo/demo-slide_mask.tif --annotations build/demo/demo-slide.xml
  fi
  log "the main job: wsi-heatmap $slide -o build/demo/heatmap (bundled demo model)"
  build/wsi-heatmap "$slide" -o build/demo/heatmap
  log "how well it found the generated tumours (evaluate-slides against the slide's mask)"
  build/wsi-heatmap evaluate-slides --results build/demo/heatmap --truth build/demo/demo-slide_mask.tif \
    --slides "$slide" -o build/demo/evaluation
  log "the offline viewer (open it in a browser; docs/commands/view.md)"
  build/wsi-heatmap view build/demo/heatmap --evaluation build/demo/evaluation
  log "outputs:"
  ls -l build/demo/heatmap
}

case "${1:-}" in
  deps) install_deps ;;
  build) install_deps; build release ;;
  demo) install_deps; build release; demo ;;
  test)
    install_deps "${TEST_PACKAGES[@]}"
    build ci
    log "running the test suite"
    ctest --preset ci -j "$(jobs)"
    ;;
  fuzz)
    install_deps "${FUZZ_PACKAGES[@]}"
    build fuzz
    log "running each fuzz target (tests/fuzz/run.sh ${2:-1000000})"
    tests/fuzz/run.sh "${2:-1000000}"
    ;;
  *) echo "usage: tools/setup.sh demo|test|deps|build|fuzz [EXECS]" >&2; exit 2 ;;
esac
