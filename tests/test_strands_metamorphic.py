"""Metamorphic properties of the strand-level plant (docs/strands.md): changes to a dataset
that must leave the trace and capacity unchanged, or change them in a known way.

(a) Reversing a cable (from_node and to_node swapped, its cable_spans in reverse order,
    every ``side`` naming it swapped) changes no path, loss, end (but the side written in
    an open end's terminal) or premise's state.
(b) Renaming every id by a bijection only permutes the results.
(c) Without strand layers a dataset analyses exactly as before they existed, and the
    strand commands exit 2 saying so.
(d) Express passes cost nothing: cutting a strand at a node it passes and splicing its two
    pieces back together adds exactly the connection's loss to the paths through it.

The plant (ring_spur's route layers, untouched)::

    C (core: P1..P6) --s1-- A --s2-- B --s5-- E --s6-- F
    C --s4-- D --s3-- B

    P1 =c1= K1:1 (express at A) =c2= in:SP1:1      SP1 at B, 1:4, two inputs
    P2 =c3 (0.7 dB)= K3:1 (C-D-B, express at D) =c4= in:SP1:2
    out:SP1:1 =c5= K2:1 -> E: drop d1 -> p_spur1 (side from)
    out:SP1:2 -> drop d2 (30 m) -> p_north100
    out:SP1:3 =c6= K2:2 (express at E) =c7= in:SP3:1 at F; out:SP3:1 -> d3 -> p_end
    out:SP1:4 =c13 (0.3 dB)= K2:4 <- E: out:SP2:3 (both ends reversed_splitter)
    P3 =c8= K1:2 =c9= K2:3 to E: =c10= in:SP2:1 (1:8 at E); out:SP2:1 =c11= K2:3 on to F:
        drop d4 (65 m) -> p_end; out:SP2:2 -> d5 (350 m) -> p_ring;
        out:SP2:4 =c14= K2:6 (broken): open; out:SP2:5 =c20= K2:5 to F: open (lit end)
    P4 =c15= K3:2 =c16= K1:3 =c17= P5 (an olt end each way)
    P6 =c18= K1:4 =c19= K4:1 (planned cable D..B): open
"""

from __future__ import annotations

import copy
import csv
import functools
import json
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from netgis.cli import app, main
from netgis.engine.analysis import analyze
from netgis.engine.optics import LossBudget
from netgis.engine.outputs import write_csv
from netgis.engine.strands import strand_plant
from netgis.engine.strands.outputs import (
    HOP_COLUMNS,
    PATH_COLUMNS,
    PREMISE_CAPACITY_COLUMNS,
    SPAN_CAPACITY_COLUMNS,
    SPLITTER_COLUMNS,
    UPSTREAM_COLUMNS,
    run_capacity,
    run_trace,
)
from netgis.engine.strands.trace import TraceOptions
from netgis.io import read_dataset

EXAMPLE = Path(__file__).parent / "examples" / "ring_spur" / "dataset"
ROUTE_LAYERS = ("nodes", "spans", "premises", "areas")
STRAND_FILES = ("cables", "cable_spans", "splitters", "olt_ports", "connections", "drops",
                "strand_state")
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
#: Each cable's nodes from from_node to to_node, and its spans.
CABLE_PATHS = {"K1": (("C", "A", "B"), ("s1", "s2")), "K2": (("B", "E", "F"), ("s5", "s6")),
               "K3": (("C", "D", "B"), ("s4", "s3")), "K4": (("D", "B"), ("s3",))}

Row = dict[str, Any]
Tables = dict[str, list[Row]]
Files = dict[str, list[dict[str, str]]]


def _c(cid: str, node: str, a: tuple[Any, ...], b: tuple[Any, ...], kind: str = "splice",
       loss: float | None = None) -> Row:
    row: Row = {"connection_id": cid, "node_id": node, "kind": kind, "loss_db": loss}
    for prefix, term in (("a", a), ("b", b)):
        for name, value in zip(("type", "id", "num", "side"), term, strict=False):
            row[f"{prefix}_{name}"] = value
    return row


def _d(did: str, premise: str, node: str, src: tuple[Any, ...],
       length: float | None = None) -> Row:
    row: Row = {"drop_id": did, "premise_id": premise, "node_id": node, "length_m": length}
    for name, value in zip(("type", "id", "num", "side"), src, strict=False):
        row[f"src_{name}"] = value
    return row


