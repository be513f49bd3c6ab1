"""The generator's strand-level plant (``netgis generate --strands``), checked plainly.

The strand layers are read back from what the generator wrote and checked here with
plain Python, rule by rule (the validation errors 1-8 of the strand model: ids and
ranges, cable paths, references, terminals at the right node, sides, terminals used
once, no self-connection, no loop of glass), by walking the glass from every OLT port
to the premises, and against the route layers (span counts). Without ``--strands``
nothing of it is written and the route layers are those of a ``--strands`` run but
for ``fiber_count`` and ``fibers_used``.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from netgis.generate import generate_city, write_city
from netgis.io import validate_path
from netgis.io.strands import read_strand_tables
from netgis.schema import STRAND_LAYERS

ROUTE = ("nodes", "spans", "premises", "areas")
RATIOS = {2, 4, 8, 16, 32, 64, 128}
# a small city with two long rural runs (GeoPackage); a sparse one on a big grid with two
# cores, five rural runs and cascades (a directory of GeoParquet files and strand CSVs)
CITIES = {"gpkg": ("city.gpkg", {"premises": 6000, "seed": 1}),
          "parquet": ("city.parquet", {"premises": 20_000, "spans": 13_000, "seed": 3})}


def _route_layer(path: Path, name: str) -> gpd.GeoDataFrame:
    if path.suffix == ".gpkg":
        return pyogrio.read_dataframe(path, layer=name)
    return gpd.read_parquet(path / f"{name}.parquet")


def _int(v: Any) -> int | None:
    return None if v is None else int(v)


def _rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts of plain values (text as read; numbers as int or float; missing None)."""
    out = []
    for rec in frame.to_dict("records"):
        out.append({k: (None if v is None or (isinstance(v, float) and v != v) else v)
                    for k, v in rec.items()})
    return out


class Written:
    """A generated city with strands, read back from the file the generator wrote."""

    def __init__(self, path: Path, summary: dict[str, Any]) -> None:
        self.path, self.summary = path, summary
        self.tables = read_strand_tables(path)
        self.nodes = _route_layer(path, "nodes")
        self.spans = _route_layer(path, "spans")
        self.premises = _route_layer(path, "premises")
        t = {name: _rows(frame) for name, frame in self.tables.items()}
        self.cables = {r["cable_id"]: r for r in t["cables"]}
        self.splitters = {r["splitter_id"]: r for r in t["splitters"]}
        self.ports = {r["olt_port_id"]: r for r in t["olt_ports"]}
        self.connections = t["connections"]
        self.drops = t["drops"]
        self.states = t["strand_state"]
        self.cable_spans = t["cable_spans"]
        self.node_kind = dict(zip(self.nodes["node_id"], self.nodes["kind"], strict=True))
        self.node_ratio = {n: (None if pd.isna(r) else int(r)) for n, r in
                           zip(self.nodes["node_id"], self.nodes["split_ratio"], strict=True)}
        self.span_ends = {s: (a, b) for s, a, b in zip(self.spans["span_id"],
                                                       self.spans["from_node"],
                                                       self.spans["to_node"], strict=True)}
        self.path_spans: dict[str, list[str]] = defaultdict(list)  # cable -> spans by seq
        for r in sorted(self.cable_spans, key=lambda r: (r["cable_id"], int(r["seq"]))):
            self.path_spans[r["cable_id"]].append(r["span_id"])
        self.paths: dict[str, list[str]] = {}  # cable -> its nodes v0..vn, as far as they go
        for cable_id, cable in self.cables.items():
            nodes = [cable["from_node"]]
            for span in self.path_spans[cable_id]:
                a, b = self.span_ends[span]
                nodes.append(b if nodes[-1] == a else a)
            self.paths[cable_id] = nodes

    def terminals(self) -> list[tuple[str, dict[str, Any], str]]:
        """(node, terminal fields, where) of every terminal a connection or drop names."""
        out = []
        for c in self.connections:
            for end in ("a", "b"):
                out.append((c["node_id"], {"type": c[f"{end}_type"], "id": c[f"{end}_id"],
                                           "num": _int(c[f"{end}_num"]),
                                           "side": c[f"{end}_side"]}, c["connection_id"]))
        for d in self.drops:
            out.append((d["node_id"], {"type": d["src_type"], "id": d["src_id"],
                                       "num": _int(d["src_num"]), "side": d["src_side"]},
                        d["drop_id"]))
        return out

    def key(self, node: str, t: dict[str, Any]) -> tuple[Any, ...]:
        """A terminal as a tuple; a strand's side filled in at its cable's ends."""
        if t["type"] != "strand":
            return (t["type"], t["id"], t["num"])
        path = self.paths[t["id"]]
        side = t["side"] or ("to" if node == path[0] else "from")
        return ("strand", t["id"], t["num"], node, side)


