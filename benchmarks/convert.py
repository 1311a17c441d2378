"""Converter ratios, measured side by side in one run (needs the full .venv).

    .venv/bin/python benchmarks/convert.py [--json] [--out FILE]

MobileNetV2 1.0 @224 (weights=None: no downloads) is converted by edgelite to fp32 and
full int8, calibrated on the real photos that ship with scikit-learn and scikit-image.
Reported: file size ratio, latency ratio under XNNPACK on 1 thread (alternating rounds),
and the cost of ``edgelite.convert`` without verification against the bare TFLiteConverter
call with the same settings on the same model.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from common import alternate, emit, output_options, print_goals  # noqa: E402


def photo_folder(work: pathlib.Path) -> pathlib.Path:
    from conftest import real_photo_paths
    folder = work / "photos"
    folder.mkdir()
    for p in real_photo_paths():
        shutil.copy(p, folder / p.name)
    return folder


def raw_int8(model, calibration: np.ndarray) -> bytes:
    """The bare converter call edgelite's int8 mode configures (int8 I/O, per-channel, builtins)."""
    import tensorflow as tf
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([calibration[i:i + 1]] for i in range(len(calibration)))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.int8
    return conv.convert()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    output_options(parser, "convert")
    args = parser.parse_args()
    import keras

    import edgelite
    from edgelite.converters.images import float_batch, load, scan
    from edgelite.converters.reporting import Reporter
    from edgelite.runtime.interpreter.model import Model

    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3))
    with tempfile.TemporaryDirectory() as tmp:
        work = pathlib.Path(tmp)
        photos = photo_folder(work)
        common = dict(calibration=photos, input_range="-1,1", resize="center-crop", verification=False)
        fp32 = edgelite.convert(model, output=work / "fp32.tflite", quantize="none", **common)  # also warms TF up
        spec = fp32.input_spec
        calibration = float_batch(load(scan(photos, "calibration"), spec, Reporter(), "")[0], spec)
        times = {"edgelite": [], "raw": []}
        for _ in range(2):  # alternate, keep each one's best: conversion time is noisy and order-dependent
            t0 = time.perf_counter()
            int8 = edgelite.convert(model, output=work / "int8.tflite", **common)
            times["edgelite"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            raw = raw_int8(model, calibration)
            times["raw"].append(time.perf_counter() - t0)
        edgelite_s, raw_s = min(times["edgelite"]), min(times["raw"])
        m8, m32 = Model(int8.output, threads=1), Model(fp32.output, threads=1)
        x8 = np.zeros(m8.inputs[0].shape, m8.inputs[0].dtype)
        x32 = np.zeros(m32.inputs[0].shape, np.float32)
        med = alternate({"int8": lambda: m8.run(x8), "fp32": lambda: m32.run(x32)}, 10, 20)
        results = {
            "size_ratio_int8_fp32": int8.output_size_bytes / fp32.output_size_bytes,
            "int8_bytes": int8.output_size_bytes, "fp32_bytes": fp32.output_size_bytes,
            "raw_int8_bytes": len(raw),
            "latency_ms": {"int8": med["int8"] * 1e3, "fp32": med["fp32"] * 1e3},
            "speedup_int8": med["fp32"] / med["int8"],
            "delegates": {"int8": m8.delegate.actual, "fp32": m32.delegate.actual},
            "convert_seconds": {"edgelite_no_verify": edgelite_s, "raw_converter": raw_s},
            "convert_cost_ratio": edgelite_s / raw_s,
        }
    emit(results, args, render)
    return 0


def render(r: dict) -> None:
    rows = [
        ("int8 / fp32 file size, MobileNetV2", f"{r['size_ratio_int8_fp32']:.3f}  ({r['int8_bytes']} vs "
         f"{r['fp32_bytes']} bytes)", "<= 0.29"),
        ("fp32 / int8 median latency, XNNPACK 1 thread", f"{r['speedup_int8']:.2f}x  ({r['latency_ms']['fp32']:.2f} vs "
         f"{r['latency_ms']['int8']:.2f} ms)", ">= 1.8x"),
        ("edgelite.convert (no verify) / raw converter", f"{r['convert_cost_ratio']:.2f}  "
         f"({r['convert_seconds']['edgelite_no_verify']:.1f} vs {r['convert_seconds']['raw_converter']:.1f} s)",
         "<= 1.2"),
    ]
    print_goals(rows, measured_width=40)


if __name__ == "__main__":
    sys.exit(main())
