"""Live edits on a running netgis server: how long until an edit shows in the analysis answers.

Used by ``benchmarks/bench_live.py`` (recorded in RESULTS.md) and
``tests/api/test_live_edits.py`` (small, in ``make test``). Issue 28.

Writers edit at a steady pace (one edit every ``interval_s``): mostly a PATCH of
one premise's ``units`` (one more than before, so every value a premise takes is
new), and one of every ``span_every`` edits (the 2nd for the first writer, the
3rd for the next...) a PATCH of the writer's own span's
``status`` between ``in_service`` and ``planned``, a span chosen up front because
taking it out of service changes what thousands of units are passed. After each
write the writer itself polls an analysis read until the edit shows:

* a premise edit: ``GET /analysis/premises/{id}`` shows the new units (and, when
  the answer carries a data version, one at least the write's);
* a span edit: ``GET /analysis/coverage`` answers with a data version at least
  the write's, and its ``units_passed`` moved the way the edit moves it compared
  with a coverage answer read just before the write. Premise edits only add
  units, and at most as many passed units as total units, so the check allows for
  them: taking the span out must lower ``units_passed``, putting it back must raise
  it by more than ``units_total`` rose. When another writer's span edit falls in
  between, the direction is not checked (the data version alone decides).

The version of a write is its feature's ETag (the row version, which is the data
version of the write; docs/spec.md), or an ``X-Data-Version`` header when the
server sends one. An answer's version is its ``X-Data-Version`` header when
present, else its ``data_version`` field.

Readers alternate ``GET /analysis/premises/{random id}`` and ``GET /kpis`` as fast
as they answer. Afterwards :meth:`LiveResult.consistency` checks every versioned
answer against the writes: ``units_total`` of a /kpis or /analysis/coverage answer
must be the loaded total plus one per premise edit up to its data version, and a
versioned premise answer must show that premise's units at its version.
:func:`final_check` waits until ``/kpis`` reflects the database's data version,
runs ``netgis analyze --db`` on the same database and compares the KPIs.

Examples
--------
>>> same_value(1.0, 1.0 + 1e-12), same_value(3, 3.0000001), same_value(None, None)
(True, False, True)
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import json
import math
import os
import random
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
import numpy as np

from benchmarks.loadgen import percentile

if TYPE_CHECKING:
    from netgis.dataset import Dataset

#: A premise edit, a span edit.
PREMISE, SPAN = "premise", "span"
IN_SERVICE, PLANNED = "in_service", "planned"
#: Labels of the KPI rows that are not KPIs (/kpis rows, products.feeds.kpi_rows).
ROW_LABELS = ("scope", "area_id", "name")
_ETAG = re.compile(r'\s*(?:W/)?"(\d+)"\s*')


# ------------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class SpanChoice:
    """A span a writer toggles, its cut impact and what taking it out of service costs.

    ``effect_units``: passed units that are no longer passed when this span alone is
    planned, estimated from the local analysis with every chosen candidate planned.
    """

    span_id: str
    cut_units: int
    effect_units: int


@dataclass(frozen=True)
class LivePlan:
    """What the writers edit: premises (original units) dealt to writers, one span each."""

    units: Mapping[str, int]
    pools: list[list[str]]
    spans: list[SpanChoice]
    units_total: int
    premise_ids: list[str]


def plan_edits(dataset: Dataset, writers: int, *, min_cut_units: int = 1000,
               seed: int = 61) -> LivePlan:
    """Analyse ``dataset`` locally and choose what each of ``writers`` edits.

    Spans: in service, largest ``cut_units`` first, each one's lost premises disjoint
    from those of the spans already taken (so no chosen span is downstream of
    another); up to twice ``writers`` candidates, those with ``cut_units`` above
    ``min_cut_units`` when there are enough. One more analysis with every candidate
    planned tells each one's effect; the ``writers`` largest are kept.
    """
    from netgis.engine.analysis import analyze, scenario

    base = analyze(dataset)
    spans = base.spans
    ranked = spans[spans["status"] == IN_SERVICE].sort_values(
        ["cut_units", "span_id"], ascending=[False, True])
    taken: list[tuple[str, int, np.ndarray]] = []
    covered = np.zeros(len(base.premises), dtype=bool)
    for span_id, cut in zip(ranked["span_id"].head(10 * writers), ranked["cut_units"],
                            strict=False):
        if len(taken) >= 2 * writers or int(cut) <= 0:
            break
        if int(cut) <= min_cut_units and len(taken) >= writers:
            break
        lost = np.asarray(scenario(base, spans=[str(span_id)]).lost, dtype=bool)
        if (lost & covered).any():
            continue
        taken.append((str(span_id), int(cut), lost))
        covered |= lost
    choices = _effects(dataset, base, taken)[:writers]
    premises = dataset.premises
    ids = [str(v) for v in premises["premise_id"]]
    units = {pid: int(u) for pid, u in zip(ids, premises["units"], strict=True)}
    order = list(ids)
    random.Random(seed).shuffle(order)
    pools = [order[i::writers] for i in range(writers)]
    return LivePlan(units=units, pools=pools, spans=choices,
                    units_total=int(sum(units.values())), premise_ids=ids)


def _effects(dataset: Dataset, base: Any,
             taken: list[tuple[str, int, np.ndarray]]) -> list[SpanChoice]:
    """The candidates with their effect (largest first); those without any are dropped."""
    import dataclasses

    from netgis.engine.analysis import analyze

    if not taken:
        return []
    spans = dataset.spans.copy()
    spans.loc[spans["span_id"].isin([t[0] for t in taken]), "status"] = PLANNED
    planned = analyze(dataclasses.replace(dataset, spans=spans))
    before = base.premises["passed"].to_numpy(dtype=bool)
    after = planned.premises.set_index("premise_id")["passed"].reindex(
        base.premises["premise_id"]).eq(True).to_numpy(dtype=bool)
    units = base.premises["units"].to_numpy(dtype=np.int64)
    out = [SpanChoice(span_id, cut, int(units[lost & before & ~after].sum()))
           for span_id, cut, lost in taken]
    return sorted((c for c in out if c.effect_units > 0),
                  key=lambda c: (-c.effect_units, c.span_id))


# ---------------------------------------------------------------------------- observations


@dataclass
class Sample:
    """One request: what it was, how long it took, what came back (0: no response)."""

    kind: str
    seconds: float
    status: int
    error: str = ""


@dataclass
class Edit:
    """One edit and when it showed (``visible_s`` None: not within the time allowed)."""

    writer: int
    kind: str
    target: str
    value: Any
    version: int | None = None
    status: int = 0
    visible_s: float | None = None
    polls: int = 0
    checked: bool | None = None


@dataclass(frozen=True)
class KpiAnswer:
    """The network totals of one /kpis or /analysis/coverage answer and its data version."""

    source: str
    version: int
    units_total: int
    units_passed: int


@dataclass(frozen=True)
class PremiseAnswer:
    """The units one /analysis/premises answer showed, and its version if it told one."""

    premise_id: str
    version: int | None
    units: int


@dataclass
class Consistency:
    """Versioned answers checked against the writes, and those that disagreed."""

    kpi_checked: int = 0
    kpi_wrong: list[KpiAnswer] = field(default_factory=list)
    premise_checked: int = 0
    premise_unversioned: int = 0
    premise_wrong: list[PremiseAnswer] = field(default_factory=list)
    skipped: str = ""

    def summary(self) -> str:
        """One line."""
        if self.skipped:
            return f"not checked ({self.skipped})"
        return (f"{len(self.kpi_wrong)} of {self.kpi_checked} KPI answers and "
                f"{len(self.premise_wrong)} of {self.premise_checked} versioned premise "
                f"answers disagree with their data version ({self.premise_unversioned} "
                "premise answers carried no version)")


@dataclass
class LiveResult:
    """Everything a run did and saw."""

    writers: int
    readers: int
    seconds: float
    samples: list[Sample] = field(default_factory=list)
    edits: list[Edit] = field(default_factory=list)
    kpi_answers: list[KpiAnswer] = field(default_factory=list)
    premise_answers: list[PremiseAnswer] = field(default_factory=list)
    #: answers that claimed a version at least the write's but did not show the span edit
    span_mismatches: int = 0
    wall_s: float = 0.0

    @property
    def errors(self) -> list[Sample]:
        """Requests answered 5xx or not at all (a timeout, a dropped connection)."""
        return [s for s in self.samples if s.status == 0 or s.status >= 500]

    @property
    def refused(self) -> list[Sample]:
        """Requests answered 4xx: none is expected, every request is valid."""
        return [s for s in self.samples if 400 <= s.status < 500]

    def latencies(self, kind: str) -> list[float]:
        """Seconds of the requests of ``kind``."""
        return [s.seconds for s in self.samples if s.kind == kind]

    def count(self, kind: str) -> int:
        """Requests of ``kind``."""
        return sum(1 for s in self.samples if s.kind == kind)

    def visible(self, kind: str) -> list[float]:
        """Edit-to-visible seconds of the acknowledged edits of ``kind`` that showed."""
        return [e.visible_s for e in self.edits if e.kind == kind and e.visible_s is not None]

    def unseen(self, kind: str | None = None) -> list[Edit]:
        """Acknowledged edits that never showed in the time allowed."""
        return [e for e in self.edits if (kind is None or e.kind == kind)
                and 200 <= e.status < 300 and e.visible_s is None]

    def summary(self) -> str:
        """A few readable lines."""
        lines = [f"{len(self.edits)} edits by {self.writers} writers and "
                 f"{self.count('read premise') + self.count('read kpis')} reads by "
                 f"{self.readers} readers in {self.wall_s:.1f} s; {len(self.errors)} errors "
                 f"(5xx or no answer), {len(self.refused)} 4xx"]
        for kind in (PREMISE, SPAN):
            seen = self.visible(kind)
            lines.append(
                f"  {kind} edits: {sum(e.kind == kind for e in self.edits)}, visible "
                f"p50 {_ms(percentile(seen, 50))} p95 {_ms(percentile(seen, 95))} max "
                f"{_ms(max(seen, default=math.nan))}; never visible "
                f"{len(self.unseen(kind))}" + (
                    f"; direction checked {sum(e.checked is True for e in self.edits)}"
                    if kind == SPAN else ""))
        for kind in ("read premise", "read kpis", "write premise", "write span"):
            values = self.latencies(kind)
            lines.append(f"  {kind}: {len(values)}, p50 {_ms(percentile(values, 50))} p99 "
                         f"{_ms(percentile(values, 99))}")
        if self.errors:
            first = self.errors[0]
            lines.append(f"  first error: {first.kind} {first.status} {first.error}")
        return "\n".join(lines)

    def consistency(self, plan: LivePlan) -> Consistency:
        """Every versioned answer compared with the data of its version (from the writes)."""
        out = Consistency()
        unknown = [e for e in self.edits if e.version is None and not 400 <= e.status < 500]
        if unknown:
            out.skipped = f"{len(unknown)} writes of unknown outcome"
            return out
        premise_versions = sorted(e.version for e in self.edits
                                  if e.kind == PREMISE and e.version is not None)
        for answer in self.kpi_answers:
            out.kpi_checked += 1
            expected = plan.units_total + bisect.bisect_right(premise_versions, answer.version)
            if answer.units_total != expected:
                out.kpi_wrong.append(answer)
        history: dict[str, list[tuple[int, int]]] = {}
        for e in sorted((e for e in self.edits if e.kind == PREMISE and e.version is not None),
                        key=lambda e: e.version or 0):
            history.setdefault(e.target, []).append((e.version or 0, int(e.value)))
        for p in self.premise_answers:
            if p.version is None:
                out.premise_unversioned += 1
                continue
            out.premise_checked += 1
            units = plan.units[p.premise_id]
            for version, value in history.get(p.premise_id, []):
                if version <= p.version:
                    units = value
            if p.units != units:
                out.premise_wrong.append(p)
        return out


def _ms(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds * 1000:.0f} ms"


# ------------------------------------------------------------------------------------ HTTP


def answer_version(response: httpx.Response, body: Any) -> int | None:
    """The data version an analysis answer reflects: X-Data-Version, else ``data_version``."""
    header = response.headers.get("X-Data-Version")
    if header is not None and header.strip().isdigit():
        return int(header)
    if isinstance(body, dict):
        value = body.get("data_version")
        if value is None and isinstance(body.get("properties"), dict):
            value = body["properties"].get("data_version")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def write_version(response: httpx.Response) -> int | None:
    """The data version of a write: the feature's ETag (its row version), else X-Data-Version."""
    match = _ETAG.fullmatch(response.headers.get("ETag", ""))
    if match is not None:
        return int(match.group(1))
    header = response.headers.get("X-Data-Version", "")
    return int(header) if header.strip().isdigit() else None


