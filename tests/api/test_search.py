"""GET /search (docs/spec.md §3.9, Address search) through a real server on both databases,
and `netgis search` on a file and on the database."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from benchmarks.bench_search import first_hit_share, typo_queries
from netgis.api.app import create_app
from netgis.dataset import Dataset
from netgis.generate import generate_city
from netgis.io import write_dataset
from netgis.products.search import build_index
from netgis.storage import Repository
from tests.api.helpers import LiveServer, make_settings
from tests.helpers import PostgresDatabases, missing_house_number

#: Addresses put on the first premises of a generated city (names the generator never uses).
ADDRESSES = ["Großer Lönsring 12", "Großer Lönsring 14", "Sonnenstraße 3", "7, Am Ölberg",
             "Sonnenstraße 30"]


def search_city() -> Dataset:
    """A generated city of 300 premises; the first have the addresses above, and premise 5's
    id is premise 6's address (an exact id must come before an address)."""
    ds = generate_city(premises=300, seed=5)
    premises = ds.premises.copy()
    address = premises["address"].astype(object).to_numpy().copy()
    address[:len(ADDRESSES)] = ADDRESSES
    premises["address"] = address
    ids = premises["premise_id"].astype(object).to_numpy().copy()
    ids[5] = str(address[6])
    premises["premise_id"] = ids
    premises["location_id"] = premises["location_id"].astype(object)
    premises.loc[premises.index[2], "location_id"] = "LOC-ÄB-1"
    return dataclasses.replace(ds, premises=premises)


@pytest.fixture(scope="module", params=["spatialite", pytest.param("postgis",
                                                                   marks=pytest.mark.postgis)])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[LiveServer, Dataset]]:
    """A live server on each database holding :func:`search_city`; anonymous new analyses
    limited to one, so that a search that started one would soon be refused."""
    if request.param == "spatialite":
        url = f"sqlite:///{tmp_path_factory.mktemp('search') / 'api.db'}"
        dbs = None
    else:
        dbs = request.getfixturevalue("pg_databases")
        assert isinstance(dbs, PostgresDatabases)
        url = dbs.create(prefix="search_api", template=request.getfixturevalue("postgis_server"))
    ds = search_city()
    app = create_app(make_settings(url, analysis_rate_per_minute=1, analysis_burst=1))
    try:
        with LiveServer(app) as live:
            repo: Repository = app.state.repo
            repo.load_dataset(ds)
            yield live, ds
    finally:
        if dbs is not None:
            dbs.drop(url)


def get(live: LiveServer, **params: Any) -> httpx.Response:
    return httpx.get(f"{live.url}/search", params=params, timeout=120)


