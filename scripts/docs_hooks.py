"""MkDocs hooks: the Benchmarks page's figures come from the JSON files the benchmarks write
(``docs/benchmarks/*.json``, with the machine and date), never typed by hand."""
from __future__ import annotations

import json
import pathlib
import re

MARK = re.compile(r"<!-- figures: (\w+) -->")
FIGURE = re.compile(r"\[\[(\w+):([\w.-]+)(?:\\?\|(\.\d+[fx%]))?\]\]")  # [[stream:live.edgelite.fps|.1f]]; \| in tables


def on_page_markdown(markdown: str, page, config, files) -> str:
    folder = pathlib.Path(config["docs_dir"]) / "benchmarks"
    markdown = MARK.sub(lambda m: figures(folder / f"{m.group(1)}.json"), markdown)
    markdown = FIGURE.sub(lambda m: figure(folder / f"{m.group(1)}.json", m.group(2), m.group(3)), markdown)
    left = re.search(r"\[\[\w+:[^\]]*\]\]", markdown)
    if left:  # a figure reference the pattern above could not read: fail rather than print it as text
        raise ValueError(f"{page.file.src_path}: cannot read the figure reference {left.group(0)}")
    return markdown


def figure(path: pathlib.Path, name: str, style: str | None) -> str:
    """One figure from a benchmark's file, by its dotted name; a name the file lacks fails the build."""
    value = json.loads(path.read_text())
    for part in name.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    if style and style.endswith("x"):
        return f"{value:{style[:-1]}f}x"
    return f"{value:{style}}" if style else str(value)


def figures(path: pathlib.Path) -> str:
    """A table of every figure in ``path``, flattened to dotted names, with where and when it was measured."""
    data = json.loads(path.read_text())
    machine = data.pop("machine", {})
    rows = [f"| `{name}` | {value} |" for name, value in flatten(data)]
    where = ", ".join(f"{k} {v}" for k, v in machine.items())
    return "\n".join([f"Measured on: {where}. Source: `docs/benchmarks/{path.name}`.", "",
                      "| figure | value |", "| --- | --- |", *rows])


def flatten(value, prefix: str = ""):
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from flatten(inner, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield from flatten(inner, f"{prefix}[{i}]")
    else:
        yield prefix, (f"{value:.4g}" if isinstance(value, float) else value)
