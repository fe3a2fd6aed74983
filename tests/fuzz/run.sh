#!/usr/bin/env bash
# Runs the libFuzzer targets built by the fuzz preset; builds nothing.
#   tests/fuzz/run.sh [EXECS] [TARGET...]
# EXECS: executions per target (default 1000000); TARGETs: names under tests/fuzz/corpus/ (default
# all). Each target starts from a fresh working corpus plus its committed seeds (read only: new
# inputs go to the working corpus), two targets at a time on two cores. Prints one line per
# target; the log, the corpus and any finding (crash-*, leak-*, timeout-*, oom-* inputs) are
# under OUT/TARGET. Exit status 1 when any target found something.
# Environment: WSI_FUZZ_BUILD (default build-fuzz), WSI_FUZZ_OUT (default BUILD/fuzz-runs),
# WSI_FUZZ_JOBS (default the number of cores).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
execs=${1:-1000000}
shift $(($# > 0 ? 1 : 0))
build=${WSI_FUZZ_BUILD:-$root/build-fuzz}
out=${WSI_FUZZ_OUT:-$build/fuzz-runs}
parallel=${WSI_FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}
if [ $# -gt 0 ]; then targets=("$@"); else
  targets=()
  for d in "$here"/corpus/*/; do targets+=("$(basename "$d")"); done
fi
[[ "$execs" =~ ^[0-9]+$ ]] || { echo "usage: $0 [EXECS] [TARGET...]" >&2; exit 2; }
for t in "${targets[@]}"; do
  bin=$build/tests/fuzz/fuzz_$t
  [ -x "$bin" ] || { echo "no $bin: build it first (cmake --preset fuzz && cmake --build --preset fuzz)" >&2; exit 2; }
  [ -d "$here/corpus/$t" ] || { echo "no seeds in $here/corpus/$t" >&2; exit 2; }
done

# Inputs up to 8 KB: every seed fits, and the parsers are linear, so longer inputs only run slower.
# A single input over 10 s is a finding (a hang), as is 2 GB of memory.
run_one() {
  local t=$1 dir=$out/$1
  rm -rf "$dir" && mkdir -p "$dir/corpus"
  UBSAN_OPTIONS=print_stacktrace=1 "$build/tests/fuzz/fuzz_$t" -runs="$execs" -seed=1 -max_len=8192 \
    -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$dir/" \
    "$dir/corpus" "$here/corpus/$t" >"$dir/log" 2>&1
  echo $? >"$dir/status"
}

start=$(date +%s)
for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$parallel" ]; do wait -n; done
  run_one "$t" &
done
wait

failed=0
for t in "${targets[@]}"; do
  dir=$out/$t
  status=$(cat "$dir/status" 2>/dev/null || echo 1)
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE ' "$dir/log" | tail -n 1)
  last=$(grep -E '^#[0-9]+[[:space:]]' "$dir/log" | tail -n 1)
  runs=$(grep -oE 'stat::number_of_executed_units: [0-9]+' "$dir/log" | grep -oE '[0-9]+$' || true)
  secs=$(grep -oE 'Done [0-9]+ runs in [0-9]+ second' "$dir/log" | grep -oE '[0-9]+ second' | grep -oE '[0-9]+' || true)
  corpus=$(sed -nE 's/.* corp: ([0-9]+\/[0-9]+[a-zA-Z]*) .*/\1/p' <<<"${done_line:-$last}")
  findings=$(find "$dir" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
    -o -name 'oom-*' -o -name 'slow-unit-*' \) | wc -l)
  if [ "$status" -ne 0 ] && [ "$findings" -eq 0 ]; then findings=1; fi
  [ "$findings" -eq 0 ] || failed=1
  printf '%-14s %9s executions in %4s s, corpus %s (inputs/bytes), findings %d   (%s)\n' \
    "$t" "${runs:-?}" "${secs:-?}" "${corpus:-?}" "$findings" "$dir/log"
  if [ "$findings" -ne 0 ]; then
    grep -m 1 -E 'FUZZ FINDING|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error' "$dir/log" | sed 's/^/    /'
  fi
done
echo "all targets: $(($(date +%s) - start)) s wall clock, $parallel at a time"
exit $failed