@pytest.fixture(scope="module", params=sorted(CITIES))
def city(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Written:
    name, kwargs = CITIES[request.param]
    out = tmp_path_factory.mktemp(f"strands-{request.param}") / name
    return Written(out, write_city(out, strands=True, **kwargs))


def test_the_seven_layers_are_written_with_their_contract_columns(city: Written) -> None:
    assert set(city.tables) == set(STRAND_LAYERS)
    for name, layer in STRAND_LAYERS.items():
        frame = city.tables[name]
        assert list(frame.columns) == list(layer.field_names)
        assert len(frame) == city.summary[name] > 0, name
    if city.path.is_dir():
        assert sorted(p.name for p in city.path.glob("*.csv")) == sorted(
            f"{name}.csv" for name in STRAND_LAYERS)


def test_ids_values_and_ranges_rule_1(city: Written) -> None:
    for name, field in (("cables", "cable_id"), ("splitters", "splitter_id"),
                        ("olt_ports", "olt_port_id"), ("connections", "connection_id"),
                        ("drops", "drop_id")):
        ids = city.tables[name][field].tolist()
        assert len(ids) == len(set(ids)) and None not in ids, name
        for f in STRAND_LAYERS[name].fields:
            if f.required:
                assert city.tables[name][f.name].notna().all(), (name, f.name)
    for c in city.cables.values():
        count = int(c["fiber_count"])
        assert count >= 1 and c["status"] == "in_service"
        assert int(c["fibers_per_tube"]) in (12, count)
    for s in city.splitters.values():
        assert int(s["ratio"]) in RATIOS and int(s["inputs"]) == 1
    for c in city.connections:
        assert c["kind"] in ("splice", "connector")
        assert c["loss_db"] is None or float(c["loss_db"]) >= 0  # rule 7: no negative loss
    for _node, t, _ in city.terminals():
        assert t["side"] in (None, "to", "from")
        if t["type"] == "strand":
            assert 1 <= t["num"] <= int(city.cables[t["id"]]["fiber_count"])
        elif t["type"] == "out":
            assert 1 <= t["num"] <= int(city.splitters[t["id"]]["ratio"])
        elif t["type"] == "in":
            assert t["num"] == 1
        else:
            assert t["type"] == "olt" and t["num"] is None and t["side"] is None
    assert {d["src_type"] for d in city.drops} <= {"strand", "out"}
    pairs = [(s["cable_id"], int(s["strand"])) for s in city.states]
    assert len(pairs) == len(set(pairs))
    assert {s["state"] for s in city.states} == {"reserved", "broken"}
    for cable, strand in pairs:
        assert 1 <= strand <= int(city.cables[cable]["fiber_count"])


def test_cable_paths_are_continuous_and_visit_each_node_once_rule_2(city: Written) -> None:
    rows: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for r in city.cable_spans:
        rows[r["cable_id"]].append((int(r["seq"]), r["span_id"]))
    assert set(rows) == set(city.cables)
    status = dict(zip(city.spans["span_id"], city.spans["status"], strict=True))
    for cable_id, cable in city.cables.items():
        seqs = sorted(rows[cable_id])
        assert [s for s, _ in seqs] == list(range(1, len(seqs) + 1))
        node = cable["from_node"]
        nodes = [node]
        for _, span in seqs:
            a, b = city.span_ends[span]
            assert node in (a, b), (cable_id, span)
            node = b if node == a else a
            assert node not in nodes, (cable_id, node)
            nodes.append(node)
            assert status[span] == "in_service"  # no in-service cable on other spans
        assert node == cable["to_node"]
        assert nodes == city.paths[cable_id]


def test_references_nodes_and_sides_rules_3_to_5(city: Written) -> None:
    premises = set(city.premises["premise_id"])
    for s in city.splitters.values():  # rule 3; and no splitter away from a matching node
        assert city.node_kind[s["node_id"]] == "splitter"
        assert city.node_ratio[s["node_id"]] == int(s["ratio"])
    for p in city.ports.values():
        assert city.node_kind[p["node_id"]] == "core"
    ratios = defaultdict(set)
    for s in city.splitters.values():
        ratios[s["node_id"]].add(int(s["ratio"]))
    for node, ratio_set in ratios.items():
        assert city.node_ratio[node] in ratio_set
    assert {d["premise_id"] for d in city.drops} <= premises
    for node, t, where in city.terminals():
        assert node in city.node_kind, where
        if t["type"] == "strand":
            path = city.paths[t["id"]]
            assert node in path, where  # rule 4
            if node not in (path[0], path[-1]):
                assert t["side"] in ("to", "from"), where  # rule 5: given at interior nodes
            elif node == path[0]:
                assert t["side"] in (None, "to"), where  # rule 5: only "to" at v0
            else:
                assert t["side"] in (None, "from"), where
        elif t["type"] in ("in", "out"):
            assert city.splitters[t["id"]]["node_id"] == node, where
        else:
            assert city.ports[t["id"]]["node_id"] == node, where


def test_each_terminal_is_used_once_and_never_joined_to_itself_rules_6_7(city: Written) -> None:
    used = Counter(city.key(node, t) for node, t, _ in city.terminals())
    assert max(used.values()) == 1, used.most_common(3)
    for c in city.connections:
        a = city.key(c["node_id"], {"type": c["a_type"], "id": c["a_id"],
                                    "num": _int(c["a_num"]), "side": c["a_side"]})
        b = city.key(c["node_id"], {"type": c["b_type"], "id": c["b_id"],
                                    "num": _int(c["b_num"]), "side": c["b_side"]})
        assert a != b
        if c["a_type"] == c["b_type"] == "strand":
            assert c["a_id"] != c["b_id"]  # no splice between two strands of one cable


def _glass(city: Written) -> tuple[dict[tuple[Any, ...], Any], dict[tuple[Any, ...], list[Any]]]:
    """What each terminal is joined to (a terminal or a premise), and each strand's cuts."""
    joined: dict[tuple[Any, ...], Any] = {}
    for c in city.connections:
        a = city.key(c["node_id"], {"type": c["a_type"], "id": c["a_id"],
                                    "num": _int(c["a_num"]), "side": c["a_side"]})
        b = city.key(c["node_id"], {"type": c["b_type"], "id": c["b_id"],
                                    "num": _int(c["b_num"]), "side": c["b_side"]})
        joined[a], joined[b] = b, a
    for d in city.drops:
        src = city.key(d["node_id"], {"type": d["src_type"], "id": d["src_id"],
                                      "num": _int(d["src_num"]), "side": d["src_side"]})
        joined[src] = ("premise", d["premise_id"])
    cuts: dict[tuple[Any, ...], list[Any]] = defaultdict(list)
    for t in joined:
        if t[0] == "strand":
            cuts[(t[1], t[2])].append(t[3])
    return joined, cuts


def _piece_end(city: Written, cuts: dict[tuple[Any, ...], list[Any]],
               t: tuple[Any, ...]) -> tuple[Any, ...]:
    """The terminal at the other end of the piece that strand terminal ``t`` starts."""
    _, cable, num, node, side = t
    path = city.paths[cable]
    at = {n: i for i, n in enumerate(path)}
    here = at[node]
    cut = sorted({0, len(path) - 1, *(at[n] for n in cuts[(cable, num)])})
    if side == "to":
        return ("strand", cable, num, path[min(i for i in cut if i > here)], "from")
    return ("strand", cable, num, path[max(i for i in cut if i < here)], "to")


def test_glass_from_every_olt_port_reaches_premises_without_a_loop_rule_8(city: Written) -> None:
    joined, cuts = _glass(city)
    outputs = defaultdict(list)
    for t in joined:
        if t[0] == "out":
            outputs[t[1]].append(t)
    seen: set[tuple[Any, ...]] = set()
    reached: Counter[str] = Counter()
    behind: Counter[int] = Counter()  # premises by the splitters on their path
    for port in sorted(city.ports):
        start = ("olt", port, None)
        assert start in joined, port  # every OLT port is connected
        stack = [(joined[start], 0)]
        while stack:
            t, splitters = stack.pop()
            if t[0] == "premise":
                reached[t[1]] += 1
                behind[splitters] += 1
                continue
            assert t not in seen, t  # a terminal reached twice: a loop or two feeds
            seen.add(t)
            if t[0] == "in":
                stack.extend((joined[o], splitters + 1) for o in sorted(outputs[t[1]]))
            elif t[0] == "strand":
                far = _piece_end(city, cuts, t)
                assert far not in seen, far
                seen.add(far)
                assert far in joined, far  # a lit strand end leads somewhere
                stack.append((joined[far], splitters))
            else:
                raise AssertionError(f"glass ends at {t}")  # an OLT port or a reversed splitter
    # every premise with a drop is lit once; every splitter input is lit
    assert set(reached) == {d["premise_id"] for d in city.drops}
    assert set(reached.values()) == {1}
    assert {("in", s, 1) for s in city.splitters} <= seen
    # point to point where the route has no splitter, one splitter, and cascades of two
    assert {0, 1, 2} <= set(behind)


def test_each_connected_premise_has_one_drop(city: Written) -> None:
    connected = set(city.premises.loc[city.premises["connected"].astype(bool), "premise_id"])
    dropped = Counter(d["premise_id"] for d in city.drops)
    assert set(dropped) == connected
    assert set(dropped.values()) == {1}
    # from the premise's nearest working plant node, never a core
    xy = dict(zip(city.nodes["node_id"], shapely.get_coordinates(city.nodes.geometry),
                  strict=True))
    where = dict(zip(city.premises["premise_id"], shapely.get_coordinates(
        city.premises.geometry), strict=True))
    for d in city.drops:
        assert city.node_kind[d["node_id"]] != "core"
        assert np.hypot(*(xy[d["node_id"]] - where[d["premise_id"]])) < 250 or \
            d["node_id"].startswith("nw")


def test_spans_agree_with_the_strands(city: Written) -> None:
    joined, cuts = _glass(city)
    state = {(s["cable_id"], int(s["strand"])) for s in city.states}
    total: Counter[str] = Counter()
    busy: Counter[str] = Counter()
    for cable_id, cable in city.cables.items():
        spans = city.path_spans[cable_id]
        for span in spans:
            total[span] += int(cable["fiber_count"])
        path = city.paths[cable_id]
        for num in range(1, int(cable["fiber_count"]) + 1):
            if (cable_id, num) in state:
                busy.update(spans)
                continue
            cut = sorted({0, len(path) - 1, *(path.index(n) for n in cuts[(cable_id, num)])})
            for lo, hi in itertools.pairwise(cut):  # a piece with a named end is busy
                ends = [("strand", cable_id, num, path[lo], "to"),
                        ("strand", cable_id, num, path[hi], "from")]
                if any(e in joined for e in ends):
                    busy.update(spans[lo:hi])
    spans = city.spans.set_index("span_id")
    live = spans.index[spans["status"] == "in_service"]
    assert set(total) == set(live)  # every span in service holds a cable, no other span does
    for span in live:
        assert spans.at[span, "fiber_count"] == total[span], span
        assert spans.at[span, "fibers_used"] == busy[span], span
    assert (spans["fibers_used"] <= spans["fiber_count"]).all()


def test_feeders_distribution_and_spares_are_sized_like_real_cables(city: Written) -> None:
    cables = city.tables["cables"]
    count = cables["fiber_count"].astype(int)
    feeder = cables["name"].notna()
    assert count[feeder].isin([48, 72, 96, 144, 192, 288]).all()
    assert (cables.loc[feeder, "fibers_per_tube"].astype(int) == 12).all()
    # feeders run from a core to a cabinet, distribution cables start at a root or splitter
    kinds = cables["from_node"].map(city.node_kind)
    assert set(kinds[feeder]) == {"core"}
    assert set(cables.loc[feeder, "to_node"].map(city.node_kind)) == {"cabinet"}
    assert count[~feeder].isin([12, 24, 48, 96, 144]).all()
    assert set(city.tables["connections"]["kind"]) == {"splice", "connector"}
    # several splitters at a busy splitter node
    assert len(city.splitters) > len({s["node_id"] for s in city.splitters.values()})
    # express passes: a strand running through an interior node with nothing there
    _, cuts = _glass(city)
    express = sum(len(city.paths[c]) - 2 - len({n for n in cuts[(c, k)]} - {
        city.paths[c][0], city.paths[c][-1]}) for (c, k) in cuts)
    assert express > 0


def test_without_strands_nothing_of_them_and_the_same_route(city: Written,
                                                           tmp_path: Path) -> None:
    name, kwargs = CITIES["gpkg" if city.path.suffix == ".gpkg" else "parquet"]
    plain = tmp_path / name
    summary = write_city(plain, **kwargs)
    assert read_strand_tables(plain) == {}
    assert not set(summary) & set(STRAND_LAYERS)
    if plain.is_dir():
        assert not list(plain.glob("*.csv"))
    else:
        assert not {str(n) for n, _ in pyogrio.list_layers(plain)} & set(STRAND_LAYERS)
    for layer in ROUTE:
        a, b = _route_layer(plain, layer), _route_layer(city.path, layer)
        if layer == "spans":
            a = a.drop(columns=["fiber_count", "fibers_used"])
            b = b.drop(columns=["fiber_count", "fibers_used"])
        pd.testing.assert_frame_equal(pd.DataFrame(a.drop(columns="geometry")),
                                      pd.DataFrame(b.drop(columns="geometry")))
        assert shapely.equals_exact(a.geometry.to_numpy(), b.geometry.to_numpy(), 0).all()


def test_in_memory_city_with_strands_is_the_written_one(city: Written) -> None:
    _, kwargs = CITIES["gpkg" if city.path.suffix == ".gpkg" else "parquet"]
    ds = generate_city(strands=True, **kwargs)
    assert {n: len(f) for n, f in ds.strands.items()} == {
        n: city.summary[n] for n in STRAND_LAYERS}
    assert ds.strands["connections"]["a_id"].tolist() == city.tables["connections"][
        "a_id"].tolist()
    assert ds.spans["fibers_used"].tolist() == city.spans["fibers_used"].tolist()


def test_cli_generate_strands_validates_quietly(tmp_path: Path) -> None:
    out = tmp_path / "c.geojson"
    res = subprocess.run([sys.executable, "-m", "netgis.cli", "generate", "--premises", "2500",
                          "--seed", "2", "--out", str(out), "--strands"],
                         capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["drops"] > 0 and summary["cables"] > 0
    assert {f"{n}.csv" for n in STRAND_LAYERS} <= {p.name for p in out.iterdir()}
    report = validate_path(str(out))
    assert report.errors == []
    assert report.warnings == []  # the route/strand cross-checks agree too
