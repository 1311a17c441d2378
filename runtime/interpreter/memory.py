"""Process memory figures without psutil: current RSS from /proc, peak RSS from getrusage."""
from __future__ import annotations

import os
import sys


def current_rss() -> int | None:
    """Resident set size of this process in bytes, or None where it cannot be read."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil  # optional; macOS and Windows
        return int(psutil.Process().memory_info().rss)
    except Exception:  # noqa: BLE001
        return None


def peak_rss() -> int | None:
    """Peak resident set size of this process in bytes.

    Linux: VmHWM from /proc/self/status, the high-water mark of this address space. Not
    getrusage's ru_maxrss, which survives fork and exec: a profiling worker started from a
    process holding TensorFlow would report TensorFlow's peak as its own.
    """
    try:
        with open("/proc/self/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return int(peak if sys.platform == "darwin" else peak * 1024)
