"""YOLOv8n (nudenet's 320n.onnx, an Ultralytics export; AGPL: test data only) measured without edgelite: real
photos to calibrate and verify on, and onnxruntime's detections on the original file (used by
tests/converters/test_from_onnx.py and benchmarks/from_torch.py)."""
import pathlib

import numpy as np

import edgelite

PHOTOS = ("coffee", "chelsea", "rocket", "horse", "moon", "coins", "clock", "immunohistochemistry", "gravel",
          "grass", "brick", "page", "text", "retina", "logo", "cell")
CONFIDENCE, IOU = 0.25, 0.45  # Ultralytics' defaults, and edgelite's YOLO decoder's


def rgb(image) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    if image.dtype != np.uint8:
        image = (255 * (image - image.min()) / max(1e-9, float(image.max() - image.min()))).astype(np.uint8)
    return np.stack([image] * 3, -1) if image.ndim == 2 else image[..., :3]


def face_grid(faces, first: int, n: int) -> np.ndarray:
    """n x n LFW faces (scikit-image), each 80 pixels wide: real faces at the sizes YOLOv8n finds."""
    from PIL import Image
    grid = np.zeros((n * 80, n * 80), np.uint8)
    for i in range(n * n):
        face = Image.fromarray((faces[first + i] * 255).astype(np.uint8)).resize((80, 80), Image.BILINEAR)
        grid[(i // n) * 80:(i // n + 1) * 80, (i % n) * 80:(i % n + 1) * 80] = np.asarray(face)
    return rgb(grid)


def yolo_photos(root: pathlib.Path) -> pathlib.Path:
    """calibration/: scikit-image's photographs without people, LFW faces 0-41 and non-faces in grids; eval/:
    the astronaut, the cameraman, the astronaut mirrored and LFW faces 50-95, none of them seen in calibration,
    each square at the model's 320 pixels (so a box in pixels is the input tensor's box times 320)."""
    import skimage.data
    from PIL import Image
    calibration, held_out = root / "calibration" / "all", root / "eval" / "all"
    calibration.mkdir(parents=True)
    held_out.mkdir(parents=True)
    faces = skimage.data.lfw_subset()
    for name in PHOTOS:
        Image.fromarray(rgb(getattr(skimage.data, name)())).save(calibration / f"{name}.png")
    first = 0
    for n in (2, 3, 4, 2, 3):
        Image.fromarray(face_grid(faces, first, n)).save(calibration / f"faces {first}.png")
        first += n * n
    for k, first in enumerate(range(100, 200, 25)):  # LFW's non-faces
        Image.fromarray(face_grid(faces, first, 4)).save(calibration / f"non-faces {k}.png")
    square = lambda a: Image.fromarray(a).resize((320, 320), Image.BILINEAR)  # noqa: E731 - the model's size
    square(rgb(skimage.data.astronaut())).save(held_out / "astronaut.png")
    square(rgb(skimage.data.astronaut())[:, ::-1].copy()).save(held_out / "astronaut mirrored.png")
    square(rgb(skimage.data.camera())).save(held_out / "camera.png")
    first = 50
    for n in (2, 2, 3, 3, 4, 2):
        square(face_grid(faces, first, n)).save(held_out / f"faces {first}.png")
        first += n * n
    return root


def reference_detections(onnx_path, tensor: np.ndarray):
    """onnxruntime on the original file, fed the tensor edgelite feeds; Ultralytics' decoding, OpenCV's NMS."""
    import cv2
    import onnxruntime
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    rows = session.run(None, {session.get_inputs()[0].name: tensor.transpose(0, 3, 1, 2)})[0][0].T
    scores, classes = rows[:, 4:].max(1), rows[:, 4:].argmax(1)
    keep = scores >= CONFIDENCE
    xywh, scores, classes = rows[keep, :4] / tensor.shape[1], scores[keep], classes[keep]
    boxes = np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], 1)
    kept = np.array(cv2.dnn.NMSBoxes([[*b[:2], *(b[2:] - b[:2])] for b in boxes], scores.tolist(),
                                     CONFIDENCE, IOU)).reshape(-1)
    return boxes[kept], scores[kept], classes[kept]


def iou(a, b) -> float:
    inter = np.prod(np.clip(np.minimum(a[2:], b[2:]) - np.maximum(a[:2], b[:2]), 0, None))
    return float(inter / (np.prod(a[2:] - a[:2]) + np.prod(b[2:] - b[:2]) - inter))


def agreement(model_path, onnx_path, images) -> tuple[int, int, int]:
    """(reference detections, those the .tflite finds on the device with IoU >= 0.9, the same class and a score
    within 0.05, most extra detections on one image). The images are 320x320: no resizing on either side."""
    from PIL import Image
    detector = edgelite.load(model_path)
    total = found = extra = 0
    for path in images:
        tensor = np.asarray(Image.open(path).convert("RGB"), np.float32)[None] / 255.0
        boxes, scores, classes = reference_detections(onnx_path, tensor)
        mine = detector.run(str(path)).detections
        total += len(boxes)
        extra = max(extra, len(mine) - len(boxes))
        for box, score, label in zip(boxes, scores, classes):
            found += any(iou(box, np.array(d.box) / 320.0) >= 0.9 and abs(d.score - score) <= 0.05 and
                         d.label_id == label for d in mine)
    return total, found, extra
