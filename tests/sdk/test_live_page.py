"""The live page of ``edgelite stream --serve``: a real run of MediaPipe's face detector on a video made from
real photos, served on 127.0.0.1 by the CLI and looked at over HTTP and in a real browser (headless Chromium,
Debian's package, which .ci/run installs; elsewhere the browser test skips and says why).

``EDGELITE_DOCS_SCREENSHOTS=1`` also copies the browser's screenshot to docs/live-page.png.
"""
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from tests.conftest import ROOT
from tests.runtime.test_detection import DECODER, face_model  # noqa: F401 - the real detector, as a fixture

pytest.importorskip("av", reason="live video needs PyAV (the video extra)")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BROWSER_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def slow_video(tmp_path_factory):
    from tests.runtime.test_stream import face_frames, write_video
    path = tmp_path_factory.mktemp("live") / "faces.mp4"
    write_video(path, face_frames(60))  # 4 s at 15 fps; replayed at half speed below: 8 s of live video
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(face_model, video, *extra):  # noqa: F811
    port = free_port()
    child = subprocess.Popen([sys.executable, "-c", "from edgelite.cli import main; main()", "stream", str(face_model),
                              str(video), "--decoder", str(DECODER), "--realtime", "--speed", "0.5", "--serve",
                              f"127.0.0.1:{port}", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    return child, f"http://127.0.0.1:{port}"


def get(url: str, timeout: float = 5.0):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.headers.get("Content-Type"), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, None, b""


def wait_for_figures(base: str, query: str = "") -> dict:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            code, _, body = get(f"{base}/stats.json{query}", 1.0)
            if code == 200 and json.loads(body).get("processed"):
                return json.loads(body)
        except (urllib.error.URLError, ConnectionError, json.JSONDecodeError):
            pass
        time.sleep(0.2)
    raise AssertionError("the live page never showed figures")


def first_jpeg(url: str) -> Image.Image:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.headers.get("Content-Type") == "multipart/x-mixed-replace; boundary=frame"
        head = b""
        while b"\r\n\r\n" not in head:
            head += response.read(1)
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.startswith(b"Content-Length")))
        return Image.open(io.BytesIO(response.read(length)))


def red_box_pixels(picture: Image.Image) -> int:
    """Pixels of the first detection colour (#ff3b30) the annotation draws boxes in."""
    pixels = np.asarray(picture.convert("RGB")).astype(int)
    return int(((abs(pixels[..., 0] - 255) < 40) & (abs(pixels[..., 1] - 59) < 50) & (abs(pixels[..., 2] - 48) < 50))
               .sum())


def test_the_page_serves_the_annotated_video_and_figures_that_update(face_model, slow_video):  # noqa: F811
    child, base = serve(face_model, slow_video)
    try:
        first = wait_for_figures(base)
        code, kind, page = get(base + "/")
        assert code == 200 and kind.startswith("text/html") and b"/stream.mjpg" in page and b"/stats.json" in page
        frame = first_jpeg(base + "/stream.mjpg")
        assert frame.size == (640, 480) and red_box_pixels(frame) > 50  # the boxes are drawn on the video
        time.sleep(1.0)
        later = json.loads(get(base + "/stats.json")[2])
        assert later["processed"] > first["processed"] and {"p50", "p95", "p99"} == set(later["latency_ms"])
        for path in ("/etc/passwd", "/stream.mjpg/../x", "/index.html"):
            assert get(base + path)[0] == 404
    finally:
        child.terminate()
        child.wait(10)


def test_a_file_name_with_html_is_escaped_on_the_page(face_model, slow_video, tmp_path):  # noqa: F811
    hostile = tmp_path / "<img src=x onerror=alert(1)> 'q\".mp4"
    shutil.copy(slow_video, hostile)
    child, base = serve(face_model, hostile)
    try:
        wait_for_figures(base)
        page = get(base + "/")[2].decode()
        assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt; &#x27;q&quot;.mp4" in page
    finally:
        child.terminate()
        child.wait(10)


def test_credentials_in_a_source_url_are_printed_nowhere():
    from edgelite.runtime.files import describe, without_credentials
    assert describe("rtsp://admin:pa55word@cam.local:554/live") == "rtsp://***@cam.local:554/live"
    assert without_credentials("Connection refused: http://u:p@10.1.2.3/x and tcp://k@h:1") == \
        "Connection refused: http://***@10.1.2.3/x and tcp://***@h:1"
    port = free_port()  # nothing listens there: the source fails, and its error line must not carry the password
    done = subprocess.run([sys.executable, "-c", "from edgelite.cli import main; main()", "stream",
                           str(ROOT / "examples" / "models" / "digits_int8.tflite"),
                           f"http://admin:pa55word@127.0.0.1:{port}/video.mjpg", "--timeout", "3", "--jsonl"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 1 and "pa55word" not in done.stdout + done.stderr, done.stderr
    assert "http://***@127.0.0.1" in done.stderr and "Traceback" not in done.stderr


def test_a_token_guards_every_path(face_model, slow_video):  # noqa: F811
    child, base = serve(face_model, slow_video, "--token", "s3cret")
    try:
        wait_for_figures(base, "?token=s3cret")
        for path in ("/", "/stats.json", "/stream.mjpg"):
            assert get(base + path)[0] == 403
            assert get(base + path + "?token=wrong")[0] == 403
        assert get(base + "/stats.json?token=s3cret")[0] == 200
        request = urllib.request.Request(base + "/stats.json", headers={"Authorization": "Bearer s3cret"})
        assert urllib.request.urlopen(request, timeout=5).status == 200
    finally:
        child.terminate()
        child.wait(10)


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium here (Debian's chromium package; .ci/run installs it on "
                                              "CI): the page is checked over HTTP only")
def test_in_a_real_browser_the_video_shows_boxes_and_the_figures_update(face_model, slow_video, tmp_path):  # noqa: F811
    child, base = serve(face_model, slow_video)
    try:
        wait_for_figures(base)

        def browser(*args):
            profile = tempfile.mkdtemp()
            try:
                return subprocess.run([CHROMIUM, *BROWSER_FLAGS, f"--user-data-dir={profile}", "--window-size=900,760",
                                       "--virtual-time-budget=2500", *args, base + "/"],
                                      capture_output=True, text=True, timeout=60)
            finally:
                shutil.rmtree(profile, ignore_errors=True)
        shot = tmp_path / "live-page.png"
        browser(f"--screenshot={shot}")
        picture = Image.open(shot)
        assert red_box_pixels(picture) > 50  # the video element shows frames with the boxes drawn
        figures = []
        for _ in range(2):
            dom = browser("--dump-dom").stdout
            text = dom.split('id="stats">')[1].split("</pre>")[0]
            figures.append(int(text.split("processed ")[1].split(",")[0]))
            time.sleep(1.0)
        assert figures[1] > figures[0] > 0  # the page's figures update as the stream runs
        if os.environ.get("EDGELITE_DOCS_SCREENSHOTS") == "1":
            shutil.copy(shot, ROOT / "docs" / "live-page.png")
    finally:
        child.terminate()
        child.wait(10)
