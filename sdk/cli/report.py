"""Every human-readable rendering the CLI prints, and the sweep's report files.

JSON output needs nothing from here: results carry their own ``to_dict``.
"""
from __future__ import annotations

import csv
import io
import json
import pathlib
from collections.abc import Sequence
from dataclasses import asdict, fields


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
    headers = ["model", "threads", "delegate", "median ms", "p90 ms", "p99 ms", "first ms", "load ms", "start ms",
               "size", "RSS +load", "peak RSS"]
    rows = [[r.model, r.threads or "default", r.delegate["actual"], fmt_ms(r.latency_ms.median),
             fmt_ms(r.latency_ms.p90), fmt_ms(r.latency_ms.p99), fmt_ms(r.first_invoke_ms), fmt_ms(r.load_ms),
             fmt_ms(r.start_ms),
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



def fleet_text(report) -> str:
    """The devices (status, when each ran, relative to the first start) and one median-latency column per device."""
    runs = report.runs
    t0 = min((r.started for r in runs), default=0.0)
    status = table(["device", "host", "labels", "status", "edgelite", "started", "ended"],
                   [[r.device.name, r.device.remote.target, ",".join(r.device.labels) or "-", r.status,
                     (r.version or "n/a").replace("edgelite, version ", ""), f"+{r.started - t0:.2f} s",
                     f"+{r.finished - t0:.2f} s"] for r in runs])
    keys = list(dict.fromkeys((res.model, res.threads) for r in runs for res in r.results))
    cells = {(r.device.name, res.model, res.threads): res for r in runs for res in r.results}
    rows = [[model, threads or "default",
             *[_median_cell(cells.get((r.device.name, model, threads))) for r in runs]] for model, threads in keys]
    latency = table(["model", "threads", *[f"{r.device.name} median (p90) ms" for r in runs]], rows) if rows else ""
    return status + ("\n\n" + latency if latency else "")


def _median_cell(result) -> str:
    return "-" if result is None else f"{fmt_ms(result.latency_ms.median)} ({fmt_ms(result.latency_ms.p90)})"

# -- convert -----------------------------------------------------------------------------------
def task_text(result) -> str:
    """One line per image for classes, one block for detections, embeddings and raw outputs."""
    if result.task == "classify":
        return prediction_line(result)
    head = f"{result.source}: [{result.delegate}, {fmt_ms(sum(result.timings_ms.values()))} ms]"
    if result.task == "detect":
        lines = [f"{head} {len(result.detections)} detection(s)"]
        lines += [f"  {d.label if d.label is not None else d.label_id} {d.score:.3f} at "
                  f"({d.box[0]:.0f}, {d.box[1]:.0f}, {d.box[2]:.0f}, {d.box[3]:.0f})"
                  + (f", {len(d.keypoints)} keypoints" if d.keypoints else "") for d in result.detections]
        return "\n".join(lines)
    if result.task == "embed":
        return f"{head} embedding of {len(result.embedding)} values, first {result.embedding[:3].round(4).tolist()}"
    return "\n".join([head] + [f"  {name}: {list(v.shape)} {v.dtype}" for name, v in result.outputs.items()])


def convert_text(r, budget: float, min_snr: float = 20.0) -> str:
    """The conversion summary: what was written, what verification measured and decided, each step's report."""
    q = r.quantization
    size = fmt_bytes(r.output_size_bytes)
    if r.input_size_bytes:
        size += f", {r.output_size_bytes / r.input_size_bytes:.2f}x of {fmt_bytes(r.input_size_bytes)}"
    granularity = {True: "per-channel, ", False: "per-tensor, ", None: ""}[q["per_channel"]]
    lines = [f"wrote {r.output} ({size}): {q['mode']}, {q['io']} I/O, {granularity}target {r.target}",
             *_float_lines(r.float_checks), _verification_line(r.verification, budget, r.unverified)]
    if r.verification is not None:
        lines.append(verdict_line(r.verification, budget, min_snr, r.within_budget))
    if r.verification is not None and len(r.verification.outputs) > 1:
        lines.append(outputs_table(r.verification.outputs))
    for render, value in ((_pruning_line, r.pruning), (_sparsity_line, r.weight_sparsity),
                          (_recovery_line, r.recovery), (_compatibility_line, r.compatibility),
                          (_edgetpu_line, r.edgetpu), (_standard_line, r.standard_metadata)):
        line = render(value) if value else ""
        if line:
            lines.append(line)
    lines.append("took " + ", ".join(f"{k} {v:.2f} s" for k, v in r.seconds.items()))
    return "\n".join(lines)


def conventions_text(c) -> str:
    """``edgelite check-input``: each convention's score, then what it says."""
    rows = [(s.convention.name + ("  (given)" if s.convention.name == c.chosen else ""), f"{s.information:.3f}",
             f"{100 * s.top_share:.0f}%") for s in c.scores]
    table_text = table(["convention", "information", "top class share"], rows)
    if c.better:
        verdict = c.warning
    else:
        verdict = (f"no usual convention is clearly better than {c.chosen} on these {c.images} images"
                   + (f" (the best led in {100 * c.sure:.0f}% of resamples, under the 95% asked)" if c.sure else ""))
    return f"{table_text}\n{verdict}"


def _float_lines(checks) -> list[str]:
    """The float model as judged before int8: its own top-1 through the shipped labels, the input convention."""
    if checks is None:
        return []
    lines = []
    if checks.labelled is not None:
        j = checks.labelled
        lines.append(f"float model before int8: top-1 {100 * j.top1:.2f}% on {j.images} labelled images "
                     f"(chance {100 * j.chance:.1f}%), graded through the labels it ships with")
    c = checks.conventions
    if c is not None:
        by = {s.convention.name: s.information for s in c.scores}
        verdict = f"{c.better} looks better (led in {100 * c.sure:.0f}% of resamples)" if c.better else \
            "no usual convention clearly better"
        lines.append(f"input convention {c.chosen}: the float model's answers carry {by[c.chosen]:.2f} of the "
                     f"information they could on {c.images} calibration images; {verdict}")
    return lines


def _verification_line(v, budget: float, unverified: str | None) -> str:
    if v is None:
        return f"not verified ({unverified})" if unverified else "not verified"
    top1 = (f"float top-1 {100 * v.float_top1:.2f}%, tflite top-1 {100 * v.tflite_top1:.2f}%, "
            if v.float_top1 is not None else "")
    snr = "identical outputs" if v.snr_db == float("inf") else f"SNR {v.snr_db:.1f} dB" + _interval(v)
    ties = f", {100 * v.near_ties:.1f}% near ties" if v.near_ties else ""
    agreement = ""
    if v.agreement is not None and v.agreement_interval is not None:
        low, high = v.agreement_interval
        agreement = f"agreement {100 * v.agreement:.2f}% (95% CI {100 * low:.1f}-{100 * high:.1f}), "
    worst = "worst output " if len(v.outputs) > 1 else ""
    return (f"verified on {v.images} {v.data} ({v.task}): {top1}drop {v.drop_points:.2f} points ({v.drop_basis}; "
            f"budget {budget:.2f}), {agreement}{worst}{snr}, cosine {v.cosine:.4f}, mean |diff| "
            f"{v.mean_abs_diff:.4f}, max |diff| {v.max_abs_diff:.4f}{ties}")


def _interval(v) -> str:
    worst = min(v.outputs, key=lambda o: o.snr_db, default=None)
    if worst is None or worst.snr_interval_db is None or worst.snr_db == float("inf"):
        return ""
    low, high = worst.snr_interval_db
    return f" (unseen images: {low:.1f}-{high:.1f})"


def verdict_line(v, budget: float, min_snr: float, within: bool) -> str:
    """The decision in the same words for every task: what was measured against which budget, and why."""
    if not within:
        return f"verdict: over budget: {over_budget(v, budget, min_snr)}"
    worst = min(v.outputs, key=v.budget_snr, default=None)
    snr = "" if worst is None else (f"; worst output {worst.name} judged at {v.budget_snr(worst):.1f} dB against "
                                    f"{min_snr:.1f}" if v.budget_snr(worst) != float("inf") else "; outputs identical")
    metric = "no task metric (raw outputs: the SNR decides)" if v.task == "raw" else \
        f"drop {v.drop_points:.2f} of {budget:.2f} points"
    return f"verdict: within budget: {metric}{snr}"


def over_budget(v, budget: float, min_snr: float) -> str:
    """Which budget a verified model missed, in one clause: what was measured, the budget, and why."""
    if v.drop_points > budget:
        return f"accuracy drop {v.drop_points:.2f} points ({v.drop_basis}) is over the budget of {budget:.2f}"
    worst = min(v.outputs, key=v.budget_snr)
    if v.task == "raw" and worst.original_snr_db is not None:
        judged = " against the original model"
    elif worst.snr_interval_db is not None and v.budget_snr(worst) < worst.snr_db:
        judged = (f" at the lower end of where unseen images would put it, from {v.images} images (point estimate "
                  f"{worst.snr_db:.1f})")
    else:
        judged = ""
    return f"output {worst.name} keeps {v.budget_snr(worst):.1f} dB SNR{judged}, under the budget of {min_snr:.1f} dB"


def _db(value: float) -> str:
    return "identical" if value == float("inf") else f"{value:.1f}"


def outputs_table(outputs) -> str:
    """Every output of the .tflite against the float model it was converted from (and, when pruned, against the
    original model too: what pruning and quantization cost together)."""
    pruned = any(o.original_snr_db is not None for o in outputs)
    rows = [[o.name + (f" ({o.source})" if o.source else ""), "x".join(map(str, o.shape)), _db(o.snr_db),
             *([_db(o.original_snr_db)] if pruned and o.original_snr_db is not None else ["n/a"] if pruned else []),
             f"{o.cosine:.4f}", f"{o.mean_abs_diff:.4g}", f"{o.max_abs_diff:.4g}"] for o in outputs]
    head = ["output", "shape", "SNR dB" + (" (vs pruned)" if pruned else ""), *(["vs original dB"] if pruned else []),
            "cosine", "mean |diff|", "max |diff|"]
    return table(head, rows)


def comparison_text(c, shown: int = 20) -> str:
    """``predict --compare``: agreement of the two models' decisions, every output's distance, where they differ."""
    if not c.images:
        return f"compared {c.model} with {c.reference}: no image ran on both"
    low, high = c.interval
    lines = [f"compared {c.model} with {c.reference} ({c.task}) on {c.images} image(s)",
             f"agreement: {100 * c.agreement:.2f}% (95% CI {100 * low:.1f}-{100 * high:.1f}%), "
             f"{len(c.differ)} differ",
             table(["output", "SNR dB", "cosine"], [[o.name, _db(o.snr_db), f"{o.cosine:.4f}"] for o in c.outputs])]
    if c.differ:
        lines.append("differ:" + "".join(f"\n  {source}: {why}" for source, why in c.differ[:shown]))
        if len(c.differ) > shown:
            lines.append(f"  ... and {len(c.differ) - shown} more (--json lists them all)")
    return "\n".join(lines)


def _pruning_line(p) -> str:
    pruned_top1 = f", pruned Keras top-1 {100 * p.pruned_keras_top1:.2f}%" if p.pruned_keras_top1 is not None else ""
    xnn = p.xnnpack_sparse_kernels
    return (f"pruned to {100 * p.target_sparsity:.0f}% ({p.structure}, {p.policy} layers, {p.library}, "
            f"{p.fine_tune['epochs']} epochs): {100 * p.keras_sparsity['overall']:.1f}% zeros in Keras, "
            f"{100 * (p.tflite_sparsity_of_pruned_layers or 0):.1f}% in the .tflite{pruned_top1}; XNNPACK sparse "
            "kernels: " + ("eligible" if xnn["eligible"] else "not used (" + "; ".join(xnn["blocked_by"]) + ")"))


def _sparsity_line(s: dict) -> str:
    return f"weight sparsity in the file: {100 * s['overall']:.1f}% of {s['weights']} conv/dense weights are zero"


def _recovery_line(ladder) -> str:
    """The ladder as a table: every rung tried and what it measured, then the ones left out and why."""
    if len(ladder.rungs) <= 1 and not ladder.skipped:
        return ""
    rows = [[r.name, r.mode, r.io, "n/a" if r.drop_points is None else f"{r.drop_points:.2f}",
             _agreement(r), "n/a" if r.snr_db is None else f"{r.snr_db:.1f}", fmt_bytes(r.size_bytes),
             fmt_ms(r.median_ms), f"{r.seconds:.1f}", r.error or ("within" if r.within_budget else "over")]
            for r in ladder.rungs]
    lines = [f"ladder: kept {ladder.chosen}" + (f" ({ladder.skipped})" if ladder.skipped else ""),
             table(["rung", "mode", "I/O", "drop pts", "agreement (95% CI)", "SNR dB", "size", "median ms", "s",
                    "budget"], rows)]
    lines += [f"not tried: {n['name']}: {n['why']}" for n in ladder.not_tried]
    lines += [ladder.io_note] if ladder.io_note else []
    return "\n".join(lines)


def _agreement(r) -> str:
    if r.agreement is None:
        return "n/a"
    low, high = r.agreement_interval or (r.agreement, r.agreement)
    return f"{100 * r.agreement:.1f}% ({100 * low:.1f}-{100 * high:.1f})"


def _compatibility_line(c) -> str:
    s = c.summary
    first = s["first_cpu_op"]
    return (f"pre-flight for {c.target}: {s['on_target']} of {s['ops']} ops on the {c.target}, {s['on_cpu']} on the "
            "CPU" + (f" (first: {first['op']}: {first['reason']})" if first else ""))


def _edgetpu_line(e) -> str:
    if not e.compiled:
        return f"Edge TPU: not compiled ({e.reason})"
    log = e.log
    return (f"Edge TPU: compiled by {e.compiler} {e.version} to {e.output}: {log.get('ops_on_edgetpu', '?')} ops on "
            f"the Edge TPU, {log.get('ops_on_cpu', '?')} on the CPU, on-chip memory "
            f"{log.get('on_chip_memory_used', '?')}, off-chip {log.get('off_chip_memory_used', '?')}")


def _standard_line(s: dict) -> str:
    return "standard TFLite metadata: " + ("written (MediaPipe's ImageClassifier can read the model)"
                                           if s["written"] else f"not written: {s['reason']}")


# -- check, inspect, predict, doctor ---------------------------------------------------------------
def check_text(report: dict) -> str:
    rows = [[o["index"], o["op"], o["where"], o["reason"], o["fix"]] for o in report["ops"]]
    s = report["summary"]
    lines = [table(["#", "op", "runs on", "why", "fix"], rows), "",
             f"{report['model']}: {s['on_target']} of {s['ops']} ops on the {report['target']}, {s['on_cpu']} on the CPU"]
    if s["first_cpu_op"]:
        first = s["first_cpu_op"]
        lines.append(f"first op on the CPU: #{first['index']} {first['op']}: {first['reason']}")
    if report.get("analyzer"):
        lines.append(f"analyzer: {report['analyzer']}")
    if report.get("measured"):
        m = report["measured"]
        lines.append(f"measured: delegate {m['delegate']}, {m['partitions']} delegated partition(s)")
    lines.append(f"source: {report['source']}")
    return "\n".join(lines)


def _tensor_rows(tensors):
    return [[t["name"], t["shape"], t["dtype"], _quantization(t)] for t in tensors]


def _quantization(t: dict) -> str:
    if t["per_channel"]:
        return f"per channel: {len(t['scale'])} scales, first {t['scale'][0]:.6g}, zero points from {t['zero_point'][0]}"
    return f"scale={t['scale']:.6g} zero_point={t['zero_point']}" if t["scale"] else "float"


def inspect_text(info: dict) -> str:
    spec = info["input_spec"]
    lines = [f"model:    {info['path']} ({fmt_bytes(info['size_bytes'])})",
             f"backend:  {info['backend']}" + (f" (cannot load: {info['interpreter_problem']})"
                                                if info["interpreter_problem"] else ""),
             "inputs:", table(["name", "shape", "dtype", "quantization"], _tensor_rows(info["inputs"])),
             "outputs:", table(["name", "shape", "dtype", "quantization"], _tensor_rows(info["outputs"])),
             f"operators ({sum(info['ops'].values())}): "
             + ", ".join(f"{name} x{n}" for name, n in sorted(info["ops"].items(), key=lambda kv: -kv[1]))]
    if spec:
        lines.append(f"input spec ({spec['source']}): {spec['height']}x{spec['width']}x{spec['channels']} "
                     f"{spec['color']}, resize {spec['resize']}, mean {spec['mean']}, std {spec['std']}")
    else:
        lines.append(f"input spec: none ({info['input_spec_problem']})")
    labels = info["labels"]
    lines.append(f"labels:   {len(labels)} ({', '.join(labels[:10])}{', ...' if len(labels) > 10 else ''})"
                 if labels else "labels:   none")
    lines.append(f"output:   {info['output_kind']}")
    if info.get("task"):
        roles = ", ".join(f"{name} ({role})" for name, role in info["output_roles"].items())
        lines.append(f"task:     {info['task']}" + (f"; outputs {roles}" if roles else "")
                     + ("; decoder: " + ", ".join(sorted(info["decoder"])) if info.get("decoder") else ""))
    record = info["edgelite_record"]
    lines.append("edgelite record:" + ("" if record else " absent"))
    lines += [f"  {key}: {json.dumps(value, sort_keys=True)}" for key, value in sorted((record or {}).items())]
    lines.append("metadata buffers: " + (", ".join(info["metadata_buffers"]) or "none"))
    sparsity = info["weight_sparsity"]
    lines.append(f"weight sparsity: {100 * sparsity['overall']:.1f}% of {sparsity['weights']} conv/dense weights "
                 "are zero (read from the file)")
    lines += [f"  {layer['op']} {layer['shape']} {layer['dtype']} {layer['encoding']}: {100 * layer['sparsity']:.1f}%"
              for layer in sparsity["layers"]]
    lines.append("standard TFLite metadata (TFLITE_METADATA): "
                 + ("present" if info["tflite_metadata"] else "absent"))
    return "\n".join(lines)


def prediction_line(result) -> str:
    classes = "  ".join(f"{c.label if c.label is not None else c.id} ({c.score:.3f})" for c in result.classes)
    return f"{result.source}: {classes}  [{result.delegate}, {fmt_ms(sum(result.timings_ms.values()))} ms]"


def doctor_text(info: dict) -> str:
    mark = {True: "ok", False: "missing"}
    tpu, gpu = info["edgetpu"], info["gpu"]
    lines = [f"python {info['python']} on {info['platform']}",
             "packages: " + ", ".join(f"{k} {v}" for k, v in info["packages"].items() if v), "", "backends:"]
    lines += [f"  [{'n/a' if b.get('optional') else mark[b['available']]}] {b['name']} {b['version'] or ''}  "
              f"{b['detail']}" for b in info["backends"]]
    lines += ["", "delegates:"]
    lines += [f"  [{mark[d['available']]}] {d['name']}  {d['detail']}" for d in info["delegates"]]
    lines += ["", f"Edge TPU: runtime {tpu['runtime_version'] or 'not found'}; devices listed by libedgetpu: "
              f"{', '.join(d['type'] + ' ' + d['path'] for d in tpu['devices']) or 'none'}"]
    lines += [f"  USB {d['id']} {d['what']} at {d['node']}: {'accessible' if d['accessible'] else 'NO PERMISSION'}"
              for d in tpu["usb"]]
    lines += [f"  PCIe {d['node']}: {'accessible' if d['accessible'] else 'NO PERMISSION'}" for d in tpu["pcie"]]
    lines += [f"GPU: OpenCL {gpu['opencl']['detail']}; Vulkan {gpu['vulkan']['detail']}"]
    if info["missing"]:
        lines += ["", "missing, with the command that installs each (Raspberry Pi OS / Debian):"]
        lines += [f"  {m['what']}:\n      {m['install']}" for m in info["missing"]]
    lines.append("\n(Edge TPU and GPU detection is built against the documented interfaces; not verified on hardware)")
    return "\n".join(lines)


# -- sweep -------------------------------------------------------------------------------------
COLUMNS = ["variant", "threads", "top-1", "drop pts", "agree", "SNR dB", "median ms", "p90 ms", "first ms", "file",
           "gzip", "peak RSS", "delegate", "pareto", "note"]


def _cells(r) -> list:
    def pct(x):
        return f"{100 * x:.2f}%" if x is not None else "n/a"

    def ms(x):
        return f"{x:.3f}" if x is not None else "n/a"
    note = r.error or ("reused" if r.reused else "")
    return [r.variant, r.threads or "default", pct(r.top1),
            f"{r.drop_points:.2f}" if r.drop_points is not None else "n/a", pct(r.agreement),
            "n/a" if r.task is None else ("identical" if r.snr_db is None else f"{r.snr_db:.1f}"), ms(r.median_ms),
            ms(r.p90_ms), ms(r.first_invoke_ms), fmt_bytes(r.file_bytes), fmt_bytes(r.gzip_bytes),
            fmt_bytes(r.peak_rss_bytes), r.delegate or "n/a", "*" if r.pareto else "", note]


def text_table(report) -> str:
    return table(COLUMNS, [_cells(r) for r in report.rows])


def made_with(made: dict) -> str:
    """The report's provenance as a sentence ("" for a report that has none)."""
    if not made:
        return ""
    packages = "".join(f", {name} {version}" for name, version in made.get("packages", {}).items())
    return (f"Made by edgelite {made['edgelite']} on {made['date']} (Python {made['python']}, {made['platform']}, "
            f"{made['cores']} cores{packages}). ")


def markdown(report) -> str:
    head = "| " + " | ".join(COLUMNS) + " |\n| " + " | ".join("---" for _ in COLUMNS) + " |\n"
    body = "".join("| " + " | ".join(str(c).replace("|", "/") for c in _cells(r)) + " |\n" for r in report.rows)
    rec = report.recommendation
    where = sorted({r.where for r in report.rows})
    return (f"# edgelite sweep: {report.source}\n\n{made_with(report.made)}Profiled on: {', '.join(where)}. Top-1 (classifiers), agreement "
            "(classifiers without labels, embedders' neighbours, detectors' matched detections) and the worst "
            "output's SNR against the float model, on the eval images; latency is the measured median of each "
            f"variant in its own process.\n\n{head}{body}\n"
            f"**Recommendation:** {rec.get('choice') or 'none'}: {rec['why']}\n\n![pareto](pareto.png)\n")


def write_all(report, folder: pathlib.Path) -> dict:
    """report.json, report.csv, report.md and pareto.png in ``folder``, each written atomically (never through a
    symlink or over anything but a regular file)."""
    from edgelite.converters.output.writing import atomic_write
    from edgelite.sweep.pareto import chart
    files = {"json": folder / "report.json", "csv": folder / "report.csv", "md": folder / "report.md",
             "png": folder / "pareto.png"}
    rows = io.StringIO(newline="")
    writer = csv.DictWriter(rows, [f.name for f in fields(report.rows[0])] if report.rows else ["variant"])
    writer.writeheader()
    for r in report.rows:
        writer.writerow(asdict(r))
    contents = {"json": json.dumps(report.to_dict() | {"files": {k: str(v) for k, v in files.items()}}, indent=2,
                                   default=str).encode(),
                "csv": rows.getvalue().encode(), "md": markdown(report).encode(), "png": chart(report.rows)}
    for kind, data in contents.items():
        atomic_write(files[kind], data)
    return {k: str(v) for k, v in files.items()}


def example_text(written, epochs: int) -> str:
    from edgelite.examples.digits import SOURCE
    lines = [f"wrote {written.train} ({written.train_images} scans) and {written.eval} ({written.eval_images} "
             f"scans): {SOURCE}"]
    if written.model is not None:
        lines += [f"trained {written.model} ({epochs} epochs): top-1 {100 * written.model_top1:.2f}% on "
                  f"{written.eval}",
                  f"next: edgelite convert {written.model} -o {written.model.with_name('digits_int8.tflite')} "
                  f"--calibration {written.train} --eval-data {written.eval}"]
    return "\n".join(lines)
