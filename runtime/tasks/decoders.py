"""What a detection decoder may say, checked once for every place a decoder comes from.

A decoder drives array shapes and loops (anchor grids, reshapes, keypoint slices), and it reaches
the device from three places: a ``--decoder`` JSON file, the record embedded in a model file (so a
model downloaded from anywhere brings its own), and a Python dict. All three go through ``parse``
before anything is allocated: every field's type and range is declared once in ``SECTIONS``, enum
values come from MediaPipe's own ``.proto`` lists (values edgelite does not decode are refused, not
decoded as something else), and ``check_fit`` computes the number of anchors and the output layout
arithmetically and holds them against the model's outputs before a single anchor is generated.
A problem is one ``InputError`` (a file or dict) or ``ModelError`` (an embedded record) naming the
source, the key and, where it matters, what the model has.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

from edgelite.runtime.errors import InputError, ModelError
from edgelite.runtime.modelfile.files import read_regular

MAX_FILE_BYTES = 1 << 20   # a decoder is a few hundred bytes; as for the record, a megabyte is already absurd
MAX_ANCHORS = 1 << 20      # SSD heads have thousands (MediaPipe's face detector 896, SSD MobileNet 1,917)
MAX_LAYERS = 16
MAX_SIZE = 16384           # pixels, as for the record's input size
MAX_DETECTIONS = 100_000


@dataclass(frozen=True)
class Field:
    """One option: its JSON type, its inclusive range (numbers) or allowed values (strings), or a list's items."""

    kind: type
    low: float = -math.inf
    high: float = math.inf
    choices: tuple[str, ...] = ()
    unsupported: tuple[str, ...] = ()   # MediaPipe's values that edgelite does not decode
    items: int = 0                      # lists: at most this many, each in low..high
    whole: bool = False                 # lists: of whole numbers
    off: int | None = None              # a value outside the range that means "no limit" (MediaPipe's -1)

    def problem(self, value) -> str | None:
        """Why ``value`` is not allowed here, or None."""
        if self.kind is bool:
            return None if isinstance(value, bool) else "must be true or false"
        if self.kind is str:
            return _choice_problem(value, self.choices, self.unsupported)
        if self.kind is list:
            return self._list_problem(value)
        if self.kind is dict:
            return _range_object_problem(value)
        return self._number_problem(value)

    def _number_problem(self, value) -> str | None:
        number = _number(value, integer=self.kind is int)
        if number is None:
            return f"must be {'a whole number' if self.kind is int else 'a finite number'}, got {value!r}"
        if number == self.off or self.low <= number <= self.high:
            return None
        also = f" (or {self.off} for no limit)" if self.off is not None else ""
        return f"is {value!r}, not in {_show(self.low)}..{_show(self.high)}{also}"

    def _list_problem(self, value) -> str | None:
        if not isinstance(value, list) or not 1 <= len(value) <= self.items:
            return f"must be a list of 1 to {self.items} {'whole numbers' if self.whole else 'numbers'}"
        for item in value:
            number = _number(item, integer=self.whole)
            if number is None or not self.low <= number <= self.high:
                return f"holds {item!r}, not a number in {_show(self.low)}..{_show(self.high)}"
        return None


def _number(value, integer: bool) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return None if integer and not float(value).is_integer() else float(value)


