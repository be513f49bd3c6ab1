"""Cost of naming the plant by street and area, and of backfilling the KPI history.

Run: ``.venv/bin/python -m benchmarks.bench_names [PREMISES] [BACKFILL_PREMISES]``
(defaults 1,000,000 and 100,000). Generates a city with its streets and times
:func:`netgis.products.names.place_names` (every span and node: one STRtree query for
the streets, one covers query per area) on the first, and
:func:`netgis.products.backfill.estimate_history` (one analysis per year in which spans
were installed) on the second; records the figures in benchmarks/RESULTS.md (section
``names``).
"""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime

from benchmarks._record import peak_rss_mb, record
from netgis.generate import generate_city
from netgis.products.backfill import estimate_history
from netgis.products.names import place_names


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    m = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    city = generate_city(premises=n, seed=1)
    assert city.streets is not None
    t0 = time.perf_counter()
    names = place_names(city)
    names_s = time.perf_counter() - t0
    named = float(names.spans["street"].notna().mean())
    small = generate_city(premises=m, seed=1)
    t0 = time.perf_counter()
    history = estimate_history(small, before=datetime(2026, 1, 1, tzinfo=UTC))
    backfill_s = time.perf_counter() - t0
    record("names", f"""## names: spans and builds by street and area; the estimated history

`.venv/bin/python -m benchmarks.bench_names {n} {m}`

| step | input | time |
|---|---|---|
| `place_names` (every span and node: street and area) | {len(city.spans):,} spans, \
{len(city.nodes):,} nodes, {len(city.streets):,} streets, {len(city.areas)} areas \
({n:,} premises) | {names_s:.2f} s |
| `estimate_history` (`netgis kpis backfill` without the database) | {m:,} premises, \
{len(history.points)} years, {history.analyses} analyses | {backfill_s:.1f} s |

{named:.1%} of the spans got a street within 60 m. Peak RSS {peak_rss_mb():.0f} MiB.
Load average during the run {os.getloadavg()[0]:.1f} on this 2-core machine (other jobs
ran beside it).
""")


if __name__ == "__main__":
    main()
