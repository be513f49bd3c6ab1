"""API workers that share the analysis results stored in one PostGIS database.

Real ``netgis serve`` processes (two uvicorn workers, then a restart) on one
database; the answers are compared with an app that holds the analysis in
memory (stored results turned off) on the same data.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy
from fastapi.testclient import TestClient

from netgis.api.app import create_app
from netgis.engine.optics import LossBudget
from netgis.io import read_dataset
from netgis.storage import Repository
from netgis.storage.models import ANALYSIS_RUNS
from netgis.storage.results import params_key
from tests.api.helpers import ServerProcess, make_settings
from tests.helpers import EXAMPLES_DIR, PostgresDatabases

pytestmark = pytest.mark.postgis


def _requests(repo: Repository) -> list[tuple[str, dict[str, Any]]]:
    """Every per-item request the stored results answer, for some premises of the data."""
    premises = repo.read_dataset().premises.to_crs(4326).iloc[:6]
    out: list[tuple[str, dict[str, Any]]] = [("/analysis/coverage", {}), ("/kpis", {}),
                                             ("/kpis.csv", {})]
    for pid, point in zip(premises["premise_id"], premises.geometry, strict=True):
        out.append((f"/analysis/premises/{pid}", {}))
        out.append(("/analysis/serviceability", {"lon": point.x, "lat": point.y}))
    out.append(("/analysis/serviceability", {"lon": 8.70, "lat": 50.13}))  # far from all
    out.append(("/analysis/premises/no-such-premise", {}))
    return out


def _body(response: httpx.Response) -> Any:
    if response.headers.get("content-type", "").startswith("text/csv"):
        return response.text
    body = response.json()
    if isinstance(body, dict):
        body.pop("generated_at", None)  # the time of the answer
    return response.status_code, body


def _runs(url: str) -> list[tuple[int, int, str, Any]]:
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sqlalchemy.select(
                ANALYSIS_RUNS.c.run_id, ANALYSIS_RUNS.c.data_version, ANALYSIS_RUNS.c.params_key,
                ANALYSIS_RUNS.c.ran_at).where(ANALYSIS_RUNS.c.params_key.is_not(None))
                .order_by(ANALYSIS_RUNS.c.run_id)).all()
    finally:
        engine.dispose()
    return [tuple(r) for r in rows]


def test_workers_share_stored_results_and_a_restart_serves_them(
        pg_databases: PostgresDatabases, postgis_server: str, tmp_path: Path) -> None:
    url = pg_databases.create(prefix="netgis_results_api", template=postgis_server)
    with Repository.from_url(url) as repo:
        repo.load_dataset(read_dataset(EXAMPLES_DIR / "optical_ring" / "dataset.gpkg"))
        version = repo.data_version()
        requests = _requests(repo)
    # the reference: today's answers, from the analysis held in memory
    with TestClient(create_app(make_settings(url, stored_results=False))) as ref:
        want = [_body(ref.get(path, params=params)) for path, params in requests]
    assert _runs(url) == []  # stored results off: nothing stored
    env = {"NETGIS_DATABASE_URL": url}
    with ServerProcess(env, tmp_path / "workers.log", ["--workers", "2"]) as server:
        # a new connection per request: the kernel spreads them over both workers
        first = [_body(httpx.get(server.url + path, params=params, timeout=60))
                 for path, params in requests]
        deadline = time.monotonic() + 60
        while not _runs(url) and time.monotonic() < deadline:
            time.sleep(0.2)  # the worker that analysed stores the results in the background
        stored = _runs(url)
        second = [_body(httpx.get(server.url + path, params=params, timeout=60))
                  for path, params in requests]
        time.sleep(1.0)  # a late duplicate store would show now
        assert _runs(url) == stored
    assert first == want and second == want
    # one run of this data version and the server's parameters, however many workers
    assert [(r[1], r[2]) for r in stored] == [(version, params_key(150.0, LossBudget()))]
    with ServerProcess(env, tmp_path / "restart.log") as server:
        again = [_body(httpx.get(server.url + path, params=params, timeout=60))
                 for path, params in requests]
        health = httpx.get(server.url + "/health", timeout=60).json()
    assert again == want
    # served from the stored run: no analysis computed, no run stored, the run unchanged
    assert health["analyses_computed"] == 0 and health["data_version"] == version
    assert _runs(url) == stored
    pg_databases.drop(url)
