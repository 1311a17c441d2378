"""Live video, side by side in one run (needs the full .venv: TensorFlow builds MobileNetV2 once, cached; PyAV
and OpenCV's headless build from the video and bench extras; MediaPipe from the metadata environment).

1. Decoders on the same 640x480 file: PyAV and OpenCV at full size, PyAV scaled near the model's input.
2. Live mode against the naive loop (read a frame, infer, repeat: a FIFO that never drops) on the same file
   replayed faster than the model can take it: latency percentiles, and the median latency of the last quarter
   of the run against the first (a backlog shows as growth), over --rounds runs, each split into the work on the
   frame and the wait before it.
3. Every-frame mode on the 640x480 file through int8 MobileNetV2, one inference thread, against the bare
   interpreter on ready tensors, in back-to-back pairs (the median pair's ratio).
4. MediaPipe's own LIVE_STREAM mode with its face detector against edgelite with the same model and decoder,
   same file, same pacing: frames processed and latency. Both decode a frame's packet before the frame's time and
   convert its pixels after it (OpenCV's grab, then retrieve; PyAV's decode, then to_ndarray), as a camera's
   driver hands over a decoded picture; latency counts from the frame's time. (Until this was fixed MediaPipe's
   side converted before the frame's time, and was spared a cost edgelite paid.)
5. Decoding as the bottleneck: a 640x480 file at 960 frames/s replayed through MobileNetV2 by a process pinned to
   one core at 2x, and on two cores beside a CPU-bound process at 1x; edgelite's live mode (only the frame
   processed is converted to RGB) against the same loop converting every decoded frame on the reader (what
   edgelite did before): latency, quarters, wall time against the source's duration, frames accounted for.
6. A hostile camera: an MJPEG server on 127.0.0.1 that sends five good frames, then a part claiming 2 GB and
   keeps sending; the CLI's peak resident memory (measured by a parent with no other child) and time to its
   one-line exit.
7. With --soak S: resident memory of a live run of S seconds, sampled each second (growth after the first
   minute).

    .venv/bin/python benchmarks/stream.py [--seconds 60] [--rounds 3] [--soak 600] [--json]
"""
from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys
import threading
import time

import numpy as np
from common import CACHE, emit, machine, output_options, verdict, written

from runtime import build_mobilenet, raw_interpreter

ROOT = pathlib.Path(__file__).resolve().parents[1]
DECODE_BOUND_SECONDS = 15.0  # of source at 960 frames/s
FACE_DECODER = ROOT / "examples" / "decoders" / "face_detection_short_range.json"


