"""The package's layers point one way (docs/design.md, "Layers"): no module imports a layer above its own,
the core never imports the integrations, and no two modules import each other, directly or in a circle.

Imports are read from the source (every ``import``, also inside functions), so a lazy import that
reaches upwards is caught as well; the one allowed exception is listed with its reason.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: lowest first; a module may import its own layer and the ones before it
LAYERS = [
    ("foundation", ["synthaug._version", "synthaug.seeding", "synthaug.console", "synthaug.checks"]),
    ("data", ["synthaug.data", "synthaug.visualize", "synthaug.inference", "synthaug.mixup", "synthaug.policies"]),
    ("generators", ["synthaug.generators"]),
    ("io", ["synthaug.io", "synthaug.training", "synthaug.compress"]),
    ("bank", ["synthaug.bank", "synthaug.synthetic"]),
    ("recipe", ["synthaug.classic", "synthaug.recipe"]),
    ("mixing", ["synthaug.augment", "synthaug.transforms", "synthaug.curation", "synthaug.integrations", "synthaug.sampling"]),
    ("classifier and metrics", ["synthaug.classifier", "synthaug.metrics"]),
    ("evaluation", ["synthaug.evaluation"]),
    ("recommend", ["synthaug.recommend"]),
    ("cli", ["synthaug.cli", "synthaug"]),
]

#: (importer, imported): why the upward import is allowed
ALLOWED = {
    ("synthaug.generators.base", "synthaug.io"): "the deprecated ConditionalGenerator.save shim, removed in 0.3",
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[0] == "integrations":
        parts = ["synthaug", *parts]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    files = [*sorted((ROOT / "synthaug").rglob("*.py")), *sorted((ROOT / "integrations").rglob("*.py"))]
    return {_module_name(path): path for path in files}


MODULES = _modules()


def _resolve(name: str) -> str:
    """The module an import names (``from synthaug import x`` names ``synthaug.x`` when that is a module)."""
    while name not in MODULES and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def _imports(path: Path, top_level_only: bool = False) -> set[str]:
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else ast.walk(tree)
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("synthaug")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("synthaug"):
            found |= {_resolve(f"{node.module}.{alias.name}") for alias in node.names}
    return {_resolve(name) for name in found}


def _layer(module: str) -> int:
    best = None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > best[1]:
                    best = (index, len(prefix))
    assert best is not None, f"{module} belongs to no layer: add it to LAYERS (and to docs/design.md)"
    return best[0]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_reaches_up_a_layer(module):
    mine = _layer(module)
    upward = sorted(
        f"{imported} ({LAYERS[_layer(imported)][0]})"
        for imported in _imports(MODULES[module])
        if _layer(imported) > mine and (module, imported) not in ALLOWED
    )
    assert not upward, f"{module} ({LAYERS[mine][0]}) imports from a layer above: {upward}"


def test_the_core_never_imports_the_integrations():
    offenders = sorted(m for m in MODULES if not m.startswith("synthaug.integrations")
                       and any(i.startswith("synthaug.integrations") for i in _imports(MODULES[m])))  # fmt: skip
    assert not offenders


def test_no_import_cycles():
    graph = {m: {i for i in _imports(path, top_level_only=True) if i != m and i in MODULES} for m, path in MODULES.items()}
    # a package's __init__ importing its own submodules is how packages work; a submodule importing back is a cycle
    for m in graph:
        graph[m] = {i for i in graph[m] if not i.startswith(m + ".")}
    state: dict[str, int] = {}

    def visit(node, trail):
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                raise AssertionError(f"import cycle: {' -> '.join(trail[trail.index(nxt):] + [nxt])}")
            if nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
