#!/usr/bin/env bash
# README command 1: install everything into the project's environments, then run the quickstart.
source "$(dirname "$0")/envs.sh"
build_envs
cd "$ROOT"
log "environments ready: .venv (full, TensorFlow), .venv-runtime (ai-edge-litert, no TensorFlow), .venv-tflite (tflite-runtime, numpy<2), .venv-docs (the documentation site)"
exec bash examples/quickstart.sh
