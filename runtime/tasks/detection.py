"""Detections from a detector's raw outputs: SSD anchors, box and keypoint decoding, non-max suppression.

The decoder is described with MediaPipe's own option names (snake_case, as in its ``.proto`` files),
so a user copies them from MediaPipe's graph configs into one JSON file:
``{"ssd_anchors": {...}, "tensors_to_detections": {...}, "non_max_suppression": {...}}``; ``decoders``
checks it (every field's range, the anchor count against the model's outputs) before this module runs.
The arithmetic follows MediaPipe's calculators (``ssd_anchors_calculator.cc``,
``tensors_to_detections_calculator.cc``, ``non_max_suppression_calculator.cc``), vectorised with numpy.
YOLO-style heads (``[1, N, 4 + classes]`` or transposed, centre xywh) use ``{"yolo": {...}}``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edgelite.runtime.tasks.decoders import Decoder, yolo_split

MAX_CANDIDATES = 10_000  # the highest-scoring candidates NMS considers: its loop is quadratic in them


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


def decode_ssd(raw_boxes: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray, decoder: Decoder,
               min_score: float = -np.inf) -> RawDetections:
    """Boxes, keypoints and best class of the anchors scoring at least ``min_score``, in anchor order. Scores come
    first so only the candidates are decoded: a face detector's 896 anchors hold a handful above its threshold,
    and decoding all of them was most of the post-processing of a live frame."""
    o = lambda key, default: decoder.option("tensors_to_detections", key, default)  # noqa: E731
    scores, classes = _best_class(raw_scores.reshape(len(anchors), -1).astype(np.float32), o)
    rows = np.flatnonzero(scores >= min_score)
    boxes = raw_boxes.reshape(len(anchors), -1)[rows].astype(np.float32)
    anchors, scores, classes = anchors[rows], scores[rows], classes[rows]
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
    k, start, per = o("num_keypoints", 0), o("keypoint_coord_offset", 4), o("num_values_per_keypoint", 2)
    kp = boxes[:, start:start + per * k].reshape(len(boxes), k, per)[..., :2]
    kx, ky = (kp[..., 0], kp[..., 1]) if xywh else (kp[..., 1], kp[..., 0])
    keypoints = np.stack([kx / o("x_scale", 1.0) * aw[:, None] + ax[:, None],
                          ky / o("y_scale", 1.0) * ah[:, None] + ay[:, None]], -1)
    return RawDetections(np.stack([xc - w / 2, yc - h / 2, xc + w / 2, yc + h / 2], -1), scores, classes, keypoints)


def _best_class(scores: np.ndarray, o) -> tuple[np.ndarray, np.ndarray]:
    if o("sigmoid_score", False):
        clip = o("score_clipping_thresh", None)
        if clip is not None:
            scores = np.clip(scores, -clip, clip)
        with np.errstate(over="ignore"):  # exp(100) overflows float32 to inf: the score is then exactly 0
            scores = 1.0 / (1.0 + np.exp(-scores))
    return scores.max(1), scores.argmax(1)


def decode_yolo(outputs: list[np.ndarray], decoder: Decoder, input_size: tuple[int, int] = (1, 1)
                ) -> RawDetections:
    """``[1, N, 4 + C]`` (or ``[1, 4 + C, N]``) with centre x, y, width, height then class scores, or the same
    split in two outputs, boxes and scores (``decoders.yolo_split``); with ``"normalized": false`` the coordinates
    are pixels of the ``input_size`` (width, height) tensor."""
    split = yolo_split([o.shape for o in outputs])
    if split is not None:
        boxes_at, anchors = split
        parts = [o.reshape(o.shape[-2], o.shape[-1]).astype(np.float32) for o in outputs]
        parts = [p if p.shape[0] == anchors else p.T for p in parts]
        rows = np.concatenate([parts[boxes_at], parts[1 - boxes_at]], axis=1)
    else:
        rows = outputs[0].reshape(outputs[0].shape[-2], outputs[0].shape[-1]).astype(np.float32)
        if rows.shape[0] < rows.shape[1]:
            rows = rows.T
    xc, yc, w, h = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
    if not decoder.option("yolo", "normalized", True):
        width, height = np.float32(input_size[0]), np.float32(input_size[1])
        xc, w, yc, h = xc / width, w / width, yc / height, h / height
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
    order = np.argsort(-found.scores, kind="stable")[:MAX_CANDIDATES]
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


def detections(outputs: list[np.ndarray], decoder: Decoder, anchors: np.ndarray | None,
               input_size: tuple[int, int] = (1, 1)) -> RawDetections:
    """Raw model outputs -> thresholded, suppressed detections in the input tensor's normalized space."""
    if decoder.kind == "yolo":
        found = _kept(decode_yolo(outputs, decoder, input_size),
                      decoder.option("yolo", "confidence_threshold", 0.25))
        return suppress(found, decoder.option("yolo", "iou_threshold", 0.45), False,
                        decoder.option("yolo", "max_detections", 100))
    boxes, scores = _ssd_outputs(outputs, decoder)
    min_score = decoder.option("tensors_to_detections", "min_score_thresh", -np.inf)
    found = decode_ssd(boxes, scores, anchors if anchors is not None else ssd_anchors(decoder), decoder, min_score)
    found = _kept(found, min_score, decoder.option("tensors_to_detections", "max_results", -1))
    n = decoder.sections.get("non_max_suppression", {})
    return suppress(found, n.get("min_suppression_threshold", 0.3), n.get("algorithm", "DEFAULT") == "WEIGHTED",
                    n.get("max_num_detections", -1), n.get("min_score_threshold", -np.inf))


def _kept(found: RawDetections, min_score: float, max_results: int = -1) -> RawDetections:
    """The candidates at or above ``min_score`` with a well-formed box; at most ``max_results`` of them, in anchor
    order, as MediaPipe's TensorsToDetectionsCalculator stops after that many."""
    keep = np.flatnonzero((found.scores >= min_score) & (found.boxes[:, 2] >= found.boxes[:, 0]) &
                          (found.boxes[:, 3] >= found.boxes[:, 1]))
    keep = keep[:max_results] if max_results > 0 else keep
    return RawDetections(found.boxes[keep], found.scores[keep], found.classes[keep], found.keypoints[keep])


def _ssd_outputs(outputs: list[np.ndarray], decoder: Decoder) -> tuple[np.ndarray, np.ndarray]:
    """The box/keypoint tensor and the score tensor, told apart by their last dimension."""
    coords = decoder.option("tensors_to_detections", "num_coords", 4)
    by_size = {o.shape[-1]: o for o in outputs}
    classes = decoder.option("tensors_to_detections", "num_classes", 1)
    return by_size[coords], by_size[classes]
