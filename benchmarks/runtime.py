"""Runtime ratios, measured side by side in one run (needs the full .venv: TensorFlow builds MobileNetV2).

    .venv/bin/python benchmarks/runtime.py [--quick] [--json] [--out FILE]

Each comparison alternates its contenders in rounds (A, B, A, B, ...) and compares medians,
so drift on a shared machine hits both sides alike. Goals from the runtime issue are shown
next to each measured ratio; nothing here is estimated.

MobileNetV2 is built with ``weights=None`` (no downloads), so its predictions carry no
meaning: the top-1 agreement below shows whether fast decoding perturbs a 224x224 network's
decision on real photos, not accuracy.
"""
from __future__ import annotations

import argparse
import io
import os
import pathlib
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from common import CACHE, alternate, emit, output_options, print_goals  # noqa: E402


def build_mobilenet() -> tuple[pathlib.Path, pathlib.Path]:
    """MobileNetV2 1.0 @224, weights=None, as fp32 and full-int8 (uint8 I/O) .tflite, cached."""
    fp32, int8 = CACHE / "mobilenetv2_fp32.tflite", CACHE / "mobilenetv2_int8.tflite"
    if fp32.exists() and int8.exists():
        return fp32, int8
    import keras
    import tensorflow as tf

    from edgelite.runtime.modelfile.metadata import InputSpec, embed_record
    CACHE.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3))
    spec = InputSpec(224, 224, 3, resize="center-crop", mean=(127.5,), std=(127.5,))
    record = {"schema_version": 1, "input": spec.to_dict(), "output": "probabilities"}
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    fp32.write_bytes(embed_record(conv.convert(), record))
    rng = np.random.default_rng(0)
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([rng.random((1, 224, 224, 3), dtype=np.float32) * 2 - 1] for _ in range(32))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.uint8
    int8.write_bytes(embed_record(conv.convert(), record))
    return fp32, int8


def raw_interpreter(path: pathlib.Path):
    """A bare backend interpreter set up like edgelite's (XNNPACK, 1 thread) and its set/invoke/get loop."""
    from edgelite.runtime.interpreter.backend import find_backend
    it = find_backend().make_interpreter(path.read_bytes(), num_threads=1, delegates=[], default_delegates=True)
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    x = np.random.default_rng(0).integers(0, 256, inp["shape"]).astype(inp["dtype"])

    def step():
        it.set_tensor(inp["index"], x)
        it.invoke()
        return it.get_tensor(out["index"])
    return step, x


def overhead(path: pathlib.Path, rounds: int, per_round: int) -> dict:
    from edgelite.runtime.interpreter.model import Model
    raw, x = raw_interpreter(path)
    model = Model(path, threads=1)
    med = alternate({"raw": raw, "run": lambda: model.run(x)}, rounds, per_round)
    return {"raw_ms": med["raw"] * 1e3, "run_ms": med["run"] * 1e3, "ratio": med["run"] / med["raw"],
            "overhead_us": (med["run"] - med["raw"]) * 1e6}


def profiler_accuracy(path: pathlib.Path, runs: int) -> dict:
    from edgelite.runtime.interpreter.profiler import profile_one
    raw, _ = raw_interpreter(path)
    raws, profs = [], []
    for _ in range(3):  # alternate whole measurements
        raws.append(alternate({"raw": raw}, 1, runs)["raw"] * 1e3)
        profs.append(profile_one(path, threads=1, runs=runs, warmup=5).latency_ms.median)
    return {"raw_ms": float(np.median(raws)), "profiler_ms": float(np.median(profs)),
            "ratio": float(np.median(profs) / np.median(raws))}


def plain_pillow(source, size=224) -> np.ndarray:
    """The hand-written path people start from: full decode, center crop, resize, normalize."""
    from PIL import Image, ImageOps
    image = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source).convert("RGB")
    image = ImageOps.fit(image, (size, size), Image.Resampling.BILINEAR)
    return ((np.asarray(image, dtype=np.float32) - 127.5) / 127.5)[None]


def preprocessing(int8_path: pathlib.Path, photo: pathlib.Path, rounds: int) -> dict:
    from PIL import Image

    from edgelite.runtime.tasks.classifier import Classifier
    clf = Classifier(int8_path, threads=1)
    frame = np.asarray(Image.open(photo).convert("RGB").resize((640, 480)))
    jpeg = io.BytesIO()
    Image.fromarray(frame).save(jpeg, format="JPEG", quality=90)
    jpeg = jpeg.getvalue()
    x = clf.preprocess(frame)
    med = alternate({"invoke": lambda: clf.run_tensor(x), "frame": lambda: clf.preprocess(frame),
                     "jpeg": lambda: clf.preprocess(jpeg), "plain": lambda: plain_pillow(jpeg)}, rounds, 10)
    return {"invoke_ms": med["invoke"] * 1e3, "frame_ms": med["frame"] * 1e3, "jpeg_ms": med["jpeg"] * 1e3,
            "plain_pillow_jpeg_ms": med["plain"] * 1e3, "frame_vs_invoke": med["frame"] / med["invoke"],
            "jpeg_vs_invoke": med["jpeg"] / med["invoke"]}


