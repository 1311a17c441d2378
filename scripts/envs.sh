# Sourced by scripts/setup.sh and scripts/test.sh: builds the project's Python environments.
#
# TensorFlow is ~2 GB installed, so third-party packages live in a per-machine environment
# keyed by a hash of pyproject.toml and the Python version ($EDGELITE_ENV_HOME, default
# ~/.cache/edgelite/envs), built once and reused by every checkout on the machine. Each
# checkout gets a light virtual environment of its own (.venv, .venv-runtime) that sees the
# shared packages through a .pth file and holds an editable install of this checkout.
#
#   .venv          full workstation environment: edgelite[dev] (runtime, converters, tests)
#   .venv-runtime  device-like environment: edgelite[litert,test,video,ray], no TensorFlow at all
#   .venv-tflite   older-device environment: edgelite[tflite,test,video,ray-numpy1], tflite-runtime with numpy<2
#   .venv-docs     edgelite[docs]: MkDocs, Material, mkdocs-click, mkdocstrings (scripts/docs.sh)
#   (shared only)  edgelite[metadata]: mediapipe 0.10.21 (numpy<2), run by the converters to write
#                  the standard TFLite metadata; .venv/edgelite-metadata-python names it
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
ENV_HOME="${EDGELITE_ENV_HOME:-$HOME/.cache/edgelite/envs}"

log() { printf '[edgelite] %s\n' "$*" >&2; }

check_python() {
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
        || { log "Python >= 3.10 is required (found: $("$PYTHON" --version 2>&1))"; exit 1; }
    "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null \
        || { log "this Python lacks venv/ensurepip; install it (on Debian, the package python3-venv)"; exit 1; }
}

# The requirements an environment with these extras installs (extras that name other extras
# are followed), so editing anything else in pyproject.toml never rebuilds TensorFlow.
dependency_spec() {
    "$PYTHON" - "$ROOT/pyproject.toml" "$1" <<'PY'
import json, re, sys
try:
    import tomllib
except ImportError:  # Python 3.10: key on the whole file
    print(open(sys.argv[1]).read()); sys.exit()
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
extras, todo, seen = project.get("optional-dependencies", {}), sys.argv[2].split(","), set()
requirements = list(project.get("dependencies", []))
while todo:
    name = todo.pop()
    if name in seen:
        continue
    seen.add(name)
    for req in extras.get(name, []):
        inner = re.fullmatch(r"edgelite\[(.*)\]", req.replace(" ", ""))
        todo.extend(inner.group(1).split(",")) if inner else requirements.append(req)
print(json.dumps(sorted(requirements)))
PY
}

# PyTorch comes first, as a CPU build: with torch already installed, the torch extra's range installs nothing more,
# where PyPI's default torch for x86-64 Linux is a CUDA build of several GB. On this project's machines a CPU build
# of torch 2.13.0 lies in pip's find-links; elsewhere set EDGELITE_TORCH_BUILD to a CPU build pip can reach.
TORCH_BUILD="${EDGELITE_TORCH_BUILD:-torch==2.13.0}"
# Installed without their dependencies: both name torchvision, which would pull a CUDA torch (pyproject.toml, onnx).
TORCH_NO_DEPS="onnx2torch==1.5.15 facenet-pytorch==2.5.3"

wants_torch() { [[ ",$1," == *",dev,"* || ",$1," == *",torch,"* || ",$1," == *",onnx,"* ]]; }

