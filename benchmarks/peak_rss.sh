# Sourced by the benchmark scripts: `measure CMD...` runs CMD, polling its peak resident memory
# (VmHWM in /proc/PID/status, the kernel's own high-water mark) until it ends, and sets
# $secs (wall seconds) and $peak_mib. Polling every 0.1 s cannot miss the peak: VmHWM only grows.
measure() {
  local start end pid kb
  start=$(date +%s.%N)
  "$@" &
  pid=$!
  local peak_kb=0
  while kill -0 "$pid" 2>/dev/null; do
    kb=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    [ -n "$kb" ] && [ "$kb" -gt "$peak_kb" ] && peak_kb=$kb
    sleep 0.1
  done
  wait "$pid"
  end=$(date +%s.%N)
  secs=$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.3f", b - a}')
  peak_mib=$(awk -v kb="$peak_kb" 'BEGIN {printf "%.0f", kb / 1024}')
}
