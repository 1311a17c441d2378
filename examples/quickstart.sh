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
set +x
# The outcome, checked: from the environment without TensorFlow, the converted model names the digit in every
# example scan (digit_N.png shows an N), or the quickstart fails.
"$DEVICE" predict "$OUT/digits_int8.tflite" examples/images/digit_*.png --json > "$OUT/predictions.json"
.venv-runtime/bin/python - "$OUT/predictions.json" <<'CHECK'
import json, pathlib, sys
results = json.loads(pathlib.Path(sys.argv[1]).read_text())["results"]
wrong = [(r["source"], r["classes"][0]["label"]) for r in results
         if r["classes"][0]["label"] != pathlib.Path(r["source"]).stem.split("_")[1]]
print(f"quickstart: {len(results) - len(wrong)} of {len(results)} example scans named right from the runtime "
      "without TensorFlow" + (f"; wrong: {wrong}" if wrong else ""))
sys.exit(1 if wrong or len(results) != 10 else 0)
CHECK
