"""Structure-aware fuzzing: models edited through the schema's object API (control flow, sparsity, the
detection post-process options, quantization, shapes, operator indices), not byte flips. Each is
inspected, loaded, run and profiled in a child process: no signal, no hang, no traceback, every refusal
one line. Seeded; 300 per normal run (a committed corpus, so tflite-runtime, which has no schema module
to build with, runs the same), 3,000 freshly generated under -m slow where a schema module exists."""
import json
import subprocess
import sys
import textwrap
import zipfile

import pytest

from tests.conftest import HAS_TENSORFLOW, ROOT, SAME_AS_LITERT_SUITE

HOSTILE = ROOT / "tests" / "fixtures" / "models" / "hostile"
CHILD = textwrap.dedent("""
    import json, sys, zipfile
    import numpy as np
    import edgelite
    from edgelite.runtime import Model
    from tests.outcomes import outcome
    from edgelite.runtime.modelfile.inspection import inspect_model
    from edgelite.runtime.interpreter.profiler import profile_one
    source, start = sys.argv[1], int(sys.argv[2])
    if source.endswith(".zip"):
        archive = zipfile.ZipFile(source)
        items = [(n, archive.read(n)) for n in sorted(archive.namelist())]
    else:
        sys.path.insert(0, sys.argv[3])
        import build_hostile
        base = build_hostile.FUZZ_BASE.read_bytes()
        items = [(str(s), None) for s in range(int(source))]
    import tempfile, os
    work = tempfile.mkdtemp()
    for i in range(start, len(items)):
        name, data = items[i]
        data = data if data is not None else build_hostile.structure_mutant(base, int(name))
        path = os.path.join(work, "m.tflite")
        open(path, "wb").write(data)
        print(i, flush=True, file=sys.stderr)
        steps = (lambda: inspect_model(path), lambda: Model(path).run(*[np.zeros(t.shape, t.dtype)
                 for t in Model(path).inputs]), lambda: profile_one(path, runs=1, warmup=0),
                 lambda: edgelite.load(path).classify(np.zeros((12, 12, 3), np.uint8)))
        print(json.dumps([i, [outcome(step) for step in steps]]), flush=True)
""")


def run_fuzz(source: str, total: int, timeout_per_model: float = 30.0) -> dict:
    """Runs every mutant; a crash or hang is recorded against its index and the child restarts after it."""
    crashes, results, start = [], {}, 0
    while start < total:
        try:
            out = subprocess.run([sys.executable, "-c", CHILD, source, str(start), str(ROOT / "tests" / "fixtures")],
                                 capture_output=True, text=True, cwd=ROOT, timeout=timeout_per_model * (total - start),
                                 preexec_fn=_limits)
            stdout, stderr, code = out.stdout, out.stderr, out.returncode
        except subprocess.TimeoutExpired as exc:
            stdout, stderr, code = _text(exc.stdout), _text(exc.stderr), "hang"
        for line in stdout.splitlines():
            index, outcome = json.loads(line)
            results[index] = outcome
        if code == 0:
            break
        last = int(stderr.split()[-1]) if stderr.split() and stderr.split()[-1].isdigit() else start
        crashes.append((last, code, stderr.strip().splitlines()[-3:]))
        start = last + 1
    return {"crashes": crashes, "results": results}


def _limits():
    """The child's limits: 6 GiB of address space (TensorFlow's interpreter maps about 2), 20 CPU minutes."""
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))
    resource.setrlimit(resource.RLIMIT_CPU, (1200, 1200))


def _text(value) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else (value or "")


def _check(outcome: dict, total: int):
    assert outcome["crashes"] == [], outcome["crashes"]   # no signal, no hang
    results = outcome["results"]
    assert len(results) == total
    bad = {i: r for i, r in results.items() if any(x not in ("ok", "one line") for x in r)}
    assert not bad, dict(list(bad.items())[:5])            # no traceback, every refusal one line
    refused = sum(r[0] == "one line" for r in results.values())
    assert refused > total // 3                             # the edits do reach the validator


@pytest.mark.skipif(HAS_TENSORFLOW, reason=SAME_AS_LITERT_SUITE)
def test_300_structure_aware_mutants_from_the_committed_corpus():
    corpus = HOSTILE / "structure_corpus.zip"
    total = len(zipfile.ZipFile(corpus).namelist())
    _check(run_fuzz(str(corpus), total), total)


