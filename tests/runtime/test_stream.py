"""Live video (issue: cameras, video files and network streams, newest frame first).

Videos are made here from real photos (scikit-image's astronaut and LFW faces, moved and scaled frame to
frame; scikit-learn's digit scans) and written with PyAV. The reference for every frame is ``predict`` on that
frame extracted as an image. Network sources are served by the tests themselves on 127.0.0.1 (an HTTP MJPEG
server and a raw MJPEG TCP server), and the Raspberry Pi camera is an honest stand-in module with picamera2's
documented API (not verified on hardware).
"""
import http.server
import json
import socket
import subprocess
import sys
import threading
import time
import types

import numpy as np
import pytest
from PIL import Image

import edgelite
from edgelite.runtime.errors import InputError
from edgelite.runtime.tasks import detection as det
from edgelite.runtime.video.sources import open_source, yuv420_to_rgb
from edgelite.runtime.video.stream import RunningMode, Stream, stream
from tests.conftest import DIGITS_FLOAT, DIGITS_INT8, ROOT
from tests.runtime.test_detection import DECODER, face_model  # noqa: F401 - the real detector, as a fixture

av = pytest.importorskip("av", reason="live video needs PyAV (the video extra)")


def write_video(path, frames, fps: int = 15) -> None:
    with av.open(str(path), "w") as container:
        stream_ = container.add_stream("mpeg4", rate=fps)
        stream_.width, stream_.height, stream_.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        stream_.options = {"qscale": "2"}
        for pixels in frames:
            for packet in stream_.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in stream_.encode():
            container.mux(packet)


def face_frames(count: int = 30) -> list[np.ndarray]:
    """640x480 frames: the astronaut photo drifting and zooming, two LFW faces moving across a dark background."""
    import skimage.data
    astronaut = Image.fromarray(skimage.data.astronaut())
    faces = [Image.fromarray((f * 255).astype(np.uint8)).convert("RGB").resize((120, 120)) for f in
             skimage.data.lfw_subset()[:2]]
    frames = []
    for i in range(count):
        canvas = Image.new("RGB", (640, 480), (30, 30, 40))
        side = 300 + 4 * i
        canvas.paste(astronaut.resize((side, side)), (20 + 3 * i, 40))
        canvas.paste(faces[0], (380 + 2 * i, 60))
        canvas.paste(faces[1], (420 - 3 * i, 300))
        frames.append(np.asarray(canvas))
    return frames


