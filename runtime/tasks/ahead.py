"""Preprocessing a few images ahead on other cores while this thread runs the interpreter.

Decoding and resizing release the GIL (pillow), so ``workers`` threads prepare the next images
while the caller's thread invokes: on a folder, preprocessing hides behind inference instead
of adding to it (``benchmarks/throughput.py`` measures how much). Results come back in order.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from edgelite.runtime.errors import InputError


def default_workers() -> int:
    """The cores but one: one is the interpreter's."""
    return max(1, (os.cpu_count() or 2) - 1)


def run_ahead(images: Sequence, prepare: Callable[[Any], Any], finish: Callable[[Any, Any, float], Any],
              workers: int | None = None) -> Iterator[tuple[Any, Any]]:
    """Yields (image, ``finish(image, prepared, preprocess_ms)`` or the InputError preparing it raised), in order.

    ``prepare`` runs on the worker threads, ``finish`` (the invoke and what follows) on this one."""
    workers = workers if workers is not None else default_workers()

    def timed(image):
        started = time.perf_counter()
        try:
            return prepare(image), (time.perf_counter() - started) * 1e3
        except InputError as exc:
            return exc, 0.0
    with ThreadPoolExecutor(max_workers=workers) as pool:
        ahead = [pool.submit(timed, image) for image in images[:2 * workers]]
        for i, image in enumerate(images):
            prepared, preprocess_ms = ahead[i].result()
            if i + 2 * workers < len(images):
                ahead.append(pool.submit(timed, images[i + 2 * workers]))
            yield image, (prepared if isinstance(prepared, InputError) else finish(image, prepared, preprocess_ms))
