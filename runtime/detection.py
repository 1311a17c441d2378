"""Detections from a detector's raw outputs: SSD anchors, box and keypoint decoding, non-max suppression.

The decoder is described with MediaPipe's own option names (snake_case, as in its ``.proto`` files),
so a user copies them from MediaPipe's graph configs into one JSON file:
``{"ssd_anchors": {...}, "tensors_to_detections": {...}, "non_max_suppression": {...}}``.
The arithmetic follows MediaPipe's calculators (``ssd_anchors_calculator.cc``,
``tensors_to_detections_calculator.cc``, ``non_max_suppression_calculator.cc``), vectorised with numpy.
YOLO-style heads (``[1, N, 4 + classes]`` or transposed, centre xywh) use ``{"yolo": {...}}``.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

from .errors import InputError

SSD_ANCHORS = {"num_layers": int, "min_scale": float, "max_scale": float, "input_size_height": int,
               "input_size_width": int, "anchor_offset_x": float, "anchor_offset_y": float, "strides": list,
               "aspect_ratios": list, "reduce_boxes_in_lowest_layer": bool, "interpolated_scale_aspect_ratio": float,
               "fixed_anchor_size": bool, "feature_map_height": list, "feature_map_width": list}
TENSORS_TO_DETECTIONS = {"num_classes": int, "num_boxes": int, "num_coords": int, "box_coord_offset": int,
                         "keypoint_coord_offset": int, "num_keypoints": int, "num_values_per_keypoint": int,
                         "sigmoid_score": bool, "score_clipping_thresh": float, "reverse_output_order": bool,
                         "x_scale": float, "y_scale": float, "h_scale": float, "w_scale": float,
                         "apply_exponential_on_box_size": bool, "min_score_thresh": float, "max_results": int,
                         "box_format": str}
NON_MAX_SUPPRESSION = {"min_suppression_threshold": float, "overlap_type": str, "algorithm": str,
                       "max_num_detections": int, "min_score_threshold": float}
IMAGE_TO_TENSOR = {"keep_aspect_ratio": bool, "output_tensor_float_range": dict, "border_mode": str}
YOLO = {"confidence_threshold": float, "iou_threshold": float, "max_detections": int, "normalized": bool}
SECTIONS = {"ssd_anchors": SSD_ANCHORS, "tensors_to_detections": TENSORS_TO_DETECTIONS,
            "non_max_suppression": NON_MAX_SUPPRESSION, "image_to_tensor": IMAGE_TO_TENSOR, "yolo": YOLO}


@dataclass(frozen=True)
class Decoder:
    """A validated decoder description: MediaPipe's SSD sections, or a YOLO section."""

    sections: dict

    @property
    def kind(self) -> str:
        return "yolo" if "yolo" in self.sections else "ssd"

    def option(self, section: str, key: str, default):
        return self.sections.get(section, {}).get(key, default)

    def to_dict(self) -> dict:
        return self.sections


def parse_decoder(data, where: str) -> Decoder:
    """A Decoder from a JSON object (or its text); unknown sections or keys and wrong types name the key."""
    if isinstance(data, (str, bytes)):
        try:
            data = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise InputError(f"{where}: not JSON ({exc})") from None
    if not isinstance(data, dict) or not data:
        raise InputError(f"{where}: a decoder is a JSON object with sections {', '.join(SECTIONS)}")
    for section, values in data.items():
        known = SECTIONS.get(section)
        if known is None:
            raise InputError(f"{where}: unknown section {section!r}; give {', '.join(SECTIONS)}")
        if not isinstance(values, dict):
            raise InputError(f"{where}: {section} must be an object")
        for key, value in values.items():
            _check_value(where, section, key, value, known)
    if "yolo" not in data and ("ssd_anchors" not in data or "tensors_to_detections" not in data):
        raise InputError(f"{where}: an SSD decoder needs ssd_anchors and tensors_to_detections (or give yolo)")
    return Decoder(data)


