"""Where frames come from: video files, V4L2/USB cameras, network streams, the Raspberry Pi camera and image
folders, each read by a library made for it (PyAV for everything FFmpeg reads, picamera2 for the Pi camera,
pillow for images), and each handed on as the same ``Frame``.

PyAV over OpenCV's headless build, measured on the same 640x480 file (``benchmarks/stream.py``): OpenCV read
and converted it about 1.8x faster (the gap is the YUV-to-RGB conversion, OpenCV's own SIMD code against
FFmpeg's swscale; PyAV decodes alone at over 3,000 frames/s), about 0.4 ms a frame, under a tenth of an int8
MobileNetV2 invoke, and the every-frame goal holds with PyAV. PyAV was kept because it gives every frame its
container timestamp, takes open and read timeouts for every network source, reads from a file object (so a
file is opened and checked by ``files.py``'s rules first, with no window to swap it), opens files, V4L2,
RTSP, HTTP and TCP through one API, and ships its FFmpeg in the wheel for x86-64 and aarch64. Swapping the
decoder is this one class.

A source says whether it is ``live`` (frames arrive whether or not anyone reads them: cameras, network
streams, and files replayed with ``realtime``) or not (files and folders: every frame, at the reader's pace).
"""
from __future__ import annotations

import dataclasses
import functools
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from edgelite.runtime.errors import InputError
from edgelite.runtime.modelfile.files import expand_images, open_regular, without_credentials
from edgelite.runtime.tasks.preprocess import as_image, describe
from edgelite.runtime.version import install_extra

NETWORK = ("rtsp://", "rtsps://", "http://", "https://", "tcp://", "udp://", "rtmp://")
CAMERA = re.compile(r"^(/dev/video\d+|\d+)$")
PICAMERA = re.compile(r"^picamera2(:\d+)?$")
OPEN_TIMEOUT = 10.0  # seconds a network source or camera may take to answer, then to send each packet
FRAME_CEILING_MB = 64  # no compressed frame, and no single allocation FFmpeg makes, above this (--max-frame-mb)


class UsageError(InputError):
    """A source edgelite cannot read at all (an unsupported URL scheme): exit 2, not 1."""


@dataclass(frozen=True)
class Frame:
    """One decoded frame: its 0-based index in the source, the source's timestamp, when it became available
    (``time.perf_counter()``; capture-to-result latency starts there), and its pixels: an RGB array, or the
    conversion that makes one from the decoder's picture, run the first time ``image`` is asked for. A live
    stream converts only the frames it processes: converting every decoded frame cost a reader more than
    decoding did, and made the backlog form before the newest-frame slot (``benchmarks/stream.py``)."""

    index: int
    time_ms: float | None
    captured: float
    pixels: np.ndarray | Callable[[], np.ndarray]
    decode_ms: float
    source_size: tuple[int, int] | None = None  # (width, height) before the decoder scaled it; None: not scaled

    @cached_property
    def image(self) -> np.ndarray:
        """The frame as an RGB array (converted once, on the thread that first asks)."""
        return self.pixels() if callable(self.pixels) else self.pixels


def open_source(spec: str, *, realtime: float | None = None, size=None, timeout: float = OPEN_TIMEOUT,
                max_frame_mb: float = FRAME_CEILING_MB, reconnect: float = 0.0):
    """The source ``spec`` names: a folder or glob of images, a video file, ``/dev/videoN`` or a camera index,
    a network URL, or ``picamera2[:N]``. ``realtime`` replays a file at that multiple of its own frame rate, as
    a camera would produce it; ``size`` (the model's InputSpec) asks the decoder for frames sized for it;
    ``max_frame_mb`` is the ceiling on one compressed frame (see ``frame_limit``); ``reconnect`` is how many
    seconds a network source that drops is tried again (``Reconnecting``; 0: never; files never are)."""
    text = os.fspath(spec)
    if PICAMERA.match(text):
        return PiCameraSource(int(text.split(":")[1]) if ":" in text else 0,
                              (size.width, size.height) if size is not None else None)
    if "://" in text:
        if not text.startswith(NETWORK):
            raise UsageError(f"{describe(text)}: unsupported URL scheme; edgelite reads "
                             f"{', '.join(s[:-3] for s in NETWORK)}")

        def connect() -> VideoSource:
            return VideoSource(text, live=True, size=size, timeout=timeout, max_frame_mb=max_frame_mb)
        return Reconnecting(connect, reconnect) if reconnect > 0 else connect()
    if CAMERA.match(text):
        device = text if text.startswith("/dev/") else f"/dev/video{text}"
        return VideoSource(device, live=True, size=size, timeout=timeout, fmt="v4l2", max_frame_mb=max_frame_mb)
    if os.path.isdir(text) or any(c in text for c in "*?["):
        return ImageSource(text)
    return VideoSource(text, live=realtime is not None, size=size, timeout=timeout, speed=realtime, file=True,
                       max_frame_mb=max_frame_mb)