def plant_tables() -> Tables:
    """The strand layers of the plant drawn in the module docstring."""
    cables = [
        {"cable_id": "K1", "from_node": "C", "to_node": "B", "fiber_count": 12,
         "fibers_per_tube": 4},
        {"cable_id": "K2", "from_node": "B", "to_node": "F", "fiber_count": 12,
         "fibers_per_tube": 6},
        {"cable_id": "K3", "from_node": "C", "to_node": "B", "fiber_count": 8},
        {"cable_id": "K4", "from_node": "D", "to_node": "B", "fiber_count": 4,
         "status": "planned"},
    ]
    cable_spans = [{"cable_id": c, "seq": i, "span_id": s}
                   for c, (_, spans) in CABLE_PATHS.items() for i, s in enumerate(spans, 1)]
    return {
        "cables": cables,
        "cable_spans": cable_spans,
        "splitters": [
            {"splitter_id": "SP1", "node_id": "B", "ratio": 4, "inputs": 2},
            {"splitter_id": "SP2", "node_id": "E", "ratio": 8},
            {"splitter_id": "SP3", "node_id": "F", "ratio": 2, "loss_db": 3.9},
        ],
        "olt_ports": [{"olt_port_id": f"P{i}", "node_id": "C", "olt_id": "OLT1"}
                      for i in range(1, 7)],
        "connections": [
            _c("c1", "C", ("olt", "P1"), ("strand", "K1", 1), "connector"),
            _c("c2", "B", ("strand", "K1", 1), ("in", "SP1", 1)),
            _c("c3", "C", ("olt", "P2"), ("strand", "K3", 1), "connector", 0.7),
            _c("c4", "B", ("strand", "K3", 1), ("in", "SP1", 2)),
            _c("c5", "B", ("out", "SP1", 1), ("strand", "K2", 1)),
            _c("c6", "B", ("out", "SP1", 3), ("strand", "K2", 2)),
            _c("c7", "F", ("strand", "K2", 2), ("in", "SP3", 1)),
            _c("c8", "C", ("olt", "P3"), ("strand", "K1", 2), "connector"),
            _c("c9", "B", ("strand", "K1", 2), ("strand", "K2", 3)),
            _c("c10", "E", ("strand", "K2", 3, "from"), ("in", "SP2", 1)),
            _c("c11", "E", ("out", "SP2", 1), ("strand", "K2", 3, "to")),
            _c("c12", "E", ("out", "SP2", 3), ("strand", "K2", 4, "from")),
            _c("c13", "B", ("strand", "K2", 4), ("out", "SP1", 4), "connector", 0.3),
            _c("c14", "E", ("out", "SP2", 4), ("strand", "K2", 6, "to")),
            _c("c15", "C", ("olt", "P4"), ("strand", "K3", 2), "connector"),
            _c("c16", "B", ("strand", "K3", 2), ("strand", "K1", 3)),
            _c("c17", "C", ("strand", "K1", 3), ("olt", "P5"), "connector"),
            _c("c18", "C", ("olt", "P6"), ("strand", "K1", 4), "connector"),
            _c("c19", "B", ("strand", "K1", 4), ("strand", "K4", 1)),
            _c("c20", "E", ("out", "SP2", 5), ("strand", "K2", 5, "to")),
        ],
        "drops": [
            _d("d1", "p_spur1", "E", ("strand", "K2", 1, "from")),
            _d("d2", "p_north100", "B", ("out", "SP1", 2), 30),
            _d("d3", "p_end", "F", ("out", "SP3", 1)),
            _d("d4", "p_end", "F", ("strand", "K2", 3), 65),
            _d("d5", "p_ring", "E", ("out", "SP2", 2), 350),
        ],
        "strand_state": [
            {"cable_id": "K1", "strand": 7, "state": "reserved"},
            {"cable_id": "K1", "strand": 8, "state": "broken"},
            {"cable_id": "K2", "strand": 6, "state": "broken"},
        ],
    }


def route_layers() -> dict[str, dict[str, Any]]:
    return {name: json.loads((EXAMPLE / f"{name}.geojson").read_text(encoding="utf-8"))
            for name in ROUTE_LAYERS}


