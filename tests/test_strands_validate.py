"""Validation of the strand layers (docs/strands.md, "Validation"), rule by rule.

Every test starts from one small VALID dataset (the ring_spur example with two cables, a
splitter, an OLT port, three connections, two drops and two strand states, built by
:func:`build`), applies exactly one change, runs ``netgis validate`` and checks the exact
problem: its layer, id, field (where the rule names one) and a fragment of its reason.
Errors make ``netgis validate`` exit 2 and load nothing (``analyze``, ``trace`` and
``capacity`` exit 2 without writing their output folder); warnings leave the exit code 0.

The base plant::

    C (core) --s1-- A --s2-- B (splitter node, 1:4) --s5-- E --s6-- F
    P1 =c1= K1:1 (C..B, express at A) =c2= in:SP1:1   out:SP1:1 =c3= K2:1 (B..F)
    out:SP1:2 -> drop d2 -> p_north100      K2:1 (side from) at E -> drop d1 -> p_spur1
    strand_state: K1:5 broken, K1:6 reserved
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from netgis.cli import app, main

EXAMPLE = Path(__file__).parent / "examples" / "ring_spur" / "dataset"

#: The columns of each strand layer, in the order docs/strands.md lists them.
COLUMNS: dict[str, tuple[str, ...]] = {
    "cables": ("cable_id", "from_node", "to_node", "fiber_count", "fibers_per_tube", "status",
               "name", "install_year"),
    "cable_spans": ("cable_id", "seq", "span_id"),
    "splitters": ("splitter_id", "node_id", "ratio", "inputs", "loss_db"),
    "olt_ports": ("olt_port_id", "node_id", "olt_id"),
    "connections": ("connection_id", "node_id", "kind", "a_type", "a_id", "a_num", "a_side",
                    "b_type", "b_id", "b_num", "b_side", "loss_db"),
    "drops": ("drop_id", "premise_id", "node_id", "src_type", "src_id", "src_num", "src_side",
              "length_m"),
    "strand_state": ("cable_id", "strand", "state"),
}

Row = dict[str, Any]


def base_tables() -> dict[str, list[Row]]:
    """The strand layers of the valid base plant."""
    return {
        "cables": [
            {"cable_id": "K1", "from_node": "C", "to_node": "B", "fiber_count": 12},
            {"cable_id": "K2", "from_node": "B", "to_node": "F", "fiber_count": 12},
        ],
        "cable_spans": [
            {"cable_id": "K1", "seq": 1, "span_id": "s1"},
            {"cable_id": "K1", "seq": 2, "span_id": "s2"},
            {"cable_id": "K2", "seq": 1, "span_id": "s5"},
            {"cable_id": "K2", "seq": 2, "span_id": "s6"},
        ],
        "splitters": [{"splitter_id": "SP1", "node_id": "B", "ratio": 4}],
        "olt_ports": [{"olt_port_id": "P1", "node_id": "C", "olt_id": "OLT1"}],
        "connections": [
            {"connection_id": "c1", "node_id": "C", "kind": "connector",
             "a_type": "olt", "a_id": "P1", "b_type": "strand", "b_id": "K1", "b_num": 1},
            {"connection_id": "c2", "node_id": "B", "kind": "splice",
             "a_type": "strand", "a_id": "K1", "a_num": 1, "b_type": "in", "b_id": "SP1",
             "b_num": 1},
            {"connection_id": "c3", "node_id": "B", "kind": "splice",
             "a_type": "out", "a_id": "SP1", "a_num": 1, "b_type": "strand", "b_id": "K2",
             "b_num": 1},
        ],
        "drops": [
            {"drop_id": "d1", "premise_id": "p_spur1", "node_id": "E", "src_type": "strand",
             "src_id": "K2", "src_num": 1, "src_side": "from"},
            {"drop_id": "d2", "premise_id": "p_north100", "node_id": "B", "src_type": "out",
             "src_id": "SP1", "src_num": 2, "length_m": 30},
        ],
        "strand_state": [
            {"cable_id": "K1", "strand": 5, "state": "broken"},
            {"cable_id": "K1", "strand": 6, "state": "reserved"},
        ],
    }


@dataclass
class Net:
    """A dataset in memory: the route layers as GeoJSON, the strand layers as rows (a layer
    missing from ``tables`` has no file)."""

    route: dict[str, dict[str, Any]]
    tables: dict[str, list[Row]] = field(default_factory=base_tables)

    def props(self, layer: str, ident: str) -> dict[str, Any]:
        """The properties of a route feature, to edit in place."""
        key = {"nodes": "node_id", "spans": "span_id", "premises": "premise_id"}[layer]
        found = [f["properties"] for f in self.route[layer]["features"]
                 if f["properties"][key] == ident]
        assert len(found) == 1, (layer, ident)
        return found[0]

    def rows(self, layer: str, **match: Any) -> list[Row]:
        """The rows of a strand layer whose fields equal ``match``."""
        return [r for r in self.tables[layer] if all(r.get(k) == v for k, v in match.items())]

    def row(self, layer: str, **match: Any) -> Row:
        found = self.rows(layer, **match)
        assert len(found) == 1, (layer, match)
        return found[0]


def base_net() -> Net:
    """The valid base: ring_spur's route layers, node B made a 1:4 splitter node, span
    counts that agree with the cables, and the strand layers of :func:`base_tables`."""
    route = {name: json.loads((EXAMPLE / f"{name}.geojson").read_text(encoding="utf-8"))
             for name in ("nodes", "spans", "premises", "areas")}
    net = Net(route)
    net.props("nodes", "B").update(kind="splitter", split_ratio=4)
    for f in route["spans"]["features"]:
        p = f["properties"]
        p["fiber_count"] = 12 if p["span_id"] in ("s1", "s2", "s5", "s6") else None
        p["fibers_used"] = None
    # strands not free on s1: K1:1 lit, K1:5 broken, K1:6 reserved
    net.props("spans", "s1")["fibers_used"] = 3
    return net


def write(net: Net, path: Path) -> Path:
    """The dataset directory: GeoJSON route layers and ``<layer>.csv`` strand layers."""
    path.mkdir(parents=True, exist_ok=True)
    for name, fc in net.route.items():
        (path / f"{name}.geojson").write_text(json.dumps(fc), encoding="utf-8")
    for name, rows in net.tables.items():
        with (path / f"{name}.csv").open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, COLUMNS[name])
            writer.writeheader()
            for r in rows:
                writer.writerow({k: "" if v is None else v for k, v in r.items()})
    return path


Edit = Callable[[Net], None]


def build(tmp: Path, edit: Edit | None = None) -> Path:
    """The base dataset with ``edit`` applied, written under ``tmp``."""
    net = base_net()
    if edit is not None:
        edit(net)
    return write(net, tmp / "dataset")


# ---- edits ----------------------------------------------------------------------------------

def set_row(layer: str, match: Row, **values: Any) -> Edit:
    def edit(net: Net) -> None:
        net.row(layer, **match).update(values)
    return edit


def add_row(layer: str, **values: Any) -> Edit:
    def edit(net: Net) -> None:
        net.tables[layer].append(dict(values))
    return edit


def copy_row(layer: str, match: Row, **values: Any) -> Edit:
    """Append a copy of the matched row (with ``values`` changed)."""
    def edit(net: Net) -> None:
        net.tables[layer].append({**net.row(layer, **match), **values})
    return edit


def del_rows(layer: str, match: Row) -> Edit:
    def edit(net: Net) -> None:
        keep = [r for r in net.tables[layer] if not all(r.get(k) == v for k, v in match.items())]
        assert len(keep) < len(net.tables[layer]), (layer, match)
        net.tables[layer] = keep
    return edit


def del_layer(layer: str) -> Edit:
    def edit(net: Net) -> None:
        del net.tables[layer]
    return edit


def set_route(layer: str, ident: str, **values: Any) -> Edit:
    def edit(net: Net) -> None:
        net.props(layer, ident).update(values)
    return edit


def both(*edits: Edit) -> Edit:
    """One change that needs more than one row (a loop of glass needs two connections)."""
    def edit(net: Net) -> None:
        for e in edits:
            e(net)
    return edit


def conn(cid: str, node: str, a: tuple[Any, ...], b: tuple[Any, ...],
         kind: str = "splice", **extra: Any) -> Edit:
    """A new connection of terminals ``a`` and ``b``, each ``(type, id[, num[, side]])``."""
    row: Row = {"connection_id": cid, "node_id": node, "kind": kind, **extra}
    for prefix, term in (("a", a), ("b", b)):
        for name, value in zip(("type", "id", "num", "side"), term, strict=False):
            row[f"{prefix}_{name}"] = value
    return add_row("connections", **row)


def drop(did: str, premise: str, node: str, src: tuple[Any, ...], **extra: Any) -> Edit:
    """A new drop from terminal ``src`` = ``(type, id[, num[, side]])``."""
    row: Row = {"drop_id": did, "premise_id": premise, "node_id": node, **extra}
    for name, value in zip(("type", "id", "num", "side"), src, strict=False):
        row[f"src_{name}"] = value
    return add_row("drops", **row)


# ---- running netgis -------------------------------------------------------------------------

def validate(path: Path) -> tuple[int, dict[str, list[dict[str, Any]]]]:
    """``netgis validate PATH``: exit code and the JSON report."""
    result = CliRunner().invoke(app, ["validate", str(path)], catch_exceptions=False)
    return result.exit_code, json.loads(result.stdout)


def run_main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
             *args: str) -> tuple[int, str, str]:
    """``netgis ARGS`` through the real entry point (exit codes as a shell sees them)."""
    monkeypatch.setattr(sys, "argv", ["netgis", *args])
    with pytest.raises(SystemExit) as info:
        main()
    out = capsys.readouterr()
    assert isinstance(info.value.code, int)
    return info.value.code, out.out, out.err


ANY = object()


def matching(problems: list[dict[str, Any]], layer: str, ident: Any, fld: Any,
             fragment: str) -> list[dict[str, Any]]:
    return [p for p in problems
            if p["layer"] == layer
            and (ident is ANY or p["id"] == ident)
            and (fld is ANY or p["field"] == fld)
            and fragment.lower() in p["reason"].lower()]


def show(problems: list[dict[str, Any]]) -> str:
    return "\n  ".join(f"{p['layer']} id={p['id']} field={p['field']}: {p['reason']}"
                       for p in problems) or "(none)"


# ---- the base -------------------------------------------------------------------------------

def test_the_base_is_valid_without_warnings(tmp_path: Path) -> None:
    code, report = validate(build(tmp_path))
    assert code == 0, show(report["errors"])
    assert report == {"errors": [], "warnings": []}, show(report["warnings"])


def test_the_base_traces_as_drawn(tmp_path: Path) -> None:
    """The base is what the error cases change: P1 reaches both premises through SP1."""
    path = build(tmp_path)
    out = tmp_path / "trace"
    result = CliRunner().invoke(app, ["trace", str(path), "--out", str(out)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    with (out / "upstream.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert {(r["premise_id"], r["drop_id"], r["status"], r["olt_port_id"]) for r in rows} == {
        ("p_north100", "d2", "connected", "P1"), ("p_spur1", "d1", "connected", "P1")}


# ---- errors ---------------------------------------------------------------------------------

def case(edit: Edit, layer: str, ident: Any, fld: Any, fragment: str, *, id: str,
         why: str = "") -> Any:
    """One parametrised case; ``why`` is added to the failure message (the rule's words)."""
    return pytest.param(edit, (layer, ident, fld, fragment, why), id=id)


RULE_1 = [
    # duplicate ids (and keys of the layers without an id field)
    case(copy_row("cables", {"cable_id": "K1"}), "cables", "K1", "cable_id", "duplicate",
         id="duplicate-cable"),
    case(copy_row("cable_spans", {"cable_id": "K1", "seq": 2}, span_id="s3"),
         "cable_spans", "K1:2", "seq", "duplicate", id="duplicate-cable-seq"),
    case(copy_row("splitters", {"splitter_id": "SP1"}), "splitters", "SP1", "splitter_id",
         "duplicate", id="duplicate-splitter"),
    case(copy_row("olt_ports", {"olt_port_id": "P1"}), "olt_ports", "P1", "olt_port_id",
         "duplicate", id="duplicate-olt-port"),
    case(copy_row("connections", {"connection_id": "c3"}, a_num=3, b_num=3),
         "connections", "c3", "connection_id", "duplicate", id="duplicate-connection"),
    case(copy_row("drops", {"drop_id": "d2"}, src_num=3), "drops", "d2", "drop_id",
         "duplicate", id="duplicate-drop"),
    case(copy_row("strand_state", {"cable_id": "K1", "strand": 5}, state="reserved"),
         "strand_state", "K1:5", "strand", "duplicate", id="duplicate-strand-state"),
    # required values missing
    case(set_row("cables", {"cable_id": "K1"}, fiber_count=None), "cables", "K1",
         "fiber_count", "missing", id="missing-fiber-count"),
    case(set_row("cables", {"cable_id": "K2"}, to_node=None), "cables", "K2", "to_node",
         "missing", id="missing-to-node"),
    case(set_row("cable_spans", {"cable_id": "K2", "seq": 2}, span_id=None), "cable_spans",
         "K2:2", "span_id", "missing", id="missing-cable-span"),
    case(set_row("splitters", {"splitter_id": "SP1"}, ratio=None), "splitters", "SP1",
         "ratio", "missing", id="missing-ratio"),
    case(set_row("olt_ports", {"olt_port_id": "P1"}, node_id=None), "olt_ports", "P1",
         "node_id", "missing", id="missing-olt-node"),
    case(set_row("connections", {"connection_id": "c2"}, kind=None), "connections", "c2",
         "kind", "missing", id="missing-connection-kind"),
    case(set_row("connections", {"connection_id": "c3"}, b_id=None), "connections", "c3",
         "b_id", "missing", id="missing-b-id"),
    case(set_row("connections", {"connection_id": "c1"}, b_num=None), "connections", "c1",
         "b_num", "missing", id="missing-strand-number"),
    case(set_row("drops", {"drop_id": "d2"}, src_num=None), "drops", "d2", "src_num",
         "missing", id="missing-output-number"),
    case(set_row("drops", {"drop_id": "d1"}, premise_id=None), "drops", "d1", "premise_id",
         "missing", id="missing-premise"),
    case(set_row("strand_state", {"cable_id": "K1", "strand": 6}, state=None),
         "strand_state", "K1:6", "state", "missing", id="missing-state"),
    case(set_row("connections", {"connection_id": "c3"}, connection_id=None), "connections",
         None, "connection_id", "missing", id="missing-id"),
    # bad enums
    case(set_row("connections", {"connection_id": "c2"}, kind="fusion"), "connections", "c2",
         "kind", "fusion", id="enum-connection-kind"),
    case(set_row("connections", {"connection_id": "c2"}, b_type="input"), "connections", "c2",
         "b_type", "input", id="enum-terminal-type"),
    case(set_row("drops", {"drop_id": "d1"}, src_side="up"), "drops", "d1", "src_side", "up",
         id="enum-side"),
    case(set_row("drops", {"drop_id": "d2"}, src_type="in"), "drops", "d2", "src_type", "in",
         id="enum-drop-source-is-strand-or-out"),
    case(set_row("cables", {"cable_id": "K2"}, status="lit"), "cables", "K2", "status", "lit",
         id="enum-cable-status"),
    case(set_row("strand_state", {"cable_id": "K1", "strand": 5}, state="cut"), "strand_state",
         "K1:5", "state", "cut", id="enum-strand-state"),
    # counts and numbers out of range
    case(set_row("splitters", {"splitter_id": "SP1"}, ratio=3), "splitters", "SP1", "ratio",
         "3", id="ratio-3"),
    case(set_row("splitters", {"splitter_id": "SP1"}, ratio=256), "splitters", "SP1", "ratio",
         "256", id="ratio-256"),
    case(set_row("splitters", {"splitter_id": "SP1"}, ratio=1), "splitters", "SP1", "ratio",
         "1", id="ratio-1"),
    case(set_row("splitters", {"splitter_id": "SP1"}, inputs=3), "splitters", "SP1", "inputs",
         "3", id="inputs-3"),
    case(set_row("splitters", {"splitter_id": "SP1"}, inputs=0), "splitters", "SP1", "inputs",
         "0", id="inputs-0"),
    case(set_row("cables", {"cable_id": "K1"}, fibers_per_tube=0), "cables", "K1",
         "fibers_per_tube", "0", id="fibers-per-tube-0"),
    case(set_row("cables", {"cable_id": "K2"}, fiber_count=0), "cables", "K2", "fiber_count",
         "0", id="fiber-count-0"),
    case(set_row("connections", {"connection_id": "c3"}, b_num=13), "connections", "c3",
         "b_num", "13", id="strand-above-fiber-count"),
    case(set_row("connections", {"connection_id": "c1"}, b_num=0), "connections", "c1",
         "b_num", "0", id="strand-0"),
    case(set_row("drops", {"drop_id": "d1"}, src_num=13), "drops", "d1", "src_num", "13",
         id="drop-strand-above-fiber-count"),
    case(set_row("strand_state", {"cable_id": "K1", "strand": 6}, strand=13), "strand_state",
         "K1:13", "strand", "13", id="state-strand-above-fiber-count"),
    case(set_row("drops", {"drop_id": "d2"}, src_num=5), "drops", "d2", "src_num", "5",
         id="output-above-ratio"),
    case(set_row("connections", {"connection_id": "c3"}, a_num=5), "connections", "c3",
         "a_num", "5", id="connection-output-above-ratio"),
    case(set_row("connections", {"connection_id": "c2"}, b_num=2), "connections", "c2",
         "b_num", "2", id="input-above-inputs"),
]

RULE_2 = [
    case(set_row("cable_spans", {"cable_id": "K1", "seq": 2}, span_id="s99"), "cable_spans",
         "K1:2", "span_id", "unknown span", id="unknown-span"),
    case(set_row("cable_spans", {"cable_id": "K1", "seq": 2}, seq=3), "cable_spans", "K1",
         "seq", "1..", id="seq-gap"),
    case(set_row("cable_spans", {"cable_id": "K2", "seq": 1}, seq=0), "cable_spans", "K2:0",
         "seq", "0", id="seq-0"),
    case(set_row("cable_spans", {"cable_id": "K2", "seq": 1}, seq=2), "cable_spans", "K2:2",
         "seq", "duplicate", id="seq-twice"),
    case(set_row("cable_spans", {"cable_id": "K1", "seq": 2}, span_id="s5"), "cable_spans",
         "K1:2", "span_id", "does not touch", id="span-not-touching"),
    case(set_row("cable_spans", {"cable_id": "K1", "seq": 1}, span_id="s2"), "cable_spans",
         "K1:1", "span_id", "does not touch", id="first-span-not-at-from-node"),
    case(set_row("cables", {"cable_id": "K2"}, to_node="E"), "cables", "K2", "to_node",
         "ends at F", id="last-node-not-to-node"),
    case(both(add_row("cables", cable_id="K3", from_node="A", to_node="A", fiber_count=2),
              add_row("cable_spans", cable_id="K3", seq=1, span_id="s2"),
              add_row("cable_spans", cable_id="K3", seq=2, span_id="s2")),
         "cable_spans", "K3:2", "span_id", "twice", id="node-visited-twice"),
    case(both(add_row("cables", cable_id="K3", from_node="C", to_node="C", fiber_count=2),
              *(add_row("cable_spans", cable_id="K3", seq=i, span_id=f"s{i}")
                for i in range(1, 5))),
         "cable_spans", "K3:4", "span_id", "twice", id="ring-cable-visits-its-start-twice"),
    case(del_layer("cable_spans"), "cable_spans", None, None, "missing",
         id="cables-without-cable-spans-layer"),
    case(add_row("cables", cable_id="K3", from_node="B", to_node="D", fiber_count=4),
         "cables", "K3", None, "cable_spans", id="cable-without-cable-spans-rows"),
    case(both(del_layer("cables"), del_layer("connections"), del_layer("drops"),
              del_layer("strand_state")),
         "cables", None, None, "missing", id="cable-spans-without-cables-layer"),
]

RULE_3 = [
    case(set_row("connections", {"connection_id": "c3"}, b_id="K9"), "connections", "c3",
         "b_id", "unknown cable", id="unknown-cable-in-connection"),
    case(set_row("drops", {"drop_id": "d1"}, src_id="K9"), "drops", "d1", "src_id",
         "unknown cable", id="unknown-cable-in-drop"),
    case(set_row("strand_state", {"cable_id": "K1", "strand": 5}, cable_id="K9"),
         "strand_state", "K9:5", "cable_id", "unknown cable", id="unknown-cable-in-state"),
    case(add_row("cable_spans", cable_id="K9", seq=1, span_id="s3"), "cable_spans", "K9:1",
         "cable_id", "unknown cable", id="unknown-cable-in-cable-spans"),
    case(set_row("connections", {"connection_id": "c2"}, b_id="SP9"), "connections", "c2",
         "b_id", "unknown splitter", id="unknown-splitter-in-connection"),
    case(set_row("drops", {"drop_id": "d2"}, src_id="SP9"), "drops", "d2", "src_id",
         "unknown splitter", id="unknown-splitter-in-drop"),
    case(set_row("connections", {"connection_id": "c1"}, a_id="P9"), "connections", "c1",
         "a_id", "unknown OLT port", id="unknown-olt-port"),
    case(set_row("drops", {"drop_id": "d1"}, premise_id="p_nowhere"), "drops", "d1",
         "premise_id", "unknown premise", id="unknown-premise"),
    case(set_row("cables", {"cable_id": "K1"}, from_node="Z"), "cables", "K1", "from_node",
         "unknown node", id="unknown-node-cable-from"),
    case(set_row("cables", {"cable_id": "K2"}, to_node="Z"), "cables", "K2", "to_node",
         "unknown node", id="unknown-node-cable-to"),
    case(set_row("splitters", {"splitter_id": "SP1"}, node_id="Z"), "splitters", "SP1",
         "node_id", "unknown node", id="unknown-node-splitter"),
    case(set_row("olt_ports", {"olt_port_id": "P1"}, node_id="Z"), "olt_ports", "P1",
         "node_id", "unknown node", id="unknown-node-olt-port"),
    case(set_row("connections", {"connection_id": "c1"}, node_id="Z"), "connections", "c1",
         "node_id", "unknown node", id="unknown-node-connection"),
    case(set_row("drops", {"drop_id": "d2"}, node_id="Z"), "drops", "d2", "node_id",
         "unknown node", id="unknown-node-drop"),
]

RULE_4 = [
    case(conn("c9", "D", ("strand", "K1", 3), ("strand", "K2", 3)), "connections", "c9",
         "node_id", "does not visit", id="connection-where-cable-is-not"),
    case(set_row("drops", {"drop_id": "d1"}, node_id="A"), "drops", "d1", "node_id",
         "does not visit", id="drop-where-cable-is-not"),
    case(drop("d9", "p_spur2", "E", ("out", "SP1", 3)), "drops", "d9", "src_id",
         "node B", id="drop-from-splitter-at-another-node"),
    case(conn("c9", "A", ("in", "SP1", 1), ("strand", "K1", 3, "from")), "connections", "c9",
         "a_id", "node B", id="connection-to-splitter-at-another-node"),
    case(conn("c9", "B", ("olt", "P1"), ("strand", "K1", 3)), "connections", "c9", "a_id",
         "node C", id="connection-to-olt-port-at-another-node"),
]

RULE_5 = [
    case(set_row("drops", {"drop_id": "d1"}, src_side=None), "drops", "d1", "src_side",
         "side", id="side-left-out-inside-the-cable"),
    case(conn("c9", "A", ("strand", "K1", 3), ("strand", "K1", 4, "to")), "connections", "c9",
         "a_side", "side", id="side-left-out-a"),
    case(set_row("connections", {"connection_id": "c1"}, b_side="from"), "connections", "c1",
         "b_side", "from", id="no-from-side-at-the-start"),
    case(set_row("connections", {"connection_id": "c2"}, a_side="to"), "connections", "c2",
         "a_side", "to", id="no-to-side-at-the-end"),
]

RULE_6 = [
    case(conn("c9", "B", ("strand", "K1", 1), ("strand", "K2", 3)), "connections", "c9",
         "a_id", "strand:K1:1:from", id="two-connections"),
    case(conn("c9", "C", ("strand", "K1", 1, "to"), ("strand", "K1", 2)), "connections", "c9",
         "a_id", "strand:K1:1:to", id="two-connections-one-naming-the-side-one-not"),
    case(conn("c9", "B", ("strand", "K2", 3), ("in", "SP1", 1)), "connections", "c9",
         "b_id", "in:SP1:1", id="two-connections-on-a-splitter-input"),
    case(drop("d9", "p_north100", "B", ("strand", "K1", 1)), "drops", "d9", "src_id",
         "strand:K1:1:from", id="connection-and-drop"),
    case(drop("d9", "p_north100", "B", ("out", "SP1", 1)), "drops", "d9", "src_id",
         "out:SP1:1", id="connection-and-drop-on-an-output"),
    case(drop("d9", "p_spur2", "E", ("strand", "K2", 1, "from")), "drops", "d9", "src_id",
         "strand:K2:1:from", id="two-drops"),
]

RULE_7 = [
    case(conn("c9", "A", ("strand", "K1", 3, "to"), ("strand", "K1", 3, "to")), "connections",
         "c9", ANY, "itself", id="terminal-to-itself"),
    case(conn("c9", "B", ("out", "SP1", 3), ("out", "SP1", 3)), "connections", "c9", ANY,
         "itself", id="output-to-itself"),
    case(set_row("connections", {"connection_id": "c2"}, loss_db=-0.1), "connections", "c2",
         "loss_db", "negative", id="negative-connection-loss"),
    case(set_row("splitters", {"splitter_id": "SP1"}, loss_db=-7), "splitters", "SP1",
         "loss_db", "negative", id="negative-splitter-loss"),
]

# A ring: K1:3 and K1:4 spliced to each other at A and at C.
LOOP = both(conn("c8", "A", ("strand", "K1", 3, "from"), ("strand", "K1", 4, "from")),
            conn("c9", "C", ("strand", "K1", 3), ("strand", "K1", 4)))


# K3 runs C-D-B, the other way round the ring: K1:3 and K3:3 joined at B and at C.
def ring_cable(status: str) -> Edit:
    """Cable K3 round the other side of the ring, its strand 3 joined to K1:3 at both ends."""
    return both(add_row("cables", cable_id="K3", from_node="C", to_node="B", fiber_count=4,
                        status=status),
                add_row("cable_spans", cable_id="K3", seq=1, span_id="s4"),
                add_row("cable_spans", cable_id="K3", seq=2, span_id="s3"),
                conn("c8", "B", ("strand", "K1", 3), ("strand", "K3", 3)),
                conn("c9", "C", ("strand", "K3", 3), ("strand", "K1", 3)))


# out:SP2:1 back into SP2's input, through K2:3 out to E and K2:4 back.
SP2 = add_row("splitters", splitter_id="SP2", node_id="B", ratio=2)
SP3 = add_row("splitters", splitter_id="SP3", node_id="B", ratio=2)

RULE_8 = [
    case(LOOP, "connections", ANY, ANY, "loop", id="closed-loop-of-glass"),
    case(ring_cable("in_service"), "connections", ANY, ANY, "loop",
         id="closed-loop-round-the-ring"),
    case(ring_cable("planned"), "connections", ANY, ANY, "loop",
         id="closed-loop-through-a-planned-cable"),
    case(both(SP2, conn("c9", "B", ("out", "SP2", 1), ("in", "SP2", 1))), "splitters", "SP2",
         ANY, "SP2", id="splitter-output-into-its-input"),
    case(both(SP2, conn("c7", "B", ("out", "SP2", 1), ("strand", "K2", 3)),
              conn("c8", "E", ("strand", "K2", 3, "from"), ("strand", "K2", 4, "from")),
              conn("c9", "B", ("strand", "K2", 4), ("in", "SP2", 1))),
         "splitters", "SP2", ANY, "SP2", id="splitter-output-back-through-glass"),
    case(both(set_row("splitters", {"splitter_id": "SP1"}, inputs=2),
              conn("c9", "B", ("out", "SP1", 3), ("in", "SP1", 2))),
         "splitters", "SP1", ANY, "SP1", id="lit-splitter-output-into-its-second-input"),
]


@pytest.mark.parametrize(("edit", "expected"), RULE_1 + RULE_2 + RULE_3 + RULE_4 + RULE_5
                         + RULE_6 + RULE_7 + RULE_8)
def test_one_change_gives_the_error(tmp_path: Path, edit: Edit,
                                    expected: tuple[str, Any, Any, str, str]) -> None:
    code, report = validate(build(tmp_path, edit))
    layer, ident, fld, fragment, _ = expected
    hits = matching(report["errors"], layer, ident, fld, fragment)
    assert hits, (f"expected an error layer={layer} id={ident} field={fld} reason~{fragment!r}"
                  f"; got:\n  {show(report['errors'])}")
    assert code == 2


def test_a_ring_of_two_splitters_is_a_path_entering_a_splitter_it_passed(
        tmp_path: Path) -> None:
    """The problem names one of the two splitters of the cycle."""
    edit = both(SP2, SP3, conn("c8", "B", ("out", "SP2", 1), ("in", "SP3", 1)),
                conn("c9", "B", ("out", "SP3", 2), ("in", "SP2", 1)))
    code, report = validate(build(tmp_path, edit))
    assert code == 2
    assert [(p["layer"], p["id"]) for p in report["errors"]] in (
        [("splitters", "SP2")], [("splitters", "SP3")]), show(report["errors"])


def test_every_error_is_listed_not_only_the_first(tmp_path: Path) -> None:
    edit = both(set_row("connections", {"connection_id": "c2"}, kind="fusion"),
                set_row("drops", {"drop_id": "d1"}, premise_id="p_nowhere"),
                set_row("splitters", {"splitter_id": "SP1"}, ratio=3))
    code, report = validate(build(tmp_path, edit))
    assert code == 2
    assert matching(report["errors"], "connections", "c2", "kind", "fusion")
    assert matching(report["errors"], "drops", "d1", "premise_id", "unknown premise")
    assert matching(report["errors"], "splitters", "SP1", "ratio", "3")


def test_a_connection_at_a_cable_end_may_leave_the_side_out_or_give_it(
        tmp_path: Path) -> None:
    """Rule 5's counterpart: the only side there is may be written too."""
    edit = both(set_row("connections", {"connection_id": "c1"}, b_side="to"),
                set_row("connections", {"connection_id": "c2"}, a_side="from"),
                set_row("connections", {"connection_id": "c3"}, b_side="to"))
    code, report = validate(build(tmp_path, edit))
    assert (code, report["errors"]) == (0, [])


def test_zero_loss_is_not_negative(tmp_path: Path) -> None:
    edit = set_row("connections", {"connection_id": "c2"}, loss_db=0)
    code, report = validate(build(tmp_path, edit))
    assert (code, report["errors"]) == (0, [])


ERROR_EDITS = {
    "duplicate-id": copy_row("cables", {"cable_id": "K2"}),
    "loop": LOOP,
    "side-left-out": set_row("drops", {"drop_id": "d1"}, src_side=None),
}


@pytest.mark.parametrize("which", sorted(ERROR_EDITS))
@pytest.mark.parametrize("command", ["analyze", "trace", "capacity"])
def test_nothing_is_loaded_on_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str], which: str,
                                    command: str) -> None:
    path = build(tmp_path, ERROR_EDITS[which])
    out = tmp_path / "out"
    code, _, err = run_main(monkeypatch, capsys, command, str(path), "--out", str(out))
    assert code == 2, err
    assert "invalid input" in err
    assert not out.exists(), sorted(p.name for p in out.iterdir())


