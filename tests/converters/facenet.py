"""facenet-pytorch's ONet and what it is measured on, without edgelite: its float module as its MTCNN feeds it,
a .tflite through LiteRT's interpreter directly, and LFW crops (used by tests/converters and benchmarks/from_torch)."""
import functools
import importlib.util
import pathlib
import sys
import types

import numpy as np

MTCNN_NORMALIZATION = dict(mean=(127.5,), std=(128.0,))  # facenet_pytorch.models.utils.detect_face: (x - 127.5) / 128


def reference(onet, paths) -> list[np.ndarray]:
    """facenet-pytorch's float ONet on the crops, fed as its MTCNN feeds it: (x - 127.5) / 128, NCHW."""
    import torch
    from PIL import Image
    x = np.stack([np.asarray(Image.open(p), np.float32) for p in paths])
    with torch.no_grad():
        return [o.numpy() for o in onet(torch.from_numpy((x - 127.5) / 128.0).permute(0, 3, 1, 2))]


def converted(model_path, paths) -> list[np.ndarray]:
    """The .tflite's outputs through LiteRT's interpreter, written here without edgelite, in ONet's output order
    (box, landmarks, face probability: told apart by width)."""
    from ai_edge_litert.interpreter import Interpreter
    from PIL import Image
    interpreter = Interpreter(model_path=str(model_path))
    interpreter.allocate_tensors()
    given = interpreter.get_input_details()[0]
    rows = []
    for p in paths:
        x = (np.asarray(Image.open(p), np.float32)[None] - 127.5) / 128.0
        scale, zero = given["quantization"]
        interpreter.set_tensor(given["index"], np.clip(np.round(x / scale + zero), -128, 127).astype(np.int8)
                               if given["dtype"] == np.int8 else x)
        interpreter.invoke()
        outs = {}
        for d in interpreter.get_output_details():
            v = interpreter.get_tensor(d["index"]).astype(np.float32)
            s, z = d["quantization"]
            outs[v.shape[-1]] = (v - z) * s if s else v
        rows.append([outs[4][0], outs[10][0], outs[2][0]])
    return [np.stack(r) for r in zip(*rows)]


def snr_db(ref, out) -> float:
    return float(10 * np.log10(np.mean(ref ** 2) / np.mean((ref - out) ** 2)))


def load_onet():
    """facenet-pytorch's ONet class with the weights in its wheel (data/onet.pt), a new instance each call."""
    return _onet_class()(pretrained=True).eval()


@functools.cache
def _onet_class():
    """The package's __init__ imports torchvision (for MTCNN's NMS, which ONet does not use), and PyPI's torchvision
    does not import beside a CPU torch: the module that defines ONet is loaded from the installed files, its NMS
    import given a stand-in. Once: the stand-in packages then shadow the real one's spec."""
    root = importlib.util.find_spec("facenet_pytorch").submodule_search_locations[0]
    for name in ("facenet_pytorch", "facenet_pytorch.models", "facenet_pytorch.models.utils"):
        sys.modules.setdefault(name, types.ModuleType(name)).__path__ = []
    nms = sys.modules.setdefault("facenet_pytorch.models.utils.detect_face",
                                 types.ModuleType("facenet_pytorch.models.utils.detect_face"))
    nms.detect_face = nms.extract_face = None
    loader = importlib.util.spec_from_file_location("facenet_pytorch.models.mtcnn", f"{root}/models/mtcnn.py")
    mtcnn = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(mtcnn)
    return mtcnn.ONet


def lfw_crops(root: pathlib.Path) -> pathlib.Path:
    """LFW from scikit-image as 48x48 RGB crops: faces/ holds the 100 faces (calibration), non-faces/ the 100
    others (for the face decisions)."""
    import skimage.data
    from PIL import Image
    for i, image in enumerate(skimage.data.lfw_subset()):
        folder = root / ("faces" if i < 100 else "non-faces") / "all"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((image * 255).astype(np.uint8), "L").convert("RGB").resize((48, 48), Image.BILINEAR).save(
            folder / f"{i:03d}.png")
    return root