def write_dataset(path: Path, tables: Tables | None,
                  route: dict[str, dict[str, Any]] | None = None) -> Path:
    """A dataset directory: the route layers (ring_spur's files as they are unless given)
    and the strand layers as ``<layer>.csv`` (none when ``tables`` is None)."""
    path.mkdir(parents=True)
    for name in ROUTE_LAYERS:
        if route is None:
            shutil.copyfile(EXAMPLE / f"{name}.geojson", path / f"{name}.geojson")
        else:
            (path / f"{name}.geojson").write_text(json.dumps(route[name]), encoding="utf-8")
    for name, rows in (tables or {}).items():
        with (path / f"{name}.csv").open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, COLUMNS[name])
            writer.writeheader()
            for r in rows:
                writer.writerow({k: "" if v is None else v for k, v in r.items()})
    return path


# ---- running the plant ----------------------------------------------------------------------

#: The files compared, and the columns that make a row's key (none: compared as they are).
TRACE_FILES = ("trace_paths.csv", "trace_hops.csv", "upstream.csv")
CAPACITY_FILES = ("span_capacity.csv", "splitter_ports.csv", "premise_capacity.csv")


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@functools.lru_cache(maxsize=64)
def loaded(path: str) -> tuple[Any, Any, Any]:
    """The dataset, its plant and ``passed`` per premise (read once per dataset)."""
    ds = read_dataset(path)
    plant = strand_plant(ds, ds.strands)
    passed = analyze(ds, drop_m=150.0).premises.set_index("premise_id")["passed"]
    return ds, plant, passed


def outputs(path: Path, options: TraceOptions | None = None) -> Files:
    """The trace and capacity files of the dataset at ``path`` (as ``netgis trace`` and
    ``netgis capacity`` write them, with their writer), read back as rows of text; the
    capacity KPIs as one row."""
    options = options or TraceOptions()
    ds, plant, passed = loaded(str(path))
    result = run_trace(plant, ds, options)
    cap, _ = run_capacity(plant, ds, passed, drop_m=150.0, options=options)
    frames = {"trace_paths.csv": (result.paths, PATH_COLUMNS),
              "trace_hops.csv": (result.hops, HOP_COLUMNS),
              "upstream.csv": (result.upstream, UPSTREAM_COLUMNS),
              "span_capacity.csv": (cap.spans, SPAN_CAPACITY_COLUMNS),
              "splitter_ports.csv": (cap.splitters, SPLITTER_COLUMNS),
              "premise_capacity.csv": (cap.premises, PREMISE_CAPACITY_COLUMNS)}
    files: Files = {}
    with tempfile.TemporaryDirectory() as tmp:  # the writer of the files, without fsync
        for name, (frame, columns) in frames.items():
            write_csv(frame, columns, Path(tmp) / name)
            files[name] = read_rows(Path(tmp) / name)
    kpis = json.loads(json.dumps(cap.kpis))
    files["capacity.json"] = [{k: json.dumps(v) for k, v in kpis.items()}]
    return files


def cli_outputs(tmp: Path, dataset: Path, *options: str) -> Files:
    """The same files through ``netgis trace`` and ``netgis capacity``."""
    runner = CliRunner()
    got: Files = {}
    for command, names in (("trace", TRACE_FILES), ("capacity", CAPACITY_FILES)):
        out = tmp / f"{dataset.name}-{command}"
        result = runner.invoke(app, [command, str(dataset), "--out", str(out), *options],
                               catch_exceptions=False)
        assert result.exit_code == 0, result.output
        got |= {name: read_rows(out / name) for name in names}
    return got


def options_of(atten: float, splice: float, fixed: float, connector: float,
               budget: float) -> TraceOptions:
    return TraceOptions(budget=LossBudget(atten_db_per_km=atten, splice_db=splice,
                                          fixed_db=fixed, budget_db=budget),
                        connector_db=connector)


LOSSES = st.builds(options_of,
                   atten=st.floats(0.1, 1.0), splice=st.floats(0.0, 0.5),
                   fixed=st.floats(0.0, 3.0), connector=st.floats(0.0, 1.0),
                   budget=st.floats(10.0, 35.0))

NUMERIC = {"fiber_m", "drop_m", "loss_db", "margin_db", "length_m", "cum_loss_db",
           "input_loss_db", "strands_free_km"}


def close(a: str, b: str) -> bool:
    """Equal text, or numbers within the last of their 4 decimals (the sums of a reversed
    cable's span lengths are added in another order)."""
    if a == b:
        return True
    try:
        return abs(float(a) - float(b)) <= 2e-4
    except ValueError:
        return False