def video_module():
    try:
        import av
    except ImportError:
        raise InputError(f"reading video needs PyAV: {install_extra('video')}") from None
    return av


def frame_limit(width: int, height: int, ceiling_bytes: int) -> int:
    """The most bytes one compressed frame of a ``width`` x ``height`` stream may take: twice a raw RGB frame
    of that size (a JPEG or an intra frame at the highest quality stays under one) plus 1 MiB of headers,
    and never more than the ceiling. A camera that sends more is lying about what it sends."""
    return min(ceiling_bytes, 2 * 3 * width * height + (1 << 20))


def cap_allocations(ceiling_bytes: int) -> bool:
    """Asks FFmpeg to refuse any single allocation over ``ceiling_bytes`` (``av_max_alloc``), so a network
    part that claims 2 GB and keeps sending fails at the ceiling instead of growing one packet until the
    device runs out of memory (benchmarks/stream.py, hostile_camera, measures it). Process-wide, as
    FFmpeg's setting is; found through the library PyAV loaded. False where that library cannot be found
    (not Linux): then only the per-frame check in ``VideoSource.frames`` applies, after the packet is read."""
    util = _avutil()
    if util is None:
        return False
    util.av_max_alloc(ceiling_bytes)
    return True


@functools.cache
def _avutil():
    """The libavutil PyAV loaded (found once, in /proc/self/maps), or None."""
    import ctypes
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            paths = {line.split(None, 5)[5].strip() for line in maps if "libavutil" in line and "/" in line}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            util = ctypes.CDLL(path)  # already loaded by PyAV: the same library, not a second copy
            util.av_max_alloc.argtypes = [ctypes.c_size_t]
            return util
        except (OSError, AttributeError):
            continue
    return None


def decode_size(width: int, height: int, spec) -> tuple[int, int] | None:
    """The size to ask the decoder for so the model's preprocessing has (almost) nothing left to do: the
    letterbox's inner size, the center crop's covering size, or the input size for a stretch; None (full size)
    when that would not shrink the frame. Measured on a 640x480 file for a 224x224 center crop: swscale's
    conversion to RGB at full size and pillow's resize take 2.2 ms a frame, swscale scaling to 300x224 as it
    converts and pillow only cropping 0.87 ms (an earlier rule scaled only at 4x or more, and left MobileNetV2's
    reader thread short of the every-frame goal). Area averaging, not swscale's fast bilinear: a 5x reduction by
    fast bilinear aliased enough to move the face detector's boxes (8 of 31 within IoU 0.8 of the full-size
    frames' boxes, against all but a few by area).
    Results are mapped back to the source's pixels, so the size decoded never shows in them."""
    if spec is None:
        return None
    if spec.resize == "stretch":
        w, h = spec.width, spec.height
    else:
        scale = (min if spec.resize == "letterbox" else max)(spec.width / width, spec.height / height)
        w, h = max(2, round(width * scale)), max(2, round(height * scale))
    w, h = w + (w & 1), h + (h & 1)  # chroma planes want even sizes
    return (w, h) if (w, h) != (width, height) and w <= width and h <= height else None


