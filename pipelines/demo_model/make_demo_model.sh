#!/usr/bin/env bash
# Reproduces the bundled demo model (models/demo-cnn.pt + .json) from scratch:
#   1. generate synthetic H&E lymph-node slides with tumour masks (wsi-heatmap synth; seeds below),
#   2. extract balanced 96x96 patches at 0.972 um/px, PCam conventions (wsi-heatmap extract),
#      slides split by slide into train / validation / test (the test slides are never seen),
#   3. train the built-in cancernet (wsi-heatmap train, fixed seed),
#   4. evaluate on the test slides' patches (wsi-heatmap evaluate) and write the model card.
# Usage: pipelines/demo_model/make_demo_model.sh [BUILD_DIR] [WORK_DIR] [OUT_DIR]
#   defaults: build, build/demo-model-work, models
# Environment: SLIDE_SIZE (default 16000), EPOCHS (default 12), THREADS (default: all cores).
# Deterministic: the same commit, thread count and packages give the same model.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
WORK=${2:-$BUILD/demo-model-work}
OUT=${3:-models}
SIZE=${SLIDE_SIZE:-16000}
EPOCHS=${EPOCHS:-12}
THREADS=${THREADS:-$(nproc)}
WSI="$BUILD/wsi-heatmap"
[ -x "$WSI" ] || { echo "error: $WSI not built (run tools/setup.sh build first)" >&2; exit 2; }
mkdir -p "$WORK/slides" "$OUT"

# Slides: varied stain, focus and noise so the model does not learn one scanner's look.
#   train 101-110, validation 201-202, test 301-304.
make_slide() {  # seed stain blur noise tumours
  local s=$WORK/slides/synth-$1.tif
  [ -f "$s" ] || "$WSI" synth -o "$s" --mask "$WORK/slides/synth-$1_mask.tif" --size "${SIZE}x${SIZE}" \
    --seed "$1" --stain-variation "$2" --blur "$3" --noise "$4" --tumours "$5" --threads "$THREADS"
}
i=0
for seed in 101 102 103 104 105 106 107 108 109 110 201 202 301 302 303 304; do
  i=$((i + 1))
  make_slide "$seed" "0.$((i % 5 * 2))" "$(( i % 3 == 0 ? 2 : 0 ))" "0.$((i % 4))" "$(( 2 + i % 3 ))"
done

extract() {  # split balance stride seeds...
  local split=$1 balance=$2 stride=$3; shift 3
  local slides=() ; for s in "$@"; do slides+=("$WORK/slides/synth-$s.tif"); done
  rm -rf "$WORK/$split"
  "$WSI" extract "${slides[@]}" --mask "$WORK/slides/{stem}_mask.tif" -o "$WORK/$split" --prefix demo \
    --split "$split=1" --stride "$stride" --balance "$balance" --label-rule center --max-per-slide 2000 --seed 7 --threads "$THREADS" -q
}
# Training patches overlap (stride 64 of 96) for more variety; validation and test do not.
extract train undersample 64 101 102 103 104 105 106 107 108 109 110
extract valid undersample 96 201 202
extract test none 96 301 302 303 304

"$WSI" train "$WORK/train/demo_train_x.h5" --val "$WORK/valid/demo_valid_x.h5" -o "$OUT/demo-cnn.pt" --name demo-cnn \
  --arch cancernet --width 32 --input-size 48 --resize area --mpp 0.972 --epochs "$EPOCHS" --batch 64 \
  --lr 0.002 --schedule cosine --patience 4 --seed 1 --threads "$THREADS" -q

rm -rf "$WORK/eval"
"$WSI" evaluate "$WORK/test/demo_test_x.h5" --model "$OUT/demo-cnn.pt" -o "$WORK/eval" --threads "$THREADS" -q
cp "$WORK/eval/metrics.json" "$OUT/demo-cnn.test-metrics.json"
cp "$WORK/eval/roc.svg" "$OUT/demo-cnn.test-roc.svg"
cp "$WORK/eval/report.txt" "$OUT/demo-cnn.test-report.txt"
for f in train valid test; do cp "$WORK/$f/demo_summary.json" "$OUT/demo-cnn.data-$f.json"; done
/usr/bin/python3 pipelines/demo_model/model_card.py "$OUT" > "$OUT/demo-cnn.md"
echo "held-out test patches: $(grep -o '"auc": [0-9.]*' "$OUT/demo-cnn.test-metrics.json")"
