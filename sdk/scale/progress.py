"""Progress of work spread over devices or a cluster: tasks done, running, failed and retried.

One shape for the fleet, the sweep on Ray and batch prediction on Ray: the work reports events
(``{"event": "started" | "finished" | "retried", "status": ...}``) and this keeps the counts. On a
terminal it redraws one line on stderr; with ``jsonl`` each event is a JSON line on stdout (with the
counts), for programs; otherwise (a pipe, a log file) it stays quiet. Events may come from several
threads, so the counts are kept under a lock.
"""
from __future__ import annotations

import json
import sys
import threading
import time


class Progress:
    def __init__(self, what: str, total: int, *, jsonl: bool = False, stream=None, tty: bool | None = None):
        self.what, self.total, self.jsonl = what, total, jsonl
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.counts = {"done": 0, "running": 0, "failed": 0, "retried": 0}
        self._lock = threading.Lock()
        self._t0 = time.monotonic()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        if self.tty and not self.jsonl:
            self.stream.write("\n")
            self.stream.flush()

    def event(self, event: dict) -> None:
        """Counts one event and shows it."""
        with self._lock:
            kind = event.get("event")
            if kind == "started":
                self.counts["running"] += 1
            elif kind == "finished":
                self.counts["running"] = max(0, self.counts["running"] - 1)
                self.counts["done"] += 1
                self.counts["failed"] += event.get("status") not in (None, "ok")
            elif kind == "retried":
                self.counts["retried"] += 1
            if self.jsonl:
                print(json.dumps({"progress": {**event, **self.counts, "total": self.total}}), flush=True)
            elif self.tty:
                self.stream.write("\r" + self.line())
                self.stream.flush()

    def line(self) -> str:
        c = self.counts
        return (f"{self.what}: {c['done']}/{self.total} done, {c['running']} running, {c['failed']} failed, "
                f"{c['retried']} retried [{time.monotonic() - self._t0:.0f} s]")


__all__ = ["Progress"]
