"""Train a small digit classifier on real scans the way edge models are made, then convert it.

    .venv/bin/python examples/train_and_convert.py [--out out/] [--epochs 6] [--prune 0.5]

Data: the 1,797 real 8x8 digit scans edgelite ships (scikit-learn's copy; no download), written as PNG folders
(train/ and eval/, one subfolder per class) and decoded by edgelite.runtime's preprocessing,
the code the device runs, into 32x32 RGB.

Techniques, each measured on a validation split carved from train/ (eval/ is only for the end):
1. augmentation: small shifts and rotations (no flips: a mirrored 3 is not a 3);
2. a larger teacher CNN trained on the augmented data;
3. transfer learning from a shared backbone: the student starts from the teacher's first
   convolution block and adds a much smaller head;
4. distillation: the student also learns the teacher's softened outputs; kept only if it
   beats the same student trained on labels alone;
5. edgelite prunes the student to --prune sparsity while fine-tuning, quantizes it to full
   int8 calibrated on train/, and verifies top-1 on eval/ against the student in float.

Prints each step's figures and writes out/digits.keras and out/digits_int8.tflite, whose
embedded record makes `edgelite predict out/digits_int8.tflite img.png` need no flags.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


def write_image_folders(root: pathlib.Path):
    """The digit scans as PNG files in root/train/<digit>/ and root/eval/<digit>/ (the example edgelite ships:
    ``edgelite example digits DIR --no-model`` writes the same)."""
    from edgelite.examples.digits import write_folders
    written = write_folders(root)
    return written.train, written.eval


def build_model():
    """The plain small CNN (also what tests/fixtures/build_models.py trains)."""
    import keras
    return keras.Sequential([
        keras.Input((32, 32, 3)),
        keras.layers.Rescaling(1.0 / 255),          # the model takes 0..255 pixels; edgelite detects this
        keras.layers.Conv2D(16, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(32, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])


def augmenter():
    import keras
    return keras.Sequential([keras.layers.RandomTranslation(0.1, 0.1, seed=0),
                             keras.layers.RandomRotation(0.05, seed=0)])


def backbone():
    import keras
    return keras.Sequential([keras.layers.Rescaling(1.0 / 255), keras.layers.Conv2D(32, 3, activation="relu"),
                             keras.layers.MaxPooling2D()], name="backbone")


def build_teacher():
    import keras
    inputs = keras.Input((32, 32, 3))
    x = augmenter()(inputs)
    x = backbone()(x)
    x = keras.layers.Conv2D(64, 3, activation="relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(keras.layers.Dropout(0.2)(x))
    x = keras.layers.Dense(128, activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(10)(x), name="teacher")  # logits


def build_student(teacher):
    """Starts from the teacher's backbone (weights copied: transfer learning) with a small head;
    the backbone is fine-tuned too, since digits are all this model has to see."""
    import keras
    shared = backbone()
    shared.build((None, 32, 32, 3))
    shared.set_weights(teacher.get_layer("backbone").get_weights())
    inputs = keras.Input((32, 32, 3))
    x = shared(inputs)
    x = keras.layers.Conv2D(16, 3, activation="relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x), name="student")


def distill(student, teacher, x, y, epochs: int, temperature: float = 4.0, alpha: float = 0.3):
    """Trains ``student`` on labels and the teacher's softened outputs (Hinton et al.)."""
    import keras
    import tensorflow as tf
    optimizer = keras.optimizers.Adam(1e-3)
    ce = keras.losses.SparseCategoricalCrossentropy()
    kl = keras.losses.KLDivergence()
    augment = augmenter()
    data = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=0).batch(32)
    for _ in range(epochs):
        for xb, yb in data:
            xb = augment(xb, training=True)
            soft_teacher = tf.nn.softmax(teacher(xb, training=False) / temperature)
            with tf.GradientTape() as tape:
                probs = student(xb, training=True)
                soft_student = tf.nn.softmax(tf.math.log(probs + 1e-8) / temperature)
                loss = alpha * ce(yb, probs) + (1 - alpha) * temperature ** 2 * kl(soft_teacher, soft_student)
            grads = tape.gradient(loss, student.trainable_variables)
            optimizer.apply_gradients(zip(grads, student.trainable_variables))


def accuracy(model, x, y) -> float:
    out = model.predict(x, verbose=0)
    return float((out.argmax(1) == y).mean())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("out"))
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--prune", type=float, default=0.5)
    args = parser.parse_args()

    import keras

    import edgelite
    from edgelite.examples.digits import folder_pixels

    args.out.mkdir(parents=True, exist_ok=True)
    train_dir, eval_dir = write_image_folders(args.out)
    keras.utils.set_random_seed(0)
    x, y = folder_pixels(train_dir)  # 32x32 RGB, as the device will see them
    val = np.random.default_rng(1).permutation(len(x))[: len(x) // 6]
    fit = np.setdiff1d(np.arange(len(x)), val)

    teacher = build_teacher()
    teacher.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    teacher.fit(x[fit], y[fit], epochs=args.epochs, batch_size=32, verbose=0)
    print(f"teacher ({teacher.count_params()} parameters): validation top-1 {accuracy(teacher, x[val], y[val]):.4f}")

    plain = build_student(teacher)
    plain.compile("adam", "sparse_categorical_crossentropy")
    _fit_augmented(plain, augmenter(), x[fit], y[fit], args.epochs)
    distilled = build_student(teacher)
    distill(distilled, teacher, x[fit], y[fit], args.epochs)
    plain_acc, distilled_acc = accuracy(plain, x[val], y[val]), accuracy(distilled, x[val], y[val])
    student = distilled if distilled_acc > plain_acc else plain
    print(f"student ({student.count_params()} parameters, backbone shared with the teacher): validation top-1 "
          f"{plain_acc:.4f} from labels, {distilled_acc:.4f} distilled; keeping the "
          f"{'distilled' if student is distilled else 'label-trained'} one")

    keras_path = args.out / "digits.keras"
    student.save(keras_path)
    result = edgelite.convert(keras_path, output=args.out / "digits_int8.tflite", calibration=train_dir,
                              eval_data=eval_dir, prune=args.prune or None, train_data=train_dir if args.prune else None,
                              epochs=3)
    v = result.verification
    print(f"wrote {result.output}: {result.output_size_bytes} bytes "
          f"({result.output_size_bytes / result.input_size_bytes:.2f}x of the .keras file), "
          f"{100 * result.weight_sparsity['overall']:.0f}% of conv/dense weights zero")
    print(f"top-1 on {v.images} held-out scans: float {100 * v.float_top1:.2f}%, pruned int8 "
          f"{100 * v.tflite_top1:.2f}% (drop {v.drop_points:.2f} points), agreement {100 * v.agreement:.2f}%")
    return 0 if result.within_budget else 1


def _fit_augmented(model, augment, x, y, epochs: int):
    import tensorflow as tf
    data = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=0).batch(32)
    model.fit(data.map(lambda a, b: (augment(a, training=True), b)), epochs=epochs, verbose=0)


if __name__ == "__main__":
    sys.exit(main())
