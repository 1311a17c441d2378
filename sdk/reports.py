"""The sweep's report files: report.json, report.csv, report.md and pareto.png."""
from __future__ import annotations

import csv
import json
import pathlib
from dataclasses import asdict, fields

from .report import fmt_bytes, table

COLUMNS = ["variant", "threads", "top-1", "drop pts", "agree", "median ms", "p90 ms", "first ms", "file", "gzip",
           "peak RSS", "delegate", "pareto", "note"]


def _cells(r) -> list:
    def pct(x):
        return f"{100 * x:.2f}%" if x is not None else "n/a"

    def ms(x):
        return f"{x:.3f}" if x is not None else "n/a"
    note = r.error or ("reused" if r.reused else "")
    return [r.variant, r.threads or "default", pct(r.top1),
            f"{r.drop_points:.2f}" if r.drop_points is not None else "n/a", pct(r.agreement), ms(r.median_ms),
            ms(r.p90_ms), ms(r.first_invoke_ms), fmt_bytes(r.file_bytes), fmt_bytes(r.gzip_bytes),
            fmt_bytes(r.peak_rss_bytes), r.delegate or "n/a", "*" if r.pareto else "", note]


def text_table(report) -> str:
    return table(COLUMNS, [_cells(r) for r in report.rows])


def markdown(report) -> str:
    head = "| " + " | ".join(COLUMNS) + " |\n| " + " | ".join("---" for _ in COLUMNS) + " |\n"
    body = "".join("| " + " | ".join(str(c).replace("|", "/") for c in _cells(r)) + " |\n" for r in report.rows)
    rec = report.recommendation
    where = sorted({r.where for r in report.rows})
    return (f"# edgelite sweep: {report.source}\n\nProfiled on: {', '.join(where)}. Top-1 and agreement on the eval "
            f"images; latency is the measured median of each variant in its own process.\n\n{head}{body}\n"
            f"**Recommendation:** {rec.get('choice') or 'none'}: {rec['why']}\n\n![pareto](pareto.png)\n")


def write_all(report, folder: pathlib.Path) -> dict:
    from .pareto import chart
    files = {"json": folder / "report.json", "csv": folder / "report.csv", "md": folder / "report.md",
             "png": folder / "pareto.png"}
    files["json"].write_text(json.dumps(report.to_dict() | {"files": {k: str(v) for k, v in files.items()}},
                                        indent=2, default=str))
    with open(files["csv"], "w", newline="") as fh:
        writer = csv.DictWriter(fh, [f.name for f in fields(report.rows[0])] if report.rows else ["variant"])
        writer.writeheader()
        for r in report.rows:
            writer.writerow(asdict(r))
    files["md"].write_text(markdown(report))
    chart(report.rows, files["png"])
    return {k: str(v) for k, v in files.items()}
