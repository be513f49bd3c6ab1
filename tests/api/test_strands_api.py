"""The strand-level plant over HTTP (docs/strands.md): /trace, /trace/cuts, /capacity*,
/diversity and the capacity KPIs of /kpis, /kpis.csv and /metrics, from a real uvicorn
server on a loopback port whose database holds a strand plant (tests/api/strand_data.py),
each answer compared with what ``netgis trace``, ``netgis capacity`` and ``netgis
diversity`` write for the same dataset; and a server without strand layers, whose feeds
are the analysis's as before and whose strand routes answer 409.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from netgis.api.app import create_app
from netgis.api.routers.strands import (
    CapacityAnswer,
    CutAnswer,
    DiversityAnswer,
    PremiseCapacityAnswer,
    PremiseCapacityPage,
    SpanCapacityPage,
    SplitterPortsPage,
    TraceAnswer,
)
from netgis.engine.analysis import analyze
from netgis.io import read_dataset
from netgis.products.feeds import kpi_rows, kpis_csv, prometheus_text
from netgis.schema import CAPACITY_KPIS
from netgis.storage import Repository
from tests.api.helpers import API_KEY, LiveServer, make_settings
from tests.api.strand_data import strand_dataset
from tests.helpers import EXAMPLES_DIR, PostgresDatabases

KEY = {"X-API-Key": API_KEY}
STRAND_ROUTES = ("/trace?olt_port=P1", "/trace?premise=p_spur1", "/capacity",
                 "/capacity/spans", "/capacity/splitters", "/capacity/premises",
                 "/capacity/premises/p_spur1", "/diversity?a=p_spur1&b=p_spur2",
                 "/maps/splices/B")


# ------------------------------------------------------------------------------ fixtures

def _database(request: pytest.FixtureRequest, tmp: Path, kind: str) -> str:
    if kind == "spatialite":
        return f"sqlite:///{tmp / 'strands.db'}"
    dbs: PostgresDatabases = request.getfixturevalue("pg_databases")
    return dbs.create(prefix="netgis_strands", template=request.getfixturevalue("postgis_server"))


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return strand_dataset(tmp_path_factory.mktemp("strand-data"))


@pytest.fixture(scope="module",
                params=["spatialite", pytest.param("postgis", marks=pytest.mark.postgis)])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           dataset_dir: Path) -> Iterator[tuple[httpx.Client, Repository]]:
    """uvicorn on a free loopback port, its database loaded with the strand dataset."""
    url = _database(request, tmp_path_factory.mktemp("strand-db"), request.param)
    repo = Repository.from_url(url)
    repo.init()
    repo.load_dataset(read_dataset(dataset_dir))
    repo.engine.dispose()
    app = create_app(make_settings(url, analysis_rate_per_minute=0))
    with LiveServer(app) as live, httpx.Client(base_url=live.url, timeout=120) as client:
        yield client, app.state.repo


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[httpx.Client, Repository]]:
    """uvicorn serving ring_spur without strand layers (SpatiaLite)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('plain-db') / 'plain.db'}"
    repo = Repository.from_url(url)
    repo.init()
    repo.load_dataset(read_dataset(EXAMPLES_DIR / "ring_spur" / "dataset.gpkg"))
    repo.engine.dispose()
    app = create_app(make_settings(url))
    with LiveServer(app) as live, httpx.Client(base_url=live.url, timeout=120) as client:
        yield client, app.state.repo


# ------------------------------------------------------------------------------ the CLI

def netgis(*args: str) -> str:
    """Run the command line in this process; its stdout."""
    from typer.testing import CliRunner

    from netgis.cli import app

    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def cli_trace(dataset: Path, out: Path, *args: str) -> tuple[dict[str, list[dict[str, str]]],
                                                              dict[str, Any]]:
    """``netgis trace`` on ``dataset``: its files by name (rows), and its summary."""
    summary = json.loads(netgis("trace", str(dataset), "--out", str(out), *args))
    files = {p.stem: read_csv(p) for p in out.glob("*.csv")}
    return files, summary


