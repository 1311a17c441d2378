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


def import_graph(package: str) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports, at module level or inside a function."""
    folder = ROOT / package
    names = {p.stem for p in folder.glob("*.py")}
    graph = {}
    for path in folder.glob("*.py"):
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                deps |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(f"edgelite.{package}."):
                deps.add(node.module.split(".")[2])
        graph[path.stem] = deps & names
    return graph


def test_the_converters_have_no_import_cycles():
    """options used to import ladder (for the rung names) and targets pipeline (for convert): a module that
    imports its importer is two modules pretending to be one."""
    graph = import_graph("converters")
    cycles = []

    def visit(node, path):
        for dep in graph[node]:
            if dep in path:
                cycles.append(path[path.index(dep):] + [dep])
            else:
                visit(dep, path + [dep])
    for start in graph:
        visit(start, [start])
    assert not cycles, cycles[:3]