def test_the_base_analyses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                           capsys: pytest.CaptureFixture[str]) -> None:
    """The counterpart of the test above: the same commands on the base write their files."""
    path = build(tmp_path)
    for command in ("analyze", "trace", "capacity"):
        out = tmp_path / command
        code, _, err = run_main(monkeypatch, capsys, command, str(path), "--out", str(out))
        assert code == 0, err
        assert any(out.iterdir())


# ---- warnings -------------------------------------------------------------------------------

P2_AT_C = add_row("olt_ports", olt_port_id="P2", node_id="C", olt_id="OLT1")

WARNINGS = [
    case(set_route("spans", "s5", fiber_count=24), "spans", "s5", "fiber_count", "24",
         id="span-fiber-count-vs-cables"),
    case(both(set_route("spans", "s3", fiber_count=12),
              add_row("cables", cable_id="K3", from_node="B", to_node="D", fiber_count=12,
                      status="planned"),
              add_row("cable_spans", cable_id="K3", seq=1, span_id="s3")),
         "spans", "s3", "fiber_count", "12", id="span-fiber-count-vs-no-in-service-cable",
         why="docs/strands.md warns when a span's fiber_count differs from the sum of its "
             "in-service cables' fiber_count: s3 says 12, its only cable is planned, so the "
             "sum is 0"),
    case(both(set_route("spans", "s3", fibers_used=2),
              add_row("cables", cable_id="K3", from_node="B", to_node="D", fiber_count=12,
                      status="planned"),
              add_row("cable_spans", cable_id="K3", seq=1, span_id="s3")),
         "spans", "s3", "fibers_used", "2", id="span-fibers-used-vs-no-in-service-cable",
         why="docs/strands.md warns when a span's fibers_used differs from its strands not "
             "free: s3 says 2, its only cable is planned, so no strand on it is counted"),
    case(set_route("spans", "s1", fibers_used=4), "spans", "s1", "fibers_used", "4",
         id="span-fibers-used-vs-strands-not-free"),
    case(set_route("spans", "s2", fibers_used=0), "spans", "s2", "fibers_used", "3",
         id="span-fibers-used-vs-strands-not-free-2"),
    case(set_route("nodes", "B", split_ratio=8), "nodes", "B", "split_ratio", "8",
         id="split-ratio-matches-no-splitter"),
    case(set_route("nodes", "B", kind="cabinet", split_ratio=None), "splitters", "SP1", ANY,
         "cabinet", id="splitter-at-a-node-of-another-kind"),
    case(add_row("olt_ports", olt_port_id="P2", node_id="A"), "olt_ports", "P2", ANY, "core",
         id="olt-port-away-from-core"),
    case(conn("c9", "A", ("strand", "K1", 3, "from"), ("strand", "K1", 4, "from")),
         "connections", "c9", ANY, "one cable", id="splice-within-one-cable"),
    case(P2_AT_C, "olt_ports", "P2", ANY, "nothing", id="olt-port-with-nothing-connected"),
    case(set_row("splitters", {"splitter_id": "SP1"}, inputs=2), "splitters", "SP1", ANY,
         "nothing", id="splitter-input-with-nothing-connected"),
    case(del_rows("drops", {"drop_id": "d1"}), ANY, ANY, ANY, "strand:K2:1:from",
         id="lit-strand-end-with-nothing-connected"),
    case(both(P2_AT_C, conn("c9", "C", ("olt", "P2"), ("strand", "K1", 2), kind="connector"),
              drop("d9", "p_north100", "B", ("strand", "K1", 2))),
         ANY, ANY, ANY, "p_north100", id="premise-fed-from-two-olt-ports"),
    case(drop("d9", "p_spur1", "B", ("out", "SP1", 3)), ANY, ANY, ANY, "p_spur1",
         id="more-drops-than-units"),
    case(set_route("spans", "s6", status="planned"), "cables", "K2", ANY, "s6",
         id="in-service-cable-on-a-span-not-in-service"),
]


