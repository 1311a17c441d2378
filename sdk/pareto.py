"""Which variants are worth shipping: the Pareto front and a recommendation under budgets."""
from __future__ import annotations


def _dominates(a, b) -> bool:
    """a is no slower, no less accurate and no larger than b, and strictly better in one."""
    no_worse = a.median_ms <= b.median_ms and a.top1 >= b.top1 and a.file_bytes <= b.file_bytes
    better = a.median_ms < b.median_ms or a.top1 > b.top1 or a.file_bytes < b.file_bytes
    return no_worse and better


def mark(rows) -> None:
    """Sets ``pareto`` on measured rows that no other measured row dominates."""
    measured = [r for r in rows if r.measured and r.top1 is not None]
    for r in measured:
        r.pareto = not any(_dominates(o, r) for o in measured if o is not r)


def _violations(row, budgets: dict) -> dict:
    """Budget name -> the value it would have to be relaxed to for this row to fit."""
    needed = {}
    if budgets.get("max_accuracy_drop") is not None and row.drop_points > budgets["max_accuracy_drop"]:
        needed["max_accuracy_drop"] = row.drop_points
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
    measured = [r for r in rows if r.measured and r.top1 is not None]
    if not measured:
        return {"choice": None, "why": "nothing could be measured; see the errors in the table"}
    fitting = [r for r in measured if not _violations(r, budgets)]
    if fitting:
        best = min(fitting, key=lambda r: (r.median_ms, r.file_bytes))
        limits = ", ".join(f"{k} {v}" for k, v in budgets.items() if v is not None) or "no budgets given"
        return {"choice": _name(best), "variant": best.variant, "threads": best.threads,
                "why": f"the fastest of {len(fitting)} variant(s) within the budgets ({limits}): median "
                       f"{best.median_ms:.3f} ms, top-1 {100 * best.top1:.2f}% (drop {best.drop_points:.2f} points), "
                       f"{best.file_bytes / 1024:.1f} KB"}
    options = []
    for r in measured:
        needed = _violations(r, budgets)
        if len(needed) == 1:
            (key, value), = needed.items()
            options.append((value / budgets[key] if budgets[key] else float("inf"), key, value, r))
    if not options:
        return {"choice": None, "why": "no variant fits the budgets, and none fits by relaxing just one; relax "
                                       "several, or change the model"}
    _, key, value, r = min(options, key=lambda o: o[0])
    unit = {"max_accuracy_drop": " points", "max_latency_ms": " ms", "max_size_kb": " KB"}[key]
    return {"choice": None, "relax": {key: round(value + 0.005, 2)},
            "why": f"no variant fits every budget; relaxing --{key.replace('_', '-')} to {value:.2f}{unit} "
                   f"would admit {_name(r)}"}


def chart(rows, path) -> None:
    """Latency against top-1: colour = variant, shape = thread count, marker area = file size;
    Pareto-optimal points outlined in black and named."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    measured = [r for r in rows if r.measured and r.top1 is not None]
    variants = list(dict.fromkeys(r.variant for r in measured))
    threads = list(dict.fromkeys(r.threads for r in measured))
    colours = {v: plt.get_cmap("tab10")(i % 10) for i, v in enumerate(variants)}
    shapes = {t: "osD^v<>"[i % 7] for i, t in enumerate(threads)}
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    biggest = max((r.file_bytes for r in measured), default=1)
    for r in measured:
        ax.scatter(r.median_ms, 100 * r.top1, s=60 + 700 * r.file_bytes / biggest, marker=shapes[r.threads],
                   color=colours[r.variant], alpha=0.7, edgecolors="black" if r.pareto else "none",
                   linewidths=2 if r.pareto else 0)
        if r.pareto:
            ax.annotate(f"{r.variant} t{r.threads or '-'}", (r.median_ms, 100 * r.top1), textcoords="offset points",
                        xytext=(8, 6), fontsize=8)
    handles = [Line2D([], [], marker="o", linestyle="", color=colours[v], label=v) for v in variants]
    handles += [Line2D([], [], marker=shapes[t], linestyle="", color="grey", label=f"{t or 'default'} thread(s)")
                for t in threads]
    ax.legend(handles=handles, fontsize=8, loc="best", framealpha=0.8)
    ax.set_xlabel("median latency (ms, measured)")
    ax.set_ylabel("top-1 on eval data (%)")
    ax.set_title("edgelite sweep: outlined = Pareto-optimal; marker area = file size")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
