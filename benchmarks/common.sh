# Shared by the benchmark scripts (sourced, not run). Expects `root` (the checkout), `bin` (the
# wsi-heatmap binary), `data` (BUILD_DIR/bench-data) and `me` (the script's name, for messages).

# bench_slide SIZE: a generated SIZE x SIZE slide. Reused when a synthetic slide of that size is
# already in a bench-data folder of this checkout (heatmap-, synth- or extract-SIZE.tif: the
# scripts generate them all the same way), else made once with `wsi-heatmap synth` (seed 5,
# 5 tumours, 0.25 µm/px), written under a temporary name by synth itself.
bench_slide() {
  local size=$1 f
  for f in "$data"/{heatmap,synth,extract}-"$size".tif "$root"/build*/bench-data/{heatmap,synth,extract}-"$size".tif; do
    [ -f "$f" ] && { echo "$f"; return; }
  done
  f=$data/heatmap-$size.tif
  echo "$me: generating $f (once) ..." >&2
  "$bin" synth --out "$f" --size "${size}x${size}" --seed 5 --tumours 5 >&2
  echo "$f"
}

# machine_busy: CPU-busy seconds of the whole machine so far (all cores, steal included: time the
# hypervisor gave to other guests is time this run did not get), from /proc/stat.
machine_busy() { awk -v hz="$(getconf CLK_TCK)" '/^cpu / {print ($2 + $3 + $4 + $7 + $8 + $9) / hz; exit}' /proc/stat; }
