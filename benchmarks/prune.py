"""Pruning figures, measured side by side in one run (needs the full .venv).

    .venv/bin/python benchmarks/prune.py [--json] [--out FILE]

1. Real digit scans (scikit-learn): the example CNN dense and pruned to 50/75/80% with
   3 fine-tuning epochs, all int8: top-1 against the dense float model, file and gzip sizes,
   median latency under XNNPACK on 1 thread (alternating rounds).
2. MobileNetV2 (weights=None) fp32, dense against its 1x1 convolutions pruned to 75% in one
   shot (the layers XNNPACK's sparse kernels accelerate), with sparse encoding: does latency
   change here? Accuracy is not the question on random weights; speed is.
"""
from __future__ import annotations

import argparse
import gzip
import os
import pathlib
import subprocess
import sys
import tempfile

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from common import alternate, emit, output_options  # noqa: E402


def gz(path) -> int:
    return len(gzip.compress(pathlib.Path(path).read_bytes(), 9))


def latencies(paths: dict, rounds: int = 10, per_round: int = 50) -> dict:
    from edgelite.runtime.interpreter.model import Model
    models = {k: Model(p, threads=1, delegate="xnnpack") for k, p in paths.items()}
    inputs = {k: np.zeros(m.inputs[0].shape, m.inputs[0].dtype) for k, m in models.items()}
    med = alternate({k: (lambda m=m, x=inputs[k]: m.run(x)) for k, m in models.items()}, rounds, per_round)
    return {k: v * 1e3 for k, v in med.items()}


def digits(work: pathlib.Path) -> dict:
    import edgelite
    subprocess.run([sys.executable, str(ROOT / "examples" / "train_and_convert.py"), "--out", str(work)], check=True,
                   capture_output=True)
    source, train, evaluation = work / "digits.keras", work / "train", work / "eval"
    rows, paths = {}, {}
    for sparsity in (None, 0.5, 0.75, 0.8):
        name = "dense" if sparsity is None else f"prune{int(sparsity * 100)}"
        extra = {} if sparsity is None else dict(prune=sparsity, train_data=train, epochs=3)
        r = edgelite.convert(source, output=work / f"{name}.tflite", calibration=train, eval_data=evaluation,
                             max_accuracy_drop=100, **extra)
        paths[name] = r.output
        rows[name] = {"float_top1": r.verification.float_top1, "int8_top1": r.verification.tflite_top1,
                      "drop_points": r.verification.drop_points, "bytes": r.output_size_bytes, "gzip": gz(r.output),
                      "sparsity_in_file": r.weight_sparsity["overall"]}
    for name, ms in latencies(paths).items():
        rows[name]["median_ms"] = ms
    for row in rows.values():
        row["gzip_vs_dense"] = row["gzip"] / rows["dense"]["gzip"]
        row["latency_vs_dense"] = row["median_ms"] / rows["dense"]["median_ms"]
    return rows


def mobilenet_sparse(work: pathlib.Path) -> dict:
    import keras

    import edgelite
    from edgelite.converters.pruning import magnitude as pruning
    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3))
    dense = edgelite.convert(model, output=work / "mnv2_dense.tflite", quantize="none", input_range="-1,1",
                             verification=False)
    for layer in pruning.prunable_layers(model, "xnnpack"):
        layer.kernel.assign(layer.kernel.numpy() * pruning.magnitude_mask(layer.kernel.numpy(), 0.75))
    blockers = pruning.xnnpack_sparse_blockers(model, pruning.PruneOptions(0.75, policy="xnnpack"), "none")
    sparse = edgelite.convert(model, output=work / "mnv2_sparse.tflite", quantize="none", input_range="-1,1",
                              verification=False, sparse_encoding=True)
    ms = latencies({"dense": dense.output, "pruned_1x1_75": sparse.output}, rounds=6, per_round=10)
    return {"dense_ms": ms["dense"], "pruned_ms": ms["pruned_1x1_75"], "latency_ratio": ms["pruned_1x1_75"] / ms["dense"],
            "dense_bytes": dense.output_size_bytes, "pruned_bytes": sparse.output_size_bytes,
            "sparse_encoding_kept": not any("kept the dense encoding" in w for w in sparse.warnings),
            "xnnpack_blockers": blockers}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    output_options(parser, "prune")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = {"digits_int8": digits(pathlib.Path(tmp)), "mobilenetv2_fp32": mobilenet_sparse(pathlib.Path(tmp))}
    emit(results, args, render)
    return 0


def render(results: dict) -> None:
    print("digits CNN, int8, 3 fine-tuning epochs; top-1 on 360 held-out real scans; XNNPACK 1 thread")
    print(f"{'variant':<10} {'int8 top-1':>10} {'drop pts':>9} {'sparsity':>9} {'bytes':>8} {'gzip':>7} "
          f"{'gzip/dense':>10} {'median ms':>10} {'ms/dense':>9}")
    for name, r in results["digits_int8"].items():
        print(f"{name:<10} {100 * r['int8_top1']:>9.2f}% {r['drop_points']:>9.2f} {100 * r['sparsity_in_file']:>8.1f}% "
              f"{r['bytes']:>8} {r['gzip']:>7} {r['gzip_vs_dense']:>10.3f} {r['median_ms']:>10.4f} "
              f"{r['latency_vs_dense']:>9.3f}")
    m = results["mobilenetv2_fp32"]
    print(f"\nMobileNetV2 fp32, 1x1 convolutions pruned 75%, sparse encoding "
          f"{'kept' if m['sparse_encoding_kept'] else 'refused'}: median {m['pruned_ms']:.2f} ms vs dense "
          f"{m['dense_ms']:.2f} ms (ratio {m['latency_ratio']:.3f}); file {m['pruned_bytes']} vs {m['dense_bytes']} bytes")
    print("XNNPACK sparse-kernel rules: " + ("all met" if not m["xnnpack_blockers"] else "; ".join(m["xnnpack_blockers"])))
    print("goals: 50% within 1.5 points, 80% within 3 points of the dense float model; gzip of prune75 <= 0.6x dense")


if __name__ == "__main__":
    sys.exit(main())
