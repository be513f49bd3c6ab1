"""Import architecture: the packages are layered by role, without an import cycle.

``netgis`` is layered: the contract (``errors``, ``schema``, ``dataset``, ``validate``,
``geodesy``) < files and data (``io``, ``interop``, ``generate``) < the ``engine`` <
``products`` built on an analysis < ``storage`` < the applications (``cli``, ``api``,
``maps``). A module imports its own layer and those below, never one above; only the
applications import web code (fastapi, starlette, uvicorn, folium, branca), and the
command line only inside the commands that need it. ``netgis.api`` and ``netgis.maps``
live in the top-level ``api/`` and ``maps/`` folders (``netgis/api`` and ``netgis/maps``
are links to them).

The imports are read from the source with :mod:`ast`, not by importing: every
``import`` a module can run counts (also those inside functions), except
those under ``if TYPE_CHECKING:``, which never run. An import names the most
specific module it reaches (``from netgis.products.gaps.plan import x`` is an edge to
``netgis.products.gaps.plan``): a package's ``__init__`` runs first, but a module
importing a sibling by its full path is not a cycle as long as the package
``__init__`` only re-exports.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Folder -> the dotted package it installs as.
PACKAGES = {"netgis": "netgis", "api": "netgis.api", "maps": "netgis.maps"}
#: What only the applications may import: web frameworks and map libraries.
WEB = frozenset({"fastapi", "starlette", "uvicorn", "folium", "branca"})
#: The layers of netgis, lowest first: (name, module prefixes).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("contract", ("netgis", "netgis.errors", "netgis.schema", "netgis.dataset",
                  "netgis.validate", "netgis.geodesy", "netgis.jsonsafe", "netgis.strand_plant")),
    ("data", ("netgis.io", "netgis.interop", "netgis.generate")),
    ("engine", ("netgis.engine",)),
    ("products", ("netgis.products",)),
    ("storage", ("netgis.storage",)),
    ("applications", ("netgis.cli", "netgis.api", "netgis.maps")),
)


def module_files(root: Path, packages: dict[str, str]) -> dict[str, Path]:
    """Dotted module name -> source file of every module under the ``packages`` folders."""
    found: dict[str, Path] = {}
    for folder, dotted in packages.items():
        for path in sorted((root / folder).rglob("*.py")):
            parts = list(path.relative_to(root / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([dotted, *parts])] = path
    return found


def layer_of(module: str) -> int:
    """Index in :data:`LAYERS` of ``module`` (the longest matching prefix decides)."""
    best, rank = -1, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), i
    if rank < 0:
        raise AssertionError(f"{module} belongs to no layer: add it to LAYERS")
    return rank


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def runtime_imports(tree: ast.AST) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement that can run, and whether it sits inside a function."""

    def walk(node: ast.AST, in_function: bool) -> Iterator[tuple[ast.Import | ast.ImportFrom,
                                                                 bool]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for other in child.orelse:  # the else branch does run
                    yield from walk(other, in_function)
                continue
            if isinstance(child, ast.Import | ast.ImportFrom):
                yield child, in_function
            inner = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef
                                              | ast.Lambda)
            yield from walk(child, inner)

    yield from walk(tree, False)


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute name a (possibly relative) ``from`` import refers to."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imported_names(module: str, path: Path) -> Iterator[tuple[str, bool]]:
    """Absolute names of what ``module`` imports at run time (for ``from a import b``: a.b),
    and whether the import is inside a function."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node, in_function in runtime_imports(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, in_function
        else:
            base = _absolute(module, path.name == "__init__.py", node)
            for alias in node.names:
                yield (f"{base}.{alias.name}" if alias.name != "*" else base), in_function


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The most specific known module ``name`` reaches (None: outside the project)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the project modules it imports at run time."""
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        for name, _ in imported_names(module, path):
            target = _resolve(name, modules)
            if target is not None and target != module:
                graph[module].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


# ---- the checks themselves, on small made-up packages: each one must be able to fail ----------

def _package(tmp_path: Path, files: dict[str, str]) -> dict[str, Path]:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return module_files(tmp_path, {"pkg": "pkg"})


def test_checker_finds_a_cycle_through_a_function_level_import(tmp_path: Path) -> None:
    modules = _package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from pkg.b import thing\n",
        "pkg/b.py": "def thing():\n    from pkg import a\n    return a\n",
        "pkg/c.py": "import pkg.a\n",
    })
    assert cycles(import_graph(modules)) == [["pkg.a", "pkg.b"]]


