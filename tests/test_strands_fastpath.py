"""The strand plant's terminals resolved column by column equal those resolved row by row.

Clean layers take the vectorised path of :func:`netgis.strand_plant._terminals`; any
problem sends them the row-by-row way, which names each one. Both must give the same
plant (terminal -> connection, terminal -> drop, cut positions) and the same warnings, on
random strand networks and on a generated city with strands.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import netgis.strand_plant as sp
from netgis.dataset import Dataset
from netgis.errors import Problem
from netgis.generate import generate_city
from netgis.io import read_dataset
from tests.strandnet import write_random_strand_dataset

Both = tuple[sp.StrandPlant, sp.StrandPlant, list[Problem], list[Problem]]


def _both(dataset: Dataset, tables: dict[str, pd.DataFrame],
          monkeypatch: pytest.MonkeyPatch) -> Both:
    by_columns = sp.StrandReport()
    fast = sp.build_plant(dataset, tables, by_columns)
    with monkeypatch.context() as m:
        m.setattr(sp, "_clean_terminals", lambda plant, warnings: False)
        by_rows = sp.StrandReport()
        slow = sp.build_plant(dataset, tables, by_rows)
    return fast, slow, by_columns.warnings + by_columns.errors, by_rows.warnings + by_rows.errors


@pytest.mark.parametrize("seed", range(8))
def test_random_networks(seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = read_dataset(write_random_strand_dataset(tmp_path / "net", seed))
    assert ds.strands
    fast, slow, fast_problems, slow_problems = _both(ds, ds.strands, monkeypatch)
    assert fast.conn_at == slow.conn_at
    assert fast.drop_at == slow.drop_at
    assert fast.cuts == slow.cuts
    assert fast_problems == slow_problems


def test_generated_city(monkeypatch: pytest.MonkeyPatch) -> None:
    ds = generate_city(premises=4000, seed=5, strands=True)
    assert ds.strands
    fast, slow, fast_problems, slow_problems = _both(ds, ds.strands, monkeypatch)
    assert len(fast.conn_at) > 1000 and len(fast.drop_at) > 100
    assert (fast.conn_at, fast.drop_at, fast.cuts) == (slow.conn_at, slow.drop_at, slow.cuts)
    assert fast_problems == slow_problems


def test_a_problem_takes_the_row_way(monkeypatch: pytest.MonkeyPatch) -> None:
    """One connection naming a strand its cable lacks: the column path declines, and the
    row path names the row, the field and the reason."""
    ds = generate_city(premises=2000, seed=5, strands=True)
    tables = {name: frame.copy() for name, frame in ds.strands.items()}
    conns = tables["connections"]
    row = conns.index[conns["a_type"] == "strand"][0]
    conns.loc[row, "a_num"] = 10_000
    report = sp.StrandReport()
    plant = sp.build_plant(ds, tables, report)
    assert not sp._clean_terminals(plant, [])
    assert any(p.layer == "connections" and p.id == conns.loc[row, "connection_id"]
               and p.field == "a_num" and "outside" in p.reason for p in report.errors)