@pytest.mark.slow
def test_3000_fresh_structure_aware_mutants():
    pytest.importorskip("ai_edge_litert.schema_py_generated", reason="building mutants needs ai-edge-litert's schema")
    _check(run_fuzz("3000", 3000), 3000)


REGRESSIONS = {
    "absent_weights": "leaves input 1 absent, which its kernel needs",
    "if_calls_itself": "is itself or one of its callers (endless recursion)",
    "call_once_calls_itself": "is itself or one of its callers (endless recursion)",
    "sparse_bad_block_map": "block_map [7] names dimensions outside 0..1",
    "while_names_missing_subgraphs": "calls subgraph 5, which does not exist",
    "detection_garbage_options": "custom options are not a readable flexbuffer",
    "detection_without_options": "has no custom options",
    "sparse_bad_traversal_order": "traversal_order [0, 0] is not a permutation",
    "sparse_huge_dense_size": "is dense with size 2147483647, expected 64",
    "sparse_short_dim_metadata": "has 1 dim_metadata for 2 traversed dimensions",
    "sparse_indices_out_of_range": "array_indices do not fit",
}


@pytest.mark.parametrize("name", sorted(REGRESSIONS))
@pytest.mark.parametrize("command", ["inspect", "profile", "predict", "check"])
def test_each_crash_the_probe_found_is_now_one_line(name, command, digit_png):
    """Each of these killed the process with SIGSEGV/SIGABRT or hung before (run in a child all the same)."""
    args = [command, str(HOSTILE / f"{name}.tflite")] + {"predict": [str(digit_png)], "check": ["--target", "edgetpu"],
                                                         "profile": ["--runs", "1"]}.get(command, [])
    out = subprocess.run([sys.executable, "-c", "from edgelite.cli.commands import main; main()", *args], capture_output=True,
                         text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 1, (out.returncode, out.stderr[-500:])
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and REGRESSIONS[name] in lines[0], lines


def test_a_well_formed_detection_options_map_passes_the_check():
    from flatbuffers import flexbuffers

    from edgelite.runtime.modelfile.semantics import check_detection_options
    options = bytes(flexbuffers.Dumps({"max_detections": 10, "max_classes_per_detection": 1, "num_classes": 90,
                                       "nms_score_threshold": 0.3, "nms_iou_threshold": 0.6, "y_scale": 10.0,
                                       "x_scale": 10.0, "h_scale": 5.0, "w_scale": 5.0, "use_regular_nms": False}))
    failures = []
    check_detection_options(0, options, [(1, 1917, 4), (1, 1917, 91), (1917, 4)], failures.append)
    assert failures == []
    check_detection_options(0, options, [(1, 1917, 4), (1, 100, 91), (1917, 4)], failures.append)
    assert failures and "do not fit 1917 anchors and 90 classes" in failures[0]


def test_detection_options_that_size_huge_outputs_are_refused():
    """Each field in range, but max_detections x max_classes_per_detection sizes the kernel's outputs."""
    from flatbuffers import flexbuffers

    from edgelite.runtime.modelfile.semantics import MAX_DETECTION_ROWS, check_detection_options
    fields = {"max_detections": 10_000, "max_classes_per_detection": 1_000, "num_classes": 90,
              "nms_score_threshold": 0.3, "nms_iou_threshold": 0.6, "y_scale": 10.0, "x_scale": 10.0,
              "h_scale": 5.0, "w_scale": 5.0}
    failures: list = []
    check_detection_options(0, bytes(flexbuffers.Dumps(fields)), [(1, 1917, 4), (1, 1917, 91), (1917, 4)],
                            failures.append)
    assert failures and f"10000000 output rows (max_detections x max_classes_per_detection), over " \
                        f"{MAX_DETECTION_ROWS}" in failures[0]
    failures.clear()
    check_detection_options(0, bytes(flexbuffers.Dumps({**fields, "max_classes_per_detection": 1,
                                                        "detections_per_class": 0})),
                            [(1, 1917, 4), (1, 1917, 91), (1917, 4)], failures.append)
    assert failures and "detections_per_class is 0" in failures[0]
