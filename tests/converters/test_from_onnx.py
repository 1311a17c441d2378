"""ONNX models in: a real Ultralytics YOLOv8n export (nudenet's 320n.onnx, AGPL: test data only, never shipped)
and MTCNN's ONet exported from facenet-pytorch. The YOLO head is split into boxes and scores before anything is
quantized and decoded on the device by edgelite's YOLO decoder; the detections are compared with onnxruntime
running the original file, decoded by a reference written in tests/converters/yolo_reference.py (OpenCV's NMS).
"""
import importlib.util
import json
import pathlib
import subprocess
import sys

import pytest

import edgelite
from edgelite.converters.errors import ConversionError
from edgelite.runtime.modelfile.tflite_file import read_file
from tests.converters.facenet import MTCNN_NORMALIZATION, converted, reference, snr_db
from tests.converters.yolo_reference import agreement, yolo_photos

pytestmark = pytest.mark.tensorflow


@pytest.fixture(scope="module")
def yolo():
    need_onnx2torch()
    spec = importlib.util.find_spec("nudenet")
    if spec is None:
        pytest.skip("nudenet (its YOLOv8n export is test data) is not installed")
    return pathlib.Path(spec.origin).with_name("320n.onnx")


def need_onnx2torch():
    """onnx2torch is found, not imported: it imports torchvision, which edgelite stands in for (onnx_model)."""
    if importlib.util.find_spec("onnx2torch") is None:
        pytest.skip("onnx2torch is not installed (scripts/envs.sh installs it with --no-deps)")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return yolo_photos(tmp_path_factory.mktemp("yolo"))


def test_a_yolov8_export_converts_its_head_split_and_detects_as_onnxruntime_does(tmp_path, yolo, photos):
    """Float first, from the command line: the graph made static, folded, turned into torch and into TFLite, with
    the head split and edgelite's decoder, finds every detection onnxruntime finds on the original file."""
    out = tmp_path / "yolo float.tflite"
    edgelite_cli = pathlib.Path(sys.executable).with_name("edgelite")
    run = subprocess.run([str(edgelite_cli), "convert", str(yolo), "-o", str(out), "--quantize", "none",
                          "--calibration", str(photos / "calibration"), "--eval-data", str(photos / "eval"),
                          "--input-range", "0,1", "--resize", "letterbox", "--input-shape", "320,320,3", "--json"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert json.loads(run.stdout)["verification"]["detection"]["matched_share"] == 1.0
    record = json.loads(read_file(out)[1].metadata["edgelite"])
    assert record["task"] == "object-detection" and record["decoder"] == {"yolo": {"normalized": True}}
    assert record["provenance"]["yolo_head"] == {"split": "boxes / input size, scores", "classes": 18,
                                                 "anchors": 2100}
    assert sorted(o["role"] for o in record["outputs"]) == ["boxes", "scores"]
    total, found, extra = agreement(out, yolo, sorted((photos / "eval").rglob("*.png")))
    assert total >= 20 and found == total and extra <= 1, (total, found, extra)


def test_int8_yolo_is_called_within_budget_only_when_its_detections_hold(tmp_path, yolo, photos):
    """The int8 model is judged by its detections on images calibration never saw; the verdict is checked
    against onnxruntime's detections here (the head split, so boxes and scores each keep their own int8 step)."""
    out = tmp_path / "yolo.tflite"
    result = edgelite.convert(yolo, output=out, calibration=photos / "calibration", eval_data=photos / "eval",
                              input_range="0,1", resize="letterbox", input_shape=(320, 320, 3), recover=False)
    print("YOLOv8n int8:", result.verification.detection, [(o.shape, o.snr_db) for o in result.verification.outputs])
    total, found, _ = agreement(result.output, yolo, sorted((photos / "eval").rglob("*.png")))
    assert result.quantization["io"] == "int8" and result.quantization["float_ops"]["count"] >= 1
    if result.within_budget:
        assert found >= 0.9 * total, (total, found)
    else:
        assert result.output.endswith(".over-budget.tflite") and found < total, (total, found)


@pytest.mark.filterwarnings("ignore::DeprecationWarning:torch.onnx")  # the TorchScript exporter: a fixed input size
@pytest.mark.filterwarnings("ignore:You are using the legacy TorchScript-based ONNX export:DeprecationWarning")
def test_onet_exported_to_onnx_converts_like_its_pytorch_module(tmp_path, facenet_onet, onet_crops):
    """facenet-pytorch's ONet through torch.onnx (the TorchScript exporter, a fixed 48x48 input) and in again:
    int8, every output measured here against facenet-pytorch's module on the faces."""
    need_onnx2torch()
    import torch
    path = tmp_path / "onet.onnx"
    torch.onnx.export(facenet_onet, (torch.zeros(1, 3, 48, 48),), str(path), dynamo=False, input_names=["image"])
    result = edgelite.convert(path, output=tmp_path / "onet.tflite", calibration=onet_crops / "faces",
                              recover=False, write_standard_metadata=False, **MTCNN_NORMALIZATION)
    assert result.input_spec.height == 48 and result.quantization["io"] == "int8"
    faces = sorted((onet_crops / "faces").rglob("*.png"))
    snrs = [snr_db(r, c) for r, c in zip(reference(facenet_onet, faces), converted(result.output, faces))]
    assert min(snrs) >= 20.0, snrs


def test_an_onnx_file_with_a_free_image_size_or_damaged_says_what_to_give(tmp_path, yolo, photos):
    with pytest.raises(ConversionError, match="height and width are not fixed in the graph; give --input-shape"):
        edgelite.convert(yolo, output=tmp_path / "o.tflite", calibration=photos / "calibration")
    damaged = tmp_path / "damaged.onnx"
    damaged.write_bytes(yolo.read_bytes()[:5000])
    with pytest.raises(ConversionError, match="damaged.onnx: not a valid ONNX model"):
        edgelite.convert(damaged, output=tmp_path / "o.tflite", calibration=photos / "calibration",
                         input_shape=(320, 320, 3))
    assert not list(tmp_path.glob("*.tflite"))
