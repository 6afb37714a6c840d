#!/bin/bash
# npm run train: data (xpole synth, fixed seeds) -> training -> test-set evaluation -> ONNX + card in models/.
# Same seeds, same data, same model (fixed epochs, seeded torch/numpy, deterministic algorithms,
# fixed thread count). Environment: XPOLE_DATA (default /work/data/xpole, outside the repo),
# EPOCHS (default 30), TRAIN_FRAMES / VAL_FRAMES / TEST_FRAMES (3000 / 1000 / 1000), DEFECT_FRAMES
# (default 0: more training frames, all FAIL; make_data.sh), SIZE_FRAMES and SIZES (default 0: more
# training frames at other frame sizes; make_data.sh), WIDE_FRAMES (default 0: more training frames
# with cathode tips scattered about their line; make_data.sh), LOOK_FRAMES (default 0: more training
# frames with cathodes of varied scatter, thickness and contrast and hidden missing ones; LOOK_HIDDEN=0:
# none hidden); KEEP_EPOCHS=1 (every validated epoch exported and judged on the real frames at the
# end, training/real_gate.sh); fine-tuning:
# INIT (a checkpoint to start from), LR (default 2e-3), WARMUP (steps, default 100), WORK (checkpoints),
# DEFECT_BOOST (sampling weight of FAIL frames without a missing pole, default 1), PITCH_BOOST (sampling
# weight of frames with an anode pitch under PITCH_BELOW px, default 1 and 13), SECOND_PASS=1 (train
# on a third crop per frame, the pipeline's second-pass box, and validate on it), FREEZE_BN=1 (BatchNorm
# in inference mode: needed for an INIT made by training/from_onnx.py from a shipped .onnx).
# XPOLE_INPUT_HEIGHT (model input rows, default 256; the card records it, inference follows the card).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${XPOLE_DATA:-/work/data/xpole}
TRAIN=${TRAIN_FRAMES:-3000}
VAL=${VAL_FRAMES:-1000}
TEST=${TEST_FRAMES:-1000}
export OMP_NUM_THREADS=2 OMP_WAIT_POLICY=PASSIVE
LOG=training/logs/train-log.jsonl
bash training/make_data.sh "$DATA" "$TRAIN" "$VAL" "$TEST"
# Exactly the chunks this run asked for, in make_data.sh's order: a chunk left in DATA by another
# run (DEFECT_FRAMES, SIZE_FRAMES, WIDE_FRAMES, LOOK_FRAMES) must not join this one unasked.
source training/chunks.sh
TRAIN_DIRS=$(training_chunks "$TRAIN" | while read -r seed _; do printf '%s,' "$DATA/train-$seed"; done)
TRAIN_DIRS=${TRAIN_DIRS%,}
SEEDS="{\"train\": \"1001.. in chunks of 250 frames\", \"trainFrames\": $TRAIN, \"defectTrain\": \"1101.. in chunks of 250 frames, defect rate 1\", \"defectTrainFrames\": ${DEFECT_FRAMES:-0}, \"sizeTrain\": \"1201.. in chunks of 250 frames at $CHUNK_SIZES in turn\", \"sizeTrainFrames\": ${SIZE_FRAMES:-0}, \"wideTrain\": \"1301.. in chunks of 250 frames, $WIDE_OPTIONS\", \"wideTrainFrames\": ${WIDE_FRAMES:-0}, \"lookTrain\": \"$LOOK_SEED.. in chunks of 250 frames, defect rate $LOOK_RATE, $LOOK_OPTIONS\", \"lookTrainFrames\": ${LOOK_FRAMES:-0}, \"val\": 2, \"valFrames\": $VAL, \"test\": 3, \"testFrames\": $TEST, \"defectRate\": 0.3}"
/usr/bin/python3 training/train.py --train "$TRAIN_DIRS" --val "$DATA/val" \
  --rois-train '{dir}/rois.json' --rois-val "$DATA/val/rois.json" \
 --epochs "${EPOCHS:-30}" --lr "${LR:-2e-3}" --warmup "${WARMUP:-100}" --defect-boost "${DEFECT_BOOST:-1}" --pitch-boost "${PITCH_BOOST:-1}" --pitch-below "${PITCH_BELOW:-13}" ${SECOND_PASS:+--second-pass} ${FREEZE_BN:+--freeze-bn} ${KEEP_EPOCHS:+--keep-epochs} ${INIT:+--init "$INIT"} --work "${WORK:-$DATA/run}" --data-seeds "$SEEDS" --log "$LOG"
ROIS=()
[ -f "$DATA/test/rois.json" ] && ROIS=(--rois "$DATA/test/rois.json")
/usr/bin/python3 training/evaluate.py --dataset "$DATA/test" --checkpoint "${WORK:-$DATA/run}/best.pt" "${ROIS[@]}"
if [ -n "${KEEP_EPOCHS:-}" ]; then TRAIN_LOG=$LOG bash training/real_gate.sh "${WORK:-$DATA/run}"; fi
