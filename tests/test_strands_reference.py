"""The strand commands (netgis trace, capacity, diversity) against a brute-force reference.

tests/strands_brute.py enumerates every path by plain depth-first search;
tests/strandnet.py draws small valid random strand networks. For each seed
the commands' files are compared with the reference: exactly for paths,
ends, ids, counts and states; lengths within 0.5 % (plus 0.05 m for the
rounding of a written length); losses within 0.02 dB or 0.1 %, whichever
is larger, and written rounded to 4 decimals. A boolean that hangs on a loss or a
distance within tolerance of its limit is not compared.

``test_reference_*`` tests check the reference and the generator alone
(``-k "not engine"``; ``-k hand``: small drawn networks whose answers are
worked out by hand here). ``test_engine_*`` tests run the command line.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.strandnet import (
    hand_network,
    random_strand_network,
    strand_frames,
    write_random_strand_dataset,
    write_strand_dataset,
)
from tests.strands_brute import (
    CUT_COLUMNS,
    DIVERSITY_KEYS,
    HOP_COLUMNS,
    PATH_COLUMNS,
    PREMISE_CAPACITY_COLUMNS,
    SPAN_CAPACITY_COLUMNS,
    SPLITTER_PORT_COLUMNS,
    UPSTREAM_COLUMNS,
    CapacityResult,
    Cut,
    Network,
    NotConnectedError,
    Params,
    TracePath,
    TraceResult,
    best_by_premise,
    capacity,
    diversity,
    static_errors,
    trace,
)

SEEDS = list(range(16))  # the fewest that still show every feature (see the coverage test)
PARAMS = Params()
#: "losses have 4 decimals": rounded to 0.0001 dB, so at most 4 digits after the point
FOUR_DECIMALS = re.compile(r"^-?\d+(\.\d{1,4})?$")
#: skip(column, reference row, written row): whether to leave a cell out of a comparison
Skip = Callable[[str, dict[str, Any], dict[str, str]], bool]
LOSS_COLUMNS = {"loss_db", "margin_db", "cum_loss_db", "loss_before_db", "loss_after_db",
                "input_loss_db"}


# ---------------------------------------------------------------------------------------
# running the command line and reading its files


def netgis(*args: str | Path) -> Any:
    """Run the netgis command line in-process."""
    from typer.testing import CliRunner

    from netgis.cli import app

    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def netgis_process(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run the installed netgis script in a fresh process (errors become exit codes there)."""
    script = Path(sys.executable).with_name("netgis")
    return subprocess.run([str(script), *map(str, args)], capture_output=True, text=True,
                          timeout=120, check=False)


def run_ok(*args: str | Path) -> Any:
    """Run netgis and insist on exit 0."""
    result = netgis(*args)
    assert result.exit_code == 0, (args, result.output, getattr(result, "stderr", ""))
    return result


def read_csv(path: Path) -> pd.DataFrame:
    """A written CSV as text cells ('' for empty)."""
    assert path.exists(), f"{path.name} was not written"
    return pd.read_csv(path, dtype=str, keep_default_na=False)


# ---------------------------------------------------------------------------------------
# comparing


def loss_tol(value: float) -> float:
    """The loss tolerance: 0.02 dB or 0.1 %, whichever is larger."""
    return max(0.02, 0.001 * abs(value))


def length_tol(value: float) -> float:
    """The length tolerance: 0.5 %, plus 0.05 m for a length written to one decimal."""
    return 0.005 * abs(value) + 0.05


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A frame's rows as dicts."""
    return [{str(k): v for k, v in r.items()} for r in frame.to_dict("records")]


def as_text(value: Any) -> str:
    """A reference value as the CSV would write it ('' for missing)."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def near_limit(value: float | None, limit: float) -> bool:
    """Whether a loss lies within tolerance of a limit (a boolean on it is not compared)."""
    return value is not None and abs(value - limit) <= loss_tol(limit)


class Diff:
    """Mismatches between the engine's files and the reference, reported together."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def add(self, text: str) -> None:
        """Record one mismatch."""
        self.problems.append(text)

    def cell(self, where: str, column: str, got: str, want: Any, kind: str) -> None:
        """Compare one cell by kind: text, int, bool, length or loss."""
        if kind in ("length", "loss"):
            self._number(where, column, got, want, kind)
        elif kind == "int":
            try:
                ok = got == "" if want is None else int(float(got)) == int(want)
            except ValueError:
                ok = False
            if not ok:
                self.add(f"{where} {column}: {got!r} != {want!r}")
        elif got != as_text(want):
            self.add(f"{where} {column}: {got!r} != {as_text(want)!r}")

    def _number(self, where: str, column: str, got: str, want: Any, kind: str) -> None:
        if want is None:
            if got != "":
                self.add(f"{where} {column}: {got!r} should be empty")
            return
        if got == "":
            self.add(f"{where} {column}: empty, expected {want:.4f}")
            return
        if column in LOSS_COLUMNS and not FOUR_DECIMALS.match(got):
            self.add(f"{where} {column}: {got!r} has more than 4 decimals")
        tol = loss_tol(want) if kind == "loss" else length_tol(want)
        if abs(float(got) - float(want)) > tol:
            self.add(f"{where} {column}: {got} != {want:.4f}")

    def table(self, name: str, got: pd.DataFrame, want: pd.DataFrame, key: Sequence[str],
              kinds: dict[str, str],
              skip: Skip | None = None,
              ignore: Iterable[tuple[str, ...]] = ()) -> None:
        """Compare a written table with the reference's, row by key, column by kind.

        ``skip(column, reference row, written row)`` leaves a cell out;
        ``ignore`` lists keys left out on both sides.
        """
        columns = list(want.columns)
        if list(got.columns[: len(columns)]) != columns:
            self.add(f"{name}: columns {list(got.columns)} do not start with {columns}")
            return
        ignored = set(ignore)
        got_rows = {tuple(r[k] for k in key): r for r in records(got)}
        want_rows = {tuple(as_text(r[k]) for k in key): r for r in records(want)}
        if len(got_rows) != len(got):
            self.add(f"{name}: duplicate keys {key}")
        missing = sorted(set(want_rows) - set(got_rows) - ignored)
        extra = sorted(set(got_rows) - set(want_rows) - ignored)
        if missing:
            self.add(f"{name}: missing rows {missing[:10]} ({len(missing)})")
        if extra:
            self.add(f"{name}: unexpected rows {extra[:10]} ({len(extra)})")
        for k in sorted(set(want_rows) & set(got_rows) - ignored):
            for column, kind in kinds.items():
                if skip is not None and skip(column, want_rows[k], got_rows[k]):
                    continue
                self.cell(f"{name}[{'/'.join(k)}]", column, got_rows[k][column],
                          want_rows[k][column], kind)

    def check(self) -> None:
        """Fail listing the first mismatches, if any."""
        shown = "\n".join(self.problems[:40])
        assert not self.problems, f"{len(self.problems)} mismatches:\n{shown}"


