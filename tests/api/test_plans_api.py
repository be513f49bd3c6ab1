"""Design plans over HTTP, on the real app over a real port: a plan edited through its OGC
API items and gap builds, its KPIs equal to a fresh analysis of main plus its edits and
following each edit, main's answers byte-identical through all plan work, merge and
conflicts."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from netgis.api.app import create_app
from netgis.engine.analysis import analyze
from netgis.generate import generate_city
from netgis.storage import Repository
from netgis.storage.plans import Plans
from tests.api.helpers import API_KEY, LiveServer, make_settings

KEY = {"X-API-Key": API_KEY}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Repository]]:
    url = f"sqlite:///{tmp_path / 'plans.db'}"
    repo = Repository.from_url(url)
    repo.init()
    repo.load_dataset(generate_city(premises=1500, seed=11))
    with LiveServer(create_app(make_settings(url))) as live:
        yield live.url, repo
    repo.close()


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9,
                                                                abs_tol=1e-9)
    return bool(a == b)


def assert_kpis_of(got: dict[str, Any], repo: Repository, plan: str) -> None:
    """``got`` equals a from-scratch analysis of main with the plan's edits."""
    _, data = Plans(repo).dataset(plan)
    want = json.loads(json.dumps(analyze(data).kpis))
    bad = [k for k, v in want["network"].items() if not same(got["network"][k], v)]
    assert not bad, [(k, got["network"][k], want["network"][k]) for k in bad]
    for x, y in zip(got["areas"], want["areas"], strict=True):
        assert all(same(x[k], y[k]) for k in y), (x, y)


def network_row(feed: httpx.Response) -> dict[str, Any]:
    """The network row of main's /kpis."""
    row: dict[str, Any] = feed.json()["data"][0]
    assert row["scope"] == "network"
    return row


