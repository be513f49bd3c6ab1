"""OGC API - Features reads on SpatiaLite and PostGIS through the FastAPI test client."""

from __future__ import annotations

from fastapi.testclient import TestClient

from netgis.api.result_features import RESULT_COLLECTIONS
from netgis.schema import LAYER_NAMES

GEOJSON = "application/geo+json"
PROBLEM = "application/problem+json"


def test_landing_conformance_and_collections(client: TestClient) -> None:
    landing = client.get("/").json()
    rels = {link["rel"]: link for link in landing["links"]}
    assert {"self", "service-desc", "conformance", "data"} <= set(rels)
    assert rels["service-desc"]["type"] == "application/vnd.oai.openapi+json;version=3.0"
    conf = client.get("/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in conf
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson" in conf
    cols = client.get("/collections").json()["collections"]
    # the four data layers, then the read-only results of their analysis
    assert [c["id"] for c in cols] == [*LAYER_NAMES, *RESULT_COLLECTIONS]
    for c in cols:
        items = next(link for link in c["links"] if link["rel"] == "items")
        assert items["href"].endswith(f"/collections/{c['id']}/items")
        assert client.get(f"/collections/{c['id']}").json()["id"] == c["id"]


def test_openapi_is_version_30_and_lists_every_layer(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.0")
    for name in LAYER_NAMES:
        assert f"/collections/{name}/items" in doc["paths"]
    text = client.get("/openapi.json").text
    assert '"type": "null"' not in text and '"type":"null"' not in text


def test_items_page_with_links_and_counts(client: TestClient) -> None:
    r = client.get("/collections/spans/items", params={"limit": 4})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith(GEOJSON)
    page = r.json()
    assert page["type"] == "FeatureCollection"
    assert (page["numberMatched"], page["numberReturned"]) == (6, 4)
    assert [f["id"] for f in page["features"]] == ["s1", "s2", "s3", "s4"]
    assert page["timeStamp"].endswith("Z")
    links = {link["rel"]: link["href"] for link in page["links"]}
    assert "prev" not in links
    second = client.get(links["next"]).json()
    assert [f["id"] for f in second["features"]] == ["s5", "s6"]
    rels = {link["rel"] for link in second["links"]}
    assert "next" not in rels and "prev" in rels
    feature = page["features"][0]
    assert feature["geometry"]["type"] == "LineString"
    assert feature["properties"]["from_node"] == "C"
    assert feature["properties"]["duct_id"] is None


def test_limit_above_the_documented_maximum_is_a_400(client: TestClient) -> None:
    # the test settings allow at most 50 items per page, as the document says
    limit = client.get("/openapi.json").json()["paths"]["/collections/premises/items"]["get"]
    schema = next(p for p in limit["parameters"] if p["name"] == "limit")["schema"]
    assert (schema["default"], schema["maximum"]) == (10, 50)
    body = client.get("/collections/premises/items", params={"limit": 50}).json()
    assert body["numberReturned"] == 6
    assert [link for link in body["links"] if link["rel"] == "next"] == []
    r = client.get("/collections/premises/items", params={"limit": 51})
    assert r.status_code == 400
    assert [e["field"] for e in r.json()["errors"]] == ["limit"]


def test_bbox_and_enum_filters(client: TestClient) -> None:
    core = client.get("/collections/nodes/items", params={"kind": "core"}).json()
    assert [f["id"] for f in core["features"]] == ["C"]
    lon, lat = core["features"][0]["geometry"]["coordinates"]
    d = 0.0005
    near = client.get("/collections/nodes/items",
                      params={"bbox": f"{lon - d},{lat - d},{lon + d},{lat + d}"}).json()
    assert [f["id"] for f in near["features"]] == ["C"]
    assert near["numberMatched"] == 1
    planned = client.get("/collections/spans/items", params={"status": "planned"}).json()
    assert planned["numberMatched"] == 0
    under = client.get("/collections/spans/items", params={"placement": "underground"}).json()
    assert all(f["properties"]["placement"] == "underground" for f in under["features"])


def test_one_item_and_missing_things_are_problems(client: TestClient) -> None:
    r = client.get("/collections/premises/items/p_far")
    assert r.status_code == 200 and r.headers["content-type"].startswith(GEOJSON)
    assert r.json()["properties"]["premise_id"] == "p_far"
    for url in ("/collections/premises/items/nope", "/collections/roads/items",
                "/collections/roads"):
        r = client.get(url)
        assert r.status_code == 404, url
        assert r.headers["content-type"].startswith(PROBLEM)
        assert r.json()["status"] == 404
    assert client.get("/collections/premises/items/nope").json()["errors"][0]["id"] == "nope"


def test_bad_parameters_are_400_problems(client: TestClient) -> None:
    for params in ({"bbox": "1,2,3"}, {"bbox": "a,b,c,d"}, {"bbox": "10,0,5,1"},
                   {"bbox": "0,95,1,96"}, {"limit": 0}, {"limit": "x"}, {"offset": -1},
                   {"kind": "castle"}):
        r = client.get("/collections/nodes/items", params=params)
        assert r.status_code == 400, params
        assert r.headers["content-type"].startswith(PROBLEM)
        body = r.json()
        assert body["errors"], params
        assert "Traceback" not in r.text
    field = client.get("/collections/nodes/items", params={"bbox": "1,2,3"}).json()
    assert field["errors"][0]["field"] == "bbox"