@pytest.fixture(scope="module")
def face_video(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "faces.mp4"
    write_video(path, face_frames())
    return path


@pytest.fixture(scope="module")
def digit_video(tmp_path_factory, digits):
    images, labels = digits
    frames = [np.asarray(Image.fromarray(images[i]).resize((64, 64), Image.NEAREST).convert("RGB")) for i in range(40)]
    path = tmp_path_factory.mktemp("video") / "digits.mp4"
    write_video(path, frames)
    return path


def extracted(video, folder) -> list:
    """Every frame of ``video`` as a PNG, decoded by PyAV at full size: what predict is compared against."""
    folder.mkdir(exist_ok=True)
    paths = []
    with av.open(str(video)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            paths.append(folder / f"{i:04d}.png")
            Image.fromarray(frame.to_ndarray(format="rgb24")).save(paths[-1])
    return paths


def test_every_frame_detections_equal_predict_on_each_frame_extracted(face_model, face_video, tmp_path):  # noqa: F811
    detector = edgelite.load(face_model, decoder=DECODER)
    frames = extracted(face_video, tmp_path / "frames")
    results = list(stream(detector, str(face_video), full_size=True))
    assert [r.frame for r in results] == list(range(len(frames))) == list(range(30))
    found = 0
    for r, path in zip(results, frames):
        reference = detector.detect(path).detections
        assert len(r.result.detections) == len(reference), r.frame
        for ours, theirs in zip(r.result.detections, reference):
            assert det.iou(np.array(ours.box), np.array([theirs.box]))[0] >= 0.95
            found += 1
    assert found >= 30  # the faces are there to be found


def test_frames_the_decoder_scales_for_the_model_give_boxes_in_the_sources_pixels(face_model, face_video):  # noqa: F811
    """By default the decoder scales each 640x480 frame to the letterbox's inner size (128x96 for the face
    detector's 128x128), so preprocessing has almost nothing left to do; boxes are
    mapped back to the source's pixels and land where the full-size frames put them."""
    from edgelite.runtime.modelfile.input_spec import InputSpec
    from edgelite.runtime.video.sources import decode_size
    assert decode_size(640, 480, InputSpec(128, 128, resize="letterbox")) == (128, 96)
    assert decode_size(640, 480, InputSpec(224, 224, resize="center-crop")) == (300, 224)
    assert decode_size(640, 480, InputSpec(640, 640, resize="letterbox")) is None  # would not shrink: full size
    assert decode_size(1920, 1080, InputSpec(224, 224, resize="center-crop")) == (398, 224)
    detector = edgelite.load(face_model, decoder=DECODER)
    full = list(stream(detector, str(face_video), full_size=True))
    small = list(stream(detector, str(face_video)))
    assert small[0].image.shape == (96, 128, 3)
    matched = total = 0
    for a, b in zip(full, small):
        for d in a.result.detections:
            total += 1
            boxes = np.array([e.box for e in b.result.detections]).reshape(-1, 4)
            matched += bool(len(boxes)) and det.iou(np.array(d.box), boxes).max() >= 0.8
    assert total >= 30 and matched / total >= 0.9


def test_frame_count_and_timestamps_agree_with_the_container(digit_video):
    with av.open(str(digit_video)) as container:
        stamps = [round(f.time * 1000, 3) for f in container.decode(video=0)]
    results = list(stream(str(DIGITS_INT8), str(digit_video)))
    assert [round(r.time_ms, 3) for r in results] == stamps and len(stamps) == 40


def test_a_classifier_stream_gives_what_predict_gives_on_each_frame(digit_video, tmp_path):
    clf = edgelite.load(DIGITS_INT8)
    frames = extracted(digit_video, tmp_path / "frames")
    results = list(stream(clf, str(digit_video), full_size=True))
    assert len(results) == len(frames) == 40
    for r, path in zip(results, frames):
        reference = clf.classify(path)
        assert r.result.top.id == reference.top.id and abs(r.result.top.score - reference.top.score) < 1e-6
        assert r.to_dict()["classes"][0]["id"] == reference.top.id


class Slow:
    """A task object that takes ``seconds`` per frame (a model slower than its camera)."""

    def __init__(self, task, seconds: float):
        self.task, self.seconds, self.input_spec = task, seconds, task.input_spec

    def prepare(self, image, stages=None):
        return self.task.prepare(image, stages)

    def run_prepared(self, image, prepared, ms):
        time.sleep(self.seconds)
        return self.task.run_prepared(image, prepared, ms)


def test_live_mode_takes_the_newest_frame_and_keeps_latency_bounded(digit_video):
    """40 frames at 15 fps replayed 4x (a frame every 16.7 ms) into a 50 ms model: older frames are dropped and
    counted, and no frame waits behind a queue."""
    slow = Slow(edgelite.load(DIGITS_INT8), 0.05)
    run = Stream(slow, open_source(str(digit_video), realtime=4.0, size=slow.input_spec))
    results = list(run)
    summary = run.summary()
    assert summary.mode == "live" and summary.dropped > 10 and summary.frames_read == 40
    assert summary.processed + summary.dropped == summary.frames_read
    assert sum(r.dropped_before for r in results) == summary.dropped
    assert [r.frame for r in results] == sorted(r.frame for r in results)
    latency = [r.latency_ms for r in results]
    assert max(latency) < 50 + 2 * 16.7 + 60  # one inference, one frame's wait, and scheduling slack
    assert summary.latency_ms["p95"] < 150


def test_an_image_folder_is_a_source_and_predict_takes_folders(tmp_path, digits):
    images, labels = digits
    for i in range(12):
        sub = tmp_path / "imgs" / ("b" if i % 2 else "a")
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[i]).save(sub / f"{i:02d}.png")
    results = list(stream(str(DIGITS_INT8), str(tmp_path / "imgs")))
    assert len(results) == 12 and [r.time_ms for r in results] == [None] * 12
    from click.testing import CliRunner

    from edgelite.cli.commands import main
    out = CliRunner().invoke(main, ["predict", str(DIGITS_INT8), str(tmp_path / "imgs"), "--jsonl"])
    assert out.exit_code == 0, out.output
    sources = [json.loads(line)["source"] for line in out.stdout.splitlines()]
    assert sources == sorted(str(p) for p in (tmp_path / "imgs").rglob("*.png"))


def jpeg(pixels: np.ndarray) -> bytes:
    import io
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


@pytest.fixture()
def mjpeg_server():
    """An HTTP MJPEG server on 127.0.0.1 (multipart/x-mixed-replace, as IP cameras serve), torn down after."""
    frames: list[bytes] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.end_headers()
            for data in frames:
                self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(data)
                                 + data + b"\r\n")
                time.sleep(0.01)

        def log_message(self, *args):
            pass
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield frames, f"http://127.0.0.1:{server.server_address[1]}/stream.mjpg"
    server.shutdown()
    server.server_close()
    thread.join()


