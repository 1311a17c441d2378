"""Click parameter types for the values edgelite's commands share.

Each type checks its value at parse time, so a malformed value is a usage error (exit 2) that
names the option, before any model is loaded or any work is done.
"""
from __future__ import annotations

import click


class DelegateType(click.ParamType):
    """``--delegate``: auto, cpu, xnnpack, gpu, edgetpu[:usb:N|:pci:N] or external:PATH."""

    name = "delegate"

    def convert(self, value, param, ctx):
        from edgelite.runtime.delegates import DelegateRequest
        from edgelite.runtime.errors import DelegateError
        try:
            return str(DelegateRequest.parse(str(value)))
        except DelegateError as exc:
            self.fail(str(exc), param, ctx)


class FloatsType(click.ParamType):
    """One number, or one per channel (three): ``--mean 127.5`` or ``--mean 123.7,116.3,103.5``."""

    name = "M[,M,M]"

    def __init__(self, positive: bool = False):
        self.positive = positive

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        try:
            numbers = tuple(float(v) for v in str(value).split(","))
        except ValueError:
            self.fail(f"{value!r} is not a number or comma-separated numbers", param, ctx)
        if len(numbers) not in (1, 3):
            self.fail(f"{value!r} has {len(numbers)} values; give one, or one per channel (3)", param, ctx)
        if any(n != n or n in (float("inf"), float("-inf")) for n in numbers):
            self.fail(f"{value!r} is not finite", param, ctx)
        if self.positive and any(n <= 0 for n in numbers):
            self.fail(f"{value!r}: every value must be > 0", param, ctx)
        return numbers


class ThreadListType(click.ParamType):
    """``--threads 1,2,4``: thread counts to compare, each >= 1."""

    name = "N[,N]"

    def convert(self, value, param, ctx):
        if isinstance(value, list):
            return value
        try:
            counts = [int(v) for v in str(value).split(",") if v.strip()]
        except ValueError:
            self.fail(f"{value!r} is not a comma-separated list of whole numbers", param, ctx)
        if not counts or any(n < 1 for n in counts):
            self.fail(f"{value!r}: thread counts must be >= 1", param, ctx)
        return counts


DELEGATE = DelegateType()
MEAN = FloatsType()
STD = FloatsType(positive=True)
THREAD_LIST = ThreadListType()
SPARSITY = click.FloatRange(0.0, 1.0, max_open=True)