def network_totals(body: Any) -> tuple[int, int] | None:
    """(units_total, units_passed) of a /kpis or /analysis/coverage body."""
    if not isinstance(body, dict):
        return None
    network = body.get("network")
    if network is None:
        rows = [r for r in body.get("data") or [] if r.get("scope") == "network"]
        network = rows[0] if rows else None
    if not isinstance(network, dict):
        return None
    return int(network["units_total"]), int(network["units_passed"])


class _Run:
    """The shared state of one run: the result, its lock, the clock and the span log."""

    def __init__(self, result: LiveResult, deadline: float, timeout_s: float) -> None:
        self.result = result
        self.lock = threading.Lock()
        self.deadline = deadline
        self.timeout_s = timeout_s
        #: span writes: (writer, version or None while in flight)
        self.span_writes: list[list[Any]] = []

    def request(self, kind: str, call: Callable[[], httpx.Response]
                ) -> tuple[httpx.Response | None, float]:
        """Send, time and record one request; (response or None, seconds)."""
        t0 = time.perf_counter()
        response: httpx.Response | None = None
        try:
            response = call()
            status, error = response.status_code, ""
        except httpx.HTTPError as exc:
            status, error = 0, f"{type(exc).__name__}: {exc}"
        seconds = time.perf_counter() - t0
        with self.lock:
            self.result.samples.append(Sample(kind, seconds, status, error))
        return response, seconds

    def json(self, response: httpx.Response | None) -> Any:
        """The body of a 200 answer, or None."""
        if response is None or response.status_code != 200:
            return None
        try:
            return response.json()
        except ValueError:
            return None

    def coverage(self, client: httpx.Client, kind: str) -> tuple[int, int, int] | None:
        """(version, units_total, units_passed) of GET /analysis/coverage, recorded."""
        response, _ = self.request(kind, lambda: client.get("/analysis/coverage"))
        return self.kpi_answer("coverage", response)

    def kpi_answer(self, source: str, response: httpx.Response | None
                   ) -> tuple[int, int, int] | None:
        """Record the version and totals of a KPI answer; None when it has none."""
        body = self.json(response)
        totals = network_totals(body)
        version = None if response is None else answer_version(response, body)
        if totals is None or version is None:
            return None
        with self.lock:
            self.result.kpi_answers.append(KpiAnswer(source, version, *totals))
        return version, *totals

    def premise_answer(self, premise_id: str, response: httpx.Response | None
                       ) -> PremiseAnswer | None:
        """Record what a premise answer showed."""
        body = self.json(response)
        if not isinstance(body, dict) or response is None:
            return None
        units = (body.get("properties") or {}).get("units")
        if units is None:
            return None
        answer = PremiseAnswer(premise_id, answer_version(response, body), int(units))
        with self.lock:
            self.result.premise_answers.append(answer)
        return answer

    def other_span_write(self, writer: int, after: int, upto: int) -> bool:
        """Whether another writer's span edit is in flight or landed in (after, upto]."""
        with self.lock:
            return any(w != writer and (v is None or after < v <= upto)
                       for w, v in self.span_writes)