def test_a_plan_over_http_from_create_to_merge(server: tuple[str, Repository]) -> None:
    base, repo = server
    main_before = httpx.get(f"{base}/kpis.csv", timeout=60)
    assert main_before.status_code == 200
    main_json = httpx.get(f"{base}/kpis", timeout=60)
    version = repo.data_version()

    r = httpx.post(f"{base}/plans", json={"name": "west", "description": "builds"},
                   headers=KEY, timeout=60)
    assert r.status_code == 201, r.text
    assert r.headers["Location"].endswith("/plans/west") and r.json()["base_version"] == version
    assert httpx.post(f"{base}/plans", json={"name": "west"}, headers=KEY,
                      timeout=60).status_code == 409
    assert httpx.post(f"{base}/plans", json={"name": "w", "colour": "red"}, headers=KEY,
                      timeout=60).status_code == 422
    assert httpx.post(f"{base}/plans", json={"name": "x"}, timeout=60).status_code == 401

    built = httpx.post(f"{base}/plans/west/builds", json={"top": 3}, headers=KEY, timeout=120)
    assert built.status_code == 200, built.text
    assert len(built.json()["clusters"]) == 3 and built.json()["spans"] > 0
    kpis = httpx.get(f"{base}/plans/west/kpis", timeout=120).json()
    assert kpis["plan_version"] == 1 and kpis["data_version"] == version
    assert_kpis_of(kpis, repo, "west")
    assert kpis["network"]["premises_passed"] > network_row(main_json)["premises_passed"]

    # a premise edited through the plan's items: ETag, If-Match, answers follow it
    pid = repo.read_dataset().premises["premise_id"].iloc[0]
    item = httpx.get(f"{base}/plans/west/collections/premises/items/{pid}", timeout=60)
    assert item.status_code == 200 and item.headers["ETag"].startswith('"m')
    stale = httpx.patch(f"{base}/plans/west/collections/premises/items/{pid}",
                        json={"properties": {"units": 50}},
                        headers={**KEY, "If-Match": '"p999"'}, timeout=60)
    assert stale.status_code == 412
    # If-Match read as main's items read it: a weak tag, or a header that is not a list of
    # tags, matches nothing (412, not 400)
    for header in ("W/" + item.headers["ETag"], "not-a-tag", item.headers["ETag"] + " junk"):
        refused = httpx.patch(f"{base}/plans/west/collections/premises/items/{pid}",
                              json={"properties": {"units": 50}},
                              headers={**KEY, "If-Match": header}, timeout=60)
        assert refused.status_code == 412, (header, refused.text)
    patched = httpx.patch(f"{base}/plans/west/collections/premises/items/{pid}",
                          json={"properties": {"units": 50}},
                          headers={**KEY, "If-Match": item.headers["ETag"]}, timeout=60)
    assert patched.status_code == 200, patched.text
    assert patched.json()["properties"]["units"] == 50 and patched.headers["ETag"] == '"p2"'
    assert httpx.patch(f"{base}/plans/west/collections/premises/items/{pid}",
                       json={"properties": {"colour": 1}}, headers=KEY,
                       timeout=60).status_code == 422
    kpis = httpx.get(f"{base}/plans/west/kpis", timeout=120).json()
    assert kpis["plan_version"] == 2
    assert_kpis_of(kpis, repo, "west")
    edited = httpx.get(f"{base}/plans/west/collections/premises/items",
                       params={"edited": "true"}, timeout=60).json()
    assert [f["id"] for f in edited["features"]] == [pid]
    page = httpx.get(f"{base}/plans/west/collections/spans/items", params={"limit": 5},
                     timeout=60).json()
    assert page["numberReturned"] == 5 and page["numberMatched"] == len(
        Plans(repo).dataset("west")[1].spans)

    compared = httpx.get(f"{base}/plans/west/compare", timeout=120)
    assert compared.status_code == 200
    body = compared.json()
    assert body["premises"]["newly_passed"] > 0 and body["cost"]["total"] > 0
    assert len(body["spans"]["added"]) == built.json()["spans"]
    csv_text = httpx.get(f"{base}/plans/west/compare", params={"f": "csv"}, timeout=120)
    assert csv_text.headers["content-type"].startswith("text/csv")
    assert csv_text.text.startswith("kpi,main,plan,delta\n")

    # main untouched by all of that: same version, byte-identical KPIs, no audit entry
    assert repo.data_version() == version
    assert httpx.get(f"{base}/kpis.csv", timeout=60).content == main_before.content
    again = httpx.get(f"{base}/kpis", timeout=60)
    assert again.headers["ETag"] == main_json.headers["ETag"]
    assert again.json()["data"] == main_json.json()["data"]
    assert repo.audit_log()[1] == 1

    log = httpx.get(f"{base}/plans/west/audit", headers=KEY, timeout=60)
    assert log.status_code == 200
    assert [e["action"] for e in log.json()["entries"]] == ["replace", "build", "build"]
    assert log.json()["entries"][0]["feature_ids"] == [pid]
    merged = httpx.post(f"{base}/plans/west/merge", headers=KEY, timeout=120)
    assert merged.status_code == 200, merged.text
    assert merged.json()["data_version"] == version + 1
    assert merged.headers["X-Data-Version"] == str(version + 1)
    main_after = network_row(httpx.get(f"{base}/kpis", timeout=60))
    for key, value in kpis["network"].items():
        assert same(main_after[key], value), key
    entry = httpx.get(f"{base}/audit", params={"limit": 1}, headers=KEY, timeout=60).json()
    assert entry["entries"][0]["action"] == "merge" and entry["entries"][0]["plan"] == "west"
    assert httpx.get(f"{base}/plans/west", timeout=60).status_code == 404


