"""Fixtures of the API tests: an app on each database (``db_url``, in tests/conftest.py) and a
client of it holding the ring_spur example."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from netgis.api.app import create_app
from netgis.io import read_dataset
from netgis.storage import Repository
from tests.api.helpers import make_settings
from tests.helpers import EXAMPLES_DIR


@pytest.fixture
def app(db_url: str) -> FastAPI:
    return create_app(make_settings(db_url))


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """A client of an app whose database holds the ring_spur example."""
    with TestClient(app) as c:
        repo: Repository = app.state.repo
        repo.load_dataset(read_dataset(EXAMPLES_DIR / "ring_spur" / "dataset.gpkg"))
        yield c


@pytest.fixture
def repo(app: FastAPI, client: TestClient) -> Repository:
    r: Repository = app.state.repo
    return r