# ---------------------------------------------------------------------------- the writers


@dataclass
class _Writer:
    """One writer's loop: its premises, its span and its pace."""

    run: _Run
    index: int
    plan: LivePlan
    interval_s: float
    poll_s: float
    span_every: int
    visible_timeout_s: float
    span_status: str = IN_SERVICE
    used: int = 0
    current: dict[str, int] = field(default_factory=dict)

    def __call__(self, base_url: str, key: str, start: float) -> None:
        span = self.plan.spans[self.index] if self.index < len(self.plan.spans) else None
        with httpx.Client(base_url=base_url, timeout=self.run.timeout_s,
                          headers={"X-API-Key": key}) as client:
            next_at, k = start, 0
            while True:
                time.sleep(max(0.0, next_at - time.monotonic()))
                if time.monotonic() >= self.run.deadline:
                    break
                # early (a slow server still sees span edits) and staggered between writers
                if span is not None and k % self.span_every == self.span_slot:
                    self.span_edit(client, span.span_id)
                else:
                    self.premise_edit(client)
                k += 1
                next_at = max(next_at + self.interval_s, time.monotonic())
            if span is not None and self.span_status == PLANNED:
                self.span_edit(client, span.span_id)  # back in service, measured as well

    @property
    def span_slot(self) -> int:
        """Which of each ``span_every`` edits is a span edit: the 2nd, 3rd... by writer."""
        return 1 + self.index % max(1, self.span_every - 1)

    def _record(self, edit: Edit) -> None:
        with self.run.lock:
            self.run.result.edits.append(edit)

    def premise_edit(self, client: httpx.Client) -> None:
        pool = self.plan.pools[self.index]
        premise_id = pool[self.used % len(pool)]
        self.used += 1
        units = self.current.get(premise_id, self.plan.units[premise_id]) + 1
        edit = Edit(self.index, PREMISE, premise_id, units)
        path = f"/collections/premises/items/{quote(premise_id, safe='')}"
        sent = time.perf_counter()
        response, _ = self.run.request("write premise", lambda: client.patch(
            path, json={"properties": {"units": units}}))
        self._acknowledged(edit, response)
        if edit.version is None:
            return
        self.current[premise_id] = units
        version = edit.version
        read = f"/analysis/premises/{quote(premise_id, safe='')}"

        def shows() -> bool:
            got, _ = self.run.request("poll premise", lambda: client.get(read))
            answer = self.run.premise_answer(premise_id, got)
            return (answer is not None and answer.units == units
                    and (answer.version is None or answer.version >= version))

        self._poll(edit, sent, shows)

    def span_edit(self, client: httpx.Client, span_id: str) -> None:
        status = PLANNED if self.span_status == IN_SERVICE else IN_SERVICE
        before = self.run.coverage(client, "baseline coverage")
        edit = Edit(self.index, SPAN, span_id, status)
        slot: list[Any] = [self.index, None]
        with self.run.lock:
            self.run.span_writes.append(slot)
        sent = time.perf_counter()
        response, _ = self.run.request("write span", lambda: client.patch(
            f"/collections/spans/items/{quote(span_id, safe='')}",
            json={"properties": {"status": status}}))
        self._acknowledged(edit, response)
        with self.run.lock:
            if edit.version is None:
                self.run.span_writes.remove(slot)
            else:
                slot[1] = edit.version
        if edit.version is None:
            return
        self.span_status = status
        version = edit.version

        def shows() -> bool:
            answer = self.run.coverage(client, "poll coverage")
            if answer is None or answer[0] < version:
                return False
            if before is None or self.run.other_span_write(self.index, before[0], answer[0]):
                edit.checked = False
                return True
            rose_total = answer[1] - before[1]
            rose_passed = answer[2] - before[2]
            # premise edits add units: at most rose_total of them passed ones
            moved = rose_passed < 0 if status == PLANNED else rose_passed > rose_total
            if moved:
                edit.checked = True
                return True
            with self.run.lock:
                self.run.result.span_mismatches += 1
            return False

        self._poll(edit, sent, shows)

    def _acknowledged(self, edit: Edit, response: httpx.Response | None) -> None:
        edit.status = 0 if response is None else response.status_code
        if response is not None and 200 <= response.status_code < 300:
            edit.version = write_version(response)
        self._record(edit)

    def _poll(self, edit: Edit, sent: float, shows: Callable[[], bool]) -> None:
        """Poll until ``shows()``; the edit's visible_s is from sending the write."""
        give_up = sent + self.visible_timeout_s
        while True:
            edit.polls += 1
            if shows():
                edit.visible_s = time.perf_counter() - sent
                return
            if time.perf_counter() + self.poll_s > give_up:
                return
            time.sleep(self.poll_s)


