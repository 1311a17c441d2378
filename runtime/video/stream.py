"""Live video through any task object: the capture loop every device app writes, owned here and made bounded.

Two modes, said plainly:
- **live** (cameras, network streams, files replayed with ``realtime``): a reader thread decodes every frame
  into a one-frame slot, newest wins; the interpreter always takes the newest, converts it to RGB and
  preprocesses it, and the frames it never saw are counted as dropped (``dropped_before`` on the next result):
  a dropped frame costs its decoding only. However slow the model, a result's latency is
  one frame's work plus the age of the newest frame when the interpreter came free (at most one frame
  interval): there is no queue to fall behind in.
- **every frame** (files and image folders by default): nothing is dropped; the reader decodes and
  preprocesses a few frames ahead into a bounded queue on another core while the interpreter runs.

A ``Stream`` is an iterator of ``FrameResult`` (the task's ``TaskResult`` plus the frame's index, source
timestamp, capture-to-result latency and the frames dropped before it) and has a ``summary()`` at any time.
``stop()`` ends it from any thread; the reader thread ends with it (no thread outlives the stream).
``run_in_background`` is the callback form for apps: an exception in the callback is counted and reported in
the summary, never fatal.
"""
from __future__ import annotations

import collections
import enum
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgelite.runtime.errors import EdgeliteError, InputError
from edgelite.runtime.modelfile.files import without_credentials
from edgelite.runtime.tasks.task import rescaled
from edgelite.runtime.video.sources import Frame, open_source

EVERY_FRAME_AHEAD = 4      # frames decoded and preprocessed ahead in every-frame mode
PERCENTILES = (50, 95, 99)
RECENT_SECONDS = 10.0      # the window of ``Stream.recent``: one early stall must not stay on screen all run


class RunningMode(enum.Enum):
    """How a stream takes frames, as MediaPipe Tasks' VIDEO and LIVE_STREAM modes do (a still image is a task
    object's ``run``): every frame in order, or the newest frame, the ones the model could not keep up with
    dropped. A stream's default comes from its source: live for cameras, network streams and files replayed
    in real time, every frame otherwise."""

    VIDEO = "every frame"
    LIVE = "live"

    @classmethod
    def of(cls, value: RunningMode | str) -> RunningMode:
        """A mode from itself, its name or its value ("live", "video", "every frame"), any case."""
        if isinstance(value, cls):
            return value
        text = str(value).strip().lower()
        for mode in cls:
            if text in (mode.name.lower(), mode.value):
                return mode
        raise InputError(f"running mode {value!r} is not one of live, video (every frame)")


@dataclass(frozen=True)
class _Prepared:
    """A frame with the task's input made from it: what the every-frame queue holds, and what the live slot's
    newest frame becomes when the interpreter takes it."""

    frame: Frame
    input: Any
    preprocess_ms: float
    stages: dict


@dataclass(frozen=True)
class FrameResult:
    """One processed frame: the task's result and where it sits in time."""

    frame: int
    time_ms: float | None
    latency_ms: float
    dropped_before: int
    result: Any               # the task's TaskResult
    image: np.ndarray = field(repr=False, compare=False)  # the frame as decoded (for drawing)
    reconnects: int = 0       # the network camera's reconnections so far (--reconnect)

    def to_dict(self) -> dict:
        data = {"frame": self.frame, "time_ms": self.time_ms, "latency_ms": round(self.latency_ms, 3),
                "dropped_before": self.dropped_before}
        if self.reconnects:
            data["reconnects"] = self.reconnects
        data.update({k: v for k, v in self.result.to_dict().items() if k != "source"})
        return data


