"""What compression cost, measured: the float model and the .tflite on the same images.

Both sides start from the same decoded pixels; each is normalized for its own input
tensor by the runtime's Normalizer, so the only difference measured is the conversion.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from edgelite.converters.images import float_batch
from edgelite.converters.reporting import Reporter
from edgelite.converters.user_model import LoadedModel
from edgelite.runtime.interpreter.model import Model
from edgelite.runtime.modelfile.metadata import InputSpec
from edgelite.runtime.tasks.compare import snr_db, wilson
from edgelite.runtime.tasks.postprocess import dequantize, output_is_probability, softmax
from edgelite.runtime.tasks.preprocess import InputQuantization, Normalizer

BATCH = 64


RECORD_TASKS = {"classify": "image-classification", "detect": "object-detection", "embed": "image-embedding",
                "raw": "raw"}


@dataclass(frozen=True)
class OutputFidelity:
    """One output of the .tflite against the same output of the float model, on the same images."""

    name: str              # the .tflite output tensor (what the device sees)
    shape: tuple[int, ...]
    snr_db: float          # float output power over the power of the difference; inf when identical
    cosine: float          # mean cosine similarity, image by image
    mean_abs_diff: float
    max_abs_diff: float
    source: str = ""       # the float model's name for this output
    original_snr_db: float | None = None  # pruned models: against the user's original model (all compression cost)
    snr_interval_db: tuple[float, float] | None = None  # where unseen images' SNR lies (``snr_interval``)

    @property
    def snr_low_db(self) -> float:
        """The SNR the verdict uses: the interval's lower end, so a dozen lucky images cannot pass a model."""
        return self.snr_db if self.snr_interval_db is None else min(self.snr_db, self.snr_interval_db[0])

    def to_dict(self) -> dict:
        data = {**asdict(self), "shape": list(self.shape), "snr_db": _finite(self.snr_db),
                "snr_interval_db": [_finite(v) for v in self.snr_interval_db] if self.snr_interval_db else None}
        if self.original_snr_db is None:
            del data["original_snr_db"]
        else:
            data["original_snr_db"] = _finite(self.original_snr_db)
        return data


@dataclass(frozen=True)
class Verification:
    """Figures from one comparison; accuracies are fractions, the drop is in points.

    Every output is compared (``outputs``); the task metric sits on top: top-1 or agreement for a
    classifier, nearest-neighbour agreement for an embedder, nothing more for raw outputs."""

    images: int
    data: str                  # "eval-data" or "held-out calibration images"
    float_top1: float | None
    tflite_top1: float | None
    agreement: float | None    # classifier: same top-1; embedder: same nearest neighbour; raw: None
    mean_abs_diff: float
    max_abs_diff: float
    snr_db: float = math.inf        # the worst output's SNR
    cosine: float = 1.0             # the worst output's mean cosine similarity
    near_ties: float | None = None  # share of images whose float top-1 margin is below the output's step
    #                                 (measured where the output is quantized probabilities)
    task: str = "classify"
    outputs: tuple[OutputFidelity, ...] = ()
    pitfalls: tuple[str, ...] = ()  # known quantization traps seen in the outputs, one sentence each
    detection: dict | None = None   # detect: float detections, matched at IoU >= 0.5, mean IoU, score difference
    min_cosine: float | None = None  # embed: the least similar image's embedding against the float model's
    flips: dict | None = None       # classify without labels: every flip, split by the float model's margin

    @property
    def agreement_interval(self) -> tuple[float, float] | None:
        """95% Wilson interval of the agreement: with 50 images one flip is 2 points, and this shows it."""
        return None if self.agreement is None else wilson(round(self.agreement * self.images), self.images)

    @property
    def drop_points(self) -> float:
        """Task metric lost, in points, as the verdict counts it: top-1 with labels; without labels a classifier's
        confident flips (``flips``: a flip where the float model's top two are within the outputs' measured noise
        is reported, not counted); else disagreement; 0 for raw outputs (SNR decides)."""
        if self.float_top1 is not None and self.tflite_top1 is not None:
            return 100.0 * (self.float_top1 - self.tflite_top1)
        if self.flips is not None:
            return 100.0 * self.flips["confident"] / max(self.images, 1)
        return 0.0 if self.agreement is None else 100.0 * (1.0 - self.agreement)

    @property
    def drop_basis(self) -> str:
        if self.float_top1 is not None:
            return "top-1 on labelled images"
        if self.flips is not None:
            return (f"confident flips against the float model; {self.flips['near_tie']} more on near ties, float "
                    f"margin under {self.flips['band']:.3f}, within the outputs' noise: measured, at most what the SNR "
                    "budget allows")
        return {"classify": "disagreement with the float model", "embed": "nearest neighbours that changed",
                "detect": "float detections not matched at IoU >= 0.5",
                "raw": "no task metric: every output's SNR decides"}[self.task]

    def budget_snr(self, output: OutputFidelity) -> float:
        """The SNR the budget holds an output to: against the original model for a pruned model's raw outputs
        (no task metric sees what pruning did to them), else against the model that was converted."""
        if self.task == "raw" and output.original_snr_db is not None:
            return output.original_snr_db
        return output.snr_low_db

    @property
    def budget_snr_db(self) -> float:
        return min((self.budget_snr(o) for o in self.outputs), default=math.inf)

    def within(self, budget: float, min_snr_db: float) -> bool:
        """The task metric within ``budget`` points and every output at or above ``min_snr_db``."""
        return self.drop_points <= budget and self.budget_snr_db >= min_snr_db

    def to_dict(self) -> dict:
        interval = self.agreement_interval
        return {**asdict(self), "snr_db": _finite(self.snr_db), "drop_points": self.drop_points,
                "drop_basis": self.drop_basis, "agreement_interval": list(interval) if interval else None,
                "outputs": [o.to_dict() for o in self.outputs]}


