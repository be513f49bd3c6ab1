"""Interoperability: OFDS export and import, and a mapped import with snapping.

A generated city (``generate_city(premises=N, seed=5)``; OFDS carries only its
nodes and spans) is exported to the OFDS GeoJSON publication format and imported
back; then its spans, without node ids and with utility-style fields, are
written to a GeoPackage and imported through a mapping that snaps every span
end to the nodes (1 m) or to new splices. ``python -m benchmarks.bench_interop [N]``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import pyogrio

from benchmarks._record import peak_rss_mb, record

N_PREMISES = 20_000
MAPPING = """
[nodes]
layer = "structures"
fields = { node_id = "STRUCT_ID", kind = { field = "STRUCT_TYP", map = { CO = "core" } } }

[spans]
layer = "cables"
[spans.fields]
span_id = "CABLE_ID"
fiber_count = { field = "CABLE_SIZE", regex = '^(\\d+)F$' }
[spans.fields.status]
field = "STATUS"
map = { Active = "in_service", Proposed = "planned", Abandoned = "retired" }
[spans.snap]
tolerance_m = 1.0
"""


def main() -> None:
    from netgis.generate import generate_city
    from netgis.interop.mapping import import_mapped, parse_mapping
    from netgis.interop.ofds import read_ofds, write_ofds

    n = int(sys.argv[1]) if len(sys.argv) > 1 else N_PREMISES
    city = generate_city(premises=n, seed=5)
    rows = []
    with tempfile.TemporaryDirectory(prefix="netgis-bench-interop-") as tmp:
        out = Path(tmp) / "ofds"
        t0 = time.perf_counter()
        write_ofds(city, out)
        t1 = time.perf_counter()
        back = read_ofds([out / "nodes.geojson", out / "spans.geojson"],
                         cores=list(city.nodes.loc[city.nodes["kind"] == "core", "node_id"]))
        t2 = time.perf_counter()
        assert len(back.dataset.spans) == len(city.spans)
        size_mb = sum(f.stat().st_size for f in out.iterdir()) / 2**20
        rows.append(("OFDS export (`write_ofds`)", t1 - t0))
        rows.append(("OFDS import of the export (`read_ofds`, validation included)", t2 - t1))

        gpkg = Path(tmp) / "utility.gpkg"
        nodes = city.nodes.assign(STRUCT_ID=city.nodes["node_id"],
                                  STRUCT_TYP=city.nodes["kind"].where(
                                      city.nodes["kind"] != "core", "CO").where(
                                      city.nodes["kind"] == "core", None))[
            ["STRUCT_ID", "STRUCT_TYP", "geometry"]]
        spans = city.spans.assign(
            CABLE_ID=city.spans["span_id"],
            CABLE_SIZE=city.spans["fiber_count"].astype("Int64").astype(str) + "F",
            STATUS=city.spans["status"].map({"in_service": "Active", "planned": "Proposed",
                                             "retired": "Abandoned"}))[
            ["CABLE_ID", "CABLE_SIZE", "STATUS", "geometry"]]
        pyogrio.write_dataframe(nodes, gpkg, layer="structures")
        pyogrio.write_dataframe(spans, gpkg, layer="cables")
        t3 = time.perf_counter()
        mapped = import_mapped([gpkg], parse_mapping(MAPPING))
        t4 = time.perf_counter()
        snapped = int(mapped.nodes["node_id"].str.startswith("snap-").sum())
        rows.append(("mapped import, every span end snapped (`import_mapped`)", t4 - t3))
    load = os.getloadavg()
    table = "\n".join(f"| {what} | {seconds:.2f} |" for what, seconds in rows)
    record("interop", f"""## interop

`.venv/bin/python -m benchmarks.bench_interop {n}`: `generate_city(premises={n:,}, seed=5)`,
{len(city.nodes):,} nodes and {len(city.spans):,} spans (OFDS files {size_mb:.1f} MiB).
The mapped import reads the spans from a GeoPackage without node ids and snaps both ends of
each to the nodes within 1 m ({snapped} new nodes were needed).

| step | seconds |
|---|---|
{table}

Peak RSS {peak_rss_mb():,.0f} MiB. Load average at the end {load[0]:.1f} (1 min),
{load[1]:.1f} (5 min) on 2 cores shared with other jobs.
""")


if __name__ == "__main__":
    main()
