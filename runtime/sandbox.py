"""A sandboxed first load: an unknown model file is loaded, allocated and invoked once in a child
process under memory and CPU limits before this process touches it.

Validation (``tflite_file``, ``semantics``) refuses every fault we know of; the sandbox is for the
ones we do not: a kernel that still crashes or runs away takes the child down, not the caller, and
the caller gets one line. The verdict is cached by the file's sha256 and the backend (a model that
crashes one backend may not crash another), so each file is sandboxed once per machine: the second
load is in-process and costs nothing extra.

Policy (``trust``): a path is sandboxed unless trusted; bytes (what the converters hand the runtime)
are trusted. ``EDGELITE_TRUST=1`` or ``--trust`` trusts everything.
"""
from __future__ import annotations

import hashlib
import os
import pathlib
import subprocess
import sys

from .errors import ModelError

CACHE_ENV = "EDGELITE_CACHE"
MEMORY_ENV = "EDGELITE_SANDBOX_MEMORY_BYTES"
DEFAULT_MEMORY = 4 << 30      # address space of the child: TensorFlow's interpreter alone maps about 2 GiB
CPU_SECONDS = 60
WALL_SECONDS = 120
CHILD = """
import sys
import numpy as np
from edgelite.runtime.errors import EdgeliteError
from edgelite.runtime.model import Model
try:
    model = Model(sys.stdin.buffer.read(), backend=sys.argv[2], trust=True)
    model.run(*[np.zeros(t.shape, t.dtype) for t in model.inputs])
except EdgeliteError as exc:
    print(str(exc).replace("<bytes>", sys.argv[1], 1), file=sys.stderr)
    sys.exit(3)
print("ok")
"""


def trusted_by_default() -> bool:
    return os.environ.get("EDGELITE_TRUST", "") == "1"


def _verdicts() -> pathlib.Path:
    root = os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "edgelite")
    return pathlib.Path(root) / "verdicts"


def _key(data: bytes, backend: str) -> str:
    return hashlib.sha256(data).hexdigest() + "-" + backend


def _limits():  # runs in the child, before exec
    import resource
    memory = int(os.environ.get(MEMORY_ENV, DEFAULT_MEMORY))
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS + 5))


def check(path: str, data: bytes, backend: str) -> None:
    """Returns when ``path`` loaded, allocated and ran once in a limited child (or did before); a ModelError
    naming what happened otherwise."""
    verdict = _verdicts() / _key(data, backend)
    if verdict.exists():
        return
    try:
        done = subprocess.run([sys.executable, "-c", CHILD, path, backend], input=data, capture_output=True,
                              timeout=WALL_SECONDS, preexec_fn=_limits, check=False)  # the bytes we will load
    except subprocess.TimeoutExpired:
        raise ModelError(f"{path}: loading it did not finish within {WALL_SECONDS} s in a sandboxed process; "
                         "refusing to load it here") from None
    if done.returncode == 3:  # the child's own one-line refusal
        raise ModelError(done.stderr.decode(errors="replace").strip().splitlines()[-1])
    if done.returncode != 0:
        what = f"signal {-done.returncode}" if done.returncode < 0 else f"exit {done.returncode}"
        raise ModelError(f"{path}: loading it crashed a sandboxed process ({what}: a kernel fault or more than "
                         f"its memory limit, {MEMORY_ENV}); refusing to load it here")
    _remember(verdict)


def _remember(verdict: pathlib.Path) -> None:
    try:
        verdict.parent.mkdir(parents=True, exist_ok=True)
        verdict.touch()
    except OSError:
        pass  # an unwritable cache only means sandboxing again next time
