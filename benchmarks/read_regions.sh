#!/bin/sh
# Runs the slide-reading benchmark (OpenSlide vs libvips, see benchmarks/README.md).
#
#   benchmarks/read_regions.sh [BINARY] [BENCHMARK FLAGS...]
#
# BINARY defaults to build/bench_slide_read (the `release` preset); any further arguments go to
# Google Benchmark and override the defaults below, e.g. --benchmark_filter=grid96.
# The 20000² slide is generated on first use (about half a minute) into the binary's directory
# (bench-data/, ignored by git) unless WSI_BENCH_DIR is set; WSI_BENCH_SIZE picks another size.
# Takes about a minute once the slide exists (12 benchmarks x 3 repetitions x ~1 s).
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
bin=$root/build/bench_slide_read
case ${1:-} in
  "" | -*) ;;
  *) bin=$1; shift ;;
esac
if [ ! -x "$bin" ]; then
  echo "read_regions.sh: no benchmark binary at $bin; build it first:" >&2
  echo "  cmake --preset release && cmake --build build -j2 --target bench_slide_read" >&2
  exit 2
fi
bin_dir=$(cd "$(dirname "$bin")" && pwd)
WSI_BENCH_DIR=${WSI_BENCH_DIR:-$bin_dir/bench-data}
export WSI_BENCH_DIR

# Three 1 s repetitions per benchmark; the table uses their median (robust to a busy machine).
exec "$bin" --benchmark_min_time=1 --benchmark_repetitions=3 \
  --benchmark_display_aggregates_only=true "$@"