def cell(value: Any) -> str:
    """A JSON value as the CSVs write it (lists joined by ';', null empty)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ";".join(value)
    return str(value)


def same_row(got: dict[str, Any], want: dict[str, str]) -> None:
    """``got`` (JSON) holds ``want`` (CSV): the same text, numbers the same number."""
    for key, text in want.items():
        value = got[key]
        if isinstance(value, float) or (isinstance(value, int) and not isinstance(value, bool)
                                        and "." in text):
            assert text != "" and math.isclose(value, float(text), abs_tol=1e-9), (key, got,
                                                                                   want)
        else:
            assert cell(value) == text, (key, got, want)


def same_rows(got: list[dict[str, Any]], want: list[dict[str, str]]) -> None:
    assert len(got) == len(want), (got, want)
    for g, w in zip(got, want, strict=True):
        same_row(g, w)


def hops_of(paths: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"path_id": p["path_id"], **h} for p in paths for h in p["hops"]]


def version_of(r: httpx.Response) -> int:
    assert r.status_code == 200, r.text[:500]
    version = int(r.headers["x-data-version"])
    if r.headers["content-type"].startswith(("application/json", "application/geo+json")):
        assert r.json()["data_version"] == version
    return version


# ------------------------------------------------------------------------------ /trace

@pytest.mark.parametrize("port", ["P1", "P2", "P3"])
def test_trace_down_from_a_port_equals_netgis_trace(served: tuple[httpx.Client, Repository],
                                                    dataset_dir: Path, tmp_path: Path,
                                                    port: str) -> None:
    client, repo = served
    r = client.get("/trace", params={"olt_port": port})
    assert version_of(r) == repo.data_version()
    body = r.json()
    TraceAnswer.model_validate(body, strict=True)  # as the OpenAPI document describes it
    files, _ = cli_trace(dataset_dir, tmp_path / "out", "--olt-port", port)
    assert body["olt_port_id"] == port and body["premise_id"] is None
    assert body["upstream"] is None and body["budget_db"] == 28.0
    # the paths in depth-first order, each with its hops: the files' rows, in order
    same_rows(body["paths"], files["trace_paths"])
    same_rows(hops_of(body["paths"]), files["trace_hops"])
    assert len(body["paths"]) == {"P1": 15, "P2": 15, "P3": 1}[port]


@pytest.mark.parametrize("premise", ["p_spur1", "p_north100", "p_spur2", "p_ring", "p_end"])
def test_trace_up_from_a_premise_is_its_paths_best_first(
        served: tuple[httpx.Client, Repository], dataset_dir: Path, tmp_path: Path,
        premise: str) -> None:
    client, _ = served
    body = client.get("/trace", params={"premise": premise}).json()
    TraceAnswer.model_validate(body, strict=True)
    files, _ = cli_trace(dataset_dir, tmp_path / "out", "--premise", premise)
    # every path ending at the premise's drops, best (least loss, then path_id) first
    want = sorted(files["trace_paths"], key=lambda p: (float(p["loss_db"]), p["path_id"]))
    same_rows(body["paths"], want)
    by_path = {p["path_id"]: p["hops"] for p in body["paths"]}
    want_hops = [h for p in want for h in files["trace_hops"] if h["path_id"] == p["path_id"]]
    same_rows([{"path_id": pid, **h} for pid in by_path for h in by_path[pid]], want_hops)
    # one upstream row per drop: connected with its best path, or open
    same_rows(body["upstream"], files["upstream"])
    expected = {"p_spur1": (2, ["connected"]), "p_north100": (4, ["connected", "connected"]),
                "p_spur2": (2, ["connected"]), "p_ring": (0, ["open", "open"]),
                "p_end": (0, [])}[premise]
    assert (len(body["paths"]), [u["status"] for u in body["upstream"]]) == expected
    if body["paths"]:
        assert body["paths"][0]["path_id"] == body["upstream"][0]["path_id"]
        assert body["paths"][0]["olt_port_id"] == "P2"  # its connector loses less


def test_planned_plant_and_loss_parameters_are_those_of_the_cli(
        served: tuple[httpx.Client, Repository], dataset_dir: Path, tmp_path: Path) -> None:
    client, _ = served
    plain = client.get("/trace", params={"premise": "p_ring"}).json()
    assert plain["paths"] == []
    planned = client.get("/trace", params={"premise": "p_ring", "include_planned": "true"})
    files, _ = cli_trace(dataset_dir, tmp_path / "planned", "--premise", "p_ring",
                         "--include-planned")
    same_rows(planned.json()["paths"], files["trace_paths"])
    assert [p["path_id"] for p in planned.json()["paths"]] == ["P3/1"]
    params = {"olt_port": "P1", "budget_db": "20", "atten_db_per_km": "0.5",
              "splice_db": "0.2", "fixed_db": "2", "connector_db": "0.9"}
    got = client.get("/trace", params=params).json()
    files, _ = cli_trace(dataset_dir, tmp_path / "params", "--olt-port", "P1",
                         "--budget-db", "20", "--atten-db-per-km", "0.5", "--splice-db", "0.2",
                         "--fixed-db", "2", "--connector-db", "0.9")
    assert got["budget_db"] == 20.0
    same_rows(got["paths"], files["trace_paths"])
    same_rows(hops_of(got["paths"]), files["trace_hops"])


def test_trace_as_geojson_draws_each_hop(served: tuple[httpx.Client, Repository],
                                         dataset_dir: Path) -> None:
    client, _ = served
    as_json = client.get("/trace", params={"premise": "p_spur1"}).json()
    r = client.get("/trace", params={"premise": "p_spur1", "f": "geojson"})
    assert r.headers["content-type"].startswith("application/geo+json")
    fc = r.json()
    by_accept = client.get("/trace", params={"premise": "p_spur1"},
                           headers={"Accept": "application/geo+json"}).json()
    assert by_accept == fc
    assert fc["type"] == "FeatureCollection"
    assert fc["paths"] == [{k: v for k, v in p.items() if k != "hops"}
                           for p in as_json["paths"]]
    assert fc["upstream"] == as_json["upstream"]
    hops = hops_of(as_json["paths"])
    assert [f["properties"] for f in fc["features"]] == hops
    ds = read_dataset(dataset_dir)
    nodes = ds.nodes.to_crs(4326).set_index("node_id").geometry
    premise = ds.premises.to_crs(4326).set_index("premise_id").geometry["p_spur1"]
    spans = ds.spans.to_crs(4326).set_index("span_id").geometry

    def at(xy: list[float], point: Any) -> bool:
        return math.isclose(xy[0], point.x, abs_tol=1e-6) and \
            math.isclose(xy[1], point.y, abs_tol=1e-6)

    for f in fc["features"]:
        p, g = f["properties"], f["geometry"]
        if p["hop_type"] == "piece":
            # the spans' lines joined in the direction travelled: node_from to node_to
            assert g["type"] == "LineString"
            assert at(g["coordinates"][0], nodes[p["node_from"]])
            assert at(g["coordinates"][-1], nodes[p["node_to"]])
            vertices = sum(len(spans[s].coords) for s in p["span_ids"])
            assert len(g["coordinates"]) == vertices - (len(p["span_ids"]) - 1)
        elif p["hop_type"] == "drop":
            assert g["type"] == "LineString" and len(g["coordinates"]) == 2
            assert at(g["coordinates"][0], nodes[p["node_from"]])
            assert at(g["coordinates"][1], premise)
        else:
            assert g["type"] == "Point" and at(g["coordinates"], nodes[p["node_from"]])
    # the best path P2/1: connector at C, K3 from C (by D) to B, splice, SP1, splice, K2 to
    # E, the drop
    best = [f["properties"] for f in fc["features"] if f["properties"]["path_id"] == "P2/1"]
    assert [(h["hop_type"], h["ref_id"]) for h in best] == [
        ("connection", "c4"), ("piece", "K3"), ("connection", "c5"), ("splitter", "SP1"),
        ("connection", "c3"), ("piece", "K2"), ("drop", "d1")]
    assert [h["span_ids"] for h in best if h["hop_type"] == "piece"] == [["s3", "s4"], ["s5"]]


def test_trace_refuses_what_it_cannot_answer(served: tuple[httpx.Client, Repository]) -> None:
    client, _ = served
    for params in ({}, {"olt_port": "P1", "premise": "p_spur1"}):
        r = client.get("/trace", params=params)
        assert r.status_code == 400 and "exactly one of" in r.json()["detail"]
    r = client.get("/trace", params={"olt_port": "P1", "olt_prot": "x"})
    assert r.status_code == 400
    assert r.json()["errors"] == [{"layer": "query", "id": None, "field": "olt_prot",
                                   "reason": "unknown query parameter"}]
    r = client.get("/trace", params={"olt_port": "P1", "f": "csv"})
    assert r.status_code == 400
    r = client.get("/trace", params={"olt_port": "P1", "connector_db": "-1"})
    assert r.status_code == 400
    for params, layer in (({"olt_port": "P9"}, "olt_ports"), ({"premise": "nope"}, "premises")):
        r = client.get("/trace", params=params)
        assert r.status_code == 404
        assert r.json()["errors"][0]["layer"] == layer
    assert "Traceback" not in r.text


# ------------------------------------------------------------------------------ cuts

@pytest.mark.parametrize(("body", "args"), [
    ({"spans": ["s3"]}, ["--cut-spans", "s3"]),
    ({"strands": ["K3:1@s3", "K1:1"]}, ["--cut-strands", "K3:1@s3", "--cut-strands", "K1:1"]),
    ({"nodes": ["B"]}, ["--fail-nodes", "B"]),
    ({"spans": ["s6"], "nodes": ["E"]}, ["--cut-spans", "s6", "--fail-nodes", "E"]),
    ({"spans": ["s1"], "include_planned": True}, ["--cut-spans", "s1", "--include-planned"]),
])
def test_a_cut_equals_netgis_trace_under_it(served: tuple[httpx.Client, Repository],
                                            dataset_dir: Path, tmp_path: Path,
                                            body: dict[str, Any], args: list[str]) -> None:
    client, repo = served
    r = client.post("/trace/cuts", json=body)
    assert version_of(r) == repo.data_version()
    got = r.json()
    CutAnswer.model_validate(got, strict=True)
    files, summary = cli_trace(dataset_dir, tmp_path / "cut", *args)
    assert got["summary"] == {k: summary[k] for k in got["summary"]}
    assert set(got["summary"]) == {"premises_lost", "units_lost", "premises_rerouted",
                                   "units_rerouted", "splitters_dark"}
    same_rows(got["cut_premises"], files["cut_premises"])


def test_the_cuts_show_what_is_lost_and_rerouted(served: tuple[httpx.Client, Repository]
                                                 ) -> None:
    client, _ = served
    node_b = client.post("/trace/cuts", json={"nodes": ["B"]}).json()["summary"]
    assert node_b == {"premises_lost": 3, "units_lost": 8, "premises_rerouted": 0,
                      "units_rerouted": 0, "splitters_dark": ["SP1", "SP2"]}
    east = client.post("/trace/cuts", json={"spans": ["s3"]}).json()
    assert east["summary"]["premises_rerouted"] == 3 and east["summary"]["premises_lost"] == 0
    assert {(row["premise_id"], row["olt_port_before"], row["olt_port_after"])
            for row in east["cut_premises"]} == {("p_north100", "P2", "P1"),
                                                 ("p_spur1", "P2", "P1"),
                                                 ("p_spur2", "P2", "P1")}
    nothing = client.post("/trace/cuts", json={}).json()
    assert nothing["cut_premises"] == [] and nothing["summary"]["units_lost"] == 0


def test_a_cut_naming_what_does_not_exist_is_a_422(served: tuple[httpx.Client, Repository]
                                                    ) -> None:
    client, _ = served
    r = client.post("/trace/cuts", json={"spans": ["s1", "s99"], "nodes": ["Q"],
                                         "ducts": ["nope"], "strands": ["K1:13", "K8:1"]})
    assert r.status_code == 422
    named = {(e["id"], e["field"]) for e in r.json()["errors"]}
    assert named == {("s99", "cut-spans"), ("Q", "fail-nodes"), ("nope", "fail-ducts"),
                     ("K1:13", "cut-strands"), ("K8:1", "cut-strands")}
    r = client.post("/trace/cuts", json={"strands": ["K1"]})
    assert r.status_code == 422 and "CABLE:STRAND" in r.json()["detail"]
    r = client.post("/trace/cuts", json={"span": ["s1"]})
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["span"]
    r = client.post("/trace/cuts", content=b"{", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    r = client.post("/trace/cuts", content=b"spans=s1",
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415


# ------------------------------------------------------------------------------ capacity

def _all_items(client: httpx.Client, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every row of a paged list, following its next links."""
    r = client.get(path, params={**params, "limit": 2})
    items = []
    while True:
        page = r.json()
        assert page["numberReturned"] == len(page["items"]) <= 2
        items += page["items"]
        nxt = [link["href"] for link in page["links"] if link["rel"] == "next"]
        if not nxt:
            assert len(items) == page["numberMatched"]
            return items
        r = client.get(nxt[0])