def _check_value(where: str, section: str, key: str, value, known: dict) -> None:
    kind = known.get(key)
    if kind is None:
        raise InputError(f"{where}: {section}.{key} is not one of MediaPipe's option names "
                         f"({', '.join(sorted(known))})")
    if kind is dict:
        ok = isinstance(value, dict) and set(value) == {"min", "max"} and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value.values()) \
            and value["max"] > value["min"]
        if not ok:
            raise InputError(f"{where}: {section}.{key} must be {{\"min\": number, \"max\": number}} with max > min")
        return
    ok = (isinstance(value, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
          if kind is list else isinstance(value, bool) if kind is bool else isinstance(value, str) if kind is str
          else isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
          and (kind is float or float(value).is_integer()))
    if not ok:
        raise InputError(f"{where}: {section}.{key} must be {kind.__name__}, got {value!r}")


# -- SSD anchors (MediaPipe's SsdAnchorsCalculator, non-multiscale) ------------------------------------
def _scale(min_scale: float, max_scale: float, index: int, count: int) -> float:
    return (min_scale + max_scale) * 0.5 if count == 1 else min_scale + (max_scale - min_scale) * index / (count - 1)


def ssd_anchors(decoder: Decoder) -> np.ndarray:
    """Anchors [N, 4] as (x_center, y_center, w, h), normalized, in MediaPipe's order."""
    o = lambda key, default: decoder.option("ssd_anchors", key, default)  # noqa: E731
    strides, layers = list(o("strides", [])), int(o("num_layers", 0))
    heights, widths = list(o("feature_map_height", [])), list(o("feature_map_width", []))
    out, layer = [], 0
    while layer < layers:
        ratios, scales, last = [], [], layer
        while last < len(strides) and strides[last] == strides[layer]:
            scale = _scale(o("min_scale", 0.0), o("max_scale", 0.0), last, len(strides))
            if last == 0 and o("reduce_boxes_in_lowest_layer", False):
                ratios += [1.0, 2.0, 0.5]
                scales += [0.1, scale, scale]
            else:
                ratios += list(o("aspect_ratios", []))
                scales += [scale] * len(o("aspect_ratios", []))
                interpolated = o("interpolated_scale_aspect_ratio", 1.0)
                if interpolated > 0:
                    following = 1.0 if last == len(strides) - 1 else _scale(
                        o("min_scale", 0.0), o("max_scale", 0.0), last + 1, len(strides))
                    scales.append(math.sqrt(scale * following))
                    ratios.append(interpolated)
            last += 1
        rows = heights[layer] if heights else math.ceil(o("input_size_height", 0) / strides[layer])
        cols = widths[layer] if widths else math.ceil(o("input_size_width", 0) / strides[layer])
        out.append(_layer_anchors(rows, cols, ratios, scales, o("anchor_offset_x", 0.5), o("anchor_offset_y", 0.5),
                                  o("fixed_anchor_size", False)))
        layer = last
    return np.concatenate(out) if out else np.zeros((0, 4), np.float32)


def _layer_anchors(rows: int, cols: int, ratios, scales, offset_x: float, offset_y: float, fixed: bool):
    ys, xs = np.meshgrid((np.arange(rows) + offset_y) / rows, (np.arange(cols) + offset_x) / cols, indexing="ij")
    sqrt = np.sqrt(np.asarray(ratios, np.float64))
    w = np.ones(len(ratios)) if fixed else np.asarray(scales) * sqrt
    h = np.ones(len(ratios)) if fixed else np.asarray(scales) / sqrt
    grid = np.stack([xs, ys], -1).reshape(-1, 1, 2).repeat(len(ratios), 1)
    size = np.broadcast_to(np.stack([w, h], -1), grid.shape)
    return np.concatenate([grid, size], -1).reshape(-1, 4).astype(np.float32)


# -- decoding (MediaPipe's TensorsToDetectionsCalculator, CPU path) --------------------------------------
@dataclass(frozen=True)
class RawDetections:
    """Candidates in the model's input space (normalized): boxes [N, 4] xmin, ymin, xmax, ymax."""

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray
    keypoints: np.ndarray  # [N, K, 2] x, y


def decode_ssd(raw_boxes: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray, decoder: Decoder) -> RawDetections:
    o = lambda key, default: decoder.option("tensors_to_detections", key, default)  # noqa: E731
    boxes = raw_boxes.reshape(len(anchors), -1).astype(np.float32)
    off = o("box_coord_offset", 0)
    a, b, c, d = (boxes[:, off + i] for i in range(4))
    xywh = o("reverse_output_order", False) or o("box_format", "") == "XYWH"
    xc, yc, w, h = (a, b, c, d) if xywh else (b, a, d, c)
    ax, ay, aw, ah = anchors.T
    xc, yc = xc / o("x_scale", 1.0) * aw + ax, yc / o("y_scale", 1.0) * ah + ay
    if o("apply_exponential_on_box_size", False):
        w, h = np.exp(w / o("w_scale", 1.0)) * aw, np.exp(h / o("h_scale", 1.0)) * ah
    else:
        w, h = w / o("w_scale", 1.0) * aw, h / o("h_scale", 1.0) * ah
    k, start = o("num_keypoints", 0), o("keypoint_coord_offset", 4)
    kp = boxes[:, start:start + 2 * k].reshape(len(boxes), k, 2)
    kx, ky = (kp[..., 0], kp[..., 1]) if xywh else (kp[..., 1], kp[..., 0])
    keypoints = np.stack([kx / o("x_scale", 1.0) * aw[:, None] + ax[:, None],
                          ky / o("y_scale", 1.0) * ah[:, None] + ay[:, None]], -1)
    scores, classes = _best_class(raw_scores.reshape(len(anchors), -1).astype(np.float32), o)
    return RawDetections(np.stack([xc - w / 2, yc - h / 2, xc + w / 2, yc + h / 2], -1), scores, classes, keypoints)


def _best_class(scores: np.ndarray, o) -> tuple[np.ndarray, np.ndarray]:
    if o("sigmoid_score", False):
        clip = o("score_clipping_thresh", None)
        if clip is not None:
            scores = np.clip(scores, -clip, clip)
        with np.errstate(over="ignore"):  # exp(100) overflows float32 to inf: the score is then exactly 0
            scores = 1.0 / (1.0 + np.exp(-scores))
    return scores.max(1), scores.argmax(1)


def decode_yolo(output: np.ndarray, decoder: Decoder) -> RawDetections:
    """``[1, N, 4 + C]`` (or ``[1, 4 + C, N]``) with centre x, y, width, height then class scores."""
    rows = output.reshape(output.shape[-2], output.shape[-1]).astype(np.float32)
    if rows.shape[0] < rows.shape[1]:
        rows = rows.T
    xc, yc, w, h = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
    scores = rows[:, 4:]
    boxes = np.stack([xc - w / 2, yc - h / 2, xc + w / 2, yc + h / 2], -1)
    return RawDetections(boxes, scores.max(1), scores.argmax(1), np.zeros((len(rows), 0, 2), np.float32))


# -- non-max suppression (MediaPipe's NonMaxSuppressionCalculator) ---------------------------------------
def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x1, y1 = np.maximum(box[0], boxes[:, 0]), np.maximum(box[1], boxes[:, 1])
    x2, y2 = np.minimum(box[2], boxes[:, 2]), np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    union = area(box) + area(boxes) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def suppress(found: RawDetections, threshold: float, weighted: bool, limit: int = -1,
             min_score: float = -np.inf) -> RawDetections:
    """Greedy NMS by score; WEIGHTED averages each cluster's boxes and keypoints by score (MediaPipe's default
    for face and palm detectors) and keeps the top score."""
    order = np.argsort(-found.scores, kind="stable")
    keep_boxes: list = []
    keep_kp: list = []
    keep_scores: list = []
    keep_classes: list = []
    while len(order) and (limit < 0 or len(keep_scores) < limit):
        top = order[0]
        if found.scores[top] < min_score:
            break
        overlap = iou(found.boxes[top], found.boxes[order[1:]])
        # the top always leaves the queue: a zero-area or NaN box overlaps nothing, not even itself
        cluster = np.concatenate([[top], order[1:][overlap > threshold]])
        order = order[1:][~(overlap > threshold)]
        if weighted:
            w = found.scores[cluster][:, None]
            keep_boxes.append((found.boxes[cluster] * w).sum(0) / w.sum())
            keep_kp.append((found.keypoints[cluster] * w[:, :, None]).sum(0) / w.sum())
        else:
            keep_boxes.append(found.boxes[top])
            keep_kp.append(found.keypoints[top])
        keep_scores.append(found.scores[top])
        keep_classes.append(found.classes[top])
    k = found.keypoints.shape[1]
    points = np.array(keep_kp, np.float32).reshape(len(keep_scores), k, 2)
    return RawDetections(np.array(keep_boxes, np.float32).reshape(-1, 4), np.array(keep_scores, np.float32),
                         np.array(keep_classes, np.int64), points)


def detections(outputs: list[np.ndarray], decoder: Decoder, anchors: np.ndarray | None) -> RawDetections:
    """Raw model outputs -> thresholded, suppressed detections in the input tensor's normalized space."""
    if decoder.kind == "yolo":
        found = decode_yolo(outputs[0], decoder)
        keep = found.scores >= decoder.option("yolo", "confidence_threshold", 0.25)
        found = RawDetections(found.boxes[keep], found.scores[keep], found.classes[keep], found.keypoints[keep])
        return suppress(found, decoder.option("yolo", "iou_threshold", 0.45), False,
                        decoder.option("yolo", "max_detections", 100))
    boxes, scores = _ssd_outputs(outputs, decoder)
    found = decode_ssd(boxes, scores, anchors if anchors is not None else ssd_anchors(decoder), decoder)
    keep = (found.scores >= decoder.option("tensors_to_detections", "min_score_thresh", -np.inf)) & \
        (found.boxes[:, 2] >= found.boxes[:, 0]) & (found.boxes[:, 3] >= found.boxes[:, 1])
    found = RawDetections(found.boxes[keep], found.scores[keep], found.classes[keep], found.keypoints[keep])
    n = decoder.sections.get("non_max_suppression", {})
    return suppress(found, n.get("min_suppression_threshold", 0.3), n.get("algorithm", "DEFAULT") == "WEIGHTED",
                    n.get("max_num_detections", -1), n.get("min_score_threshold", -np.inf))


def _ssd_outputs(outputs: list[np.ndarray], decoder: Decoder) -> tuple[np.ndarray, np.ndarray]:
    """The box/keypoint tensor and the score tensor, told apart by their last dimension."""
    coords = decoder.option("tensors_to_detections", "num_coords", 4)
    by_size = {o.shape[-1]: o for o in outputs}
    classes = decoder.option("tensors_to_detections", "num_classes", 1)
    return by_size[coords], by_size[classes]


def check_fit(decoder: Decoder, output_shapes: list[tuple[int, ...]], where: str) -> None:
    """A decoder that does not fit the model's outputs is one line naming the key and what the model has."""
    if decoder.kind == "yolo":
        if len(output_shapes) != 1 or len(output_shapes[0]) != 3:
            raise InputError(f"{where}: yolo decodes one [1, N, 4 + classes] output; the model has "
                             f"{[list(s) for s in output_shapes]}")
        return
    t = lambda key, default: decoder.option("tensors_to_detections", key, default)  # noqa: E731
    lasts = [s[-1] for s in output_shapes if s]
    for key, value in (("num_coords", t("num_coords", 4)), ("num_classes", t("num_classes", 1))):
        if value not in lasts:
            raise InputError(f"{where}: tensors_to_detections.{key} is {value}, but the model's outputs are "
                             f"{[list(s) for s in output_shapes]}")
    boxes = t("num_boxes", None)
    if boxes is not None and not all(s[-2] == boxes for s in output_shapes if len(s) >= 2):
        raise InputError(f"{where}: tensors_to_detections.num_boxes is {boxes}, but the model's outputs are "
                         f"{[list(s) for s in output_shapes]}")