def test_an_http_mjpeg_stream_whose_frame_size_changes_mid_run(mjpeg_server):
    frames, url = mjpeg_server
    photos = face_frames(12)
    frames += [jpeg(p) for p in photos[:6]] + [jpeg(np.asarray(Image.fromarray(p).resize((320, 240))))
                                                for p in photos[6:]]
    run = stream(str(DIGITS_INT8), url, mode="video", full_size=True)
    results = list(run)
    assert len(results) == 12 and {r.image.shape for r in results} == {(480, 640, 3), (240, 320, 3)}
    # the server hangs up after its last frame, as a camera that goes away does: every frame, then one line
    assert run.summary().error in (None, f"{url}: stopped after 12 frames (Input/output error)")


@pytest.fixture()
def tcp_server():
    """A raw MJPEG stream over TCP on 127.0.0.1 (concatenated JPEGs, what many encoders push), torn down after."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    frames: list[bytes] = []

    def serve():
        conn, _ = listener.accept()
        with conn:
            for data in frames:
                conn.sendall(data)
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield frames, f"tcp://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()
    thread.join(timeout=5)


def test_a_tcp_stream(tcp_server):
    frames, url = tcp_server
    frames += [jpeg(p) for p in face_frames(8)]
    run = stream(str(DIGITS_INT8), url, mode=RunningMode.VIDEO)
    results = list(run)
    assert run.summary().error is None and len(results) == 8 and run.summary().mode == "every frame"


def test_a_url_that_never_answers_is_one_line_within_its_timeout():
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    started = time.monotonic()
    with pytest.raises(InputError, match=r"no answer within 1.5 s"):
        open_source(f"tcp://127.0.0.1:{silent.getsockname()[1]}", timeout=1.5)
    assert time.monotonic() - started < 10
    silent.close()


class FakePicamera2:
    """picamera2's documented API, as far as edgelite uses it: the lores stream in YUV420, requests released."""

    configured: dict = {}
    fail_after: int | None = None

    def __init__(self, number=0):
        import skimage.data
        self.photo, self.served, self.released = skimage.data.astronaut(), 0, 0

    def create_video_configuration(self, main, lores):
        return {"main": main, "lores": lores}

    def configure(self, config):
        FakePicamera2.configured = config

    def start(self):
        self.size = FakePicamera2.configured["lores"]["size"]

    def capture_request(self):
        if self.fail_after is not None and self.served >= self.fail_after:
            raise RuntimeError("camera disconnected")
        self.served += 1
        width, height = self.size
        rgb = np.asarray(Image.fromarray(self.photo).resize((width, height))).astype(np.float32)
        y = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
        u = (rgb[..., 2] - y) / 1.772 + 128
        v = (rgb[..., 0] - y) / 1.402 + 128
        planes = np.concatenate([y.reshape(-1), u[::2, ::2].reshape(-1), v[::2, ::2].reshape(-1)])
        array = np.clip(np.round(planes), 0, 255).astype(np.uint8).reshape(height * 3 // 2, width)
        camera = self
        return types.SimpleNamespace(make_array=lambda name: array, get_metadata=lambda: {"SensorTimestamp": 10**9},
                                     release=lambda: setattr(camera, "released", camera.released + 1))

    def stop(self):
        pass

    def close(self):
        pass


@pytest.fixture()
def fake_picamera2(monkeypatch):
    module = types.ModuleType("picamera2")
    module.Picamera2 = FakePicamera2
    monkeypatch.setitem(sys.modules, "picamera2", module)
    FakePicamera2.fail_after = None
    return FakePicamera2


def test_the_pi_camera_lores_stream_is_set_to_the_models_size(fake_picamera2, face_model):  # noqa: F811
    """Not verified on hardware: a stand-in with picamera2's API. The ISP's lores stream is asked for the model's
    input size and arrives as YUV420; edgelite turns it into RGB close to the photo it came from."""
    detector = edgelite.load(face_model, decoder=DECODER)
    run = stream(detector, "picamera2", frames=3)
    results = list(run)
    assert fake_picamera2.configured["lores"] == {"size": (128, 128), "format": "YUV420"}
    assert len(results) == 3 and results[0].image.shape == (128, 128, 3) and results[0].time_ms == 1000.0
    import skimage.data
    expected = np.asarray(Image.fromarray(skimage.data.astronaut()).resize((128, 128)), np.float32)
    assert np.abs(results[0].image.astype(np.float32) - expected).mean() < 4  # chroma subsampling costs a little
    assert len(results[0].result.detections) == 1  # the astronaut's face


def test_a_camera_that_disappears_mid_run_ends_cleanly_with_one_line(fake_picamera2, tmp_path):
    fake_picamera2.fail_after = 5
    run = stream(str(DIGITS_INT8), "picamera2")
    results = list(run)
    summary = run.summary()
    assert len(results) <= 5 and summary.ended == "error"
    assert summary.error == "picamera2:0: stopped delivering frames (camera disconnected)"


def test_yuv420_round_trip_is_close():
    rgb = np.random.default_rng(0).integers(0, 256, (4, 6, 3)).astype(np.uint8)
    rgb[:] = rgb[::2, ::2].repeat(2, 0).repeat(2, 1)  # chroma shared by 2x2 blocks, as I420 stores it
    y = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    u, v = (rgb[..., 2] - y) / 1.772 + 128, (rgb[..., 0] - y) / 1.402 + 128
    planes = np.clip(np.round(np.concatenate([y.reshape(-1), u[::2, ::2].reshape(-1), v[::2, ::2].reshape(-1)])),
                     0, 255).astype(np.uint8).reshape(6, 6)
    assert np.abs(yuv420_to_rgb(planes, (6, 4)).astype(int) - rgb).max() <= 3


def test_cameras_are_opened_through_v4l2_and_a_missing_one_is_one_line():
    """No camera here (and FFmpeg has no test V4L2 device): the plumbing is an index mapped to its device node and
    a clear line when it does not exist."""
    for spec in ("7", "/dev/video7"):
        with pytest.raises(InputError, match=r"^/dev/video7: no such camera or file$"):
            open_source(spec)


def test_threads_end_with_the_stream_however_it_ends(digit_video):
    before = set(threading.enumerate())
    list(stream(str(DIGITS_INT8), str(digit_video)))  # to the end
    for r in stream(str(DIGITS_INT8), str(digit_video)):  # broken off early
        break
    run = stream(str(DIGITS_INT8), str(digit_video), realtime=1.0)  # stopped from another thread
    thread = run.run_in_background(lambda r: None)
    time.sleep(0.3)
    run.stop()
    thread.join(5)
    time.sleep(0.2)
    assert set(threading.enumerate()) - before == set()


def test_an_exception_in_the_callback_is_reported_not_fatal(digit_video):
    seen = []

    def callback(result):
        seen.append(result.frame)
        if result.frame % 2:
            raise ValueError("the app's own bug")
    run = stream(str(DIGITS_INT8), str(digit_video))
    run.run_in_background(callback).join(30)
    summary = run.summary()
    assert len(seen) == 40 and summary.processed == 40
    assert summary.callback_errors == 20 and summary.first_callback_error == "ValueError: the app's own bug"


def cli(*args, timeout=60):
    return subprocess.run([sys.executable, "-c", "from edgelite.cli.commands import main; main()", "stream", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, timeout=timeout)


def test_cli_jsonl_gives_every_frame_then_a_summary(digit_video):
    out = cli(DIGITS_INT8, digit_video, "--jsonl")
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    frames, summary = lines[:-1], lines[-1]["summary"]
    assert len(frames) == 40 and all({"frame", "time_ms", "latency_ms", "dropped_before", "classes"} <= set(f)
                                     for f in frames)
    assert summary["frames_read"] == summary["processed"] == 40 and summary["dropped"] == 0
    assert set(summary["latency_ms"]) == {"p50", "p95", "p99"} and summary["fps"] > 0
    assert {"decode", "resize", "quantize", "invoke", "postprocess"} <= set(summary["stages_ms"])


def test_cli_draws_an_annotated_video(face_model, face_video, tmp_path):  # noqa: F811
    out = cli(face_model, face_video, "--decoder", DECODER, "--draw", tmp_path / "drawn.mp4", "--frames", "10")
    assert out.returncode == 0, out.stderr
    with av.open(str(tmp_path / "drawn.mp4")) as container:
        drawn = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(drawn) == 10 and drawn[0].shape == (480, 640, 3)
    assert [p.name for p in tmp_path.iterdir()] == ["drawn.mp4"]  # no temporary file left beside it


@pytest.mark.parametrize("args, code, fragment", [
    (["missing.mp4"], 1, "missing.mp4: no such file"),
    (["README.md"], 1, "README.md: not a video FFmpeg can read"),
    (["ftp://example/x"], 2, "unsupported URL scheme"),
    (["/dev/video9"], 1, "/dev/video9: no such camera or file"),
    (["VIDEO", "--serve", "0.0.0.0:0"], 2, "needs --token"),
])
def test_cli_bad_sources_are_one_line(args, code, fragment, digit_video):
    out = cli(DIGITS_INT8, *[digit_video if a == "VIDEO" else a for a in args])
    assert out.returncode == code, out.stderr
    assert fragment in out.stderr and "Traceback" not in out.stderr


def test_a_truncated_video_skips_what_is_damaged_and_says_so(face_video, tmp_path):
    data = face_video.read_bytes()
    damaged = tmp_path / "damaged.mp4"
    middle = len(data) // 2
    damaged.write_bytes(data[:middle] + bytes(4096) + data[middle + 4096:])
    out = cli(DIGITS_INT8, damaged, "--jsonl")
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    summary = json.loads(out.stdout.splitlines()[-1])["summary"]
    # every one of the 30 frames is either processed or counted as skipped, and some were damaged
    assert summary["skipped"] >= 1 and summary["processed"] >= 10 and summary["processed"] + summary["skipped"] == 30
    text = cli(DIGITS_INT8, damaged)
    assert text.returncode == 0 and f"{summary['skipped']} skipped" in text.stdout, text.stdout


def test_serve_on_a_port_in_use_is_one_line(digit_video):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    out = cli(DIGITS_INT8, digit_video, "--serve", f"127.0.0.1:{taken.getsockname()[1]}")
    taken.close()
    assert out.returncode == 1 and "already in use" in out.stderr and "Traceback" not in out.stderr


def test_ctrl_c_ends_cleanly_with_the_summary(digit_video):
    import signal
    child = subprocess.Popen([sys.executable, "-c", "from edgelite.cli.commands import main; main()", "stream", str(DIGITS_INT8),
                              str(digit_video), "--realtime", "--speed", "0.25", "--jsonl"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, cwd=ROOT,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # a test runner may ignore it
    assert child.stdout.readline().startswith('{"frame": 0')  # running
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=30)
    summary = json.loads(out.splitlines()[-1])["summary"]
    assert child.returncode == 0 and summary["ended"] == "stopped" and "Traceback" not in err
    assert 1 <= summary["processed"] < 40


def test_sigterm_also_ends_cleanly_with_the_summary(digit_video):
    """How systemd stops a device app: the run ends after the frame in hand and says what it did."""
    child = subprocess.Popen([sys.executable, "-c", "from edgelite.cli.commands import main; main()", "stream", str(DIGITS_INT8),
                              str(digit_video), "--realtime", "--speed", "0.25", "--jsonl"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, cwd=ROOT)
    assert child.stdout.readline().startswith('{"frame": 0')
    child.terminate()
    out, err = child.communicate(timeout=30)
    summary = json.loads(out.splitlines()[-1])["summary"]
    assert child.returncode == 0 and summary["ended"] == "stopped" and "Traceback" not in err


def duration_s(path) -> float:
    with av.open(str(path)) as container:
        return container.duration / 1e6


@pytest.fixture(scope="module")
def fast_video(tmp_path_factory):
    """6.25 s at 960 frames/s (6,000 small frames of a moving photo): faster than any loop here takes it."""
    import skimage.data
    photo = Image.fromarray(skimage.data.coffee()).resize((96, 64))
    frames = []
    for i in range(6000):
        canvas = Image.new("RGB", (160, 120), (20, 20, 30))
        canvas.paste(photo, (i % 64, (i // 7) % 56))
        frames.append(np.asarray(canvas))
    path = tmp_path_factory.mktemp("fast") / "fast.mp4"
    write_video(path, frames, fps=960)
    return path


def test_draw_is_timed_by_the_source_not_by_the_rate_frames_were_processed(fast_video, tmp_path):
    """Live mode drops most frames of a 960 frames/s source; the video still lasts as long as the source (the
    drawn frames held until the next), where a fixed rate made 6.25 s of source a 56.8 s video."""
    out = tmp_path / "drawn.mp4"
    done = cli(DIGITS_INT8, fast_video, "--realtime", "--draw", out, "--jsonl", timeout=120)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.splitlines()[-1])["summary"]
    assert summary["dropped"] > 0 and summary["frames_read"] == summary["processed"] + summary["dropped"]
    assert abs(duration_s(out) - 6.25) <= 0.2 and abs(duration_s(fast_video) - 6.25) <= 0.01
    with av.open(str(out)) as container:
        assert sum(1 for _ in container.decode(video=0)) == summary["processed"]
    assert [p.name for p in tmp_path.iterdir()] == ["drawn.mp4"]


@pytest.mark.parametrize("name", ["out.txt", "out.gif", "old.jpg", "noextension"])
def test_draw_refuses_a_file_type_it_cannot_write_before_any_work(digit_video, tmp_path, name):
    (tmp_path / "old.jpg").write_bytes(b"an existing picture")
    done = cli(DIGITS_INT8, digit_video, "--draw", tmp_path / name)
    assert done.returncode == 2 and f"--draw {tmp_path / name}: cannot write" in done.stderr, done.stderr
    assert ".mp4, .m4v, .mov, .mkv, .avi, .webm" in done.stderr and "Traceback" not in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.jpg"]
    assert (tmp_path / "old.jpg").read_bytes() == b"an existing picture"


def test_a_run_that_fails_before_drawing_leaves_an_existing_video_as_it_was(tmp_path):
    (tmp_path / "drawn.mp4").write_bytes(b"last week's video")
    done = cli(DIGITS_INT8, tmp_path / "missing.mp4", "--draw", tmp_path / "drawn.mp4")
    assert done.returncode == 1 and "missing.mp4: no such file" in done.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["drawn.mp4"]
    assert (tmp_path / "drawn.mp4").read_bytes() == b"last week's video"


def test_a_file_cut_short_says_so(face_video, tmp_path):
    """A file whose header lists more frames than it holds (its tail cut off: a pulled card, a broken copy) is
    read to where it ends, and the summary says it was cut, how far it got, and where it ended."""
    whole = tmp_path / "whole.mp4"
    with av.open(str(face_video)) as source, av.open(str(whole), "w", options={"movflags": "faststart"}) as out:
        copy = out.add_stream_from_template(source.streams.video[0])
        for packet in source.demux(video=0):
            if packet.dts is not None:
                packet.stream = copy
                out.mux(packet)
    data = whole.read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[:len(data) // 2])
    done = cli(DIGITS_INT8, tmp_path / "cut.mp4", "--jsonl")
    summary = json.loads(done.stdout.splitlines()[-1])["summary"]
    assert done.returncode == 0 and summary["ended"] == "cut short" and 0 < summary["processed"] < 30
    assert "of the 30 frames its header lists" in summary["warning"] and "warning: " in done.stderr
    whole_run = json.loads(cli(DIGITS_INT8, whole, "--jsonl").stdout.splitlines()[-1])["summary"]
    assert whole_run["ended"] == "end of source" and whole_run["warning"] is None and whole_run["processed"] == 30


@pytest.fixture()
def dropping_camera():
    """An MJPEG camera on 127.0.0.1 that sends 6 frames per connection and hangs up, ``connections`` times; then
    its port is closed. Yields (url, a list of the accepted connections' times)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    frames = [jpeg(p) for p in face_frames(6)]
    accepted: list[float] = []

    def serve(connections: int = 2):
        for _ in range(connections):
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(time.monotonic())
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\n\r\n")
                for data in frames:
                    conn.sendall(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(data)
                                 + data + b"\r\n")
                    time.sleep(0.02)
        listener.close()  # the camera is gone for good
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://admin:pa55word@127.0.0.1:{listener.getsockname()[1]}/video.mjpg", accepted
    listener.close()
    thread.join(timeout=10)


def test_a_network_camera_that_drops_is_reconnected_then_given_up_on(dropping_camera):
    url, accepted = dropping_camera
    started = time.monotonic()
    done = cli(DIGITS_INT8, url, "--reconnect", "3", "--every-frame", "--jsonl", "--timeout", "2")
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    summary = lines[-1]["summary"]
    assert done.returncode == 1 and len(accepted) == 2 and time.monotonic() - started < 30
    assert summary["processed"] == 12 and summary["reconnects"] == 1 and 0 < summary["gap_s"] < 3, summary
    assert [line.get("reconnects", 0) for line in lines[:-1]] == [0] * 6 + [1] * 6
    assert [line["frame"] for line in lines[:-1]] == list(range(12))  # indices go on counting
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith("error: http://***@127.0.0.1:") and "gave up reconnecting after 3 s and" in error
    assert "pa55word" not in done.stdout + done.stderr and "Traceback" not in done.stderr


def test_without_reconnect_a_dropped_camera_ends_the_run(dropping_camera):
    url, accepted = dropping_camera
    done = cli(DIGITS_INT8, url, "--every-frame", "--jsonl", "--timeout", "2")
    summary = json.loads(done.stdout.splitlines()[-1])["summary"]
    assert summary["processed"] == 6 and summary["reconnects"] == 0 and len(accepted) == 1


def test_stream_takes_predicts_preprocessing_options(digit_video, tmp_path):
    """A model's normalization given on the command line (as for a third-party model with no record) reaches
    every frame: the stream's scores with --mean/--std/--resize are predict's with the same options on each frame
    extracted, and differ from the stream's without them."""
    options = ["--mean", "100", "--std", "40", "--resize", "center-crop"]
    frames = extracted(digit_video, tmp_path / "frames")[:8]
    given = cli(DIGITS_FLOAT, digit_video, "--jsonl", "--frames", "8", *options)
    plain = cli(DIGITS_FLOAT, digit_video, "--jsonl", "--frames", "8")
    assert given.returncode == 0 and plain.returncode == 0, given.stderr
    ours = [json.loads(line)["classes"][0] for line in given.stdout.splitlines()[:-1]]
    theirs = [r["classes"][0] for r in json.loads(subprocess.run(
        [sys.executable, "-c", "from edgelite.cli.commands import main; main()", "predict", str(DIGITS_FLOAT), *map(str, frames),
         "--json", *options], capture_output=True, text=True, cwd=ROOT, timeout=60, check=True).stdout)["results"]]
    assert [c["id"] for c in ours] == [c["id"] for c in theirs]
    assert max(abs(a["score"] - b["score"]) for a, b in zip(ours, theirs)) < 0.02  # the decoder scales frames
    untouched = [json.loads(line)["classes"][0] for line in plain.stdout.splitlines()[:-1]]
    assert max(abs(a["score"] - b["score"]) for a, b in zip(ours, untouched)) > 0.05


def test_the_recent_window_ages_out_during_a_stall(digit_video):
    """The page's recent figures cover results of the last RECENT_SECONDS only, also when no new result arrives
    (a camera reconnecting): an old window must not stay on screen as if current."""
    from edgelite.runtime.video.stream import RECENT_SECONDS
    run = stream(str(DIGITS_INT8), str(digit_video))
    list(run)
    assert run.recent()["p95"] is not None and run.recent()["fps"] > 0
    run._finished += RECENT_SECONDS + 1  # the same results, seen from a moment after a stall
    assert run.recent() == {"seconds": 0.0, "fps": 0.0, "p50": None, "p95": None}


def test_the_running_mode_is_one_typed_value_named_in_the_summary(digit_video):
    """live / every frame is a RunningMode (not a flag): by name or value, any case; a wrong one is one line."""
    assert RunningMode.of("LIVE") is RunningMode.LIVE and RunningMode.of("every frame") is RunningMode.VIDEO
    assert RunningMode.of("video") is RunningMode.VIDEO and RunningMode.of(RunningMode.LIVE) is RunningMode.LIVE
    with pytest.raises(InputError, match="running mode 'fast' is not one of live, video"):
        RunningMode.of("fast")
    run = stream(str(DIGITS_INT8), str(digit_video), mode="live", realtime=4.0, frames=3)
    assert run.mode is RunningMode.LIVE and len(list(run)) == 3 and run.summary().mode == "live"
    every = stream(str(DIGITS_INT8), str(digit_video))
    assert every.mode is RunningMode.VIDEO  # a file: every frame by default
    every.close()