@pytest.mark.parametrize("drop_m", [None, 300.0])
def test_capacity_equals_netgis_capacity(served: tuple[httpx.Client, Repository],
                                         dataset_dir: Path, tmp_path: Path,
                                         drop_m: float | None) -> None:
    client, repo = served
    params = {} if drop_m is None else {"drop_m": drop_m}
    args = [] if drop_m is None else ["--drop-m", str(drop_m)]
    out = tmp_path / "cap"
    netgis("capacity", str(dataset_dir), "--out", str(out), *args)
    r = client.get("/capacity", params=params)
    assert version_of(r) == repo.data_version()
    assert r.json()["drop_m"] == (drop_m or 150.0)
    CapacityAnswer.model_validate(r.json(), strict=True)
    for path, model in (("/capacity/spans", SpanCapacityPage),
                        ("/capacity/splitters", SplitterPortsPage),
                        ("/capacity/premises", PremiseCapacityPage)):
        model.model_validate(client.get(path, params=params).json(), strict=True)
    want = json.loads((out / "capacity.json").read_text())
    assert r.json()["kpis"]["units_connectable"] == want["units_connectable"]
    assert r.json()["kpis"]["ports_free"] == want["ports_free"]
    assert math.isclose(r.json()["kpis"]["strands_free_km"], want["strands_free_km"],
                        rel_tol=1e-12)
    same_rows(_all_items(client, "/capacity/spans", **params),
              read_csv(out / "span_capacity.csv"))
    same_rows(_all_items(client, "/capacity/splitters", **params),
              read_csv(out / "splitter_ports.csv"))
    premises = read_csv(out / "premise_capacity.csv")
    same_rows(_all_items(client, "/capacity/premises", **params), premises)
    for row in premises:
        one = client.get(f"/capacity/premises/{row['premise_id']}", params=params)
        assert version_of(one) == repo.data_version()
        PremiseCapacityAnswer.model_validate(one.json(), strict=True)
        same_row(one.json(), row)
    connectable = [p["premise_id"] for p in premises if p["connectable"] == "true"]
    got = _all_items(client, "/capacity/premises", connectable="true", **params)
    assert [p["premise_id"] for p in got] == connectable
    got = _all_items(client, "/capacity/premises", connected="false", connectable="false",
                     **params)
    assert [p["premise_id"] for p in got] == [
        p["premise_id"] for p in premises
        if p["connected"] == "false" and p["connectable"] == "false"]


