"""Atomic output: the model appears complete under its name, or not at all.

Bytes go to a temporary file in the target folder, are flushed to disk, then renamed over
the target in one step (``os.replace``), so a failed or interrupted conversion never leaves
a half-written model and never destroys a good one already there.
"""
from __future__ import annotations

import os
import pathlib
import tempfile

from edgelite.runtime.errors import ConversionError

OVER_BUDGET_SUFFIX = ".over-budget"


def check_writable(path: os.PathLike) -> pathlib.Path:
    """Fails early, before any slow work, if the output cannot be written."""
    target = pathlib.Path(path)
    folder = target.parent if str(target.parent) else pathlib.Path(".")
    if target.is_dir():
        raise ConversionError(f"{target}: is a directory; give an output file name ending in .tflite")
    if not folder.is_dir():
        raise ConversionError(f"{target}: output folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise ConversionError(f"{target}: output folder {folder} is not writable")
    return target


def over_budget_name(path: os.PathLike) -> pathlib.Path:
    """``model.tflite`` -> ``model.over-budget.tflite``: a name that says the model missed its budget."""
    target = pathlib.Path(path)
    return target.with_name(target.stem + OVER_BUDGET_SUFFIX + (target.suffix or ".tflite"))


def atomic_write(path: os.PathLike, data: bytes) -> pathlib.Path:
    target = check_writable(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return target