# ----------------------------------------------------------------------------------- the run


def run_live(base_url: str, plan: LivePlan, *, key: str, writers: int = 4, readers: int = 4,
             seconds: float = 60.0, interval_s: float = 0.25, poll_s: float = 0.02,
             span_every: int = 10, visible_timeout_s: float = 60.0,
             timeout_s: float = 300.0) -> LiveResult:
    """Run ``writers`` and ``readers`` against ``base_url`` for ``seconds``.

    Writers start no edit after ``seconds``; an edit under way is followed until it
    shows or ``visible_timeout_s`` passed, and a span left out of service is put back.

    Parameters
    ----------
    plan
        What to edit (:func:`plan_edits` for ``writers``).
    key
        An API key allowed to write.
    interval_s
        Time between the starts of a writer's edits (later when an edit takes longer).
    poll_s
        Pause between a writer's polls.
    """
    result = LiveResult(writers=writers, readers=readers, seconds=seconds)
    started = time.monotonic()
    run = _Run(result, started + seconds, timeout_s)
    threads = []
    for i in range(writers):
        writer = _Writer(run, i, plan, interval_s, poll_s, span_every, visible_timeout_s)
        start = started + interval_s * i / writers
        threads.append(threading.Thread(target=writer, args=(base_url, key, start)))
    for i in range(readers):
        threads.append(threading.Thread(target=_reader, args=(run, base_url, plan, i)))
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 3 * (visible_timeout_s + timeout_s))
    result.wall_s = time.monotonic() - started
    return result


