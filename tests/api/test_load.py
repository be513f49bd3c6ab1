"""A bounded load over loopback: mixed reads and writes, 8 concurrent writers, each database.

docs/spec.md §3.5: concurrent writes wait for each other and never answer 5xx. A
fixed number of requests (8 writers x 10 writes, 4 readers x 25 reads) against a
real server on a loopback port, capped in time; afterwards every acknowledged
write must be in the data. ``benchmarks/bench_api_load.py`` runs a bigger one.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from benchmarks.loadgen import run_load
from tests.api.helpers import API_KEY, LiveServer

WRITERS = 8
TIME_CAP_S = 240.0


@pytest.fixture
def live(app: FastAPI, client: TestClient) -> Iterator[LiveServer]:
    """The ring_spur example (loaded by ``client``) served on a loopback port."""
    with LiveServer(app) as server:
        yield server


def test_mixed_load_with_concurrent_writers(live: LiveServer, client: TestClient) -> None:
    first = client.get("/collections/premises/items", params={"limit": 1}).json()
    lon, lat = first["features"][0]["geometry"]["coordinates"]
    result = run_load(live.url, near=(lon, lat), key=API_KEY, writers=WRITERS, writes_each=10,
                      readers=4, reads_each=25, time_cap_s=TIME_CAP_S)
    print(result.summary())
    assert not result.capped, result.summary()
    assert result.requests == WRITERS * 10 + 4 * 25
    assert result.errors == [], result.summary()
    assert result.refused == [], result.summary()
    assert result.lost_writes == 0, result.summary()
