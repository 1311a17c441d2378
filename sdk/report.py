"""Human-readable renderings of results: aligned tables and unit formatting.

JSON output needs nothing from here: results carry their own ``to_dict``.
"""
from __future__ import annotations

from collections.abc import Sequence


def fmt_bytes(n: int | None) -> str:
    if n is None:
        return "n/a"
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n} B"


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Left-aligned text columns, two spaces apart."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def profile_table(results) -> str:
    headers = ["model", "threads", "delegate", "median ms", "p90 ms", "p99 ms", "first ms", "load ms", "size",
               "RSS +load", "peak RSS"]
    rows = [[r.model, r.threads or "default", r.delegate["actual"], fmt_ms(r.latency_ms.median),
             fmt_ms(r.latency_ms.p90), fmt_ms(r.latency_ms.p99), fmt_ms(r.first_invoke_ms), fmt_ms(r.load_ms),
             fmt_bytes(r.model_size_bytes), fmt_bytes(r.rss_added_by_load_bytes), fmt_bytes(r.peak_rss_bytes)]
            for r in results]
    return table(headers, rows)


def stages_table(results) -> str:
    headers = ["model", "threads", "stage", "median ms", "mean ms", "p90 ms", "share of median"]
    rows = []
    for r in results:
        if not r.stages_ms:
            continue
        total = sum(s.median for s in r.stages_ms.values()) or 1.0
        for stage, s in r.stages_ms.items():
            rows.append([r.model, r.threads or "default", stage, fmt_ms(s.median), fmt_ms(s.mean), fmt_ms(s.p90),
                         f"{100 * s.median / total:.0f}%"])
    return table(headers, rows) if rows else ""