def test_checker_ignores_type_checking_imports_and_resolves_relative_ones(
        tmp_path: Path) -> None:
    modules = _package(tmp_path, {
        "pkg/__init__.py": "from .a import x\n",
        "pkg/a.py": ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                     "    from pkg.b import y\nelse:\n    import json\nx = 1\n"),
        "pkg/b.py": "from . import a\nfrom .a import x as y\n",
    })
    graph = import_graph(modules)
    assert graph == {"pkg": {"pkg.a"}, "pkg.a": set(), "pkg.b": {"pkg.a"}}
    assert cycles(graph) == []


# ---- the project ---------------------------------------------------------------------------

MODULES = module_files(ROOT, PACKAGES)
#: The project's import graph, read once for all the checks below.
GRAPH = import_graph(MODULES)


def test_every_package_is_seen() -> None:
    for expected in ("netgis.io", "netgis.dataset", "netgis.products.gaps.plan",
                     "netgis.generate.plant", "netgis.engine.analysis", "netgis.api.app",
                     "netgis.maps.kinds", "netgis.cli"):
        assert expected in MODULES


def test_the_api_and_maps_folders_are_the_netgis_packages() -> None:
    """``netgis.api`` and ``netgis.maps`` import from the top-level folders, nothing generic
    called ``api`` or ``maps`` is needed (an installed one would clash)."""
    import netgis.api
    import netgis.maps

    assert Path(netgis.api.__file__).resolve() == ROOT / "api" / "__init__.py"
    assert Path(netgis.maps.__file__).resolve() == ROOT / "maps" / "__init__.py"
    bare = [f"{module}: {name}" for module, path in MODULES.items()
            for name, _ in imported_names(module, path)
            if name.split(".")[0] in ("api", "maps")]
    assert bare == []


def test_no_import_cycle() -> None:
    found = cycles(GRAPH)
    assert found == [], "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_every_module_has_a_layer() -> None:
    assert all(layer_of(module) >= 0 for module in MODULES)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_a_layer_above_its_own(module: str) -> None:
    own = layer_of(module)
    above = sorted(target for target in GRAPH[module]
                   if layer_of(target) > own)
    assert above == [], (f"{module} ({LAYERS[own][0]}) imports "
                         + ", ".join(f"{t} ({LAYERS[layer_of(t)][0]})" for t in above))


def test_the_checker_sees_an_upward_import(tmp_path: Path) -> None:
    """The rule above can fail: the engine importing a product is reported."""
    modules = {**MODULES, "netgis.engine.bad": tmp_path / "bad.py"}
    (tmp_path / "bad.py").write_text("from netgis.products.tiles import TileAddress\n")
    graph = import_graph(modules)
    assert [t for t in graph["netgis.engine.bad"] if layer_of(t) > layer_of("netgis.engine")]


def test_maps_never_reach_the_api_or_storage() -> None:
    bad = {module: sorted(t for t in targets if t.startswith(("netgis.api", "netgis.storage")))
           for module, targets in GRAPH.items() if module.startswith("netgis.maps")}
    assert {m: t for m, t in bad.items() if t} == {}


def test_dataset_types_sit_below_io_and_validate() -> None:
    graph = GRAPH
    assert not any(t.startswith("netgis.io") for t in graph["netgis.validate"])
    assert {"netgis.io", "netgis.validate"}.isdisjoint(graph["netgis.dataset"])
    assert "netgis.dataset" in graph["netgis.validate"]
    assert "netgis.validate" in graph["netgis.io.read"]


@pytest.mark.parametrize("module", sorted(m for m in MODULES if layer_of(m) < len(LAYERS) - 1))
def test_the_library_never_imports_web_code(module: str) -> None:
    """Below the applications nothing imports a web framework or a map library."""
    bad = [name for name, _ in imported_names(module, MODULES[module])
           if name.split(".")[0] in WEB]
    assert bad == [], f"{module} imports {bad}"


def test_the_cli_reaches_web_code_only_inside_functions() -> None:
    """The command line starts fast and works without the web stack until ``serve`` or
    ``map`` runs: it reaches the API, the maps and their frameworks only inside functions."""
    cli = [m for m in MODULES if m == "netgis.cli" or m.startswith("netgis.cli.")]
    web = ("netgis.api", "netgis.maps")
    lazy, eager = set(), set()
    for module in cli:
        for name, in_function in imported_names(module, MODULES[module]):
            if name.split(".")[0] in WEB or name.startswith(web):
                (lazy if in_function else eager).add(name)
    assert any(n.startswith("netgis.maps") for n in lazy)
    assert any(n.startswith("netgis.api") for n in lazy)
    assert eager == set()
