"""Reading a file a user handed us: regular files only, size-capped, read once.

The file is opened with ``O_NONBLOCK`` (a FIFO then cannot block the open) and checked with
``fstat`` on the open descriptor (no race between the check and the read): a FIFO, a device such
as /dev/zero, a socket or a directory is refused; so is a file over the size cap, before any of
it is read. ``describe`` renders a name safe to print on one line.
"""
from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Callable

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
MODEL_LIMIT_ENV = "EDGELITE_MAX_MODEL_BYTES"
IMAGE_LIMIT_ENV = "EDGELITE_MAX_IMAGE_BYTES"
DEFAULT_MODEL_LIMIT = 1 << 30   # 1 GiB: edge models are megabytes; a flatbuffer cannot pass 2 GiB at all
DEFAULT_IMAGE_LIMIT = 256 << 20  # 256 MiB of encoded image
HEAD_BYTES = 8


_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s]*@")


def without_credentials(text: str) -> str:
    """``text`` with the user and password of every URL in it replaced by ``***`` (a camera's
    ``rtsp://admin:secret@host/`` is printed, logged and served as ``rtsp://***@host/``)."""
    return _CREDENTIALS.sub(r"\1***@", text)


def describe(path) -> str:
    """The path as text, credentials in a URL removed, quoted (repr) when it holds a newline or another
    control character."""
    name = os.fspath(path)
    if isinstance(name, bytes):
        name = os.fsdecode(name)
    name = without_credentials(name)
    return repr(name) if any(ord(c) < 32 or ord(c) == 127 for c in name) else name


def limit_from_env(variable: str, default: int) -> int:
    value = os.environ.get(variable, "")
    return int(value) if value.isdigit() and int(value) > 0 else default


def open_regular(path, what: str, error: type[Exception]) -> int:
    """A descriptor open for reading on the regular file at ``path`` (blocking reads); ``error`` (one line
    naming the file) for a missing file, a directory, a FIFO, a device or a socket. The check is made on the
    open descriptor, so nothing can be swapped in between."""
    name = describe(path)
    try:
        fd = os.open(os.fspath(path), os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise error(f"{name}: {_open_problem(exc)}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise error(f"{name}: is a directory, not {what}")
        raise error(f"{name}: not a regular file (a FIFO, device or socket); edgelite reads {what} from "
                    "regular files only")
    os.set_blocking(fd, True)
    return fd


def read_regular(path, what: str, limit: int, error: type[Exception],
                 head: Callable[[bytes], None] | None = None) -> bytes:
    """The whole of a regular file at ``path``; ``error`` (one line naming the file) otherwise.

    ``head`` sees the first HEAD_BYTES before the rest is read and may raise: a large file that is
    not what it claims to be is refused after 8 bytes, not after reading a gigabyte."""
    name = describe(path)
    fd = open_regular(path, what, error)
    try:
        info = os.fstat(fd)
        if info.st_size > limit:
            raise error(f"{name}: {info.st_size} bytes is over the limit of {limit} for {what}")
        first = _read_all(fd, min(HEAD_BYTES, info.st_size), name, error)
        if head is not None:
            head(first)
        return first + _read_all(fd, info.st_size - len(first), name, error)
    finally:
        os.close(fd)


def _read_all(fd: int, size: int, name: str, error: type[Exception]) -> bytes:
    chunks, left = [], size
    try:
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 24))
            if not chunk:
                break  # the file shrank while we read: what is there is what we have
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as exc:
        raise error(f"{name}: cannot read ({exc.strerror or exc})") from None
    return b"".join(chunks)


def _open_problem(exc: OSError) -> str:
    if exc.errno == errno.ENOENT:
        return "no such file"
    if exc.errno == errno.ELOOP:
        return "a symlink loop (the link points back to itself)"
    if exc.errno == errno.EISDIR:
        return "is a directory"
    return f"cannot open ({exc.strerror or exc})"


def image_files(folder) -> list[str]:
    """Every image file below ``folder``, recursively, in a stable (sorted) order; symlinks to files count, loops
    do not hang (``os.walk`` does not follow directory links)."""
    found = []
    for root, dirs, files in os.walk(os.fspath(folder)):
        dirs.sort()
        found += [os.path.join(root, f) for f in sorted(files) if os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS]
    return sorted(found)


def expand_images(paths) -> list[str]:
    """Image arguments as files: a folder becomes its images (``image_files``); anything else is kept as given, so
    a missing file is reported by whoever reads it."""
    out: list[str] = []
    for path in map(os.fspath, paths):
        out += image_files(path) if os.path.isdir(path) else [path]
    return out