def test_capacity_reads_as_the_plant_says(served: tuple[httpx.Client, Repository]) -> None:
    client, _ = served
    kpis = client.get("/capacity").json()["kpis"]
    assert (kpis["units_connectable"], kpis["ports_free"]) == (1, 11)
    p_end = client.get("/capacity/premises/p_end").json()
    assert (p_end["connectable"], p_end["nearest_splitter_id"]) == (True, "SP2")
    r = client.get("/capacity/premises/nope")
    assert r.status_code == 404
    spans = {s["span_id"]: s for s in _all_items(client, "/capacity/spans")}
    assert (spans["s1"]["broken"], spans["s1"]["reserved"]) == (1, 1)
    r = client.get("/capacity/spans", params={"limit": 0})
    assert r.status_code == 400


# ------------------------------------------------------------------------------ diversity

@pytest.mark.parametrize(("a", "b"), [("p_spur1", "p_spur2"), ("d2", "d5"),
                                      ("p_north100", "p_spur1")])
def test_diversity_equals_netgis_diversity(served: tuple[httpx.Client, Repository],
                                           dataset_dir: Path, a: str, b: str) -> None:
    client, repo = served
    r = client.get("/diversity", params={"a": a, "b": b})
    assert version_of(r) == repo.data_version()
    DiversityAnswer.model_validate(r.json(), strict=True)
    want = json.loads(netgis("diversity", str(dataset_dir), a, b))
    assert {k: v for k, v in r.json().items() if k != "data_version"} == want