def _reader(run: _Run, base_url: str, plan: LivePlan, index: int) -> None:
    rng = random.Random(1000 + index)
    with httpx.Client(base_url=base_url, timeout=run.timeout_s) as client:
        k = index
        while time.monotonic() < run.deadline:
            if k % 2 == 0:
                premise_id = rng.choice(plan.premise_ids)
                path = f"/analysis/premises/{quote(premise_id, safe='')}"
                response, _ = run.request("read premise", functools.partial(client.get, path))
                run.premise_answer(premise_id, response)
            else:
                response, _ = run.request("read kpis", lambda: client.get("/kpis"))
                run.kpi_answer("kpis", response)
            k += 1


# ------------------------------------------------------------------------- the final check


def same_value(a: Any, b: Any) -> bool:
    """Equal KPI values: ints (and bools) exactly, floats within a relative 1e-9."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool) or not (
            isinstance(a, int | float) and isinstance(b, int | float)):
        return bool(a == b)
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    return a == b or math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=0.0)


def compare_kpis(served: Mapping[str, Any], analyzed: Mapping[str, Any]) -> list[str]:
    """Where served KPIs (kpis.json shape, or /kpis rows) differ from ``analyzed``.

    Returns
    -------
    list of str
        ``network.KEY`` / ``area ID.KEY`` for each differing (or missing) value; empty
        when they agree.
    """
    if "network" not in served:
        rows = served.get("data") or []
        served = {"network": next(r for r in rows if r["scope"] == "network"),
                  "areas": [r for r in rows if r["scope"] == "area"]}
    diffs = _diff_row("network", served["network"], analyzed["network"])
    mine = {str(a["area_id"]): a for a in served.get("areas") or []}
    theirs = {str(a["area_id"]): a for a in analyzed.get("areas") or []}
    for area_id in sorted(mine.keys() | theirs.keys()):
        if area_id not in mine or area_id not in theirs:
            diffs.append(f"area {area_id} (only one side has it)")
            continue
        diffs += _diff_row(f"area {area_id}", mine[area_id], theirs[area_id])
    return diffs


def _diff_row(label: str, served: Mapping[str, Any], analyzed: Mapping[str, Any]) -> list[str]:
    # a /kpis row has every KPI column; an area has no spof_* (null in its row)
    keys = sorted((served.keys() | analyzed.keys()) - set(ROW_LABELS))
    return [f"{label}.{k}" for k in keys
            if not same_value(served.get(k), analyzed.get(k))]


@dataclass
class FinalCheck:
    """The served KPIs once the server caught up, against ``netgis analyze --db``."""

    db_version: int
    caught_up_s: float
    analyze_s: float
    kpis_diffs: list[str]
    coverage_diffs: list[str]

    @property
    def equal(self) -> bool:
        """Whether /kpis and /analysis/coverage both equal the analysis of the database."""
        return not self.kpis_diffs and not self.coverage_diffs

    def summary(self) -> str:
        """One line."""
        what = "equal" if self.equal else (
            "DIFFERENT: /kpis " + (", ".join(self.kpis_diffs[:12]) or "equal")
            + "; /analysis/coverage " + (", ".join(self.coverage_diffs[:12]) or "equal"))
        return (f"data version {self.db_version}: served after {self.caught_up_s:.1f} s; "
                f"netgis analyze --db {self.analyze_s:.1f} s; KPIs {what}")


def final_check(base_url: str, db_url: str, out: Path, *, timeout_s: float = 600.0
                ) -> FinalCheck:
    """Wait until /kpis reflects the database's data version, then compare with analyze --db."""
    started = time.monotonic()
    with httpx.Client(base_url=base_url, timeout=timeout_s) as client:
        version = int(client.get("/health").raise_for_status().json()["data_version"])
        while True:
            response = client.get("/kpis")
            body = response.json() if response.status_code == 200 else None
            if body is not None and answer_version(response, body) == version:
                break
            if time.monotonic() - started > timeout_s:
                raise RuntimeError(f"/kpis did not reach data version {version} in "
                                   f"{timeout_s:.0f} s")
            time.sleep(0.1)
        caught_up = time.monotonic() - started
        coverage = client.get("/analysis/coverage").raise_for_status().json()
    t0 = time.monotonic()
    env = {**os.environ, "NETGIS_DATABASE_URL": db_url, "PYTHONPATH": _pythonpath()}
    subprocess.run([sys.executable, "-m", "netgis.cli", "analyze", "--db", "--out", str(out)],
                   env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    analyze_s = time.monotonic() - t0
    analyzed = json.loads((out / "kpis.json").read_text())
    if coverage.get("data_version") != version:
        raise RuntimeError(f"the data changed during the final check ({version} -> "
                           f"{coverage.get('data_version')})")
    return FinalCheck(version, caught_up, analyze_s, compare_kpis(body, analyzed),
                      compare_kpis(coverage, analyzed))


# ---------------------------------------------------------------------------- the server


def _pythonpath() -> str:
    root = str(Path(__file__).resolve().parents[1])
    return os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)