PATH_KINDS = {"olt_port_id": "text", "end_type": "text", "end_id": "text", "drop_id": "text",
              "premise_id": "text", "n_splices": "int", "n_connectors": "int",
              "splitter_ids": "text", "fiber_m": "length", "drop_m": "length",
              "loss_db": "loss", "margin_db": "loss", "in_budget": "text"}
HOP_KINDS = {"hop_type": "text", "ref_id": "text", "cable_id": "text", "strand": "int",
             "tube": "int", "colour": "text", "node_from": "text", "node_to": "text",
             "span_ids": "text", "length_m": "length", "loss_db": "loss",
             "cum_loss_db": "loss"}


def budget_skip(budget_db: float) -> Skip:
    """in_budget is not compared for a loss within tolerance of the budget."""

    def skip(column: str, want: dict[str, Any], got: dict[str, str]) -> bool:
        return column == "in_budget" and near_limit(want.get("loss_db"), budget_db)

    return skip


def skip_hop(column: str, want: dict[str, Any], got: dict[str, str]) -> bool:
    """Hop cells the model leaves open (see the reference's readings 5)."""
    if column == "length_m" and want["hop_type"] in ("connection", "splitter"):
        return got["length_m"] in ("", "0", "0.0") or float(got["length_m"] or 1) == 0.0
    if column == "node_to" and want["hop_type"] == "drop":
        return got["node_to"] in ("", want["node_from"])
    return False


def compare_trace(out: Path, ref: TraceResult, diff: Diff,
                  budget_db: float = PARAMS.budget_db) -> None:
    """trace_paths.csv, trace_hops.csv and upstream.csv against the reference."""
    diff.table("trace_paths", read_csv(out / "trace_paths.csv"), ref.trace_paths,
               ["path_id"], PATH_KINDS, budget_skip(budget_db))
    diff.table("trace_hops", read_csv(out / "trace_hops.csv"),
               ref.trace_hops.assign(seq=ref.trace_hops["seq"].astype(str)),
               ["path_id", "seq"], HOP_KINDS, skip_hop)
    compare_upstream(read_csv(out / "upstream.csv"), ref, diff, budget_db)


def compare_upstream(got: pd.DataFrame, ref: TraceResult, diff: Diff,
                     budget_db: float = PARAMS.budget_db) -> None:
    """upstream.csv: the best path of a drop may be any path within 1e-6 dB of the least."""
    on_budget = budget_skip(budget_db)

    def skip(column: str, want: dict[str, Any], row: dict[str, str]) -> bool:
        if column == "in_budget":
            if want["status"] == "open":
                return row["in_budget"] in ("", "false")
            return on_budget(column, want, row)
        if column in ("olt_port_id", "path_id") and want["status"] == "connected":
            candidates: list[TracePath] = ref.candidates[want["drop_id"]]
            least = min(p.loss_db for p in candidates)
            allowed = {(p.olt_port_id, p.path_id) for p in candidates
                       if p.loss_db <= least + 1e-6}
            if (row["olt_port_id"], row["path_id"]) not in allowed:
                diff.add(f"upstream[{want['drop_id']}] best path {row['olt_port_id']} "
                         f"{row['path_id']} not among {sorted(allowed)}")
            return True
        return False

    kinds = {"premise_id": "text", "status": "text", "olt_port_id": "text", "path_id": "text",
             "loss_db": "loss", "in_budget": "text"}
    diff.table("upstream", got, ref.upstream, ["drop_id"], kinds, skip)


def borderline_cut(ref: TraceResult) -> set[tuple[str, ...]]:
    """Premises whose rerouted status hangs on a loss change within 1e-3 dB of 0.02 dB."""
    before, after = best_by_premise(ref.before), best_by_premise(ref.paths)
    out: set[tuple[str, ...]] = set()
    for pid, pb in before.items():
        pa = after.get(pid)
        if pa is not None and abs(abs(pa.loss_db - pb.loss_db) - 0.02) < 1e-3:
            out.add((pid,))
    return out


def compare_cut(out: Path, ref: TraceResult, diff: Diff) -> None:
    """cut_premises.csv against the reference."""
    assert ref.cut_premises is not None
    kinds = {"units": "int", "status": "text", "olt_port_before": "text",
             "olt_port_after": "text", "loss_before_db": "loss", "loss_after_db": "loss"}
    diff.table("cut_premises", read_csv(out / "cut_premises.csv"), ref.cut_premises,
               ["premise_id"], kinds, ignore=borderline_cut(ref))


def borderline_connectable(net: Network, ref: CapacityResult) -> set[tuple[str, ...]]:
    """Premises whose connectable answer hangs on a distance or loss within tolerance."""
    out: set[tuple[str, ...]] = set()
    ports = [r for r in ref.splitter_ports.to_dict("records") if r["live"] and r["ports_free"]]
    for row in ref.premise_capacity.to_dict("records"):
        if row["connected"]:
            continue
        for r in ports:
            dist = net.distance_m(row["premise_id"], r["node_id"])
            loss = (r["input_loss_db"] + net.splitters[r["splitter_id"]]["loss_db"]
                    + PARAMS.atten_db_per_km * dist / 1000 + PARAMS.fixed_db)
            if abs(dist - PARAMS.drop_m) <= length_tol(PARAMS.drop_m) or near_limit(
                    loss, PARAMS.budget_db):
                out.add((row["premise_id"],))
    return out


def find_key(doc: Any, key: str) -> Any:
    """A key anywhere in a JSON document (None when absent)."""
    if isinstance(doc, dict):
        if key in doc:
            return doc[key]
        for value in doc.values():
            found = find_key(value, key)
            if found is not None:
                return found
    return None


