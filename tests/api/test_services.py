"""The API's service layer: the consistent read, the analysis and plan caches, KPI snapshots.

Against the ring_spur example (SpatiaLite and PostGIS). p_far has 1 unit and is
the only premise not passed; raising its units is a write that changes the KPIs.
Calls of ``analyze`` and ``plan_builds`` are counted to see what was recomputed.
"""

from __future__ import annotations

import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import mapbox_vector_tile
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import netgis.engine.analysis
import netgis.products.gaps
from netgis.api.services import Services
from netgis.dataset import Dataset
from netgis.products.gaps import GapParams
from netgis.storage import Repository
from tests.api.helpers import API_KEY

KEY = {"X-API-Key": API_KEY}


def services_of(app: FastAPI) -> Services:
    services: Services = app.state.services
    return services


def count_calls(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[Any]:
    """Record the calls of ``module.name`` (looked up at call time by the services)."""
    calls: list[Any] = []
    real = getattr(module, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


def far_units(dataset: Dataset) -> int:
    return int(dataset.premises.set_index("premise_id").loc["p_far", "units"])


# ------------------------------------------------------------------- consistent read


def test_the_dataset_is_labelled_with_the_version_it_was_read_at(
        app: FastAPI, client: TestClient, repo: Repository,
        monkeypatch: pytest.MonkeyPatch) -> None:
    real = repo._select_frame
    wrote: list[int] = []

    def read_then_write(conn: Any, layer: str, **kwargs: Any) -> Any:
        frame = real(conn, layer, **kwargs)
        if layer == "nodes" and not wrote:  # another process writes while the read is under way
            wrote.append(repo.patch_item("premises", "p_far", {"units": 3}))
        return frame

    before = repo.data_version()
    monkeypatch.setattr(repo, "_select_frame", read_then_write)
    version, dataset = services_of(app).analyses.dataset(repo)
    # the read saw the data before the write, and says so
    assert wrote == [before + 1] and version == before and far_units(dataset) == 1
    version, dataset = services_of(app).dataset()
    assert version == before + 1 and far_units(dataset) == 3


# ------------------------------------------------------------------- analysis cache


def test_the_defaults_are_the_live_analysis_and_other_parameters_are_kept(
        app: FastAPI, client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    services = services_of(app)
    calls = count_calls(monkeypatch, netgis.engine.analysis, "analyze")
    first = client.get("/analysis/coverage")
    assert client.get("/analysis/coverage").json() == first.json()
    assert client.get("/analysis/criticality").status_code == 200
    # the server's parameters: the live analysis, made when the data was loaded
    assert calls == []
    published = services.live.published
    assert published is not None
    version, result = services.analysis()
    assert (version, result) == (published.version, published.analysis)
    assert services.analysis(services.settings.drop_m)[1] is result
    assert first.headers["X-Data-Version"] == str(version)
    # another drop length is another analysis, computed once and kept
    assert client.get("/analysis/coverage", params={"drop_m": 60}).json()["drop_m"] == 60.0
    assert client.get("/analysis/coverage", params={"drop_m": 60}).status_code == 200
    assert [c["drop_m"] for c in calls] == [60.0]
    assert services.analysis(60)[1] is services.analysis(60.0)[1] is not result


def test_a_write_is_applied_to_the_live_analysis_not_analysed_again(
        app: FastAPI, client: TestClient, repo: Repository,
        monkeypatch: pytest.MonkeyPatch) -> None:
    services = services_of(app)
    calls = count_calls(monkeypatch, netgis.engine.analysis, "analyze")
    first = client.get("/analysis/coverage").json()
    _, before = services.analysis()
    full_runs, applied = services.live.full_runs, services.live.applied
    # a write of this process (not through a request): it returns once it is reflected
    repo.patch_item("premises", "p_far", {"units": 3})
    after = client.get("/analysis/coverage").json()
    assert after["data_version"] == first["data_version"] + 1
    assert after["network"]["units_total"] == first["network"]["units_total"] + 2
    version, again = services.analysis()
    assert version == after["data_version"] and again is not before
    # a write through the API: its answer comes once the live analysis reflects it
    done = client.patch("/collections/premises/items/p_far", headers=KEY,
                        json={"properties": {"units": 4}})
    assert done.status_code == 200
    assert done.headers["X-Data-Version"] == str(version + 1)
    assert done.headers["X-Data-Version-Visible"] == "true"
    latest = client.get("/analysis/coverage").json()
    assert latest["data_version"] == version + 1
    assert latest["network"]["units_total"] == first["network"]["units_total"] + 3
    # both edits applied to the live analysis: nothing analysed from scratch
    assert calls == []
    assert services.live.full_runs == full_runs
    assert services.live.applied == applied + 2
    assert services.live.published is not None
    assert services.live.published.path == "premises"


# ----------------------------------------------------------------------- plan cache


def test_build_plans_are_kept_per_data_version_and_parameters(
        app: FastAPI, client: TestClient, repo: Repository,
        monkeypatch: pytest.MonkeyPatch) -> None:
    services = services_of(app)
    plans = count_calls(monkeypatch, netgis.products.gaps, "plan_builds")
    analyses = count_calls(monkeypatch, netgis.engine.analysis, "analyze")
    clusters = {"view": "clusters"}
    body = client.get("/analysis/gaps", params=clusters).json()
    version = body["data_version"]
    assert client.get("/analysis/gaps", params=clusters).json()["features"] == body["features"]
    assert len(plans) == 1
    # the plan's key: data version, drop length and the gap parameters (the server's bounds)
    server = GapParams(link_m=250.0, placement="underground", max_units=512.0,
                       max_extent_m=2000.0)
    assert services.plans.kept() == [(version, 150.0, server)]
    # other parameters: another plan
    client.get("/analysis/gaps", params={**clusters, "placement": "aerial"})
    client.get("/analysis/gaps", params={**clusters, "link_m": 100})
    assert len(plans) == 3
    # the server's cluster bounds, asked for by value: the same plan; other bounds: another
    client.get("/analysis/gaps", params={**clusters, "max_units": 512, "max_extent_m": 2000})
    assert len(plans) == 3
    client.get("/analysis/gaps", params={**clusters, "max_units": 10})
    assert len(plans) == 4
    # the gaps map ranks the plan of the default parameters: the same one
    assert client.get("/maps/gaps").status_code == 200
    assert len(plans) == 4
    # other analyses pushed through the cache: the default one is the live one, kept
    for extra in range(services.analyses.size):
        services.analysis(10.0 + extra)
    computed = len(analyses)
    client.get("/analysis/gaps", params=clusters)
    assert len(analyses) == computed
    assert len(plans) == 4
    # new data: a new plan, under the new version
    repo.patch_item("premises", "p_far", {"units": 3})
    after = client.get("/analysis/gaps", params=clusters).json()
    assert after["data_version"] == version + 1
    assert after["features"][0]["properties"]["units"] == 3
    assert len(plans) == 5
    assert services.plans.kept()[-1] == (version + 1, 150.0, server)
    assert all(key[0] in (version, version + 1) for key in services.plans.kept())


# -------------------------------------------------------------------- KPI snapshots


def test_kpi_snapshots_follow_loads_and_the_interval_not_each_write(
        app: FastAPI, client: TestClient, repo: Repository) -> None:
    services = services_of(app)
    # the load was snapshotted once the live analysis reflected it
    (row,) = repo.kpi_history()
    version, result = services.kpis()
    assert row["data_version"] == version
    assert row["units_total"] == result.kpis["network"]["units_total"]
    assert services.ensure_snapshot() is None
    # another drop length stores nothing
    assert services.kpis(60)[1].drop_m == 60.0 and len(repo.kpi_history()) == 1
    # an edit within the interval (an hour by default): no snapshot, however many
    repo.patch_item("premises", "p_far", {"units": 3})
    repo.patch_item("premises", "p_far", {"units": 4})
    assert client.get("/kpis").status_code == 200 and len(repo.kpi_history()) == 1
    # asked for explicitly: one of the data reflected now, once
    snapshot_id = services.ensure_snapshot()
    assert isinstance(snapshot_id, int)
    assert [r["data_version"] for r in repo.kpi_history()] == [version, version + 2]
    assert services.ensure_snapshot() is None


# ------------------------------------------------------------------- tiles and versions


def _tile_of(lon: float, lat: float, z: int = 16) -> tuple[int, int, int]:
    """The XYZ tile holding ``lon``/``lat`` at zoom ``z`` (Web Mercator)."""
    n = 2 ** z
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return z, x, y


def test_a_tile_never_joins_rows_with_the_analysis_of_another_version(
        app: FastAPI, client: TestClient, repo: Repository,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process moves p_far (the one premise not passed) onto a passed premise while
    a tile of that place is being made: the answer must be the tile of one data version,
    features and analysis values alike, so equal to the same tile asked for afterwards."""
    premises = repo.query_items("premises")[0].set_index("premise_id")
    passed = client.get("/analysis/coverage").json()
    assert passed["network"]["premises_passed"] == len(premises) - 1
    target = premises.drop(index="p_far").geometry.iloc[0]
    z, x, y = _tile_of(target.x, target.y)
    real = repo._tile_conditions
    wrote: list[int] = []

    def write_then_select(*args: Any, **kwargs: Any) -> Any:
        if not wrote:  # the analysis of this version is at hand: the data now changes
            wrote.append(repo.patch_item("premises", "p_far", {"geometry": target}))
        return real(*args, **kwargs)

    monkeypatch.setattr(repo, "_tile_conditions", write_then_select)
    first = client.get(f"/tiles/premises/{z}/{x}/{y}.mvt")
    assert wrote and first.status_code == 200
    second = client.get(f"/tiles/premises/{z}/{x}/{y}.mvt")
    features = mapbox_vector_tile.decode(second.content)["premises"]["features"]
    far = [f["properties"] for f in features if f["properties"]["premise_id"] == "p_far"]
    assert far and far[0]["passed"] is True  # the quiet answer: p_far is passed now
    assert first.headers["ETag"] == second.headers["ETag"]
    assert first.content == second.content


# ------------------------------------------------------------------- rendered reports


def test_two_requests_for_one_report_render_it_once(
        client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    import netgis.maps.dashboard
    import netgis.products.progress

    boards: list[Any] = []
    both_asked = threading.Event()
    real_board = netgis.products.progress.build_dashboard
    real_render = netgis.maps.dashboard.report_html
    renders: list[Any] = []

    def board(*args: Any, **kwargs: Any) -> Any:
        out = real_board(*args, **kwargs)
        boards.append(kwargs)
        if len(boards) >= 2:
            both_asked.set()
        return out

    def render(*args: Any, **kwargs: Any) -> Any:
        renders.append(kwargs)
        # the first request renders while the second one asks for the same report
        both_asked.wait(timeout=60)
        time.sleep(0.3)  # lets the second request reach the report's cache meanwhile
        return real_render(*args, **kwargs)

    monkeypatch.setattr(netgis.products.progress, "build_dashboard", board)
    monkeypatch.setattr(netgis.maps.dashboard, "report_html", render)
    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(pool.map(lambda _: client.get("/report"), range(2)))
    assert [a.status_code for a in answers] == [200, 200]
    assert answers[0].content == answers[1].content
    assert len(boards) >= 2 and len(renders) == 1