@dataclass(frozen=True)
class Budget:
    """What a model must hold to be called within budget: the task metric and every output's SNR."""

    max_drop_points: float = 1.0
    min_output_snr_db: float = 20.0

    def holds(self, v: Verification) -> bool:
        return v.within(self.max_drop_points, self.min_output_snr_db)

    def rank(self, v: Verification) -> tuple:
        """Sorts candidates best first: within budget, then the smaller drop, then the higher worst SNR."""
        return (not self.holds(v), v.drop_points, -v.budget_snr_db)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None  # JSON has no infinity: None means identical outputs


def fidelity(reference: np.ndarray, converted: np.ndarray) -> dict:
    """SNR in dB and mean cosine similarity of converted against reference outputs (rows are images)."""
    ref = reference.reshape(len(reference), -1).astype(np.float64)
    out = converted.reshape(len(converted), -1).astype(np.float64)
    snr = snr_db(float(np.mean(ref ** 2)), float(np.mean((ref - out) ** 2)))
    norms = np.linalg.norm(ref, axis=1) * np.linalg.norm(out, axis=1)
    cos = np.where(norms > 0, np.sum(ref * out, axis=1) / np.where(norms > 0, norms, 1), 1.0)
    return {"snr_db": snr, "cosine": float(np.mean(cos))}


SNR_CONFIDENCE = 0.95   # one-sided t-margin of an output's mean noise power
SNR_MARGINS = 3.0       # the verdict's noise power: the mean plus this many of those margins
TIE_SIGMAS = 3.0        # a flip counts when the float margin exceeds this many noise sigmas of a difference


def snr_interval(reference: np.ndarray, converted: np.ndarray, point: float) -> tuple[float, float]:
    """Where the SNR on images like these, but never seen, may lie: (the SNR the verdict judges, an optimistic
    end), from the per-image noise power's mean and its t-margin (``SNR_CONFIDENCE``, one-sided). ``point`` is
    the SNR measured on these images (``fidelity``), which the interval always holds.

    The lower end puts the noise at its mean plus ``SNR_MARGINS`` t-margins, because per-image noise is
    heavy-tailed: on MTCNN's ONet box head the worst 5 of 100 real faces carried 31% of it, so a dozen or
    twenty held-out images often miss the faces that decide the SNR. Chosen on real data (300 random splits of
    100 LFW faces, 20 held out, 40 others unseen): ONet's int8 box head, 25.2 dB over all 100 faces, was passed
    at a 25 dB budget by a bootstrap's 90% lower end 142 times (69 of them under 25 dB on the 40 unseen faces),
    by one margin 145 times, by three margins 2 times (1 wrong); fer's int8 emotion CNN (26.7 dB) kept a 20 dB
    budget in 300 of 300 with three margins."""
    ref = reference.reshape(len(reference), -1).astype(np.float64)
    out = converted.reshape(len(converted), -1).astype(np.float64)
    signal, noise = float(np.mean(np.sum(ref ** 2, 1))), np.sum((ref - out) ** 2, 1)
    n = len(noise)
    if n < 3 or not noise.any() or signal <= 0:
        return point, point
    z = statistics.NormalDist().inv_cdf(SNR_CONFIDENCE)
    t = z + (z ** 3 + z) / (4 * (n - 1)) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * (n - 1) ** 2)  # Student's t
    margin = t * float(noise.std(ddof=1)) / math.sqrt(n)
    mean = float(noise.mean())
    low = 10 * math.log10(signal / (mean + SNR_MARGINS * margin))
    high = 10 * math.log10(signal / (mean - margin)) if mean > margin else math.inf
    return min(low, point), max(high, point)


