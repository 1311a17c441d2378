"""Captures what native TFLite code writes straight to file descriptor 2.

The interpreters log from C++ ("INFO: Created TensorFlow Lite XNNPACK delegate", "ERROR:
Didn't find op ..."), bypassing Python. While a model loads, that output is captured so a
failure can be explained in one line and a success stays quiet.
"""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading

_lock = threading.Lock()


@contextlib.contextmanager
def captured_native_stderr():
    """Yields a list that receives the lines native code wrote to fd 2 inside the block."""
    lines: list[str] = []
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, ValueError, OSError):  # no real stderr (e.g. some embedders)
        yield lines
        return
    with _lock, tempfile.TemporaryFile() as sink:
        sys.stderr.flush()
        saved = os.dup(fd)
        os.dup2(sink.fileno(), fd)
        try:
            yield lines
        finally:
            os.dup2(saved, fd)
            os.close(saved)
            sink.seek(0)
            text = sink.read().decode("utf-8", "replace")
            lines.extend(line for line in text.splitlines() if line.strip())


def summarize(lines: list[str], limit: int = 300) -> str:
    """The native error lines, joined onto one line (informational lines dropped)."""
    useful = [ln.strip() for ln in lines if not ln.lstrip().startswith(("INFO:", "I0000", "W0000"))]
    text = " | ".join(useful)
    return text[:limit] + ("..." if len(text) > limit else "")