class VideoSource:
    """Anything FFmpeg reads, through PyAV: files, cameras (V4L2), RTSP, HTTP (MJPEG and more), TCP."""

    def __init__(self, url: str, *, live: bool, size=None, timeout: float = OPEN_TIMEOUT, fmt: str | None = None,
                 speed: float | None = None, file: bool = False, max_frame_mb: float = FRAME_CEILING_MB):
        av = video_module()
        self.name, self.live, self.size, self.speed, self.skipped = describe(url), live, size, speed, 0
        self.timeout, self.ceiling, self.file = timeout, int(max_frame_mb * (1 << 20)), file
        self.cut: str | None = None  # why the file ended early (``_cut_short``)
        self.last_ms: float | None = None
        cap_allocations(self.ceiling)
        self._handle = os.fdopen(open_regular(url, "video", InputError), "rb") if file else None
        try:
            self._container = self._opened(av, url, fmt)
        except InputError:
            self.close()  # the file handle; no container was made
            raise
        if not self._container.streams.video:
            self.close()
            raise InputError(f"{self.name}: holds no video stream")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO" if not live else "SLICE"  # frame threads add a frame of latency per core
        rate = self._stream.average_rate
        self.fps = float(rate) if rate else None
        context = self._stream.codec_context
        self.limit = frame_limit(context.width, context.height, self.ceiling) if context.width and context.height \
            else self.ceiling

    def _opened(self, av, url: str, fmt: str | None):
        """The container FFmpeg opens, or InputError saying why in the user's terms."""
        opening, timeout = time.monotonic(), self.timeout
        try:
            return av.open(self._handle or url, format=fmt, timeout=(timeout, timeout),
                           options={"rtsp_transport": "tcp"} if url.startswith("rtsp") else {})
        except av.error.ExitError:
            raise InputError(f"{self.name}: no answer within {timeout:g} s") from None
        except av.error.InvalidDataError:
            if not self.file and time.monotonic() - opening >= 0.9 * timeout:  # RTSP's reader says "invalid
                raise InputError(f"{self.name}: no answer within {timeout:g} s") from None  # data" when nothing came
            raise InputError(f"{self.name}: not a video FFmpeg can read") from None
        except FileNotFoundError:
            raise InputError(f"{self.name}: no such camera or file") from None
        except MemoryError:
            raise InputError(f"{self.name}: sent more than --max-frame-mb {self.ceiling / (1 << 20):g} allows in one "
                             "piece") from None
        except (av.error.FFmpegError, OSError) as exc:
            raise InputError(f"{self.name}: cannot open as video ({_why(exc)})") from None

    def frames(self) -> Iterator[Frame]:
        """Every frame in order; a packet that will not decode is skipped and counted (``skipped``); a source
        that fails mid-run raises InputError naming it."""
        av = video_module()
        index, started, packets = 0, time.perf_counter(), self._container.demux(self._stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                self.cut = self._cut_short(index)
                return
            except av.error.ExitError:
                raise InputError(f"{self.name}: no frame for {self.timeout:g} s (timed out after {index} frames)") \
                    from None
            except MemoryError:
                raise InputError(f"{self.name}: a frame larger than --max-frame-mb {self.ceiling / (1 << 20):g} "
                                 f"(after {index} frames)") from None
            except (av.error.FFmpegError, OSError) as exc:
                raise InputError(f"{self.name}: stopped after {index} frames ({_why(exc)})") from None
            if packet.size > self.limit:
                raise InputError(f"{self.name}: sent {packet.size / (1 << 20):.1f} MB for one frame, more than a "
                                 f"{self._stream.codec_context.width}x{self._stream.codec_context.height} frame "
                                 f"can be ({self.limit / (1 << 20):.1f} MB; after {index} frames)")
            t0 = time.perf_counter()
            try:
                decoded = packet.decode()
            except av.error.FFmpegError:
                self.skipped += 1
                continue
            for frame in decoded:
                yield self._frame(frame, index, started, t0)
                index += 1
                t0 = time.perf_counter()

    def _cut_short(self, decoded: int) -> str | None:
        """Why a file that ended after ``decoded`` frames was cut short (its header lists more), or None. A file
        cut mid-write (a camera's card pulled, a copy interrupted) otherwise reads as a shorter video."""
        listed = self._stream.frames
        if not self.file or not listed or decoded + self.skipped >= listed:
            return None
        duration = float(self._stream.duration * self._stream.time_base) if self._stream.duration else None
        return (f"{self.name}: cut short: {decoded} of the {listed} frames its header lists"
                + (f", {self.last_ms / 1e3:.2f} s of {duration:.2f} s" if duration and self.last_ms is not None else ""))

    def _frame(self, frame, index: int, started: float, t0: float) -> Frame:
        """The decoded picture, to become RGB scaled to the size the model's preprocessing wants
        (``decode_size``) when it is first asked for; ``t0`` is when its decoding began. A replayed file hands
        the decoded picture over at its own time, as a camera's driver would."""
        t_ms = None if frame.time is None else frame.time * 1e3
        self.last_ms = t_ms
        if self.speed and t_ms is not None:  # the frame exists at its own time, not before; a reader that
            due = started + t_ms / 1e3 / self.speed  # falls behind adds to its latency
            now = time.perf_counter()
            if due > now:
                time.sleep(due - now)
            t0 = max(due, t0)
        scaled = decode_size(frame.width, frame.height, self.size)

        def rgb() -> np.ndarray:
            return frame.to_ndarray(format="rgb24") if scaled is None else \
                frame.to_ndarray(format="rgb24", width=scaled[0], height=scaled[1], interpolation="AREA")
        done = time.perf_counter()  # a live source's frame exists once decoded; a replayed one at its own time
        return Frame(index, t_ms, due if self.speed and t_ms is not None else done, rgb, (done - t0) * 1e3,
                     None if scaled is None else (frame.width, frame.height))

    def close(self) -> None:
        container = getattr(self, "_container", None)
        if container is not None:
            container.close()
        if self._handle is not None:
            self._handle.close()


BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 8.0)  # waits between attempts to reach a camera again, the last repeated


