"""The design-plan acceptance run at scale, through the command line as a planner runs it.

A city of ``netgis generate --premises N --seed 61`` is loaded into a new SpatiaLite
file (``netgis db load``); then ``netgis plan create``, ``netgis plan build --top 5``,
``netgis plan kpis``, ``netgis plan export`` and ``netgis analyze`` of the exported file
(the plan's KPIs must equal it: counts exactly, floats to 1e-9 relative); main's
``kpis.json`` from ``netgis analyze --db`` before and after all plan work (must be
byte-identical); ``netgis plan merge`` and ``netgis analyze --db`` again (main's KPIs
must now equal the plan's). Every step is timed; the figures go to
benchmarks/RESULTS.md (section ``plans_cli``). The small version is
``tests/test_plans_cli.py``.

Run: ``.venv/bin/python -m benchmarks.bench_plans_cli [PREMISES]`` (default 200,000).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._record import record

NETGIS = Path(sys.executable).with_name("netgis")
SEED = 61


def _run(times: dict[str, float], step: str, *args: str | Path, url: str) -> Any:
    t = time.perf_counter()
    done = subprocess.run([str(NETGIS), *map(str, args)], capture_output=True, text=True,
                          env={"NETGIS_DATABASE_URL": url, "PATH": "/usr/bin:/bin"},
                          check=False)
    times[step] = time.perf_counter() - t
    if done.returncode != 0:
        raise SystemExit(f"{step}: exit {done.returncode}\n{done.stderr[-3000:]}")
    try:
        return json.loads(done.stdout)
    except ValueError:
        return done.stdout


def _unequal(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    def same(x: Any, y: Any) -> bool:
        if isinstance(x, float) or isinstance(y, float):
            return x is not None and y is not None and math.isclose(x, y, rel_tol=1e-9,
                                                                    abs_tol=1e-9)
        return bool(x == y)

    bad = [k for k in b["network"] if not same(a["network"].get(k), b["network"][k])]
    for x, y in zip(a["areas"], b["areas"], strict=True):
        bad += [f"{y['area_id']}.{k}" for k in y if not same(x.get(k), y[k])]
    return bad


def main(premises: int = 200_000) -> None:
    """Run the acceptance flow on a ``premises`` city and record its figures."""
    times: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="netgis-plans-cli-") as tmp:
        folder = Path(tmp)
        url = f"sqlite:///{folder / 'city.db'}"
        city = folder / "city.gpkg"
        _run(times, "generate", "generate", "--premises", str(premises), "--seed", str(SEED),
             "--out", city, url=url)
        _run(times, "db load", "db", "load", city, url=url)
        _run(times, "analyze --db (main, before)", "analyze", "--db", "--out",
             folder / "main0", url=url)
        before = (folder / "main0" / "kpis.json").read_bytes()
        _run(times, "plan create", "plan", "create", "top5", url=url)
        built = _run(times, "plan build --top 5", "plan", "build", "top5", "--top", "5",
                     url=url)
        plan_kpis = _run(times, "plan kpis", "plan", "kpis", "top5", url=url)
        _run(times, "plan export", "plan", "export", "top5", "--out", folder / "plan.gpkg",
             url=url)
        _run(times, "analyze (the exported file)", "analyze", folder / "plan.gpkg", "--out",
             folder / "planned", url=url)
        exported = json.loads((folder / "planned" / "kpis.json").read_text())
        bad = _unequal(plan_kpis, exported)
        assert not bad, bad
        _run(times, "analyze --db (main, after plan work)", "analyze", "--db", "--out",
             folder / "main1", url=url)
        untouched = (folder / "main1" / "kpis.json").read_bytes() == before
        assert untouched
        _run(times, "plan merge", "plan", "merge", "top5", url=url)
        _run(times, "analyze --db (main, merged)", "analyze", "--db", "--out",
             folder / "main2", url=url)
        merged_bad = _unequal(json.loads((folder / "main2" / "kpis.json").read_text()),
                              plan_kpis)
        assert not merged_bad, merged_bad
    gained = plan_kpis["network"]["premises_passed"] - json.loads(before)["network"][
        "premises_passed"]
    lines = [f"The plan acceptance run through the command line on a {premises:,}-premise city "
             f"(`netgis generate --seed {SEED}`, SpatiaLite): `netgis plan build --top 5` added "
             f"clusters {', '.join(built['clusters'])} ({built['spans']} spans, "
             f"{built['nodes']} nodes; {gained:,} premises newly passed). The plan's KPIs "
             "equal `netgis analyze` of `netgis plan export`'s file (counts exact, floats to "
             "1e-9 relative); main's kpis.json is byte-identical before and after the plan "
             "work; after `netgis plan merge`, main's KPIs equal the plan's.",
             "| step | seconds |", "|---|---|"]
    lines += [f"| {step} | {seconds:.1f} |" for step, seconds in times.items()]
    lines.append(f"\nCommand: `.venv/bin/python -m benchmarks.bench_plans_cli {premises}`")
    record("plans_cli", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:2]))
