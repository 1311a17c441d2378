"""What this machine can run: backends, delegate libraries, versions (for `edgelite doctor`)."""
from __future__ import annotations

import platform
import sys

from .backend import backend_report
from .delegates import GPU_LIBRARY_ENV, INSTALL_HINTS, library_for, probe_library


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def delegate_report(backends: list[dict]) -> list[dict]:
    """Each delegate kind: usable here or not, and what to install when not."""
    any_backend = any(b["available"] for b in backends)
    rows = [
        {"name": "cpu", "available": any_backend, "detail": "builtin kernels of the backend"},
        {"name": "xnnpack", "available": any_backend, "detail": "built into the backend; the default CPU delegate"},
    ]
    for kind in ("edgetpu", "gpu"):
        library = library_for(kind)
        problem = probe_library(library)
        rows.append({"name": kind, "available": problem is None,
                     "detail": f"{library} loads" if problem is None else problem,
                     "install": None if problem is None else INSTALL_HINTS[kind]})
    rows[-1]["detail"] += f" (set {GPU_LIBRARY_ENV} to a GPU delegate library to use another path)"
    return rows


def doctor_report() -> dict:
    backends = backend_report()
    return {
        "python": sys.version.split()[0],
        "platform": f"{platform.system()} {platform.release()} {platform.machine()}",
        "packages": {name: _version(name) for name in ("numpy", "pillow", "click", "ai-edge-litert",
                                                         "tflite-runtime", "tensorflow")},
        "backends": backends,
        "delegates": delegate_report(backends),
    }