def test_diversity_of_what_is_not_connected_is_a_422_naming_it(
        served: tuple[httpx.Client, Repository]) -> None:
    client, _ = served
    for other, layer in (("p_ring", "premises"), ("d4", "drops"), ("ghost", "premises")):
        r = client.get("/diversity", params={"a": "p_spur1", "b": other})
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["id"] == other
        assert r.json()["errors"][0]["layer"] == layer
    assert client.get("/diversity", params={"a": "p_spur1"}).status_code == 400


# ------------------------------------------------------------------------------ feeds

def assert_rows_close(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    """KPI rows equal: the same keys in order, floats to 1e-9 (sums in another order)."""
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert list(g) == list(w)
        for key, value in w.items():
            if isinstance(value, float):
                assert g[key] == pytest.approx(value, rel=1e-9), key
            else:
                assert g[key] == value, key


def kpi_text(metrics: str) -> str:
    """The KPI part of a /metrics scrape (after the service's own metrics)."""
    start = metrics.index("# HELP netgis_premises ")
    return metrics[start:]


def test_the_feeds_carry_the_capacity_kpis(served: tuple[httpx.Client, Repository],
                                           dataset_dir: Path) -> None:
    client, repo = served
    kpis = analyze(read_dataset(dataset_dir)).kpis
    assert set(CAPACITY_KPIS) <= set(kpis["network"])  # analyze adds them for strand layers
    capacity = client.get("/capacity").json()["kpis"]
    assert {k: kpis["network"][k] for k in CAPACITY_KPIS} == pytest.approx(capacity)
    r = client.get("/kpis")
    body = r.json()
    assert body["data_version"] == repo.data_version()
    assert r.headers["etag"]
    assert_rows_close(body["data"], kpi_rows(kpis))
    assert list(body["data"][0])[-3:] == list(CAPACITY_KPIS)
    assert all(row[k] is None for row in body["data"][1:] for k in CAPACITY_KPIS)
    text = client.get("/kpis.csv").text
    assert text.splitlines()[0] == kpis_csv(kpis).splitlines()[0]
    assert text.splitlines()[0].endswith(",units_connectable,ports_free,strands_free_km")
    scrape = client.get("/metrics").text
    want = prometheus_text(kpis, data_version=repo.data_version())
    fams = {f.name: f for f in text_string_to_metric_families(scrape)}
    for fam in text_string_to_metric_families(want):
        assert [s.value for s in fams[fam.name].samples] == pytest.approx(
            [s.value for s in fam.samples]), fam.name
    assert fams["netgis_units_connectable"].samples[0].value == 1
    # the dashboard shows them as tiles
    page = client.get("/dashboard").text
    for key in CAPACITY_KPIS:
        assert f'data-kpi="{key}"' in page
    assert "Free splitter ports" in page


def test_a_server_without_strand_layers_says_so_and_feeds_as_before(
        plain: tuple[httpx.Client, Repository]) -> None:
    client, repo = plain
    for path in STRAND_ROUTES:
        r = client.get(path)
        assert r.status_code == 409, (path, r.status_code)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert "no strand layers" in r.json()["detail"], path
    assert client.post("/trace/cuts", json={"spans": ["s1"]}).status_code == 409
    # exactly the analysis of the stored data, as before strand layers existed
    kpis = analyze(repo.read_dataset()).kpis
    assert not set(CAPACITY_KPIS) & set(kpis["network"])
    body = client.get("/kpis").json()
    assert_rows_close(body["data"], kpi_rows(kpis))
    assert not set(CAPACITY_KPIS) & set(body["data"][0])
    assert client.get("/kpis.csv").text == kpis_csv(kpis)
    scrape = client.get("/metrics").text
    assert kpi_text(scrape) == kpi_text(prometheus_text(kpis, data_version=1))
    assert "units_connectable" not in scrape
    page = client.get("/dashboard").text
    assert 'data-kpi="units_connectable"' not in page
    coverage = client.get("/maps/coverage").text
    assert "trace.js" not in coverage and "netgisTrace" not in coverage


def test_every_strand_answer_follows_a_write(served: tuple[httpx.Client, Repository],
                                             dataset_dir: Path, tmp_path: Path) -> None:
    client, repo = served
    before = client.get("/trace", params={"premise": "p_spur1"}).json()
    assert before["paths"][0]["path_id"] == "P2/1"
    # a node added through the API: a new data version, the same plant
    node = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [8.70, 50.12]},
            "properties": {"node_id": "lonely", "kind": "handhole", "status": "in_service"}}
    done = client.post("/collections/nodes/items", json=node, headers=KEY)
    assert done.status_code == 201, done.text
    version = int(done.headers["x-data-version"])
    after = client.get("/trace", params={"premise": "p_spur1"})
    assert version_of(after) == version == repo.data_version()
    assert after.json()["paths"] == before["paths"]
    for path in STRAND_ROUTES:
        assert int(client.get(path).headers["x-data-version"]) == version, path
    kpis = client.get("/kpis", params={"min_version": version}).json()
    assert kpis["data_version"] == version
    assert kpis["data"][0]["units_connectable"] == 1
    done = client.delete("/collections/nodes/items/lonely", headers=KEY)
    assert done.status_code == 204, done.text


def test_the_feeds_keep_serving_when_the_database_goes_away(tmp_path: Path,
                                                             dataset_dir: Path) -> None:
    """The live analysis answers /kpis without the database (docs/architecture.md); so do
    its capacity KPIs, kept for its data version. What needs the database is a 503."""
    from sqlalchemy import text

    url = f"sqlite:///{tmp_path / 'away.db'}"
    repo = Repository.from_url(url)
    repo.init()
    repo.load_dataset(read_dataset(dataset_dir))
    repo.engine.dispose()
    app = create_app(make_settings(url))
    with LiveServer(app) as live, httpx.Client(base_url=live.url, timeout=120) as client:
        before = client.get("/kpis").json()
        assert before["data"][0]["units_connectable"] == 1
        with app.state.repo.engine.begin() as conn:
            conn.execute(text("DELETE FROM netgis_meta"))
        after = client.get("/kpis")
        assert after.status_code == 200
        assert after.json()["data"] == before["data"]
        r = client.get("/trace", params={"premise": "p_spur1"})
        assert r.status_code == 503 and "Traceback" not in r.text
