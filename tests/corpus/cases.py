"""The bad-input corpus: every layer times every kind of problem the validator knows, plus
malformed files.

Two families, because the entry points take two kinds of input:

- :data:`FILE_CASES` are datasets on disk (GeoPackage, or a directory of
  GeoJSON / FlatGeobuf / GeoParquet files), each the small valid plant of
  :mod:`tests.test_validate` with exactly one thing broken. They go through
  ``netgis validate``, ``netgis analyze``, ``netgis db load`` and ``POST
  /import``.
- :data:`ITEM_CASES` are GeoJSON features, each a valid feature of the
  ring_spur example with one thing broken. They go through ``POST``, ``PUT``
  and ``PATCH`` on ``/collections/{layer}/items``.

Each case names what a clear answer must name (:class:`Expect`): the layer and,
where the problem has one, the id and the field. Nothing is stored on disk in
the repository: the files are written by code (``python -m tests.corpus.build
DIR`` writes them out for a look or for other tools).
"""

from __future__ import annotations

import json
import math
import sqlite3
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import pyogrio
import shapely
from shapely import GeometryCollection, LineString, MultiPoint, Point, Polygon

from netgis.schema import LAYERS
from tests.test_validate import Layers, base, frames, pt, write_geojson_dir

ID_FIELD = {name: layer.id_field for name, layer in LAYERS.items()}
#: Index and id of the feature each layer's cases break (the plant of tests.test_validate).
VICTIM = {"nodes": (1, "b"), "spans": (0, "s1"), "premises": (0, "p1"), "areas": (0, "A1")}


@dataclass(frozen=True)
class Expect:
    """What a clear answer must name: the layer, and the id and field where known."""

    layer: str
    id: str | None = None
    field: str | None = None


@dataclass(frozen=True)
class FileCase:
    """A dataset on disk with one problem; ``write(dir)`` writes it and returns its path."""

    name: str
    kind: str
    expect: Expect
    write: Callable[[Path], Path]
    #: Statuses of a clear answer from POST /import (415: not a GeoPackage nor a zip).
    import_status: frozenset[int] = frozenset({422})


@dataclass(frozen=True)
class ItemCase:
    """A feature body with one problem, for POST, PUT and PATCH of ``layer``'s items.

    ``props`` and ``geometry`` replace those of a valid feature; ``raw`` (when
    given) is sent as the POST body as it is, bytes that are not JSON built by
    :func:`json.dumps` (NaN, lone surrogates).
    """

    name: str
    kind: str
    layer: str
    expect: Expect
    props: dict[str, Any] = field(default_factory=dict)
    geometry: dict[str, Any] | None = None
    #: Statuses of a clear answer per method; None: the method does not apply.
    post: frozenset[int] | None = frozenset({422})
    put: frozenset[int] | None = frozenset({422})
    patch: frozenset[int] | None = frozenset({422})


# ------------------------------------------------------------------ writing file cases


def _gpkg(layers: Layers, crs: Any = 4326) -> Callable[[Path], Path]:
    def write(root: Path) -> Path:
        path = root / "dataset.gpkg"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pyogrio notes a missing CRS, Z/M, ...
            for name, frame in frames(layers, crs).items():
                pyogrio.write_dataframe(frame, path, layer=name, driver="GPKG")
        return path

    return write


def _geojson(layers: Layers) -> Callable[[Path], Path]:
    return lambda root: write_geojson_dir(root / "dataset", layers)


def _with(layer: str, index: int, *, props: dict[str, Any] | None = None,
          geom: Any = "keep", drop: tuple[str, ...] = ()) -> Layers:
    """The base plant with one feature changed."""
    layers = base()
    old_props, old_geom = layers[layer][index]
    new_props = {k: v for k, v in {**old_props, **(props or {})}.items() if k not in drop}
    layers[layer][index] = (new_props, old_geom if geom == "keep" else geom)
    return layers


def _parquet(layers: Layers) -> Callable[[Path], Path]:
    """A directory of GeoParquet files: the one format here whose text keeps a NUL (GDAL
    reads C strings, so a NUL in GeoJSON or a GeoPackage silently ends the text)."""
    def write(root: Path) -> Path:
        path = root / "dataset"
        path.mkdir()
        for name, frame in frames(layers).items():
            frame.to_parquet(path / f"{name}.parquet", index=False)
        return path

    return write


