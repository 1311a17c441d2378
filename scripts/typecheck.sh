#!/usr/bin/env bash
# Type-checks the package as it is installed: edgelite (sdk/), edgelite.runtime (runtime/) and
# edgelite.converters (converters/), laid out by scripts/package_tree.sh. Settings: [tool.mypy] in
# pyproject.toml.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${1:-$ROOT/.venv/bin/python}"
source "$ROOT/scripts/package_tree.sh"
tree="$(package_tree "$ROOT")"
trap 'rm -rf "$tree"' EXIT
cd "$tree"
"$PY" -m mypy --config-file "$ROOT/pyproject.toml" --cache-dir "$ROOT/.mypy_cache" -p edgelite
