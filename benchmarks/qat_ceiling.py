"""How far the QAT rung's fine-tune can move fer's mini-XCEPTION at all: fitted on the very faces it is then
measured on (needs the full .venv and the models extra).

The 5 folds of benchmarks/qat.py (one seed; per channel; 50 of the fold's 160 training faces calibrate): PTQ,
the rung as it ships (fine-tuned on the 160 training faces, measured on the 40 held out), and the rung fine-tuned
on the 40 held-out faces themselves, 40 epochs, no views, the epoch kept on those same faces: with the weights
free (``fitted-free``) and pulled towards the float ones as the rung pulls them (``fitted-pulled``). No method
that learns from other faces should do better on a face than one that fitted that face: the fitted rows bound
what more faces of the same kind could give this fine-tune. Issue 22's goal is +3 dB over PTQ, half its flips.

    .venv/bin/python benchmarks/qat_ceiling.py [--seed 0] [--json] [--out FILE]
"""
from __future__ import annotations

import argparse
import pathlib
import shutil
import tempfile

import numpy as np
from common import emit, fer_model, output_options
from qat import folds

FITTED = {"held_out_share": 0.0, "epochs": 40, "augmented_copies": 0}   # every held-out face fitted and judged
# row -> (the faces it fine-tunes on, its QatOptions)
ROWS = {"rung": ("train", {}), "fitted-free": ("held", {**FITTED, "anchor": 0.0}), "fitted-pulled": ("held", FITTED)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=0)
    output_options(parser, "qat_ceiling")
    args = parser.parse_args()
    from edgelite.converters import images
    from edgelite.converters.ladder import climb as ladder
    from edgelite.converters.ladder import float_layers as recovery
    from edgelite.converters.ladder import qat
    from edgelite.converters.quantize import modes as quantization
    from edgelite.converters.reporting import Reporter
    from edgelite.converters.user_model import load_model
    from edgelite.converters.verify import cost as verify
    from edgelite.runtime.modelfile.input_spec import InputSpec
    loaded = load_model(fer_model())
    spec = InputSpec(64, 64, 1, "grayscale", mean=(127.5,), std=(127.5,))
    reporter, options = Reporter(), quantization.QuantizeOptions("int8", "float32", False)
    runs: dict[str, list] = {name: [] for name in ("ptq", *ROWS)}
    work = pathlib.Path(tempfile.mkdtemp())
    try:
        split = [tuple(images.load(images.scan(d, d.name), spec, reporter, d.name)[0] for d in pair)
                 for pair in folds(work)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for fold, (train, held) in enumerate(split):
        faces = {"train": images.float_batch(train, spec), "held": images.float_batch(held, spec)}
        pixels = faces["train"]
        calibration = pixels[np.random.default_rng(args.seed).permutation(len(pixels))[:50]]
        reference = verify.float_outputs(loaded, held, spec)[0]

        def measured(model_bytes: bytes, reference=reference, held=held) -> dict:
            out = verify.tflite_outputs(model_bytes, held, spec, reporter)[0][0]
            return {"snr_db": verify.fidelity(reference, out)["snr_db"],
                    "flips": int(np.sum(np.argmax(out, -1) != np.argmax(reference, -1)))}
        runs["ptq"].append(measured(recovery.Calibrated(loaded, options, calibration, limit=50).quantized(options)))
        for name, (fitted, tune) in ROWS.items():
            model_bytes, report = ladder.qat_model(loaded, options, faces[fitted], calibration, qat.QatOptions(**tune),
                                                   seed=args.seed)
            runs[name].append({**measured(model_bytes), "kept_epoch": report["kept_epoch"]})
        print(f"fold {fold}: " + "  ".join(f"{n} {r[-1]['snr_db']:.2f} dB" for n, r in runs.items()), flush=True)
    rows = {name: {"snr_db": float(np.mean([r["snr_db"] for r in rs])), "flips": sum(r["flips"] for r in rs),
                   "snr_gain_db": float(np.mean([r["snr_db"] - p["snr_db"] for r, p in zip(rs, runs["ptq"])]))}
            for name, rs in runs.items()}
    emit({"rows": rows, "folds": runs, "seed": args.seed, "faces": {"train": len(train), "held_out": len(held)},
          "options": ROWS}, args, render)


def render(result: dict) -> None:
    print(f"fer mini-XCEPTION, per channel, seed {result['seed']}; 5 folds of {result['faces']['held_out']} held-out "
          "LFW faces (SNR against the float model, mean over folds; flips summed)")
    for name, row in result["rows"].items():
        print(f"  {name:<14} {row['snr_db']:5.2f} dB ({row['snr_gain_db']:+.2f} over PTQ)  {row['flips']:3d} flips")


if __name__ == "__main__":
    main()