def make_video(path: pathlib.Path, seconds: float, fps: int = 30, size=(640, 480)) -> pathlib.Path:
    """Real photos (scikit-image) drifting across the frame, written with PyAV, cached."""
    if path.exists():
        return path
    import av
    import skimage.data
    from PIL import Image
    photos = [Image.fromarray(p).convert("RGB").resize((260, 260)) for p in
              (skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea())]
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for i in range(int(seconds * fps)):
            canvas = Image.new("RGB", size, (40, 40, 48))
            for k, photo in enumerate(photos):
                canvas.paste(photo, ((37 * i // 10 + 200 * k) % (size[0] - 100), (60 + 90 * k + 3 * i) % (size[1] - 200)))
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.asarray(canvas), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def decoders(video: pathlib.Path, spec) -> dict:
    import av
    import cv2

    from edgelite.runtime.modelfile.input_spec import InputSpec
    from edgelite.runtime.video.sources import decode_size
    out = {}
    t0 = time.perf_counter()
    with av.open(str(video)) as c:
        n = sum(1 for f in c.decode(video=0) if f.to_ndarray(format="rgb24") is not None)
    out["pyav_full_fps"] = n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    with av.open(str(video)) as c:
        s = c.streams.video[0]
        w, h = decode_size(s.width, s.height, InputSpec(128, 128, resize="letterbox"))
        n = sum(1 for f in c.decode(video=0) if f.to_ndarray(format="rgb24", width=w, height=h,
                                                              interpolation="AREA") is not None)
    out["pyav_scaled_for_a_128x128_letterbox_fps"] = n / (time.perf_counter() - t0)
    t0, n = time.perf_counter(), 0
    capture = cv2.VideoCapture(str(video))
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        n += 1
    capture.release()
    out["opencv_full_fps"] = n / (time.perf_counter() - t0)
    return out


def one_frame_ms(task, video: pathlib.Path) -> dict:
    """Median milliseconds of one frame end to end, after 30 frames of warm-up: decode (at the size live mode
    asks for), preprocess, invoke and the task's post-processing."""
    from edgelite.runtime.video.sources import open_source
    source = open_source(str(video), size=task.input_spec)
    decode, prepare, invoke = [], [], []
    for i, frame in enumerate(source.frames()):
        t0 = time.perf_counter()
        prepared = task.prepare(frame.image)
        t1 = time.perf_counter()
        task.run_prepared(frame.image, prepared, 0.0)
        t2 = time.perf_counter()
        if i >= 30:
            decode.append(frame.decode_ms)
            prepare.append((t1 - t0) * 1e3)
            invoke.append((t2 - t1) * 1e3)
        if i >= 130:
            break
    source.close()
    parts = {"decode": float(np.median(decode)), "preprocess": float(np.median(prepare)),
             "invoke_and_post": float(np.median(invoke))}
    return {**parts, "total": sum(parts.values())}


class SyntheticCamera:
    """A camera at ``fps`` made of real decoded frames held in memory: each frame exists at its own time
    (``captured``) whether or not anyone reads it, and costs nothing to produce, so any backlog is the loop's."""

    live, skipped, name = True, 0, "synthetic camera"

    def __init__(self, frames: list, fps: float, seconds: float):
        self.images, self.fps, self.seconds = frames, fps, seconds

    def frames(self):
        from edgelite.runtime.video.sources import Frame
        started = time.perf_counter()
        for index in range(int(self.fps * self.seconds)):
            wait = started + index / self.fps - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            yield Frame(index, index * 1000 / self.fps, started + index / self.fps,
                        self.images[index % len(self.images)], 0.0)

    def close(self):
        """Nothing to release."""


class EagerSource:
    """A source that converts every decoded frame to RGB as it reads it, dropped or not: edgelite's reader before
    live mode deferred the conversion to the frame it processes."""

    def __init__(self, source):
        self.source, self.live, self.name, self.fps = source, source.live, source.name, source.fps

    @property
    def skipped(self) -> int:
        return self.source.skipped

    @skipped.setter
    def skipped(self, value: int) -> None:
        self.source.skipped = value

    def frames(self):
        for frame in self.source.frames():
            frame.image  # noqa: B018 - converted here, on the reader, as every frame once was
            yield frame

    def close(self):
        self.source.close()


def decode_bound_child(model: str, video: str, speed: float, eager: bool) -> None:
    """One live run in this process (started pinned or beside a CPU-bound process by ``decode_bound``)."""
    import edgelite
    from edgelite.runtime.video.sources import open_source
    from edgelite.runtime.video.stream import Stream
    task = edgelite.load(model, threads=1, trust=True)
    source = open_source(video, realtime=speed, size=task.input_spec)
    started = time.perf_counter()
    run = Stream(task, EagerSource(source) if eager else source)
    latencies = [r.latency_ms for r in run]
    wall = time.perf_counter() - started
    s = run.summary()
    first, last = quarters(latencies)
    print(json.dumps({"frames_read": s.frames_read, "processed": s.processed, "dropped": s.dropped,
                      "skipped": s.skipped, "latency_ms": {f"p{p}": float(np.percentile(latencies, p)) for p in (50, 95)},
                      "first_quarter_median_ms": first, "last_quarter_median_ms": last, "wall_s": wall,
                      "stages_ms": s.stages_ms}))


def decode_bound(model: pathlib.Path, video: pathlib.Path, speed: float, *, pinned: bool, eager: bool) -> dict:
    """``decode_bound_child`` in a process of its own: pinned to core 0, or on every core beside a busy loop."""
    import os
    hog = None if pinned else subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        done = subprocess.run([sys.executable, __file__, "--decode-bound-child", str(model), str(video), str(speed),
                               "eager" if eager else "live"], capture_output=True, text=True, check=True,
                              timeout=600, preexec_fn=(lambda: os.sched_setaffinity(0, {0})) if pinned else None)
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()
    return json.loads(done.stdout.strip().splitlines()[-1])


def decode_bound_runs(model: pathlib.Path, video: pathlib.Path, duration: float) -> dict:
    runs = {}
    for name, speed, pinned in (("one_core_2x", 2.0, True), ("two_cores_busy_1x", 1.0, False)):
        runs[name] = {"source_seconds": duration / speed, "speed": speed,
                      "edgelite": decode_bound(model, video, speed, pinned=pinned, eager=False),
                      "converting_every_frame": decode_bound(model, video, speed, pinned=pinned, eager=True)}
    return runs


def hostile_camera() -> dict:
    """``edgelite stream`` against a camera whose sixth MJPEG part claims 2 GB: exit code, peak MB, seconds."""
    import io
    import socket

    from PIL import Image
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    stop = threading.Event()

    def serve():
        buffer = io.BytesIO()
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)).save(buffer, "JPEG")
        part = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
        chunk = np.random.default_rng(1).integers(0, 255, 1 << 20, dtype=np.uint8).tobytes()
        conn, _ = listener.accept()
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\n\r\n")
                for _ in range(5):
                    conn.sendall(part % len(buffer.getvalue()) + buffer.getvalue() + b"\r\n")
                conn.sendall(part % 2_000_000_000)
                while not stop.is_set():
                    conn.sendall(chunk)
            except OSError:
                pass
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    measured = ("import resource, subprocess, sys; done = subprocess.run(sys.argv[1:], capture_output=True); "
                "print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", measured, sys.executable, "-m", "edgelite.cli.commands", "stream",
                           str(ROOT / "examples" / "models" / "digits_int8.tflite"),
                           f"http://127.0.0.1:{listener.getsockname()[1]}/video.mjpg"],
                          capture_output=True, text=True, timeout=300)
    seconds = time.perf_counter() - started
    stop.set()
    listener.close()
    thread.join(timeout=10)
    code, peak_kb = done.stdout.split()
    return {"exit_code": int(code), "peak_mb": int(peak_kb) / 1024, "seconds": seconds}


