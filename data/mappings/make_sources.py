"""Make the small sample sources of the example mappings from data/sample.gpkg.

Run from the repository root: ``python -m data.mappings.make_sources`` or
``python data/mappings/make_sources.py``. It writes

- ``sources/utility/structures.shp`` and ``cables.shp``: the plant within 900 m of the
  central office as a utility keeps it in shapefiles (EPSG:32632), with its own field names
  and codes
  (``STRUCT_TYP`` CO/CAB/SPL/SPLT/MH/POLE, ``STATUS`` Active/Proposed/Abandoned,
  ``CABLE_SIZE`` like ``144F``, ``PLACEMNT`` UG/AE/DB, splitters' ``SPLIT`` 1:8);
- ``sources/csv/sites.csv`` (lon/lat), ``routes.csv`` (WKT, no node ids: the
  import snaps their ends) and ``homes.csv`` (lon/lat): the part of the plant
  within 500 m of the central office, in WGS84, without its handholes and poles.

The output is deterministic (same input, same files).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio

HERE = Path(__file__).resolve().parent
SAMPLE = HERE.parent / "sample.gpkg"
STRUCT_TYP = {"core": "CO", "cabinet": "CAB", "splice": "SPL", "splitter": "SPLT",
              "handhole": "MH", "pole": "POLE", "other": "OTH"}
STATUS = {"in_service": "Active", "planned": "Proposed", "retired": "Abandoned"}
PLACEMNT = {"underground": "UG", "aerial": "AE", "buried": "DB"}
CONDITION = {"in_service": "live", "planned": "design", "retired": "removed"}


def around_core(nodes: gpd.GeoDataFrame, spans: gpd.GeoDataFrame, radius_m: float
                ) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """The nodes within ``radius_m`` of the central office and the spans between them."""
    core = nodes.loc[nodes["kind"] == "core"].geometry.iloc[0]
    near = nodes.loc[nodes.geometry.distance(core) <= radius_m, "node_id"]
    spans = spans[spans["from_node"].isin(near) & spans["to_node"].isin(near)]
    used = set(spans["from_node"]) | set(spans["to_node"])
    return nodes[nodes["node_id"].isin(used)], spans


def utility(nodes: gpd.GeoDataFrame, spans: gpd.GeoDataFrame, out: Path) -> None:
    nodes, spans = around_core(nodes, spans, 900)
    structures = gpd.GeoDataFrame({
        "STRUCT_ID": nodes["node_id"].str.upper(),
        "STRUCT_TYP": nodes["kind"].map(STRUCT_TYP),
        "STRUCT_NM": nodes["name"],
        "STATUS": nodes["status"].map(STATUS),
        "SPLIT": nodes["split_ratio"].map(lambda r: f"1:{int(r)}" if r == r else None),
    }, geometry=nodes.geometry, crs=nodes.crs)
    cables = gpd.GeoDataFrame({
        "CABLE_ID": spans["span_id"].str.upper(),
        "FROM_ID": spans["from_node"].str.upper(),
        "TO_ID": spans["to_node"].str.upper(),
        "CABLE_SIZE": spans["fiber_count"].map(lambda n: f"{int(n)}F" if n == n else None),
        "STATUS": spans["status"].map(STATUS),
        "PLACEMNT": spans["placement"].map(PLACEMNT),
        "OWNER": spans["owner"],
        "INST_YR": spans["install_year"],
    }, geometry=spans.geometry, crs=spans.crs)
    out.mkdir(parents=True)
    pyogrio.write_dataframe(structures, out / "structures.shp")
    pyogrio.write_dataframe(cables, out / "cables.shp")


def csv(nodes: gpd.GeoDataFrame, spans: gpd.GeoDataFrame, premises: gpd.GeoDataFrame,
        out: Path) -> None:
    core = nodes.loc[nodes["kind"] == "core"].geometry.iloc[0]
    nodes, spans = around_core(nodes, spans, 500)
    # handholes and poles are not on the list: the import makes them by snapping
    sites = nodes[~nodes["kind"].isin(["handhole", "pole"])]
    sites = sites.assign(split_ratio=sites["split_ratio"].astype("Int64"))
    homes = premises[premises.geometry.distance(core) <= 400]
    sites, spans, homes = (f.to_crs(4326) for f in (sites, spans, homes))
    out.mkdir(parents=True)
    sites.assign(lon=sites.geometry.x.round(7), lat=sites.geometry.y.round(7))[
        ["node_id", "kind", "name", "split_ratio", "lon", "lat"]].rename(
        columns={"node_id": "site", "kind": "site_type", "split_ratio": "ratio"}).to_csv(
        out / "sites.csv", index=False)
    wkt = spans.geometry.to_wkt(rounding_precision=7)
    spans.assign(WKT=wkt, condition=spans["status"].map(CONDITION))[
        ["span_id", "fiber_count", "condition", "WKT"]].rename(
        columns={"span_id": "route", "fiber_count": "fibres"}).to_csv(
        out / "routes.csv", index=False)
    homes.assign(lon=homes.geometry.x.round(7), lat=homes.geometry.y.round(7),
                 business=np.where(homes["kind"] == "business", "Y", "N"))[
        ["premise_id", "address", "units", "business", "lon", "lat"]].rename(
        columns={"premise_id": "home"}).to_csv(out / "homes.csv", index=False)


def main() -> None:
    nodes = gpd.read_file(SAMPLE, layer="nodes")
    spans = gpd.read_file(SAMPLE, layer="spans")
    premises = gpd.read_file(SAMPLE, layer="premises")
    target = HERE / "sources"
    shutil.rmtree(target, ignore_errors=True)
    utility(nodes, spans, target / "utility")
    csv(nodes, spans, premises, target / "csv")


if __name__ == "__main__":
    main()
