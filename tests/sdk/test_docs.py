"""The README and docs agree with the code: every command and option they show exists."""
import pathlib
import re
import shlex

import click
import pytest

from edgelite.cli.commands import main
from tests.conftest import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def edgelite_command_lines():
    for doc in DOCS:
        text = doc.read_text()
        for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
            joined = block.replace("\\\n", " ")
            for line in joined.splitlines():
                line = line.split("#")[0].strip()
                words = shlex.split(line) if line else []
                if words and words[0].split("/")[-1] == "edgelite":  # edgelite or .venv/bin/edgelite
                    yield doc.name, words[1:]


@pytest.mark.parametrize("doc, words", list(edgelite_command_lines()))
def test_documented_commands_and_options_exist(doc, words):
    assert words, doc
    command = main.commands.get(words[0])
    assert command is not None, f"{doc}: edgelite {words[0]} is not a command"
    known = {opt for p in command.params if isinstance(p, click.Option) for opt in p.opts + p.secondary_opts}
    used = {w.split("=")[0] for w in words[1:] if w.startswith("-")}
    assert used <= known, f"{doc}: edgelite {words[0]} has no {sorted(used - known)}"


def test_there_are_documented_commands_to_check():
    assert len(list(edgelite_command_lines())) >= 15


def test_readme_setup_commands_are_what_ci_runs():
    readme = (ROOT / "README.md").read_text()
    assert "bash scripts/setup.sh" in readme and "bash scripts/test.sh" in readme
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if "scripts/" in line
          and not line.lstrip().startswith("#")]
    assert ci == ["bash scripts/setup.sh", "exec bash scripts/test.sh"]  # the README's two commands, in order


def test_readme_python_api_names_exist():
    import edgelite
    for name in ("convert", "load", "profile", "EdgeliteError", "ModelError", "InputError", "DelegateError",
                 "BackendUnavailableError"):
        assert getattr(edgelite, name)


def test_documented_wheel_name_is_this_version():
    import edgelite
    for doc in DOCS:
        for version in re.findall(r"edgelite-([0-9][^-]*)-py3-none-any\.whl", doc.read_text()):
            assert version == edgelite.__version__, f"{doc.name}: wheel edgelite-{version}"


def test_the_readme_is_a_front_door_not_a_manual():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 150


def test_every_page_the_site_names_exists_and_every_page_is_named():
    nav = (ROOT / "mkdocs.yml").read_text().split("nav:")[1]
    named = set(re.findall(r":\s*([\w./-]+\.md)", nav))
    pages = {p.name for p in (ROOT / "docs").glob("*.md")}
    assert named == pages, (named ^ pages)


def test_the_layout_in_the_docs_matches_the_tree():
    """Every module of the three packages is named under its own folder in docs/contributing.md's layout, and
    every module it names there exists."""
    text = (ROOT / "docs" / "contributing.md").read_text()
    layout = text.split("## Layout")[1].split("```")[1].split("\nexamples/")[0]
    named: dict[pathlib.Path, set[str]] = {}
    folder = None
    for line in layout.splitlines():
        top, sub = re.match(r"^(runtime|converters|sdk)/", line), re.match(r"^  (\w+)/", line)
        if top:
            base = folder = ROOT / top.group(1)
        elif sub:
            folder = base / sub.group(1)
        if folder is not None:
            named.setdefault(folder, set()).update(re.findall(r"([a-z_0-9]+\.py)", line))
    actual = {d: {p.name for p in d.glob("*.py")} - {"__init__.py"}
              for package in ("runtime", "converters", "sdk") for d in [ROOT / package, *(ROOT / package).glob("*/")]
              if (d / "__init__.py").exists()}
    assert set(named) == set(actual), set(named) ^ set(actual)
    for d, names in actual.items():
        assert named[d] == names, (str(d.relative_to(ROOT)), named[d] ^ names)


