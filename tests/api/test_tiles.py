"""Vector tiles over HTTP on SpatiaLite and PostGIS: every feature of a tile's bounds with the
analysis values, decoded by a standard MVT reader; thinning below z14; TileJSON; 204, 304 and
ETags; errors as problems; tiles of a kept analysis never 429."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import mapbox_vector_tile
import numpy as np
import pandas as pd
import pytest
import shapely
from fastapi import FastAPI
from fastapi.testclient import TestClient

from netgis.api.app import create_app
from netgis.engine.analysis import Analysis
from netgis.generate import generate_city
from netgis.products.tiles import (
    EXTENT,
    THIN_GRID,
    TILE_RESULT_COLUMNS,
    TileAddress,
    to_tile_coords,
)
from netgis.schema import LAYERS
from tests.api.helpers import API_KEY, make_settings
from tests.helpers import PostgresDatabases

XSS = '<script>alert("tile")</script>'


@pytest.fixture(scope="module",
                params=["spatialite", pytest.param("postgis", marks=pytest.mark.postgis)])
def city_client(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[tuple[TestClient, FastAPI]]:
    """A client of an app whose database (each kind) holds a generated city of 1,500
    premises, one named like an attack; anonymous clients may start one analysis a minute.
    Shared by the module: the test that writes comes last."""
    if request.param == "spatialite":
        url = f"sqlite:///{tmp_path_factory.mktemp('tiles') / 'tiles.db'}"
    else:
        dbs: PostgresDatabases = request.getfixturevalue("pg_databases")
        url = dbs.create(prefix="netgis_tiles_test",
                         template=request.getfixturevalue("postgis_server"))
    city = generate_city(premises=1500, seed=5)
    premises = city.premises.copy()
    premises.loc[premises.index[0], "address"] = XSS
    app = create_app(make_settings(url, analysis_rate_per_minute=1, analysis_burst=1))
    with TestClient(app) as client:
        app.state.repo.load_dataset(replace(city, premises=premises))
        yield client, app
    if request.param == "postgis":
        dbs.drop(url)


def analysis_of(app: FastAPI) -> Analysis:
    _, result = app.state.services.analysis()
    return result  # type: ignore[no-any-return]


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def decode(body: bytes) -> dict[str, Any]:
    out: dict[str, Any] = mapbox_vector_tile.decode(body, default_options={"y_coord_down": True})
    return out


def busiest_tile(result: Analysis, z: int) -> tuple[int, int]:
    """The tile at zoom ``z`` holding the most premises."""
    p = result.premises.to_crs(4326)
    keys = [tile_of(x, y, z) for x, y in zip(p.geometry.x, p.geometry.y, strict=True)]
    values, counts = np.unique(np.asarray(keys), axis=0, return_counts=True)
    x, y = values[int(np.argmax(counts))]
    return int(x), int(y)


def same(a: Any, b: Any) -> bool:
    """Equal as a tile carries them: a null is no property at all."""
    if b is None or (isinstance(b, float) and math.isnan(b)) or b is pd.NA:
        return a is None
    if isinstance(b, np.generic):
        b = b.item()
    return bool(a == b)


@pytest.mark.parametrize("layer", ["premises", "spans", "nodes"])
def test_a_tile_holds_every_feature_of_its_bounds_with_the_analysis(
        city_client: tuple[TestClient, FastAPI], layer: str) -> None:
    client, app = city_client
    result = analysis_of(app)
    z = 14 if layer != "nodes" else 15
    x, y = busiest_tile(result, z)
    address = TileAddress.of(layer, z, x, y)
    response = client.get(f"/tiles/{layer}/{z}/{x}/{y}.mvt")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    tile = decode(response.content)
    assert list(tile) == [layer]
    assert tile[layer]["extent"] == EXTENT
    features = tile[layer]["features"]
    id_field = LAYERS[layer].id_field
    got = {f["properties"][id_field]: f for f in features}
    assert len(got) == len(features)
    frame = getattr(result, layer).to_crs(4326)
    box = shapely.box(*address.bounds())
    inside = frame[shapely.intersects(frame.geometry.values, box)]
    assert len(inside) > (5 if layer != "nodes" else 0)
    assert set(got) == set(inside[id_field])
    columns = [*LAYERS[layer].field_names, *TILE_RESULT_COLUMNS[layer]]
    for row in inside.itertuples(index=False):
        props = got[getattr(row, id_field)]["properties"]
        wrong = [c for c in columns if not same(props.get(c), getattr(row, c))]
        assert wrong == [], (getattr(row, id_field), wrong)
    if layer != "spans":
        # points where the data puts them, on the tile's grid (PostGIS may round .5 the
        # other way)
        xy = shapely.get_coordinates(to_tile_coords(inside.geometry.values, address))
        drawn = np.array([got[i]["geometry"]["coordinates"] for i in inside[id_field]])
        assert np.abs(drawn - xy).max() <= 1.0


def test_tile_properties_are_data_not_markup(city_client: tuple[TestClient, FastAPI]) -> None:
    client, app = city_client
    p = analysis_of(app).premises.to_crs(4326)
    pt = p.geometry[p["address"] == XSS].iloc[0]
    x, y = tile_of(pt.x, pt.y, 16)
    features = decode(client.get(f"/tiles/premises/16/{x}/{y}.mvt").content)["premises"][
        "features"]
    assert XSS in [f["properties"].get("address") for f in features]


def test_below_z14_a_tile_is_thinned_one_feature_per_cell(
        city_client: tuple[TestClient, FastAPI]) -> None:
    client, app = city_client
    result = analysis_of(app)
    z = 10
    x, y = busiest_tile(result, z)
    address = TileAddress.of("premises", z, x, y)
    first = client.get(f"/tiles/premises/{z}/{x}/{y}.mvt")
    assert first.status_code == 200
    ids = [f["properties"]["premise_id"]
           for f in decode(first.content)["premises"]["features"]]
    p = result.premises.to_crs(4326)
    west, south, east, north = address.bounds()
    inside = p[shapely.intersects(p.geometry.values, shapely.box(west, south, east, north))]
    # one feature per occupied cell of the grid, the one with the lowest id
    col = np.floor((inside.geometry.x - west) / (east - west) * THIN_GRID).astype(int)
    row = np.floor((inside.geometry.y - south) / (north - south) * THIN_GRID).astype(int)
    lowest = inside.assign(c=col.to_numpy(), r=row.to_numpy()).groupby(["c", "r"])[
        "premise_id"].min()
    assert 0 < len(ids) <= THIN_GRID ** 2
    assert len(ids) < len(inside)
    assert sorted(ids) == sorted(lowest)


def test_tilejson_opens_a_layer_by_url(city_client: tuple[TestClient, FastAPI]) -> None:
    client, app = city_client
    # keyed: the module's tests share one anonymous client, allowed one new analysis
    doc = client.get("/tiles/premises.json?drop_m=40", headers={"X-API-Key": API_KEY}).json()
    assert doc["tilejson"] == "3.0.0"
    assert doc["tiles"] == ["http://testserver/tiles/premises/{z}/{x}/{y}.mvt?drop_m=40"]
    assert (doc["minzoom"], doc["maxzoom"], doc["scheme"]) == (0, 22, "xyz")
    west, south, east, north = doc["bounds"]
    p = analysis_of(app).premises.to_crs(4326)
    assert (west, south, east, north) == pytest.approx(tuple(p.total_bounds))
    lon, lat, zoom = doc["center"]
    assert west <= lon <= east and south <= lat <= north and 0 <= zoom <= 22
    (layer,) = doc["vector_layers"]
    assert layer["id"] == "premises"
    assert layer["fields"]["premise_id"] == "String"
    assert layer["fields"]["passed"] == "Boolean"
    assert layer["fields"]["distance_m"] == "Number"
    assert set(TILE_RESULT_COLUMNS["premises"]) <= set(layer["fields"])
    # the template's tiles are the tiles at that drop length
    x, y = busiest_tile(analysis_of(app), 14)
    tile = client.get(doc["tiles"][0].format(z=14, x=x, y=y).removeprefix("http://testserver"))
    assert tile.status_code == 200


@pytest.mark.parametrize(("path", "status"), [
    ("/tiles/buildings/1/0/0.mvt", 404),
    ("/tiles/premises/23/0/0.mvt", 404),
    ("/tiles/premises/2/4/0.mvt", 404),
    ("/tiles/premises/2/0/-1.mvt", 404),
    ("/tiles/premises/two/0/0.mvt", 400),
    ("/tiles/premises/1/0/0.mvt?zoom=3", 400),
    ("/tiles/premises/1/0/0.mvt?drop_m=-5", 400),
    ("/tiles/buildings.json", 404),
    ("/tiles/premises.json?format=x", 400),
])
def test_bad_requests_are_problems(city_client: tuple[TestClient, FastAPI], path: str,
                                   status: int) -> None:
    client, _ = city_client
    response = client.get(path)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert "Traceback" not in response.text


def test_tiles_of_kept_analyses_are_never_rate_limited(
        city_client: tuple[TestClient, FastAPI]) -> None:
    """One new analysis a minute is the anonymous clients' limit; tiles of an analysis
    that is kept never count (tiles at new parameters do: tests/api/test_analysis_limits)."""
    client, _ = city_client
    key = {"X-API-Key": API_KEY}
    assert client.get("/tiles/premises/0/0/0.mvt?drop_m=30", headers=key).status_code == 200
    statuses = {client.get(f"/tiles/{layer}/0/0/0.mvt", params=params).status_code
                for layer in ("premises", "nodes") for params in ({}, {"drop_m": 30})
                for _ in range(3)}
    assert statuses == {200}


def test_empty_tiles_etags_and_not_modified(city_client: tuple[TestClient, FastAPI]) -> None:
    client, app = city_client
    empty = client.get("/tiles/premises/14/0/0.mvt")
    assert empty.status_code == 204 and empty.content == b""
    x, y = busiest_tile(analysis_of(app), 14)
    url = f"/tiles/premises/14/{x}/{y}.mvt"
    first = client.get(url)
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "no-cache"
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    assert client.get(url, headers={"If-None-Match": '"other"'}).status_code == 200
    assert client.get(url + "?drop_m=40",
                      headers={"X-API-Key": API_KEY}).headers["etag"] != etag
    # a write makes a new data version: a new tag, a new tile
    spans = analysis_of(app).spans
    lit = spans[spans["lit"]]
    response = client.delete(f"/collections/spans/items/{lit['span_id'].iloc[0]}",
                             headers={"X-API-Key": API_KEY})
    assert response.status_code == 204
    after = client.get(url, headers={"If-None-Match": etag})
    assert after.status_code in (200, 204)
    assert after.headers["etag"] != etag


@pytest.mark.parametrize("layer", ["spans", "nodes"])
def test_span_and_node_tiles_name_each_feature_by_street_and_area(
        city_client: tuple[TestClient, FastAPI], layer: str) -> None:
    """The popups of tiles say where a span or node is as the dashboard and the map pages
    do: a tile's ``place`` of each feature is the one the server names it by elsewhere."""
    client, app = city_client
    services = app.state.services
    version, result = services.analysis()
    names = services.names(version, result.dataset)
    z = 14 if layer == "spans" else 15
    x, y = busiest_tile(result, z)
    response = client.get(f"/tiles/{layer}/{z}/{x}/{y}.mvt")
    assert response.status_code == 200
    features = decode(response.content)[layer]["features"]
    kind, id_field = layer[:-1], LAYERS[layer].id_field
    got = {f["properties"][id_field]: f["properties"].get("place") for f in features}
    expected = {fid: names.place(kind, fid) for fid in got}
    assert got == expected
    # the city has named streets and areas: the check is about something
    assert sum(place is not None and ", " in place for place in got.values()) > len(got) // 2
    tilejson = client.get(f"/tiles/{layer}.json").json()
    assert tilejson["vector_layers"][0]["fields"]["place"] == "String"
