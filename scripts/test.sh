#!/usr/bin/env bash
# The test command (README, .ci/run): builds the environments if needed, then runs
#   1. the whole suite in .venv (TensorFlow present), and
#   2. the runtime tests again in .venv-runtime, where TensorFlow is not installed at all, and
#   3. once more in .venv-tflite on tflite-runtime with numpy<2 (older Pi OS / Coral images).
# Extra arguments go to both pytest runs (e.g. -m slow, -k profile).
source "$(dirname "$0")/envs.sh"
build_envs
cd "$ROOT"
export PYTHONDONTWRITEBYTECODE=1 TF_CPP_MIN_LOG_LEVEL=3
log "full suite (with TensorFlow)"
.venv/bin/python -m pytest "$@"
log "runtime suite without TensorFlow (ai-edge-litert)"
.venv-runtime/bin/python -m pytest tests/runtime tests/sdk "$@"
log "runtime suite on tflite-runtime with numpy<2 (the tflite extra)"
EDGELITE_BACKEND=tflite_runtime .venv-tflite/bin/python -m pytest tests/runtime tests/sdk "$@"
