#!/bin/bash
# npm run quantize: the int8 variant of the shipped model (models/xpole-hrnet-int8.onnx and its card),
# calibrated on the crops the pipeline makes of the first CALIB_FRAMES (default 80) frames of the
# first training chunk, then scored on the test set (xpole eval) into its card. Deterministic: same
# model and data, same int8 model.
# The partial sums of each stage's multi-scale fusion and the last stage's output (the head's input)
# stay float: quantizing them cost the most accuracy for the least time (docs/training.md, "The
# int8 variant").
# Environment: XPOLE_DATA (default /work/data/xpole, made by npm run train), CALIB_FRAMES.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${XPOLE_DATA:-/work/data/xpole}
FRAMES=${CALIB_FRAMES:-80}
CALIB="$DATA/train-1001"
[ -f "$CALIB/annotations.json" ] || { echo "quantize: no calibration frames in $CALIB (npm run train makes them)" >&2; exit 2; }
FLOAT=/stages.0.0/Add,/stages.1.0/Add,/stages.2.0/Add,/stages.2.0/relu
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
/usr/bin/python3 training/quantize.py probe models/xpole-hrnet.onnx "$TMP/probe.onnx"
npx tsx training/calibrate.mts --dataset "$CALIB" --frames "$FRAMES" --model models/xpole-hrnet.onnx --probe "$TMP/probe.onnx" --out "$TMP/ranges.json"
/usr/bin/python3 training/quantize.py qdq models/xpole-hrnet.onnx "$TMP/ranges.json" models/xpole-hrnet-int8.onnx \
  --float-prefix "$FLOAT" --calibration "pipeline crops of the first $FRAMES frames of train-1001 (xpole synth seed 1001)"
if [ -f "$DATA/test/annotations.json" ]; then
  printf 'model: { path: %s, providers: [cpu] }\n' "$PWD/models/xpole-hrnet-int8.onnx" > "$TMP/int8.yaml"
  node bin/xpole.js eval --dataset "$DATA/test" --config "$TMP/int8.yaml" --json > "$TMP/eval.json"
  /usr/bin/python3 training/quantize.py metrics models/xpole-hrnet-int8.json "$TMP/eval.json" "$DATA/test"
  cat "$TMP/eval.json"
fi
