"""The layers of ``mapservice`` and the import cycles between its modules, checked on the source.

Every module under ``mapservice/`` is parsed (``ast``); every ``import`` and ``from … import``
counts, at the top of a module or inside a function (a lazy import is still a dependency).
The layers, lowest first — a module may import its own layer and those below, never above:

====  ==========================================================================================
0     ``core`` (pure values: hours, geo, i18n, vocab …) and ``config.py`` (reads the environment)
1     ``models`` and ``db.py`` (the engine, sessions and column types the models are made of)
2     ``policy`` (who may see, book and manage what)
3     ``booking``, ``stats``, ``maps`` (the domain engines; peers)
4     ``operations`` (use cases), ``maintenance.py`` (backups) and ``migrate.py`` (alembic),
      which only the CLI calls
5     the edges: ``web``, ``api``, ``cli/``, ``app.py`` (the factory that wires them) and the
      package's ``__init__.py`` (``create_app`` for ``flask --app mapservice``)
====  ==========================================================================================

Not counted: the implicit import of a parent package (``import mapservice.booking.engine`` runs
``mapservice/__init__.py``; every Python package works so), and, for cycles only, imports under
``if TYPE_CHECKING:`` (never executed; the models name each other there for their relationship
annotations). For the layers they count: a type is a dependency too.

Debts that were there when the check was written and are not yet removed are listed in
``ALLOWED_CYCLES``/``ALLOWED_UPWARD``, each with a comment; a new one fails the test. Remove an
entry when its debt is paid (the test also fails on an entry that no longer happens, so the
lists only shrink).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "mapservice"

LAYERS: dict[str, int] = {
    "mapservice.core": 0,
    "mapservice.config": 0,
    "mapservice.models": 1,
    "mapservice.db": 1,
    "mapservice.policy": 2,
    "mapservice.booking": 3,
    "mapservice.stats": 3,
    "mapservice.maps": 3,
    "mapservice.operations": 4,
    "mapservice.maintenance": 4,
    "mapservice.migrate": 4,
    "mapservice.web": 5,
    "mapservice.api": 5,
    "mapservice.cli": 5,
    "mapservice.app": 5,
    "mapservice": 5,
}
LAYER_NAMES = ["core", "models", "policy", "booking/stats/maps", "operations", "edges"]

#: Where Flask may not be imported (ruff's TID251 says so too, but cannot match ``flask_*``).
PURE = ("mapservice.core", "mapservice.models", "mapservice.db", "mapservice.policy",
        "mapservice.booking", "mapservice.stats", "mapservice.maps")  # fmt: skip
FLASK_MODULES = ("flask", "werkzeug")  # and every flask_* extension

#: Import cycles still there (each a strongly connected set of modules), to be broken.
ALLOWED_CYCLES: list[frozenset[str]] = []

#: Imports from a lower layer to a higher one still there, to be removed.
ALLOWED_UPWARD: set[tuple[str, str]] = set()


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, typing_only: bool = False) -> Iterator[tuple[ast.stmt, bool]]:
    """Every import statement in ``tree`` (nested ones too), and whether it runs only for the
    type checker."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, typing_only
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                yield from _imports(ast.Module(body=[child], type_ignores=[]), True)
            for child in node.orelse:
                yield from _imports(ast.Module(body=[child], type_ignores=[]), typing_only)
        else:
            yield from _imports(node, typing_only)


def _known(name: str) -> str | None:
    """The module of ``mapservice`` that ``name`` (a module or a name in one) lives in."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imported(name: str) -> Iterator[tuple[str, str, bool]]:
    """(target module, external top-level name or "", typing only) for each import of module
    ``name``."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node, typing_only in _imports(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield _known(alias.name) or "", alias.name.split(".")[0], typing_only
            continue
        assert isinstance(node, ast.ImportFrom)
        if node.level:
            base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        if not source.startswith("mapservice"):
            yield "", source.split(".")[0], typing_only
            continue
        for alias in node.names:
            sub = f"{source}.{alias.name}"
            yield (sub if sub in MODULES else _known(source) or ""), "", typing_only


def graph(*, with_typing: bool) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {name: set() for name in MODULES}
    for name in MODULES:
        for target, _external, typing_only in imported(name):
            if target and target != name and (with_typing or not typing_only):
                edges[name].add(target)
    return edges


def layer_of(name: str) -> int:
    while name not in LAYERS:
        name = name.rpartition(".")[0]
        assert name, "every module of mapservice must have a layer: add it to LAYERS"
    return LAYERS[name]


def cycles(edges: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected sets of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(frozenset(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def upward(edges: dict[str, set[str]]) -> set[tuple[str, str]]:
    return {(a, b) for a, targets in edges.items() for b in targets if layer_of(a) < layer_of(b)}


def test_every_module_is_parsed_and_placed():
    assert {"mapservice.booking.engine", "mapservice.policy", "mapservice.web.bookings"} <= set(
        MODULES
    )
    for name in MODULES:
        layer_of(name)


def test_no_import_cycle_between_modules():
    found = set(cycles(graph(with_typing=False)))
    new = found - set(ALLOWED_CYCLES)
    assert not new, "new import cycles: " + "; ".join(" <-> ".join(sorted(c)) for c in new)
    gone = set(ALLOWED_CYCLES) - found
    assert not gone, f"cycles broken, remove them from ALLOWED_CYCLES: {gone}"


def test_no_import_from_a_lower_layer_to_a_higher_one():
    found = upward(graph(with_typing=True))
    new = found - ALLOWED_UPWARD
    assert not new, "imports from a lower layer to a higher one: " + "; ".join(
        f"{a} ({LAYER_NAMES[layer_of(a)]}) -> {b} ({LAYER_NAMES[layer_of(b)]})"
        for a, b in sorted(new)
    )
    gone = ALLOWED_UPWARD - found
    assert not gone, f"paid debts, remove them from ALLOWED_UPWARD: {gone}"


@pytest.mark.parametrize("name", [n for n in MODULES if n.startswith(PURE)])
def test_pure_layers_do_not_import_flask(name):
    bad = sorted(
        ext
        for _target, ext, _typing in imported(name)
        if ext in FLASK_MODULES or ext.startswith("flask_")
    )
    assert not bad, f"{name} imports {bad}: the pure layers take plain values, not the request"


def test_the_checks_catch_a_bad_import():
    """The checks are not vacuous: an upward edge and a cycle added to the graph are found."""
    edges = graph(with_typing=True)
    edges["mapservice.booking.engine"].add("mapservice.operations.venues")
    assert ("mapservice.booking.engine", "mapservice.operations.venues") in upward(edges)
    edges = graph(with_typing=False)
    edges["mapservice.booking.rules"].add("mapservice.booking.engine")
    assert any(
        {"mapservice.booking.rules", "mapservice.booking.engine"} <= c for c in cycles(edges)
    )