class Reconnecting:
    """A network camera that is opened again when it drops, as the tools people run on a Pi do (Frigate,
    go2rtc): after a failure or an end of stream, attempts with growing waits (BACKOFF_S) for up to ``seconds``,
    then one line saying it gave up. The gap is counted (``reconnects``, ``gap_s``, and ``frames_missed`` where
    the camera states its frame rate) and frame indices go on counting. The first connection is not retried: a
    wrong address fails at once."""

    live = True

    def __init__(self, connect: Callable[[], VideoSource], seconds: float):
        self._connect, self.seconds = connect, seconds
        self._source: VideoSource | None = connect()
        self.name, self.fps = self._source.name, self._source.fps
        self.reconnects, self.gap_s, self.frames_missed, self.reconnecting = 0, 0.0, 0, False
        self._skipped_before = 0
        self._closing = threading.Event()

    @property
    def skipped(self) -> int:
        return self._skipped_before + (self._source.skipped if self._source is not None else 0)

    @skipped.setter
    def skipped(self, value: int) -> None:
        if self._source is not None:
            self._source.skipped = value - self._skipped_before

    def frames(self) -> Iterator[Frame]:
        index = 0
        while True:
            assert self._source is not None
            why = "the stream ended"
            try:
                for frame in self._source.frames():
                    yield dataclasses.replace(frame, index=index)
                    index += 1
            except InputError as exc:
                why = str(exc)
            if self._closing.is_set():
                return
            self._reopen(why)

    def _reopen(self, why: str) -> None:
        """Opens the camera again within ``seconds``, or raises InputError naming the first failure."""
        assert self._source is not None
        self._skipped_before += self._source.skipped
        self._source.close()
        self._source, self.reconnecting = None, True
        dropped, attempts, last = time.monotonic(), 0, why
        while time.monotonic() - dropped < self.seconds:
            if self._closing.wait(min(BACKOFF_S[min(attempts, len(BACKOFF_S) - 1)],
                                      max(0.0, self.seconds - (time.monotonic() - dropped)))):
                raise InputError(f"{self.name}: stopped while reconnecting")
            attempts += 1
            try:
                self._source = self._connect()
            except InputError as exc:
                last = str(exc)
                continue
            gap = time.monotonic() - dropped
            self.reconnects, self.gap_s, self.reconnecting = self.reconnects + 1, self.gap_s + gap, False
            self.frames_missed += round(gap * self.fps) if self.fps else 0
            return
        if attempts:
            raise InputError(f"{self.name}: {why.removeprefix(self.name + ': ')}; gave up reconnecting after "
                             f"{self.seconds:g} s and {attempts} attempts (last: {last.removeprefix(self.name + ': ')})")
        raise InputError(why)

    def close(self) -> None:
        self._closing.set()
        if self._source is not None:
            self._source.close()


