"""MkDocs hooks: the Benchmarks page's figures come from the JSON files the benchmarks write
(``docs/benchmarks/*.json``, with the machine and date), never typed by hand.

A measured figure (milliseconds, decibels, a ratio, a rate) typed into a page's prose is refused: it would
drift from the code that measures it. Goals, budgets and settings are not figures; they read as such (``goal
<= 1.5x``, ``a 25 dB budget``, ``at 240 frames/s``, ``within 10 s``). What a command prints in an output block
is checked too: its measured numbers are written as ``…`` (tests/sdk/test_docs_examples.py matches them as any
number). tests/sdk/test_docs.py runs the same check on the README."""
from __future__ import annotations

import json
import pathlib
import re

MARK = re.compile(r"<!-- figures: (\w+) -->")
FIGURE = re.compile(r"\[\[(\w+):([\w.-]+)(?:\\?\|(\.\d+[fx%]))?\]\]")  # [[stream:live.edgelite.fps|.1f]]; \| in tables


UNITS = r"ms|dB|x|frames/s|images/s|fps|us|%|s|GB|MB|KB|kB|points?"  # every unit the docs measure in
MEASURED = re.compile(rf"(?<![\w.\-\[/])\d+(?:\.\d+)?(?:-\d+(?:\.\d+)?)?\s?(?:{UNITS})(?![\w/])")
RATE = re.compile(r"(x|frames/s|images/s|fps)$")  # "at 240 frames/s", "replayed at 2x": a rate set, not measured
# Words that make a number a goal, a budget, a bound or a setting rather than a measurement
SETTING_BEFORE = re.compile(r"(<=|>=|<|>|at\s+most|at\s+least|under|within|up\s+to|for|to|from|every|after|last|"
                            r"goals?:?(\s+of)?|budgets?(\s+of)?|bound\s+of|tolerance\s+of|e\.g\.|default|claim(s|ed|ing)|"
                            r"prune[ds]?|limit\s+of|OPTION\s*\(?,?)\s*\(?$")  # OPTION: `--flag` (N s), its default
SETTING_AFTER = re.compile(r"^\)?\s*((is a |of )?(goal|budget)|by default|(\w+[ -]){0,2}(intervals?|confidence|bounds?)\b|"
                           r"t-margins|lower end|Wilson|runs|rounds|wider|of (the|a) (fine-tune|training)|(of )?zeros|"
                           r"sparsity|prun(ed|ing)|file|plus|for (a|the|each)|of (wall|CPU) time)")
TABLE = re.compile(r"<!-- table: ([\w./-]+) -->")
CLI_HELP = "<!-- cli-help -->"
CODE = re.compile(r"(^[ ]*```.*?^[ ]*```|`[^`]+`)", re.S | re.M)  # fences may be indented (inside tabs)
OUTPUT = re.compile(r"(<!-- example: output[^>]*-->\s*)^```[^\n]*\n(.*?)^```", re.S | re.M)


def prose(markdown: str) -> str:
    """The page's running text: no code blocks, code spans, comments or figure references, but the output blocks'
    lines (what a command prints, shown as the docs' example: a measured figure there drifts as in prose)."""
    markdown = OUTPUT.sub(lambda m: m.group(2).replace("`", "'"), markdown)
    markdown = CODE.sub(" OPTION ", markdown)  # what follows an option's name may be its default
    markdown = re.sub(r"<!--.*?-->", "", markdown, flags=re.S)
    return FIGURE.sub("[[figure]]", markdown)


def typed_figures(markdown: str) -> list[str]:
    """Measured figures typed into ``markdown``'s prose (each with the words before it), rather than referenced."""
    text = prose(markdown)
    found = []
    for m in MEASURED.finditer(text):
        before, after = text[max(0, m.start() - 25):m.start()], text[m.end():m.end() + 20]
        at_rate = before.rstrip().endswith(" at") and RATE.search(m.group(0))
        if not (at_rate or SETTING_BEFORE.search(before) or SETTING_AFTER.search(after)):
            found.append(f"line {text.count(chr(10), 0, m.start()) + 1}: ...{before.split(chr(10))[-1]}{m.group(0)}")
    return found


def on_page_markdown(markdown: str, page, config, files) -> str:
    folder = pathlib.Path(config["docs_dir"]) / "benchmarks"
    typed = typed_figures(markdown)
    if typed:
        raise ValueError(f"{page.file.src_path}: measured figures typed by hand (reference a benchmark's file "
                         f"instead, [[name:dotted.key]]): {'; '.join(typed)}")
    def resolved(text: str) -> str:
        text = text.replace(CLI_HELP, cli_help())
        text = TABLE.sub(lambda m: table(pathlib.Path(config["docs_dir"]) / m.group(1)), text)
        text = MARK.sub(lambda m: figures(folder / f"{m.group(1)}.json"), text)
        text = FIGURE.sub(lambda m: figure(folder / f"{m.group(1)}.json", m.group(2), m.group(3)), text)
        left = re.search(r"\[\[\w+:[^\]]*\]\]", text)
        if left:  # a figure reference the pattern above could not read: fail rather than print it as text
            raise ValueError(f"{page.file.src_path}: cannot read the figure reference {left.group(0)}")
        return text
    parts = CODE.split(markdown)  # code is shown as written: [[name:key]] there is an example, not a reference
    return "".join(resolved(part) if i % 2 == 0 else part for i, part in enumerate(parts))


SHIM = "https://unpkg.com/iframe-worker/shim"  # what Material's offline plugin loads for search from file://
LOCAL_SHIM = "assets/javascripts/iframe-worker-shim.js"   # the same shim, vendored (MIT) under docs/


def on_post_page(output: str, page, config) -> str:
    """Search in a site opened from files needs Material's iframe-worker shim, which the offline plugin loads
    from unpkg.com: the page loads the vendored copy instead, so the site needs nothing from the network."""
    return output.replace(SHIM, "../" * page.url.count("/") + LOCAL_SHIM)


def on_post_template(output: str, template_name: str, config) -> str:
    """The same for pages built from templates alone (404.html, at the site's root)."""
    return output.replace(SHIM, LOCAL_SHIM)


def cli_help() -> str:
    """Every command's own ``--help``, in the order ``edgelite --help`` lists them: the reference is what the
    terminal shows, defaults and all (a generator reading click's parameters printed click 8.3's unset-default
    sentinel as the default of 78 options)."""
    import click

    from edgelite.cli.commands import main
    parts = []
    root = click.Context(main, info_name="edgelite", terminal_width=100, max_content_width=100)
    parts.append(f"### edgelite\n\n```text\n{main.get_help(root)}\n```\n")
    for name in main.list_commands(root):
        command = main.get_command(root, name)
        ctx = click.Context(command, info_name=f"edgelite {name}", terminal_width=100, max_content_width=100)
        parts.append(f"### edgelite {name}\n\n```text\n{command.get_help(ctx)}\n```\n")
    return "\n".join(parts)


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


def table(path: pathlib.Path) -> str:
    """The table and the bold lines of a report edgelite wrote (e.g. a sweep's report.md), as the report has them."""
    lines = path.read_text().splitlines()
    return "\n".join([line for line in lines if line.startswith("|")] + [""] +
                     [line for line in lines if line.startswith("**")])
