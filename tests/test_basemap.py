"""Base-map files (MBTiles, PMTiles) read and served, and the optional streets layer read
loosely: what the maps draw under the plant.

The files are made here: tiles whose bytes say their XYZ address, so that a TMS row
flip or a directory lookup gone wrong shows as the wrong bytes.
"""

from __future__ import annotations

import gzip
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from fastapi.testclient import TestClient
from pmtiles.convert import mbtiles_to_pmtiles

from netgis.api.app import create_app
from netgis.generate import generate_city
from netgis.io import read_dataset, validate_path, write_dataset
from netgis.io.basemap import BasemapError, open_basemap, write_mbtiles
from tests.api.helpers import make_settings
from tests.helpers import EXAMPLES_DIR

#: Every tile of zooms 0-3: its bytes name its XYZ address.
TILES = {(z, x, y): f"tile {z}/{x}/{y}".encode() for z in range(4)
         for x in range(2 ** z) for y in range(2 ** z)}
META = {"name": "Test", "format": "png", "minzoom": "0", "maxzoom": "3",
        "bounds": "8.5,49.9,8.9,50.3", "center": "8.7,50.1,2",
        "attribution": '<a href="https://www.openstreetmap.org/copyright">&copy; '
                       'OpenStreetMap</a> contributors'}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("basemaps")
    mbtiles = write_mbtiles(root / "raster.mbtiles", TILES, META)
    pmtiles = root / "raster.pmtiles"
    mbtiles_to_pmtiles(str(mbtiles), str(pmtiles), 3)
    vector = write_mbtiles(root / "vector.mbtiles",
                           {(1, 1, 0): gzip.compress(b"vector 1/1/0", mtime=0)},
                           {"format": "pbf", "json": '{"vector_layers": [{"id": "roads"}]}'})
    return {"mbtiles": mbtiles, "pmtiles": pmtiles, "vector": vector}


@pytest.mark.parametrize("kind", ["mbtiles", "pmtiles"])
def test_every_tile_is_read_at_its_xyz_address(files: dict[str, Path], kind: str) -> None:
    base = open_basemap(files[kind])
    try:
        assert {key: base.tile(*key) for key in TILES} == TILES
        assert base.tile(3, 0, 0) != base.tile(3, 0, 7)  # rows are not mirrored
        info = base.info
        assert (info.kind, info.ext, info.vector, info.media_type) == (kind, "png", False,
                                                                        "image/png")
        assert (info.min_zoom, info.max_zoom) == (0, 3)
        assert info.attribution == "© OpenStreetMap contributors"
        assert info.bounds == pytest.approx((8.5, 49.9, 8.9, 50.3))
        assert base.tile(4, 0, 0) is None  # below the file's deepest zoom: no tile
        with pytest.raises(ValueError, match="no tile 2/4/0"):
            base.tile(2, 4, 0)
    finally:
        base.close()


def test_vector_tiles_and_their_layers(files: dict[str, Path]) -> None:
    base = open_basemap(files["vector"])
    assert base.info.vector and base.info.vector_layers == ("roads",)
    assert gzip.decompress(base.tile(1, 1, 0) or b"") == b"vector 1/1/0"
    assert base.tile(1, 0, 0) is None


def test_files_that_cannot_be_served_are_refused_by_name(tmp_path: Path) -> None:
    cases = {"missing.mbtiles": None, "notes.txt": b"x", "junk.mbtiles": b"not sqlite",
             "junk.pmtiles": b"not pmtiles at all"}
    for name, data in cases.items():
        if data is not None:
            (tmp_path / name).write_bytes(data)
    reasons = {}
    for name in cases:
        with pytest.raises(BasemapError) as err:
            open_basemap(tmp_path / name)
        reasons[name] = str(err.value)
    assert "no such file" in reasons["missing.mbtiles"]
    assert ".mbtiles or .pmtiles" in reasons["notes.txt"]
    assert "not a readable MBTiles" in reasons["junk.mbtiles"]
    assert "not a PMTiles v3 file" in reasons["junk.pmtiles"]
    empty = write_mbtiles(tmp_path / "empty.mbtiles", {}, {"format": "png"})
    with pytest.raises(BasemapError, match="has no tiles"):
        open_basemap(empty)
    svg = write_mbtiles(tmp_path / "svg.mbtiles", {(0, 0, 0): b"<svg/>"}, {"format": "svg"})
    with pytest.raises(BasemapError, match="format 'svg'"):
        open_basemap(svg)