def flip_evidence(reference: np.ndarray, converted: np.ndarray, min_snr_db: float = 20.0) -> dict:
    """Flips of top-1 split by what they say. Noise of sigma per output (in probability space) flips an image whose
    float top two are closer than ``TIE_SIGMAS`` x sqrt(2) x sigma; sigma is the noise measured, but never more
    than the noise the SNR budget allows (so a wrecked model cannot excuse its own flips). A flip inside that
    band is the noise the SNR already judges; a flip of a wider margin is a changed decision, and only those
    count against the accuracy budget."""
    flipped = reference.argmax(1) != converted.argmax(1)
    measured = float(np.sqrt(np.mean((reference.astype(np.float64) - converted) ** 2)))
    with np.errstate(divide="ignore"):   # a budget far below zero (a sweep's -1e9: none) allows any noise: inf
        allowed = float(np.sqrt(np.mean(reference.astype(np.float64) ** 2) / 10 ** (min_snr_db / 10)))
    band = TIE_SIGMAS * math.sqrt(2) * min(measured, allowed)
    top2 = np.sort(reference, axis=1)[:, -2:] if reference.shape[1] > 1 else np.zeros((len(reference), 2))
    near = (top2[:, 1] - top2[:, 0]) < band
    return {"all": int(flipped.sum()), "confident": int((flipped & ~near).sum()), "near_tie": int((flipped & near).sum()),
            "band": band, "sigma": measured}


def near_tie_share(reference: np.ndarray, step: float) -> float | None:
    """Images whose top-1 beats the runner-up by less than one output quantization step flip for free."""
    if reference.shape[1] < 2 or step <= 0:
        return None
    top2 = np.sort(reference, axis=1)[:, -2:]
    return float(np.mean(top2[:, 1] - top2[:, 0] < step))


def float_outputs(loaded: LoadedModel, pixels: np.ndarray, spec: InputSpec) -> list[np.ndarray]:
    """Every output of the float model on the images, in batches."""
    parts: list[list[np.ndarray]] = []
    for start in range(0, len(pixels), BATCH):
        parts.append(loaded.predict_all(float_batch(pixels[start:start + BATCH], spec)))
    return [np.concatenate([p[i] for p in parts]).astype(np.float32) for i in range(len(parts[0]))]


def tflite_outputs(model_bytes: bytes, pixels: np.ndarray, spec: InputSpec, reporter: Reporter):
    """Every output of the .tflite on the images (dequantized), the output names, and their steps."""
    model = Model(model_bytes, delegate="xnnpack", fallback=True)
    info = model.inputs[0]
    norm = Normalizer(spec, InputQuantization(info.dtype, info.scale, info.zero_point))
    x = np.empty(info.shape, info.dtype)
    rows: list[list[np.ndarray]] = [[] for _ in model.outputs]
    with reporter.progress("verifying", len(pixels)) as advance:
        for p in pixels:
            norm(p, x[0])
            for i, (raw, out) in enumerate(zip(model.run(x), model.outputs)):
                rows[i].append(dequantize(raw, out.scale, out.zero_point) if out.quantized else raw)
            advance(1)
    steps = [o.scale if o.quantized else 0.0 for o in model.outputs]
    return [np.concatenate(r).astype(np.float32) for r in rows], [o.name for o in model.outputs], steps


def match_outputs(reference: list[np.ndarray], converted: list[np.ndarray]) -> list[int]:
    """For each float output, the .tflite output that is the same tensor: same shape, then the closest
    (the converter may reorder outputs)."""
    free, order = set(range(len(converted))), []
    for ref in reference:
        same = [j for j in free if converted[j].shape == ref.shape]
        if not same:
            raise ValueError(f"no .tflite output has the shape {list(ref.shape[1:])} of a float output")
        best = min(same, key=lambda j: float(np.mean((converted[j] - ref) ** 2)))
        free.discard(best)
        order.append(best)
    return order


