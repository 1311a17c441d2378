"""PyTorch models in: MTCNN's ONet as facenet-pytorch ships it (its class, its trained weights), as a live
nn.Module, as a torch.export archive from the command line, and as ONNX; every output verified on real LFW faces
calibration never saw, and measured again here against facenet-pytorch's own float module without edgelite.
"""
import json
import pathlib
import subprocess
import sys

import pytest

import edgelite
from edgelite.converters.errors import ConversionError
from edgelite.runtime.modelfile.tflite_file import read_file
from tests.converters.facenet import MTCNN_NORMALIZATION, converted, reference, snr_db

pytestmark = pytest.mark.tensorflow


def test_onet_module_converts_to_int8_and_every_output_is_verified(tmp_path, facenet_onet, onet_crops):
    out = tmp_path / "onet.tflite"
    result = edgelite.convert(facenet_onet, output=out, calibration=onet_crops / "faces", input_shape=(48, 48, 3), recover=False,
                              write_standard_metadata=False, **MTCNN_NORMALIZATION)
    v = result.verification
    assert v.task == "raw" and v.images == 20 and sorted(o.shape for o in v.outputs) == [(2,), (4,), (10,)]
    assert result.quantization["io"] == "int8" and result.quantization["float_ops"]["count"] > 0  # PReLU's parts
    assert any("ops in float" in w for w in result.warnings)
    written = pathlib.Path(result.output)
    record = json.loads(read_file(written)[1].metadata["edgelite"])
    assert record["provenance"]["keras_flavor"] == "torch" and record["provenance"]["litert_torch"]
    assert record["quantization"]["float_ops"] == result.quantization["float_ops"]
    # every output measured again without edgelite, against facenet-pytorch's own module: on the faces (a box
    # and landmarks mean something only there), and the face decision on faces and non-faces alike
    faces, others = sorted((onet_crops / "faces").rglob("*.png")), sorted((onet_crops / "non-faces").rglob("*.png"))
    theirs, mine = reference(facenet_onet, faces + others), converted(written, faces + others)
    snrs = [snr_db(ref[:100], got[:100]) for ref, got in zip(theirs, mine)]
    print("ONet int8 against facenet-pytorch, box/landmarks/probability dB:", [round(x, 1) for x in snrs])
    assert min(snrs) >= 20.0, snrs
    decisions = (theirs[2][:, 1] > 0.7) == (mine[2][:, 1] > 0.7)  # facenet-pytorch's MTCNN threshold for ONet
    assert decisions.mean() >= 0.99, decisions.mean()


def test_a_torch_export_archive_converts_from_the_command_line(tmp_path, facenet_onet, onet_crops):
    import torch
    archive = tmp_path / "onet model.pt2"  # a space in the name, as users have
    torch.export.save(torch.export.export(facenet_onet, (torch.zeros(1, 3, 48, 48),)), str(archive))
    out = tmp_path / "onet.tflite"
    edgelite_cli = pathlib.Path(sys.executable).with_name("edgelite")  # the console script pip installed
    run = subprocess.run([str(edgelite_cli), "convert", str(archive), "-o", str(out),
                          "--calibration", str(onet_crops / "faces"), "--mean", "127.5", "--std", "128",
                          "--no-standard-metadata", "--json"], capture_output=True, text=True, timeout=600)
    assert run.returncode in (0, 1), run.stderr[-2000:]
    report = json.loads(run.stdout)
    assert report["input_spec"]["height"] == 48 and report["verification"]["task"] == "raw"
    rungs = report["recovery"]["rungs"]
    assert rungs[0]["name"] == "int8" and {r["name"] for r in report["recovery"]["not_tried"]} >= {"qat"}
    assert (run.returncode == 0) == report["within_budget"]
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize("options, message", [
    (dict(prune=0.5), "--prune is not available for PyTorch models"),
    (dict(quantize="fp16"), "--quantize fp16 is not available for PyTorch models"),
    (dict(target="edgetpu"), "--target edgetpu runs no float op, so the model is refused"),
])
def test_what_a_torch_model_cannot_be_asked_for_is_one_line(tmp_path, facenet_onet, onet_crops, options, message):
    with pytest.raises(ConversionError, match=message):
        edgelite.convert(facenet_onet, output=tmp_path / "o.tflite", calibration=onet_crops / "faces", input_shape=(48, 48, 3),
                         write_standard_metadata=False, **MTCNN_NORMALIZATION, **options)
    assert not list(tmp_path.glob("*.tflite"))


def test_a_module_without_an_input_shape_and_a_damaged_archive_say_what_is_wrong(tmp_path, facenet_onet, onet_crops):
    with pytest.raises(ConversionError, match="an nn.Module records no input shape; give input_shape"):
        edgelite.convert(facenet_onet, output=tmp_path / "o.tflite", calibration=onet_crops / "faces")
    damaged = tmp_path / "damaged.pt2"
    damaged.write_bytes(b"PK\x03\x04 not an archive")
    with pytest.raises(ConversionError, match="damaged.pt2: cannot load the torch.export archive"):
        edgelite.convert(damaged, output=tmp_path / "o.tflite", calibration=onet_crops / "faces")
