#!/bin/bash
# Makes the training, validation and test sets with `xpole synth` (fixed seeds, defect rate 0.3).
# The training set comes in chunks of CHUNK frames (seeds 1001, 1002, ...) so training can start on
# the first chunks while the rest renders. DEFECT_FRAMES more training frames (default 0; seeds 1101,
# 1102, ...) are all FAIL (defect rate 1), for training on more defects, above all missing poles
# (rare at 0.3); the shipped model does not use them (docs/training.md). SIZE_FRAMES more training
# frames (default 0; seeds 1201, 1202, ...) are drawn at the frame sizes in SIZES, a chunk each in
# turn: the renderer draws 1000-2048 px by default, SPEC allows 256-8192 px a side. WIDE_FRAMES
# more (default 0; seeds 1301, 1302, ...) have cathode tips scattered 1.5-12 px about their line.
# LOOK_FRAMES more (default 0; seeds 1501, 1502, ..., defect rate 0.5) vary the cathodes' look:
# scatter, thickness, contrast, and missing cathodes hidden in the overlap zone; with LOOK_HIDDEN=0
# none hides and the seeds are 1551, 1552, ... (chunks.sh).
# Usage: make_data.sh DATA_DIR [TRAIN_FRAMES] [VAL] [TEST]
set -euo pipefail
cd "${XPOLE_ROOT:-$(dirname "$0")/..}"
DATA=${1:-/work/data}
TRAIN=${2:-3000}
VAL=${3:-1000}
TEST=${4:-1000}
CHUNK=${CHUNK:-250}
source training/chunks.sh
mk() { # dir count seed [defect rate [synth options]]
  if [ -f "$1/annotations.json" ]; then echo "have $1"; return; fi
  rm -rf "$1.part"
  node bin/xpole.js synth --out "$1.part" --count "$2" --seed "$3" --defect-rate "${4:-0.3}" "${@:5}"
  # The ROI stage's boxes, so training sees what the pipeline will crop (when the stage exists).
  if [ -f bench/roi.ts ]; then
    npx tsx bench/roi.ts --dataset "$1.part" --dump "$1.part/rois.json" || echo "ROI dump failed for $1"
  fi
  mv "$1.part" "$1"
}
mapfile -t chunks < <(training_chunks "$TRAIN")
for k in "${!chunks[@]}"; do
  read -r seed rate options <<< "${chunks[$k]}"
  # shellcheck disable=SC2086 # the synth options are words
  mk "$DATA/train-$seed" "$CHUNK" "$seed" "$rate" $options
  # The validation set right after the first chunk, so a run may start while the rest renders.
  if [ "$k" -eq 0 ]; then mk "$DATA/val" "$VAL" 2; fi
done
mk "$DATA/test" "$TEST" 3
