"""Fixtures of the API tests: databases (SpatiaLite and PostGIS), clients and a real server."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from netgis.io import read_dataset
from netgis.storage import Repository

API_KEY = "test-key"
EXAMPLES = Path(__file__).parents[1] / "examples"
PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432"


def _create(name: str, template: str | None = None) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as conn:
        clause = f' TEMPLATE "{template}"' if template else ""
        conn.execute(f'CREATE DATABASE "{name}"{clause}')


def _drop(name: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgis_server() -> Iterator[str]:
    """A migrated template database (PostgreSQL down fails the run, never skips it)."""
    name = f"netgis_api_tmpl_{uuid.uuid4().hex[:12]}"
    _create(name)
    try:
        repo = Repository.from_url(f"{PG_URL}/{name}")
        repo.init()
        repo.engine.dispose()
        yield name
    finally:
        _drop(name)


def _postgis_database(template: str | None = None) -> Iterator[str]:
    # copying a migrated template is much faster than migrating each test's database
    name = f"netgis_api_test_{uuid.uuid4().hex[:12]}"
    _create(name, template)
    try:
        yield f"{PG_URL}/{name}"
    finally:
        _drop(name)


@pytest.fixture(params=["spatialite", pytest.param("postgis", marks=pytest.mark.postgis)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of each kind."""
    if request.param == "spatialite":
        yield f"sqlite:///{tmp_path / 'api.db'}"
        return
    yield from _postgis_database(request.getfixturevalue("postgis_server"))


def make_settings(url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"database_url": url, "api_keys": f"{API_KEY},second-key",
                              "max_limit": 50, "default_limit": 10, "max_body_bytes": 200_000,
                              "max_upload_bytes": 5_000_000}
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def app(db_url: str) -> FastAPI:
    return create_app(make_settings(db_url))


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """A client of an app whose database holds the ring_spur example."""
    with TestClient(app) as c:
        repo: Repository = app.state.repo
        repo.load_dataset(read_dataset(EXAMPLES / "ring_spur" / "dataset.gpkg"))
        yield c


@pytest.fixture
def repo(app: FastAPI, client: TestClient) -> Repository:
    r: Repository = app.state.repo
    return r


class LiveServer:
    """uvicorn serving an app on a free loopback port, in a thread of the test process."""

    def __init__(self, app: FastAPI) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()