def _moved(geom: Any, dx: float = 0.0, value: tuple[float, float] | None = None) -> Any:
    """``geom`` with its second vertex (or only one) moved by ``dx`` degrees or set."""
    coords = shapely.get_coordinates(geom)
    k = 1 if len(coords) > 1 else 0
    if value is not None:
        coords[k] = value
    else:
        coords[k, 0] += dx
    return shapely.set_coordinates(geom, coords)


def _bytes(name: str, data: bytes) -> Callable[[Path], Path]:
    def write(root: Path) -> Path:
        path = root / name
        path.write_bytes(data)
        return path

    return write


def _valid_gpkg_bytes() -> bytes:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return _gpkg(base())(Path(tmp)).read_bytes()


def _gpkg_srs(layer: str, srs_id: int) -> Callable[[Path], Path]:
    def write(root: Path) -> Path:
        path = _gpkg(base())(root)
        con = sqlite3.connect(path)
        with con:
            for table in ("gpkg_geometry_columns", "gpkg_contents"):  # table names are ours
                con.execute(f"UPDATE {table} SET srs_id = ? WHERE table_name = ?",
                            (srs_id, layer))
        con.close()
        return path

    return write


def _fgb_without_crs(root: Path) -> Path:
    path = root / "dataset"
    path.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, frame in frames(base(), None).items():
            pyogrio.write_dataframe(frame, path / f"{name}.fgb", driver="FlatGeobuf")
    return path


def _two_files(root: Path) -> Path:
    path = write_geojson_dir(root / "dataset", base())
    (path / "nodes.json").write_bytes((path / "nodes.geojson").read_bytes())
    return path


def _edit_geojson(layers: Layers, layer: str, edit: Callable[[str], bytes]
                  ) -> Callable[[Path], Path]:
    """A GeoJSON directory whose ``layer`` file is rewritten by ``edit`` (bytes out)."""
    def write(root: Path) -> Path:
        path = write_geojson_dir(root / "dataset", layers)
        target = path / f"{layer}.geojson"
        target.write_bytes(edit(target.read_text(encoding="utf-8")))
        return path

    return write


def _garbage_parquet(root: Path) -> Path:
    path = write_geojson_dir(root / "dataset", base())
    (path / "premises.geojson").unlink()
    (path / "premises.parquet").write_bytes(b"PAR1" + b"\x00garbage" * 50)
    return path


def _wrong_column_types(root: Path) -> Path:
    """A GeoPackage whose integer column is a TEXT column and boolean column a REAL one."""
    path = root / "dataset.gpkg"
    for name, frame in frames(base()).items():
        if name == "spans":
            frame["fiber_count"] = ["twelve", "24"]
        if name == "premises":
            frame["connected"] = [0.0, 0.5]
        pyogrio.write_dataframe(frame, path, layer=name, driver="GPKG")
    return path


def _utm(layers: Layers) -> Callable[[Path], Path]:
    """The dataset reprojected to UTM 32N (area of use 6-12 E) as a GeoPackage."""
    def write(root: Path) -> Path:
        path = root / "dataset.gpkg"
        for name, frame in frames(layers).items():
            pyogrio.write_dataframe(frame.to_crs(32632), path, layer=name, driver="GPKG")
        return path

    return write