def test_a_conflict_is_a_409_naming_the_feature_and_nothing_merges(
        server: tuple[str, Repository]) -> None:
    base, repo = server
    pid = repo.read_dataset().premises["premise_id"].iloc[3]
    assert httpx.post(f"{base}/plans", json={"name": "c"}, headers=KEY,
                      timeout=60).status_code == 201
    assert httpx.patch(f"{base}/plans/c/collections/premises/items/{pid}",
                       json={"properties": {"units": 9}}, headers=KEY,
                       timeout=60).status_code == 200
    assert httpx.patch(f"{base}/collections/premises/items/{pid}",
                       json={"properties": {"units": 4}}, headers=KEY,
                       timeout=60).status_code == 200
    before = httpx.get(f"{base}/kpis.csv", timeout=60).content
    version = repo.data_version()
    refused = httpx.post(f"{base}/plans/c/merge", headers=KEY, timeout=60)
    assert refused.status_code == 409
    problem = refused.json()
    assert problem["errors"][0]["id"] == pid and "rebase" in problem["errors"][0]["reason"]
    assert repo.data_version() == version
    assert httpx.get(f"{base}/kpis.csv", timeout=60).content == before
    shown = httpx.get(f"{base}/plans/c", timeout=60).json()
    assert [c["id"] for c in shown["conflicts"]] == [pid]
    assert httpx.post(f"{base}/plans/c/rebase", headers=KEY, timeout=60).status_code == 200
    assert httpx.post(f"{base}/plans/c/merge", headers=KEY, timeout=60).status_code == 200
    got = httpx.get(f"{base}/collections/premises/items/{pid}", timeout=60).json()
    assert got["properties"]["units"] == 9


def repo_spans(server: tuple[str, Repository]) -> Any:
    return server[1].read_dataset().spans


def test_plan_errors_are_named(server: tuple[str, Repository]) -> None:
    base, _ = server
    assert httpx.get(f"{base}/plans/nope/kpis", timeout=60).status_code == 404
    assert httpx.post(f"{base}/plans", json={"name": "../x"}, headers=KEY,
                      timeout=60).status_code == 422
    assert httpx.post(f"{base}/plans", json={"name": "e"}, headers=KEY,
                      timeout=60).status_code == 201
    assert httpx.get(f"{base}/plans/e/collections/ducts/items", timeout=60).status_code in (
        400, 404, 422)
    bad = httpx.post(f"{base}/plans/e/builds", json={"cluster_ids": ["gap-none"]},
                     headers=KEY, timeout=120)
    assert bad.status_code == 422 and "gap-none" in bad.text
    assert httpx.get(f"{base}/plans/e/kpis", params={"colour": 1},
                     timeout=60).status_code == 400
    assert httpx.post(f"{base}/plans/e/switch-on", json={}, headers=KEY,
                      timeout=60).status_code == 422
    planned = [s for s, st in zip(repo_spans(server)["span_id"], repo_spans(server)["status"],
                                  strict=True) if st == "planned"]
    on = httpx.post(f"{base}/plans/e/switch-on", json={"all_planned": True}, headers=KEY,
                    timeout=60)
    assert on.status_code == 200, on.text
    assert on.json()["switched"]["spans"] == sorted(planned) and planned
    kpis = httpx.get(f"{base}/plans/e/kpis", timeout=120).json()
    assert kpis["plan_version"] == on.json()["plan_version"]
    assert httpx.delete(f"{base}/plans/e", headers=KEY, timeout=60).status_code == 204
    assert httpx.get(f"{base}/plans", timeout=60).json() == {"plans": []}


def test_the_programme_over_http_is_the_library_s(server: tuple[str, Repository]) -> None:
    from netgis.products.program import run_program

    base, repo = server
    data = repo.read_dataset()
    r = httpx.get(f"{base}/program", params={"budget_per_year": 150000, "start_year": 2027,
                                              "goal_year": 2029}, timeout=300)
    assert r.status_code == 200, r.text
    body = r.json()
    want = run_program(data, budget_per_year=150000, start_year=2027, max_years=3).as_dict()
    assert [(y["year"], y["clusters"], y["cost"]) for y in body["years"]] == [
        (y["year"], y["clusters"], y["cost"]) for y in want["years"]]
    assert body["data_version"] == repo.data_version() and "goal_met_by_date" in body
    assert httpx.get(f"{base}/program", timeout=60).status_code == 400
    assert httpx.get(f"{base}/program", params={"budget_per_year": -1},
                     timeout=60).status_code == 400


