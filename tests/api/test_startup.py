"""The server starts when its database is down, answers 503 meanwhile, and serves once it
is back (issue 19): before, ``netgis serve`` exited with a traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy
from fastapi.testclient import TestClient

from netgis.api.app import create_app
from tests.api.helpers import API_KEY, ServerProcess, make_settings
from tests.helpers import PostgresDatabases


def until(check: object, timeout_s: float = 30.0) -> None:
    """Call ``check`` until it returns true (the server retries the database every second)."""
    assert callable(check)
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "the server did not come back"
        time.sleep(0.2)


def assert_503(r: httpx.Response) -> None:
    assert r.status_code == 503, r.text[:300]
    assert r.headers["content-type"].startswith("application/problem+json")
    assert int(r.headers["Retry-After"]) > 0
    # the problem says what is wrong, not where the database is
    assert "sqlite" not in r.text.lower() and "missing" not in r.text


def test_netgis_serve_starts_without_its_database(tmp_path: Path) -> None:
    folder = tmp_path / "missing"  # SQLite cannot create a file in a folder that is not there
    env = {"NETGIS_DATABASE_URL": f"sqlite:///{folder / 'netgis.db'}",
           "NETGIS_API_KEYS": API_KEY}
    with ServerProcess(env, tmp_path / "server.log") as live:
        assert_503(httpx.get(f"{live.url}/health", timeout=30))
        assert_503(httpx.get(f"{live.url}/collections/nodes/items", timeout=30))
        assert_503(httpx.get(f"{live.url}/kpis", timeout=30))
        # pages that need no database still answer
        assert httpx.get(f"{live.url}/", timeout=30).status_code == 200
        assert httpx.get(f"{live.url}/openapi.json", timeout=30).status_code == 200
        folder.mkdir()
        # the server never creates a database after its start (issue 19): the operator does
        created = subprocess.run([sys.executable, "-m", "netgis.cli", "db", "init"],
                                 env={**os.environ, **env}, capture_output=True, text=True,
                                 timeout=120)
        assert created.returncode == 0, created.stderr
        until(lambda: httpx.get(f"{live.url}/health", timeout=30).status_code == 200)
        assert httpx.get(f"{live.url}/collections/nodes/items", timeout=30).json()[
            "numberMatched"] == 0
    log = (tmp_path / "server.log").read_text()
    assert "Traceback" not in log


@pytest.mark.postgis
def test_the_app_starts_while_postgis_is_away(pg_databases: PostgresDatabases,
                                              postgis_server: str) -> None:
    url = pg_databases.create(prefix="netgis_api_away", template=postgis_server)
    name = sqlalchemy.make_url(url).database
    away = f"{name}_away"
    with pg_databases.admin.connect() as conn:  # the database is not there when the app starts
        conn.exec_driver_sql(f'ALTER DATABASE "{name}" RENAME TO "{away}"')
    try:
        with TestClient(create_app(make_settings(url))) as client:
            assert_503(client.get("/health"))
            assert_503(client.get("/analysis/coverage"))
            with pg_databases.admin.connect() as conn:
                conn.exec_driver_sql(f'ALTER DATABASE "{away}" RENAME TO "{name}"')
            until(lambda: client.get("/health").status_code == 200)
            assert client.get("/collections/spans/items").status_code == 200
    finally:
        pg_databases.drop(pg_databases.url(away))
        pg_databases.drop(url)
