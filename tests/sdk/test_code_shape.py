"""The project's own habits, checked: short functions, each CLI option declared once, one-way imports."""
import ast
import re

import click

from edgelite.cli import main
from tests.conftest import ROOT

PACKAGES = ("runtime", "converters", "sdk")


def test_no_function_is_over_40_lines():
    long = []
    for package in PACKAGES:
        for path in (ROOT / package).glob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and \
                        node.end_lineno - node.lineno + 1 > 40:
                    long.append(f"{package}/{path.name}:{node.lineno} {node.name}")
    assert not long, long


def test_shared_options_are_declared_once_and_behave_the_same_everywhere():
    from edgelite.options import _declarations
    shared = {decls[0] for decls, _ in _declarations().values()}
    cli_source = (ROOT / "sdk" / "cli.py").read_text()
    redeclared = [flag for flag in shared if re.search(rf'click\.option\(\s*"{re.escape(flag)}"', cli_source)]
    assert not redeclared, redeclared
    seen: dict = {}
    for command in main.commands.values():
        for param in command.params:
            if isinstance(param, click.Option) and param.opts[0] in shared:
                kind = (type(param.type).__name__, getattr(param.type, "choices", None))
                assert seen.setdefault(param.opts[0], kind) == kind, (command.name, param.opts[0])


def test_the_runtime_imports_neither_converters_nor_sdk_and_converters_not_sdk():
    for package, forbidden in (("runtime", ("edgelite.converters", "edgelite.cli", "edgelite.sweep")),
                               ("converters", ("edgelite.cli", "edgelite.sweep", "edgelite.report", "from edgelite import"))):
        for path in (ROOT / package).glob("*.py"):
            text = path.read_text()
            assert not any(f in text for f in forbidden), path