@pytest.mark.parametrize(("edit", "expected"), WARNINGS)
def test_one_change_gives_the_warning(tmp_path: Path, edit: Edit,
                                      expected: tuple[Any, Any, Any, str, str]) -> None:
    code, report = validate(build(tmp_path, edit))
    assert (code, report["errors"]) == (0, []), show(report["errors"])
    layer, ident, fld, fragment, why = expected
    hits = [p for p in report["warnings"]
            if (layer is ANY or p["layer"] == layer) and (ident is ANY or p["id"] == ident)
            and (fld is ANY or p["field"] == fld)
            and fragment.lower() in f"{p['id']} {p['reason']}".lower()]
    assert hits, (f"SPEC: expected a warning layer={layer} id={ident} field={fld} "
                  f"reason~{fragment!r}{'; ' + why if why else ''}; got:\n  "
                  f"{show(report['warnings'])}")


def test_two_olt_ports_feeding_one_premise_are_named(tmp_path: Path) -> None:
    edit = both(P2_AT_C, conn("c9", "C", ("olt", "P2"), ("strand", "K1", 2), kind="connector"),
                drop("d9", "p_north100", "B", ("strand", "K1", 2)))
    _, report = validate(build(tmp_path, edit))
    fed = [p for p in report["warnings"] if "p_north100" in f"{p['id']} {p['reason']}"]
    assert len(fed) == 1, show(report["warnings"])
    assert "P1" in fed[0]["reason"] and "P2" in fed[0]["reason"]


def test_as_many_drops_as_units_is_no_warning(tmp_path: Path) -> None:
    """p_north100 has 2 units: a second drop to it is fine (fed from one port)."""
    edit = drop("d9", "p_north100", "B", ("out", "SP1", 3))
    code, report = validate(build(tmp_path, edit))
    assert (code, report) == (0, {"errors": [], "warnings": []}), show(report["warnings"])


def test_warnings_are_listed_beside_errors_in_one_report(tmp_path: Path) -> None:
    """An error does not hide the rest of the report: exit 2, the error listed."""
    edit = both(set_route("spans", "s5", fiber_count=24),
                set_row("drops", {"drop_id": "d1"}, premise_id="p_nowhere"))
    code, report = validate(build(tmp_path, edit))
    assert code == 2
    assert matching(report["errors"], "drops", "d1", "premise_id", "unknown premise")
