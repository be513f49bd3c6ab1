"""Rule 8's closed loops of glass on random networks: rings spliced into valid networks
are found, the first by the layers' order is the one named, and no ring means no error.

The rings are made where nothing else is: two strands of one cable that no connection
or drop names, spliced together at both ends of the cable (two pieces, two
connections). Which piece comes first follows from the tables alone: the cables in
their layer's order, then the lower strand number, from the cable's start.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from netgis.io import read_dataset
from netgis.strand_plant import validate_strands
from tests.strandnet import random_strand_network, write_strand_dataset


def _named_strands(strands: dict[str, pd.DataFrame]) -> set[tuple[str, int]]:
    """(cable, strand) of every strand terminal a connection or a drop names."""
    named: set[tuple[str, int]] = set()
    conns, drops = strands["connections"], strands["drops"]
    for prefix, frame in (("a", conns), ("b", conns), ("src", drops)):
        for kind, cable, num in zip(frame[f"{prefix}_type"], frame[f"{prefix}_id"],
                                    frame[f"{prefix}_num"], strict=True):
            if kind == "strand":
                named.add((str(cable), int(num)))
    return named


def _with_rings(strands: dict[str, pd.DataFrame], rng: random.Random, count: int
                ) -> tuple[dict[str, pd.DataFrame], list[tuple[str, int, str]]]:
    """``strands`` with up to ``count`` rings spliced in; each ring's first piece as
    (cable, strand, start node)."""
    named = _named_strands(strands)
    cables = strands["cables"]
    candidates: list[tuple[str, list[int], str, str]] = []
    for row in cables.to_dict("records"):
        free = [k for k in range(1, int(row["fiber_count"]) + 1)
                if (row["cable_id"], k) not in named]
        if len(free) >= 2:
            candidates.append((row["cable_id"], free, row["from_node"], row["to_node"]))
    rows: list[dict[str, Any]] = []
    rings: list[tuple[str, int, str]] = []
    for cable, free, start, end in rng.sample(candidates, min(count, len(candidates))):
        k, j = sorted(rng.sample(free, 2))
        for node in (start, end):
            rows.append({"connection_id": f"ring{len(rows)}", "node_id": node,
                         "kind": "splice", "a_type": "strand", "a_id": cable, "a_num": k,
                         "b_type": "strand", "b_id": cable, "b_num": j})
        rings.append((cable, k, start))
    out = dict(strands)
    if rows:
        out["connections"] = pd.concat([strands["connections"], pd.DataFrame(rows)],
                                       ignore_index=True)
    return out, rings


def _loop_errors(tmp_path: Path, route: Any, strands: dict[str, pd.DataFrame]) -> list[str]:
    # the route alone is read (its strand layers empty); the strand tables are checked here
    dataset = read_dataset(write_strand_dataset(tmp_path, route, {}))
    report = validate_strands(dataset, strands)
    return [p.reason for p in report.errors if "loop of glass" in p.reason]


@pytest.mark.parametrize("seed", range(10))
def test_rings_are_found_and_the_first_is_named(tmp_path: Path, seed: int) -> None:
    route, strands = random_strand_network(seed)
    assert _loop_errors(tmp_path / "plain", route, strands) == []
    rng = random.Random(seed)
    ringed, rings = _with_rings(strands, rng, rng.randint(1, 3))
    if not rings:
        pytest.skip("no cable with two free strands")
    order = {c: i for i, c in enumerate(strands["cables"]["cable_id"])}
    cable, k, node = min(rings, key=lambda r: (order[r[0]], r[1]))
    assert _loop_errors(tmp_path / "ringed", route, ringed) == [
        f"a closed loop of glass through strand:{cable}:{k}:to at node {node}"]