@dataclass
class Served:
    """A running ``netgis serve``: its URL, and how long it took to listen and to analyse."""

    url: str
    listening_s: float = math.nan
    first_kpis_s: float = math.nan


@contextmanager
def serve(db_url: str, key: str, log: Path, *, workers: int = 1,
          ready_timeout_s: float = 1800.0, extra: Sequence[str] = ()) -> Iterator[Served]:
    """``netgis serve`` in its own process on a loopback port, until GET /kpis answers 200.

    ``first_kpis_s`` is from starting the process to that first 200 (the first
    analysis of the data included).
    """
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    env = {**os.environ, "NETGIS_DATABASE_URL": db_url, "NETGIS_API_KEYS": key,
           "PYTHONPATH": _pythonpath()}
    args = ["--port", str(port), *(["--workers", str(workers)] if workers > 1 else []), *extra]
    started = time.monotonic()
    with log.open("wb") as out:
        server = subprocess.Popen([sys.executable, "-m", "netgis.cli", "serve", *args],
                                  env=env, stdout=out, stderr=subprocess.STDOUT)
    served = Served(f"http://127.0.0.1:{port}")
    try:
        while True:
            if math.isnan(served.listening_s):
                with contextlib.suppress(OSError), socket.create_connection(
                        ("127.0.0.1", port), timeout=1):
                    served.listening_s = time.monotonic() - started
            else:
                with contextlib.suppress(httpx.TransportError):
                    # the first one waits for the analysis of the data
                    if httpx.get(f"{served.url}/kpis",
                                 timeout=ready_timeout_s).status_code == 200:
                        served.first_kpis_s = time.monotonic() - started
                        break
            if time.monotonic() - started > ready_timeout_s or server.poll() is not None:
                raise RuntimeError("netgis serve did not answer /kpis:\n"
                                   + log.read_text(errors="replace")[-4000:])
            time.sleep(0.1)
        yield served
    finally:
        server.terminate()
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(30)
