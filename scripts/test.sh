#!/usr/bin/env bash
# The test command (README, .ci/run): builds the environments if needed, then runs
#   0. the project's lint (ruff) and type check (mypy) on runtime/, converters/, sdk/, and the
#      documentation site built with mkdocs --strict (scripts/docs.sh),
#   1. the workstation suite in .venv (TensorFlow present): converters, sweeps, examples, the installs,
#   2. the runtime, CLI and install tests in .venv-runtime, where TensorFlow is not installed,
#   3. the same once more in .venv-tflite on tflite-runtime with numpy<2 (older Pi OS / Coral images),
#      beside 2.
# Every step runs even when an earlier one failed; each one's summary is printed at the end and
# the command exits non-zero if any failed. Every skip is listed at the end with its reason; on CI
# (EDGELITE_CI=1, set by .ci/run) a skip other than a planned one fails its suite (tests/skips.py). Extra arguments go to all three pytest runs
# (e.g. -m slow, -k profile).
# It also checks that running the tests left the machine's SSH service as it found it.
source "$(dirname "$0")/envs.sh"
build_envs
cd "$ROOT"
started=$SECONDS  # the budget (15 minutes on 2 cores) counts from here: the environments are setup's
export PYTHONDONTWRITEBYTECODE=1 TF_CPP_MIN_LOG_LEVEL=3
set +e

ssh_service_state() {
    if command -v systemctl >/dev/null 2>&1; then
        systemctl is-enabled ssh.service 2>/dev/null || true
    fi
}
ssh_before="$(ssh_service_state)"

declare -a names=() codes=() summaries=() skipped=()
step() {  # step NAME COMMAND...: runs it, keeps its exit code and the last line it printed
    local name="$1" out code
    shift
    log "$name"
    out="$(mktemp)"
    "$@" 2>&1 | tee "$out"
    code="${PIPESTATUS[0]}"
    names+=("$name")
    codes+=("$code")
    # pytest's closing line (native libraries may print after it), else the step's last line
    summaries+=("$( (grep -E '^=+ .*(passed|failed|error|no tests ran).* in [0-9.]+s' "$out" \
                     || grep -v '^\s*$' "$out") | tail -n 1)")
    while IFS= read -r line; do skipped+=("$name: $line"); done < <(grep -E '^skipped \(' "$out" || true)
    rm -f "$out"
}

run_to() {  # run_to FILE COMMAND...: the command's output into FILE, its exit code into FILE.rc
    local out="$1"
    shift
    "$@" > "$out" 2>&1
    echo "$?" > "$out.rc"
}
replayed() {  # replayed FILE: prints what run_to kept and exits with its code (so `step` can report it)
    cat "$1"
    return "$(cat "$1.rc")"
}

step "lint (ruff)" .venv/bin/python -m ruff check runtime converters sdk
step "type check (mypy)" bash scripts/typecheck.sh
step "documentation site (mkdocs --strict)" bash scripts/docs.sh
# The workstation suite: what needs TensorFlow (converters, sweeps, the examples, the workstation install, the
# documentation's Keras examples). The runtime and the CLI's device commands never import TensorFlow: the two
# device suites run them (tests/runtime, tests/sdk), and here they would run again on the same backend
# (ai-edge-litert) as in the LiteRT-only suite, test for test: minutes on two cores for nothing new.
# It runs on two pytest-xdist workers, a test file to each at a time (--dist loadfile: a file's module fixtures,
# such as the sweep's Ray cluster, are built once per run): in one process it took 7 min 36 s on two cores,
# on two workers 4 min 22 s (one run after the other, on the same machine).
step "workstation suite (TensorFlow)" env EDGELITE_SUITE=workstation .venv/bin/python -m pytest -n 2 --dist loadfile tests/converters tests/examples \
    tests/install tests/sdk/test_pareto.py tests/sdk/test_docs_examples.py "$@"
# The two device suites run side by side (mostly one thread each; measured 5.9 min together against 7.6 one
# after the other on two cores); each one's output is printed whole when both have finished. The workstation suite
# does not join them: TensorFlow keeps both cores busy, and three at once took longer than this.
lanes="$(mktemp -d)"
log "the two device suites, side by side (their output follows when both have finished)"
run_to "$lanes/runtime" env EDGELITE_SUITE=litert .venv-runtime/bin/python -m pytest tests/runtime tests/sdk tests/install "$@" &
run_to "$lanes/tflite" env EDGELITE_SUITE=tflite EDGELITE_BACKEND=tflite_runtime .venv-tflite/bin/python -m pytest tests/runtime tests/sdk \
    tests/install "$@" &
wait
step "runtime suite without TensorFlow (ai-edge-litert)" replayed "$lanes/runtime"
step "runtime suite on tflite-runtime with numpy<2" replayed "$lanes/tflite"
rm -rf "$lanes"

failed=0
if [ "$(ssh_service_state)" != "$ssh_before" ]; then
    log "the SSH service changed while testing: '$ssh_before' before, '$(ssh_service_state)' after"
    failed=1
fi
printf '\n== summary ==\n'
declare -A total=([passed]=0 [failed]=0 [skipped]=0 [error]=0)
for i in "${!names[@]}"; do
    case "${codes[$i]}" in
        0) status=ok ;;
        5) status="no tests" ;;  # pytest: nothing selected (e.g. -m slow where a suite has none)
        *) status=FAILED; failed=1 ;;
    esac
    printf '%-52s %-8s %s\n' "${names[$i]}" "$status" "${summaries[$i]}"
    [[ "${summaries[$i]}" == =* ]] || continue  # counts come from pytest's closing lines only
    for kind in passed failed skipped error; do
        n="$(grep -oE "[0-9]+ ${kind}" <<<"${summaries[$i]}" | grep -oE '^[0-9]+' || true)"
        total[$kind]=$(( ${total[$kind]} + ${n:-0} ))
    done
done
# Every skip, each with its suite and why (tests/skips.py: on CI a skip that hides a path fails its suite).
if [ "${#skipped[@]}" -gt 0 ]; then
    printf '\n== skips (%d) ==\n' "${#skipped[@]}"
    printf '%s\n' "${skipped[@]}"
fi
# One closing line over the three suites (errors count as failures).
printf 'total: %d passed, %d failed, %d skipped in %d min %d s\n' "${total[passed]}" \
    "$(( ${total[failed]} + ${total[error]} ))" "${total[skipped]}" "$(( (SECONDS - started) / 60 ))" \
    "$(( (SECONDS - started) % 60 ))"
exit "$failed"