@dataclass(frozen=True)
class StreamSummary:
    """What a run did, measured: frames read, processed, dropped and skipped, throughput, latency percentiles
    and the median of every stage."""

    source: str
    mode: str
    frames_read: int
    processed: int
    dropped: int
    skipped: int
    seconds: float
    latency_ms: dict
    stages_ms: dict
    ended: str                 # "end of source", "cut short", "frames", "duration", "stopped", or "error"
    error: str | None = None
    callback_errors: int = 0
    first_callback_error: str | None = None
    warning: str | None = None  # the run ended normally but not as it should have (a file cut short)
    reconnects: int = 0         # times a network camera was opened again after it dropped (--reconnect)
    gap_s: float = 0.0          # seconds without it, in all
    frames_missed: int = 0      # frames it would have sent meanwhile, at its stated frame rate

    @property
    def fps(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict:
        return {"source": self.source, "mode": self.mode, "frames_read": self.frames_read,
                "processed": self.processed, "dropped": self.dropped, "skipped": self.skipped,
                "fps": round(self.fps, 3), "seconds": round(self.seconds, 3), "latency_ms": self.latency_ms,
                "stages_ms": self.stages_ms, "ended": self.ended, "error": self.error,
                "callback_errors": self.callback_errors, "first_callback_error": self.first_callback_error,
                "warning": self.warning, "reconnects": self.reconnects, "gap_s": round(self.gap_s, 3),
                "frames_missed": self.frames_missed}


class _Latest:
    """A one-frame slot: ``put`` replaces an unread frame (and counts it dropped), ``take`` waits for one."""

    def __init__(self):
        self._cond = threading.Condition()
        self._item: Frame | None = None
        self._dropped = 0
        self._closed = False

    def put(self, item: Frame) -> None:
        with self._cond:
            if self._item is not None:
                self._dropped += 1
            self._item = item
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def take(self, timeout: float) -> tuple[Frame | None, int, bool]:
        """(the newest item or None, frames dropped since the last take, closed and empty)."""
        with self._cond:
            if self._item is None and not self._closed:
                self._cond.wait(timeout)
            item, dropped = self._item, self._dropped
            self._item, self._dropped = None, 0
            return item, dropped, self._closed and item is None


class Stream:
    """Results from ``task`` on every frame of ``source`` (a spec for ``open_source`` or an opened source)."""

    def __init__(self, task, source, *, mode: RunningMode | str | None = None, realtime: float | None = None,
                 frames: int | None = None, duration: float | None = None, full_size: bool = False):
        spec = task.input_spec
        self.task = task
        self.source = open_source(source, realtime=realtime, size=None if full_size else spec) \
            if isinstance(source, str) else source
        self.mode = RunningMode.of(mode) if mode is not None else \
            RunningMode.LIVE if self.source.live else RunningMode.VIDEO
        self.limit_frames, self.limit_seconds = frames, duration
        self._stop = threading.Event()
        self._slot = _Latest() if self.mode is RunningMode.LIVE else None
        self._queue: queue.Queue = queue.Queue(maxsize=EVERY_FRAME_AHEAD)
        self._error: str | None = None
        self._read = self._processed = self._dropped = 0
        self._latencies: list[float] = []
        self._recent: collections.deque[tuple[float, float]] = collections.deque()  # (when done, latency)
        self._stages: dict[str, list[float]] = {}
        self._ended = "end of source"
        self._stopped = False
        self._started = self._finished = 0.0
        self.callback_errors = 0
        self.first_callback_error: str | None = None
        self._reader = threading.Thread(target=self._read_frames, name=f"edgelite-reader {self.source.name}",
                                        daemon=True)

    # -- the reader thread ---------------------------------------------------------------------------
    def _read_frames(self) -> None:
        try:
            for frame in self.source.frames():
                if self._stop.is_set():
                    break
                self._read += 1
                if self._slot is not None:
                    self._slot.put(frame)  # live: only the frame the interpreter takes is preprocessed
                else:
                    self._ahead(frame)
        except EdgeliteError as exc:
            self._error = without_credentials(str(exc))
        except Exception as exc:  # noqa: BLE001 - a decoder's own failure ends the run with one line, not a trace
            self._error = f"{self.source.name}: {type(exc).__name__}: {' '.join(without_credentials(str(exc)).split())[:200]}"
        finally:
            if self._slot is not None:
                self._slot.close()
            else:
                self._put(None)

    def _ahead(self, frame: Frame) -> None:
        """Every-frame mode: preprocesses on this (the reader's) thread, a few frames ahead of the interpreter.
        Live mode does not: a camera faster than the model would have the reader preprocess frames that are then
        dropped, and fall behind the camera (benchmarks/stream.py's live runs measure the reader at speed)."""
        item = self._prepared(frame)
        if item is not None:
            self._put(item)

    def _prepared(self, frame: Frame) -> _Prepared | None:
        """The frame with the task's input made from it; None, counted as skipped, for a frame the task cannot
        take."""
        t0 = time.perf_counter()
        image = frame.image  # a video frame becomes RGB here, so a frame that is dropped never does
        t1 = time.perf_counter()
        stages: dict = {"convert": (t1 - t0) * 1e3}
        try:
            prepared = self.task.prepare(image, stages)
        except InputError:
            self.source.skipped += 1
            return None
        return _Prepared(frame, prepared, (time.perf_counter() - t1) * 1e3, stages)

    def _put(self, item: _Prepared | None) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    # -- the consumer (the caller's thread) ----------------------------------------------------------
    def __iter__(self) -> Iterator[FrameResult]:
        self._started = time.perf_counter()
        self._reader.start()
        try:
            while not self._stop.is_set():
                item, dropped = self._next()
                if item is None:
                    break
                result = self._process(item, dropped)
                if result is not None:
                    yield result
                if self._limit_reached():
                    break
        finally:
            self.close()

    def _next(self) -> tuple[Frame | _Prepared | None, int]:
        if self._slot is not None:
            while not self._stop.is_set():
                item, dropped, done = self._slot.take(0.1)
                if item is not None or done:
                    self._dropped += dropped
                    return item, dropped
            return None, 0
        while not self._stop.is_set():
            try:
                return self._queue.get(timeout=0.1), 0
            except queue.Empty:
                continue
        return None, 0

    def _process(self, item: Frame | _Prepared, dropped: int) -> FrameResult | None:
        if isinstance(item, Frame):  # live: prepared here, on the newest frame only
            taken = self._prepared(item)
            if taken is None:
                return None
            item = taken
        frame = item.frame
        stages: dict = {"decode": frame.decode_ms}
        for name, ms in item.stages.items():
            stages[name] = stages.get(name, 0.0) + ms
        result = self.task.run_prepared(frame.image, item.input, item.preprocess_ms)
        if frame.source_size is not None:  # decoded smaller: results in the source's own pixels
            height, width = frame.image.shape[:2]
            result = rescaled(result, frame.source_size[0] / width, frame.source_size[1] / height)
        now = time.perf_counter()
        latency = (now - frame.captured) * 1e3
        self._processed += 1
        self._latencies.append(latency)
        self._recent.append((now, latency))
        while now - self._recent[0][0] > RECENT_SECONDS:
            self._recent.popleft()
        stages.update({k: v for k, v in result.timings_ms.items() if k != "preprocess"})
        for name, ms in stages.items():
            self._stages.setdefault(name, []).append(ms)
        return FrameResult(frame.index, frame.time_ms, latency, dropped, result, frame.image,
                           getattr(self.source, "reconnects", 0))

    def _limit_reached(self) -> bool:
        if self.limit_frames is not None and self._processed >= self.limit_frames:
            self._ended = "frames"
            return True
        if self.limit_seconds is not None and time.perf_counter() - self._started >= self.limit_seconds:
            self._ended = "duration"
            return True
        return False

    # -- ending ------------------------------------------------------------------------------------------
    def stop(self) -> None:
        """Ends the stream from any thread; the iterator returns after the frame in hand."""
        self._stopped = True
        self._stop.set()

    def close(self) -> None:
        """Stops the reader, waits for it and closes the source (called by the iterator when it ends)."""
        if not self._finished:
            self._finished = time.perf_counter()
        self._stop.set()
        if self._reader.is_alive():
            self._reader.join(timeout=30)
        self.source.close()

    @property
    def state(self) -> str:
        """"starting" (no frame processed yet), "running", "reconnecting" (a network camera dropped) or "ended"."""
        if self._finished:
            return "ended"
        if getattr(self.source, "reconnecting", False):
            return "reconnecting"
        return "running" if self._processed else "starting"

    def recent(self) -> dict:
        """Throughput and latency over the last RECENT_SECONDS (fewer at the start), beside the whole run's in
        ``summary()``."""
        now = self._finished or time.perf_counter()
        window = [entry for entry in list(self._recent) if now - entry[0] <= RECENT_SECONDS]  # a stall ages it out
        if not window:
            return {"seconds": 0.0, "fps": 0.0, "p50": None, "p95": None}
        span = min(RECENT_SECONDS, now - self._started) if self._started else RECENT_SECONDS
        latencies = np.asarray([lat for _, lat in window])
        return {"seconds": round(span, 1), "fps": round(len(window) / span, 3) if span > 0 else 0.0,
                "p50": round(float(np.percentile(latencies, 50)), 3),
                "p95": round(float(np.percentile(latencies, 95)), 3)}

    def summary(self) -> StreamSummary:
        end = self._finished or time.perf_counter()
        latencies = np.asarray(self._latencies) if self._latencies else None
        latency = {f"p{p}": round(float(np.percentile(latencies, p)), 3) for p in PERCENTILES} \
            if latencies is not None else {f"p{p}": None for p in PERCENTILES}
        stages = {k: round(float(np.median(v)), 3) for k, v in self._stages.items()}
        cut = getattr(self.source, "cut", None)
        ended = "error" if self._error else "stopped" if self._stopped and self._ended == "end of source" else \
            "cut short" if cut and self._ended == "end of source" else self._ended
        return StreamSummary(self.source.name, self.mode.value, self._read, self._processed,
                             self._dropped, self.source.skipped, max(end - self._started, 0.0) if self._started else 0.0,
                             latency, stages, ended, self._error, self.callback_errors, self.first_callback_error,
                             cut, getattr(self.source, "reconnects", 0), getattr(self.source, "gap_s", 0.0),
                             getattr(self.source, "frames_missed", 0))

    # -- the callback form ---------------------------------------------------------------------------------
    def run_in_background(self, on_result: Callable[[FrameResult], None]) -> threading.Thread:
        """Runs the stream on a thread of its own, calling ``on_result`` for every result; returns the thread
        (``stop()`` then ``join()`` it). An exception in ``on_result`` is counted in the summary, not fatal."""
        def loop():
            for result in self:
                try:
                    on_result(result)
                except Exception as exc:  # noqa: BLE001 - the app's bug is reported, the stream goes on
                    self.callback_errors += 1
                    self.first_callback_error = self.first_callback_error or f"{type(exc).__name__}: {exc}"
        thread = threading.Thread(target=loop, name="edgelite-stream", daemon=True)
        thread.start()
        return thread


def stream(model: Any, source: str | int, *, mode: RunningMode | str | None = None, realtime: float | None = None,
           frames: int | None = None, duration: float | None = None, full_size: bool = False,
           **load_options: Any) -> Stream:
    """Results from a model on a video source, as an iterator (``for r in edgelite.stream(model, source)``).

    Args:
      model: a task object (``edgelite.load(...)``) or a .tflite path, loaded with ``load_options``
        (task, decoder, delegate, threads, ...).
      source: a video file, a folder or glob of images, ``/dev/videoN`` or a camera index, an ``rtsp://``,
        ``http://`` or ``tcp://`` URL, or ``picamera2``.
      mode: ``RunningMode.LIVE`` ("live": the newest frame wins; the default for cameras, network streams and
        ``realtime`` files) or ``RunningMode.VIDEO`` ("video": every frame, in order; the default otherwise).
      realtime: replay a file at this multiple of its own frame rate, as a camera would produce it.
      frames: stop after this many processed frames.
      duration: stop after this many seconds.
      full_size: keep ``FrameResult.image`` at the source's size (for drawing); by default the decoder scales
        frames to the size the model's preprocessing wants when that shrinks them, and results are mapped back to the source's
        pixels either way.
    Returns:
      A Stream: iterate it for FrameResults; ``stop()`` ends it, ``summary()`` says what it did.
    Raises:
      InputError: the source cannot be opened (one line naming it).
    """
    if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__"):
        from edgelite.runtime.tasks.loading import load
        model = load(model, **load_options)
    return Stream(model, source, mode=mode, realtime=realtime, frames=frames, duration=duration, full_size=full_size)