# shared_env NAME EXTRAS -> prints the path of the shared dependency environment, building it if needed.
shared_env() {
    local name="$1" extras="$2" key dir
    key="$( { dependency_spec "$extras"; "$PYTHON" -VV; echo "$extras"; ! wants_torch "$extras" || echo "$TORCH_BUILD $TORCH_NO_DEPS"; } \
        | sha256sum | cut -c1-12)"
    dir="$ENV_HOME/$name-$key"
    if [ ! -f "$dir/.complete" ]; then
        log "building shared environment $dir ($extras); first time on this machine only"
        rm -rf "$dir"
        mkdir -p "$ENV_HOME"
        "$PYTHON" -m venv "$dir"
        "$dir/bin/python" -m pip install -q --upgrade pip setuptools wheel >&2
        # Install the project with its extras to resolve the dependencies, then drop the
        # project itself: each checkout installs its own copy in editable mode.
        if wants_torch "$extras"; then
            "$dir/bin/python" -m pip install -q "$TORCH_BUILD" >&2
        fi
        "$dir/bin/python" -m pip install -q "$ROOT[$extras]" >&2
        if wants_torch "$extras"; then
            "$dir/bin/python" -m pip install -q --no-deps $TORCH_NO_DEPS >&2
        fi
        "$dir/bin/python" -m pip uninstall -q -y edgelite >&2
        touch "$dir/.complete"
    fi
    printf '%s\n' "$dir"
}

# local_env DIR SHARED -> a light venv at DIR that sees SHARED's packages and this checkout, editable.
local_env() {
    local dir="$1" shared="$2" site shared_site
    if [ ! -x "$dir/bin/python" ]; then
        "$PYTHON" -m venv "$dir"
    fi
    site="$("$dir/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    shared_site="$("$shared/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    printf '%s\n' "$shared_site" > "$site/_edgelite_shared_env.pth"
    # Remember which checkouts use this shared environment, so prune_envs keeps it.
    grep -qxF "$dir" "$shared/.users" 2>/dev/null || printf '%s\n' "$dir" >> "$shared/.users"
    # Reinstall when pyproject.toml changed since the last editable install (entry points, packages).
    if ! cmp -s "$ROOT/pyproject.toml" "$dir/.edgelite-pyproject" 2>/dev/null; then
        "$dir/bin/python" -m pip install -q --no-deps --no-build-isolation -e "$ROOT" >&2
        cp "$ROOT/pyproject.toml" "$dir/.edgelite-pyproject"
    fi
}

# prune_envs: removes the shared environments that no virtual environment on this machine links to
# any more (each light venv is listed in its shared environment's .users and names it in its
# _edgelite_shared_env.pth). Requirements that changed leave the old ~2.6 GB environment behind;
# this is what clears it. Environments older than the .users record are left alone.
prune_envs() {
    local env users venv used
    [ -d "$ENV_HOME" ] || return 0
    for env in "$ENV_HOME"/*/; do
        env="${env%/}"
        users="$env/.users"
        [ -f "$users" ] || continue
        used=0
        while IFS= read -r venv; do
            # A light venv links packages through its .pth; .venv names the metadata python in a file.
            grep -qsF "$env/" "$venv"/lib/python*/site-packages/_edgelite_shared_env.pth \
                "$venv/edgelite-metadata-python" && used=1
        done < "$users"
        if [ "$used" = 0 ]; then
            log "removing $env: no environment on this machine uses it any more"
            rm -rf "$env"
        fi
    done
}

build_envs() {
    check_python
    local full runtime tflite metadata docs
    full="$(shared_env full "dev")"
    metadata="$(shared_env metadata "metadata")"
    runtime="$(shared_env runtime "litert,test,video,ray")"
    tflite="$(shared_env tflite "tflite,test,video,ray-numpy1")"
    docs="$(shared_env docs "docs")"
    local_env "$ROOT/.venv" "$full"
    # The converters find MediaPipe's metadata writers through this file (or EDGELITE_METADATA_PYTHON).
    printf '%s\n' "$metadata/bin/python" > "$ROOT/.venv/edgelite-metadata-python"
    grep -qxF "$ROOT/.venv" "$metadata/.users" 2>/dev/null || printf '%s\n' "$ROOT/.venv" >> "$metadata/.users"
    local_env "$ROOT/.venv-runtime" "$runtime"
    local_env "$ROOT/.venv-tflite" "$tflite"
    local_env "$ROOT/.venv-docs" "$docs"
    prune_envs
}
