"""How long steps report progress and warnings without the library printing anything.

The converters call a ``Reporter``; the default one drops everything, the CLI's draws
progress bars and prints warnings on stderr, and tests can record what was said.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Protocol


class Reports(Protocol):
    """What the converters call: anything with these two methods (the CLI's reporter, a test's)."""

    def warn(self, message: str) -> None: ...

    def progress(self, label: str, total: int) -> AbstractContextManager[Callable[[int], None]]: ...


class Reporter:
    """Receives warnings and progress; override what you want to show."""

    def warn(self, message: str) -> None:
        """A problem that did not stop the work (a skipped image, a fallback taken)."""

    @contextlib.contextmanager
    def progress(self, label: str, total: int) -> Iterator[Callable[[int], None]]:
        """A context whose value is called with the number of items just finished."""
        yield _ignore


def _ignore(n: int = 1) -> None:
    """Progress nobody is watching."""


class RecordingReporter(Reporter):
    """Keeps warnings and progress totals (for tests and the result object)."""

    def __init__(self, inner: Reports | None = None):
        self.inner = inner or Reporter()
        self.warnings: list[str] = []
        self.steps: dict[str, int] = {}

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        self.inner.warn(message)

    @contextlib.contextmanager
    def progress(self, label: str, total: int):
        with self.inner.progress(label, total) as update:
            def counted(n: int = 1):
                self.steps[label] = self.steps.get(label, 0) + n
                update(n)
            yield counted
