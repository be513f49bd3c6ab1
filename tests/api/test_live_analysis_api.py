"""The live analysis as API clients see it (docs/architecture.md, "Live analysis").

Readers get the newest analysis ready and its data version, never waiting; a
reader asks for its own write with ``min_version``; writes through the API
answer once reflected; two API processes on one database converge; after edits
of every kind the served KPIs equal a from-scratch analysis of the database.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from netgis.api.app import create_app
from netgis.engine.analysis import analyze
from netgis.io import read_dataset
from netgis.products.feeds import kpi_rows
from netgis.storage import Repository
from tests.api.helpers import API_KEY, make_settings
from tests.helpers import EXAMPLES_DIR

KEY = {"X-API-Key": API_KEY}


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return bool(a == b)


def assert_kpis_equal(served: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    """KPI rows equal: ints and ids exactly, floats to 1e-9 (sums in another order)."""
    by_scope = {(r["scope"], r.get("area_id")): r for r in served}
    assert set(by_scope) == {(r["scope"], r.get("area_id")) for r in want}
    for row in want:
        got = by_scope[(row["scope"], row.get("area_id"))]
        bad = {k: (got[k], v) for k, v in row.items() if not _close(got[k], v)}
        assert not bad, (row["scope"], row.get("area_id"), bad)


@pytest.fixture
def slow_poll(db_url: str) -> Iterator[tuple[TestClient, Repository]]:
    """An app that looks at the data version only every 30 s (writes of other processes
    are then not seen unless asked for), on the ring_spur example."""
    app = create_app(make_settings(db_url, live_poll_s=30))
    with TestClient(app) as client:
        repo: Repository = app.state.repo
        repo.load_dataset(read_dataset(EXAMPLES_DIR / "ring_spur" / "dataset.gpkg"))
        yield client, repo


def test_reads_answer_from_the_last_state_and_min_version_waits_for_a_newer_one(
        slow_poll: tuple[TestClient, Repository], db_url: str) -> None:
    client, _repo = slow_poll
    before = client.get("/analysis/premises/p_far")
    version = int(before.headers["X-Data-Version"])
    units = before.json()["properties"]["units"]
    # another process writes (its own repository: this app is not told)
    with Repository.from_url(db_url) as other:
        new_version = other.patch_item("premises", "p_far", {"units": units + 4})
    # a read answers at once from the state it has, and says which version that is
    stale = client.get("/analysis/premises/p_far")
    assert stale.status_code == 200
    assert stale.headers["X-Data-Version"] == str(version)
    assert stale.json()["properties"]["units"] == units
    # asking for the new version waits until the live analysis reflects it
    fresh = client.get("/analysis/premises/p_far", params={"min_version": new_version})
    assert fresh.status_code == 200
    assert int(fresh.headers["X-Data-Version"]) >= new_version
    assert fresh.json()["properties"]["units"] == units + 4
    for path in ("/analysis/coverage", "/kpis", "/metrics", "/search?q=p_far"):
        r = client.get(path, params={"min_version": new_version} if "?" not in path else None)
        assert r.status_code == 200, path
        assert int(r.headers["X-Data-Version"]) >= new_version, path
    # a version the database has not reached is a client error naming the parameter
    ahead = client.get("/kpis", params={"min_version": new_version + 100})
    assert ahead.status_code == 400
    assert ahead.json()["errors"][0]["field"] == "min_version"
    health = client.get("/health").json()
    assert health["live"]["data_version"] >= new_version
    assert health["live"]["last_change"] == "premises"


def test_an_api_write_answers_once_reflected(client: TestClient, repo: Repository) -> None:
    done = client.patch("/collections/premises/items/p_far", headers=KEY,
                        json={"properties": {"units": 9}})
    assert done.status_code == 200, done.text
    version = int(done.headers["X-Data-Version"])
    assert done.headers["X-Data-Version-Visible"] == "true"
    assert version == repo.data_version()
    read = client.get("/analysis/premises/p_far")
    assert read.headers["X-Data-Version"] == str(version)
    assert read.json()["properties"]["units"] == 9


def test_two_processes_on_one_database_converge(db_url: str) -> None:
    a = create_app(make_settings(db_url))
    b = create_app(make_settings(db_url))
    with TestClient(a) as ca, TestClient(b) as cb:
        repo: Repository = a.state.repo
        repo.load_dataset(read_dataset(EXAMPLES_DIR / "ring_spur" / "dataset.gpkg"))
        spans = ca.get("/collections/spans/items").json()["features"]
        cut = ca.patch(f"/collections/spans/items/{spans[0]['id']}", headers=KEY,
                       json={"properties": {"status": "planned"}})
        assert cut.status_code == 200, cut.text
        added = ca.patch("/collections/premises/items/p_far", headers=KEY,
                         json={"properties": {"units": 5}})
        version = int(added.headers["X-Data-Version"])
        # b applies what a wrote from the change feed
        from_b = cb.get("/kpis", params={"min_version": version})
        from_a = ca.get("/kpis")
        assert from_b.headers["X-Data-Version"] == from_a.headers["X-Data-Version"]
        assert_kpis_equal(from_b.json()["data"], from_a.json()["data"])
        assert_kpis_equal(from_b.json()["data"], kpi_rows(analyze(repo.read_dataset()).kpis))
        live_b = b.state.services.live
        assert live_b.applied >= 1


def test_edits_of_every_kind_keep_the_kpis_equal_to_a_fresh_analysis(
        client: TestClient, repo: Repository) -> None:
    nodes = client.get("/collections/nodes/items").json()["features"]
    spans = client.get("/collections/spans/items").json()["features"]
    premise = client.get("/collections/premises/items/p_far").json()
    edits: list[tuple[str, str, dict[str, Any] | None]] = [
        ("PATCH", f"/collections/spans/items/{spans[1]['id']}", {"status": "planned"}),
        ("PATCH", f"/collections/spans/items/{spans[2]['id']}", {"duct_id": "shared-1"}),
        ("PATCH", f"/collections/spans/items/{spans[3]['id']}", {"duct_id": "shared-1"}),
        ("PATCH", f"/collections/nodes/items/{nodes[-1]['id']}", {"status": "planned"}),
        ("PATCH", "/collections/premises/items/p_far", {"connected": True}),
        ("POST", "/collections/premises/items", {
            "type": "Feature", "geometry": premise["geometry"],
            "properties": {"premise_id": "p_new", "units": 3}}),
        ("DELETE", "/collections/premises/items/p_new", None),
        ("PATCH", f"/collections/spans/items/{spans[1]['id']}", {"status": "in_service"}),
        ("PATCH", f"/collections/nodes/items/{nodes[-1]['id']}", {"status": "in_service"}),
    ]
    areas = client.get("/collections/areas/items").json()["features"]
    if areas:
        edits.append(("PATCH", f"/collections/areas/items/{areas[0]['id']}",
                      {"name": "renamed"}))
    for method, path, body in edits:
        sent = {"properties": body} if method == "PATCH" else body
        r = client.request(method, path, headers=KEY, json=sent)
        assert r.status_code in (200, 201, 204), (method, path, r.text)
        assert r.headers["X-Data-Version-Visible"] == "true"
        served = client.get("/kpis")
        assert served.headers["X-Data-Version"] == str(repo.data_version())
        assert_kpis_equal(served.json()["data"], kpi_rows(analyze(repo.read_dataset()).kpis))


def test_a_wait_for_a_version_holds_no_request_thread(db_url: str) -> None:
    """With one request thread (NETGIS_REQUEST_THREADS=1), a read waiting for a data version
    (``min_version``) leaves it to the others: they answer while it waits. The server also
    applies its interpreter switch interval (NETGIS_THREAD_SWITCH_MS)."""
    import sys
    import threading
    import time

    import anyio

    app = create_app(make_settings(db_url, live_poll_s=30, request_threads=1,
                                   thread_switch_ms=2.0, min_version_timeout_s=20))
    with TestClient(app) as client:
        assert sys.getswitchinterval() == pytest.approx(0.002)
        tokens = client.portal.call(
            lambda: anyio.to_thread.current_default_thread_limiter().total_tokens)
        assert tokens == 1
        repo: Repository = app.state.repo
        repo.load_dataset(read_dataset(EXAMPLES_DIR / "ring_spur" / "dataset.gpkg"))
        assert client.get("/kpis", params={"min_version": repo.data_version()}).status_code \
            == 200
        live = app.state.services.live
        live.stop()  # the live analysis pauses: a wait for a newer version lasts
        try:
            with Repository.from_url(db_url) as other:
                new_version = other.patch_item("premises", "p_far", {"units": 6})
            waited: dict[str, Any] = {}

            def wait() -> None:
                waited["answer"] = client.get("/analysis/premises/p_far",
                                              params={"min_version": new_version})

            waiter = threading.Thread(target=wait)
            waiter.start()
            time.sleep(0.5)
            assert waiter.is_alive()  # still waiting for the version
            started = time.monotonic()
            other_read = client.get("/analysis/coverage")
            assert other_read.status_code == 200
            assert time.monotonic() - started < 5.0
            assert waiter.is_alive()
        finally:
            live.start()
        waiter.join(20)
        answer = waited["answer"]
        assert answer.status_code == 200, answer.text
        assert answer.json()["properties"]["units"] == 6
    sys.setswitchinterval(0.005)