def compare_capacity(out: Path, net: Network, ref: CapacityResult, diff: Diff) -> None:
    """The capacity files against the reference."""
    spans = {c: "int" for c in SPAN_CAPACITY_COLUMNS[1:]}
    diff.table("span_capacity", read_csv(out / "span_capacity.csv"),
               ref.span_capacity, ["span_id"], spans)
    ports = {"node_id": "text", "ratio": "int", "ports_used": "int", "ports_free": "int",
             "live": "text", "input_loss_db": "loss"}
    diff.table("splitter_ports", read_csv(out / "splitter_ports.csv"), ref.splitter_ports,
               ["splitter_id"], ports)
    premises = {"units": "int", "passed": "text", "connected": "text", "loss_db": "loss",
                "in_budget": "text", "connectable": "text", "nearest_splitter_id": "text"}
    shaky = borderline_connectable(net, ref)

    def skip(column: str, want: dict[str, Any], got: dict[str, str]) -> bool:
        if column in ("connectable", "nearest_splitter_id"):
            return (want["premise_id"],) in shaky
        return budget_skip(PARAMS.budget_db)(column, want, got)

    diff.table("premise_capacity", read_csv(out / "premise_capacity.csv"),
               ref.premise_capacity, ["premise_id"], premises, skip)
    kpis = json.loads((out / "capacity.json").read_text(encoding="utf-8"))
    for key in ("units_connectable", "ports_free"):
        got = find_key(kpis, key)
        if got != ref.kpis[key] and not (key == "units_connectable" and shaky):
            diff.add(f"capacity.json {key}: {got!r} != {ref.kpis[key]!r}")
    got_km = find_key(kpis, "strands_free_km")
    want_km = ref.kpis["strands_free_km"]
    if not isinstance(got_km, int | float) or abs(got_km - want_km) > 0.005 * want_km + 1e-6:
        diff.add(f"capacity.json strands_free_km: {got_km!r} != {want_km:.4f}")


# ---------------------------------------------------------------------------------------
# random cuts


def random_cut(net: Network, paths: Sequence[TracePath], rng: random.Random
               ) -> tuple[list[str], Cut]:
    """1 to 3 cut items (spans, strands, strands on a span, nodes, ducts), mostly on paths
    that reach premises; the command-line arguments and the reference's Cut."""
    hops = [h for p in paths if p.end_type == "premise" for h in p.hops] or \
        [h for p in paths for h in p.hops]
    pieces = [h.piece for h in hops if h.piece is not None]
    spans = sorted({s for pc in pieces for s in pc.spans}) or sorted(net.span_status)
    nodes = sorted({n for pc in pieces for n in pc.nodes}) or sorted(net.node_status)
    strands = sorted({(pc.cable_id, pc.strand, s) for pc in pieces for s in pc.spans})
    ducts = sorted({d for d in net.span_duct.values() if d})
    kinds = ["span", "node"] + (["strand", "strand_on"] if strands else []) + \
        (["duct"] if ducts else [])
    args: list[str] = []
    cut: dict[str, list[str]] = {"spans": [], "strands": [], "nodes": [], "ducts": []}
    for kind in rng.sample(kinds, rng.randint(1, min(3, len(kinds)))):
        if kind == "span":
            cut["spans"].append(rng.choice(spans))
            args += ["--cut-spans", cut["spans"][-1]]
        elif kind == "node":
            cut["nodes"].append(rng.choice(nodes))
            args += ["--fail-nodes", cut["nodes"][-1]]
        elif kind == "duct":
            cut["ducts"].append(rng.choice(ducts))
            args += ["--fail-ducts", cut["ducts"][-1]]
        else:
            c, k, s = rng.choice(strands)
            cut["strands"].append(f"{c}:{k}@{s}" if kind == "strand_on" else f"{c}:{k}")
            args += ["--cut-strands", cut["strands"][-1]]
    return args, Cut.parse(**cut)


# ---------------------------------------------------------------------------------------
# the engine against the reference, random networks


@pytest.mark.parametrize("seed", SEEDS)
def test_engine_trace_matches_reference(tmp_path: Path, seed: int) -> None:
    data = write_random_strand_dataset(tmp_path / "data", seed)
    net = Network.load(data)
    diff = Diff()
    run_ok("trace", data, "--out", tmp_path / "plain")
    plain = trace(net)
    compare_trace(tmp_path / "plain", plain, diff)
    if seed % 3 == 0:
        run_ok("trace", data, "--out", tmp_path / "planned", "--include-planned")
        compare_trace(tmp_path / "planned", trace(net, include_planned=True), diff)
    if seed % 10 == 1:      # other loss parameters
        params = Params(atten_db_per_km=0.4, splice_db=0.15, connector_db=0.3, fixed_db=2.0,
                        budget_db=25.0)
        run_ok("trace", data, "--out", tmp_path / "params", "--atten-db-per-km", "0.4",
               "--splice-db", "0.15", "--connector-db", "0.3", "--fixed-db", "2",
               "--budget-db", "25")
        compare_trace(tmp_path / "params", trace(net, params=params), diff, params.budget_db)
    if seed % 10 == 2 and plain.paths:     # one OLT port: its paths, numbered as before
        port = random.Random(seed).choice(sorted({p.olt_port_id for p in plain.paths}))
        run_ok("trace", data, "--out", tmp_path / "port", "--olt-port", port)
        mine = plain.trace_paths["olt_port_id"] == port
        diff.table("trace_paths --olt-port", read_csv(tmp_path / "port" / "trace_paths.csv"),
                   plain.trace_paths[mine], ["path_id"], PATH_KINDS, budget_skip(PARAMS.budget_db))
    if seed % 10 == 3 and not plain.upstream.empty:     # one premise: its drops upstream
        premise = random.Random(seed).choice(sorted(plain.upstream["premise_id"]))
        run_ok("trace", data, "--out", tmp_path / "premise", "--premise", premise)
        compare_upstream(read_csv(tmp_path / "premise" / "upstream.csv"), replace(
            plain, upstream=plain.upstream[plain.upstream["premise_id"] == premise]), diff)
    diff.check()


@pytest.mark.parametrize("seed", SEEDS)
def test_engine_cut_matches_reference(tmp_path: Path, seed: int) -> None:
    data = write_random_strand_dataset(tmp_path / "data", seed)
    net = Network.load(data)
    planned = seed % 3 == 1
    rng = random.Random(seed * 7919 + 1)
    args, cut = random_cut(net, trace(net, include_planned=planned).paths, rng)
    ref = trace(net, cut=cut, include_planned=planned)
    run_ok("trace", data, "--out", tmp_path / "cut", *args,
           *(["--include-planned"] if planned else []))
    diff = Diff()
    compare_trace(tmp_path / "cut", ref, diff)
    compare_cut(tmp_path / "cut", ref, diff)
    diff.check()


@pytest.mark.parametrize("seed", SEEDS)
def test_engine_capacity_matches_reference(tmp_path: Path, seed: int) -> None:
    data = write_random_strand_dataset(tmp_path / "data", seed)
    net = Network.load(data)
    run_ok("capacity", data, "--out", tmp_path / "cap")
    diff = Diff()
    compare_capacity(tmp_path / "cap", net, capacity(net), diff)
    diff.check()


