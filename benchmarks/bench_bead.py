"""Throughput of reading and classing FCC BDC availability rows (netgis.products.bead).

Run: ``.venv/bin/python -m benchmarks.bench_bead``. Generates a CSV in the FCC
public layout (1 M rows over 250 k locations by default) in a temporary
directory, streams it through :func:`netgis.products.bead.read_availability` and
records rows/s and peak memory in benchmarks/RESULTS.md (section ``bead``).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks._record import peak_rss_mb, record
from netgis.products.bead import AVAILABILITY_COLUMNS, read_availability


def write_csv(path: Path, rows: int, locations: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    chunk = 250_000
    with path.open("w") as f:
        f.write(",".join(AVAILABILITY_COLUMNS) + "\n")
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            frame = pd.DataFrame({
                "location_id": 1_000_000_000 + rng.integers(0, locations, n),
                "technology": rng.choice([10, 40, 50, 60, 61, 70, 71, 72], n),
                "max_advertised_download_speed": rng.choice([10, 25, 100, 300, 1000], n),
                "max_advertised_upload_speed": rng.choice([1, 3, 20, 35, 1000], n),
                "low_latency": rng.choice([0, 1], n, p=[0.1, 0.9]),
                "provider_id": rng.integers(130000, 140000, n),
                "brand_name": "Example Broadband",
                "business_residential_code": rng.choice(["R", "B", "X"], n),
                "state_usps": "NY",
                "block_geoid": "360010001001000",
                "h3_res8_id": "882a100d2dfffff",
            })
            frame.to_csv(f, header=False, index=False)


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    locations = rows // 4
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "availability.csv"
        t0 = time.perf_counter()
        write_csv(path, rows, locations)
        gen_s = time.perf_counter() - t0
        size_mb = path.stat().st_size / 2**20
        rss_before = peak_rss_mb()
        t0 = time.perf_counter()
        avail = read_availability(path)
        read_s = time.perf_counter() - t0
        rss_after = peak_rss_mb()
    counts = np.bincount(avail.best.to_numpy(dtype=np.int64), minlength=3)
    record("bead", f"""## bead: FCC BDC availability read and classification

`.venv/bin/python -m benchmarks.bench_bead` ({rows:,} rows, {locations:,} distinct
location ids, {size_mb:.0f} MiB CSV in the FCC public layout, generated in {gen_s:.1f} s).

| step | time | rows/s |
|---|---|---|
| `read_availability` (stream, validate, class, best per location) | {read_s:.2f} s \
| {rows / read_s:,.0f} |

Locations classed: {len(avail.best):,} (served {counts[2]:,}, underserved {counts[1]:,},
unserved {counts[0]:,}); counted rows {avail.counted_rows:,}. Peak RSS of the process
{rss_after:.0f} MiB (before the read: {rss_before:.0f} MiB, which includes generating the CSV
with pandas). Memory follows the number of distinct locations, not of rows.
""")


if __name__ == "__main__":
    main()
