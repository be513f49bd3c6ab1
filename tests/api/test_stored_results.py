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
import pandas as pd
import pytest
import sqlalchemy
from fastapi.testclient import TestClient

from netgis.api.app import create_app
from netgis.engine.analysis import analyze
from netgis.engine.optics import LossBudget
from netgis.io import read_dataset
from netgis.storage import Repository
from netgis.storage.models import ANALYSIS_RUNS
from netgis.storage.results import params_key, read_results, result_frames
from tests.api.helpers import API_KEY, ServerProcess, make_settings
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


def _stored_premise_rows(url: str, run_id: int) -> pd.DataFrame:
    engine = sqlalchemy.create_engine(url)
    try:
        frame = read_results(engine, run_id, "premises")
    finally:
        engine.dispose()
    return frame.sort_values("premise_id").reset_index(drop=True)


def test_workers_keep_one_stored_run_current_by_rows_and_a_restart_adopts_it(
        pg_databases: PostgresDatabases, postgis_server: str, tmp_path: Path) -> None:
    url = pg_databases.create(prefix="netgis_results_api", template=postgis_server)
    with Repository.from_url(url) as repo:
        repo.load_dataset(read_dataset(EXAMPLES_DIR / "optical_ring" / "dataset.gpkg"))
        version = repo.data_version()
        requests = _requests(repo)
        moved = str(repo.read_dataset().premises["premise_id"].iloc[0])
    # the reference: today's answers, from the analysis held in memory
    with TestClient(create_app(make_settings(url, stored_results=False))) as ref:
        want = [_body(ref.get(path, params=params)) for path, params in requests]
    assert _runs(url) == []  # stored results off: nothing stored
    env = {"NETGIS_DATABASE_URL": url, "NETGIS_API_KEYS": API_KEY}
    key = params_key(150.0, LossBudget())
    with ServerProcess(env, tmp_path / "workers.log", ["--workers", "2"]) as server:
        # a new connection per request: the kernel spreads them over both workers
        first = [_body(httpx.get(server.url + path, params=params, timeout=60))
                 for path, params in requests]
        deadline = time.monotonic() + 60
        while not _runs(url) and time.monotonic() < deadline:
            time.sleep(0.2)  # a worker stores the live analysis's results in the background
        time.sleep(1.0)  # a late duplicate store would show now
        stored = _runs(url)
        assert [(r[1], r[2]) for r in stored] == [(version, key)]
        # an edit through one worker: far away, the premise is no longer passed
        done = httpx.patch(f"{server.url}/collections/premises/items/{moved}",
                           json={"geometry": {"type": "Point", "coordinates": [9.5, 51.5]}},
                           headers={"X-API-Key": API_KEY}, timeout=60)
        assert done.status_code == 200, done.text
        edited = int(done.headers["X-Data-Version"])
        for _ in range(4):  # both workers reflect it (min_version: each waits for it)
            seen = httpx.get(f"{server.url}/analysis/premises/{moved}",
                             params={"min_version": edited}, timeout=60).json()
            assert seen["properties"]["passed"] is False
        while _runs(url)[0][1] != edited and time.monotonic() < deadline + 60:
            time.sleep(0.2)
        after = _runs(url)
    assert first == want
    # the same run, brought to the new version by the rows that changed (not stored anew)
    assert [(r[0], r[1], r[2]) for r in after] == [(stored[0][0], edited, key)]
    with Repository.from_url(url) as repo:
        fresh = result_frames(analyze(repo.read_dataset()))["premises"]
    rows = _stored_premise_rows(url, stored[0][0])
    fresh = fresh.sort_values("premise_id").reset_index(drop=True)
    assert rows["premise_id"].tolist() == fresh["premise_id"].tolist()
    for col in ("passed", "distance_m", "served_span_id", "loss_db", "in_budget"):
        assert rows[col].astype(object).where(rows[col].notna(), None).tolist() == \
            fresh[col].astype(object).where(fresh[col].notna(), None).tolist(), col
    with TestClient(create_app(make_settings(url, stored_results=False))) as ref:
        want_after = [_body(ref.get(path, params=params)) for path, params in requests]
    with ServerProcess(env, tmp_path / "restart.log") as server:
        again = [_body(httpx.get(server.url + path, params=params, timeout=60))
                 for path, params in requests]
        time.sleep(1.0)
    assert again == want_after
    # a restart adopts the stored run of the data it finds: nothing stored again
    assert _runs(url) == after
    pg_databases.drop(url)
