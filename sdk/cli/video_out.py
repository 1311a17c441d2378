"""An annotated video file (``stream --draw OUT.mp4``), encoded by PyAV and written as every output is: only a
new file or a regular file is replaced, never through a symlink, and the file appears complete or not at all
(frames go to a temporary file beside it, renamed over it at the end; a run that fails removes it, and one that
was killed has it removed by the next run, as ``converters.writing`` does for models).

Frames are placed at their source timestamps (a variable frame rate): a 6.25 s source gives a 6.25 s video
whatever the rate it was processed at, and the frames live mode dropped show as the previous frame held, not
as a faster video. A source without timestamps (a folder of images) is placed at the time each frame was
processed.
"""
from __future__ import annotations

import os
import pathlib
import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from edgelite.converters.output.writing import _temp_prefix, check_writable, remove_stale_temporaries
from edgelite.runtime.errors import InputError
from edgelite.runtime.video.sources import video_module


@dataclass(frozen=True)
class Container:
    """A file type --draw writes: FFmpeg's name for the container and the codec put in it."""

    format: str
    codec: str


CONTAINERS = {".mp4": Container("mp4", "mpeg4"), ".m4v": Container("mp4", "mpeg4"),
              ".mov": Container("mov", "mpeg4"), ".mkv": Container("matroska", "mpeg4"),
              ".avi": Container("avi", "mpeg4"), ".webm": Container("webm", "libvpx-vp9")}
TIME_BASE = Fraction(1, 1000)  # milliseconds: the source's timestamps, to the millisecond


class UsageError(ValueError):
    """--draw names a file type edgelite does not write (exit 2, before any work)."""


def container_for(path) -> Container:
    """The container and codec for ``path``'s extension, or a UsageError naming the ones there are."""
    suffix = pathlib.Path(path).suffix.lower()
    if suffix not in CONTAINERS:
        raise UsageError(f"--draw {os.fspath(path)}: cannot write a {suffix or 'file without an extension'}; "
                         f"give one of {', '.join(CONTAINERS)}")
    return CONTAINERS[suffix]


class AnnotatedVideo:
    """Frames in, one video file out; the size is the first frame's (later frames of another size are scaled)."""

    def __init__(self, path):
        self.av = video_module()
        self.kind = container_for(path)
        self.target = check_writable(path)
        remove_stale_temporaries(self.target)
        self.temp = self.target.parent / f"{_temp_prefix(self.target, os.getpid())}{os.urandom(4).hex()}.tmp"
        try:
            self.container = self.av.open(str(self.temp), "w", format=self.kind.format)
        except (self.av.error.FFmpegError, OSError) as exc:
            self.temp.unlink(missing_ok=True)
            raise InputError(f"{path}: cannot write video there ({exc})") from None
        self.stream: Any = None
        self.first_ms: float | None = None
        self.started = time.perf_counter()
        self.last_pts = -1

    def write(self, picture, time_ms: float | None = None) -> None:
        """Adds ``picture`` at the source time ``time_ms`` (None: the time since the first frame)."""
        if self.stream is None:
            self.stream = self.container.add_stream(self.kind.codec, rate=1000)
            self.stream.width, self.stream.height = picture.width & ~1, picture.height & ~1
            self.stream.pix_fmt = "yuv420p"
            self.stream.codec_context.time_base = TIME_BASE
        if picture.size != (self.stream.width, self.stream.height):
            picture = picture.resize((self.stream.width, self.stream.height))
        now_ms = time_ms if time_ms is not None else (time.perf_counter() - self.started) * 1e3
        if self.first_ms is None:
            self.first_ms = now_ms
        pts = max(round(now_ms - self.first_ms), self.last_pts + 1)  # strictly increasing, as encoders want
        frame = self.av.VideoFrame.from_ndarray(np.asarray(picture.convert("RGB")), format="rgb24")
        frame.pts, frame.time_base, self.last_pts = pts, TIME_BASE, pts
        for packet in self.stream.encode(frame):
            self.container.mux(packet)

    def close(self, keep: bool = True) -> pathlib.Path | None:
        """Finishes the file and puts it in place (``keep`` and at least one frame), or throws it away."""
        try:
            if self.stream is not None:
                for packet in self.stream.encode():
                    self.container.mux(packet)
            self.container.close()
            if keep and self.stream is not None:
                os.replace(self.temp, self.target)
                return self.target
        finally:
            self.temp.unlink(missing_ok=True)
        return None
