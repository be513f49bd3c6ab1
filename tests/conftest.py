"""Fixtures shared by the suites: the PostGIS provisioner and the databases of the API tests.

PostGIS runs on the local PostgreSQL (``NETGIS_TEST_POSTGRES_URL``, by default
postgresql+psycopg://postgres@127.0.0.1:5432/postgres): every database is made with a
unique name and dropped after. When the server is not reachable the PostGIS tests fail,
they are not skipped (``make test`` starts it).

What the fixtures are built on (the examples, :class:`PostgresDatabases`) is in
``tests/helpers.py``, the module tests import from.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy

from netgis.storage import Repository
from tests.helpers import POSTGRES_URL, PostgresDatabases


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep the tests of one ``xdist_group`` on one worker (``make test`` runs
    ``pytest -n 3 --dist loadgroup``).

    pytest-xdist groups a worker's tests by a suffix of their node ids, ``@GROUP``. Its
    3.8 release writes that suffix to ``Node._nodeid``, which pytest 9 no longer reads (a
    node's id is ``Node._id``), so every group was spread over the workers like any test:
    the module fixtures the groups exist for (a 200 k-premise city, a served database)
    were built once per worker that ran one of the tests. The suffix is written here where
    pytest reads it; nothing is done when xdist did it already, or without loadgroup.
    """
    if not hasattr(config, "workerinput") or not config.getvalue("loadgroup"):
        return
    from _pytest.nodeid import coerce_node_id

    for item in items:
        names = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                        for m in item.iter_markers("xdist_group")})
        suffix = "@" + "_".join(names)
        if names and not item.nodeid.endswith(suffix):
            item._id = coerce_node_id(item.nodeid + suffix)


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[PostgresDatabases]:
    """The PostGIS provisioner: ``create()`` makes a throwaway database with the postgis
    extension on the server; ``drop(url)`` drops one now, the rest go at the session's end."""
    dbs = PostgresDatabases(POSTGRES_URL)
    try:
        dbs.check()
    except sqlalchemy.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_URL} (run `make postgres`): {exc}")
    yield dbs
    dbs.drop_all()


@pytest.fixture(scope="session")
def postgis_server(pg_databases: PostgresDatabases) -> Iterator[str]:
    """The name of a migrated template database (the API and map tests copy it)."""
    url = pg_databases.create(prefix="netgis_api_tmpl")
    repo = Repository.from_url(url)
    repo.init()
    repo.engine.dispose()
    yield str(sqlalchemy.make_url(url).database)
    pg_databases.drop(url)


@pytest.fixture(params=["spatialite", pytest.param("postgis", marks=pytest.mark.postgis)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database of each kind without data, for the API and map tests (the app
    migrates it at start; the PostGIS one is a copy of the migrated template)."""
    if request.param == "spatialite":
        yield f"sqlite:///{tmp_path / 'api.db'}"
        return
    dbs: PostgresDatabases = request.getfixturevalue("pg_databases")
    url = dbs.create(prefix="netgis_api_test", template=request.getfixturevalue("postgis_server"))
    try:
        yield url
    finally:
        dbs.drop(url)
