#!/usr/bin/env bash
# ctest: pipelines/snakemake/Snakefile run locally (`snakemake --cores 2`) on generated slides
# with the bundled demo model: one job per slide, the aggregated manifest, the same DIR/NAME/
# layout as `wsi-heatmap batch`, and a rerun that has nothing to do. Exit 77 (skipped) without
# Debian's snakemake.
#   tests/snakemake_workflow.sh WSI_HEATMAP SOURCE_DIR
set -euo pipefail
cli=$1 src=$2
if ! command -v snakemake >/dev/null; then
  # A missing prerequisite skips the test, except under CI=true (.ci/run), where it fails.
  [ "${CI:-}" = true ] && { echo "FAILED (CI=true): snakemake is not installed (Debian: snakemake)" >&2; exit 1; }
  echo "SKIPPED: snakemake is not installed (Debian: snakemake)"; exit 77
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/wsi-snakemake.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "FAILED: $*" >&2; exit 1; }

mkdir -p "$work/slides/week 2"
"$cli" synth --out "$work/slides/case one.tif" --size 2048x2048 --seed 1 --tumours 1 >/dev/null
"$cli" synth --out "$work/slides/week 2/case-two.tif" --size 2048x2048 --seed 2 --tumours 1 >/dev/null
cat >"$work/config.yaml" <<YAML
slides: ["$work/slides"]
out: "$work/out"
wsi_heatmap: "$cli"
preset: ""
gradcam: false
threads: 1
YAML
snake=(snakemake -s "$src/pipelines/snakemake/Snakefile" --configfile "$work/config.yaml" --directory "$work")
"${snake[@]}" --cores 2 --quiet >"$work/snakemake.log" 2>&1 || { cat "$work/snakemake.log"; fail "snakemake failed"; }

manifest=$work/out/manifest.snakemake.csv
[ -f "$manifest" ] || fail "no $manifest"
[ "$(wc -l <"$manifest")" -eq 3 ] || { cat "$manifest"; fail "the manifest should hold a header and 2 slides"; }
grep -q '^case_one,.*,done,' "$manifest" || { cat "$manifest"; fail "case_one is not done in the manifest"; }
grep -q '^case-two,.*,done,' "$manifest" || { cat "$manifest"; fail "case-two is not done in the manifest"; }
for f in prob.tif overlay.tif thumb.png patches.csv froc.csv regions.geojson summary.json; do
  [ -f "$work/out/case_one/case_one.$f" ] || fail "missing case_one/case_one.$f"
done
openslide-show-properties "$work/out/case-two/case-two.prob.tif" >/dev/null || fail "OpenSlide cannot open the probability TIFF"
# Same layout as a batch run of the same slides.
"$cli" batch "$work/slides" -o "$work/batch" -q --no-gradcam --threads 1 >/dev/null || fail "batch failed"
diff <(cd "$work/out" && find case_one case-two -type f | sort) <(cd "$work/batch" && find case_one case-two -type f | sort) ||
  fail "the Snakemake and batch layouts differ"
# A rerun has nothing to do.
"${snake[@]}" --cores 2 --dry-run >"$work/dry.log" 2>&1 || { cat "$work/dry.log"; fail "dry run failed"; }
grep -q "Nothing to be done" "$work/dry.log" || { cat "$work/dry.log"; fail "a rerun wants to redo work"; }
echo "snakemake workflow: 2 slides, manifest and layout as expected"