def same_rows(name: str, got: list[dict[str, str]], want: list[dict[str, str]],
              ordered: bool = True) -> None:
    """Rows equal (numbers within 2e-4); unordered: as multisets keyed by the text columns."""
    assert len(got) == len(want), f"{name}: {len(got)} rows, expected {len(want)}"
    if not ordered:
        def key(r: dict[str, str]) -> tuple[str, ...]:
            return tuple(v for k, v in sorted(r.items()) if k not in NUMERIC)
        got, want = sorted(got, key=key), sorted(want, key=key)
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        assert g.keys() == w.keys(), name
        bad = {k: (g[k], w[k]) for k in g if not close(g[k], w[k])}
        assert not bad, f"{name} row {i}: (got, expected) {bad}\n got  {g}\n want {w}"


# ---- (a) reversing a cable ------------------------------------------------------------------

SWAP = {"to": "from", "from": "to"}


def reversed_cables(tables: Tables, cables: frozenset[str]) -> Tables:
    """``tables`` with each of ``cables`` reversed: ends swapped, cable_spans in reverse
    order, and every side naming it swapped."""
    out = copy.deepcopy(tables)
    for row in out["cables"]:
        if row["cable_id"] in cables:
            row["from_node"], row["to_node"] = row["to_node"], row["from_node"]
    n = {c: sum(1 for r in out["cable_spans"] if r["cable_id"] == c) for c in cables}
    for row in out["cable_spans"]:
        if row["cable_id"] in cables:
            row["seq"] = n[row["cable_id"]] + 1 - row["seq"]
    out["cable_spans"].sort(key=lambda r: (r["cable_id"], r["seq"]))
    for layer, prefixes in (("connections", ("a", "b")), ("drops", ("src",))):
        for row in out[layer]:
            for p in prefixes:
                if row.get(f"{p}_type") == "strand" and row[f"{p}_id"] in cables \
                        and row.get(f"{p}_side") is not None:
                    row[f"{p}_side"] = SWAP[row[f"{p}_side"]]
    return out


def unswap_ends(files: Files, cables: frozenset[str]) -> Files:
    """The trace files with the side of each open end on a reversed cable swapped back."""
    out = copy.deepcopy(files)
    for row in out["trace_paths.csv"]:
        parts = row["end_id"].split(":")
        if row["end_type"] == "open" and parts[0] == "strand" and parts[1] in cables:
            row["end_id"] = ":".join([*parts[:3], SWAP[parts[3]]])
    return out


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, Tables], Path]:
    """Datasets written once per module, by name."""
    root = tmp_path_factory.mktemp("strand-metamorphic")
    made: dict[str, Path] = {}

    def get(name: str, tables: Tables) -> Path:
        if name not in made:
            made[name] = write_dataset(root / name, tables)
        return made[name]
    return get


def test_the_plant_traces_as_drawn(datasets: Callable[[str, Tables], Path]) -> None:
    """Every kind of end the metamorphic tests compare is there."""
    files = outputs(datasets("base", plant_tables()))
    ends = {(r["olt_port_id"], r["end_type"], r["end_id"]) for r in files["trace_paths.csv"]}
    assert {("P1", "premise", "p_spur1"), ("P1", "premise", "p_north100"),
            ("P1", "premise", "p_end"), ("P1", "open", "out:SP3:2"),
            ("P1", "reversed_splitter", "out:SP2:3"), ("P2", "premise", "p_spur1"),
            ("P3", "premise", "p_end"), ("P3", "premise", "p_ring"),
            ("P3", "reversed_splitter", "out:SP1:4"), ("P3", "open", "strand:K2:6:to"),
            ("P3", "open", "strand:K2:5:from"), ("P3", "open", "out:SP2:8"),
            ("P4", "olt", "P5"), ("P5", "olt", "P4"),
            ("P6", "open", "strand:K4:1:from")} <= ends, sorted(ends)
    up = {(r["premise_id"], r["drop_id"]): r["status"] for r in files["upstream.csv"]}
    assert up == {("p_end", "d3"): "connected", ("p_end", "d4"): "connected",
                  ("p_north100", "d2"): "connected", ("p_ring", "d5"): "connected",
                  ("p_spur1", "d1"): "connected"}
    connectable = {r["premise_id"]: r["nearest_splitter_id"]
                   for r in files["premise_capacity.csv"] if r["connectable"] == "true"}
    assert connectable == {"p_spur2": "SP3"}


ALL_CABLES = tuple(CABLE_PATHS)


