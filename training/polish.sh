#!/bin/bash
# npm run train:polish: the pole polisher (src/vision/polish.ts) from the training frames npm run
# train renders: patches around the labelled apexes -> 10000 seeded steps -> models/xpole-polish.onnx
# + card. About 18 minutes on 2 idle cores. XPOLE_DATA as for npm run train (default /work/data/xpole);
# WORK (default $XPOLE_DATA/polish) holds the patches and the checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${XPOLE_DATA:-/work/data/xpole}
WORK=${WORK:-$DATA/polish}
mkdir -p "$WORK"
export OMP_NUM_THREADS=2 OMP_WAIT_POLICY=PASSIVE
# The chunks npm run train always renders (seeds 1001..), not the optional ones a run may have
# added (DEFECT_FRAMES: 11xx, SIZE_FRAMES: 12xx, WIDE_FRAMES: 13xx, LOOK_FRAMES: 15xx): same data, same polisher.
shopt -s nullglob
chunks=("$DATA"/train-10[0-9][0-9])
[ ${#chunks[@]} -gt 0 ] || { echo "no training frames under $DATA: run training/make_data.sh first (npm run train does)" >&2; exit 1; }
/usr/bin/python3 training/polish.py patches "$WORK/patches.npz" "${chunks[@]}"
/usr/bin/python3 training/polish.py train "$WORK/patches.npz" "$WORK/polish.pt" --steps "${STEPS:-10000}"
# The card's data note names the folders and the frames they hold, as the shipped card does.
dirs=$(cd "$DATA" && echo train-10[0-9][0-9])
frames=$(find "${chunks[@]/%//images}" -type f | wc -l)
/usr/bin/python3 training/polish.py export "$WORK/polish.pt" models/xpole-polish.onnx \
  --data-note "${dirs%% *} .. ${dirs##* } (xpole synth seeds 1001.., $frames frames), 2 displaced patches per labelled apex"
