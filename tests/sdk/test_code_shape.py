"""The project's own habits, checked: short functions, each CLI option declared once, one-way imports."""
import ast
import pathlib
import re

import click

from edgelite.cli.commands import main
from tests.conftest import ROOT

PACKAGES = ("runtime", "converters", "sdk")


def test_no_function_is_over_40_lines():
    long = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and \
                        node.end_lineno - node.lineno + 1 > 40:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    assert not long, long


def test_shared_options_are_declared_once_and_behave_the_same_everywhere():
    from edgelite.cli.params import _declarations
    shared = {decls[0] for decls, _ in _declarations().values()}
    cli_source = (ROOT / "sdk" / "cli" / "commands.py").read_text()
    redeclared = [flag for flag in shared if re.search(rf'click\.option\(\s*"{re.escape(flag)}"', cli_source)]
    assert not redeclared, redeclared
    seen: dict = {}
    for command in main.commands.values():
        for param in command.params:
            if isinstance(param, click.Option) and param.opts[0] in shared:
                kind = (type(param.type).__name__, getattr(param.type, "choices", None))
                assert seen.setdefault(param.opts[0], kind) == kind, (command.name, param.opts[0])


def module_name(path) -> str:
    """The dotted name a source file is installed as (pyproject.toml: sdk/ is edgelite, runtime/ edgelite.runtime,
    converters/ edgelite.converters)."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    parts = (["edgelite"] if parts[0] == "sdk" else ["edgelite", parts[0]]) + parts[1:]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, pathlib.Path]:
    return {module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}


def import_graph() -> dict[str, set[str]]:
    """Module -> the edgelite modules it imports, at module level or inside a function (a lazy import ties two
    modules as surely as one at the top)."""
    known = modules()
    graph = {}
    for name, path in known.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("edgelite"):
                assert node.level == 0, f"{path}: a relative import"
                for alias in node.names:  # from a package, a submodule; else the module itself
                    deps.add(f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in known else node.module)
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name in known}
        graph[name] = (deps & set(known)) - {name}
    return graph


def test_the_layout_has_no_import_cycles():
    """tasks imported classifier (for load) and classifier tasks; sweep imported sweep_ray and sweep_ray sweep: a
    module that imports its importer is two modules pretending to be one. Package faces (an __init__ that only
    hands names on) count too: a module that imports its own package's face closes a loop through it."""
    graph = import_graph()
    cycles = []

    def visit(node, path):
        for dep in sorted(graph[node]):
            if dep in path:
                cycles.append(path[path.index(dep):] + [dep])
            elif len(cycles) < 3:
                visit(dep, path + [dep])
    for start in sorted(graph):
        visit(start, [start])
    assert not cycles, cycles[:3]


def test_the_runtime_imports_neither_converters_nor_sdk_and_converters_not_sdk():
    """The device runtime stands alone (no TensorFlow, no CLI); the converters build on it and on nothing above."""
    allowed = {"edgelite.runtime": ("edgelite.runtime",),
               "edgelite.converters": ("edgelite.runtime", "edgelite.converters")}
    for name, deps in import_graph().items():
        for package, may in allowed.items():
            if name == package or name.startswith(package + "."):
                wrong = sorted(d for d in deps if not d.startswith(may))
                assert not wrong, f"{name} imports {wrong}"


def test_no_module_name_is_used_twice_and_no_folder_is_crowded():
    """A name says what a module owns, once in the house; a folder of more than 15 modules wants subpackages."""
    leaves: dict[str, list[str]] = {}
    for name in modules():
        if not name.endswith("__init__") and name.count(".") > 0:
            leaves.setdefault(name.rsplit(".", 1)[1], []).append(name)
    twice = {leaf: names for leaf, names in leaves.items() if len(names) > 1 and leaf not in ("errors",)}
    assert not twice, twice
    crowded = [str(d.relative_to(ROOT)) for package in PACKAGES for d in [ROOT / package, *(ROOT / package).rglob("*/")]
               if d.is_dir() and len([p for p in d.glob("*.py") if p.name != "__init__.py"]) > 15]
    assert not crowded, crowded