@pytest.mark.parametrize("seed", SEEDS)
def test_engine_diversity_matches_reference(tmp_path: Path, seed: int) -> None:
    from typer.testing import CliRunner

    from netgis.cli import app
    from netgis.errors import NetgisError

    data = write_random_strand_dataset(tmp_path / "data", seed)
    net = Network.load(data)
    best = best_by_premise(trace(net).paths)
    rng = random.Random(seed)
    connected = sorted(best)
    if connected:
        a, b = rng.choice(connected), rng.choice(connected)
        result = run_ok("diversity", data, a, b)
        got = json.loads(result.stdout)
        want = diversity(net, a, b)
        assert {k: got.get(k) for k in DIVERSITY_KEYS} == want, (a, b)
    unconnected = sorted(set(net.premise_units) - set(best))
    if unconnected:
        other = connected[0] if connected else unconnected[-1]
        # in-process, the error the script turns into exit 2 (see the drawn-case test below)
        result = CliRunner().invoke(app, ["diversity", str(data), rng.choice(unconnected),
                                          other])
        assert result.exit_code == 2 or isinstance(result.exception, NetgisError), (
            result.output, result.exception)


def test_engine_diversity_of_an_unconnected_premise_exits_2(tmp_path: Path) -> None:
    data = write_strand_dataset(tmp_path / "data", *case_chain())
    run = netgis_process("diversity", data, "H1", "H2")
    assert run.returncode == 2, (run.stdout, run.stderr)
    assert "Traceback" not in run.stderr
    assert json.loads(netgis_process("diversity", data, "H1", "H1").stdout)["shared_nodes"] \
        == ["SPL"]


@pytest.mark.parametrize("case", ["chain", "express", "reversed", "broken", "two_inputs"])
def test_engine_on_drawn_cases(tmp_path: Path, case: str) -> None:
    data = write_strand_dataset(tmp_path / "data", *DRAWN[case]())
    net = Network.load(data)
    diff = Diff()
    run_ok("trace", data, "--out", tmp_path / "plain")
    compare_trace(tmp_path / "plain", trace(net), diff)
    run_ok("trace", data, "--out", tmp_path / "planned", "--include-planned")
    compare_trace(tmp_path / "planned", trace(net, include_planned=True), diff)
    run_ok("capacity", data, "--out", tmp_path / "cap")
    compare_capacity(tmp_path / "cap", net, capacity(net), diff)
    first_span = sorted(net.span_status)[0]
    run_ok("trace", data, "--out", tmp_path / "cut", "--cut-spans", first_span,
           "--include-planned")
    cut_ref = trace(net, cut=Cut.parse(spans=[first_span]), include_planned=True)
    compare_trace(tmp_path / "cut", cut_ref, diff)
    compare_cut(tmp_path / "cut", cut_ref, diff)
    diff.check()


def test_engine_trace_without_strand_layers_exits_2(tmp_path: Path) -> None:
    route, _ = random_strand_network(1)
    data = tmp_path / "data"
    data.mkdir()
    for name, frame in route.items():
        frame.to_file(data / f"{name}.geojson", driver="GeoJSON")
    run = netgis_process("trace", data, "--out", tmp_path / "out")
    assert run.returncode == 2, (run.stdout, run.stderr)
    assert "Traceback" not in run.stderr


# ---------------------------------------------------------------------------------------
# the generator


def test_reference_generator_networks_are_valid(tmp_path: Path) -> None:
    for seed in range(40):
        data = write_random_strand_dataset(tmp_path / str(seed), seed)
        net = Network.load(data)
        assert static_errors(net) == [], seed
        assert 5 <= len(net.node_status) <= 25


def test_reference_generator_is_deterministic(tmp_path: Path) -> None:
    a = write_random_strand_dataset(tmp_path / "a", 11)
    b = write_random_strand_dataset(tmp_path / "b", 11)
    for path in sorted(a.iterdir()):
        assert path.read_bytes() == (b / path.name).read_bytes(), path.name


def test_reference_generator_covers_the_model(tmp_path: Path) -> None:
    """Over the seeds the engine is tested on, every feature of the model turns up."""
    seen: set[str] = set()
    for seed in SEEDS:
        net = Network.load(write_random_strand_dataset(tmp_path / str(seed), seed))
        for planned in (False, True):
            ref = trace(net, include_planned=planned)
            seen |= {f"end {p.end_type}" for p in ref.paths}
            seen |= features(net, ref)
        seen |= {f"status {s}" for s in [*net.node_status.values(), *net.span_status.values(),
                                          *net.cable_status.values()]}
        seen |= {f"strand {s}" for s in net.state.values()}
    wanted = {"end premise", "end open", "end olt", "end reversed_splitter", "cascade",
              "two inputs fed", "express", "two drops", "drop from strand",
              "drop from splitter", "upstream open", "status planned", "status retired",
              "strand broken", "strand reserved", "splice", "connector", "out of budget",
              "no path"}
    assert wanted <= seen, wanted - seen


def features(net: Network, ref: TraceResult) -> set[str]:
    """What a trace exercises (for the coverage test)."""
    out = set()
    by_splitter: dict[str, set[str]] = {}
    for p in ref.paths:
        hops = p.hops
        if sum(h.hop_type == "splitter" for h in hops) >= 2:
            out.add("cascade")
        if any(h.piece is not None and len(h.piece.nodes) > 2 for h in hops):
            out.add("express")
        out |= {h.kind for h in hops if h.hop_type == "connection"}
        if p.loss_db > PARAMS.budget_db:
            out.add("out of budget")
        if p.drop_id:
            out.add("drop from splitter" if hops[-2].hop_type == "splitter"
                    else "drop from strand")
        for i, h in enumerate(hops):
            if h.hop_type == "splitter":
                by_splitter.setdefault(h.ref_id, set()).add(hops[i - 1].ref_id)
    if any(len(v) > 1 for v in by_splitter.values()):
        out.add("two inputs fed")
    up = ref.upstream
    if (up["status"] == "open").any():
        out.add("upstream open")
    if up[up["status"] == "connected"]["premise_id"].duplicated().any():
        out.add("two drops")
    traced = {p.olt_port_id for p in ref.paths}
    if set(net.olt_node) - traced:
        out.add("no path")
    return out


# ---------------------------------------------------------------------------------------
# drawn networks (geodesic meters, see tests.strandnet.place) and their answers by hand


def strand(cable: str, num: int, side: str = "") -> dict[str, Any]:
    """A strand terminal's columns (prefix-free)."""
    return {"type": "strand", "id": cable, "num": num, "side": side or None}


def port(kind: str, ident: str, num: int | None = None) -> dict[str, Any]:
    """An olt/in/out terminal's columns (prefix-free)."""
    return {"type": kind, "id": ident, "num": num, "side": None}


