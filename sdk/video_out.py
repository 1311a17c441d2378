"""An annotated video file (``stream --draw OUT.mp4``), encoded by PyAV and written as every output is: only a
new file or a regular file is replaced, never through a symlink, and the file appears complete or not at all
(frames go to a temporary file beside it, renamed over it at the end)."""
from __future__ import annotations

import os
import pathlib
import tempfile
from typing import Any

import numpy as np

from edgelite.converters.writing import check_writable
from edgelite.runtime.errors import InputError
from edgelite.runtime.sources import video_module


class AnnotatedVideo:
    """Frames in, one video file out; the size is the first frame's (later frames of another size are scaled)."""

    def __init__(self, path, fps: float | None):
        self.av = video_module()
        self.target = check_writable(path)
        handle, temp = tempfile.mkstemp(prefix=f".{self.target.name}.", suffix=self.target.suffix or ".mp4",
                                        dir=self.target.parent)
        os.close(handle)
        self.temp = pathlib.Path(temp)
        self.fps = round(fps) if fps and 1 <= fps <= 240 else 30
        try:
            self.container = self.av.open(str(self.temp), "w")
        except self.av.error.FFmpegError as exc:
            self.temp.unlink(missing_ok=True)
            raise InputError(f"{path}: cannot write video there ({exc})") from None
        self.stream: Any = None

    def write(self, picture) -> None:
        if self.stream is None:
            self.stream = self.container.add_stream("mpeg4", rate=self.fps)
            self.stream.width, self.stream.height = picture.width & ~1, picture.height & ~1
            self.stream.pix_fmt = "yuv420p"
        if picture.size != (self.stream.width, self.stream.height):
            picture = picture.resize((self.stream.width, self.stream.height))
        frame = self.av.VideoFrame.from_ndarray(np.asarray(picture.convert("RGB")), format="rgb24")
        for packet in self.stream.encode(frame):
            self.container.mux(packet)

    def close(self, keep: bool = True) -> pathlib.Path | None:
        """Finishes the file and puts it in place (``keep``), or throws it away."""
        if self.stream is not None:
            for packet in self.stream.encode():
                self.container.mux(packet)
        self.container.close()
        if keep and self.stream is not None:
            os.replace(self.temp, self.target)
            return self.target
        self.temp.unlink(missing_ok=True)
        return None