@dataclass(frozen=True)
class Reference:
    """The float side of every comparison, computed once: the ladder verifies many candidates against it."""

    outputs: list[np.ndarray]      # the user's original model: the task metric's reference
    direct: list[np.ndarray]       # the model that was converted (pruned, or the same): each output's fidelity
    names: tuple[str, ...]         # the original model's output names

    @classmethod
    def of(cls, original: LoadedModel, converted_from: LoadedModel | None, pixels: np.ndarray,
           spec: InputSpec, outputs: list[np.ndarray] | None = None) -> Reference:
        """``outputs``: the original model's outputs on ``pixels`` when already computed."""
        outputs = outputs if outputs is not None else float_outputs(original, pixels, spec)
        direct = outputs if converted_from is None else float_outputs(converted_from, pixels, spec)
        return cls(outputs, direct, original.output_names)

    def pruned_snr_db(self) -> tuple[str, float] | None:
        """(output name, SNR) of the output pruning changed most, the pruned float model against the original;
        None when nothing was pruned."""
        if self.direct is self.outputs:
            return None
        found = [(name, fidelity(ref, out)["snr_db"]) for name, ref, out in
                 zip(self.names or [str(i) for i in range(len(self.outputs))], self.outputs, self.direct)]
        return min(found, key=lambda f: f[1])

    def converted_top1(self, labels) -> float | None:
        """Top-1 of the converted float model alone (the pruned model before conversion)."""
        if labels is None:
            return None
        return float((self.direct[0].argmax(1) == np.asarray(labels)).mean())


def outputs_are_probabilities(model_bytes: bytes) -> bool:
    from edgelite.runtime.modelfile.tflite_file import parse
    graph = parse(model_bytes, "<converted>").main
    return output_is_probability(graph, graph.outputs[0])


def verify(floats: Reference, model_bytes: bytes, spec: InputSpec, pixels: np.ndarray, labels, data: str,
           reporter: Reporter, task: str = "classify", decoder: dict | None = None,
           min_snr_db: float = 20.0) -> Verification:
    """Every output against the float model, and the task's own metric on top.

    The task metric compares with the user's original float model, also when the .tflite was pruned,
    so the drop includes everything compression cost. Each output's fidelity (SNR, cosine,
    differences) compares with the model that was converted: pruning changes the outputs on
    purpose, quantization should not."""
    reference, direct = floats.outputs, floats.direct
    converted, names, steps = tflite_outputs(model_bytes, pixels, spec, reporter)
    order = match_outputs(reference, converted)
    converted, names, steps = [converted[j] for j in order], [names[j] for j in order], [steps[j] for j in order]
    sources = floats.names if len(floats.names) == len(names) else ("",) * len(names)
    outputs = tuple(_fidelity(name, ref, out, src) for name, ref, out, src in zip(names, direct, converted, sources))
    if direct is not reference:  # pruned: each head's total cost too, which only the task metric saw before
        outputs = tuple(replace(o, original_snr_db=fidelity(ref, out)["snr_db"])
                        for o, ref, out in zip(outputs, reference, converted))
    worst: dict[str, Any] = {"snr_db": min(o.snr_db for o in outputs), "cosine": min(o.cosine for o in outputs),
             "mean_abs_diff": max(o.mean_abs_diff for o in outputs), "max_abs_diff": max(o.max_abs_diff for o in outputs)}
    pitfalls = () if task == "classify" else tuple(  # one score vector is homogeneous by construction
        p for name, ref, step in zip(names, direct, steps) if (p := mixed_ranges(name, ref, step)))
    common: dict[str, Any] = {"images": len(pixels), "data": data, "task": task, "outputs": outputs,
                              "pitfalls": pitfalls, **worst}
    if task == "classify":
        return Verification(**common, **_classification(reference[0], converted[0], steps[0], labels, model_bytes,
                                                               min_snr_db))
    if task == "embed":
        return Verification(**common, float_top1=None, tflite_top1=None,
                            agreement=neighbour_agreement(reference[0], converted[0]),
                            min_cosine=min_cosine(reference[0], converted[0]))
    if task == "detect" and decoder is not None:
        found = detection_agreement(reference, converted, decoder)
        return Verification(**common, float_top1=None, tflite_top1=None, agreement=found["matched_share"],
                            detection=found)
    return Verification(**common, float_top1=None, tflite_top1=None, agreement=None)


