"""The routers stay thin and independent: no router module imports another one.

What several routers share lives outside them (api.params, api.services,
api.deps) or in a routers module that holds no routes (api.routers.common).
"""

from __future__ import annotations

import ast
from pathlib import Path

from netgis.api import routers

ROUTERS = Path(routers.__file__).parent
PACKAGE = "netgis.api.routers"


def imported_modules(source: str, module: str) -> set[str]:
    """Every module ``source`` (the text of ``module``) imports, as absolute dotted names.

    ``from pkg import name`` counts as importing ``pkg.name`` too, since ``name``
    may be a submodule; relative imports are resolved against ``module``.
    """
    out: set[str] = set()
    package = module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            out.add(target)
            out.update(f"{target}.{alias.name}" for alias in node.names)
    return out


def defines_routes(source: str) -> bool:
    """Whether a module makes an ``APIRouter`` (or registers routes on one)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name == "APIRouter":
                return True
    return False


def router_sources() -> dict[str, str]:
    return {f"{PACKAGE}.{p.stem}": p.read_text() for p in sorted(ROUTERS.glob("*.py"))
            if p.stem != "__init__"}


def test_the_import_walk_sees_every_spelling() -> None:
    source = ("from netgis.api.routers.analysis import DropParam\n"
              "from netgis.api.routers import gaps as g\n"
              "import netgis.api.routers.kpis\n"
              "from . import metrics\n"
              "from .maps import PAGES\n"
              "from netgis.api.params import DropParam as D\n")
    found = imported_modules(source, "netgis.api.routers.bead")
    assert {"netgis.api.routers.analysis", "netgis.api.routers.gaps", "netgis.api.routers.kpis",
            "netgis.api.routers.metrics", "netgis.api.routers.maps", "netgis.api.params"} <= found


def test_routers_do_not_import_each_other() -> None:
    sources = router_sources()
    routers = {name for name, text in sources.items() if defines_routes(text)}
    # every routers module but the helpers serves routes; the test must see them all
    assert {"netgis.api.routers.analysis", "netgis.api.routers.bead",
            "netgis.api.routers.collections",
            "netgis.api.routers.gaps", "netgis.api.routers.health", "netgis.api.routers.imports",
            "netgis.api.routers.kpis", "netgis.api.routers.landing", "netgis.api.routers.maps",
            "netgis.api.routers.metrics"} <= routers
    offences = {
        name: sorted(imported_modules(text, name) & (routers - {name}))
        for name, text in sources.items()
    }
    assert {k: v for k, v in offences.items() if v} == {}


def test_shared_helpers_hold_no_routes() -> None:
    helpers = {name for name, text in router_sources().items() if not defines_routes(text)}
    assert helpers == {"netgis.api.routers.common"}
