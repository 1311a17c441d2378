"""What the sandboxed first load costs: loading a model file the first time (a child process loads,
allocates and invokes it under limits) against a trusted in-process load, side by side in one run,
and the second load (the verdict cached) against the trusted one.

    .venv-runtime/bin/python benchmarks/sandbox.py [--json] [--out FILE]
"""
from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import tempfile
import time

from common import emit, output_options

ROOT = pathlib.Path(__file__).resolve().parents[1]
MODELS = {"digits_int8": ROOT / "examples" / "models" / "digits_int8.tflite",
          "digits_tpu": ROOT / "tests" / "fixtures" / "models" / "digits_tpu.tflite"}


def timed(load) -> float:
    started = time.perf_counter()
    load()
    return (time.perf_counter() - started) * 1e3


def measure(path: pathlib.Path, rounds: int) -> dict:
    from edgelite.runtime.interpreter.model import Model
    first, second, trusted = [], [], []
    for _ in range(rounds):
        os.environ["EDGELITE_CACHE"] = tempfile.mkdtemp(prefix="edgelite-bench-")  # no verdict yet
        trusted.append(timed(lambda: Model(path, trust=True)))
        first.append(timed(lambda: Model(path)))
        second.append(timed(lambda: Model(path)))
    t, f, s = (statistics.median(x) for x in (trusted, first, second))
    return {"bytes": path.stat().st_size, "trusted_ms": t, "first_sandboxed_ms": f, "second_ms": s,
            "first_over_trusted": f / t, "second_over_trusted": s / t}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    output_options(parser, "sandbox")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    os.environ.pop("EDGELITE_TRUST", None)
    results = {name: measure(path, args.rounds) for name, path in MODELS.items()}
    emit({"models": results}, args, render)


def render(results: dict) -> None:
    for name, r in results["models"].items():
        print(f"{name} ({r['bytes'] / 1024:.0f} KB): trusted load {r['trusted_ms']:.1f} ms; first load, sandboxed {r['first_sandboxed_ms']:.0f} ms "
              f"({r['first_over_trusted']:.0f}x); second load {r['second_ms']:.1f} ms ({r['second_over_trusted']:.2f}x)")


if __name__ == "__main__":
    main()
