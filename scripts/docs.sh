#!/usr/bin/env bash
# Builds the documentation site (mkdocs.yml, sources in docs/) with --strict: a broken link, a missing
# page, a reference that does not resolve or any warning (griffe's on a docstring included) fails it. Not
# --quiet: with it, mkdocs does not fail on the warnings --strict exists for. Offline: no fonts or scripts are fetched.
#   bash scripts/docs.sh [PYTHON] [SITE_DIR]     (default: .venv-docs/bin/python, a temporary folder)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${1:-$ROOT/.venv-docs/bin/python}"
source "$ROOT/scripts/package_tree.sh"
tree="$(package_tree "$ROOT")"
site="${2:-$tree/site}"
trap 'rm -rf "$tree"' EXIT
cd "$ROOT"
EDGELITE_DOCS_TREE="$tree" NO_MKDOCS_2_WARNING=1 "$PY" -m mkdocs build --strict --site-dir "$site"
echo "documentation built: $(find "$site" -name '*.html' | wc -l) pages"
