"""Throughput of the FCC BDC filing (netgis.products.bdc) once the analysis is done.

Run: ``.venv/bin/python -m benchmarks.bench_bdc [PREMISES]`` (default 1,000,000). Makes
analysed premises (each with a Fabric location_id, 90 % passed, 95 % of those within
the budget, a few locations shared by two premises) and a Fabric CSV holding their
locations and 10 % more, then times reading the Fabric file, the filing and writing the
four files; records the figures in benchmarks/RESULTS.md (section ``bdc``). The
analysis itself is measured by bench_analyze.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks._record import peak_rss_mb, record
from netgis.products.bdc import Offer, bdc_filing, read_fabric, write_bdc


def inputs(n: int, folder: Path, seed: int = 0) -> tuple[pd.DataFrame, Path]:
    """Analysed premises and the path of a Fabric CSV of their locations and more."""
    rng = np.random.default_rng(seed)
    location = 1_000_000_000 + np.arange(n)
    location[1::50] = location[::50][: len(location[1::50])]  # 1 in 50 shares a location
    passed = rng.random(n) < 0.9
    premises = pd.DataFrame({
        "premise_id": [f"p{i}" for i in range(n)],
        "location_id": location.astype(str).astype(object),
        "passed": passed,
        "in_budget": passed & (rng.random(n) < 0.95),
    })
    ids = np.unique(np.concatenate([location, 1_500_000_000 + np.arange(n // 10)]))
    fabric = pd.DataFrame({"location_id": ids, "address_primary": "1 Main St",
                           "city": "Sample City", "state": "XX", "zip": "99001",
                           "unit_count": 1, "bsl_flag": np.where(ids % 97 == 0, "False", "True"),
                           "latitude": 40.1, "longitude": -75.2})
    path = folder / "fabric.csv"
    fabric.to_csv(path, index=False)
    return premises, path


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        premises, path = inputs(n, folder)
        size_mb = path.stat().st_size / 2**20
        t0 = time.perf_counter()
        fabric = read_fabric(path)
        read_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = bdc_filing(premises, fabric, Offer(provider_id="131425", brand_name="Acme"))
        filing_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        write_bdc(result, folder / "out")
        write_s = time.perf_counter() - t0
        out_mb = (folder / "out" / "bdc_availability.csv").stat().st_size / 2**20
    s = result.summary
    record("bdc", f"""## bdc: the FCC BDC fixed availability filing

`.venv/bin/python -m benchmarks.bench_bdc` ({n:,} analysed premises, a Fabric CSV of
{len(fabric):,} locations, {size_mb:.0f} MiB; the analysis itself is not timed here).

| step | time | locations/s |
|---|---|---|
| `read_fabric` (parse, check every id and bsl_flag) | {read_s:.2f} s | \
{len(fabric) / read_s:,.0f} |
| `bdc_filing` (match, reasons, summary) | {filing_s:.2f} s | {len(fabric) / filing_s:,.0f} |
| `write_bdc` (four files, all or nothing) | {write_s:.2f} s | {len(fabric) / write_s:,.0f} |

Filed {s['filed']:,} locations ({out_mb:.0f} MiB), left out {s['left_out']:,}
({', '.join(f'{k} {v:,}' for k, v in s['left_out_by_reason'].items())}). Peak RSS of the
process {peak_rss_mb():.0f} MiB, making the inputs included. Load average during the run
{os.getloadavg()[0]:.1f} on this 2-core machine (other jobs ran beside it).
""")


if __name__ == "__main__":
    main()