def check_reversal(datasets: Callable[[str, Tables], Path], cables: frozenset[str],
                   options: TraceOptions) -> None:
    base = outputs(datasets("base", plant_tables()), options)
    name = "rev-" + "-".join(sorted(cables))
    flipped = outputs(datasets(name, reversed_cables(plant_tables(), cables)), options)
    flipped = unswap_ends(flipped, cables)
    for file in base:
        same_rows(file, flipped[file], base[file])


@pytest.mark.parametrize("cable", ALL_CABLES)
def test_reversing_a_cable_changes_nothing(datasets: Callable[[str, Tables], Path],
                                           cable: str) -> None:
    check_reversal(datasets, frozenset({cable}), TraceOptions())


@settings(max_examples=20, deadline=None)
@given(cables=st.frozensets(st.sampled_from(ALL_CABLES), min_size=1), options=LOSSES)
def test_reversing_cables_changes_nothing_whatever_the_losses(
        datasets: Callable[[str, Tables], Path], cables: frozenset[str],
        options: TraceOptions) -> None:
    check_reversal(datasets, cables, options)


def test_reversing_a_cable_through_the_commands(tmp_path: Path) -> None:
    """The files ``netgis trace`` and ``netgis capacity`` write, reversed K2 against not
    (K2 has sides written at its inner node E)."""
    cables = frozenset({"K2"})
    base = cli_outputs(tmp_path, write_dataset(tmp_path / "base", plant_tables()),
                       "--atten-db-per-km", "0.4", "--splice-db", "0.15")
    flipped = cli_outputs(tmp_path, write_dataset(
        tmp_path / "rev", reversed_cables(plant_tables(), cables)),
        "--atten-db-per-km", "0.4", "--splice-db", "0.15")
    flipped = unswap_ends(flipped, cables)
    for file in base:
        same_rows(file, flipped[file], base[file])
    assert any(r["end_id"] == "strand:K2:6:to" for r in base["trace_paths.csv"])


# ---- (b) renaming every id ------------------------------------------------------------------

def all_ids(tables: Tables) -> list[str]:
    """Every id of the plant: nodes, spans, premises, cables, splitters, OLT ports,
    connections and drops."""
    route = route_layers()
    ids = [f["properties"][k] for layer, k in (("nodes", "node_id"), ("spans", "span_id"),
                                               ("premises", "premise_id"))
           for f in route[layer]["features"]]
    ids += [r[k] for layer, k in (("cables", "cable_id"), ("splitters", "splitter_id"),
                                  ("olt_ports", "olt_port_id"),
                                  ("connections", "connection_id"), ("drops", "drop_id"))
            for r in tables[layer]]
    assert len(ids) == len(set(ids))
    return ids


ID_FIELDS = {
    "nodes": ("node_id",), "spans": ("span_id", "from_node", "to_node"),
    "premises": ("premise_id",), "cables": ("cable_id", "from_node", "to_node"),
    "cable_spans": ("cable_id", "span_id"), "splitters": ("splitter_id", "node_id"),
    "olt_ports": ("olt_port_id", "node_id"),
    "connections": ("connection_id", "node_id", "a_id", "b_id"),
    "drops": ("drop_id", "premise_id", "node_id", "src_id"), "strand_state": ("cable_id",),
}


def renamed(tables: Tables, names: dict[str, str]) -> tuple[Tables, dict[str, dict[str, Any]]]:
    """The strand tables and route layers with every id mapped by ``names``."""
    out = copy.deepcopy(tables)
    for layer, rows in out.items():
        for row in rows:
            for k in ID_FIELDS[layer]:
                row[k] = names[row[k]]
    route = route_layers()
    for layer in ("nodes", "spans", "premises"):
        for f in route[layer]["features"]:
            for k in ID_FIELDS[layer]:
                f["properties"][k] = names[f["properties"][k]]
    return out, route


def map_terminal(text: str, back: dict[str, str]) -> str:
    """``type:id[:num[:side]]`` with its id mapped."""
    parts = text.split(":")
    return ":".join([parts[0], back[parts[1]], *parts[2:]])


def map_list(cell: str, back: dict[str, str]) -> str:
    """A ``;`` list of ids mapped and sorted again in code-point order."""
    return ";".join(sorted(back[x] for x in cell.split(";"))) if cell else ""


def map_path(path_id: str, back: dict[str, str]) -> str:
    port, _, pos = path_id.rpartition("/")
    return f"{back[port]}/{pos}" if path_id else ""