def test_a_plans_maps_and_its_compare_map_in_chromium(server: tuple[str, Repository]) -> None:
    from tests.maps.helpers import chromium, page_layers

    base, _ = server
    assert httpx.post(f"{base}/plans", json={"name": "m"}, headers=KEY,
                      timeout=60).status_code == 201
    built = httpx.post(f"{base}/plans/m/builds", json={"top": 2}, headers=KEY,
                       timeout=120).json()
    for kind in ("coverage", "criticality", "areas", "gaps"):
        r = httpx.get(f"{base}/plans/m/maps/{kind}", timeout=120)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), kind
        assert "Content-Security-Policy" in r.headers
    page = httpx.get(f"{base}/plans/m/maps/compare", timeout=120)
    assert page.status_code == 200
    layers = page_layers(page.text)
    compared = httpx.get(f"{base}/plans/m/compare", timeout=120).json()
    assert set(layers["netgis-plan-added"]) == set(compared["spans"]["added"])
    assert len(layers["netgis-plan-added"]) == built["spans"]
    errors: list[str] = []
    with chromium() as ctx:
        tab = ctx.new_page()
        tab.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        tab.goto(f"{base}/plans/m/maps/compare", wait_until="load")
        tab.wait_for_selector("path.netgis-plan-added", state="attached", timeout=30_000)
        drawn = tab.evaluate("document.querySelectorAll('path.netgis-plan-added').length")
        passed = tab.evaluate(
            "document.querySelectorAll('path.netgis-plan-newly-passed').length")
        nodes = tab.evaluate(
            "document.querySelectorAll('path.netgis-plan-node-added').length")
    assert drawn == built["spans"] and passed == compared["premises"]["newly_passed"] > 0
    assert nodes == built["nodes"] == len(compared["nodes"]["added"])
    assert errors == []