def _why(exc: BaseException) -> str:
    text = without_credentials(getattr(exc, "strerror", None) or str(exc))  # FFmpeg names the URL it opened
    return " ".join(text.split())[:200] or type(exc).__name__


class ImageSource:
    """A folder (recursively, in a stable order) or a glob of images, read at the reader's pace."""

    live = False
    fps = None
    skipped = 0

    def __init__(self, spec: str):
        import glob
        self.name = describe(spec)
        self.paths = expand_images([spec]) if os.path.isdir(spec) else expand_images(sorted(glob.glob(spec)))
        if not self.paths:
            raise InputError(f"{self.name}: no images found")

    def frames(self) -> Iterator[Frame]:
        for index, path in enumerate(self.paths):
            t0 = time.perf_counter()
            try:
                pixels = np.asarray(as_image(path).convert("RGB"))
            except InputError:
                self.skipped += 1
                continue
            now = time.perf_counter()
            yield Frame(index, None, now, pixels, (now - t0) * 1e3)

    def close(self) -> None:
        """Nothing stays open between frames."""


class PiCameraSource:
    """The Raspberry Pi camera through picamera2 (not verified on hardware: no Pi here; built against its
    documented API and tested with a stand-in module). Its low-resolution stream is configured at the
    model's input size, so the camera's ISP does the resize; frames arrive as YUV420 and become RGB here."""

    live = True
    skipped = 0

    def __init__(self, number: int, size: tuple[int, int] | None):
        try:
            from picamera2 import Picamera2
        except ImportError:
            raise InputError("picamera2: not installed (on Raspberry Pi OS: sudo apt install python3-picamera2)") \
                from None
        self.name = f"picamera2:{number}"
        try:
            self._camera = Picamera2(number)
        except (IndexError, RuntimeError, OSError) as exc:
            raise InputError(f"{self.name}: no such camera ({_why(exc)})") from None
        width, height = size or (640, 480)
        self.lores = (width + (width & 1), height + (height & 1))  # YUV420 needs even sizes
        config = self._camera.create_video_configuration(main={"size": (640, 480)},
                                                         lores={"size": self.lores, "format": "YUV420"})
        self._camera.configure(config)
        self.fps = None
        self._camera.start()

    def frames(self) -> Iterator[Frame]:
        index = 0
        while True:
            t0 = time.perf_counter()
            try:
                request = self._camera.capture_request()
            except (RuntimeError, OSError, TimeoutError) as exc:
                raise InputError(f"{self.name}: stopped delivering frames ({_why(exc)})") from None
            try:
                yuv = request.make_array("lores")
                stamp = request.get_metadata().get("SensorTimestamp")
            finally:
                request.release()
            yield Frame(index, stamp / 1e6 if stamp else None, time.perf_counter(), yuv420_to_rgb(yuv, self.lores),
                        (time.perf_counter() - t0) * 1e3)
            index += 1

    def close(self) -> None:
        self._camera.stop()
        self._camera.close()


def yuv420_to_rgb(planes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """I420 as picamera2 returns it ([height * 3 / 2, width] bytes) to RGB, BT.601 full range."""
    width, height = size
    y = planes[:height, :width].astype(np.float32)
    chroma = planes[height:].reshape(-1)
    quarter = (width // 2) * (height // 2)
    u = chroma[:quarter].reshape(height // 2, width // 2).repeat(2, 0).repeat(2, 1).astype(np.float32) - 128
    v = chroma[quarter:2 * quarter].reshape(height // 2, width // 2).repeat(2, 0).repeat(2, 1).astype(np.float32) - 128
    rgb = np.stack([y + 1.402 * v, y - 0.344136 * u - 0.714136 * v, y + 1.772 * u], -1)
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)
