"""Fixtures running the same storage tests against SpatiaLite and PostGIS.

PostGIS databases come from ``pg_databases`` (tests/conftest.py): one per backend
for the session, dropped at the end. Each test starts from empty tables.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy

from netgis.storage import Repository, create_engine
from tests.helpers import PostgresDatabases
from tests.storage.helpers import BACKENDS, clean_repo


@pytest.fixture
def new_engine(request: pytest.FixtureRequest,
               tmp_path: Path) -> Iterator[Callable[[str], sqlalchemy.Engine]]:
    """A factory: an engine on a brand-new, empty database of the given backend."""
    made: list[sqlalchemy.Engine] = []

    def make(backend: str) -> sqlalchemy.Engine:
        if backend == "spatialite":
            engine = create_engine(f"sqlite:///{tmp_path / f'db{len(made)}.sqlite'}")
            made.append(engine)
            return engine
        dbs: PostgresDatabases = request.getfixturevalue("pg_databases")
        # without the postgis extension: the migrations under test create it
        return dbs.engine(dbs.create(postgis=False))

    yield make
    for engine in made:
        engine.dispose()


@pytest.fixture(scope="session")
def _session_repos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Repository]]:
    repos: dict[str, Repository] = {}
    yield repos
    for repo in repos.values():
        repo.engine.dispose()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _ready_repo(backend: str, request: pytest.FixtureRequest,
                session_repos: dict[str, Repository],
                tmp_path_factory: pytest.TempPathFactory) -> Repository:
    """The session's initialised repository of ``backend``, emptied."""
    if backend not in session_repos:
        if backend == "spatialite":
            path = tmp_path_factory.mktemp("spatialite") / "netgis.db"
            r = Repository.from_url(f"sqlite:///{path}")
        else:
            dbs: PostgresDatabases = request.getfixturevalue("pg_databases")
            r = Repository(dbs.engine(dbs.create()))
        r.init()
        session_repos[backend] = r
    clean_repo(session_repos[backend])
    return session_repos[backend]


@pytest.fixture
def repo(backend: str, request: pytest.FixtureRequest,
         _session_repos: dict[str, Repository],
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Repository]:
    """An initialised repository with empty tables, on the backend under test."""
    r = _ready_repo(backend, request, _session_repos, tmp_path_factory)
    yield r
    clean_repo(r)


@pytest.fixture
def all_repos(request: pytest.FixtureRequest, _session_repos: dict[str, Repository],
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Repository]]:
    """Both databases at once, empty (for comparing their answers)."""
    repos = {b: _ready_repo(b, request, _session_repos, tmp_path_factory)
             for b in ("spatialite", "postgis")}
    yield repos
    for r in repos.values():
        clean_repo(r)
