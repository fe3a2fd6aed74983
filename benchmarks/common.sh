# Shared by the benchmark scripts (sourced, not run). Expects `root` (the checkout), `bin` (the
# wsi-heatmap binary), `data` (BUILD_DIR/bench-data) and `me` (the script's name, for messages).

# bench_slide SIZE [MPP]: a generated SIZE x SIZE slide at MPP µm/px (default 0.25). At 0.25 it is
# reused when a synthetic slide of that size is already in a bench-data folder of this checkout
# (heatmap-, synth- or extract-SIZE.tif: the scripts generate them all the same way); at another
# MPP the name is heatmap-SIZE-mppMPP.tif. Else it is made once with `wsi-heatmap synth` (seed 5,
# 5 tumours), written under a temporary name by synth itself.
bench_slide() {
  local size=$1 mpp=${2:-0.25} names d n f
  if [ "$mpp" = 0.25 ]; then names=({heatmap,synth,extract}-"$size"); else names=("heatmap-$size-mpp$mpp"); fi
  for d in "$data" "$root"/build*/bench-data; do
    for n in "${names[@]}"; do
      f=$d/$n.tif
      [ -f "$f" ] && { echo "$f"; return; }
    done
  done
  f=$data/${names[0]}.tif
  echo "$me: generating $f (once) ..." >&2
  "$bin" synth --out "$f" --size "${size}x${size}" --seed 5 --tumours 5 --mpp "$mpp" >&2
  echo "$f"
}

# machine_busy: CPU-busy seconds of the whole machine so far (all cores, steal included: time the
# hypervisor gave to other guests is time this run did not get), from /proc/stat.
machine_busy() { awk -v hz="$(getconf CLK_TCK)" '/^cpu / {print ($2 + $3 + $4 + $7 + $8 + $9) / hz; exit}' /proc/stat; }
