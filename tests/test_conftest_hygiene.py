"""The suite's own code is shared through helper modules, never through conftests.

pytest loads every conftest itself and hands its fixtures to tests by name; a conftest
is not a module to import (imported, it runs a second time under another name). Code
the tests share lives in plain modules (tests/helpers.py, tests/<suite>/helpers.py)
under public names. An ast walk over every Python file below tests/ checks both.
Private names of the library (netgis, api, maps) are not this test's business.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

TESTS = Path(__file__).parent
#: Modules below tests/ as a bare import could name them (as when a test folder without
#: __init__.py was put on sys.path: ``from storage_helpers import ...``).
SUITE_STEMS = {p.stem for p in TESTS.rglob("*.py")} - {"__init__"}


def is_private(name: str) -> bool:
    return name.startswith("_") and not name.endswith("__")


def is_suite_module(module: str, level: int) -> bool:
    """Whether ``from <module> import ...`` (``level`` leading dots) imports suite code."""
    if level > 0:
        return True
    first = module.split(".")[0]
    return first == "tests" or first in SUITE_STEMS


def conftest_imports(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, import) of every import of a conftest module or from one."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, f"import {a.name}") for a in node.names
                      if "conftest" in a.name.split(".")]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            names = [a.name for a in node.names]
            if "conftest" in module.split(".") or "conftest" in names:
                found.append((node.lineno, f"from {'.' * node.level}{module} import "
                                           f"{', '.join(names)}"))
    return found


def private_suite_imports(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, import) of every private name imported from the suite's own modules."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            private = [a.name for a in node.names if is_private(a.name)]
            if private and is_suite_module(module, node.level):
                found.append((node.lineno, f"from {'.' * node.level}{module} import "
                                           f"{', '.join(private)}"))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, f"import {a.name}") for a in node.names
                      if is_suite_module(a.name, 0)
                      and any(is_private(part) for part in a.name.split("."))]
    return found


Check = Callable[[ast.AST], list[tuple[int, str]]]


def everywhere(check: Check) -> list[str]:
    """``check`` over every Python file below tests/, as ``path:line: import``."""
    out = []
    for path in sorted(TESTS.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        out += [f"{path.relative_to(TESTS.parent)}:{line}: {text}"
                for line, text in check(tree)]
    return out


def test_nothing_imports_a_conftest() -> None:
    assert everywhere(conftest_imports) == []


def test_no_private_name_is_imported_from_the_suite() -> None:
    assert everywhere(private_suite_imports) == []


def test_the_checks_find_what_they_look_for() -> None:
    bad_conftest = """
import tests.api.conftest
from tests.maps.conftest import PageServer
from tests.api import conftest
from .conftest import thing
def f():
    from conftest import x
"""
    assert sorted(line for line, _ in conftest_imports(ast.parse(bad_conftest))) == [2, 3, 4, 5, 7]
    bad_private = """
from tests.api.helpers import _secret, public
from .helpers import _relative
from . import _module
from helpers import _maybe
import tests._hidden
def f():
    from tests.helpers import _late
"""
    assert sorted(line for line, _ in private_suite_imports(ast.parse(bad_private))) == [
        2, 3, 4, 5, 6, 8]
    fine = """
from __future__ import annotations
from tests.helpers import EXAMPLES, EXAMPLES_DIR
from tests.storage.helpers import BACKENDS
from netgis.storage import _private_of_the_library
from netgis.api.app import create_app
import netgis.maps
"""
    tree = ast.parse(fine)
    assert conftest_imports(tree) == [] and private_suite_imports(tree) == []