def conn(cid: str, node: str, kind: str, a: dict[str, Any], b: dict[str, Any],
         loss: float | None = None) -> dict[str, Any]:
    """A connection row."""
    row = {"connection_id": cid, "node_id": node, "kind": kind, "loss_db": loss}
    row.update({f"a_{k}": v for k, v in a.items()})
    row.update({f"b_{k}": v for k, v in b.items()})
    return row


def drop(did: str, premise: str, node: str, src: dict[str, Any],
         length: float | None = None) -> dict[str, Any]:
    """A drop row."""
    return {"drop_id": did, "premise_id": premise, "node_id": node, "src_type": src["type"],
            "src_id": src["id"], "src_num": src["num"], "src_side": src["side"],
            "length_m": length}


def cable(cid: str, a: str, b: str, fibers: int, per_tube: int | None = None,
          status: str | None = None) -> dict[str, Any]:
    """A cables row."""
    return {"cable_id": cid, "from_node": a, "to_node": b, "fiber_count": fibers,
            "fibers_per_tube": per_tube, "status": status}


def spans_of(cid: str, *spans: str) -> list[dict[str, Any]]:
    """cable_spans rows."""
    return [{"cable_id": cid, "seq": i, "span_id": s} for i, s in enumerate(spans, start=1)]


def case_chain() -> tuple[Any, Any]:
    """CO -1000 m- SPL -1500 m- CAB: OLT P1, cable K1 (24 strands), splice, cable K2 (12,
    4 per tube), a 1:4 splitter at CAB, a drop from output 2 to H1 (50 m north)."""
    route = hand_network(
        [("CO", 0, 0, "core"), ("SPL", 1000, 0, "splice"),
         ("CAB", 2500, 0, "splitter", "in_service", 4)],
        [("s1", "CO", "SPL", "in_service", "D1"), ("s2", "SPL", "CAB")],
        [("H1", 2500, 50), ("H2", 2500, -80, 3), ("H3", 0, 5000)])
    strands = strand_frames({
        "cables": [cable("K1", "CO", "SPL", 24), cable("K2", "SPL", "CAB", 12, 4)],
        "cable_spans": spans_of("K1", "s1") + spans_of("K2", "s2"),
        "splitters": [{"splitter_id": "SP1", "node_id": "CAB", "ratio": 4}],
        "olt_ports": [{"olt_port_id": "P1", "node_id": "CO", "olt_id": "OLT1"}],
        "connections": [
            conn("c1", "CO", "connector", port("olt", "P1"), strand("K1", 14)),
            conn("c2", "SPL", "splice", strand("K1", 14), strand("K2", 7, "to")),
            conn("c3", "CAB", "connector", strand("K2", 7, "from"), port("in", "SP1", 1))],
        "drops": [drop("d1", "H1", "CAB", port("out", "SP1", 2))],
        "strand_state": [{"cable_id": "K1", "strand": 5, "state": "reserved"},
                         {"cable_id": "K2", "strand": 3, "state": "broken"},
                         {"cable_id": "K2", "strand": 7, "state": "reserved"}]})
    return route, strands


def case_express() -> tuple[Any, Any]:
    """CO -300- A -400- B -500- C, one cable K1 over s1, s2, s3 (s3 drawn C to B); strand 1
    passes A and B untouched to a drop at C, strand 2 is cut at B by a drop."""
    route = hand_network(
        [("CO", 0, 0, "core"), ("A", 300, 0, "handhole"), ("B", 700, 0, "cabinet"),
         ("C", 1200, 0, "pole")],
        [("s1", "CO", "A", "in_service", "D1"), ("s2", "A", "B"), ("s3", "C", "B")],
        [("H1", 1200, 60), ("H2", 700, 30)])
    strands = strand_frames({
        "cables": [cable("K1", "CO", "C", 8, 4)],
        "cable_spans": spans_of("K1", "s1", "s2", "s3"),
        "olt_ports": [{"olt_port_id": "P1", "node_id": "CO"},
                      {"olt_port_id": "P2", "node_id": "CO"}],
        "connections": [
            conn("c1", "CO", "connector", port("olt", "P1"), strand("K1", 1, "to")),
            conn("c2", "CO", "connector", port("olt", "P2"), strand("K1", 2))],
        "drops": [drop("d1", "H1", "C", strand("K1", 1), 20.0),
                  drop("d2", "H2", "B", strand("K1", 2, "from"))],
        "strand_state": [{"cable_id": "K1", "strand": 2, "state": "reserved"}]})
    return route, strands


def case_reversed() -> tuple[Any, Any]:
    """CO -800- CAB; P1 runs into output 2 of an unfed 1:2 splitter at CAB, P2 runs to
    the OLT port P3 at CAB (a splice of 0.25 dB)."""
    route = hand_network(
        [("CO", 0, 0, "core"), ("CAB", 800, 0, "cabinet")], [("s1", "CO", "CAB")],
        [("H1", 800, 40)])
    strands = strand_frames({
        "cables": [cable("K1", "CO", "CAB", 4)],
        "cable_spans": spans_of("K1", "s1"),
        "splitters": [{"splitter_id": "SP1", "node_id": "CAB", "ratio": 2}],
        "olt_ports": [{"olt_port_id": "P1", "node_id": "CO"},
                      {"olt_port_id": "P2", "node_id": "CO"},
                      {"olt_port_id": "P3", "node_id": "CAB"}],
        "connections": [
            conn("c1", "CO", "connector", port("olt", "P1"), strand("K1", 1)),
            conn("c2", "CAB", "connector", strand("K1", 1), port("out", "SP1", 2)),
            conn("c3", "CO", "connector", strand("K1", 2), port("olt", "P2")),
            conn("c4", "CAB", "splice", port("olt", "P3"), strand("K1", 2, "from"), 0.25)]})
    return route, strands


def case_broken() -> tuple[Any, Any]:
    """CO -500- A -1000- B; P1 over K1 strand 1, spliced at A to K2 strand 1 (broken),
    which drops to H1 at B."""
    route = hand_network(
        [("CO", 0, 0, "core"), ("A", 500, 0, "splice"), ("B", 1500, 0, "cabinet")],
        [("s1", "CO", "A"), ("s2", "A", "B")], [("H1", 1500, 40)])
    strands = strand_frames({
        "cables": [cable("K1", "CO", "A", 2), cable("K2", "A", "B", 2)],
        "cable_spans": spans_of("K1", "s1") + spans_of("K2", "s2"),
        "olt_ports": [{"olt_port_id": "P1", "node_id": "CO"}],
        "connections": [
            conn("c1", "CO", "connector", port("olt", "P1"), strand("K1", 1)),
            conn("c2", "A", "splice", strand("K1", 1), strand("K2", 1, "to"))],
        "drops": [drop("d1", "H1", "B", strand("K2", 1, "from"))],
        "strand_state": [{"cable_id": "K2", "strand": 1, "state": "broken"}]})
    return route, strands


