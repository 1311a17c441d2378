"""The target's steps around conversion: the pre-flight placement after converting, and the
compile step after writing (the Edge TPU). The rules themselves are the runtime's Target registry."""
from __future__ import annotations

import pathlib
from collections.abc import Callable

from edgelite.converters.output import edgetpu_compiler as edgetpu
from edgelite.converters.output.writing import atomic_write
from edgelite.converters.reporting import Reporter
from edgelite.runtime.interpreter.compatibility import Compatibility, preflight
from edgelite.runtime.interpreter.targets import Target
from edgelite.runtime.modelfile.tflite_file import parse


def placement(entry: Target, model_bytes: bytes, name: str, reporter: Reporter) -> Compatibility | None:
    """The predicted placement for targets that report one, with a warning for what falls to the CPU."""
    if not entry.preflight:
        return None
    found = preflight(parse(model_bytes, name), model_bytes, entry.name)
    warning = found.warning()
    if warning:
        reporter.warn(warning)
    return found


def compile_written(entry: Target, path: pathlib.Path, with_report: Callable[[bytes, dict], bytes],
                    compiler_path: str | None, timeout: float, reporter: Reporter) -> edgetpu.CompileReport | None:
    """Compiles the written CPU model when the target compiles and a compiler is there; the CPU model stays."""
    if not entry.compiles:
        return None
    compiler = edgetpu.find_compiler(compiler_path)
    if compiler is None:
        reporter.warn(f"edgetpu_compiler not found: wrote the CPU int8 model and the pre-flight report; to compile, "
                      f"{edgetpu.INSTALL}")
        return edgetpu.CompileReport(False, reason="edgetpu_compiler not found", install=edgetpu.INSTALL)
    compiled, report = edgetpu.compile_model(path, compiler, timeout)
    output = edgetpu.compiled_name(path)
    report = edgetpu.CompileReport(True, report.compiler, report.version, str(output), report.log, report.operators)
    atomic_write(output, with_report(compiled, report.to_dict()))
    return report
