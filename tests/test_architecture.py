"""Import architecture: no import cycle among netgis, api and maps; netgis stays free of web code.

The imports are read from the source with :mod:`ast`, not by importing: every
``import`` a module can run counts (also those inside functions), except
those under ``if TYPE_CHECKING:``, which never run. An import names the most
specific module it reaches (``from netgis.gaps.plan import x`` is an edge to
``netgis.gaps.plan``): a package's ``__init__`` runs first, but a module
importing a sibling by its full path is not a cycle as long as the package
``__init__`` only re-exports.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("netgis", "api", "maps")
#: What the library must not import: the web service, the maps and their frameworks.
WEB = frozenset({"api", "maps", "fastapi", "starlette", "uvicorn", "folium", "branca"})


def module_files(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    """Dotted module name -> source file of every module under ``packages``."""
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


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
    return module_files(tmp_path, ("pkg",))


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


def test_every_package_is_seen() -> None:
    for expected in ("netgis.io", "netgis.dataset", "netgis.gaps.plan", "netgis.generate.plant",
                     "api.app", "maps.kinds"):
        assert expected in MODULES


def test_no_import_cycle() -> None:
    found = cycles(import_graph(MODULES))
    assert found == [], "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_dataset_types_sit_below_io_and_validate() -> None:
    graph = import_graph(MODULES)
    assert "netgis.io" not in graph["netgis.validate"]
    assert {"netgis.io", "netgis.validate"}.isdisjoint(graph["netgis.dataset"])
    assert "netgis.dataset" in graph["netgis.validate"] and "netgis.validate" in graph["netgis.io"]


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.split(".")[0] == "netgis"))
def test_netgis_never_imports_web_code(module: str) -> None:
    """The library is free of web and HTML code; only the command line reaches for it, lazily."""
    bad = []
    for name, in_function in imported_names(module, MODULES[module]):
        if name.split(".")[0] in WEB and not (module == "netgis.cli" and in_function):
            bad.append(name)
    assert bad == [], f"{module} imports {bad}"


def test_the_cli_reaches_maps_and_api_only_inside_functions() -> None:
    """The exception above is used, and only in that form (so the check above can bite)."""
    lazy = {name.split(".")[0] for name, in_function in
            imported_names("netgis.cli", MODULES["netgis.cli"]) if in_function}
    eager = {name.split(".")[0] for name, in_function in
             imported_names("netgis.cli", MODULES["netgis.cli"]) if not in_function}
    assert {"maps", "api"} <= lazy
    assert eager.isdisjoint(WEB)
