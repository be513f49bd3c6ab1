"""A bounded mixed load on a running netgis server: concurrent writers and readers.

Used by ``tests/api/test_load.py`` (small, in ``make test``) and
``benchmarks/bench_api_load.py`` (bigger, recorded in RESULTS.md).

Each writer first adds a premise of its own, then alternates a PATCH of that
premise's ``units`` (to a new value each time) and a POST of a new node, one
request after the other. Readers cycle through feature pages, one feature,
/kpis, /analysis/coverage and /health. Every request has a timeout; the run
stops issuing requests at a time cap. Afterwards the data is read back: a write
that was acknowledged (2xx) but whose effect is missing is a *lost write*.

Examples
--------
>>> percentile([0.1, 0.2, 0.3, 0.4], 50)
0.25
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

READ_PATHS = ("/collections/premises/items?limit=50", "/kpis", "/analysis/coverage",
              "/collections/spans/items?limit=20&offset=1", "/health")


@dataclass
class Sample:
    """One request: what it was, how long it took, what came back (0: no response)."""

    kind: str
    seconds: float
    status: int
    error: str = ""


@dataclass
class LoadResult:
    """What a run did and what came of it."""

    writers: int
    readers: int
    samples: list[Sample] = field(default_factory=list)
    lost_writes: int = 0
    capped: bool = False
    wall_s: float = 0.0

    @property
    def requests(self) -> int:
        return len(self.samples)

    @property
    def errors(self) -> list[Sample]:
        """Requests answered 5xx or not at all (a timeout, a dropped connection)."""
        return [s for s in self.samples if s.status == 0 or s.status >= 500]

    @property
    def refused(self) -> list[Sample]:
        """Requests answered 4xx (none is expected: every request is valid)."""
        return [s for s in self.samples if 400 <= s.status < 500]

    def latency(self, q: float, kind: str | None = None) -> float:
        """The ``q``-th percentile of latency in seconds (of ``kind`` only when given)."""
        values = [s.seconds for s in self.samples if kind is None or s.kind == kind]
        return percentile(values, q)

    def summary(self) -> str:
        errors = self.errors
        first = f"; first: {errors[0].kind} {errors[0].status} {errors[0].error}" if errors \
            else ""
        return (f"{self.requests} requests ({self.writers} writers, {self.readers} readers) in "
                f"{self.wall_s:.1f} s: {len(errors)} errors, {len(self.refused)} refused, "
                f"{self.lost_writes} lost writes; p50 {self.latency(50) * 1000:.0f} ms, p99 "
                f"{self.latency(99) * 1000:.0f} ms (writes p99 "
                f"{self.latency(99, 'write') * 1000:.0f} ms){first}")


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile of ``values`` (linear interpolation); NaN when empty."""
    return float(np.percentile(values, q)) if values else float("nan")


def run_load(base_url: str, *, near: tuple[float, float], key: str,
             writers: int = 8, writes_each: int = 10, readers: int = 4, reads_each: int = 25,
             time_cap_s: float = 180.0, timeout_s: float = 120.0) -> LoadResult:
    """Run writers and readers against ``base_url`` until done or ``time_cap_s`` passed.

    Parameters
    ----------
    near
        A WGS84 (lon, lat) point inside the network, where new nodes are placed.
    key
        An API key allowed to write.
    """
    result = LoadResult(writers=writers, readers=readers)
    lock = threading.Lock()
    started = time.monotonic()
    deadline = started + time_cap_s
    last_units: dict[str, int] = {}
    created: list[str] = []

    def timed(client: httpx.Client, kind: str, call: Callable[[], httpx.Response]) -> int:
        t0 = time.perf_counter()
        try:
            status, error = call().status_code, ""
        except httpx.HTTPError as exc:
            status, error = 0, f"{type(exc).__name__}: {exc}"
        with lock:
            result.samples.append(Sample(kind, time.perf_counter() - t0, status, error))
        return status

    def writer(i: int) -> None:
        with httpx.Client(base_url=base_url, timeout=timeout_s,
                          headers={"X-API-Key": key}) as client:
            for k in range(writes_each):
                if time.monotonic() > deadline:
                    result.capped = True
                    return
                call, written = _write_request(client, near, i, k)
                if 200 <= timed(client, "write", call) < 300:
                    with lock:
                        if isinstance(written, tuple):
                            last_units[written[0]] = written[1]
                        else:
                            created.append(written)

    def reader(i: int) -> None:
        with httpx.Client(base_url=base_url, timeout=timeout_s) as client:
            for k in range(reads_each):
                if time.monotonic() > deadline:
                    result.capped = True
                    return
                path = READ_PATHS[(i + k) % len(READ_PATHS)]
                timed(client, "read", functools.partial(client.get, path))

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(writers)]
    threads += [threading.Thread(target=reader, args=(i,)) for i in range(readers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(time_cap_s + timeout_s + 30)
    result.wall_s = time.monotonic() - started
    result.lost_writes = _lost_writes(base_url, last_units, created, timeout_s)
    return result


def _write_request(client: httpx.Client, near: tuple[float, float], i: int,
                   k: int) -> tuple[Callable[[], httpx.Response], tuple[str, int] | str]:
    """The ``k``-th write of writer ``i`` and what it leaves once acknowledged.

    The first write adds the writer's premise, then the writes alternate between
    changing that premise's units and adding a node near ``near``. What is left is
    (premise id, units) for a premise, a node's id for a node: :func:`_lost_writes`
    checks them afterwards.
    """
    premise = f"load-p{i}"

    def point(row: int) -> dict[str, Any]:
        return {"type": "Point", "coordinates": [near[0] + 1e-5 * i, near[1] + 1e-5 * row]}

    if k == 0:
        feature = {"type": "Feature", "geometry": point(-1), "properties": {
            "premise_id": premise, "units": 1, "kind": "residential"}}
        return lambda: client.post("/collections/premises/items", json=feature), (premise, 1)
    if k % 2 == 0:
        units = 1 + k
        return (lambda: client.patch(f"/collections/premises/items/{premise}",
                                     json={"properties": {"units": units}}), (premise, units))
    node_id = f"load-w{i}-{k}"
    node = {"type": "Feature", "geometry": point(k), "properties": {
        "node_id": node_id, "kind": "handhole", "status": "planned"}}
    return lambda: client.post("/collections/nodes/items", json=node), node_id


def _lost_writes(base_url: str, last_units: dict[str, int], created: list[str],
                 timeout_s: float) -> int:
    """Acknowledged writes whose effect is not in the data read back afterwards."""
    lost = 0
    with httpx.Client(base_url=base_url, timeout=timeout_s) as client:
        for premise, units in last_units.items():
            got: Any = client.get(f"/collections/premises/items/{premise}").json()
            if (got.get("properties") or {}).get("units") != units:
                lost += 1
        for node_id in created:
            if client.get(f"/collections/nodes/items/{node_id}").status_code != 200:
                lost += 1
    return lost
