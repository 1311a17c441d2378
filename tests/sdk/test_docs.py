"""The README and docs agree with the code: every command and option they show exists."""
import re
import shlex

import click
import pytest

from edgelite.cli import main
from tests.conftest import ROOT

DOCS = [ROOT / "README.md", ROOT / "docs" / "coral.md", ROOT / "docs" / "raspberry-pi.md"]


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
    assert "bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text()


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
