"""A real uvicorn server on a loopback port, read by OWSLib's OGC API - Features client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from owslib.ogcapi.features import Features

from netgis.api.app import create_app
from netgis.generate import generate_city
from netgis.storage import Repository
from tests.api.helpers import LiveServer, make_settings

N_PREMISES = 10_000


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    db = Path(tmp_path_factory.mktemp("live")) / "live.db"
    url = f"sqlite:///{db}"
    repo = Repository.from_url(url)
    repo.init()
    repo.load_dataset(generate_city(premises=N_PREMISES, seed=7))
    repo.engine.dispose()
    app = create_app(make_settings(url, max_limit=2000, default_limit=100))
    with LiveServer(app) as server:
        yield server


def test_owslib_lists_collections_and_pages_through_every_premise(live: LiveServer) -> None:
    api = Features(live.url)
    assert {"nodes", "spans", "premises", "areas"} <= set(api.feature_collections())
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in \
        api.conformance()["conformsTo"]
    assert api.collection("premises")["id"] == "premises"
    seen: list[str] = []
    offset, pages = 0, 0
    while True:
        page = api.collection_items("premises", limit=1000, offset=offset)
        assert page["numberMatched"] == N_PREMISES
        if not page["features"]:
            break
        seen += [f["id"] for f in page["features"]]
        pages += 1
        offset += page["numberReturned"]
        if not any(link["rel"] == "next" for link in page["links"]):
            break
    assert pages == N_PREMISES // 1000
    assert len(seen) == len(set(seen)) == N_PREMISES
    for name in ("nodes", "spans", "areas"):
        first = api.collection_items(name, limit=5)
        assert first["numberReturned"] == min(5, first["numberMatched"])


def test_following_next_links_reaches_the_end(live: LiveServer) -> None:
    url: str | None = f"{live.url}/collections/premises/items?limit=2000&kind=residential"
    total, matched = 0, -1
    while url:
        body = httpx.get(url, timeout=60).json()
        # counted on the first page; the cursor pages after it only read on
        matched = body.get("numberMatched", matched)
        assert all(f["properties"]["kind"] == "residential" for f in body["features"])
        total += body["numberReturned"]
        url = next((link["href"] for link in body["links"] if link["rel"] == "next"), None)
    assert total == matched > 0


def test_live_write_without_key_is_refused(live: LiveServer) -> None:
    before = httpx.get(f"{live.url}/health").json()["data_version"]
    first = httpx.get(f"{live.url}/collections/premises/items?limit=1").json()["features"][0]
    item = f"{live.url}/collections/premises/items/{first['id']}"
    assert httpx.delete(item).status_code == 401
    assert httpx.get(item).json() == {**first, "links": httpx.get(item).json()["links"]}
    assert httpx.get(f"{live.url}/health").json()["data_version"] == before
    lon, lat = first["geometry"]["coordinates"]
    s = httpx.get(f"{live.url}/analysis/serviceability", params={"lon": lon, "lat": lat},
                  timeout=120)
    assert s.status_code == 200 and isinstance(s.json()["passed"], bool)