def _file_cases() -> list[FileCase]:
    cases: list[FileCase] = []

    def add(name: str, kind: str, expect: Expect, write: Callable[[Path], Path],
            import_status: frozenset[int] = frozenset({422})) -> None:
        cases.append(FileCase(name, kind, expect, write, import_status))

    for layer in ("nodes", "spans", "premises"):
        layers = base()
        del layers[layer]
        add(f"{layer}/layer-missing", "required layer missing", Expect(layer), _geojson(layers))
    for layer, fname in [("nodes", "node_id"), ("spans", "span_id"), ("spans", "from_node"),
                         ("spans", "to_node"), ("premises", "premise_id"), ("areas", "area_id")]:
        layers = base()
        for props, _ in layers[layer]:
            del props[fname]
        add(f"{layer}/field-missing-{fname}", "required field missing",
            Expect(layer, None, fname), _geojson(layers))
    for layer, (i, ident) in VICTIM.items():
        idf = ID_FIELD[layer]
        add(f"{layer}/id-blank", "required value missing", Expect(layer, None, idf),
            _geojson(_with(layer, i, props={idf: "  "})))
        dup = base()
        dup[layer].append((dict(dup[layer][i][0]), dup[layer][i][1]))
        add(f"{layer}/id-duplicate", "duplicate id", Expect(layer, ident, idf), _geojson(dup))
        for label, bad in (("nul", f"{ident}\x00x"), ("crlf", f"{ident}\r\nx"),
                           ("tab", f"{ident}\tx")):
            if layer == "nodes":
                # a span names the node: rename it in both places, so the only problem is
                # the control character itself
                layers = _with(layer, i, props={idf: bad})
                layers["spans"][0][0]["to_node"] = bad
                layers["spans"][1][0]["from_node"] = bad
            else:
                layers = _with(layer, i, props={idf: bad})
            add(f"{layer}/id-control-{label}", "control character in id",
                Expect(layer, bad, idf), _parquet(layers) if label == "nul" else _geojson(layers))
    for layer, fname, value in [("nodes", "kind", "tower"), ("nodes", "status", "broken"),
                                ("spans", "status", "active"), ("spans", "placement", "space"),
                                ("premises", "kind", "castle")]:
        i, ident = VICTIM[layer]
        add(f"{layer}/enum-{fname}", "unknown enum value", Expect(layer, ident, fname),
            _geojson(_with(layer, i, props={fname: value})))
    for layer, fname, value, kind in [
        ("spans", "fiber_count", "lots", "not an integer"),
        ("spans", "fibers_used", 2.5, "not an integer"),
        ("spans", "install_year", "1990s", "not an integer"),
        ("premises", "units", "many", "not an integer"),
        ("spans", "fiber_count", -1, "below minimum"),
        ("spans", "fibers_used", -1, "below minimum"),
        ("premises", "units", 0, "below minimum"),
        ("spans", "fibers_used", 99, "fibers_used over fiber_count"),
        ("premises", "connected", "maybe", "not a boolean"),
    ]:
        i, ident = VICTIM[layer]
        add(f"{layer}/{kind.replace(' ', '-')}-{fname}", kind, Expect(layer, ident, fname),
            _geojson(_with(layer, i, props={fname: value})))
    add("spans/dangling-from_node", "dangling reference", Expect("spans", "s1", "from_node"),
        _geojson(_with("spans", 0, props={"from_node": "zz"})))
    add("spans/dangling-to_node", "dangling reference", Expect("spans", "s1", "to_node"),
        _geojson(_with("spans", 0, props={"to_node": "zz"})))
    add("spans/self-loop", "self-loop", Expect("spans", "s1", "to_node"),
        _geojson(_with("spans", 0, props={"to_node": "a"})))
    for layer, fname in [("nodes", "name"), ("spans", "owner"), ("spans", "duct_id"),
                         ("premises", "address"), ("premises", "location_id"),
                         ("areas", "name")]:
        i, ident = VICTIM[layer]
        add(f"{layer}/nul-in-{fname}", "NUL in text", Expect(layer, ident, fname),
            _parquet(_with(layer, i, props={fname: "bad\x00text"})))

    # geometry: every layer times every kind
    wrong_type = {"nodes": LineString([pt(0, 0), pt(1, 1)]), "spans": pt(1, 1),
                  "premises": Polygon([pt(0, 0), pt(1, 0), pt(1, 1)]),
                  "areas": LineString([pt(0, 0), pt(1, 1)])}
    for layer, (i, ident) in VICTIM.items():
        geom = base()[layer][i][1]
        exp = Expect(layer, ident, "geometry")
        add(f"{layer}/geometry-missing", "geometry missing", exp, _gpkg(_with(layer, i, geom=None)))
        empty = {"nodes": Point(), "spans": LineString(), "premises": Point(),
                 "areas": Polygon()}[layer]
        add(f"{layer}/geometry-empty", "geometry empty", exp, _gpkg(_with(layer, i, geom=empty)))
        add(f"{layer}/geometry-wrong-type", "wrong geometry type", exp,
            _gpkg(_with(layer, i, geom=wrong_type[layer])))
        for label, value in (("nan", (math.nan, 50.11)), ("inf", (math.inf, 50.11)),
                             ("-inf", (8.68, -math.inf))):
            add(f"{layer}/coordinate-{label}", "coordinate not finite", exp,
                _gpkg(_with(layer, i, geom=_moved(geom, value=value))))
        for label, value in (("500-95", (500.0, 95.0)), ("1e308", (1e308, 1e308)),
                             ("lat-90.5", (8.68, -90.5)), ("lon-181", (-181.0, 50.1))):
            add(f"{layer}/coordinate-out-of-range-{label}", "coordinate out of range", exp,
                _geojson(_with(layer, i, geom=_moved(geom, value=value))))
        add(f"{layer}/beyond-area-of-use", "beyond the area of use of the CRS", exp,
            _utm(_with(layer, i, geom=_moved(geom, dx=12.0))))
    add("areas/geometry-invalid-bowtie", "invalid geometry", Expect("areas", "A1", "geometry"),
        _gpkg(_with("areas", 0, geom=Polygon([pt(0, 0), pt(2, 2), pt(2, 0), pt(0, 2)]))))
    add("spans/geometry-degenerate", "invalid geometry", Expect("spans", "s1", "geometry"),
        _gpkg(_with("spans", 0, geom=LineString([pt(0, 0), pt(0, 0)]))))
    add("nodes/mixed-geometry-multipoint", "mixed geometry types",
        Expect("nodes", "b", "geometry"),
        _gpkg(_with("nodes", 1, geom=MultiPoint([pt(3, 0), pt(4, 0)]))))
    add("areas/mixed-geometry-collection", "mixed geometry types",
        Expect("areas", "A1", "geometry"),
        _gpkg(_with("areas", 0, geom=GeometryCollection([pt(0, 0), LineString([pt(0, 0),
                                                                                pt(1, 1)])]))))
    add("premises/mixed-geometry-line", "mixed geometry types",
        Expect("premises", "p1", "geometry"),
        _gpkg(_with("premises", 0, geom=LineString([pt(1, 0), pt(1, 1)]))))
    add("dataset/lon-lat-declared-utm", "lon/lat declared in a projected CRS",
        Expect("premises", None, "geometry"), _gpkg(base(), crs=32632))

    # CRS
    add("premises/gpkg-srs-0", "no CRS", Expect("premises", None, "geometry"),
        _gpkg_srs("premises", 0))
    add("spans/gpkg-srs-minus-1", "no CRS", Expect("spans", None, "geometry"),
        _gpkg_srs("spans", -1))
    add("nodes/fgb-without-crs", "no CRS", Expect("nodes", None, "geometry"), _fgb_without_crs)
    add("nodes/two-files", "two files for one layer", Expect("nodes"), _two_files)

    # malformed files
    good = _valid_gpkg_bytes()
    add("dataset/gpkg-truncated-third", "truncated GeoPackage", Expect("dataset"),
        _bytes("dataset.gpkg", good[: len(good) // 3]))
    add("dataset/gpkg-truncated-header", "truncated GeoPackage", Expect("dataset"),
        _bytes("dataset.gpkg", good[:1024]))
    add("dataset/gpkg-garbage", "not a GeoPackage", Expect("dataset"),
        _bytes("dataset.gpkg", b"\x89not a geopackage\x00" * 64), frozenset({415}))
    add("dataset/gpkg-empty-file", "not a GeoPackage", Expect("dataset"),
        _bytes("dataset.gpkg", b""), frozenset({415}))
    add("dataset/gpkg-wrong-column-types", "wrong column types",
        Expect("spans", "s1", "fiber_count"), _wrong_column_types)
    add("premises/gpkg-wrong-column-type-bool", "wrong column types",
        Expect("premises", "p2", "connected"), _wrong_column_types)
    add("nodes/geojson-truncated", "truncated GeoJSON", Expect("nodes"),
        _edit_geojson(base(), "nodes", lambda t: t[: len(t) // 2].encode("utf-8")))
    add("premises/geojson-not-utf8", "non-UTF-8 text", Expect("premises"),
        _edit_geojson(base(), "premises",
                      lambda t: t.replace('"p1"', '"p1", "address": "Stra\u00dfe 1"')
                      .encode("latin-1")))
    add("spans/geojson-not-a-collection", "malformed GeoJSON", Expect("spans"),
        _edit_geojson(base(), "spans", lambda t: b"[1, 2, 3]"))
    add("premises/parquet-garbage", "malformed GeoParquet", Expect("premises"),
        _garbage_parquet)
    add("premises/geojson-nan-token", "coordinate not finite",
        Expect("premises", "p1", "geometry"),
        _edit_geojson(base(), "premises", lambda t: _nan_token(t)))
    return cases


def _nan_token(text: str) -> bytes:
    data = json.loads(text)
    data["features"][0]["geometry"]["coordinates"] = [math.nan, 50.11]
    return json.dumps(data).encode("utf-8")  # writes the (non-JSON) token NaN


#: 3D / M input is forgiven (docs/spec.md §1.6: Z/M values are dropped with a warning): run through
#: the same entry points, it must load as 2D with that warning, never crash.
def _tolerated_cases() -> list[FileCase]:
    def zm(root: Path) -> Path:
        layers = base()
        for name in layers:
            layers[name] = [(p, shapely.force_3d(g, 12.5)) for p, g in layers[name]]
        return _gpkg(layers)(root)

    def measured(root: Path) -> Path:
        path = root / "dataset"
        path.mkdir()
        for name, frame in frames(base()).items():
            coll = gpd.GeoDataFrame(frame.drop(columns="geometry"),
                                    geometry=shapely.force_3d(frame.geometry.values, 0.0),
                                    crs=frame.crs)
            coll.to_file(path / f"{name}.geojson", driver="GeoJSON")
        return path

    return [FileCase("dataset/3d-geometries", "3D geometries (tolerated)", Expect("nodes"), zm),
            FileCase("dataset/3d-geojson", "3D GeoJSON (tolerated)", Expect("nodes"), measured)]


FILE_CASES: list[FileCase] = _file_cases()
TOLERATED_CASES: list[FileCase] = _tolerated_cases()


# ------------------------------------------------------------------------ item cases

#: A valid feature per layer near the ring_spur example (Frankfurt), and the stored
#: feature PUT and PATCH aim at.
GOOD: dict[str, dict[str, Any]] = {
    "nodes": {"node_id": "n_new", "kind": "cabinet", "status": "in_service", "name": "new"},
    "spans": {"span_id": "s_new", "from_node": "E", "to_node": "F", "status": "in_service",
              "fiber_count": 12, "fibers_used": 2, "placement": "aerial", "duct_id": "d9",
              "owner": "us", "install_year": 2020},
    "premises": {"premise_id": "p_new", "units": 2, "kind": "business", "connected": True,
                 "address": "1 New St", "location_id": "L1"},
    "areas": {"area_id": "a_new", "name": "new area"},
}
STORED = {"nodes": "F", "spans": "s6", "premises": "p_far", "areas": "east"}
LON, LAT = 8.6895, 50.1098
GOOD_GEOMETRY: dict[str, dict[str, Any]] = {
    "nodes": {"type": "Point", "coordinates": [LON, LAT]},
    "spans": {"type": "LineString", "coordinates": [[LON, LAT], [LON + 0.001, LAT]]},
    "premises": {"type": "Point", "coordinates": [LON, LAT]},
    "areas": {"type": "Polygon", "coordinates": [[[LON, LAT], [LON + 0.01, LAT],
                                                  [LON + 0.01, LAT + 0.01], [LON, LAT]]]},
}


def _vertex(layer: str, value: list[float]) -> dict[str, Any]:
    """The layer's good geometry with one vertex set to ``value``."""
    geom = json.loads(json.dumps(GOOD_GEOMETRY[layer]))
    if layer in ("nodes", "premises"):
        geom["coordinates"] = value
    elif layer == "spans":
        geom["coordinates"][1] = value
    else:
        geom["coordinates"][0][1] = value
    return geom


def _item_cases() -> list[ItemCase]:
    cases: list[ItemCase] = []
    for layer in LAYERS:
        idf = ID_FIELD[layer]
        new_id = GOOD[layer][idf]
        g = Expect(layer, new_id, "geometry")
        for label, xy in (("500-95", [500, 95]), ("1e308", [1e308, 1e308]),
                          ("lat-90.01", [LON, 90.01]), ("lon--180.5", [-180.5, LAT])):
            cases.append(ItemCase(f"{layer}/coordinate-out-of-range-{label}",
                                  "coordinate out of range", layer, g, geometry=_vertex(layer, xy)))
        # JSON has no NaN or infinity; Python's json writes the tokens and the server's
        # parser takes them: they must not reach GEOS and the database
        for label, xy in (("nan", [math.nan, LAT]), ("inf", [math.inf, LAT])):
            cases.append(ItemCase(f"{layer}/coordinate-{label}", "coordinate not finite", layer,
                                  g, geometry=_vertex(layer, xy)))
        wrong = {"nodes": GOOD_GEOMETRY["spans"], "spans": GOOD_GEOMETRY["nodes"],
                 "premises": GOOD_GEOMETRY["areas"], "areas": GOOD_GEOMETRY["nodes"]}[layer]
        cases.append(ItemCase(f"{layer}/geometry-wrong-type", "wrong geometry type", layer, g,
                              geometry=wrong))
        empty = {"type": GOOD_GEOMETRY[layer]["type"], "coordinates": []}
        cases.append(ItemCase(f"{layer}/geometry-empty", "geometry empty", layer, g,
                              geometry=empty))
        for label, bad in (("nul", "x\x00y"), ("crlf", "x\r\ny"), ("lf", "x\ny"),
                           ("tab", "x\ty")):
            # PUT / PATCH name the stored feature in the path: another id in the body is
            # a mismatch (422), whatever it holds
            cases.append(ItemCase(f"{layer}/id-control-{label}", "control character in id",
                                  layer, Expect(layer, bad, idf), props={idf: bad}))
        cases.append(ItemCase(f"{layer}/id-surrogate", "text not valid Unicode", layer,
                              Expect(layer, None, idf), props={idf: "x\ud800"}))
        cases.append(ItemCase(f"{layer}/id-duplicate", "duplicate id", layer,
                              Expect(layer, STORED[layer], idf), props={idf: STORED[layer]},
                              post=frozenset({409}), put=None, patch=None))
        text_field = {"nodes": "name", "spans": "owner", "premises": "address",
                      "areas": "name"}[layer]
        cases.append(ItemCase(f"{layer}/nul-in-{text_field}", "NUL in text", layer,
                              Expect(layer, new_id, text_field), props={text_field: "a\x00b"}))
        cases.append(ItemCase(f"{layer}/surrogate-in-{text_field}", "text not valid Unicode",
                              layer, Expect(layer, new_id, text_field),
                              props={text_field: "a\udcff"}))
    for layer, fname, value in [("nodes", "kind", "tower"), ("nodes", "status", "broken"),
                                ("spans", "status", "active"), ("spans", "placement", "space"),
                                ("premises", "kind", "castle")]:
        cases.append(ItemCase(f"{layer}/enum-{fname}", "unknown enum value", layer,
                              Expect(layer, None, fname), props={fname: value}))
    for layer, fname, value, kind in [
        ("spans", "fiber_count", "lots", "not an integer"),
        ("spans", "install_year", 1990.5, "not an integer"),
        ("premises", "units", "many", "not an integer"),
        ("spans", "fiber_count", -1, "below minimum"),
        ("premises", "units", 0, "below minimum"),
        ("spans", "fibers_used", 99, "fibers_used over fiber_count"),
        ("premises", "connected", "maybe", "not a boolean"),
    ]:
        cases.append(ItemCase(f"{layer}/{kind.replace(' ', '-')}-{fname}", kind, layer,
                              Expect(layer, None, fname), props={fname: value}))
    cases.append(ItemCase("spans/dangling-to_node", "dangling reference", "spans",
                          Expect("spans", None, "to_node"), props={"to_node": "zz"}))
    cases.append(ItemCase("spans/self-loop", "self-loop", "spans",
                          Expect("spans", None, "to_node"), props={"to_node": "E"}))
    bowtie = {"type": "Polygon", "coordinates": [[[LON, LAT], [LON + 0.01, LAT + 0.01],
                                                  [LON + 0.01, LAT], [LON, LAT + 0.01],
                                                  [LON, LAT]]]}
    cases.append(ItemCase("areas/geometry-invalid-bowtie", "invalid geometry", "areas",
                          Expect("areas", None, "geometry"), geometry=bowtie))
    cases.append(ItemCase("spans/geometry-degenerate", "invalid geometry", "spans",
                          Expect("spans", None, "geometry"),
                          geometry={"type": "LineString", "coordinates": [[LON, LAT],
                                                                          [LON, LAT]]}))
    return cases


ITEM_CASES: list[ItemCase] = _item_cases()
