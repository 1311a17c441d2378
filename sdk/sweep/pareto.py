"""Which variants are worth shipping: the Pareto front and a recommendation under budgets.

Variants are compared on latency, file size and the task's own figure (``Row.quality``: top-1,
neighbour agreement, matched detections, or a raw model's worst output SNR)."""
from __future__ import annotations

import math

QUALITY = {"classify": "top-1", "embed": "neighbour agreement", "detect": "matched detections",
           "raw": "worst output SNR dB"}  # what each task's variants are ranked by


def quality(row) -> float:
    """The row's task figure; a raw model's identical outputs (no finite SNR) rank above every other."""
    return math.inf if row.quality is None else row.quality


def ranked(rows) -> list:
    """Measured rows that have a task figure to compare (a raw model's None is an infinite SNR)."""
    return [r for r in rows if r.measured and (r.quality is not None or r.task == "raw")]


def _dominates(a, b) -> bool:
    """a is no slower, no less accurate and no larger than b, and strictly better in one."""
    no_worse = a.median_ms <= b.median_ms and quality(a) >= quality(b) and a.file_bytes <= b.file_bytes
    better = a.median_ms < b.median_ms or quality(a) > quality(b) or a.file_bytes < b.file_bytes
    return no_worse and better


def mark(rows) -> None:
    """Sets ``pareto`` on measured rows that no other measured row dominates."""
    measured = ranked(rows)
    for r in measured:
        r.pareto = not any(_dominates(o, r) for o in measured if o is not r)


def _violations(row, budgets: dict) -> dict:
    """Budget name -> the value it would have to be relaxed to for this row to fit."""
    needed = {}
    if budgets.get("max_accuracy_drop") is not None and (row.drop_points or 0.0) > budgets["max_accuracy_drop"]:
        needed["max_accuracy_drop"] = row.drop_points
    if budgets.get("min_output_snr") is not None and row.snr_db is not None and row.snr_db < budgets["min_output_snr"]:
        needed["min_output_snr"] = row.snr_db
    if budgets.get("max_latency_ms") is not None and row.median_ms > budgets["max_latency_ms"]:
        needed["max_latency_ms"] = row.median_ms
    if budgets.get("max_size_kb") is not None and row.file_bytes / 1024 > budgets["max_size_kb"]:
        needed["max_size_kb"] = row.file_bytes / 1024
    return needed


def _name(row) -> str:
    return f"{row.variant} @ {row.threads or 'default'} thread(s)"


def recommend(rows, budgets: dict) -> dict:
    """The fastest variant within every budget (ties: smaller file); if none fits, the one budget
    to relax that lets a variant in with the smallest relative change."""
    measured = ranked(rows)
    if not measured:
        return {"choice": None, "why": "nothing could be measured; see the errors in the table"}
    fitting = [r for r in measured if not _violations(r, budgets)]
    if fitting:
        best = min(fitting, key=lambda r: (r.median_ms, r.file_bytes))
        limits = ", ".join(f"{k} {v}" for k, v in budgets.items() if v is not None) or "no budgets given"
        return {"choice": _name(best), "variant": best.variant, "threads": best.threads,
                "why": f"the fastest of {len(fitting)} variant(s) within the budgets ({limits}): median "
                       f"{best.median_ms:.3f} ms, {describe_quality(best)}, {best.file_bytes / 1024:.1f} KB"}
    options = []
    for r in measured:
        needed = _violations(r, budgets)
        if len(needed) == 1:
            (key, value), = needed.items()
            options.append((_relative(key, value, budgets[key]), key, value, r))
    if not options:
        return {"choice": None, "why": "no variant fits the budgets, and none fits by relaxing just one; relax "
                                       "several, or change the model"}
    _, key, value, r = min(options, key=lambda o: o[0])
    unit = {"max_accuracy_drop": " points", "min_output_snr": " dB", "max_latency_ms": " ms", "max_size_kb": " KB"}[key]
    relaxed = _relaxed(key, value)
    return {"choice": None, "relax": {key: relaxed},
            "why": f"no variant fits every budget; relaxing --{key.replace('_', '-')} to {relaxed:.2f}{unit} "
                   f"would admit {_name(r)}"}


def _relaxed(key: str, value: float) -> float:
    """The budget, to two decimals, that admits ``value``: rounded down for the SNR minimum, up for a maximum."""
    return math.floor(value * 100) / 100 if key == "min_output_snr" else math.ceil(value * 100) / 100


def _relative(key: str, value: float, budget: float) -> float:
    """How far the budget must move, as a ratio (> 1): up for a maximum, down for the SNR minimum."""
    if key == "min_output_snr":
        return budget / value if value > 0 else math.inf
    return value / budget if budget else math.inf


def describe_quality(row) -> str:
    name = QUALITY.get(row.task or "classify", "top-1")
    if row.task == "raw":
        return f"{name} " + ("identical" if row.quality is None else f"{row.quality:.1f}")
    drop = f" (drop {row.drop_points:.2f} points)" if row.drop_points is not None else ""
    return f"{name} {100 * quality(row):.2f}%{drop}"


def _axis(row) -> float:
    return row.quality if row.task == "raw" else 100 * row.quality


def chart(rows) -> bytes:
    """The PNG of latency against top-1: colour = variant, shape = thread count, marker area = file size;
    Pareto-optimal points outlined in black and named."""
    import io

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    measured = [r for r in ranked(rows) if r.quality is not None]  # an infinite SNR has no place on an axis
    variants = list(dict.fromkeys(r.variant for r in measured))
    threads = list(dict.fromkeys(r.threads for r in measured))
    colours = {v: plt.get_cmap("tab10")(i % 10) for i, v in enumerate(variants)}
    shapes = {t: "osD^v<>"[i % 7] for i, t in enumerate(threads)}
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    biggest = max((r.file_bytes for r in measured), default=1)
    for r in measured:
        ax.scatter(r.median_ms, _axis(r), s=60 + 700 * r.file_bytes / biggest, marker=shapes[r.threads],
                   color=colours[r.variant], alpha=0.7, edgecolors="black" if r.pareto else "none",
                   linewidths=2 if r.pareto else 0)
        if r.pareto:
            ax.annotate(f"{r.variant} t{r.threads or '-'}", (r.median_ms, _axis(r)), textcoords="offset points",
                        xytext=(8, 6), fontsize=8)
    handles = [Line2D([], [], marker="o", linestyle="", color=colours[v], label=v) for v in variants]
    handles += [Line2D([], [], marker=shapes[t], linestyle="", color="grey", label=f"{t or 'default'} thread(s)")
                for t in threads]
    ax.legend(handles=handles, fontsize=8, loc="best", framealpha=0.8)
    ax.set_xlabel("median latency (ms, measured)")
    task = measured[0].task if measured else "classify"
    ax.set_ylabel(f"{QUALITY.get(task or 'classify', 'top-1')} on eval data" + ("" if task == "raw" else " (%)"))
    ax.set_title("edgelite sweep: outlined = Pareto-optimal; marker area = file size")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png")
    plt.close(fig)
    return png.getvalue()