def map_back(files: Files, back: dict[str, str]) -> Files:
    """Results of the renamed plant with every id mapped back to the original."""
    def ident(v: str) -> str:
        return back[v] if v else ""

    out: Files = {}
    for name, rows in files.items():
        new = []
        for r in rows:
            r = dict(r)
            for k in ("olt_port_id", "drop_id", "premise_id", "cable_id", "node_from",
                      "node_to", "span_id", "splitter_id", "node_id", "nearest_splitter_id"):
                if k in r:
                    r[k] = ident(r[k])
            for k in ("span_ids", "splitter_ids"):
                if k in r:
                    r[k] = map_list(r[k], back)
            if "path_id" in r:
                r["path_id"] = map_path(r["path_id"], back)
            if name == "trace_paths.csv":
                r["end_id"] = (map_terminal(r["end_id"], back) if r["end_type"] in
                               ("open", "reversed_splitter") else ident(r["end_id"]))
            if name == "trace_hops.csv":
                r["ref_id"] = ident(r["ref_id"])
            new.append(r)
        out[name] = new
    return out


#: Characters of new ids: none of the separators of the files (``:`` of a terminal,
#: ``;`` of a list, ``/`` of a path id), but letters of several scripts, digits, ``-_.``.
ID_CHARS = "abcxyzABCXYZ0129-_.éßЖж字ÿ"
NEW_IDS = st.lists(st.text(alphabet=ID_CHARS, min_size=1, max_size=5)
                   .filter(lambda s: not s.isdigit()),
                   min_size=len(all_ids(plant_tables())),
                   max_size=len(all_ids(plant_tables())), unique=True)


def check_renaming(root: Path, new: list[str], options: TraceOptions) -> None:
    tables = plant_tables()
    names = dict(zip(all_ids(tables), new, strict=True))
    back = {v: k for k, v in names.items()}
    base = outputs(write_dataset(root / "base", tables) if not (root / "base").exists()
                   else root / "base", options)
    t2, r2 = renamed(tables, names)
    path = root / ("ren-" + str(abs(hash(tuple(new)))))
    if not path.exists():
        write_dataset(path, t2, r2)
    got = map_back(outputs(path, options), back)
    for file in base:
        same_rows(file, got[file], base[file], ordered=False)


def test_renaming_every_id_by_a_reversing_bijection(tmp_path: Path) -> None:
    """Ids renamed so that code-point order turns round: the rows come in another order
    (ports traced in another order), the results are the same."""
    ids = all_ids(plant_tables())
    new = [f"z{999 - i:03d}" for i in range(len(ids))]
    check_renaming(tmp_path, new, TraceOptions())


@settings(max_examples=10, deadline=None)
@given(new=NEW_IDS, options=LOSSES)
def test_renaming_every_id_only_permutes_the_results(
        tmp_path_factory: pytest.TempPathFactory, new: list[str],
        options: TraceOptions) -> None:
    check_renaming(tmp_path_factory.getbasetemp() / "renamed", new, options)


def test_renaming_through_the_commands(tmp_path: Path) -> None:
    tables = plant_tables()
    ids = all_ids(tables)
    names = {k: f"Ж{len(ids) - i}-{k.lower()}" for i, k in enumerate(ids)}
    back = {v: k for k, v in names.items()}
    base = cli_outputs(tmp_path, write_dataset(tmp_path / "base", tables))
    t2, r2 = renamed(tables, names)
    got = map_back(cli_outputs(tmp_path, write_dataset(tmp_path / "ren", t2, r2)), back)
    for file in base:
        same_rows(file, got[file], base[file], ordered=False)


# ---- (c) without strand layers --------------------------------------------------------------

def run_main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
             *args: str) -> tuple[int, str, str]:
    """``netgis ARGS`` through the real entry point (exit codes as a shell sees them)."""
    monkeypatch.setattr(sys, "argv", ["netgis", *args])
    with pytest.raises(SystemExit) as info:
        main()
    out = capsys.readouterr()
    assert isinstance(info.value.code, int)
    return info.value.code, out.out, out.err


ANALYSE_FILES = ("premises.csv", "spans.csv", "nodes.csv", "kpis.json")
STRAND_KPIS = {"units_connectable", "ports_free", "strands_free_km"}


def analyse(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
            dataset: Path, out: Path) -> tuple[dict[str, bytes], str]:
    code, stdout, err = run_main(monkeypatch, capsys, "analyze", str(dataset), "--out",
                                 str(out))
    assert code == 0, err
    return {name: (out / name).read_bytes() for name in ANALYSE_FILES}, stdout


