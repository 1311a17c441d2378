"""A device program: classify every new image in a folder (or camera frames), log each result.

    python examples/device_app.py MODEL.tflite --watch incoming/ [--top-k 3] [--interval 0.2]
    python examples/device_app.py MODEL.tflite --camera 0          # OpenCV or picamera2, when installed

What it shows: it imports only ``edgelite.runtime`` (no TensorFlow on the device); it loads
the model once with the delegate it is told (``auto`` picks the Edge TPU for ``_edgetpu``
models and falls back to the CPU twin); each image's preprocessing comes from the model's own
record; one bad file or frame is logged and skipped, never fatal; SIGTERM or Ctrl-C stops it
cleanly after the current image, with a summary line. Output is one JSON object per line, ready
for a log shipper.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time

from edgelite.runtime import EdgeliteError, load

EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")


class Stop:
    """Set by SIGTERM/SIGINT; the loops check it between images."""

    def __init__(self):
        self.requested = False
        signal.signal(signal.SIGTERM, self._set)
        signal.signal(signal.SIGINT, self._set)

    def _set(self, signum, frame):
        self.requested = True


def log(event: str, **fields):
    print(json.dumps({"event": event, "time": round(time.time(), 3), **fields}), flush=True)


def classify(clf, source, name: str, top_k: int, stats: dict):
    try:
        result = clf.classify(source, top_k)
    except EdgeliteError as exc:  # a bad file or frame: report it and go on
        stats["errors"] += 1
        log("error", source=name, error=str(exc))
        return
    stats["classified"] += 1
    log("result", source=name, classes=[c.to_dict() for c in result.classes], delegate=result.delegate,
        latency_ms={k: round(v, 3) for k, v in result.timings_ms.items()})


def watch(clf, folder: str, top_k: int, interval: float, stop: Stop, stats: dict):
    """Polls the folder: portable (no inotify needed) and cheap at these rates. A new file is taken once its
    size is the same at two polls in a row, so one that a camera or a copy is still writing is not read half
    written (and reported broken)."""
    seen = set(os.listdir(folder))
    log("watching", folder=folder, existing=len(seen))
    growing: dict[str, int] = {}   # new files not taken yet, and the size each had at the last poll
    while not stop.requested:
        for name in sorted(set(os.listdir(folder)) - seen):
            try:
                size = os.path.getsize(os.path.join(folder, name))
            except OSError:  # gone again
                growing.pop(name, None)
                continue
            if growing.get(name) != size:
                growing[name] = size
                continue
            seen.add(name)
            del growing[name]
            if name.lower().endswith(EXTENSIONS) and not stop.requested:
                classify(clf, os.path.join(folder, name), name, top_k, stats)
        time.sleep(interval)


def camera_frames(index: int):
    """RGB frames from picamera2 or OpenCV, whichever is installed."""
    try:
        from picamera2 import Picamera2
        cam = Picamera2()
        cam.configure(cam.create_preview_configuration(main={"format": "RGB888"}))
        cam.start()
        while True:
            yield cam.capture_array()
    except ImportError:
        pass
    try:
        import cv2
    except ImportError:
        raise SystemExit("--camera needs picamera2 or opencv-python-headless installed") from None
    cap = cv2.VideoCapture(index)
    while True:
        ok, frame = cap.read()
        yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB) if ok else None


def run_camera(clf, index: int, top_k: int, stop: Stop, stats: dict):
    for n, frame in enumerate(camera_frames(index)):
        if stop.requested:
            break
        if frame is None:
            stats["errors"] += 1
            log("error", source=f"frame {n}", error="camera returned no frame")
            continue
        classify(clf, frame, f"frame {n}", top_k, stats)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--watch", metavar="FOLDER")
    source.add_argument("--camera", type=int, metavar="INDEX")
    parser.add_argument("--top-k", type=int, default=3)
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between folder scans")
    parser.add_argument("--delegate", default="auto")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    stop = Stop()
    try:
        clf = load(args.model, delegate=args.delegate, threads=args.threads)
    except EdgeliteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    log("started", model=clf.path, delegate=clf.delegate.to_dict(), input=clf.input_spec.to_dict())
    stats = {"classified": 0, "errors": 0}
    if args.watch:
        if not os.path.isdir(args.watch):
            print(f"error: {args.watch}: not a folder", file=sys.stderr)
            return 1
        watch(clf, args.watch, args.top_k, args.interval, stop, stats)
    else:
        run_camera(clf, args.camera, args.top_k, stop, stats)
    log("stopped", **stats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