def test_every_benchmark_writes_figures_the_benchmarks_page_shows():
    """Each script in benchmarks/ has written its figures (with machine, date and commit) under docs/benchmarks/,
    and the Benchmarks page shows each file: the figures in the docs come from the benchmarks, not a keyboard."""
    import json
    page = (ROOT / "docs" / "benchmarks.md").read_text()
    scripts = sorted(p.stem for p in (ROOT / "benchmarks").glob("*.py")
                     if p.stem not in ("all", "common", "qat_simulation"))  # the two shared modules, and qat_error's
    assert len(scripts) >= 11
    for name in scripts:
        source = (ROOT / "benchmarks" / f"{name}.py").read_text()
        assert "output_options(parser" in source or "--out" in source, f"benchmarks/{name}.py writes no figures"
        figures = ROOT / "docs" / "benchmarks" / f"{name}.json"
        assert figures.is_file(), f"no docs/benchmarks/{name}.json: run benchmarks/{name}.py"
        machine = json.loads(figures.read_text())["machine"]
        assert {"cpu", "cores", "date", "commit"} <= set(machine), name
        assert f"<!-- figures: {name} -->" in page, f"the Benchmarks page does not show {name}.json"


def test_no_measured_figure_is_typed_into_the_readme_or_the_docs():
    """The site's build refuses typed figures (scripts/docs_hooks.py); the README is not built, so it is read here."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "scripts" / "docs_hooks.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        assert not hooks.typed_figures(page.read_text()), page.name
    found = hooks.typed_figures("int8 ran in 3.60 ms, 1.4x faster;\nthe box head kept 25.9 dB")
    assert [f.split("...")[0] for f in found] == ["line 1: ", "line 1: ", "line 2: "]
    assert [f.endswith(s) for f, s in zip(found, ("3.60 ms", "1.4x", "25.9 dB"))] == [True, True, True]
    assert hooks.typed_figures("goal <= 1.5x; a 25 dB budget; at 240 frames/s; [[stream:fps|.1f]] frames/s") == []
    # every unit the docs measure in, "at" before a measured figure, and what an output block shows
    caught = hooks.typed_figures("an anchor grid filled 1.7 GB; a 300 KB model; judged at 22.2 dB; top-1 98.3%; drop "
                                 "0.5 points; it took 6 s\n<!-- example: output: x -->\n```\nran in 19.2 ms\n```\n")
    shown = ("1.7 GB", "300 KB", "22.2 dB", "98.3%", "0.5 points", "6 s", "19.2 ms")
    assert len(caught) == len(shown) and all(f.endswith(s) for f, s in zip(caught, shown)), caught
    assert hooks.typed_figures("within 10 s; `--timeout` (10 s); its 95% Wilson interval; 50% pruning; "
                               "\n<!-- example: output: x -->\n```\nran in … ms\n```\n") == []


def test_the_python_api_reference_is_the_public_api_and_nothing_else():
    """docs/python-api.md's Reference documents exactly what is public: every name of ``dir(edgelite)`` (but the
    version) and the ``__all__`` of the scale-out modules the guide uses, each where it is defined."""
    import importlib

    import edgelite
    text = (ROOT / "docs" / "python-api.md").read_text().split("## Reference")[1]
    documented = set(re.findall(r"^::: ([\w.]+)$", text, flags=re.M))
    public = {f"{getattr(edgelite, n).__module__}.{n}" for n in edgelite.__all__ if n != "__version__"}
    for module in ("edgelite.sweep.run", "edgelite.scale.fleet", "edgelite.scale.batch", "edgelite.scale.cluster"):
        public |= {f"{module}.{n}" for n in importlib.import_module(module).__all__}
    assert documented == public, (sorted(documented - public), sorted(public - documented))
    for section in text.split("\n### ")[1:]:  # each group of names comes with an example (run by the docs test)
        assert "```python" in section or "example at the top" in section, section.splitlines()[0]