def test_the_dashboard_draws_the_programme_when_a_budget_is_set(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    url = f"sqlite:///{tmp_path / 'd.db'}"
    repo = Repository.from_url(url)
    repo.init()
    repo.load_dataset(generate_city(premises=800, seed=4))
    repo.close()
    app = create_app(make_settings(url, program_budget_per_year=200000.0))
    with TestClient(app) as client:
        page = client.get("/dashboard")
        assert page.status_code == 200, page.text[:300]
        assert 'id="table-program"' in page.text and '<tr data-year="' in page.text
        report = client.get("/report")
        assert report.status_code == 200 and 'id="table-program"' in report.text
    plain = create_app(make_settings(url))
    with TestClient(plain) as client:
        assert 'id="table-program"' not in client.get("/dashboard").text


def test_a_plans_analysis_answers_are_those_of_its_data(server: tuple[str, Repository]) -> None:
    base, repo = server
    assert httpx.post(f"{base}/plans", json={"name": "a"}, headers=KEY,
                      timeout=60).status_code == 201
    assert httpx.post(f"{base}/plans/a/builds", json={"top": 2}, headers=KEY,
                      timeout=120).status_code == 200
    _, data = Plans(repo).dataset("a")
    reference = analyze(data)
    coverage = httpx.get(f"{base}/plans/a/analysis/coverage", timeout=120).json()
    assert all(same(coverage["network"][k], v) for k, v in
               json.loads(json.dumps(reference.kpis["network"])).items())
    newly = httpx.get(f"{base}/plans/a/compare", timeout=120).json()["premises"][
        "newly_passed_ids"][0]
    in_plan = httpx.get(f"{base}/plans/a/analysis/premises/{newly}", timeout=60).json()
    in_main = httpx.get(f"{base}/analysis/premises/{newly}", timeout=60).json()
    assert in_plan["properties"]["passed"] is True and in_main["properties"]["passed"] is False
    ref = reference.premises.set_index("premise_id").loc[newly]
    assert in_plan["properties"]["served_span_id"] == ref["served_span_id"]
    lon, lat = in_plan["geometry"]["coordinates"]
    served = httpx.get(f"{base}/plans/a/analysis/serviceability",
                       params={"lon": lon, "lat": lat}, timeout=60).json()
    assert served["passed"] is True and served["plan"] == "a"
    spof = httpx.get(f"{base}/plans/a/analysis/criticality", params={"limit": 3},
                     timeout=60).json()
    assert spof["numberMatched"] == int((reference.spans["cut_premises"] > 0).sum())
    assert httpx.get(f"{base}/plans/a/analysis/premises/nope", timeout=60).status_code == 404


def test_a_plans_items_page_by_the_servers_limits(server: tuple[str, Repository]) -> None:
    base, _ = server
    assert httpx.post(f"{base}/plans", json={"name": "l"}, headers=KEY,
                      timeout=60).status_code == 201
    page = httpx.get(f"{base}/plans/l/collections/premises/items", timeout=60).json()
    settings = make_settings("sqlite://")
    assert page["numberReturned"] == min(settings.default_limit, page["numberMatched"])
    too_many = httpx.get(f"{base}/plans/l/collections/premises/items",
                         params={"limit": settings.max_limit + 1}, timeout=60)
    assert too_many.status_code == 400 and too_many.json()["errors"][0]["field"] == "limit"


def test_a_plan_follows_mains_edits_without_starting_over(tmp_path: Path) -> None:
    """Main edited after the plan was analysed (features the plan does not touch, one it
    rewrites, one it deletes, one main deletes that the plan rewrote): the plan's analysis
    takes main's changes by the change feed, keeps its own versions, and equals a fresh
    analysis of main plus its edits."""
    url = f"sqlite:///{tmp_path / 'follow.db'}"
    repo = Repository.from_url(url)
    repo.init()
    repo.load_dataset(generate_city(premises=1500, seed=11))
    app = create_app(make_settings(url))
    with LiveServer(app) as live:
        base = live.url
        assert httpx.post(f"{base}/plans", json={"name": "f"}, headers=KEY,
                          timeout=60).status_code == 201
        assert httpx.post(f"{base}/plans/f/builds", json={"top": 2}, headers=KEY,
                          timeout=120).status_code == 200
        premises = httpx.get(f"{base}/collections/premises/items", params={"limit": 6},
                             timeout=60).json()["features"]
        ids = [f["properties"]["premise_id"] for f in premises]
        # the plan rewrites ids[0] and ids[1], deletes ids[2]
        for pid in ids[:2]:
            assert httpx.patch(f"{base}/plans/f/collections/premises/items/{pid}",
                               json={"properties": {"units": 7}}, headers=KEY,
                               timeout=60).status_code == 200
        assert httpx.delete(f"{base}/plans/f/collections/premises/items/{ids[2]}",
                            headers=KEY, timeout=60).status_code == 204
        assert_kpis_of(httpx.get(f"{base}/plans/f/kpis", timeout=120).json(), repo, "f")
        # main: a premise the plan does not touch, one it rewrote (the plan's stays), one it
        # deleted (stays deleted), one it rewrote deleted in main (the plan's stays), and a
        # span taken out of service
        for pid, units in ((ids[3], 5), (ids[0], 3), (ids[2], 4)):
            assert httpx.patch(f"{base}/collections/premises/items/{pid}",
                               json={"properties": {"units": units}}, headers=KEY,
                               timeout=60).status_code == 200
        assert httpx.delete(f"{base}/collections/premises/items/{ids[1]}", headers=KEY,
                            timeout=60).status_code == 204
        span = httpx.get(f"{base}/analysis/criticality", params={"limit": 1},
                         timeout=60).json()["features"][0]["properties"]["span_id"]
        assert httpx.patch(f"{base}/collections/spans/items/{span}",
                           json={"properties": {"status": "planned"}}, headers=KEY,
                           timeout=60).status_code == 200
        got = httpx.get(f"{base}/plans/f/kpis", timeout=120).json()
        assert got["data_version"] == repo.data_version()
        assert app.state.plan_states.state("f").path.startswith("main+")
        assert_kpis_of(got, repo, "f")
        # and the plan's own edit after that, with main's next one, in one step
        assert httpx.patch(f"{base}/plans/f/collections/premises/items/{ids[4]}",
                           json={"properties": {"units": 9}}, headers=KEY,
                           timeout=60).status_code == 200
        assert httpx.patch(f"{base}/collections/premises/items/{ids[5]}",
                           json={"properties": {"units": 8}}, headers=KEY,
                           timeout=60).status_code == 200
        assert_kpis_of(httpx.get(f"{base}/plans/f/kpis", timeout=120).json(), repo, "f")
        assert app.state.plan_states.state("f").path.startswith("main+")
    repo.close()


def _features(body: bytes, layer: str) -> list[tuple[str, str]]:
    import mapbox_vector_tile

    if not body:
        return []
    decoded = mapbox_vector_tile.decode(body, default_options={"y_coord_down": True})
    return sorted((json.dumps(f["properties"], sort_keys=True),
                   json.dumps(f["geometry"], sort_keys=True))
                  for f in decoded[layer]["features"])


def test_a_plans_vector_tiles_are_mains_with_its_edits(server: tuple[str, Repository]) -> None:
    """A plan without edits has main's tiles, thinned or not, feature for feature; with
    gap builds its spans tiles carry the new lit spans main's do not; 304 and 204 as
    main's; TileJSON points at the plan's tiles."""
    from tests.api.test_tiles import tile_of

    base, repo = server
    assert httpx.post(f"{base}/plans", json={"name": "t"}, headers=KEY,
                      timeout=60).status_code == 201
    west, south, east, north = repo.read_dataset().premises.to_crs(4326).total_bounds
    lon, lat = (west + east) / 2, (south + north) / 2
    compared = 0
    for z in (12, 15):
        x, y = tile_of(lon, lat, z)
        for layer in ("nodes", "spans", "premises", "areas"):
            main = httpx.get(f"{base}/tiles/{layer}/{z}/{x}/{y}.mvt", timeout=60)
            plan = httpx.get(f"{base}/plans/t/tiles/{layer}/{z}/{x}/{y}.mvt", timeout=60)
            assert plan.status_code == main.status_code, (layer, z)
            assert _features(plan.content, layer) == _features(main.content, layer), (layer, z)
            compared += len(_features(main.content, layer))
    assert compared > 100
    doc = httpx.get(f"{base}/plans/t/tiles/spans.json", timeout=60).json()
    assert doc["tiles"][0].endswith("/plans/t/tiles/spans/{z}/{x}/{y}.mvt")
    # gap builds: their spans are in the plan's tiles, lit, and not in main's
    assert httpx.post(f"{base}/plans/t/builds", json={"top": 2}, headers=KEY,
                      timeout=120).status_code == 200
    built = Plans(repo).edits("t").rows["spans"]
    mid = built.geometry.iloc[0].interpolate(0.5, normalized=True)
    x, y = tile_of(mid.x, mid.y, 16)
    plan = httpx.get(f"{base}/plans/t/tiles/spans/16/{x}/{y}.mvt", timeout=60)
    main = httpx.get(f"{base}/tiles/spans/16/{x}/{y}.mvt", timeout=60)
    new_id = str(built["span_id"].iloc[0])
    in_plan = {json.loads(p)["span_id"]: json.loads(p) for p, _ in _features(plan.content,
                                                                             "spans")}
    assert in_plan[new_id]["lit"] is True
    assert new_id not in {json.loads(p)["span_id"] for p, _ in _features(main.content, "spans")}
    again = httpx.get(f"{base}/plans/t/tiles/spans/16/{x}/{y}.mvt", timeout=60,
                      headers={"If-None-Match": plan.headers["etag"]})
    assert again.status_code == 304
    assert httpx.get(f"{base}/plans/t/tiles/spans/16/0/0.mvt", timeout=60).status_code == 204
    assert httpx.get(f"{base}/plans/t/tiles/pipes/1/0/0.mvt", timeout=60).status_code == 404
    assert httpx.get(f"{base}/plans/t/tiles/spans/1/2/0.mvt", timeout=60).status_code == 404
    assert httpx.get(f"{base}/plans/nope/tiles/spans/1/0/0.mvt", timeout=60).status_code == 404


def test_a_plans_analysis_routes_take_the_analysis_parameters(
        server: tuple[str, Repository]) -> None:
    """drop_m and the optics parameters give the plan's analysis at them (as a fresh
    analysis of the plan's data at them), the server's defaults its live one; a bad value
    is a 400 naming it."""
    from netgis.engine.optics import LossBudget

    base, repo = server
    assert httpx.post(f"{base}/plans", json={"name": "p"}, headers=KEY,
                      timeout=60).status_code == 201
    assert httpx.post(f"{base}/plans/p/builds", json={"top": 1}, headers=KEY,
                      timeout=120).status_code == 200
    _, data = Plans(repo).dataset("p")
    usual = httpx.get(f"{base}/plans/p/analysis/coverage", timeout=120).json()
    short = httpx.get(f"{base}/plans/p/analysis/coverage", params={"drop_m": 5},
                      timeout=120).json()
    want = json.loads(json.dumps(analyze(data, drop_m=5).kpis))
    assert short["drop_m"] == 5
    assert all(same(short["network"][k], v) for k, v in want["network"].items())
    assert short["network"]["premises_passed"] < usual["network"]["premises_passed"]
    tight = LossBudget().with_(budget_db=10.0)
    reference = analyze(data, budget=tight)
    ref = reference.premises[reference.premises["passed"]].iloc[0]
    got = httpx.get(f"{base}/plans/p/analysis/premises/{ref['premise_id']}",
                    params={"budget_db": 10}, timeout=120).json()["properties"]
    assert got["in_budget"] == bool(ref["in_budget"])
    assert same(got["margin_db"], float(ref["margin_db"]))
    spof = httpx.get(f"{base}/plans/p/analysis/criticality", params={"drop_m": 5, "limit": 1},
                     timeout=60).json()
    assert spof["numberMatched"] == int((analyze(data, drop_m=5).spans["cut_premises"] > 0)
                                        .sum())
    bad = httpx.get(f"{base}/plans/p/analysis/coverage", params={"drop_m": -1}, timeout=60)
    assert bad.status_code == 400 and "drop_m" in bad.text


def test_a_plans_gaps_are_those_of_its_data(server: tuple[str, Repository]) -> None:
    """/plans/{name}/gaps answers as /analysis/gaps would for main plus the plan's edits:
    hexagons and ranked clusters of a fresh analysis of the plan's data; fewer units left
    than main once two builds are in."""
    from netgis.products.gaps import plan_builds, rollup_h3

    base, repo = server
    assert httpx.post(f"{base}/plans", json={"name": "g"}, headers=KEY,
                      timeout=60).status_code == 201
    assert httpx.post(f"{base}/plans/g/builds", json={"top": 2}, headers=KEY,
                      timeout=120).status_code == 200
    _, data = Plans(repo).dataset("g")
    reference = analyze(data)
    hexes = httpx.get(f"{base}/plans/g/gaps", params={"limit": 50}, timeout=120).json()
    want = rollup_h3(reference.premises)
    assert hexes["numberMatched"] == len(want) and hexes["plan"] == "g"
    got_units = {f["id"]: f["properties"]["units"] for f in hexes["features"]}
    want_units = dict(zip(want["h3_cell"].astype(str), want["units"].astype(int), strict=True))
    assert all(want_units[k] == v for k, v in got_units.items())
    main_left = int(rollup_h3(analyze(repo.read_dataset()).premises)["units"].sum())
    assert int(want["units"].sum()) < main_left
    clusters = httpx.get(f"{base}/plans/g/gaps", params={"view": "clusters", "limit": 5},
                         timeout=120).json()
    plan = plan_builds(reference.premises, reference.spans, reference.nodes,
                       drop_m=reference.drop_m)
    assert clusters["numberMatched"] == len(plan.clusters)
    assert [f["id"] for f in clusters["features"]] == \
        plan.clusters["cluster_id"].astype(str).tolist()[:5]
    assert httpx.get(f"{base}/plans/g/gaps", params={"view": "rings"},
                     timeout=60).status_code == 400


def test_a_plans_scenarios_are_those_of_its_data(server: tuple[str, Repository]) -> None:
    """POST /plans/{name}/scenarios answers as a scenario of a fresh analysis of the plan's
    data: a span of the plan's new route cut takes off what it passes; bad bodies are named."""
    from netgis.engine.analysis import scenario

    base, repo = server
    assert httpx.post(f"{base}/plans", json={"name": "s"}, headers=KEY,
                      timeout=60).status_code == 201
    assert httpx.post(f"{base}/plans/s/builds", json={"top": 2}, headers=KEY,
                      timeout=120).status_code == 200
    _, data = Plans(repo).dataset("s")
    reference = analyze(data)
    built = Plans(repo).edits("s").rows["spans"]["span_id"].astype(str).tolist()
    cut = max(built, key=lambda k: int(reference.spans.set_index("span_id").loc[k, "cut_units"]))
    got = httpx.post(f"{base}/plans/s/scenarios", json={"spans": [cut]}, timeout=120).json()
    want = scenario(reference, spans=[cut])
    assert got["impacted_premises"] == want.premises > 0
    assert got["impacted_units"] == want.units
    in_main = httpx.post(f"{base}/analysis/scenarios", json={"spans": [cut]}, timeout=120)
    assert in_main.status_code == 422  # main has no such span
    bad = httpx.post(f"{base}/plans/s/scenarios", json={"span": [cut]}, timeout=60)
    assert bad.status_code == 422 and "span" in bad.text
    assert httpx.post(f"{base}/plans/nope/scenarios", json={"spans": []},
                      timeout=60).status_code == 404


def test_a_plans_bead_join_uses_its_plant(server: tuple[str, Repository],
                                          tmp_path: Path) -> None:
    """POST /plans/{name}/analysis/bead classes the uploaded locations as main's does and
    joins them with the plan's plant: locations at premises the plan newly passes are
    passed there and not in main's join."""
    from tests.test_bead import availability_csv

    base, repo = server
    assert httpx.post(f"{base}/plans", json={"name": "bd"}, headers=KEY,
                      timeout=60).status_code == 201
    assert httpx.post(f"{base}/plans/bd/builds", json={"top": 2}, headers=KEY,
                      timeout=120).status_code == 200
    newly = httpx.get(f"{base}/plans/bd/compare", timeout=120).json()["premises"][
        "newly_passed_ids"][:3]
    _, data = Plans(repo).dataset("bd")
    points = data.premises.set_index("premise_id").loc[newly].to_crs(4326).geometry
    locs = "location_id,latitude,longitude\n" + "".join(
        f"X{i},{p.y:.9f},{p.x:.9f}\n" for i, p in enumerate(points))
    avail = availability_csv(tmp_path / "bdc.csv",
                             [(f"X{i}", 50, 1000, 1000, 0) for i in range(len(newly))])

    def files() -> dict[str, Any]:
        return {"availability": ("bdc.csv", avail.read_bytes(), "text/csv"),
                "locations": ("fabric.csv", locs, "text/csv")}

    in_plan = httpx.post(f"{base}/plans/bd/analysis/bead", files=files(), timeout=120)
    assert in_plan.status_code == 200, in_plan.text
    in_main = httpx.post(f"{base}/analysis/bead", files=files(), timeout=120).json()
    assert in_plan.json()["unserved"] == in_main["unserved"] == len(newly)
    assert in_plan.json()["plant"]["unserved"]["passed"] == len(newly)
    assert in_main["plant"]["unserved"]["passed"] == 0
    assert httpx.post(f"{base}/plans/nope/analysis/bead", files=files(),
                      timeout=60).status_code == 404
