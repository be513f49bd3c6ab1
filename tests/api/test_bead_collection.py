"""The ``bead_classes`` result collection: the FCC Fabric locations of the server's files,
each with its BEAD class and whether the live plant passes it, over a real port.

What it serves is checked against ``netgis bead`` of the same data and files (its
bead.csv, written by the command line in a subprocess), GDAL's ``ogr2ogr`` copies the
unserved locations through the server's paging, and a server without the files neither
lists the collection nor serves it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pyogrio
import pytest
import shapely

from netgis.api.app import create_app
from netgis.api.result_features import BEAD_COLLECTION, RESULT_COLLECTIONS
from netgis.errors import ValidationError
from netgis.io import read_dataset
from netgis.products.bead import read_locations
from netgis.products.result_layers import RESULT_LAYERS
from netgis.storage import Repository
from tests.api.helpers import API_KEY, LiveServer, make_settings
from tests.layer_checks import csv_frame, typed

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "sample.gpkg"
AVAILABILITY = ROOT / "data" / "bead" / "availability.csv"
FABRIC = ROOT / "data" / "bead" / "fabric.csv"

pytestmark = pytest.mark.xdist_group("bead_collection")


def _serve(url: str, **overrides: Any) -> LiveServer:
    return LiveServer(create_app(make_settings(url, default_limit=10, max_limit=50,
                                               **overrides)))


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('bead') / 'bead.db'}"
    with Repository.from_url(url) as repo:
        repo.init()
        repo.load_dataset(read_dataset(SAMPLE))
    return url


@pytest.fixture(scope="module")
def live(database: str) -> Iterator[LiveServer]:
    server = _serve(database, bead_availability=str(AVAILABILITY),
                    bead_locations=str(FABRIC))
    with server:
        yield server


@pytest.fixture(scope="module")
def bead_csv(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """bead.csv of ``netgis bead`` on the data the server holds, at the server's drop."""
    out = tmp_path_factory.mktemp("bead-out")
    done = subprocess.run(
        [sys.executable, "-m", "netgis.cli", "bead", str(SAMPLE), "--availability",
         str(AVAILABILITY), "--locations", str(FABRIC), "--out", str(out)],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    frame = csv_frame(out / "bead.csv", BEAD_COLLECTION)
    return frame.sort_values("location_id", kind="stable").reset_index(drop=True)


def _features(live: LiveServer, **params: Any) -> list[dict[str, Any]]:
    """Every feature of every page, following the next links."""
    features: list[dict[str, Any]] = []
    url: str | None = f"{live.url}/collections/{BEAD_COLLECTION}/items"
    query: dict[str, Any] | None = {"limit": 7, **params}
    pages = 0
    while url is not None:
        r = httpx.get(url, params=query, timeout=60)
        assert r.status_code == 200, r.text
        page = r.json()
        if pages == 0:
            matched = page["numberMatched"]
        features += page["features"]
        url = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
        query, pages = None, pages + 1
        assert pages < 100
    assert len(features) == matched
    return features


def _frame(features: list[dict[str, Any]]) -> pd.DataFrame:
    rows = pd.DataFrame([f["properties"] for f in features],
                        columns=RESULT_LAYERS[BEAD_COLLECTION].field_names)
    return typed(rows, BEAD_COLLECTION)


def test_bead_classes_equal_netgis_bead(live: LiveServer, bead_csv: pd.DataFrame) -> None:
    listed = [c["id"] for c in httpx.get(f"{live.url}/collections").json()["collections"]]
    assert listed.index(BEAD_COLLECTION) == listed.index(RESULT_COLLECTIONS[-1]) + 1
    one = httpx.get(f"{live.url}/collections/{BEAD_COLLECTION}").json()
    points = read_locations(FABRIC)
    box = one["extent"]["spatial"]["bbox"][0]
    assert box == pytest.approx(list(points.total_bounds), abs=1e-9)
    queryables = httpx.get(f"{live.url}/collections/{BEAD_COLLECTION}/queryables").json()
    assert list(queryables["properties"]) == [*RESULT_LAYERS[BEAD_COLLECTION].field_names,
                                              "geometry"]
    assert queryables["properties"]["bead_class"]["enum"] == ["unserved", "underserved",
                                                              "served"]
    features = _features(live)
    served = _frame(features)
    pd.testing.assert_frame_equal(served, bead_csv)
    # the sample's locations span every class and every plant answer: the check means something
    assert set(served["bead_class"]) == {"served", "underserved", "unserved"}
    assert set(served["plant"]) >= {"passed", "reachable"}
    # each location where the Fabric file puts it
    where = points.set_index("location_id").geometry
    for feature in features:
        shape = shapely.from_geojson(json.dumps(feature["geometry"]))
        assert shapely.equals_exact(shape, where[feature["id"]], 1e-9)


def test_filters_on_bead_classes(live: LiveServer, bead_csv: pd.DataFrame) -> None:
    unserved = bead_csv["bead_class"] == "unserved"
    cases: list[tuple[dict[str, Any], Any]] = [
        ({"bead_class": "unserved"}, unserved),
        ({"passed": "false"}, ~bead_csv["passed"].astype(bool)),
        ({"filter": "bead_class = 'unserved' AND plant = 'reachable'"},
         unserved & (bead_csv["plant"] == "reachable")),
        ({"filter": "distance_m < 100"}, (bead_csv["distance_m"] < 100).fillna(False)),
    ]
    for params, mask in cases:
        expected = sorted(bead_csv.loc[mask.to_numpy(dtype=bool), "location_id"])
        assert expected, params
        assert [f["id"] for f in _features(live, **params)] == expected, params
    bad = httpx.get(f"{live.url}/collections/{BEAD_COLLECTION}/items",
                    params={"bead_class": "maybe"})
    assert bad.status_code == 400 and "bead_class" in bad.text
    assert bad.headers["content-type"].startswith("application/problem+json")
    write = httpx.post(f"{live.url}/collections/{BEAD_COLLECTION}/items", json={},
                       headers={"X-API-Key": API_KEY})
    assert write.status_code == 405 and "read-only" in write.json()["detail"]


def test_ogr2ogr_copies_the_unserved_locations(live: LiveServer, bead_csv: pd.DataFrame,
                                               tmp_path: Path) -> None:
    tool = shutil.which("ogr2ogr")
    if tool is None:
        pytest.fail("ogr2ogr is missing: run scripts/install-system.sh (gdal-bin)")
    target = tmp_path / "unserved.gpkg"
    done = subprocess.run(
        [tool, "-f", "GPKG", str(target), f"OAPIF:{live.url}", BEAD_COLLECTION,
         "-where", "bead_class = 'unserved'", "-oo", "PAGE_SIZE=4"],
        capture_output=True, text=True, timeout=300,
        env={"PATH": "/usr/bin:/bin", "GDAL_DATA": "/usr/share/gdal", "GDAL_HTTP_TIMEOUT": "60"})
    assert done.returncode == 0, done.stderr
    copied = pyogrio.read_dataframe(target, layer=BEAD_COLLECTION)
    expected = bead_csv[bead_csv["bead_class"] == "unserved"].reset_index(drop=True)
    assert len(expected) > 4  # several pages
    got = typed(copied, BEAD_COLLECTION, list(expected.columns))
    pd.testing.assert_frame_equal(got.sort_values("location_id").reset_index(drop=True),
                                  expected)


def test_without_the_files_there_is_no_bead_collection(database: str) -> None:
    with _serve(database) as server:
        listed = [c["id"] for c in
                  httpx.get(f"{server.url}/collections").json()["collections"]]
        assert BEAD_COLLECTION not in listed and set(RESULT_COLLECTIONS) <= set(listed)
        for path in ("", "/items", "/queryables", "/items/1100000000"):
            r = httpx.get(f"{server.url}/collections/{BEAD_COLLECTION}{path}")
            assert r.status_code == 404, (path, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
            assert "NETGIS_BEAD_AVAILABILITY" in r.json()["detail"]


def test_a_malformed_availability_file_stops_the_start(database: str, tmp_path: Path) -> None:
    bad = tmp_path / "availability.csv"
    lines = AVAILABILITY.read_text().splitlines()
    header = lines[0].split(",")
    row = lines[1].split(",")
    row[header.index("max_advertised_download_speed")] = "fast"
    bad.write_text("\n".join([lines[0], ",".join(row), *lines[2:]]) + "\n")
    with pytest.raises(ValidationError) as raised:
        create_app(make_settings(database, bead_availability=str(bad),
                                 bead_locations=str(FABRIC)))
    text = str(raised.value)
    assert "max_advertised_download_speed" in text and "line 2" in text