def fast_decode(fp32_path: pathlib.Path, int8_path: pathlib.Path, photos: list, rounds: int) -> dict:
    from PIL import Image

    from edgelite.runtime.tasks.classifier import Classifier
    fast = Classifier(int8_path, threads=1)
    big = [p for p in photos if p.suffix == ".jpg" and Image.open(p).width * Image.open(p).height >= 1_000_000]
    data = {p.name: p.read_bytes() for p in big}
    plain_model = Classifier(int8_path, threads=1)  # same interpreter type; the plain path does its own preprocessing

    info = plain_model.model.inputs[0]

    def plain_classify(raw):
        q = np.clip(np.rint(plain_pillow(raw) / info.scale + info.zero_point), 0, 255).astype(np.uint8)
        return plain_model.top_classes(plain_model.run_tensor(q), 5)
    timings = {}
    for name, raw in data.items():
        med = alternate({"fast": lambda raw=raw: fast.classify(raw), "plain": lambda raw=raw: plain_classify(raw)},
                        rounds, 3)
        timings[name] = {"fast_ms": med["fast"] * 1e3, "plain_ms": med["plain"] * 1e3,
                         "speedup": med["plain"] / med["fast"]}
    agree = {}
    for model_path in (fp32_path, int8_path):
        f, e = Classifier(model_path, fast=True), Classifier(model_path, fast=False)
        agree[model_path.name] = [f.classify(p, 1).top.id == e.classify(p, 1).top.id for p in photos]
    return {"large_jpegs": timings,
            "top1_agreement": {k: f"{sum(v)}/{len(v)}" for k, v in agree.items()},
            "photos": [p.name for p in photos]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run, noisier)")
    output_options(parser, "runtime")
    args = parser.parse_args()
    rounds = 5 if args.quick else 20
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import MODELS, real_photo_paths
    photos = real_photo_paths()
    fp32, int8 = build_mobilenet()
    results = {
        "overhead_mobilenetv2_int8": overhead(int8, rounds, 10),
        "overhead_tiny": overhead(MODELS / "logits_int8.tflite", rounds, 2000),
        "profiler_vs_raw_mobilenetv2_int8": profiler_accuracy(int8, 20 if args.quick else 100),
        "preprocessing_224": preprocessing(int8, photos[0], rounds),
        "fast_jpeg": fast_decode(fp32, int8, photos, max(3, rounds // 4)),
    }
    emit(results, args, print_table)
    return 0


def print_table(r: dict):
    o, t, p = r["overhead_mobilenetv2_int8"], r["overhead_tiny"], r["profiler_vs_raw_mobilenetv2_int8"]
    pre, fj = r["preprocessing_224"], r["fast_jpeg"]
    rows = [
        ("run() / raw loop, MobileNetV2 int8 median", f"{o['ratio']:.3f}  ({o['run_ms']:.3f} vs {o['raw_ms']:.3f} ms)",
         "<= 1.02"),
        ("run() overhead per call, tiny model", f"{t['overhead_us']:.2f} us  (raw {t['raw_ms'] * 1e3:.2f} us)", "< 10 us"),
        ("profiler median / raw loop median", f"{p['ratio']:.3f}  ({p['profiler_ms']:.3f} vs {p['raw_ms']:.3f} ms)",
         "within 5%"),
        ("preprocess decoded 640x480 frame / int8 invoke", f"{pre['frame_vs_invoke']:.3f}  "
         f"({pre['frame_ms']:.3f} vs {pre['invoke_ms']:.3f} ms)", "<= 0.10"),
        ("preprocess 640x480 JPEG / int8 invoke", f"{pre['jpeg_vs_invoke']:.3f}  ({pre['jpeg_ms']:.3f} ms; plain "
         f"pillow {pre['plain_pillow_jpeg_ms']:.3f} ms)", "<= 0.50"),
    ]
    for name, t in fj["large_jpegs"].items():
        rows.append((f"classify {name}: plain pillow / fast", f"{t['speedup']:.2f}x  ({t['plain_ms']:.2f} vs "
                     f"{t['fast_ms']:.2f} ms)", ">= 1.5x"))
    for name, a in fj["top1_agreement"].items():
        rows.append((f"top-1 fast == exact, {name}", f"{a} real photos", "all"))
    print_goals(rows)


if __name__ == "__main__":
    sys.exit(main())
