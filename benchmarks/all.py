"""Every ratio benchmark in one command, one table (needs the full .venv; about two minutes).

    .venv/bin/python benchmarks/all.py [--quick]

Runs benchmarks/runtime.py, convert.py and prune.py, each in its own process (so their
memory and caches do not mix), and prints each goal beside what was measured in this run.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys

from common import print_goals

HERE = pathlib.Path(__file__).resolve().parent


def run(script: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, str(HERE / script), "--json", *args], capture_output=True, text=True,
                         check=True, timeout=3600)
    lines = out.stdout.splitlines()
    start = max(i for i, line in enumerate(lines) if line == "{")  # TensorFlow may print before the JSON
    return json.loads("\n".join(lines[start:]))


def rows(runtime: dict, convert: dict, prune: dict) -> list[tuple[str, str, str]]:
    o, t, p = runtime["overhead_mobilenetv2_int8"], runtime["overhead_tiny"], runtime["profiler_vs_raw_mobilenetv2_int8"]
    pre, fj = runtime["preprocessing_224"], runtime["fast_jpeg"]
    out = [
        ("run() / raw interpreter loop, MobileNetV2 int8", f"{o['ratio']:.3f}", "<= 1.02"),
        ("run() overhead per call, tiny model", f"{t['overhead_us']:.2f} us", "< 10 us"),
        ("profiler median / raw loop median", f"{p['ratio']:.3f}", "0.95 .. 1.05"),
        ("preprocess decoded 640x480 frame / int8 invoke", f"{pre['frame_vs_invoke']:.3f}", "<= 0.10"),
        ("preprocess 640x480 JPEG / int8 invoke", f"{pre['jpeg_vs_invoke']:.3f}", "<= 0.50"),
    ]
    out += [(f"classify {name}: plain pillow / fast mode", f"{r['speedup']:.2f}x", ">= 1.5x")
            for name, r in fj["large_jpegs"].items()]
    out += [(f"top-1 fast == exact, {name}", agree, "all") for name, agree in fj["top1_agreement"].items()]
    out += [
        ("int8 / fp32 size, MobileNetV2", f"{convert['size_ratio_int8_fp32']:.3f}", "<= 0.29"),
        ("fp32 / int8 latency, MobileNetV2, XNNPACK 1 thread", f"{convert['speedup_int8']:.2f}x", ">= 1.8x"),
        ("edgelite.convert (no verify) / raw converter", f"{convert['convert_cost_ratio']:.2f}", "<= 1.2"),
    ]
    digits = prune["digits_int8"]
    out += [
        ("prune50 int8 top-1 drop (points, digits)", f"{digits['prune50']['drop_points']:.2f}", "<= 1.5"),
        ("prune80 int8 top-1 drop (points, digits)", f"{digits['prune80']['drop_points']:.2f}", "<= 3.0"),
        ("gzip prune75 int8 / dense int8", f"{digits['prune75']['gzip_vs_dense']:.3f}", "<= 0.6"),
        ("latency prune75 int8 / dense int8", f"{digits['prune75']['latency_vs_dense']:.3f}", "(reported, no goal)"),
        ("latency MobileNetV2 fp32 1x1-pruned 75% / dense",
         f"{prune['mobilenetv2_fp32']['latency_ratio']:.3f}", "(reported, no goal)"),
    ]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds in the runtime benchmark (noisier)")
    args = parser.parse_args()
    runtime = run("runtime.py", *(["--quick", "--out", ""] if args.quick else []))  # a smoke run is not written
    print_goals(rows(runtime, run("convert.py"), run("prune.py")), measured_width=12)
    return 0


if __name__ == "__main__":
    sys.exit(main())
