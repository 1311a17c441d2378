"""Atomic output: a file edgelite writes (a model, a sweep's report, a drawn picture) appears complete under
its name, or not at all, and only a new file or an existing regular file is ever replaced.

Bytes go to an unnamed file in the target folder (Linux ``O_TMPFILE``), are flushed to disk,
given a temporary name and renamed over the target in one step (``os.replace``). A failed,
interrupted or even SIGKILLed conversion therefore never leaves a half-written model, never
destroys a good one, and leaves no temporary file behind (only a kill in the instant between
naming and renaming could). Where ``O_TMPFILE`` is unavailable a named temporary file is used,
its name carrying the writer's pid so a later write can remove what a killed writer left.
"""
from __future__ import annotations

import contextlib
import glob
import os
import pathlib
import stat
import tempfile

from edgelite.converters.errors import ConversionError

OVER_BUDGET_SUFFIX = ".over-budget"


def check_writable(path: str | os.PathLike) -> pathlib.Path:
    """Fails early, before any slow work, if the output cannot be written.

    Only a new file or an existing regular file is replaced. A symlink is refused rather than
    silently replaced by a file (or followed somewhere unexpected); a device, FIFO or socket is
    refused, so ``-o /dev/null`` as root can never replace /dev/null.
    """
    target = pathlib.Path(path)
    folder = target.parent if str(target.parent) else pathlib.Path(".")
    if target.is_symlink():
        raise ConversionError(f"{target}: is a symlink (to {os.readlink(target)}); give the real path to replace it")
    if target.is_dir():
        raise ConversionError(f"{target}: is a directory; give a file name")
    if target.exists() and not stat.S_ISREG(target.stat().st_mode):
        raise ConversionError(f"{target}: is not a regular file (a device, FIFO or socket); edgelite replaces "
                              "regular files only")
    if not folder.is_dir():
        raise ConversionError(f"{target}: output folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise ConversionError(f"{target}: output folder {folder} is not writable")
    return target


def refuse_source(model, output: str | os.PathLike) -> None:
    """The output must not be the model being converted: writing it would destroy the source."""
    if not isinstance(model, (str, os.PathLike)):
        return
    try:
        same = os.path.samefile(model, output)
    except OSError:
        return
    if same:
        raise ConversionError(f"{output}: is the model being converted; give another output name")


def over_budget_name(path: str | os.PathLike) -> pathlib.Path:
    """``model.tflite`` -> ``model.over-budget.tflite``: a name that says the model missed its budget."""
    target = pathlib.Path(path)
    return target.with_name(target.stem + OVER_BUDGET_SUFFIX + (target.suffix or ".tflite"))


def _temp_prefix(target: pathlib.Path, pid: int | str) -> str:
    return f".{target.name}.{pid}."


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(target: pathlib.Path) -> None:
    """Deletes temporary files a killed writer of ``target`` left behind (its pid is gone)."""
    pattern = glob.escape(str(target.parent / f".{target.name}.")) + "*.*.tmp"  # the name's own [ * ? match literally
    for leftover in glob.glob(pattern):
        pid = pathlib.Path(leftover).name[len(target.name) + 2:].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            with contextlib.suppress(OSError):
                os.unlink(leftover)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.fsync(fd)


AT_FDCWD, AT_EMPTY_PATH = -100, 0x1000
_unnamed_ok: dict[int, bool] = {}  # st_dev -> whether O_TMPFILE + linkat works there


def _link_unnamed(fd: int, name: pathlib.Path) -> bool:
    """Gives an O_TMPFILE file a name: linkat(AT_EMPTY_PATH), else the /proc/self/fd route."""
    import ctypes
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.linkat(fd, b"", AT_FDCWD, os.fsencode(name), AT_EMPTY_PATH) == 0:
            return True
    except (OSError, AttributeError):
        pass
    try:
        os.link(f"/proc/self/fd/{fd}", name)
        return True
    except OSError:
        return False


def _unnamed_supported(folder: pathlib.Path) -> bool:
    """Probes once per file system, so a failed link never costs writing the model twice."""
    dev = folder.stat().st_dev
    if dev not in _unnamed_ok:
        ok = False
        flag = getattr(os, "O_TMPFILE", None)
        if flag is not None:
            try:
                fd = os.open(folder, flag | os.O_WRONLY, 0o644)
            except OSError:
                fd = -1
            if fd >= 0:
                probe = folder / f".edgelite-probe.{os.getpid()}.{os.urandom(4).hex()}.tmp"
                ok = _link_unnamed(fd, probe)
                os.close(fd)
                probe.unlink(missing_ok=True)
        _unnamed_ok[dev] = ok
    return _unnamed_ok[dev]


def _unnamed_write(target: pathlib.Path, data: bytes) -> bool:
    """Writes through an O_TMPFILE file; False where the file system cannot (then nothing was written)."""
    if not _unnamed_supported(target.parent):
        return False
    fd = os.open(target.parent, os.O_TMPFILE | os.O_WRONLY, 0o644)
    named = target.parent / f"{_temp_prefix(target, os.getpid())}{os.urandom(4).hex()}.tmp"
    try:
        _write_all(fd, data)
        if not _link_unnamed(fd, named):
            raise OSError(f"cannot name the temporary file for {target}")
    finally:
        os.close(fd)
    try:
        os.replace(named, target)
    except BaseException:
        named.unlink(missing_ok=True)
        raise
    return True


def atomic_write(path: str | os.PathLike, data: bytes) -> pathlib.Path:
    """Writes ``data`` to ``path`` atomically; any OS failure (a full disk, permissions) is one ConversionError."""
    target = check_writable(path)
    try:
        return _atomic_write(target, data)
    except OSError as exc:
        raise ConversionError(f"{target}: cannot write ({exc.strerror or exc}); the previous file, if any, is "
                              "untouched") from None


def _atomic_write(target: pathlib.Path, data: bytes) -> pathlib.Path:
    remove_stale_temporaries(target)
    if _unnamed_write(target, data):
        return target
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(target, os.getpid()), suffix=".tmp", dir=target.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide the model from other users
        _write_all(fd, data)
        os.close(fd)
        fd = -1
        os.replace(tmp, target)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise
    return target
