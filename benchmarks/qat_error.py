"""Why QAT recovers little on fer's mini-XCEPTION: where its int8 error comes from, and whether the fine-tune's
gain on the faces it trained on reaches faces it did not see (needs the full .venv and the models extra).

One fold of benchmarks/qat.py (160 LFW faces to calibrate and train on, 40 held out):
- the simulated int8 error (qat_simulation.simulated_error, the QAT rung's own simulation) with
  weights and activations rounded, weights alone, activations alone, and the costliest activation tensors;
- the converted full-int8 model's SNR against the float model on the training faces and on the held-out
  faces: PTQ as TensorFlow's converter makes it (its calibrated input step: every pixel on a rounding tie),
  PTQ as edgelite makes it (input_step.py), and the QAT rung's model (ladder.qat_model); and the PTQ model's
  held-out SNR as the rung's simulation computes it, beside TFLite's (how far the simulation is from int8).

    .venv/bin/python benchmarks/qat_error.py [--json] [--per-tensor]
"""
from __future__ import annotations

import argparse
import math
import pathlib
import shutil
import tempfile

import qat_simulation
from common import emit, fer_model, output_options, save_lfw_faces


def db(share: float) -> float:
    """An error share of the outputs' variance as decibels of signal over error."""
    return -10 * math.log10(max(share, 1e-20))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--per-tensor", action="store_true")
    output_options(parser, "qat_error")
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
    work = pathlib.Path(tempfile.mkdtemp())
    try:
        train_dir, held_dir = work / "train", work / "held"
        train_dir.mkdir()
        held_dir.mkdir()
        save_lfw_faces(lambda rank, index: held_dir if rank % 5 == 0 else train_dir)
        loaded = load_model(fer_model())
        spec = InputSpec(64, 64, 1, "grayscale", mean=(127.5,), std=(127.5,))
        reporter = Reporter()
        train, _ = images.load(images.scan(train_dir, "train"), spec, reporter, "train")
        held, _ = images.load(images.scan(held_dir, "held"), spec, reporter, "held")
        pixels = images.float_batch(train, spec)
        error = qat_simulation.simulated_error(loaded, pixels, args.per_tensor)
        options = quantization.QuantizeOptions("int8", "float32", args.per_tensor)
        calibration = pixels[:50]

        faces = {"train": train, "held_out": held}
        floats = {name: verify.float_outputs(loaded, x, spec)[0] for name, x in faces.items()}  # the original model

        def measured(model_bytes: bytes) -> dict[str, float]:
            return {name: verify.fidelity(floats[name], verify.tflite_outputs(model_bytes, x, spec, reporter)[0][0])
                    ["snr_db"] for name, x in faces.items()}
        held_pixels = images.float_batch(held, spec)
        simulated = verify.fidelity(floats["held_out"], qat_simulation.simulated_outputs(loaded, held_pixels, calibration,
                                                                              args.per_tensor)[0])["snr_db"]
        tied = measured(quantization.convert(loaded, options, calibration))
        ptq = measured(recovery.Calibrated(loaded, options, calibration, limit=len(calibration)).quantized(options))
        model_bytes, report = ladder.qat_model(loaded, options, pixels, calibration,
                                               qat.QatOptions(per_tensor=args.per_tensor), seed=0)
        tuned = measured(model_bytes)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = {"simulated_error": error.to_dict(), "ptq_tied_input_snr_db": tied, "ptq_snr_db": ptq,
              "qat_snr_db": tuned, "simulated_ptq_snr_db": {"held_out": simulated}, "qat_loss": {"before": report["loss_before"], "after": report["loss_after"]},
              "per_tensor": args.per_tensor, "faces": {"train": len(train), "held_out": len(held)}}
    emit(result, args, render)


def render(result: dict) -> None:
    error, ptq, tuned, loss = (result["simulated_error"], result["ptq_snr_db"], result["qat_snr_db"],
                               result["qat_loss"])
    granularity = "per tensor" if result["per_tensor"] else "per channel"
    print(f"fer mini-XCEPTION, weights {granularity}; {result['faces']['train']} LFW faces to calibrate and train on, "
          f"{result['faces']['held_out']} held out")
    print("simulated int8 error on the training faces (share of the outputs' variance, as SNR dB):")
    for label, key in (("everything", "both"), ("input alone", "input"),
                       ("input, calibration's step", "input_calibrated"), ("weights alone", "weights"),
                       ("activations alone", "activations")):
        print(f"  {label:<26} {error[key]:.5f} ({db(error[key]):.1f} dB)")
    for name, share in error["worst_activations"]:
        print(f"    {name:<30} alone {share:.5f}")
    print(f"QAT loss (simulated, training faces) {loss['before']:.5f} -> {loss['after']:.5f} "
          f"({db(loss['before']):.1f} -> {db(loss['after']):.1f} dB)")
    print("converted full int8, SNR against the float model (dB):")
    print(f"  simulated as the QAT rung simulates it, held out: {result['simulated_ptq_snr_db']['held_out']:.1f} "
          f"(TFLite's PTQ model: {result['ptq_snr_db']['held_out']:.1f})")
    tied = result["ptq_tied_input_snr_db"]
    for name in ("train", "held_out"):
        print(f"  {name:<9} PTQ, calibration's input step {tied[name]:.1f}  PTQ {ptq[name]:.1f}  QAT {tuned[name]:.1f} "
              f"({tuned[name] - ptq[name]:+.1f})")


if __name__ == "__main__":
    main()
