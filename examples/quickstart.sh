#!/usr/bin/env bash
# The quickstart the README runs: train a small classifier on real digit scans, convert it
# with edgelite (pruned to 50% zeros while fine-tuning, then full int8, calibrated and verified
# on held-out scans), then inspect, classify and profile it in the device-like environment that
# has no TensorFlow, end to end on a real digit scan.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-out}"

set -x
.venv/bin/python examples/train_and_convert.py --out "$OUT"
DEVICE=.venv-runtime/bin/edgelite   # no TensorFlow in this environment
"$DEVICE" doctor
"$DEVICE" inspect "$OUT/digits_int8.tflite"
"$DEVICE" predict "$OUT/digits_int8.tflite" examples/images/digit_*.png --top-k 2
"$DEVICE" profile "$OUT/digits_int8.tflite" examples/models/digits_float.tflite --threads 1 --runs 200 --image examples/images/digit_3.png