@pytest.fixture(scope="module")
def client(files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[TestClient]:
    url = f"sqlite:///{tmp_path_factory.mktemp('basemap-api') / 'api.db'}"
    with TestClient(create_app(make_settings(url, basemap=str(files["mbtiles"]),
                                             open_reads=False))) as c:
        yield c


def test_tilejson_describes_the_file(client: TestClient) -> None:
    # public even with closed reads: the portal draws it and it holds no plant data
    r = client.get("/basemap.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["tiles"] == ["http://testserver/basemap/{z}/{x}/{y}.png"]
    assert (doc["format"], doc["minzoom"], doc["maxzoom"]) == ("png", 0, 3)
    assert doc["attribution"] == "© OpenStreetMap contributors"
    assert doc["bounds"] == pytest.approx([8.5, 49.9, 8.9, 50.3])
    assert doc["center"] == pytest.approx([8.7, 50.1, 2])
    assert "vector_layers" not in doc


def test_tiles_with_caching_headers_and_errors(client: TestClient) -> None:
    r = client.get("/basemap/3/2/5.png")
    assert (r.status_code, r.content, r.headers["content-type"]) == (200, b"tile 3/2/5",
                                                                    "image/png")
    assert r.headers["cache-control"] == "public, max-age=86400"
    etag = r.headers["etag"]
    again = client.get("/basemap/3/2/5.png", headers={"If-None-Match": etag})
    assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", etag)
    assert client.get("/basemap/3/2/6.png").headers["etag"] != etag
    missing = client.get("/basemap/5/0/0.png")
    assert missing.status_code == 404 and "no tile 5/0/0" in missing.json()["detail"]
    other = client.get("/basemap/1/0/0.jpg")
    assert other.status_code == 404 and "has png tiles" in other.json()["detail"]
    for path, field in (("2/4/0", "x"), ("2/0/-1", "y"), ("31/0/0", "z"), ("a/0/0", "z"),
                        ("1/0/1.5", "y")):
        bad = client.get(f"/basemap/{path}.png")
        assert bad.status_code == 400, path
        assert bad.json()["errors"][0]["field"] == field, path
    assert client.get("/basemap/1/0/0.png?size=2").status_code == 400  # unknown parameter


def test_gzip_vector_tiles_follow_accept_encoding(files: dict[str, Path], tmp_path: Path) -> None:
    app = create_app(make_settings(f"sqlite:///{tmp_path / 'v.db'}",
                                   basemap=str(files["vector"])))
    with TestClient(app) as c:
        assert c.get("/basemap.json").json()["vector_layers"] == [{"id": "roads",
                                                                   "fields": {}}]
        zipped = c.get("/basemap/1/1/0.pbf", headers={"Accept-Encoding": "gzip"})
        assert zipped.headers["content-encoding"] == "gzip"
        assert zipped.content == b"vector 1/1/0"  # decoded by the client
        plain = c.get("/basemap/1/1/0.mvt", headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers and plain.content == b"vector 1/1/0"
        assert plain.headers["content-type"] == "application/vnd.mapbox-vector-tile"
        assert plain.headers["etag"] != zipped.headers["etag"]
        assert plain.headers["vary"] == "Accept-Encoding"


def test_no_basemap_is_a_404_and_a_bad_one_stops_the_start(tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(f"sqlite:///{tmp_path / 'n.db'}"))) as c:
        for path in ("/basemap.json", "/basemap/0/0/0.png"):
            r = c.get(path)
            assert r.status_code == 404 and "NETGIS_BASEMAP" in r.json()["detail"]
    (tmp_path / "bad.pmtiles").write_bytes(b"nothing")
    with pytest.raises(BasemapError, match=r"bad\.pmtiles"):
        create_app(make_settings(f"sqlite:///{tmp_path / 'n.db'}",
                                 basemap=str(tmp_path / "bad.pmtiles")))


# ---- the streets context layer ------------------------------------------------------------

@pytest.fixture
def folder(tmp_path: Path) -> Path:
    out = tmp_path / "ring"
    shutil.copytree(EXAMPLES_DIR / "ring_spur" / "dataset", out)
    return out


def test_a_dataset_without_streets_reads_as_before(folder: Path) -> None:
    before = validate_path(folder).as_dict()
    assert read_dataset(folder).streets is None and before == {"errors": [], "warnings": []}


def test_streets_are_checked_loosely(folder: Path) -> None:
    line = shapely.LineString([(8.68, 50.11), (8.69, 50.11)])
    gpd.GeoDataFrame({"Name": [7, "Kirchgasse", None, "Platz"]},
                     geometry=[line, line, line, shapely.Point(8.68, 50.11)],
                     crs=4326).to_file(folder / "streets.geojson")
    ds = read_dataset(folder)
    assert ds.streets is not None and ds.streets.crs == ds.crs
    assert ds.streets["name"].tolist()[:2] == ["7", "Kirchgasse"]
    assert ds.streets["name"].isna().tolist() == [False, False, True]
    report = validate_path(folder).as_dict()
    assert report["errors"] == []
    assert [(w["layer"], w["field"]) for w in report["warnings"]] == [("streets", "geometry")]
    assert "1 feature is not a line (row 3)" in report["warnings"][0]["reason"]
    # written back with the dataset
    again = read_dataset(write_dataset(ds, folder.parent / "copy.gpkg"))
    assert again.streets is not None and again.streets["name"].tolist()[:2] == ["7",
                                                                                 "Kirchgasse"]


def test_unusable_streets_are_warnings_never_errors(folder: Path, tmp_path: Path) -> None:
    (folder / "streets.fgb").write_bytes(b"not a FlatGeobuf")
    report = validate_path(folder).as_dict()
    assert report["errors"] == [] and report["warnings"][0]["layer"] == "streets"
    assert "not used" in report["warnings"][0]["reason"]
    assert read_dataset(folder).streets is None
    gpkg = tmp_path / "nocrs.gpkg"
    shutil.copy(EXAMPLES_DIR / "ring_spur" / "dataset.gpkg", gpkg)
    gpd.GeoDataFrame({"name": ["A"]}, geometry=[shapely.LineString([(0, 0), (1, 1)])],
                     crs=4326).to_file(gpkg, layer="streets", driver="GPKG")
    con = sqlite3.connect(gpkg)
    with con:  # the GeoPackage's "undefined" SRS
        con.execute("UPDATE gpkg_geometry_columns SET srs_id = 0 WHERE table_name = 'streets'")
    con.close()
    report = validate_path(gpkg).as_dict()
    assert report["warnings"] == [{"layer": "streets", "id": None, "field": "geometry",
                                   "reason": "the layer has no CRS: not used"}]


def test_generated_streets_follow_the_grid_and_the_addresses() -> None:
    one, two = generate_city(premises=600, seed=4), generate_city(premises=600, seed=4)
    assert one.streets is not None and two.streets is not None
    assert one.streets.geom_equals(two.streets).all()
    assert one.streets["name"].tolist() == two.streets["name"].tolist()
    assert set(one.streets.geom_type) == {"LineString"}
    assert one.streets["name"].is_unique
    # every address names a street of the layer, and lies near it
    streets = one.streets.set_index("name").geometry
    named = one.premises.dropna(subset=["address"])
    street_of = named["address"].str.replace(r"^\d+\S*\s+|\s+\d+\S*$", "", regex=True)
    assert set(street_of) <= set(streets.index)
    gap = named.geometry.distance(gpd.GeoSeries(streets.loc[street_of].to_numpy(),
                                                index=named.index, crs=one.crs))
    assert float(gap.max()) < 100.0


def test_the_bead_map_page_draws_the_served_basemap(files: dict[str, Path]) -> None:
    """The BEAD map of /maps/bead, as the server makes it, gets the server's base map."""
    from netgis.api.bead_pages import bead_map_page
    from netgis.engine.analysis import analyze
    from netgis.io import read_dataset
    from netgis.maps.basemap import Basemap
    from netgis.products.bead import bead
    from tests.api.helpers import make_settings

    root = Path(__file__).resolve().parents[1]
    result = analyze(read_dataset(root / "data" / "sample.gpkg"))
    answer = bead(result.lit_spans, root / "data" / "bead" / "availability.csv",
                  root / "data" / "bead" / "fabric.csv")
    base = open_basemap(files["mbtiles"])
    try:
        served = Basemap.of(base.info)
    finally:
        base.close()
    settings = make_settings("sqlite:///:memory:")
    with_map, _ = bead_map_page(settings, result, answer, served)
    without, _ = bead_map_page(settings, result, answer)
    assert "/basemap/{z}/{x}/{y}.png" in with_map and "OpenStreetMap contributors" in with_map
    assert "/basemap/" not in without
