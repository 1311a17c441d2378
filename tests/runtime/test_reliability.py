"""The runtime against hostile input and long uptime. Hostile files run in a child process, so
a native crash or hang would be caught and reported instead of taking the test run down."""
import json
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import DIGITS_FLOAT, DIGITS_INT8, HAS_TENSORFLOW, MODELS, ROOT, SAME_AS_LITERT_SUITE

MUTATE = textwrap.dedent("""
    def mutate(original, rng, truncate_share, max_edits):
        data = bytearray(original)
        if rng.random() < truncate_share:
            return bytes(data[: rng.randrange(len(data) + 1)])             # truncated
        for _ in range(rng.randint(1, max_edits)):                          # bytes overwritten
            data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data)
""")

LOADER_CHILD = MUTATE + textwrap.dedent("""
    import json, random, sys
    import numpy as np
    from edgelite.runtime import EdgeliteError, Model
    paths, count, seed = sys.argv[1].split(","), int(sys.argv[2]), int(sys.argv[3])
    originals = [open(p, "rb").read() for p in paths]
    rng = random.Random(seed)
    outcome = {"loaded_and_ran": 0, "edgelite_error": 0, "other": []}
    for i in range(count):
        data = mutate(originals[i % len(originals)], rng, 0.15, 8)
        print(i, flush=True, file=sys.stderr)
        try:
            m = Model(data)
            m.run(*[np.zeros(t.shape, t.dtype) for t in m.inputs])
            outcome["loaded_and_ran"] += 1
        except EdgeliteError:
            outcome["edgelite_error"] += 1
        except Exception as exc:
            outcome["other"].append(f"{i}: {type(exc).__name__}: {exc}"[:200])
    print(json.dumps(outcome))
""")


def run_loader_fuzz(count: int, seed: int, timeout: int):
    models = ",".join(str(p) for p in (DIGITS_INT8, DIGITS_FLOAT, MODELS / "logits_int8.tflite",
                                       MODELS / "gray_float.tflite"))
    try:
        out = subprocess.run([sys.executable, "-c", LOADER_CHILD, models, str(count), str(seed)], capture_output=True,
                             text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired as exc:
        last = (exc.stderr or b"").decode().split()[-1:] if isinstance(exc.stderr, bytes) else (exc.stderr or "").split()[-1:]
        pytest.fail(f"hang: the child stopped responding at mutant {last}")
    assert out.returncode == 0, f"crash (exit {out.returncode}) at mutant {out.stderr.split()[-1:]}"
    return json.loads(out.stdout)


@pytest.mark.skipif(HAS_TENSORFLOW, reason=SAME_AS_LITERT_SUITE)
def test_2000_mutated_and_truncated_models_never_crash_and_always_explain():
    outcome = run_loader_fuzz(2000, seed=1, timeout=600)
    assert outcome["other"] == []                           # every failure is an edgelite error
    assert outcome["loaded_and_ran"] + outcome["edgelite_error"] == 2000
    assert outcome["edgelite_error"] > 100                  # the fuzzing does reach the validator


@pytest.mark.slow
def test_20000_mutated_models_never_crash():
    outcome = run_loader_fuzz(20000, seed=2, timeout=3600)
    assert outcome["other"] == [] and outcome["loaded_and_ran"] + outcome["edgelite_error"] == 20000


IMAGE_CHILD = MUTATE + textwrap.dedent("""
    import io, json, random, sys
    from PIL import Image
    from edgelite.runtime import InputError, InputSpec
    from edgelite.runtime.tasks.preprocess import load_pixels
    photos, count, seed = sys.argv[1].split(","), int(sys.argv[2]), int(sys.argv[3])
    rng = random.Random(seed)
    encoded = []
    for p in photos:
        im = Image.open(p).convert("RGB").resize((96, 64))
        for fmt in ("JPEG", "PNG", "GIF", "WEBP"):
            buf = io.BytesIO(); im.save(buf, format=fmt); encoded.append(buf.getvalue())
    spec = InputSpec(32, 32, 3)
    outcome = {"decoded": 0, "input_error": 0, "other": []}
    for i in range(count):
        data = mutate(encoded[i % len(encoded)], rng, 0.3, 16)
        try:
            pixels = load_pixels(data, spec, fast=bool(i % 2))
            assert pixels.shape == (32, 32, 3)
            outcome["decoded"] += 1
        except InputError:
            outcome["input_error"] += 1
        except Exception as exc:
            outcome["other"].append(f"{i}: {type(exc).__name__}: {exc}"[:200])
    print(json.dumps(outcome))
""")


def test_corrupt_images_decode_or_raise_input_error(photos):
    paths = ",".join(str(p) for p in photos[:3])
    out = subprocess.run([sys.executable, "-c", IMAGE_CHILD, paths, "3000", "7"], capture_output=True, text=True,
                         timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    outcome = json.loads(out.stdout)
    assert outcome["other"] == [] and outcome["decoded"] + outcome["input_error"] == 3000
    assert outcome["decoded"] > 0 and outcome["input_error"] > 0


SOAK_CHILD = textwrap.dedent("""
    import json, sys
    import numpy as np
    import edgelite
    from edgelite.runtime.interpreter.memory import current_rss
    clf = edgelite.load(sys.argv[1])
    image = np.random.default_rng(0).integers(0, 256, (48, 64, 3)).astype(np.uint8)
    for _ in range(1000):
        clf.classify(image)
    before = current_rss()
    for _ in range(10000):
        clf.classify(image)
    print(json.dumps({"before": before, "after": current_rss()}))
""")


def test_soak_10000_classifications_keep_memory_flat():
    out = subprocess.run([sys.executable, "-c", SOAK_CHILD, str(DIGITS_INT8)], capture_output=True, text=True,
                         timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    rss = json.loads(out.stdout)
    assert rss["after"] - rss["before"] < 5 * 1024 * 1024, rss
