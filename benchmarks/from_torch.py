"""PyTorch and ONNX models through edgelite, side by side with what they are compared to, in one run:

- MobileNetV3-Small, torchvision's architecture (written out here: PyPI's torchvision does not import beside a
  CPU torch) against Keras's MobileNetV3Small, both random weights, both converted to int8 by edgelite and
  calibrated on the same photos: TRANSPOSE ops, I/O types, ops left in float, 1-thread latency in alternating
  rounds (goal: the torch model within 1.10x of the Keras one);
- MTCNN's ONet from facenet-pytorch's wheel, int8: every output against facenet-pytorch's own float module on
  LFW's 100 faces, the face decision on faces and non-faces, and the same for the Keras ONet of the mtcnn
  package converted the same way;
- YOLOv8n (nudenet's 320n.onnx; AGPL, measured here, never shipped): detections of the float and int8 .tflite
  against onnxruntime on the original file, and 1-thread latency of each.

    .venv/bin/python benchmarks/from_torch.py [--rounds 5] [--json] [--out FILE]
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile

import numpy as np
from common import against_bound, alternate, emit, output_options, print_goals

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def mobilenet_v3_small(torch):
    """torchvision.models.mobilenet_v3_small's layers and settings (torchvision 0.2x), random weights."""
    nn = torch.nn

    def block(cin, cout, k, s, act, groups=1):
        return [nn.Conv2d(cin, cout, k, s, (k - 1) // 2, groups=groups, bias=False), nn.BatchNorm2d(cout),
                *([act()] if act else [])]

    class SqueezeExcitation(nn.Module):
        def __init__(self, channels):
            super().__init__()
            squeeze = max(8, int(channels // 4 + 4) // 8 * 8)
            self.fc1, self.fc2 = nn.Conv2d(channels, squeeze, 1), nn.Conv2d(squeeze, channels, 1)

        def forward(self, x):
            s = nn.functional.adaptive_avg_pool2d(x, 1)
            return x * nn.functional.hardsigmoid(self.fc2(nn.functional.relu(self.fc1(s))))

    class InvertedResidual(nn.Module):
        def __init__(self, cin, k, expand, cout, se, act, stride):
            super().__init__()
            layers = block(cin, expand, 1, 1, act) if expand != cin else []
            layers += block(expand, expand, k, stride, act, groups=expand)
            layers += [SqueezeExcitation(expand)] if se else []
            layers += block(expand, cout, 1, 1, None)
            self.body, self.residual = nn.Sequential(*layers), stride == 1 and cin == cout

        def forward(self, x):
            return x + self.body(x) if self.residual else self.body(x)

    re, hs = nn.ReLU, nn.Hardswish
    settings = [(16, 3, 16, 16, True, re, 2), (16, 3, 72, 24, False, re, 2), (24, 3, 88, 24, False, re, 1),
                (24, 5, 96, 40, True, hs, 2), (40, 5, 240, 40, True, hs, 1), (40, 5, 240, 40, True, hs, 1),
                (40, 5, 120, 48, True, hs, 1), (48, 5, 144, 48, True, hs, 1), (48, 5, 288, 96, True, hs, 2),
                (96, 5, 576, 96, True, hs, 1), (96, 5, 576, 96, True, hs, 1)]
    features = nn.Sequential(*block(3, 16, 3, 2, hs), *[InvertedResidual(*s) for s in settings],
                             *block(96, 576, 1, 1, hs))
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(576, 1024), hs(), nn.Dropout(0.2),
                         nn.Linear(1024, 1000))
    torch.manual_seed(0)
    return nn.Sequential(features, head).eval()


def photos(folder: pathlib.Path, size: int) -> pathlib.Path:
    import skimage.data
    from PIL import Image

    from tests.converters.yolo_reference import rgb
    (folder / "all").mkdir(parents=True, exist_ok=True)
    names = ("astronaut", "coffee", "chelsea", "rocket", "horse", "camera", "moon", "coins", "clock", "text",
             "immunohistochemistry", "gravel", "grass", "brick", "page", "retina", "logo", "cell")
    for k, name in enumerate(names):
        image = rgb(getattr(skimage.data, name)())
        for j, flip in enumerate((False, True)):
            Image.fromarray(image[:, ::-1] if flip else image).resize((size, size)).save(folder / "all" /
                                                                                         f"{k}-{j}.png")
    return folder


def op_counts(path) -> dict:
    from edgelite.converters.torch_model import float_ops
    from edgelite.runtime.modelfile.tflite_file import op_names, parse
    data = pathlib.Path(path).read_bytes()
    parsed = parse(data, str(path))
    names, model = op_names(parsed), parsed.main
    io = [model.tensors[i].dtype for i in (*model.inputs, *model.outputs)]
    return {"transposes": names.count("TRANSPOSE"), "io": sorted(set(io)), "float_ops": float_ops(data, "m").count}


def mobilenets(work: pathlib.Path, rounds: int) -> dict:
    import keras
    import torch

    import edgelite
    from edgelite.runtime.interpreter.model import Model
    calibration = photos(work / "photos224", 224)
    common = dict(calibration=calibration, input_range="-1,1", write_standard_metadata=False, recover=False,
                  verification=False)
    keras.utils.set_random_seed(0)
    built = keras.applications.MobileNetV3Small(weights=None, input_shape=(224, 224, 3),
                                                include_preprocessing=False)
    edgelite.convert(built, output=work / "keras.tflite", **common)
    edgelite.convert(mobilenet_v3_small(torch), output=work / "torch.tflite", input_shape=(224, 224, 3), **common)
    models = {name: Model(str(work / f"{name}.tflite"), threads=1, delegate="xnnpack") for name in ("keras", "torch")}
    x = {name: np.zeros(m.inputs[0].shape, m.inputs[0].dtype) for name, m in models.items()}
    per_round = {name: [] for name in models}
    for _ in range(rounds):
        timed = alternate({name: (lambda m=m, v=x[name]: m.run(v)) for name, m in models.items()}, 1, 30)
        for name, seconds in timed.items():
            per_round[name].append(seconds * 1e3)
    ratios = [t / k for t, k in zip(per_round["torch"], per_round["keras"])]
    return {"keras": op_counts(work / "keras.tflite"), "torch": op_counts(work / "torch.tflite"),
            "keras_ms": float(np.median(per_round["keras"])), "torch_ms": float(np.median(per_round["torch"])),
            "ratio_rounds": ratios, "ratio": float(np.median(ratios)),
            "latency_goal": against_bound(ratios, 1.10)}


def onets(work: pathlib.Path) -> dict:
    """facenet-pytorch's ONet and the mtcnn package's Keras ONet, each converted to int8 by edgelite on the same
    faces and measured against its own float model on the faces (every output) and all 200 crops (decisions)."""
    from mtcnn.stages.stage_onet import StageONet

    import edgelite
    from tests.converters.facenet import MTCNN_NORMALIZATION, converted, lfw_crops, load_onet, reference, snr_db
    crops = lfw_crops(work / "lfw")
    faces, others = sorted((crops / "faces").rglob("*.png")), sorted((crops / "non-faces").rglob("*.png"))
    common = dict(calibration=crops / "faces", input_shape=(48, 48, 3), recover=False,
                  write_standard_metadata=False, **MTCNN_NORMALIZATION)
    results = {}
    for name, model in (("torch", load_onet()), ("keras", StageONet().model)):
        out = edgelite.convert(model, output=work / f"onet-{name}.tflite", **common).output
        if name == "torch":
            theirs = reference(model, faces + others)
        else:  # the Keras ONet as its package feeds it: NHWC, (x - 127.5) / 128, outputs box, landmarks, prob
            from PIL import Image
            x = (np.stack([np.asarray(Image.open(p), np.float32) for p in faces + others]) - 127.5) / 128.0
            theirs = [np.asarray(o) for o in model(x, training=False)]
            theirs = sorted(theirs, key=lambda o: {4: 0, 10: 1, 2: 2}[o.shape[-1]])
        mine = converted(out, faces + others)
        results[f"{name}_snr_db"] = [snr_db(r[:100], c[:100]) for r, c in zip(theirs, mine)]
        results[f"{name}_decisions"] = float(np.mean((theirs[2][:, 1] > 0.7) == (mine[2][:, 1] > 0.7)))
    return results


def yolos(work: pathlib.Path, rounds: int) -> dict:
    """YOLOv8n as edgelite converts it, float and int8 (no ladder), against onnxruntime on the original file."""
    import importlib.util

    import edgelite
    from edgelite.runtime.interpreter.model import Model
    from tests.converters.yolo_reference import agreement, yolo_photos
    onnx = pathlib.Path(importlib.util.find_spec("nudenet").origin).with_name("320n.onnx")
    images = yolo_photos(work / "yolo")
    held_out = sorted((images / "eval").rglob("*.png"))
    common = dict(calibration=images / "calibration", eval_data=images / "eval", input_range="0,1",
                  resize="letterbox", input_shape=(320, 320, 3), recover=False)
    found, written = {}, {}
    for mode in ("none", "int8"):  # the int8 file is kept as .over-budget when its detections do not hold
        written[mode] = edgelite.convert(onnx, output=work / f"yolo-{mode}.tflite", quantize=mode, **common).output
        total, found[mode], _ = agreement(written[mode], onnx, held_out)
    models = {m: Model(path, threads=1, delegate="xnnpack") for m, path in written.items()}
    x = {m: np.zeros(v.inputs[0].shape, v.inputs[0].dtype) for m, v in models.items()}
    timed = [alternate({m: (lambda v=v, t=x[m]: v.run(t)) for m, v in models.items()}, 1, 10)
             for _ in range(rounds)]
    ratio = float(np.median([t["int8"] / t["none"] for t in timed]))
    return {"reference": total, "float_found": found["none"], "int8_found": found["int8"],
            "float_ms": float(np.median([t["none"] for t in timed])) * 1e3,
            "int8_ms": float(np.median([t["int8"] for t in timed])) * 1e3, "int8_over_float": ratio}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    output_options(parser, "from_torch")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="edgelite-bench-torch-") as work:
        results = {"mobilenet_v3_small": mobilenets(pathlib.Path(work), args.rounds),
                   "onet": onets(pathlib.Path(work)), "yolov8n": yolos(pathlib.Path(work), args.rounds)}
    emit(results, args, render)


def render(r: dict) -> None:
    m, o, y = r["mobilenet_v3_small"], r["onet"], r["yolov8n"]
    print_goals([
        ("MobileNetV3-Small torch: TRANSPOSE ops, I/O", f"{m['torch']['transposes']}, {m['torch']['io']}",
         "0, int8"),
        ("MobileNetV3-Small: ops left in float torch/keras", f"{m['torch']['float_ops']} / {m['keras']['float_ops']}",
         "reported"),
        ("MobileNetV3-Small 1 thread torch / keras", f"{m['ratio']:.2f}x ({m['latency_goal']})", "<= 1.10x"),
        ("ONet int8 vs facenet-pytorch, dB box/landm/prob", " / ".join(f"{v:.1f}" for v in o["torch_snr_db"]),
         ">= 25 each"),
        ("ONet int8 face decisions = float (200 crops)", f"{o['torch_decisions']:.3f}", "1.000"),
        ("Keras ONet int8 vs its float, dB", " / ".join(f"{v:.1f}" for v in o["keras_snr_db"]), "reported"),
        ("YOLOv8n float .tflite: onnxruntime detections found", f"{y['float_found']}/{y['reference']}", "all"),
        ("YOLOv8n int8 .tflite: onnxruntime detections found", f"{y['int8_found']}/{y['reference']}", "all"),
        ("YOLOv8n 1 thread int8 / float", f"{y['int8_over_float']:.2f}x", "reported"),
    ])


if __name__ == "__main__":
    main()