def case_two_inputs() -> tuple[Any, Any]:
    """CO1 -1000- CAB -2000- CO2 (s2 planned); a 2-input splitter (4.0 dB) at CAB fed by P1
    and, over the planned span, by P2 (a 0.3 dB connector); H1 drops from output 1."""
    route = hand_network(
        [("CO1", 0, 0, "core"), ("CAB", 1000, 0, "cabinet"), ("CO2", 3000, 0, "core")],
        [("s1", "CO1", "CAB"), ("s2", "CO2", "CAB", "planned")], [("H1", 1000, 90)])
    strands = strand_frames({
        "cables": [cable("K1", "CO1", "CAB", 2), cable("K2", "CO2", "CAB", 2)],
        "cable_spans": spans_of("K1", "s1") + spans_of("K2", "s2"),
        "splitters": [{"splitter_id": "SP1", "node_id": "CAB", "ratio": 2, "inputs": 2,
                       "loss_db": 4.0}],
        "olt_ports": [{"olt_port_id": "P1", "node_id": "CO1"},
                      {"olt_port_id": "P2", "node_id": "CO2"}],
        "connections": [
            conn("c1", "CO1", "connector", port("olt", "P1"), strand("K1", 1)),
            conn("c2", "CAB", "connector", strand("K1", 1), port("in", "SP1", 1)),
            conn("c3", "CO2", "connector", port("olt", "P2"), strand("K2", 1)),
            conn("c4", "CAB", "connector", strand("K2", 1), port("in", "SP1", 2), 0.3)],
        "drops": [drop("d1", "H1", "CAB", port("out", "SP1", 1), 100.0)]})
    return route, strands


DRAWN: dict[str, Callable[[], tuple[Any, Any]]] = {
    "chain": case_chain, "express": case_express, "reversed": case_reversed,
    "broken": case_broken, "two_inputs": case_two_inputs}


def load(tmp_path: Path, case: str) -> Network:
    """A drawn case written and read back."""
    return Network.load(write_strand_dataset(tmp_path / case, *DRAWN[case]()))


def rows(frame: pd.DataFrame, key: str) -> dict[str, dict[str, Any]]:
    """Reference rows by key."""
    return {r[key]: r for r in records(frame)}


def hop_rows(ref: TraceResult, path_id: str) -> list[tuple[Any, ...]]:
    """(hop_type, ref_id, cable_id, strand, tube, colour, node_from, node_to, span_ids) of
    a path's hops."""
    hops = ref.trace_hops[ref.trace_hops["path_id"] == path_id]
    return [tuple(r[c] for c in HOP_COLUMNS[2:11]) for r in hops.to_dict("records")]


def approx(value: float) -> Any:
    """Equal to 1e-6 (the drawings' lengths are exact geodesic meters)."""
    return pytest.approx(value, abs=1e-6)


def test_reference_hand_case_chain_trace(tmp_path: Path) -> None:
    net = load(tmp_path, "chain")
    ref = trace(net)
    paths = rows(ref.trace_paths, "path_id")
    assert list(paths) == ["P1/1", "P1/2", "P1/3", "P1/4"]
    # 1 fixed + 0.5 connector + 0.35 (1 km) + 0.1 splice + 0.525 (1.5 km) + 0.5 + 7.3 (1:4)
    assert [paths[p]["end_id"] for p in paths] == ["out:SP1:1", "H1", "out:SP1:3", "out:SP1:4"]
    assert [paths[p]["end_type"] for p in paths] == ["open", "premise", "open", "open"]
    assert paths["P1/1"]["loss_db"] == approx(10.275)
    h1 = paths["P1/2"]
    assert (h1["drop_id"], h1["premise_id"], h1["n_splices"], h1["n_connectors"],
            h1["splitter_ids"]) == ("d1", "H1", 1, 2, "SP1")
    assert h1["fiber_m"] == approx(2500.0) and h1["drop_m"] == approx(50.0)
    assert h1["loss_db"] == approx(10.2925) and h1["margin_db"] == approx(17.7075)
    assert h1["in_budget"] is True
    # strand 14 of a 24-strand cable (one tube): tube 1, colour 14 = orange;
    # strand 7 with 4 per tube: tube 2, position 3 = green
    assert hop_rows(ref, "P1/2") == [
        ("connection", "c1", None, None, None, None, "CO", "CO", None),
        ("piece", "K1", "K1", 14, 1, "orange", "CO", "SPL", "s1"),
        ("connection", "c2", None, None, None, None, "SPL", "SPL", None),
        ("piece", "K2", "K2", 7, 2, "green", "SPL", "CAB", "s2"),
        ("connection", "c3", None, None, None, None, "CAB", "CAB", None),
        ("splitter", "SP1", None, None, None, None, "CAB", "CAB", None),
        ("drop", "d1", None, None, None, None, "CAB", None, None)]
    hops = ref.trace_hops[ref.trace_hops["path_id"] == "P1/2"]
    assert list(hops["loss_db"]) == [approx(v) for v in
                                     (0.5, 0.35, 0.1, 0.525, 0.5, 7.3, 0.0175)]
    assert list(hops["cum_loss_db"]) == [approx(v) for v in
                                         (0.5, 0.85, 0.95, 1.475, 1.975, 9.275, 9.2925)]
    assert list(hops["length_m"])[1::2] == [approx(1000.0), approx(1500.0), None]
    up = ref.upstream.to_dict("records")
    assert up == [{"premise_id": "H1", "drop_id": "d1", "status": "connected",
                   "olt_port_id": "P1", "path_id": "P1/2", "loss_db": approx(10.2925),
                   "in_budget": True}]