def _show(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else repr(bound)


def _choice_problem(value, choices: tuple[str, ...], unsupported: tuple[str, ...]) -> str | None:
    if value in choices:
        return None
    if value in unsupported:
        return f"is {value!r}, which MediaPipe has but edgelite does not decode; use one of {', '.join(choices)}"
    return f"is {value!r}, not one of MediaPipe's {', '.join(choices + unsupported)}"


def _range_object_problem(value) -> str | None:
    ok = isinstance(value, dict) and set(value) == {"min", "max"} and all(
        _number(v, integer=False) is not None and abs(v) <= 1e6 for v in value.values()) and value["max"] > value["min"]
    return None if ok else 'must be {"min": number, "max": number} with max > min, each within 1e6'


POSITIVE_SCALE = Field(float, 1e-6, 1e6)
SSD_ANCHORS = {
    "num_layers": Field(int, 1, MAX_LAYERS), "min_scale": Field(float, 1e-6, 100.0),
    "max_scale": Field(float, 1e-6, 100.0), "input_size_height": Field(int, 1, MAX_SIZE),
    "input_size_width": Field(int, 1, MAX_SIZE), "anchor_offset_x": Field(float, 0.0, 1.0),
    "anchor_offset_y": Field(float, 0.0, 1.0), "strides": Field(list, 1, MAX_SIZE, items=MAX_LAYERS, whole=True),
    "aspect_ratios": Field(list, 1e-3, 1e3, items=MAX_LAYERS), "reduce_boxes_in_lowest_layer": Field(bool),
    "interpolated_scale_aspect_ratio": Field(float, 0.0, 1e3), "fixed_anchor_size": Field(bool),
    "feature_map_height": Field(list, 1, MAX_SIZE, items=MAX_LAYERS, whole=True),
    "feature_map_width": Field(list, 1, MAX_SIZE, items=MAX_LAYERS, whole=True),
}
TENSORS_TO_DETECTIONS = {
    "num_classes": Field(int, 1, 100_000), "num_boxes": Field(int, 1, MAX_ANCHORS),
    "num_coords": Field(int, 4, 4096), "box_coord_offset": Field(int, 0, 4092),
    "keypoint_coord_offset": Field(int, 0, 4096), "num_keypoints": Field(int, 0, 2048),
    "num_values_per_keypoint": Field(int, 2, 16), "sigmoid_score": Field(bool),
    "score_clipping_thresh": Field(float, 1e-6, 1e4), "reverse_output_order": Field(bool),
    "x_scale": POSITIVE_SCALE, "y_scale": POSITIVE_SCALE, "h_scale": POSITIVE_SCALE, "w_scale": POSITIVE_SCALE,
    "apply_exponential_on_box_size": Field(bool), "min_score_thresh": Field(float, -1e9, 1e9),
    "max_results": Field(int, 1, MAX_DETECTIONS, off=-1),
    "box_format": Field(str, choices=("UNSPECIFIED", "YXHW", "XYWH"), unsupported=("XYXY",)),
}
NON_MAX_SUPPRESSION = {
    "min_suppression_threshold": Field(float, 0.0, 1.0),
    "overlap_type": Field(str, choices=("UNSPECIFIED_OVERLAP_TYPE", "JACCARD", "INTERSECTION_OVER_UNION"),
                          unsupported=("MODIFIED_JACCARD",)),
    "algorithm": Field(str, choices=("DEFAULT", "WEIGHTED")),
    "max_num_detections": Field(int, 1, MAX_DETECTIONS, off=-1), "min_score_threshold": Field(float, -1e9, 1e9),
}
IMAGE_TO_TENSOR = {
    "keep_aspect_ratio": Field(bool), "output_tensor_float_range": Field(dict),
    "border_mode": Field(str, choices=("BORDER_UNSPECIFIED", "BORDER_ZERO"), unsupported=("BORDER_REPLICATE",)),
}
YOLO = {"confidence_threshold": Field(float, 0.0, 1.0), "iou_threshold": Field(float, 0.0, 1.0),
        "max_detections": Field(int, 1, MAX_DETECTIONS), "normalized": Field(bool)}
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


def parse(data, where: str, error: type[Exception] = InputError) -> Decoder:
    """A Decoder from a JSON object (or its text), every field checked; ``error`` naming ``where`` and the key."""
    if isinstance(data, (str, bytes)):
        if len(data) > MAX_FILE_BYTES:
            raise error(f"{where}: a decoder of {len(data)} bytes is over the limit of {MAX_FILE_BYTES}")
        try:
            data = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise error(f"{where}: not JSON ({exc})") from None
    if not isinstance(data, dict) or not data:
        raise error(f"{where}: a decoder is a JSON object with sections {', '.join(SECTIONS)}")
    for section, values in data.items():
        known = SECTIONS.get(section)
        if known is None:
            raise error(f"{where}: unknown section {section!r}; give {', '.join(SECTIONS)}")
        if not isinstance(values, dict):
            raise error(f"{where}: {section} must be an object")
        for key, value in values.items():
            field = known.get(key)
            if field is None:
                raise error(f"{where}: {section}.{key} is not one of MediaPipe's option names "
                            f"({', '.join(sorted(known))})")
            problem = field.problem(value)
            if problem:
                raise error(f"{where}: {section}.{key} {problem}")
    if "yolo" in data and len(data.keys() - {"yolo", "image_to_tensor"}):
        raise error(f"{where}: a yolo decoder takes only yolo and image_to_tensor sections")
    if "yolo" not in data and ("ssd_anchors" not in data or "tensors_to_detections" not in data):
        raise error(f"{where}: an SSD decoder needs ssd_anchors and tensors_to_detections (or give yolo)")
    decoder = Decoder(data)
    if decoder.kind == "ssd":
        _check_ssd(decoder, where, error)
    return decoder


def _check_ssd(decoder: Decoder, where: str, error: type[Exception]) -> None:
    """The fields that constrain each other: the layers' lists, the coordinate layout, the anchor count."""
    a = lambda key, default=None: decoder.option("ssd_anchors", key, default)  # noqa: E731
    t = lambda key, default=None: decoder.option("tensors_to_detections", key, default)  # noqa: E731
    layers, strides = a("num_layers"), a("strides")
    if layers is None or strides is None or len(strides) != layers:
        raise error(f"{where}: ssd_anchors needs num_layers and one stride per layer (strides {strides!r}, "
                    f"num_layers {layers!r})")
    for key in ("feature_map_height", "feature_map_width"):
        if a(key) is not None and len(a(key)) != layers:
            raise error(f"{where}: ssd_anchors.{key} has {len(a(key))} entries for {layers} layers")
    if (a("feature_map_height") is None or a("feature_map_width") is None) and \
            (a("input_size_height") is None or a("input_size_width") is None):
        raise error(f"{where}: ssd_anchors needs input_size_height and input_size_width, or the feature map sizes")
    if a("aspect_ratios") is None and not a("reduce_boxes_in_lowest_layer", False) and \
            a("interpolated_scale_aspect_ratio", 1.0) <= 0:
        raise error(f"{where}: ssd_anchors gives no anchor per cell (no aspect_ratios and no interpolated one)")
    coords = t("num_coords", 4)
    if t("box_coord_offset", 0) + 4 > coords:
        raise error(f"{where}: tensors_to_detections.box_coord_offset {t('box_coord_offset')} leaves no room for 4 "
                    f"box values in num_coords {coords}")
    end = t("keypoint_coord_offset", 4) + t("num_keypoints", 0) * t("num_values_per_keypoint", 2)
    if t("num_keypoints", 0) and end > coords:
        raise error(f"{where}: tensors_to_detections keypoints end at value {end} (keypoint_coord_offset + "
                    f"num_keypoints x num_values_per_keypoint), past num_coords {coords}")
    if t("num_classes", 1) == coords:
        raise error(f"{where}: tensors_to_detections.num_classes equals num_coords ({coords}); edgelite tells the "
                    "box and score outputs apart by their last dimension")
    count = anchor_count(decoder)
    if count > MAX_ANCHORS or count < 1:
        raise error(f"{where}: ssd_anchors make {count} anchors (at most {MAX_ANCHORS})")


def anchor_count(decoder: Decoder) -> int:
    """How many anchors ``ssd_anchors`` generates (MediaPipe's SsdAnchorsCalculator), by arithmetic alone."""
    a = lambda key, default=None: decoder.option("ssd_anchors", key, default)  # noqa: E731
    strides, total, layer = a("strides"), 0, 0
    while layer < len(strides):
        per_cell, last = 0, layer
        while last < len(strides) and strides[last] == strides[layer]:
            lowest = last == 0 and a("reduce_boxes_in_lowest_layer", False)
            per_cell += 3 if lowest else len(a("aspect_ratios", [])) + (a("interpolated_scale_aspect_ratio", 1.0) > 0)
            last += 1
        rows = a("feature_map_height")[layer] if a("feature_map_height") else \
            math.ceil(a("input_size_height") / strides[layer])
        cols = a("feature_map_width")[layer] if a("feature_map_width") else \
            math.ceil(a("input_size_width") / strides[layer])
        total += int(rows) * int(cols) * per_cell
        layer = last
    return total


def yolo_split(output_shapes) -> tuple[int, int] | None:
    """(boxes' index, anchors) for a YOLO head split in two, [1, 4, N] and [1, C, N] (or [1, N, 4], [1, N, C]):
    two rank-3 outputs sharing the anchor count N, one of them 4 wide; None for anything else."""
    if len(output_shapes) != 2 or any(len(s) != 3 or s[0] != 1 for s in output_shapes):
        return None
    for anchors in set(output_shapes[0][1:]) & set(output_shapes[1][1:]):
        widths = [s[1] if s[2] == anchors else s[2] for s in output_shapes]
        if 4 in widths and anchors > 1:
            return widths.index(4), anchors
    return None


def check_fit(decoder: Decoder, output_shapes: list[tuple[int, ...]], where: str,
              error: type[Exception] = InputError) -> None:
    """A decoder that does not fit the model's outputs is one line naming the key and what the model has."""
    shapes = [list(s) for s in output_shapes]
    if decoder.kind == "yolo":
        one = len(output_shapes) == 1 and len(output_shapes[0]) == 3 and min(output_shapes[0][1:]) >= 1 and \
            max(output_shapes[0][1:]) >= 5
        if not (one or yolo_split(output_shapes) is not None):
            raise error(f"{where}: yolo decodes one [1, N, 4 + classes] output, or boxes [1, 4, N] and scores "
                        f"[1, classes, N] (either transposed); the model has {shapes}")
        return
    t = lambda key, default: decoder.option("tensors_to_detections", key, default)  # noqa: E731
    anchors = anchor_count(decoder)
    if t("num_boxes", anchors) != anchors:
        raise error(f"{where}: tensors_to_detections.num_boxes is {t('num_boxes', None)}, but ssd_anchors make "
                    f"{anchors} anchors")
    for key, last in (("num_coords", t("num_coords", 4)), ("num_classes", t("num_classes", 1))):
        matching = [s for s in output_shapes if s and s[-1] == last]
        if not matching:
            raise error(f"{where}: tensors_to_detections.{key} is {last}, but the model's outputs are {shapes}")
        if math.prod(matching[0]) != anchors * last:
            raise error(f"{where}: ssd_anchors make {anchors} anchors of {last} values ({key}), but the model's "
                        f"output is {list(matching[0])}")


def read(source, model_path: str | None = None) -> Decoder:
    """A Decoder from a file path, a dict or a Decoder; ``model_path`` marks a decoder embedded in that model's
    record (then a problem is a ModelError naming the model)."""
    if isinstance(source, Decoder):
        return source
    if model_path is not None:
        return parse(source, f"{model_path}: the decoder in its edgelite record", ModelError)
    if isinstance(source, dict):
        return parse(dict(source), "decoder")
    from edgelite.runtime.modelfile.files import describe
    raw = read_regular(source, "a decoder file", MAX_FILE_BYTES, InputError)
    return parse(raw, describe(source))
