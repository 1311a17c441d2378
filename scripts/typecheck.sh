#!/usr/bin/env bash
# Type-checks the package as it is installed: edgelite (sdk/), edgelite.runtime (runtime/) and
# edgelite.converters (converters/). The source folders are laid out under that package name
# with symlinks in a temporary folder, because the editable install's import hook is invisible
# to mypy. Settings: [tool.mypy] in pyproject.toml.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${1:-$ROOT/.venv/bin/python}"
tree="$(mktemp -d)"
trap 'rm -rf "$tree"' EXIT
mkdir "$tree/edgelite"
for f in "$ROOT"/sdk/*.py "$ROOT"/sdk/py.typed; do ln -s "$f" "$tree/edgelite/"; done
ln -s "$ROOT/runtime" "$tree/edgelite/runtime"
ln -s "$ROOT/converters" "$tree/edgelite/converters"
cd "$tree"
"$PY" -m mypy --config-file "$ROOT/pyproject.toml" --cache-dir "$ROOT/.mypy_cache" -p edgelite
