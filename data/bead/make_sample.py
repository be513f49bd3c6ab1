"""Make the small BEAD sample inputs over data/sample.gpkg.

Run from the repository root: ``python data/bead/make_sample.py``. It writes

- ``fabric.csv``: 36 Fabric locations (``location_id``, address, units, ...,
  ``latitude``, ``longitude``) at premises of the sample, with their location_ids:
  12 the plant passes within the optical budget (GPON class B+, 28 dB), 4 it passes
  beyond it, 12 within the BEAD reach (500 m) but not passed and 8 beyond that reach
  (the far hamlet);
- ``availability.csv``: provider records in the layout of the FCC Broadband Data
  Collection public availability CSV, one of the :data:`OFFERS` patterns per location
  in turn, so that every class meets every plant class, plus two records for
  locations that are not in the Fabric.

Providers, FRNs, block GEOIDs and the state code ``XX`` are made up; the H3 cells are
those of the positions. The output is deterministic (same input, same files).
"""

from __future__ import annotations

import csv
from pathlib import Path

import geopandas as gpd
import h3
import pandas as pd

from netgis.engine.analysis import analyze
from netgis.io import read_dataset

HERE = Path(__file__).resolve().parent
SAMPLE = HERE.parent / "sample.gpkg"
#: brand_name -> (frn, provider_id)
PROVIDERS = {"Sample Fiber": ("0012345678", "130001"), "Sample Cable": ("0023456789", "130002"),
             "Sample DSL": ("0034567890", "130003"), "Sample Air": ("0045678901", "130004"),
             "Sample Sky": ("0056789012", "130005"), "Sample Orbit": ("0067890123", "130006")}
#: One pattern per location in turn: its records (brand, technology, down, up, low_latency)
#: and the class the rules give it.
OFFERS: list[tuple[str, list[tuple[str, int, float, float, int]]]] = [
    ("served: fiber 1000/1000", [("Sample Fiber", 50, 1000, 1000, 1)]),
    ("underserved: cable 50/10", [("Sample Cable", 40, 50, 10, 1)]),
    ("underserved: licensed wireless 200/2 alone is unserved, DSL 30/5 is underserved",
     [("Sample Air", 71, 200, 2, 1), ("Sample DSL", 10, 30, 5, 1)]),
    ("unserved: DSL 10/1", [("Sample DSL", 10, 10, 1, 1)]),
    ("unserved: only records that do not count (satellite, unlicensed wireless, "
     "low_latency 0)", [("Sample Sky", 60, 100, 20, 0), ("Sample Orbit", 61, 220, 25, 1),
                        ("Sample Air", 70, 150, 25, 1), ("Sample Cable", 40, 300, 30, 0)]),
    ("served: the best record wins (DSL 10/1, cable 300/30)",
     [("Sample DSL", 10, 10, 1, 1), ("Sample Cable", 40, 300, 30, 1)]),
    ("unserved: no record at all", []),
]
#: Availability records for locations that are not in the Fabric file.
ELSEWHERE = [("1199999998", ("Sample Fiber", 50, 1000, 1000, 1)),
             ("1199999999", ("Sample DSL", 10, 25, 3, 1))]
AVAILABILITY = ["frn", "provider_id", "brand_name", "location_id", "technology",
                "max_advertised_download_speed", "max_advertised_upload_speed", "low_latency",
                "business_residential_code", "state_usps", "block_geoid", "h3_res8_id"]
FABRIC = ["location_id", "address_primary", "city", "state", "zip", "unit_count", "bsl_flag",
          "building_type_code", "block_geoid", "h3_9", "latitude", "longitude"]


def chosen_premises() -> gpd.GeoDataFrame:
    """12 passed within budget, 4 passed beyond it, 12 reachable and 8 beyond-reach
    premises, the first of each in id order, in WGS84; none within 1 m of the drop length
    or the reach, nor within 0.5 dB of the budget (rounding stays clear)."""
    dataset = read_dataset(SAMPLE)
    premises = analyze(dataset).premises.sort_values("premise_id")
    d = premises["distance_m"]
    clear = ((d - 150).abs() > 1) & ((d - 500).abs() > 1)
    passed = premises["passed"] & clear & (premises["margin_db"].abs() > 0.5)
    groups = [premises[passed & premises["in_budget"]].head(12),
              premises[passed & ~premises["in_budget"]].head(4),
              premises[~premises["passed"] & (d <= 500) & clear].head(12),
              premises[~premises["passed"] & (d > 500) & clear].head(8)]
    frame = gpd.GeoDataFrame(pd.concat(groups), crs=premises.crs)
    return frame.to_crs(4326)


def block_geoid(i: int) -> str:
    """The made-up census block GEOID of the ``i``-th location: eight locations a block."""
    return f"99001000100{i // 8:04d}"


def main(out_dir: Path = HERE) -> None:
    """Write ``fabric.csv`` and ``availability.csv`` into ``out_dir`` (default: beside this
    script, where they ship)."""
    premises = chosen_premises()
    fabric_rows, records = [], []
    for i, (_, p) in enumerate(premises.iterrows()):
        lon, lat = round(p.geometry.x, 7), round(p.geometry.y, 7)
        kind = "B" if p["kind"] == "business" else "R"
        fabric_rows.append([p["location_id"], p["address"], "Sample City", "XX", "99001",
                            int(p["units"]), "True", kind, block_geoid(i),
                            h3.latlng_to_cell(lat, lon, 9), f"{lat:.7f}", f"{lon:.7f}"])
        for brand, tech, down, up, low in OFFERS[i % len(OFFERS)][1]:
            records.append([*PROVIDERS[brand], brand, p["location_id"], tech, down, up, low,
                            kind, "XX", block_geoid(i), h3.latlng_to_cell(lat, lon, 8)])
    for location_id, (brand, tech, down, up, low) in ELSEWHERE:
        records.append([*PROVIDERS[brand], brand, location_id, tech, down, up, low, "R", "XX",
                        block_geoid(99), h3.latlng_to_cell(50.1, 8.7, 8)])
    for name, header, rows in (("fabric.csv", FABRIC, fabric_rows),
                               ("availability.csv", AVAILABILITY, records)):
        with (out_dir / name).open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(rows)


if __name__ == "__main__":
    main()
