"""A small valid strand plant on :func:`tests.storage.helpers.chain_dataset` (3 spans), for the
storage and API tests of the strand layers.

The route: n0 (core) - s0 - n1 - s1 - n2 - s2 - n3, premises p0, p1, p2. The glass: cable C1
(12 strands) along s0, s1, s2; OLT port P1 at n0 on strand 1 by a connector; at n2 strand 1
spliced into splitter SP1 (1:8), whose outputs 1 and 2 feed drops D1 (p2) and D2 (p1);
strand 12 reserved. Values are text, as a CSV file gives them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from netgis.dataset import Dataset
from netgis.schema import STRAND_LAYERS
from tests.storage.helpers import chain_dataset


def frame(layer: str, rows: Sequence[Sequence[Any]]) -> pd.DataFrame:
    """Rows of ``layer`` in contract field order, as object columns."""
    names = STRAND_LAYERS[layer].field_names
    return pd.DataFrame([dict(zip(names, row, strict=True)) for row in rows],
                        columns=names, dtype=object)


def strand_tables() -> dict[str, pd.DataFrame]:
    """The seven strand layers of the plant described above (raw, as read from CSV)."""
    return {
        "cables": frame("cables", [("C1", "n0", "n3", "12", None, None, "trunk", "2021")]),
        "cable_spans": frame("cable_spans", [("C1", "1", "s0"), ("C1", "2", "s1"),
                                             ("C1", "3", "s2")]),
        "splitters": frame("splitters", [("SP1", "n2", "8", None, None)]),
        "olt_ports": frame("olt_ports", [("P1", "n0", "OLT1")]),
        "connections": frame("connections", [
            ("K1", "n0", "connector", "olt", "P1", None, None, "strand", "C1", "1", None, None),
            ("K2", "n2", "splice", "strand", "C1", "1", "from", "in", "SP1", "1", None, "0.05"),
        ]),
        "drops": frame("drops", [("D1", "p2", "n2", "out", "SP1", "1", None, "40"),
                                 ("D2", "p1", "n2", "out", "SP1", "2", None, None)]),
        "strand_state": frame("strand_state", [("C1", "12", "reserved")]),
    }


def route() -> Dataset:
    """The route layers the plant lies on."""
    return chain_dataset(3)


#: Rows of each layer in the plant, by feature id.
IDS: dict[str, list[str]] = {
    "cables": ["C1"], "cable_spans": ["C1:1", "C1:2", "C1:3"], "splitters": ["SP1"],
    "olt_ports": ["P1"], "connections": ["K1", "K2"], "drops": ["D1", "D2"],
    "strand_state": ["C1:12"],
}