def mixed_ranges(name: str, reference: np.ndarray, step: float) -> str | None:
    """One int8 tensor holding values of very different ranges (a detector's boxes in pixels beside its scores
    in [0, 1]): one step sized for the wide values leaves the narrow ones a handful of levels, or none."""
    if step <= 0 or reference.ndim < 2 or reference.shape[-1] < 2:
        return None
    columns = reference.reshape(-1, reference.shape[-1])
    spans = columns.max(0) - columns.min(0)
    narrow, wide = float(spans.min()), float(spans.max())
    if narrow < 4 * step and wide > 16 * max(narrow, step):
        return (f"output {name} holds values spanning {wide:.3g} in some positions and {narrow:.3g} in others in one "
                f"int8 tensor: its step of {step:.3g} leaves the narrow ones (scores beside boxes in pixels?) "
                f"{max(0, round(narrow / step))} level(s); split the output, or keep it in float (--io float32)")
    return None


def _fidelity(name: str, reference: np.ndarray, converted: np.ndarray, source: str) -> OutputFidelity:
    diff = np.abs(reference - converted)
    found = fidelity(reference, converted)
    return OutputFidelity(name, tuple(int(d) for d in reference.shape[1:]), found["snr_db"], found["cosine"],
                          float(diff.mean()), float(diff.max()), source,
                          snr_interval_db=snr_interval(reference, converted, found["snr_db"]))


def _classification(reference: np.ndarray, converted: np.ndarray, step: float, labels,
                    model_bytes: bytes, min_snr_db: float = 20.0) -> dict[str, Any]:
    """Top-1 of both (with labels), their agreement, and near ties, in probability space."""
    probabilities = outputs_are_probabilities(model_bytes)
    if not probabilities:
        reference, converted, step = softmax(reference), softmax(converted), 0.0  # a logit step is no margin
    ref_top, conv_top = reference.argmax(1), converted.argmax(1)
    truth = np.asarray(labels) if labels is not None else None
    return {"float_top1": float((ref_top == truth).mean()) if truth is not None else None,
            "tflite_top1": float((conv_top == truth).mean()) if truth is not None else None,
            "agreement": float((ref_top == conv_top).mean()), "near_ties": near_tie_share(reference, step),
            "flips": flip_evidence(reference, converted, min_snr_db) if truth is None else None}


def detection_agreement(reference: list[np.ndarray], converted: list[np.ndarray], sections: dict) -> dict:
    """Detections decoded from both models, image by image, matched greedily at IoU >= 0.5."""
    from edgelite.runtime.tasks import decoders
    from edgelite.runtime.tasks import detection as det
    decoder = decoders.parse(sections, "decoder")
    anchors = det.ssd_anchors(decoder) if decoder.kind == "ssd" else None
    total = matched = 0
    ious, score_diffs = [], []
    for i in range(len(reference[0])):
        ours = det.detections([r[i:i + 1] for r in reference], decoder, anchors)
        theirs = det.detections([c[i:i + 1] for c in converted], decoder, anchors)
        free = list(range(len(theirs.scores)))
        total += len(ours.scores)
        for box, score in zip(ours.boxes, ours.scores):
            if not free:
                break
            overlaps = det.iou(box, theirs.boxes[free])
            best = int(np.argmax(overlaps))
            if overlaps[best] >= 0.5:
                matched += 1
                ious.append(float(overlaps[best]))
                score_diffs.append(abs(float(score) - float(theirs.scores[free[best]])))
                free.pop(best)
    return {"float_detections": total, "matched": matched, "matched_share": matched / total if total else 1.0,
            "mean_iou": float(np.mean(ious)) if ious else None,
            "mean_score_diff": float(np.mean(score_diffs)) if score_diffs else None}


def min_cosine(reference: np.ndarray, converted: np.ndarray) -> float:
    ref = reference.reshape(len(reference), -1).astype(np.float64)
    out = converted.reshape(len(converted), -1).astype(np.float64)
    norms = np.maximum(np.linalg.norm(ref, axis=1) * np.linalg.norm(out, axis=1), 1e-12)
    return float(np.min(np.sum(ref * out, axis=1) / norms))


def neighbour_agreement(reference: np.ndarray, converted: np.ndarray) -> float:
    """Share of images whose nearest other image (cosine, within the set) is the same under both models."""
    def nearest(x: np.ndarray) -> np.ndarray:
        flat = x.reshape(len(x), -1)
        unit = flat / np.maximum(np.linalg.norm(flat, axis=1, keepdims=True), 1e-12)
        similarity = unit @ unit.T
        np.fill_diagonal(similarity, -np.inf)
        return similarity.argmax(1)
    return float((nearest(reference) == nearest(converted)).mean()) if len(reference) > 1 else 1.0
