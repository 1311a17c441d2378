#!/usr/bin/env bash
# README command 1: install everything into the project's environments, then run the quickstart.
source "$(dirname "$0")/envs.sh"
build_envs
cd "$ROOT"
log "environments ready: .venv (full), .venv-runtime (no TensorFlow)"
exec bash examples/quickstart.sh
