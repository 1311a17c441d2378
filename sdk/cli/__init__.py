"""The `edgelite` command and everything it prints or serves: options, renderings, pictures, the
`stream` loop's outputs (JSON lines, an annotated video, the live page).

``edgelite.cli:main`` is the console script (pyproject.toml); it resolves on first use, so importing a module of
this package (the live page's server, say) does not build the whole command.
"""
from __future__ import annotations

import importlib

__all__ = ["main"]


def __getattr__(name: str):
    if name != "main":
        raise AttributeError(f"module 'edgelite.cli' has no attribute {name!r}")
    return importlib.import_module("edgelite.cli.commands").main
