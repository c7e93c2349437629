"""The package's shape, read from its source: imports flow one way (no cycles), no private
name crosses a module boundary, and the layers the README describes hold."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"


def _modules() -> dict[str, Path]:
    out = {}
    for p in (SRC / "headstart").rglob("*.py"):
        parts = p.relative_to(SRC).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return out


MODULES = _modules()


def _owner(name: str) -> str | None:
    """The module that ``name`` (a module or a name inside one) belongs to."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(path: Path):
    """(imported module, imported name or None) for every headstart import in ``path``, at
    module level or inside functions, leaving out imports only for type checkers."""
    tree = ast.parse(path.read_text())
    typing_only = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only |= {id(x) for stmt in node.body for x in ast.walk(stmt)}
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("headstart"):
            for alias in node.names:
                yield node.module, alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("headstart"):
                    yield alias.name, None


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        for target, name in _imports(path):
            full = f"{target}.{name}" if name else target
            dep = _owner(full if full in MODULES else target)
            if dep is None:
                continue
            # importing a.b.c runs a/__init__ and a/b/__init__ first: those are edges too,
            # but for the packages that hold the importer (Python has begun them already)
            parts = dep.split(".")
            for k in range(1, len(parts) + 1):
                step = ".".join(parts[:k])
                if step in MODULES and step != module and not module.startswith(step + "."):
                    graph[module].add(step)
    return graph


GRAPH = _graph()


def _reaches(start: str, goal: str) -> list[str] | None:
    """An import path from ``start`` to ``goal``, if there is one."""
    stack, seen = [[start]], {start}
    while stack:
        path = stack.pop()
        for nxt in sorted(GRAPH[path[-1]]):
            if nxt == goal:
                return [*path, nxt]
            if nxt not in seen:
                seen.add(nxt)
                stack.append([*path, nxt])
    return None


def test_no_import_cycles():
    cycles = [c for m in GRAPH for d in GRAPH[m] if (c := _reaches(d, m)) and c[0] != m]
    assert not cycles, "import cycles: " + "; ".join(" -> ".join([c[-1], *c]) for c in cycles)


def test_no_private_names_cross_modules():
    crossing = [
        f"{module} imports {target}.{name}"
        for module, path in MODULES.items()
        for target, name in _imports(path)
        if name and name.startswith("_") and not name.startswith("__")
    ]
    assert not crossing, crossing


@pytest.mark.parametrize(
    ("lower", "upper"),
    [
        # the run directory holds no model class and calls nothing above it
        ("headstart.core.runs", "headstart.core.training"),
        ("headstart.core.runs", "headstart.core.report"),
        ("headstart.core.runs", "headstart.core.evaluate"),
        ("headstart.core.model", "headstart.core.runs"),
        # training writes no report: the commands and headstart.train do
        ("headstart.core.training", "headstart.core.report"),
        ("headstart.core.training", "headstart.core.advise"),
        # nothing below the entry points reaches them
        ("headstart.core.training", "headstart.api"),
        ("headstart.core.report", "headstart.cli"),
        ("headstart.core.estimator", "headstart.cli"),
    ],
)
def test_layers(lower, upper):
    assert lower in MODULES and upper in MODULES, "a module was renamed: update this test"
    path = _reaches(lower, upper)
    assert path is None, f"{lower} reaches {upper}: {' -> '.join(path)}"


def test_the_core_imports_no_modality():
    """Issue 28: the core reaches a modality only through the registry
    (``headstart.core.modality``, by name) and the protocols it declares; no module under
    ``headstart.core`` imports one, and no modality imports another."""
    found = sorted(
        f"{module} imports {_owner(target)}"
        for module, path in MODULES.items()
        for target, _ in _imports(path)
        if target.startswith("headstart.modalities")
        and (
            module.startswith("headstart.core")
            or (
                module.startswith("headstart.modalities.")
                and module.split(".")[2] != target.split(".")[2]
            )
        )
    )
    assert not found, found
