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


def install_extra(extra: str) -> str:
    """The one pip line that adds an extra: edgelite is installed from its wheel (it is not on a package index),
    so the line names the wheel file, as the README does."""
    return f"pip install 'edgelite-{__version__}-py3-none-any.whl[{extra}]'"
