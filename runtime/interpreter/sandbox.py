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
import math
import os
import pathlib
import signal
import subprocess
import sys

from edgelite.runtime.errors import ModelError
from edgelite.runtime.modelfile.tflite_file import OP_CONV_2D, OP_DEPTHWISE_CONV_2D, OP_FULLY_CONNECTED, ModelFile

CACHE_ENV = "EDGELITE_CACHE"
MEMORY_ENV = "EDGELITE_SANDBOX_MEMORY_BYTES"
DEFAULT_MEMORY = 4 << 30      # address space of the child: TensorFlow's interpreter alone maps about 2 GiB
CPU_SECONDS = 60              # the ceiling, for the largest models and for importing the interpreter
BASE_SECONDS = 5.0            # allocation, delegate set-up and one invoke of a tiny model, with room to spare
OPS_PER_SECOND = 1e8          # a pessimistic rate (reference kernels on a slow board): budgets err long
WALL_SECONDS = 120
# The child imports the interpreter first (its cost is not the model's), then caps its own CPU time at what it
# has used plus the model's budget, so a loop that never ends is stopped after seconds, not a minute.
CHILD = """
import resource, sys
import numpy as np
from edgelite.runtime.interpreter.backend import find_backend
from edgelite.runtime.errors import EdgeliteError
from edgelite.runtime.interpreter.model import Model
try:
    find_backend(sys.argv[2])
    used = resource.getrusage(resource.RUSAGE_SELF)
    limit = int(used.ru_utime + used.ru_stime + float(sys.argv[3])) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (limit, limit + 2))
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


def work(file: ModelFile) -> int:
    """What one invoke can cost, in multiply-adds and element moves, from the graph alone: every operator
    reads its inputs and writes its outputs; a convolution or fully connected layer does one multiply-add per
    output element per filter weight feeding it. Loops (WHILE) count once: their trip count is not in the graph,
    which is exactly what the CPU-time limit is for."""
    total = 0
    for graph in file.subgraphs:
        elements = [math.prod(max(d, 1) for d in t.shape) for t in graph.tensors]
        for op in graph.operators:
            written = sum(elements[t] for t in op.outputs if t >= 0)
            total += written + sum(elements[t] for t in op.inputs if t >= 0)
            if op.builtin_code in (OP_CONV_2D, OP_FULLY_CONNECTED, OP_DEPTHWISE_CONV_2D) and len(op.inputs) > 1 \
                    and op.inputs[1] >= 0:
                shape = graph.tensors[op.inputs[1]].shape or (1,)
                per_output = elements[op.inputs[1]] // max(shape[-1] if op.builtin_code == OP_DEPTHWISE_CONV_2D
                                                           else shape[0], 1)
                total += written * per_output
    return total


def cpu_budget(file: ModelFile) -> float:
    """CPU seconds the first load may take: a base for set-up, plus the graph's work at a pessimistic rate;
    a model of a few hundred bytes gets seconds, the largest ``CPU_SECONDS``."""
    return min(float(CPU_SECONDS), BASE_SECONDS + work(file) / OPS_PER_SECOND + file.size / 5e7)


def check(path: str, data: bytes, backend: str, budget: float = CPU_SECONDS) -> None:
    """Returns when ``path`` loaded, allocated and ran once in a limited child (or did before); a ModelError
    naming what happened otherwise. ``budget`` caps the CPU seconds of the load itself (``cpu_budget``)."""
    verdict = _verdicts() / _key(data, backend)
    if verdict.exists():
        return
    try:
        done = subprocess.run([sys.executable, "-c", CHILD, path, backend, f"{budget:.3f}"], input=data,
                              capture_output=True, timeout=WALL_SECONDS, preexec_fn=_limits, check=False)
    except subprocess.TimeoutExpired:
        raise ModelError(f"{path}: loading it did not finish within {WALL_SECONDS} s in a sandboxed process; "
                         "refusing to load it here") from None
    if done.returncode == 3:  # the child's own one-line refusal
        raise ModelError(done.stderr.decode(errors="replace").strip().splitlines()[-1])
    if done.returncode == -signal.SIGXCPU:
        raise ModelError(f"{path}: its first run in a sandboxed process used up its CPU-time limit of {budget:.0f} s "
                         "(set from the work its operators can do: a loop that never ends?); refusing to load it "
                         "here")
    if done.returncode != 0:
        raise ModelError(f"{path}: {crash_reason(done.returncode, done.stderr)}; refusing to load it here")
    _remember(verdict)


OUT_OF_MEMORY = (b"MemoryError", b"bad_alloc", b"Cannot allocate memory", b"out of memory", b"Failed to allocate")


def crash_reason(returncode: int, stderr: bytes) -> str:
    """What ended the sandboxed child, said as what it was: the memory limit only when the child said it ran out
    of memory before it died (an allocation refused under the address-space limit), else a crash of the native
    library with the signal's name (a kernel fault on this model, or an interpreter that does not run on this
    CPU: under qemu-user with the host's /proc/cpuinfo showing through, it dies with SIGSEGV)."""
    if returncode >= 0:
        return f"loading it failed in a sandboxed process (exit {returncode})"
    try:
        what = f"{signal.Signals(-returncode).name}, signal {-returncode}"
    except ValueError:
        what = f"signal {-returncode}"
    limit = int(os.environ.get(MEMORY_ENV, DEFAULT_MEMORY))
    if any(sign in stderr for sign in OUT_OF_MEMORY):
        return (f"loading it ran out of the sandbox's memory limit of {limit >> 20} MiB ({what}; raise it with "
                f"{MEMORY_ENV})")
    return f"loading it crashed the native interpreter in a sandboxed process ({what})"


def _remember(verdict: pathlib.Path) -> None:
    try:
        verdict.parent.mkdir(parents=True, exist_ok=True)
        verdict.touch()
    except OSError:
        pass  # an unwritable cache only means sandboxing again next time
