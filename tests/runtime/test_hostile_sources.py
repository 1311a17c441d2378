"""Network cameras that lie: served by the test itself on 127.0.0.1 (a raw socket, so it can say what no HTTP
library would), each read by the real CLI in a process of its own whose peak memory is measured by a parent that
has no other child. Every one must end in one line, exit 1, within its time, under 400 MB."""
import contextlib
import io
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from PIL import Image

from tests.conftest import ROOT

pytest.importorskip("av", reason="network sources need PyAV (the video extra)")
MODEL = ROOT / "examples" / "models" / "digits_int8.tflite"
PEAK_MB = 400
SECONDS = 30
MEASURED = """import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True, timeout=120)
print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, repr(done.stderr), sep="\\n")"""


def good_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)).save(buffer, "JPEG")
    return buffer.getvalue()


PART = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"


def hostile(kind: str, conn: socket.socket, stop: threading.Event) -> None:
    """One lying camera: ``big`` sends good frames, then a part claiming 2 GB and sends on; ``garbage`` sends good
    frames, then random bytes; ``header`` never ends its response header; ``silent`` answers and then sends
    nothing."""
    conn.recv(65536)
    if kind == "header":
        conn.sendall(b"HTTP/1.1 200 OK\r\nX-Endless: ")
        while not stop.is_set():
            conn.sendall(b"a" * 4096)
            time.sleep(0.001)
        return
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\n\r\n")
    frame = good_jpeg()
    for _ in range(5):
        conn.sendall(PART % len(frame) + frame + b"\r\n")
    if kind == "silent":
        stop.wait(SECONDS)
        return
    if kind == "big":
        conn.sendall(PART % 2_000_000_000)
    chunk = np.random.default_rng(1).integers(0, 255, 1 << 20, dtype=np.uint8).tobytes()
    while not stop.is_set():
        conn.sendall(chunk)


@pytest.fixture()
def camera():
    """A lying camera on 127.0.0.1: yields a function that starts one of ``hostile``'s kinds and returns its URL;
    everything it started ends after the test."""
    stop, threads, sockets = threading.Event(), [], []

    def start(kind: str) -> str:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        sockets.append(listener)

        def serve():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            sockets.append(conn)
            with contextlib.suppress(OSError):  # the reader gave up, as it should
                hostile(kind, conn, stop)
        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        threads.append(thread)
        return f"http://127.0.0.1:{listener.getsockname()[1]}/video.mjpg"
    yield start
    stop.set()
    for s in sockets:
        s.close()
    for thread in threads:
        thread.join(timeout=10)


def run_measured(*args: str) -> tuple[int, float, str, float]:
    """(exit code, peak resident MB, stderr, seconds) of ``edgelite stream`` in a process of its own."""
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", MEASURED, sys.executable, "-c", "from edgelite.cli.commands import main; main()",
                           "stream", str(MODEL), *args], capture_output=True, text=True, timeout=150, cwd=ROOT)
    code, peak_kb, stderr = done.stdout.strip().split("\n", 2)
    return int(code), int(peak_kb) / 1024, eval(stderr), time.monotonic() - started  # noqa: S307 - our own repr()


@pytest.mark.parametrize("kind, message", [
    ("big", r"sent \d+\.\d MB for one frame, more than a 160x120 frame can be \(1\.1 MB; after 5 frames\)"),
    ("garbage", r"stopped after 5 frames"),
    ("header", r"no answer within 3 s"),
    ("silent", r"no frame for 3 s \(timed out after 5 frames\)"),
])
def test_a_lying_camera_is_one_line_exit_1_in_bounded_time_and_memory(camera, kind, message):
    import re
    url = camera(kind)
    code, peak_mb, stderr, seconds = run_measured(url, "--timeout", "3", "--jsonl")
    lines = stderr.strip().splitlines()
    assert code == 1 and len(lines) == 1 and lines[0].startswith(f"error: {url}: "), stderr
    assert re.search(message, lines[0]), lines[0]
    assert peak_mb <= PEAK_MB and seconds <= SECONDS, (peak_mb, seconds)


def test_a_camera_within_a_raised_ceiling_is_still_bounded_by_its_resolution(camera):
    """--max-frame-mb raises the ceiling; a frame is still refused above what its resolution allows."""
    url = camera("big")
    code, peak_mb, stderr, _ = run_measured(url, "--timeout", "3", "--max-frame-mb", "128")
    assert code == 1 and "more than a 160x120 frame can be" in stderr and peak_mb <= PEAK_MB, (stderr, peak_mb)


def test_the_frame_limit_follows_the_resolution_under_the_ceiling():
    from edgelite.runtime.video.sources import frame_limit
    assert frame_limit(160, 120, 64 << 20) == 2 * 3 * 160 * 120 + (1 << 20)
    assert frame_limit(7680, 4320, 64 << 20) == 64 << 20  # an 8K stream is held by the ceiling


def test_a_silent_rtsp_server_is_a_timeout_not_a_bad_video():
    """An RTSP address that accepts the connection and never answers: FFmpeg's RTSP reader reports that as
    invalid data; the line says what happened."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    held: list[socket.socket] = []

    def accept():
        with contextlib.suppress(OSError):
            while True:
                held.append(listener.accept()[0])
    threading.Thread(target=accept, daemon=True).start()
    try:
        url = f"rtsp://127.0.0.1:{listener.getsockname()[1]}/live"
        code, _, stderr, seconds = run_measured(url, "--timeout", "2")
        assert code == 1 and stderr.strip() == f"error: {url}: no answer within 2 s" and seconds < SECONDS, stderr
    finally:
        listener.close()
        for conn in held:
            conn.close()