def decoded_frames(video: pathlib.Path, count: int = 90) -> list:
    import av
    with av.open(str(video)) as c:
        return [f.to_ndarray(format="rgb24") for _, f in zip(range(count), c.decode(video=0))]


def quarters(latencies: list[float]) -> tuple[float, float]:
    q = max(1, len(latencies) // 4)
    return float(np.median(latencies[:q])), float(np.median(latencies[-q:]))


def edgelite_live(task, video, speed: float, seconds: float) -> dict:
    """edgelite's live mode on ``video`` (a file replayed at ``speed``, or a SyntheticCamera). Beside the latency,
    its two parts per quarter: the work on the frame (preprocess, invoke, post-processing) and the wait (the
    rest: the frame's age when the interpreter took it, and hand-over). A backlog grows the wait; a machine
    that slows down mid-run grows the work."""
    from edgelite.runtime.video.stream import Stream
    run = Stream(task, video if isinstance(video, SyntheticCamera) else str(video), realtime=speed, duration=seconds)
    latencies, work = [], []
    for r in run:
        latencies.append(r.latency_ms)
        work.append(sum(r.result.timings_ms.values()))
    s = run.summary()
    first, last = quarters(latencies)
    wait = [lat - w for lat, w in zip(latencies, work)]
    return {"processed": s.processed, "dropped": s.dropped, "frames_read": s.frames_read, "fps": s.fps,
            "latency_ms": s.latency_ms, "first_quarter_median_ms": first, "last_quarter_median_ms": last,
            "work_quarters_ms": list(quarters(work)), "wait_quarters_ms": list(quarters(wait))}


def backlog_runs(task, frames: list, fps: float, seconds: float, runs: int) -> dict:
    """Live mode against the camera ``runs`` times: each run's last-quarter median latency over its first. One
    run's ratio moves with the machine (two 60 s runs here measured 0.84x and 1.18x, the work per frame
    drifting, not the wait), so the goal is judged on the median run; every run is reported."""
    each = [edgelite_live(task, SyntheticCamera(frames, fps, seconds), 1.0, seconds) for _ in range(runs)]
    ratios = [r["last_quarter_median_ms"] / r["first_quarter_median_ms"] for r in each]
    return {"first": each[0], "ratios": ratios, "median_ratio": float(np.median(ratios)),
            "wait_quarters_ms": [r["wait_quarters_ms"] for r in each],
            "work_quarters_ms": [r["work_quarters_ms"] for r in each]}


def naive_fifo(task, camera: SyntheticCamera) -> dict:
    """The loop most apps write against a camera whose frames queue up (a FIFO that never drops): take the
    oldest frame, infer, repeat. When the model is slower than the camera, every frame waits longer."""
    import collections
    queue: collections.deque = collections.deque()
    done = threading.Event()

    def produce():
        for frame in camera.frames():
            queue.append(frame)
        done.set()
    threading.Thread(target=produce, daemon=True).start()
    latencies, started = [], time.perf_counter()
    while time.perf_counter() - started < camera.seconds:
        if not queue:
            if done.is_set():
                break
            time.sleep(0.0005)
            continue
        frame = queue.popleft()
        task.run(frame.image)
        latencies.append((time.perf_counter() - frame.captured) * 1e3)
    first, last = quarters(latencies)
    return {"processed": len(latencies), "left_in_queue": len(queue),
            "latency_ms": {f"p{p}": float(np.percentile(latencies, p)) for p in (50, 95, 99)},
            "first_quarter_median_ms": first, "last_quarter_median_ms": last}


def naive_live(task, video: pathlib.Path, speed: float, seconds: float) -> dict:
    """The loop most apps write: cv2.VideoCapture, read, infer, repeat. Frames exist at their own time (the file
    is replayed as a camera at ``speed``); the loop takes them in order, so when it is slower, it falls behind."""
    import cv2
    capture = cv2.VideoCapture(str(video))
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    started, latencies, index = time.perf_counter(), [], 0
    while time.perf_counter() - started < seconds:
        ok, frame = capture.read()
        if not ok:
            break
        due = started + index / fps / speed
        wait = due - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        task.run(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        latencies.append((time.perf_counter() - due) * 1e3)
        index += 1
    capture.release()
    first, last = quarters(latencies)
    return {"processed": len(latencies), "latency_ms": {f"p{p}": float(np.percentile(latencies, p)) for p in
                                                         (50, 95, 99)},
            "first_quarter_median_ms": first, "last_quarter_median_ms": last}


def every_frame(task, video: pathlib.Path, model_path: pathlib.Path, pairs: int = 5) -> dict:
    """Every-frame mode against the bare interpreter on ready tensors, in ``pairs`` back-to-back pairs: each pair's
    ratio is judged on the same machine state (the interpreter's own rate moved 175 to 220 frames/s between
    passes here), and the median pair is reported."""
    from edgelite.runtime.video.stream import Stream
    step, _ = raw_interpreter(model_path)
    for _ in range(20):
        step()
    rows = []
    for _ in range(pairs):
        run = Stream(task, str(video))
        t0 = time.perf_counter()
        n = sum(1 for _ in run)
        stream_fps = n / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        for _ in range(n):
            step()
        bare_fps = n / (time.perf_counter() - t0)
        rows.append((stream_fps / bare_fps, stream_fps, bare_fps))
    ratio, stream_fps, bare_fps = sorted(rows)[len(rows) // 2]
    return {"frames": n, "stream_fps": stream_fps, "interpreter_fps": bare_fps, "ratio": ratio,
            "ratios": [r[0] for r in rows]}


MEDIAPIPE = """
import json, sys, time, threading
import cv2, mediapipe as mp
from mediapipe.tasks.python import vision, BaseOptions
model, video, speed = sys.argv[1], sys.argv[2], float(sys.argv[3])
due, latencies, lock = {}, [], threading.Lock()
def done(result, image, stamp):
    now = time.perf_counter()
    with lock:  # MediaPipe may hand the timestamp back rounded: take the frame sent nearest to it
        at = due.get(stamp) or due[min(due, key=lambda k: abs(k - stamp))]
        latencies.append((now - at) * 1e3)
options = vision.FaceDetectorOptions(base_options=BaseOptions(model_asset_path=model),
                                     running_mode=vision.RunningMode.LIVE_STREAM, result_callback=done)
capture = cv2.VideoCapture(video)
fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
sent = 0
with vision.FaceDetector.create_from_options(options) as detector:
    started = time.perf_counter()
    while True:
        if not capture.grab():  # the packet is decoded before the frame's time, its conversion after, as edgelite's
            break
        at = started + sent / fps / speed
        wait = at - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        ok, frame = capture.retrieve()
        stamp = int(sent * 1000 / fps / speed) + 1
        due[stamp] = at
        detector.detect_async(mp.Image(image_format=mp.ImageFormat.SRGB, data=cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)),
                              stamp)
        sent += 1
    time.sleep(0.5)
print(json.dumps({"sent": sent, "latencies": latencies}))
"""


def mediapipe_live(face_model: str, video: pathlib.Path, speed: float) -> dict | None:
    python = (ROOT / ".venv" / "edgelite-metadata-python")
    if not python.exists():
        return None
    try:
        out = subprocess.run([python.read_text().strip(), "-c", MEDIAPIPE, face_model, str(video), str(speed)],
                             capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return {"error": "did not finish within 120 s (detect_async blocked)"}
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"}
    data = json.loads(out.stdout.strip().splitlines()[-1])
    lat = data["latencies"]
    return {"sent": data["sent"], "processed": len(lat),
            "latency_ms": {f"p{p}": float(np.percentile(lat, p)) for p in (50, 95, 99)} if lat else None}


def against_mediapipe(face: str, detector, video: pathlib.Path, rate: float, rounds: int) -> dict:
    """MediaPipe and edgelite in alternating rounds on the same file at the same pacing; each side's figures are
    its round with the median p95 (one 20 s round's p95 moves by a millisecond or more with the machine)."""
    theirs, ours = [], []
    for _ in range(rounds):
        theirs.append(mediapipe_live(face, video, rate))
        ours.append(edgelite_live(detector, video, rate, 20.0 / rate))
    if any(t is None or "error" in t for t in theirs):
        return {"speed": rate, "source_fps": 30 * rate, "mediapipe": next(t for t in theirs if t is None or
                                                                          "error" in t), "edgelite": ours[0]}

    def median_round(rows: list[dict]) -> dict:
        return sorted(rows, key=lambda r: r["latency_ms"]["p95"])[len(rows) // 2]
    return {"speed": rate, "source_fps": 30 * rate, "rounds": rounds, "mediapipe": median_round(theirs),
            "edgelite": median_round(ours), "p95_ms_each_round": {"mediapipe": [t["latency_ms"]["p95"] for t in theirs],
                                                                  "edgelite": [o["latency_ms"]["p95"] for o in ours]}}


def face_model_path() -> str | None:
    python = ROOT / ".venv" / "edgelite-metadata-python"
    if not python.exists():
        return None
    where = subprocess.run([python.read_text().strip(), "-c", "import mediapipe, os; print(os.path.dirname("
                            "mediapipe.__file__))"], capture_output=True, text=True, timeout=120).stdout.strip()
    return str(pathlib.Path(where) / "modules" / "face_detection" / "face_detection_short_range.tflite")


def soak(task, video: pathlib.Path, seconds: float) -> dict:
    """Resident memory of a live run, sampled every second; the file loops (a new Stream each pass)."""
    import resource  # noqa: F401 - Linux: /proc/self/status is read for the current figure

    from edgelite.runtime.video.stream import Stream

    def rss_mb() -> float:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024
    samples, stop = [], threading.Event()

    def sample():
        while not stop.is_set():
            samples.append((time.monotonic(), rss_mb()))
            time.sleep(1.0)
    sampler = threading.Thread(target=sample, daemon=True)
    started = time.monotonic()
    sampler.start()
    while time.monotonic() - started < seconds:
        for _ in Stream(task, str(video), realtime=1.0, duration=seconds - (time.monotonic() - started)):
            pass
    stop.set()
    sampler.join()
    after_minute = [m for t, m in samples if t - started >= 60] or [m for _, m in samples]
    return {"seconds": seconds, "rss_mb_at_1_min": after_minute[0], "rss_mb_at_end": after_minute[-1],
            "growth_mb": after_minute[-1] - after_minute[0], "max_mb": max(m for _, m in samples)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each live run")
    parser.add_argument("--soak", type=float, default=0.0, help="seconds of the memory run (0: skip)")
    parser.add_argument("--rounds", type=int, default=3, help="live runs judged for backlog, and alternating rounds "
                        "against MediaPipe (the median is judged, every one reported)")
    output_options(parser, "stream")
    parser.add_argument("--soak-only", action="store_true", help="only the memory run, added to --out's figures")
    parser.add_argument("--decode-bound-child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.decode_bound_child:
        model, video, speed, how = args.decode_bound_child
        decode_bound_child(model, video, float(speed), how == "eager")
        return
    import edgelite
    _, int8 = build_mobilenet()
    video = make_video(CACHE / "stream_640x480_30fps.mp4", 20.0)
    mobilenet = edgelite.load(int8, threads=1, trust=True)
    if args.soak_only:
        path = pathlib.Path(args.out)
        report = written(args)
        report["soak"] = {**soak(mobilenet, video, args.soak), "machine": machine()}
        path.write_text(json.dumps(report, indent=2) + "\n")
        print(render(report))
        return
    report: dict = {"decoders_fps": decoders(video, mobilenet.input_spec)}
    frame = one_frame_ms(mobilenet, video)
    camera_fps = 960.0  # far faster than the model: the newest frame is at most ~1 ms old when it is taken
    report["one_frame_ms"] = frame
    report["source_fps"] = camera_fps
    frames = decoded_frames(video)
    backlog = backlog_runs(mobilenet, frames, camera_fps, args.seconds, args.rounds)
    report["live"] = {"edgelite": backlog.pop("first"), "backlog_runs": backlog,
                      "edgelite_240fps": edgelite_live(mobilenet, SyntheticCamera(frames, 240.0, 20.0), 1.0, 20.0),
                      "naive_fifo": naive_fifo(mobilenet, SyntheticCamera(frames, camera_fps, args.seconds)),
                      "file_replayed": {"speed": 4.0,
                                        "edgelite": edgelite_live(mobilenet, video, 4.0, 5.0),
                                        "naive_opencv_loop": naive_live(mobilenet, video, 4.0, 5.0)}}
    report["every_frame"] = every_frame(mobilenet, video, int8)
    fast = make_video(CACHE / "stream_640x480_960fps.mp4", DECODE_BOUND_SECONDS, fps=960)
    report["decode_bound"] = decode_bound_runs(int8, fast, DECODE_BOUND_SECONDS)
    report["hostile_camera"] = hostile_camera()
    face = face_model_path()
    if face:
        detector = edgelite.load(face, decoder=str(FACE_DECODER), threads=1, trust=True)
        report["mediapipe_live_stream"] = [against_mediapipe(face, detector, video, rate, args.rounds)
                                           for rate in (1.0, 8.0)]
    if args.soak:
        report["soak"] = soak(mobilenet, video, args.soak)
    elif "soak" in (kept := written(args)):
        report["soak"] = kept["soak"]   # kept from the earlier run, with its own machine and date
    add_goals(report)
    emit(report, args, lambda r: print(render(r)))


def add_goals(report: dict) -> dict:
    """The goals as ratios of the figures measured, and whether each holds."""
    live, frame = report["live"]["edgelite"], report["one_frame_ms"]["total"]
    report["goals"] = {
        "live_p95_over_one_frame": live["latency_ms"]["p95"] / frame,
        "live_p95_within_1_5x": live["latency_ms"]["p95"] / frame <= 1.5,
        "live_last_over_first_quarter": report["live"]["backlog_runs"]["median_ratio"],
        "live_no_backlog": report["live"]["backlog_runs"]["median_ratio"] <= 1.10,
        "every_frame_at_least_0_9x": report["every_frame"]["ratio"] >= 0.9,
        "hostile_camera_bounded": report["hostile_camera"]["exit_code"] == 1
        and report["hostile_camera"]["peak_mb"] <= 400 and report["hostile_camera"]["seconds"] <= 30,
        "decode_bound_holds": all(decode_bound_holds(run["edgelite"], run["source_seconds"])
                                  for run in report["decode_bound"].values()),
        "mediapipe_p95": [verdict(r.get("p95_ms_each_round", {}).get("edgelite", []),
                                  r.get("p95_ms_each_round", {}).get("mediapipe", []))
                          for r in report.get("mediapipe_live_stream", [])],
        "mediapipe_as_many_frames": all(r["edgelite"]["processed"] >= r["mediapipe"].get("processed", 0)
                                        for r in report.get("mediapipe_live_stream", [])),
    }
    return report


def decode_bound_holds(run: dict, source_seconds: float) -> bool:
    """Issue 35's bound: every frame read accounted for, p95 <= 150 ms, no growth (last quarter's median within
    1.2x the first's + 5 ms), and the run no more than 10 s longer than its source."""
    return (run["frames_read"] == run["processed"] + run["dropped"] + run["skipped"]
            and run["latency_ms"]["p95"] <= 150
            and run["last_quarter_median_ms"] <= 1.2 * run["first_quarter_median_ms"] + 5
            and run["wall_s"] <= source_seconds + 10)


def render(r: dict) -> str:
    live, naive, f = r["live"]["edgelite"], r["live"]["naive_fifo"], r["one_frame_ms"]
    replay = r["live"]["file_replayed"]
    lines = ["decoders (frames/s): " + ", ".join(f"{k} {v:.0f}" for k, v in r["decoders_fps"].items()),
             f"one frame: decode {f['decode']:.2f} + preprocess {f['preprocess']:.2f} + invoke {f['invoke_and_post']:.2f}"
             f" = {f['total']:.2f} ms; source at {r['source_fps']:.0f} fps",
             f"live, edgelite: {live['processed']} processed, {live['dropped']} dropped; latency p50 "
             f"{live['latency_ms']['p50']:.1f} p95 {live['latency_ms']['p95']:.1f} ms = "
             f"{live['latency_ms']['p95'] / f['total']:.2f}x one frame (goal <= 1.5x); first quarter median "
             f"{live['first_quarter_median_ms']:.1f} ms, last {live['last_quarter_median_ms']:.1f} ms; last over first "
             f"quarter in each of {len(r['live']['backlog_runs']['ratios'])} runs: "
             + ", ".join(f"{x:.2f}x" for x in r["live"]["backlog_runs"]["ratios"])
             + f" (median {r['goals']['live_last_over_first_quarter']:.2f}x, goal within 10%); the wait's quarters "
             + ", ".join(f"{a:.1f}->{b:.1f}" for a, b in r["live"]["backlog_runs"]["wait_quarters_ms"]) + " ms, the work's "
             + ", ".join(f"{a:.1f}->{b:.1f}" for a, b in r["live"]["backlog_runs"]["work_quarters_ms"]) + " ms",
             f"live, naive FIFO loop: {naive['processed']} processed, {naive['left_in_queue']} left queued; latency "
             f"p50 {naive['latency_ms']['p50']:.0f} p95 {naive['latency_ms']['p95']:.0f} ms; first quarter median "
             f"{naive['first_quarter_median_ms']:.0f} ms, last {naive['last_quarter_median_ms']:.0f} ms",
             f"file replayed at 4x (120 fps): edgelite p95 {replay['edgelite']['latency_ms']['p95']:.1f} ms, "
             f"{replay['edgelite']['dropped']} dropped; naive cv2.VideoCapture loop p95 "
             f"{replay['naive_opencv_loop']['latency_ms']['p95']:.0f} ms (first quarter median "
             f"{replay['naive_opencv_loop']['first_quarter_median_ms']:.0f}, last "
             f"{replay['naive_opencv_loop']['last_quarter_median_ms']:.0f})",
             f"every frame: {r['every_frame']['stream_fps']:.1f} frames/s against the interpreter's "
             f"{r['every_frame']['interpreter_fps']:.1f} on ready tensors: {r['every_frame']['ratio']:.2f}x, the median "
             "of back-to-back pairs " + ", ".join(f"{x:.2f}x" for x in r["every_frame"].get("ratios", [])) +
             " (goal >= 0.9x)"]
    for name, run in r.get("decode_bound", {}).items():
        ours, theirs = run["edgelite"], run["converting_every_frame"]
        lines.append(f"decode-bound, 960 fps 640x480 {name.replace('_', ' ')}: edgelite p95 {ours['latency_ms']['p95']:.1f} ms"
                     f" (quarters {ours['first_quarter_median_ms']:.1f} -> {ours['last_quarter_median_ms']:.1f}), "
                     f"{ours['wall_s']:.1f} s for {run['source_seconds']:.1f} s of source; converting every frame p95 "
                     f"{theirs['latency_ms']['p95']:.0f} ms ({theirs['first_quarter_median_ms']:.0f} -> "
                     f"{theirs['last_quarter_median_ms']:.0f}), {theirs['wall_s']:.1f} s")
    if "hostile_camera" in r:
        h = r["hostile_camera"]
        lines.append(f"hostile camera (a 2 GB part): exit {h['exit_code']}, peak {h['peak_mb']:.0f} MB, {h['seconds']:.1f} s "
                     "(goal: exit 1, <= 400 MB, <= 30 s)")
    for row in r.get("mediapipe_live_stream", []):
        theirs, ours = row["mediapipe"], row["edgelite"]
        mp_text = theirs.get("error") or (f"processed {theirs['processed']} of {theirs['sent']}, latency p50 "
                                          f"{theirs['latency_ms']['p50']:.1f} p95 {theirs['latency_ms']['p95']:.1f} ms")
        each = row.get("p95_ms_each_round")
        rounds = "" if not each else (" (p95 of each round: MediaPipe " + ", ".join(f"{x:.1f}" for x in each["mediapipe"])
                                      + "; edgelite " + ", ".join(f"{x:.1f}" for x in each["edgelite"]) + " ms)")
        lines.append(f"face detector, frames at {row['source_fps']:.0f} fps: MediaPipe LIVE_STREAM {mp_text}; edgelite "
                     f"processed {ours['processed']} of {ours['frames_read']}, latency p50 {ours['latency_ms']['p50']:.1f}"
                     f" p95 {ours['latency_ms']['p95']:.1f} ms{rounds}")
    if "soak" in r:
        s = r["soak"]
        lines.append(f"soak {s['seconds']:.0f} s: RSS {s['rss_mb_at_1_min']:.1f} MB at 1 min, {s['rss_mb_at_end']:.1f} "
                     f"MB at the end ({s['growth_mb']:+.1f} MB, goal < 5)")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
