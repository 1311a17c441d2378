"""Decoding and NMS against the invoke it follows, side by side in one run: MediaPipe's face detector
(896 anchors) on a real photo. Needs the mediapipe environment for the model file.

    .venv-runtime/bin/python benchmarks/detection.py [--json] [--out FILE]
"""
from __future__ import annotations

import argparse
import pathlib
import statistics
import subprocess
import tempfile

from common import emit, output_options

ROOT = pathlib.Path(__file__).resolve().parents[1]


def face_model() -> pathlib.Path:
    python = (ROOT / ".venv" / "edgelite-metadata-python").read_text().strip()
    where = subprocess.run([python, "-c", "import mediapipe, os; print(os.path.dirname(mediapipe.__file__))"],
                           capture_output=True, text=True, check=True).stdout.strip()
    return pathlib.Path(where) / "modules" / "face_detection" / "face_detection_short_range.tflite"


def main() -> None:
    import skimage.data
    from PIL import Image

    from edgelite.runtime.tasks.task import Detector
    parser = argparse.ArgumentParser(description=__doc__)
    output_options(parser, "detection")
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    photo = pathlib.Path(tempfile.mkdtemp()) / "astronaut.png"
    Image.fromarray(skimage.data.astronaut()).save(photo)
    detector = Detector(face_model(), decoder=ROOT / "examples" / "decoders" / "face_detection_short_range.json",
                        threads=1, trust=True)
    timings = [detector.detect(photo).timings_ms for _ in range(args.runs)]
    invoke = statistics.median(t["invoke"] for t in timings)
    decode = statistics.median(t["boxes+nms"] for t in timings)
    result = {"invoke_ms": invoke, "decode_nms_ms": decode, "decode_over_invoke": decode / invoke, "runs": args.runs}
    emit(result, args, lambda r: print(f"face detector, 896 anchors, 1 thread: invoke {r['invoke_ms']:.3f} ms, "
                                       f"decode + NMS {r['decode_nms_ms']:.3f} ms ({r['decode_over_invoke']:.2f}x of invoke)"))


if __name__ == "__main__":
    main()
