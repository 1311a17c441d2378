# Sourced by scripts/typecheck.sh and scripts/docs.sh: lays runtime/, converters/ and sdk/ out as the
# installed package edgelite (edgelite, edgelite.runtime, edgelite.converters) with symlinks in a new
# temporary folder, because the editable install's import hook is invisible to static tools (mypy,
# griffe). Prints the folder; the caller removes it.
package_tree() {
    local root="$1" tree
    tree="$(mktemp -d)"
    mkdir "$tree/edgelite"
    for f in "$root"/sdk/*.py "$root"/sdk/py.typed; do ln -s "$f" "$tree/edgelite/"; done
    for d in "$root"/sdk/*/; do
        [ -f "$d/__init__.py" ] && ln -s "${d%/}" "$tree/edgelite/$(basename "$d")"
    done
    ln -s "$root/runtime" "$tree/edgelite/runtime"
    ln -s "$root/converters" "$tree/edgelite/converters"
    printf '%s\n' "$tree"
}