def hits(live: LiveServer, q: str, **params: Any) -> list[dict[str, Any]]:
    r = get(live, q=q, **params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/geo+json")
    body = r.json()
    assert body["type"] == "FeatureCollection"
    assert body["numberReturned"] == len(body["features"])
    features: list[dict[str, Any]] = body["features"]
    return features


def addresses(features: list[dict[str, Any]]) -> list[str]:
    return [f["properties"]["address"] for f in features]


#: Spellings of "Sonnenstraße 3" and "Großer Lönsring 12": case (Unicode folding), accents,
#: punctuation, spacing, abbreviation, one or two typos, the number before or after.
SPELLINGS = {
    "Sonnenstraße 3": ["Sonnenstraße 3", "SONNENSTRASSE 3", "sonnenstrasse 3", "3 Sonnenstraße",
                       "3, sonnen-strasse.", "Sonnen Strasse   3", "Sonnenstr. 3",
                       "Sonenstrase 3", "3 snonenstraße"],
    "Großer Lönsring 12": ["GROSSER LÖNSRING 12", "12 grosser lonsring", "Grosser Loensring 12",
                           "Großer Lönsrign 12", "12 GRSER LONSRING"],
}


def test_an_address_is_found_whatever_its_spelling(server: tuple[LiveServer, Dataset]) -> None:
    live, ds = server
    for intended, spellings in SPELLINGS.items():
        for q in spellings:
            found = hits(live, q)
            first = found[0]
            assert first["properties"]["address"] == intended, q
            assert first["properties"]["match"] == "address"
            assert first["id"] == first["properties"]["premise_id"]
    # the first hit is the premise itself, not another number of the same street
    found = hits(live, "Sonenstrase 3")
    assert found[0]["id"] == ds.premises["premise_id"].iloc[2]
    assert addresses(found)[:2] == ["Sonnenstraße 3", "Sonnenstraße 30"]


def test_number_before_the_street_in_the_stored_address(server: tuple[LiveServer, Dataset]
                                                        ) -> None:
    live, _ = server
    assert addresses(hits(live, "Am Ölberg 7"))[0] == "7, Am Ölberg"
    assert addresses(hits(live, "7 am olberg"))[0] == "7, Am Ölberg"


def test_exact_ids_come_first(server: tuple[LiveServer, Dataset]) -> None:
    live, ds = server
    premise_ids = ds.premises["premise_id"].tolist()
    # premise 5's id is premise 6's address: the id match comes first, then the address
    found = hits(live, premise_ids[5])
    assert [f["id"] for f in found[:2]] == [premise_ids[5], premise_ids[6]]
    assert [f["properties"]["match"] for f in found[:2]] == ["premise_id", "address"]
    assert found[0]["properties"]["score"] > found[1]["properties"]["score"]
    # a location_id, in another case and without its accent
    by_location = hits(live, "loc-ab-1")
    assert by_location[0]["id"] == premise_ids[2]
    assert by_location[0]["properties"]["match"] == "location_id"
    plain = hits(live, premise_ids[40].upper())
    assert plain[0]["id"] == premise_ids[40]


def test_hits_carry_the_serviceability_of_the_analysis(server: tuple[LiveServer, Dataset]
                                                       ) -> None:
    live, ds = server
    for premise_id in (ds.premises["premise_id"].iloc[10], ds.premises["premise_id"].iloc[2]):
        hit = hits(live, premise_id)[0]
        one = httpx.get(f"{live.url}/analysis/premises/{premise_id}", timeout=60).json()
        for name in ("passed", "distance_m", "span_protected", "node_protected",
                     "duct_protected", "loss_db", "in_budget", "address", "served_span_id"):
            assert hit["properties"][name] == one["properties"][name], name
        assert hit["geometry"]["coordinates"] == pytest.approx(one["geometry"]["coordinates"])
    passed = [f["properties"]["passed"] for f in hits(live, "Sonnenstraße", limit=50)]
    assert passed  # the whole street, in house-number order
    found = addresses(hits(live, "Sonnenstraße", limit=50))
    assert found[:2] == ["Sonnenstraße 3", "Sonnenstraße 30"]


def test_no_match_gives_suggestions(server: tuple[LiveServer, Dataset]) -> None:
    live, _ = server
    r = get(live, q="Sonnenstraße 999")
    assert r.status_code == 200
    body = r.json()
    assert body["features"] == [] and body["numberReturned"] == 0
    # the street exists, the number does not: the nearest number on that street is offered
    assert "Sonnenstraße 30" in body["suggestions"]
    body = get(live, q="Großer Lxxxxxxxx 12").json()
    assert body["features"] == []
    assert body["suggestions"] and body["suggestions"][0] == "Großer Lönsring 12"
    assert get(live, q="Sonnenstraße 3").json()["suggestions"] == []


def test_a_missing_house_number_is_named_not_answered_by_another(
        server: tuple[LiveServer, Dataset]) -> None:
    """Before, "lindenstrase 12" answered with Lindenstraße 126 as if it were the address."""
    live, ds = server
    street, number, lower, higher = missing_house_number(ds.premises["address"].dropna())
    body = get(live, q=f"{number} {street.lower().replace('ß', 's')}").json()
    first = body["features"][0]["properties"]
    # the street's numbers that begin with it are still listed (type-ahead), flagged
    assert first["address"].startswith(f"{street} {number}") and first["address"] != \
        f"{street} {number}"
    assert first["house_number_match"] is False
    assert body["house_number_not_found"] == {"street": street, "number": number,
                                              "nearest": [lower, higher]}
    # a number the street has: found, no flag
    body = get(live, q=lower).json()
    assert body["features"][0]["properties"]["address"] == lower
    assert body["features"][0]["properties"]["house_number_match"] is True
    assert body["house_number_not_found"] is None
    # no number asked for, or an id: nothing to match
    assert {f["properties"]["house_number_match"] for f in hits(live, street)} == {None}
    assert get(live, q=street).json()["house_number_not_found"] is None
    assert hits(live, ds.premises["premise_id"].iloc[40])[0]["properties"][
        "house_number_match"] is None
    # beyond the street's last number: no hit, the last number named
    body = get(live, q="Sonnenstraße 999").json()
    assert body["house_number_not_found"] == {"street": "Sonnenstraße", "number": "999",
                                              "nearest": ["Sonnenstraße 30"]}


def test_limit_default_maximum_and_errors(server: tuple[LiveServer, Dataset]) -> None:
    live, _ = server
    street = "Großer Lönsring"
    assert len(hits(live, street)) == 2
    assert len(hits(live, street, limit=1)) == 1
    generated = "lindenstraße"
    assert len(hits(live, generated)) <= 10
    for params, name in (({"q": "x", "limit": 51}, "limit"), ({"q": "x", "limit": 0}, "limit"),
                         ({}, "q"), ({"q": "   "}, "q"), ({"q": "x" * 201}, "q"),
                         ({"q": "x", "address": "y"}, "address"),
                         ({"q": "x", "limit": "ten"}, "limit")):
        r = get(live, **params)
        assert r.status_code == 400, (params, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert name in r.text
    doc = httpx.get(f"{live.url}/openapi.json", timeout=60).json()
    limit = next(p for p in doc["paths"]["/search"]["get"]["parameters"] if p["name"] == "limit")
    assert limit["schema"]["default"] == 10 and limit["schema"]["maximum"] == 50


def test_search_is_never_rate_limited(server: tuple[LiveServer, Dataset]) -> None:
    live, _ = server
    # the server allows one new analysis per minute per anonymous client: searches start none
    statuses = {get(live, q=f"Sonnenstraße {n}").status_code for n in range(10)}
    assert statuses == {200}


def test_search_quality_floor_on_typo_queries() -> None:
    """The benchmark's quality measure on a small city (figures at 1 M in RESULTS.md)."""
    premises = generate_city(premises=20_000, seed=61).premises
    known = premises["address"].astype(str).tolist()
    share = first_hit_share(build_index(premises), known, typo_queries(known, 400, seed=5))
    assert share >= 0.98


def test_cli_search_on_a_file_and_the_database(tmp_path: Path) -> None:
    ds = search_city()
    path = tmp_path / "city.gpkg"
    write_dataset(ds, path)
    root = str(Path(__file__).resolve().parents[2])
    env = {"PYTHONPATH": root, "PATH": "/usr/bin:/bin"}

    def run(*args: str, db: str | None = None) -> subprocess.CompletedProcess[str]:
        extra = {"NETGIS_DATABASE_URL": db} if db else {}
        return subprocess.run([sys.executable, "-m", "netgis.cli", "search", *args],
                              capture_output=True, text=True, env={**env, **extra}, timeout=300)

    done = run(str(path), "12 grosser lonsrign", "--limit", "1")
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert [f["properties"]["address"] for f in body["features"]] == ["Großer Lönsring 12"]
    assert body["features"][0]["id"] == ds.premises["premise_id"].iloc[0]
    assert {"passed", "distance_m", "loss_db", "in_budget"} <= set(body["features"][0][
        "properties"])
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    repo = Repository.from_url(url)
    repo.init()
    repo.load_dataset(ds)
    repo.engine.dispose()
    from_db = run("--db", "Sonnenstrase 3", db=url)
    assert from_db.returncode == 0, from_db.stderr
    assert json.loads(from_db.stdout)["features"][0]["properties"]["address"] == "Sonnenstraße 3"
    bad = run(str(path), "  ")
    assert bad.returncode == 2 and "TEXT" in bad.stderr