def test_reference_hand_case_chain_capacity(tmp_path: Path) -> None:
    net = load(tmp_path, "chain")
    cap = capacity(net)
    spans = rows(cap.span_capacity, "span_id")
    # K1:14 lit, K1:5 reserved; K2:7 lit although reserved, K2:3 broken
    assert [spans["s1"][c] for c in SPAN_CAPACITY_COLUMNS[1:]] == [1, 24, 1, 0, 1, 0, 22]
    assert [spans["s2"][c] for c in SPAN_CAPACITY_COLUMNS[1:]] == [1, 12, 1, 0, 0, 1, 10]
    [sp] = cap.splitter_ports.to_dict("records")
    assert [sp[c] for c in SPLITTER_PORT_COLUMNS[:6]] == ["SP1", "CAB", 4, 1, 3, True]
    assert sp["input_loss_db"] == approx(0.5 + 0.35 + 0.1 + 0.525 + 0.5)
    prem = rows(cap.premise_capacity, "premise_id")
    assert [prem["H1"][c] for c in PREMISE_CAPACITY_COLUMNS[1:]] == [
        1, True, True, approx(10.2925), True, False, None]
    # H2, 80 m from SP1: 1.975 + 7.3 + 0.35 * 0.08 + 1 = 10.303 dB
    assert [prem["H2"][c] for c in PREMISE_CAPACITY_COLUMNS[1:]] == [
        3, True, False, None, False, True, "SP1"]
    assert [prem["H3"][c] for c in PREMISE_CAPACITY_COLUMNS[1:]] == [
        1, False, False, None, False, False, None]
    assert cap.kpis["units_connectable"] == 3 and cap.kpis["ports_free"] == 3
    assert cap.kpis["strands_free_km"] == approx(22 * 1.0 + 10 * 1.5)


@pytest.mark.parametrize(("cut", "last"), [
    (Cut.parse(spans=["s2"]), ("c2", "strand:K2:7:to")),
    (Cut.parse(strands=["K2:7"]), ("c2", "strand:K2:7:to")),
    (Cut.parse(strands=["K1:14@s1"]), ("c1", "strand:K1:14:to")),
    (Cut.parse(nodes=["SPL"]), ("c1", "strand:K1:14:to")),
    (Cut.parse(ducts=["D1"]), ("c1", "strand:K1:14:to")),
    (Cut.parse(nodes=["CO"]), None),
])
def test_reference_hand_case_chain_cuts(tmp_path: Path, cut: Cut,
                                        last: tuple[str, str] | None) -> None:
    net = load(tmp_path, "chain")
    ref = trace(net, cut=cut)
    if last is None:     # the OLT port's node failed: no path at all
        assert ref.trace_paths.empty
    else:
        [path] = ref.trace_paths.to_dict("records")
        assert (path["path_id"], path["end_type"], path["end_id"]) == ("P1/1", "open", last[1])
        assert ref.trace_hops["ref_id"].iloc[-1] == last[0]
    assert ref.cut_premises is not None
    assert ref.cut_premises.to_dict("records") == [{
        "premise_id": "H1", "units": 1, "status": "lost", "olt_port_before": "P1",
        "olt_port_after": None, "loss_before_db": approx(10.2925), "loss_after_db": None}]
    assert ref.dark_splitters == ["SP1"]
    assert ref.upstream["status"].tolist() == ["open"]


def test_reference_hand_case_chain_diversity(tmp_path: Path) -> None:
    net = load(tmp_path, "chain")
    # nodes: CO, SPL, CAB of pieces, connections and the splitter, less CO (OLT) and CAB (drop)
    assert diversity(net, "H1", "H1") == {
        "diverse_span": False, "diverse_duct": False, "diverse_node": False,
        "shared_spans": ["s1", "s2"], "shared_ducts": ["D1"], "shared_nodes": ["SPL"]}
    with pytest.raises(NotConnectedError):
        diversity(net, "H1", "H2")


def test_reference_hand_case_express(tmp_path: Path) -> None:
    net = load(tmp_path, "express")
    ref = trace(net)
    paths = rows(ref.trace_paths, "path_id")
    assert list(paths) == ["P1/1", "P2/1"]
    # P1: 1 + 0.5 + 0.35 * 1.2 + 0.35 * 0.020 (length_m 20) = 1.927
    assert (paths["P1/1"]["end_id"], paths["P1/1"]["n_splices"]) == ("H1", 0)
    assert paths["P1/1"]["loss_db"] == approx(1.927)
    assert paths["P1/1"]["fiber_m"] == approx(1200.0)
    assert paths["P1/1"]["drop_m"] == approx(20.0)
    # P2: 1 + 0.5 + 0.35 * 0.7 + 0.35 * 0.030 (geodesic, 30 m) = 1.7555
    assert paths["P2/1"]["end_id"] == "H2" and paths["P2/1"]["loss_db"] == approx(1.7555)
    assert paths["P2/1"]["drop_m"] == approx(30.0)
    assert hop_rows(ref, "P1/1")[1] == ("piece", "K1", "K1", 1, 1, "blue", "CO", "C",
                                        "s1;s2;s3")
    assert hop_rows(ref, "P2/1")[1] == ("piece", "K1", "K1", 2, 1, "orange", "CO", "B",
                                        "s1;s2")
    cap = capacity(net, passed={})
    spans = rows(cap.span_capacity, "span_id")
    # s3: strand 1 lit; strand 2's piece B-C has nothing at its ends: reserved, not assigned
    assert [spans[s][c] for s in ("s1", "s2", "s3") for c in ("lit", "reserved", "free")] == [
        2, 0, 6, 2, 0, 6, 1, 1, 6]
    assert diversity(net, "H1", "H2") == {
        "diverse_span": False, "diverse_duct": False, "diverse_node": False,
        "shared_spans": ["s1", "s2"], "shared_ducts": ["D1"], "shared_nodes": ["A"]}
    lost = trace(net, cut=Cut.parse(nodes=["A"]))
    assert lost.trace_paths["end_id"].tolist() == ["strand:K1:1:to", "strand:K1:2:to"]
    assert lost.cut_premises is not None
    assert lost.cut_premises[["premise_id", "status"]].values.tolist() == [
        ["H1", "lost"], ["H2", "lost"]]
    one = trace(net, cut=Cut.parse(strands=["K1:1@s3"]))
    assert one.cut_premises is not None
    assert one.cut_premises["premise_id"].tolist() == ["H1"]
    none = trace(net, cut=Cut.parse(strands=["K1:2@s3"]))    # not on P2's path
    assert none.cut_premises is not None and none.cut_premises.empty


