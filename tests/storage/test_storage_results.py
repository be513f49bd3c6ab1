"""Stored analysis results (migration 0005, netgis.storage.results) on SpatiaLite and PostGIS."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy
from alembic import command

from netgis.api.geojson import frame_to_features
from netgis.cli import main
from netgis.engine.analysis import Analysis, analyze, premise_optics, serviceability
from netgis.engine.optics import LossBudget
from netgis.io import read_dataset
from netgis.schema import LAYERS, RESULT_FIELDS
from netgis.storage import Repository, migrate
from netgis.storage.models import ANALYSIS_RUNS, RESULT_TABLES
from netgis.storage.results import (
    ResultReader,
    find_run,
    params_key,
    prune_runs,
    read_results,
    store_analysis,
    stored_runs,
)
from tests.helpers import EXAMPLES, EXAMPLES_DIR, OPTICAL_EXAMPLES
from tests.storage.helpers import BACKENDS, chain_dataset

PREMISE_COLUMNS = [*LAYERS["premises"].field_names, *(f.name for f in RESULT_FIELDS["premises"])]


def _analysed(repo: Repository, example: str, budget: LossBudget | None = None,
              drop_m: float = 150.0) -> tuple[int, Analysis]:
    path = next((EXAMPLES_DIR / example).glob("dataset*"))
    repo.load_dataset(read_dataset(path), mode="upsert")
    version, data = repo.read_consistent()
    return version, analyze(data, drop_m=drop_m, budget=budget)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, allow_nan=True)


@pytest.mark.parametrize("backend", BACKENDS)
def test_migration_0005_up_and_down_keeps_plain_runs(
        backend: str, new_engine: Callable[[str], sqlalchemy.Engine]) -> None:
    engine = new_engine(backend)
    migrate.upgrade(engine, "0004")
    repo = Repository(engine)
    plain = repo.record_analysis_run(drop_m=150, data_version=0, counts={"premises": 0})
    migrate.upgrade(engine)
    tables = set(sqlalchemy.inspect(engine).get_table_names())
    assert {"premise_results", "span_results", "node_results"} <= tables
    # a run recorded before 0005 is still there and holds no results
    assert [r["run_id"] for r in repo.analysis_runs()] == [plain] and stored_runs(engine) == []
    version, result = _analysed(repo, "ring_spur")
    run_id = store_analysis(engine, result, data_version=version)
    assert run_id is not None and len(read_results(engine, run_id, "premises")) == 6
    with engine.begin() as conn:
        command.downgrade(migrate.alembic_config(conn), "0004")
    assert migrate.current_revision(engine) == "0004"
    inspector = sqlalchemy.inspect(engine)
    assert not {"premise_results", "span_results", "node_results"} & set(
        inspector.get_table_names())
    assert "params_key" not in {c["name"] for c in inspector.get_columns("analysis_runs")}
    # the stored run went with its tables; the plain one stays (read as revision 0004 has it)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT run_id FROM analysis_runs").scalars().all() == \
            [plain]
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision() is not None


@pytest.mark.parametrize(("example", "atten"), [
    *((e, 0.35) for e in (*EXAMPLES, *OPTICAL_EXAMPLES)),
    # no fiber loss: the breakdown's fiber_km comes from the tree's span lengths
    *((e, 0.0) for e in OPTICAL_EXAMPLES)])
def test_stored_results_answer_as_the_analysis(repo: Repository, example: str,
                                               atten: float) -> None:
    budget = LossBudget(atten_db_per_km=atten)
    version, result = _analysed(repo, example, budget)
    run_id = store_analysis(repo.engine, result, data_version=version)
    run = find_run(repo.engine, version, params_key(150.0, budget))
    assert run is not None and run.run_id == run_id and run.data_version == version
    assert run.budget.key() == budget.key() and run.drop_m == 150.0
    assert _json(run.kpis) == _json(json.loads(json.dumps(result.kpis)))
    # every result column of every layer, as the analysis computed it
    for layer, frame in (("premises", result.premises), ("spans", result.spans),
                         ("nodes", result.nodes)):
        back = read_results(repo.engine, run.run_id, layer)
        id_field = LAYERS[layer].id_field
        want = frame.sort_values(id_field)
        assert back[id_field].tolist() == want[id_field].astype(str).tolist()
        for f in RESULT_FIELDS[layer]:
            got, exp = back[f.name].to_numpy(), want[f.name].to_numpy()
            if f.type == "float":
                exp = np.where(np.isfinite(exp.astype(float)), exp.astype(float), np.nan)
                np.testing.assert_array_equal(got, exp, err_msg=f"{layer}.{f.name}")
            else:
                assert [None if pd.isna(v) else v for v in got] == \
                    [None if pd.isna(v) else v for v in exp], (layer, f.name)
    reader = ResultReader(repo.engine)
    # the premise page: properties and loss breakdown
    for i, pid in enumerate(result.premises["premise_id"]):
        want_f = frame_to_features(result.premises.iloc[[i]].to_crs(4326), LAYERS["premises"],
                                   PREMISE_COLUMNS)[0]
        want_f["properties"]["loss"] = premise_optics(result, i)["loss"]
        got = reader.premise(run, str(pid))
        assert got is not None
        frame, loss = got
        got_f = frame_to_features(frame, LAYERS["premises"], PREMISE_COLUMNS)[0]
        got_f["properties"]["loss"] = loss
        assert _json(got_f) == _json(want_f), pid
    missing = reader.premise(run, "no-such-premise")
    assert missing is not None and missing[0].empty
    # serviceability at premises (passed or not) and around the network (one far away)
    pts = result.premises.to_crs(4326).geometry
    cx, cy = float(pts.x.mean()), float(pts.y.mean())
    spots = [*zip(pts.x[:5], pts.y[:5], strict=True),
             *((cx + dx, cy + dy) for dx, dy in ((0.0, 0.0), (0.003, -0.002), (-0.02, 0.03)))]
    for lon, lat in spots:
        assert _json(reader.serviceability(run, lon, lat)) == \
            _json(serviceability(result, lon, lat)), (lon, lat)


def test_runs_are_stored_once_and_pruned(repo: Repository) -> None:
    version, result = _analysed(repo, "ring_spur")
    first = store_analysis(repo.engine, result, data_version=version)
    assert first is not None
    assert store_analysis(repo.engine, result, data_version=version) is None
    other = analyze(repo.read_dataset(), drop_m=60.0)
    assert store_analysis(repo.engine, other, data_version=version) is not None
    repo.patch_item("premises", "p_ring", {"units": 4})
    version2, result2 = repo.data_version(), analyze(repo.read_dataset(), drop_m=150.0)
    second = store_analysis(repo.engine, result2, data_version=version2, keep=2)
    assert second is not None
    key = params_key(150.0, LossBudget())
    # keep=2: the runs of both data versions stay, whatever their parameters
    assert [(r.data_version, r.drop_m) for r in stored_runs(repo.engine)] == \
        [(version2, 150.0), (version, 60.0), (version, 150.0)]
    (sixty,) = [r.run_id for r in stored_runs(repo.engine) if r.drop_m == 60.0]
    # keep=1: only the newest version's; the old data's runs go, of any parameters
    assert prune_runs(repo.engine, keep=1) == sorted([first, sixty])
    assert find_run(repo.engine, version, key) is None
    with repo.engine.connect() as conn:
        for table in RESULT_TABLES.values():
            left = conn.execute(sqlalchemy.select(sqlalchemy.func.count()).select_from(table)
                                .where(table.c.run_id == first)).scalar_one()
            assert left == 0, table.name
    assert find_run(repo.engine, version2, key) is not None


@pytest.mark.parametrize("backend", [pytest.param("postgis", marks=pytest.mark.postgis)])
def test_concurrent_stores_of_one_analysis_keep_one_run(repo: Repository) -> None:
    repo.load_dataset(chain_dataset(40, premises_per_span=20))
    version, data = repo.read_consistent()
    result = analyze(data, drop_m=150.0)
    barrier = threading.Barrier(4)
    outcomes: list[int | None] = []
    lock = threading.Lock()

    def store() -> None:
        barrier.wait()
        # past the "already stored?" check at once: the unique index decides
        run_id = store_analysis(repo.engine, result, data_version=version)
        with lock:
            outcomes.append(run_id)

    threads = [threading.Thread(target=store) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [o for o in outcomes if o is not None]
    assert len(outcomes) == 4 and len(winners) == 1
    with repo.engine.connect() as conn:
        runs = conn.execute(sqlalchemy.select(ANALYSIS_RUNS.c.run_id)
                            .where(ANALYSIS_RUNS.c.params_key.is_not(None))).scalars().all()
        rows = conn.execute(sqlalchemy.select(sqlalchemy.func.count()).select_from(
            RESULT_TABLES["premises"])).scalar_one()
    assert runs == winners and rows == len(result.premises) == 800


def test_a_write_after_the_run_is_noticed(repo: Repository) -> None:
    version, result = _analysed(repo, "ring_spur")
    store_analysis(repo.engine, result, data_version=version)
    run = find_run(repo.engine, version, params_key(150.0, LossBudget()))
    assert run is not None
    repo.patch_item("premises", "p_ring", {"units": 2})
    reader = ResultReader(repo.engine)
    # the data changed since the run: the caller falls back to the new data's analysis
    assert reader.premise(run, "p_ring") is None
    assert reader.serviceability(run, 8.6, 50.1) is None


def test_analyze_store_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    with Repository.from_url(url) as repo:
        repo.init()
        repo.load_dataset(read_dataset(EXAMPLES_DIR / "ring_spur" / "dataset.gpkg"))
    monkeypatch.setenv("NETGIS_DATABASE_URL", url)

    def netgis(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["netgis", *args])
        with pytest.raises(SystemExit) as done:
            main()
        out, err = capsys.readouterr()
        return int(done.value.code or 0), out, err

    code, _, err = netgis("analyze", "--store", "--out", str(tmp_path / "a"))
    assert code == 2 and "--store needs --db" in err
    code, out, err = netgis("analyze", "--db", "--store", "--out", str(tmp_path / "b"))
    assert code == 0 and "stored results of data version 1 as run" in err
    network = json.loads(out)
    with Repository.from_url(url) as repo:
        (run,) = stored_runs(repo.engine)
        assert run.data_version == 1 and run.kpis["network"] == network
        assert len(read_results(repo.engine, run.run_id, "premises")) == 6
        code, _, err = netgis("analyze", "--db", "--store", "--out", str(tmp_path / "c"))
        assert code == 0 and f"stored already (run {run.run_id})" in err
        assert [r.run_id for r in stored_runs(repo.engine)] == [run.run_id]
