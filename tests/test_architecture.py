"""The layers of ARCHITECTURE.md hold: every module imports only from its own layer or the
layers before it, the import graph has no circles, the kernel is pure standard library,
and no module outgrows one concept (about 500 lines)."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "simdml"

#: the layers in order; a module may import from its own layer and the ones above it
LAYERS = [
    ("foundation", ["simdml._checks", "simdml._toml", "simdml._span", "simdml._version",
                    "simdml._progress"]),
    ("kernel", ["simdml.engine"]),
    ("randomness", ["simdml._rng"]),
    ("payloads", ["simdml.phantom"]),
    ("cluster", ["simdml.compute_times", "simdml.network", "simdml.topology", "simdml.memory", "simdml.cluster", "simdml.faults"]),
    ("collectives", ["simdml.collective_times", "simdml.collectives"]),
    ("data", ["simdml.data", "simdml.datasets"]),
    ("learners", ["simdml.models", "simdml.optim"]),
    ("policies", ["simdml.scheduling", "simdml.imbalance", "simdml.fusion", "simdml.graphs",
                  "simdml.compression", "simdml.clients", "simdml.aggregation",
                  "simdml.privacy", "simdml.secagg"]),
    ("strategies", ["simdml.messages", "simdml.strategies"]),
    ("observation", ["simdml.trace", "simdml.metrics", "simdml.tables", "simdml.plots",
                     "simdml.display"]),
    ("experiment", ["simdml._rules", "simdml._section", "simdml.cluster_sections",
                    "simdml.sections", "simdml.scenario", "simdml.scenarios",
                    "simdml.pipeline", "simdml.build", "simdml.stopping", "simdml.result",
                    "simdml.experiment", "simdml.records", "simdml.sweep"]),
    ("faces", ["simdml._overrides", "simdml.cli", "simdml.check", "simdml._check_parallel",
               "simdml.notebook", "simdml.__main__", "simdml"]),
]
MAX_LINES = 500


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _layer(module: str) -> int:
    """The index of the layer that owns ``module`` (the longest matching prefix)."""
    best = None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > best[1]:
                    best = (index, len(prefix))
    assert best is not None, f"{module} is in no layer of LAYERS: add it"
    return best[0]


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    """The simdml modules that ``module`` imports, anywhere in its file (a function-level
    import is an import too). ``from X import y`` counts ``X.y`` when that is a module."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = set()
    for node in _runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "simdml")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "simdml":
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                out.add(sub if sub in known else target)
    out.discard(module)
    return out


def _runtime_nodes(tree):
    """Every node of ``tree`` but those under ``if TYPE_CHECKING:`` (type hints only)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {m: _imports(m, p, set(modules)) for m, p in modules.items()}


def test_every_module_belongs_to_a_layer():
    """A new module is placed in a layer (LAYERS here, and ARCHITECTURE.md) when it is
    added."""
    for module in _modules():
        _layer(module)


def test_nothing_imports_from_a_later_layer():
    """A module imports only from its own layer and those above it: the cluster never
    sees a strategy, a strategy never sees the experiment, and so on."""
    upward = [(m, d) for m, deps in _graph().items() for d in deps
              if _layer(d) > _layer(m)]
    assert upward == []


def test_the_import_graph_has_no_circles():
    """No module reaches itself through its imports (package re-exports included)."""
    graph = _graph()
    state: dict[str, int] = {}
    cycles = []

    def visit(m, path):
        state[m] = 1
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                cycles.append(path[path.index(d):] + [d])
            elif d not in state:
                visit(d, path + [d])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert cycles == []


@pytest.mark.parametrize("module", ["simdml.engine", "simdml._checks", "simdml._span",
                                    "simdml._toml", "simdml._progress"])
def test_the_foundation_and_the_kernel_are_pure_standard_library(module):
    """The kernel and the foundation import no third-party package (not even numpy)."""
    paths = [p for m, p in _modules().items() if m == module or m.startswith(module + ".")]
    assert paths
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module] if isinstance(node, ast.ImportFrom) and not node.level
                     else [])
            for name in names:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names or top == "__future__", (path, name)


def test_no_module_outgrows_one_concept():
    """Every module stays under MAX_LINES lines (split it by concept when it grows)."""
    long = {m: n for m, p in _modules().items()
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_the_checks_catch_an_upward_import(tmp_path):
    """The layer rule fails on an upward import (the test can fail)."""
    assert _layer("simdml.cluster") < _layer("simdml.strategies.sync")
    fake = tmp_path / "simdml" / "cluster.py"
    fake.parent.mkdir()
    fake.write_text("from .strategies import sync\n")
    deps = _imports("simdml.cluster", fake, {"simdml.strategies.sync", "simdml.strategies"})
    assert deps == {"simdml.strategies.sync"}
    assert any(_layer(d) > _layer("simdml.cluster") for d in deps)
