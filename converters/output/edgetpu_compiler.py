"""Running Coral's ``edgetpu_compiler`` and reading its log.

edgelite never installs the compiler. When it is on PATH (or given with ``compiler=``) it is
run as an argv list with a timeout; a non-zero exit or a timeout becomes a ConversionError
carrying its stderr, and the CPU int8 model is kept either way. The log's operator table and
memory figures go into the report; the compiled model is written as ``NAME_edgetpu.tflite``
next to its CPU twin ``NAME.tflite``.
"""
from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field

from edgelite.converters.errors import ConversionError

COMPILER = "edgetpu_compiler"
INSTALL = ("install the Edge TPU compiler (x86-64 Debian/Ubuntu only): add the Coral apt repository as "
           "https://coral.ai/docs/edgetpu/compiler/ describes, then 'sudo apt-get install edgetpu-compiler'")
_VERSION = re.compile(r"Edge TPU Compiler version (\S+)")
_FIELDS = {
    "on_chip_memory_used": r"On-chip memory used for caching model parameters: (\S+)",
    "on_chip_memory_remaining": r"On-chip memory remaining for caching model parameters: (\S+)",
    "off_chip_memory_used": r"Off-chip memory used for streaming uncached model parameters: (\S+)",
    "edgetpu_subgraphs": r"Number of Edge TPU subgraphs: (\d+)",
    "total_ops": r"Total number of operations: (\d+)",
    "ops_on_edgetpu": r"Number of operations that will run on Edge TPU: (\d+)",
    "ops_on_cpu": r"Number of operations that will run on CPU: (\d+)",
}
_ROW = re.compile(r"^([A-Z][A-Z0-9_]+)\s+(\d+)\s+(\S.*)$")


@dataclass(frozen=True)
class CompileReport:
    """A compiler run (or why there was none): its version, log figures and operator table."""

    compiled: bool
    compiler: str | None = None
    version: str | None = None
    output: str | None = None
    log: dict = field(default_factory=dict)
    operators: tuple = ()
    reason: str | None = None
    install: str | None = None

    def to_dict(self) -> dict:
        if not self.compiled:
            return {"compiled": False, "reason": self.reason, "install": self.install}
        return {"compiled": True, "compiler": self.compiler, "version": self.version, "output": self.output,
                **self.log, "operators": list(self.operators)}


def find_compiler(path: str | None) -> str | None:
    """The compiler to run: ``path`` if given (it must exist), else edgetpu_compiler on PATH, else None."""
    if path:
        found = shutil.which(path) or (path if os.path.isfile(path) and os.access(path, os.X_OK) else None)
        if not found:
            raise ConversionError(f"{path}: Edge TPU compiler not found or not executable")
        return found
    return shutil.which(COMPILER)


def parse_log(text: str) -> tuple[str | None, dict, list]:
    """Version, summary figures and the operator table of the compiler's output."""
    version = (_VERSION.search(text) or [None, None])[1]
    log = {}
    for key, pattern in _FIELDS.items():
        match = re.search(pattern, text)
        if match:
            log[key] = int(match.group(1)) if match.group(1).isdigit() else match.group(1)
    rows = []
    in_table = False
    for line in text.splitlines():
        if line.strip().startswith("Operator") and "Status" in line:
            in_table = True
            continue
        match = _ROW.match(line.strip()) if in_table else None
        if match:
            rows.append({"op": match.group(1), "count": int(match.group(2)), "status": match.group(3).strip(),
                         "mapped": match.group(3).strip() == "Mapped to Edge TPU"})
    return version, log, rows


def _run(argv: list[str], timeout: float, what: str, limit: float | None = None) -> subprocess.CompletedProcess:
    """Runs the compiler; ``limit`` is the user's timeout when ``timeout`` adds slack for its own report."""
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        raise ConversionError(f"{what}: the Edge TPU compiler did not finish in {limit or timeout:.0f} s "
                              "(raise --compiler-timeout); the CPU int8 model was kept") from None
    except subprocess.CalledProcessError as exc:
        detail = " ".join((exc.stderr or exc.stdout or "").split())[-400:]
        raise ConversionError(f"{what}: the Edge TPU compiler failed (exit {exc.returncode}): {detail}; "
                              "the CPU int8 model was kept") from None
    except OSError as exc:
        raise ConversionError(f"{what}: cannot run the Edge TPU compiler {argv[0]}: {exc.strerror or exc}") from None


def compiled_name(cpu_model: str | os.PathLike) -> pathlib.Path:
    path = pathlib.Path(cpu_model)
    return path.with_name(f"{path.stem}_edgetpu{path.suffix or '.tflite'}")


def compile_model(cpu_model: pathlib.Path, compiler: str, timeout: float) -> tuple[bytes, CompileReport]:
    """Compiles in a private folder; returns the compiled bytes and what the compiler said."""
    version_run = _run([compiler, "--version"], min(timeout, 60), str(cpu_model))
    version = (_VERSION.search(version_run.stdout + version_run.stderr) or [None, None])[1]
    with tempfile.TemporaryDirectory(prefix="edgelite-edgetpu-") as work:
        done = _run([compiler, "-s", "-o", work, "-t", str(int(timeout)), str(cpu_model)],
                    timeout + min(30.0, timeout), str(cpu_model), limit=timeout)
        produced = pathlib.Path(work) / compiled_name(cpu_model.name).name
        if not produced.is_file():
            raise ConversionError(f"{cpu_model}: the Edge TPU compiler wrote no {produced.name}; "
                                  "the CPU int8 model was kept")
        parsed_version, log, rows = parse_log(done.stdout + "\n" + done.stderr)
        return produced.read_bytes(), CompileReport(True, compiler, version or parsed_version, None, log, tuple(rows))
