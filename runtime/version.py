"""edgelite's version, read from the installed distribution's metadata (pyproject.toml is the one
place it is written), so the record, the CLI and the wheel can never disagree."""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def edgelite_version() -> str:
    try:
        return version("edgelite")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


__version__ = edgelite_version()
