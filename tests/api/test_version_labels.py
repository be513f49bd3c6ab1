"""Answers under write load carry the numbers of the data version they name, on both databases.

Writers PATCH premises' ``units`` over a real server and port while readers ask for
``/kpis`` and ``/analysis/coverage``. Every write is one data version (the ETag of
its answer), so the units of every premise at every version are known from the
writers' acknowledged results; each answer's ``units_total`` must be the sum at
the ``data_version`` it claims. A read labelled with a version it did not see
(the number of an older or newer state under a version's name) fails here.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator

import httpx
import pytest

from netgis.api.app import create_app
from netgis.generate import generate_city
from netgis.storage import Repository
from tests.api.helpers import LiveServer
from tests.api.reliability_helpers import KEY, run_threads, settings_for

WRITERS = 8
READERS = 3
ROUNDS = 6
#: Large enough that reading and validating the layers takes longer than a few writes.
PREMISES = 2000


@pytest.fixture
def loaded(db_url: str) -> Iterator[tuple[LiveServer, int, dict[str, int]]]:
    """A live server on a generated city, its data version and every premise's units."""
    repo = Repository.from_url(db_url)
    repo.init()
    repo.load_dataset(generate_city(premises=PREMISES, seed=23))
    units = {str(k): int(v) for k, v in
             zip(repo.read_dataset().premises["premise_id"],
                 repo.read_dataset().premises["units"], strict=True)}
    version = repo.data_version()
    repo.close()
    with LiveServer(create_app(settings_for(db_url))) as live:
        yield live, version, units


def _network_units(body: dict[str, object], path: str) -> int:
    if path == "/kpis":
        rows = body["data"]
        assert isinstance(rows, list)
        network = next(r for r in rows if r["scope"] == "network")
    else:
        network = body["network"]
        assert isinstance(network, dict)
    return int(network["units_total"])


def test_every_answer_has_the_numbers_of_the_version_it_names(
        loaded: tuple[LiveServer, int, dict[str, int]]) -> None:
    server, start, units = loaded
    ids = sorted(units)
    writes: list[tuple[int, str, int]] = []  # (data version, premise, units) acknowledged
    answers: list[tuple[str, int, int]] = []  # (path, data version claimed, units_total)
    writing = threading.Event()
    writing.set()
    lock = threading.Lock()

    def writer(i: int) -> None:
        rng = random.Random(i)
        mine = ids[i::WRITERS]
        with httpx.Client(base_url=server.url, headers=KEY, timeout=300) as client:
            for _ in range(ROUNDS):
                premise, value = rng.choice(mine), rng.randint(1, 40)
                r = client.patch(f"/collections/premises/items/{premise}",
                                 json={"properties": {"units": value}})
                assert r.status_code == 200, r.text
                with lock:
                    writes.append((int(r.headers["ETag"].strip('"')), premise, value))

    def reader(i: int) -> None:
        paths = ["/kpis", "/analysis/coverage"]
        with httpx.Client(base_url=server.url, timeout=300) as client:
            n = i
            # until the writers are done, and once more after
            while True:
                done = not writing.is_set()
                path = paths[n % 2]
                n += 1
                r = client.get(path)
                assert r.status_code == 200, r.text
                body = r.json()
                with lock:
                    answers.append((path, int(body["data_version"]), _network_units(body, path)))
                if done:
                    return

    def work(i: int) -> None:
        if i >= WRITERS:
            reader(i - WRITERS)
            return
        try:
            writer(i)
        finally:
            with lock:
                finished.append(i)
                if len(finished) == WRITERS:
                    writing.clear()

    finished: list[int] = []
    results = run_threads(WRITERS + READERS, work)
    assert not [r for r in results if isinstance(r, BaseException)], results

    # every data version from the start on is one acknowledged write: replay them
    writes.sort()
    assert [v for v, _, _ in writes] == list(range(start + 1, start + 1 + WRITERS * ROUNDS))
    total = {start: sum(units.values())}
    state = dict(units)
    for version, premise, value in writes:
        state[premise] = value
        total[version] = sum(state.values())
    wrong = [(path, version, got, total.get(version)) for path, version, got in answers
             if total.get(version) != got]
    assert not wrong, f"{len(wrong)} of {len(answers)} answers are wrong: {wrong[:10]}"
    # the readers saw the data change under them (else the test showed nothing)
    assert len({version for _, version, _ in answers}) > 1