def network_kpis(raw: bytes) -> dict[str, Any]:
    doc = json.loads(raw)
    return doc["network"] if isinstance(doc, dict) and "network" in doc else doc


def test_without_strand_layers_analyze_writes_what_it_wrote_before(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    before = write_dataset(tmp_path / "before", None)  # the route layers only
    with_strands = write_dataset(tmp_path / "with", plant_tables())
    removed = tmp_path / "removed"
    shutil.copytree(with_strands, removed)
    for name in STRAND_FILES:
        (removed / f"{name}.csv").unlink()
    want, want_stdout = analyse(monkeypatch, capsys, before, tmp_path / "out-before")
    got, got_stdout = analyse(monkeypatch, capsys, removed, tmp_path / "out-removed")
    for name in ANALYSE_FILES:
        assert got[name] == want[name], name
    assert got_stdout == want_stdout
    assert not STRAND_KPIS & set(network_kpis(want["kpis.json"]))


def test_strand_layers_only_add_the_three_kpis(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    before = write_dataset(tmp_path / "before", None)
    with_strands = write_dataset(tmp_path / "with", plant_tables())
    want, _ = analyse(monkeypatch, capsys, before, tmp_path / "out-before")
    got, _ = analyse(monkeypatch, capsys, with_strands, tmp_path / "out-with")
    for name in ("premises.csv", "spans.csv", "nodes.csv"):
        assert got[name] == want[name], name
    k0, k1 = network_kpis(want["kpis.json"]), network_kpis(got["kpis.json"])
    assert set(k1) - set(k0) == STRAND_KPIS
    assert {k: v for k, v in k1.items() if k not in STRAND_KPIS} == k0
    code, stdout, err = run_main(monkeypatch, capsys, "capacity", str(with_strands), "--out",
                                 str(tmp_path / "cap"))
    assert code == 0, err
    assert {k: k1[k] for k in STRAND_KPIS} == json.loads(stdout)


def test_without_strand_layers_validate_reports_what_it_did_before(
        tmp_path: Path) -> None:
    before = write_dataset(tmp_path / "before", None)
    runner = CliRunner()
    got = runner.invoke(app, ["validate", str(before)], catch_exceptions=False)
    plain = runner.invoke(app, ["validate", str(EXAMPLE)], catch_exceptions=False)
    assert got.exit_code == plain.exit_code == 0
    assert got.stdout == plain.stdout


@pytest.mark.parametrize("command", [
    ("trace", "--out", "OUT"), ("capacity", "--out", "OUT"),
    ("diversity", "p_spur1", "p_north100")], ids=lambda c: c[0])
def test_the_strand_commands_refuse_a_dataset_without_strand_layers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], command: tuple[str, ...]) -> None:
    dataset = write_dataset(tmp_path / "before", None)
    out = tmp_path / "out"
    args = [str(out) if a == "OUT" else a for a in command]
    code, _, err = run_main(monkeypatch, capsys, args[0], str(dataset), *args[1:])
    assert code == 2
    assert "no strand layers" in err, err
    assert not out.exists()


# ---- (d) express passes cost nothing --------------------------------------------------------

#: Strands that pass a node lit: (cable, strand, node inside the cable).
EXPRESS = (("K1", 1, "A"), ("K3", 1, "D"), ("K3", 2, "D"), ("K2", 2, "E"), ("K1", 2, "A"))


def with_splice(tables: Tables, cable: str, strand: int, node: str, kind: str,
                loss: float | None) -> Tables:
    """``tables`` with ``cable``:``strand`` cut at ``node`` and its two pieces joined."""
    out = copy.deepcopy(tables)
    out["connections"].append(_c("cx", node, ("strand", cable, strand, "from"),
                                 ("strand", cable, strand, "to"), kind, loss))
    return out


def crosses(hops: list[dict[str, str]], cable: str, strand: int, node: str) -> set[str]:
    """The paths with a piece of ``cable``:``strand`` passing ``node`` (not ending there)."""
    nodes = CABLE_PATHS[cable][0]
    at = nodes.index(node)
    found = set()
    for h in hops:
        if h["hop_type"] == "piece" and h["cable_id"] == cable and h["strand"] == str(strand):
            lo, hi = sorted((nodes.index(h["node_from"]), nodes.index(h["node_to"])))
            if lo < at < hi:
                found.add(h["path_id"])
    return found


