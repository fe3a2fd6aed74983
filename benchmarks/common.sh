# Shared by the benchmark scripts (sourced, not run). Expects `root` (the checkout), `bin` (the
# wsi-heatmap binary), `data` (BUILD_DIR/bench-data) and `me` (the script's name, for messages).

# bench_slide SIZE [MPP]: a generated SIZE x SIZE slide at MPP µm/px (default 0.25). At 0.25 it is
# reused when a synthetic slide of that size is already in a bench-data folder of this checkout
# (heatmap-, synth- or extract-SIZE.tif: the scripts generate them all the same way); at another
# MPP the name is heatmap-SIZE-mppMPP.tif. Else it is made once with `wsi-heatmap synth` (seed 5,
# 5 tumours), written under a temporary name by synth itself.
bench_slide() {
  local size=$1 mpp=${2:-0.25} f
  if [ "$mpp" = 0.25 ]; then
    for f in "$data"/{heatmap,synth,extract}-"$size".tif "$root"/build*/bench-data/{heatmap,synth,extract}-"$size".tif; do
      [ -f "$f" ] && { echo "$f"; return; }
    done
    f=$data/heatmap-$size.tif
  else
    for f in "$data/heatmap-$size-mpp$mpp.tif" "$root"/build*/bench-data/heatmap-"$size-mpp$mpp".tif; do
      [ -f "$f" ] && { echo "$f"; return; }
    done
    f=$data/heatmap-$size-mpp$mpp.tif
  fi
  echo "$me: generating $f (once) ..." >&2
  "$bin" synth --out "$f" --size "${size}x${size}" --seed 5 --tumours 5 --mpp "$mpp" >&2
  echo "$f"
}

# machine_busy: CPU-busy seconds of the whole machine so far (all cores, steal included: time the
# hypervisor gave to other guests is time this run did not get), from /proc/stat.
machine_busy() { awk -v hz="$(getconf CLK_TCK)" '/^cpu / {print ($2 + $3 + $4 + $7 + $8 + $9) / hz; exit}' /proc/stat; }
