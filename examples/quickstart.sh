#!/usr/bin/env bash
# The quickstart the README runs: inspect, classify and profile the shipped digits model.
# The model is a small CNN trained on scikit-learn's real digit scans (tests/fixtures/build_models.py);
# the images are real held-out scans; the profile runs end to end on a real photo from scikit-learn.
set -euo pipefail
cd "$(dirname "$0")/.."
EDGELITE="${EDGELITE:-.venv-runtime/bin/edgelite}"   # the device-like environment: no TensorFlow
PHOTO="$(.venv-runtime/bin/python -c 'import sklearn, os; print(os.path.join(os.path.dirname(sklearn.__file__), "datasets", "images", "china.jpg"))')"

set -x
"$EDGELITE" doctor
"$EDGELITE" inspect examples/models/digits_int8.tflite
"$EDGELITE" predict examples/models/digits_int8.tflite examples/images/digit_*.png --top-k 2
"$EDGELITE" profile examples/models/digits_float.tflite examples/models/digits_int8.tflite --threads 1 --runs 200 --image "$PHOTO"