def check_express(root: Path, which: int, kind: str, loss: float | None,
                  options: TraceOptions) -> None:
    cable, strand, node = EXPRESS[which]
    base_path = root / "base"
    if not base_path.exists():
        write_dataset(base_path, plant_tables())
    spliced_path = root / f"x-{cable}-{strand}-{kind}-{loss}"
    if not spliced_path.exists():
        write_dataset(spliced_path, with_splice(plant_tables(), cable, strand, node, kind, loss))
    base, spliced = outputs(base_path, options), outputs(spliced_path, options)
    through = crosses(base["trace_hops.csv"], cable, strand, node)
    assert through, (cable, strand, node)
    added = loss if loss is not None else (options.budget.splice_db if kind == "splice"
                                           else options.connector_db)
    count = "n_splices" if kind == "splice" else "n_connectors"
    before = {r["path_id"]: r for r in base["trace_paths.csv"]}
    after = {r["path_id"]: r for r in spliced["trace_paths.csv"]}
    assert before.keys() == after.keys()
    for pid, b in before.items():
        a = after[pid]
        extra = added if pid in through else 0.0
        assert abs(float(a["loss_db"]) - float(b["loss_db"]) - extra) <= 2e-4, (pid, a, b)
        assert abs(float(a["margin_db"]) - float(b["margin_db"]) + extra) <= 2e-4, (pid, a, b)
        assert int(a[count]) == int(b[count]) + (pid in through), (pid, a, b)
        for k in ("end_type", "end_id", "drop_id", "premise_id", "splitter_ids", "drop_m"):
            assert a[k] == b[k], (pid, k)
        assert close(a["fiber_m"], b["fiber_m"]), (pid, a["fiber_m"], b["fiber_m"])
    # up from each drop: the least of its paths' new losses (its port may change)
    best: dict[str, tuple[float, str]] = {}
    for pid, b in before.items():
        if b["drop_id"]:
            loss_after = float(b["loss_db"]) + (added if pid in through else 0.0)
            best[b["drop_id"]] = min(best.get(b["drop_id"], (loss_after, pid)),
                                     (loss_after, pid))
    for r in spliced["upstream.csv"]:
        want_loss, want_path = best[r["drop_id"]]
        assert r["status"] == "connected"
        assert abs(float(r["loss_db"]) - want_loss) <= 2e-4, (r, want_loss)
        runner_up = [x for pid, x in after.items() if x["drop_id"] == r["drop_id"]
                     and pid != want_path and abs(float(x["loss_db"]) - want_loss) <= 2e-4]
        if not runner_up:  # no near tie: the best path is the one of least loss
            assert (r["path_id"], r["olt_port_id"]) == (
                want_path, want_path.rpartition("/")[0]), r
    # the hops: one more piece and the connection between, nothing else
    n_before = {p: 0 for p in before}
    for h in base["trace_hops.csv"]:
        n_before[h["path_id"]] += 1
    n_after = {p: 0 for p in after}
    for h in spliced["trace_hops.csv"]:
        n_after[h["path_id"]] += 1
    assert {p: n_after[p] - n_before[p] for p in before} == {
        p: 2 if p in through else 0 for p in before}


@pytest.mark.parametrize("which", range(len(EXPRESS)))
def test_a_splice_at_an_express_pass_adds_splice_db(tmp_path: Path, which: int) -> None:
    check_express(tmp_path, which, "splice", None, TraceOptions())


@settings(max_examples=20, deadline=None)
@given(which=st.integers(0, len(EXPRESS) - 1), kind=st.sampled_from(["splice", "connector"]),
       loss=st.one_of(st.none(), st.sampled_from([0.0, 0.05, 0.3, 1.25])), options=LOSSES)
def test_a_connection_at_an_express_pass_adds_its_loss(
        tmp_path_factory: pytest.TempPathFactory, which: int, kind: str, loss: float | None,
        options: TraceOptions) -> None:
    check_express(tmp_path_factory.getbasetemp() / "express", which, kind, loss, options)


def test_the_express_splice_is_a_splice_within_one_cable(tmp_path: Path) -> None:
    path = write_dataset(tmp_path / "x", with_splice(plant_tables(), "K1", 1, "A", "splice",
                                                     None))
    result = CliRunner().invoke(app, ["validate", str(path)], catch_exceptions=False)
    assert result.exit_code == 0, result.stdout
    report = json.loads(result.stdout)
    assert [w for w in report["warnings"]
            if w["layer"] == "connections" and w["id"] == "cx" and "one cable" in w["reason"]]