def test_reference_hand_case_reversed_splitter_and_olt_to_olt(tmp_path: Path) -> None:
    net = load(tmp_path, "reversed")
    ref = trace(net)
    paths = rows(ref.trace_paths, "path_id")
    assert {p: (r["end_type"], r["end_id"]) for p, r in paths.items()} == {
        "P1/1": ("reversed_splitter", "out:SP1:2"), "P2/1": ("olt", "P3"),
        "P3/1": ("olt", "P2")}
    assert paths["P1/1"]["loss_db"] == approx(1 + 0.5 + 0.28 + 0.5)
    assert paths["P2/1"]["loss_db"] == approx(1 + 0.5 + 0.28 + 0.25)
    assert (paths["P2/1"]["n_splices"], paths["P2/1"]["n_connectors"]) == (1, 1)
    assert hop_rows(ref, "P3/1") == [
        ("connection", "c4", None, None, None, None, "CAB", "CAB", None),
        ("piece", "K1", "K1", 2, 1, "orange", "CAB", "CO", "s1"),
        ("connection", "c3", None, None, None, None, "CO", "CO", None)]
    assert ref.upstream.empty
    cap = capacity(net, passed={"H1": True})
    [sp] = cap.splitter_ports.to_dict("records")
    assert (sp["ports_used"], sp["ports_free"], sp["live"], sp["input_loss_db"]) == (
        1, 1, False, None)
    assert [cap.span_capacity.iloc[0][c] for c in ("lit", "assigned", "free")] == [2, 0, 2]
    assert cap.premise_capacity["connectable"].tolist() == [False]
    assert cap.kpis["ports_free"] == 1


def test_reference_hand_case_broken_strand_open_end(tmp_path: Path) -> None:
    net = load(tmp_path, "broken")
    ref = trace(net)
    [path] = ref.trace_paths.to_dict("records")
    assert (path["end_type"], path["end_id"]) == ("open", "strand:K2:1:to")
    assert path["loss_db"] == approx(1 + 0.5 + 0.175 + 0.1)
    assert path["drop_id"] is None and path["drop_m"] is None
    assert ref.trace_hops["node_to"].tolist()[-1] == "A"
    assert ref.upstream.to_dict("records") == [{
        "premise_id": "H1", "drop_id": "d1", "status": "open", "olt_port_id": None,
        "path_id": None, "loss_db": None, "in_budget": False}]
    cap = capacity(net)
    spans = rows(cap.span_capacity, "span_id")
    assert [spans["s1"][c] for c in SPAN_CAPACITY_COLUMNS[1:]] == [1, 2, 1, 0, 0, 0, 1]
    assert [spans["s2"][c] for c in SPAN_CAPACITY_COLUMNS[1:]] == [1, 2, 0, 0, 0, 1, 1]
    assert [cap.premise_capacity.iloc[0][c] for c in ("passed", "connected", "connectable")] \
        == [True, False, False]
    failed = trace(net, cut=Cut.parse(nodes=["A"]))
    assert failed.trace_paths["end_id"].tolist() == ["strand:K1:1:to"]
    assert failed.cut_premises is not None and failed.cut_premises.empty


def test_reference_hand_case_two_inputs_and_planned(tmp_path: Path) -> None:
    net = load(tmp_path, "two_inputs")
    plain = rows(trace(net).trace_paths, "path_id")
    assert {p: r["end_id"] for p, r in plain.items()} == {
        "P1/1": "H1", "P1/2": "out:SP1:2", "P2/1": "strand:K2:1:to"}
    # 1 + 0.5 + 0.35 + 0.5 + 4.0 + 0.035 (100 m drop)
    assert plain["P1/1"]["loss_db"] == approx(6.385)
    assert plain["P2/1"]["loss_db"] == approx(1.5)
    planned = trace(net, include_planned=True)
    paths = rows(planned.trace_paths, "path_id")
    # over the planned span: 1 + 0.5 + 0.7 + 0.3 + 4.0 + 0.035
    assert paths["P2/1"]["end_id"] == "H1" and paths["P2/1"]["loss_db"] == approx(6.535)
    assert paths["P2/2"]["loss_db"] == approx(6.5)
    assert planned.upstream["path_id"].tolist() == ["P1/1"]
    assert sorted(p.path_id for p in planned.candidates["d1"]) == ["P1/1", "P2/1"]
    rerouted = trace(net, cut=Cut.parse(spans=["s1"]), include_planned=True)
    assert rerouted.cut_premises is not None
    assert rerouted.cut_premises.to_dict("records") == [{
        "premise_id": "H1", "units": 1, "status": "rerouted", "olt_port_before": "P1",
        "olt_port_after": "P2", "loss_before_db": approx(6.385),
        "loss_after_db": approx(6.535)}]
    assert rerouted.upstream["path_id"].tolist() == ["P2/1"]
    lost = trace(net, cut=Cut.parse(spans=["s1"]))
    assert lost.cut_premises is not None
    assert lost.cut_premises["status"].tolist() == ["lost"]
    cap = capacity(net, passed={"H1": True})
    [sp] = cap.splitter_ports.to_dict("records")
    assert sp["live"] is True and sp["input_loss_db"] == approx(1.35)


def test_reference_hand_case_loops_are_found(tmp_path: Path) -> None:
    """A closed loop of glass and a path back into its own splitter are reported."""
    route = hand_network([("CO", 0, 0, "core"), ("A", 400, 0, "cabinet")],
                         [("s1", "CO", "A")], [("H1", 400, 30)])
    strands = strand_frames({
        "cables": [cable("K1", "CO", "A", 4)],
        "cable_spans": spans_of("K1", "s1"),
        "splitters": [{"splitter_id": "SP1", "node_id": "A", "ratio": 2}],
        "connections": [
            conn("c1", "A", "splice", strand("K1", 1), strand("K1", 2)),
            conn("c2", "CO", "splice", strand("K1", 1), strand("K1", 2)),
            conn("c3", "A", "connector", port("out", "SP1", 1), strand("K1", 3)),
            conn("c4", "CO", "splice", strand("K1", 3), strand("K1", 4)),
            conn("c5", "A", "connector", strand("K1", 4), port("in", "SP1", 1))]})
    net = Network.load(write_strand_dataset(tmp_path / "loops", route, strands))
    errors = static_errors(net)
    assert any("closed loop" in e for e in errors)
    assert any("SP1" in e for e in errors)    # back into the input it came through


def test_reference_hand_case_columns(tmp_path: Path) -> None:
    """The reference's tables carry exactly the contract's columns."""
    net = load(tmp_path, "chain")
    ref = trace(net, cut=Cut.parse(spans=["s1"]))
    assert ref.cut_premises is not None
    assert tuple(ref.trace_paths.columns) == PATH_COLUMNS
    assert tuple(ref.trace_hops.columns) == HOP_COLUMNS
    assert tuple(ref.upstream.columns) == UPSTREAM_COLUMNS
    assert tuple(ref.cut_premises.columns) == CUT_COLUMNS
    cap = capacity(net, passed={})
    assert tuple(cap.span_capacity.columns) == SPAN_CAPACITY_COLUMNS
    assert tuple(cap.splitter_ports.columns) == SPLITTER_PORT_COLUMNS
    assert tuple(cap.premise_capacity.columns) == PREMISE_CAPACITY_COLUMNS
    assert set(cap.kpis) == {"units_connectable", "ports_free", "strands_free_km"}
