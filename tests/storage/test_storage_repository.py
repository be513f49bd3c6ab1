"""The Repository against SpatiaLite and PostGIS: one suite, both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from netgis.dataset import Dataset
from netgis.errors import ConflictError, NotFoundError, ParameterError, ValidationError
from netgis.io import read_dataset
from netgis.storage import Repository, migrate
from tests.helpers import EXAMPLES_DIR
from tests.storage.helpers import assert_same_layers, chain_dataset

SAMPLES = [EXAMPLES_DIR / "ring_spur" / "dataset.gpkg", EXAMPLES_DIR / "duct_ring" / "dataset"]


def _snapshot(repo: Repository) -> tuple[Any, ...]:
    """Everything a failed write must leave untouched: version, counts and every row."""
    ds = repo.read_dataset()
    rows = tuple(
        tuple(map(tuple, frame.drop(columns="geometry").astype(object).to_numpy()))
        + tuple(shapely.to_wkb(np.asarray(frame.geometry.array, dtype=object)))
        for frame in ds.layers().values()
    )
    return repo.data_version(), repo.stats()["layers"], rows


def test_init_is_idempotent(repo: Repository) -> None:
    repo.load_dataset(chain_dataset(5))
    before = _snapshot(repo)
    repo.init()
    repo.init()
    assert repo.revision() == migrate.head_revision()
    assert _snapshot(repo) == before


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.parent.name + "/" + p.name)
def test_load_and_read_round_trip(repo: Repository, path: Path) -> None:
    original = read_dataset(path)
    counts = repo.load_dataset(original)
    assert counts == {name: len(frame) for name, frame in original.layers().items()}
    back = repo.read_dataset()
    assert_same_layers(back, original)
    assert repo.count("premises") == len(original.premises)


def test_generated_round_trip_keeps_nulls_and_types(repo: Repository) -> None:
    original = chain_dataset(250, premises_per_span=3)
    repo.load_dataset(original)
    back = repo.read_dataset()
    assert_same_layers(back, original)
    assert back.spans["fiber_count"].dtype == "Int64"
    assert back.premises["connected"].dtype == bool
    missing = back.premises["location_id"].isna().sum()
    assert missing == original.premises["location_id"].isna().sum() > 0


def test_insert_refuses_existing_ids(repo: Repository) -> None:
    repo.load_dataset(chain_dataset(20))
    before = _snapshot(repo)
    # a second load with new spans and premises but two node ids that already exist
    clash = chain_dataset(3, prefix="x")
    clash.nodes.loc[0, "node_id"] = "n4"
    clash.nodes.loc[1, "node_id"] = "n7"
    clash.spans.loc[0, ["from_node", "to_node"]] = ["n4", "n7"]
    clash.spans.loc[1, "from_node"] = "n7"
    with pytest.raises(ConflictError) as info:
        repo.load_dataset(clash, mode="insert")
    named = {(p.layer, p.id, p.field) for p in info.value.problems}
    assert named == {("nodes", "n4", "node_id"), ("nodes", "n7", "node_id")}
    assert _snapshot(repo) == before


def test_upsert_replaces_and_adds(repo: Repository) -> None:
    repo.load_dataset(chain_dataset(10))
    update = chain_dataset(12)
    update.premises.loc[update.premises["premise_id"] == "p3", "units"] = 40
    moved = shapely.Point(8.6031, 50.1004)
    update.premises.loc[update.premises["premise_id"] == "p3", "geometry"] = moved
    update.spans.loc[update.spans["span_id"] == "s2", "status"] = "retired"
    version = repo.data_version()
    counts = repo.load_dataset(update, mode="upsert")
    assert counts["spans"] == 12
    assert repo.data_version() == version + 1
    assert repo.count("spans") == 12 and repo.count("premises") == 12
    p3 = repo.get_item("premises", "p3")
    assert int(p3["units"].iat[0]) == 40
    assert p3.geometry.iat[0].equals_exact(moved, 1e-12)
    assert repo.get_item("spans", "s2")["status"].iat[0] == "retired"
    assert_same_layers(repo.read_dataset(), update)


def test_bad_load_leaves_database_exactly_as_it_was(repo: Repository) -> None:
    repo.load_dataset(chain_dataset(50, prefix="old"), mode="insert")
    before = _snapshot(repo)
    bad = chain_dataset(10_000)
    assert len(bad.spans) == 10_000
    bad.spans.loc[6_789, "to_node"] = "no_such_node"
    for mode in ("insert", "upsert"):
        with pytest.raises(ValidationError) as info:
            repo.load_dataset(bad, mode="insert" if mode == "insert" else "upsert")
        problems = info.value.problems
        assert [(p.layer, p.id, p.field) for p in problems] == [("spans", "s6789", "to_node")]
        assert "no_such_node" in str(problems[0])
        assert _snapshot(repo) == before


def test_query_items_bbox_filters_paging(repo: Repository) -> None:
    data = chain_dataset(300, premises_per_span=2)
    repo.load_dataset(data)
    premises = data.premises
    bbox = (8.6205, 50.1005, 8.6555, 50.1025)
    x, y = premises.geometry.x, premises.geometry.y
    inside = (x >= bbox[0]) & (x <= bbox[2]) & (y >= bbox[1]) & (y <= bbox[3])
    want = sorted(premises.loc[inside, "premise_id"])
    assert 0 < len(want) < len(premises)
    got: list[str] = []
    offset = 0
    while True:
        page, matched = repo.query_items("premises", bbox=bbox, limit=7, offset=offset)
        assert matched == len(want)
        assert page.crs.to_epsg() == 4326
        if page.empty:
            break
        assert len(page) <= 7
        got.extend(page["premise_id"])
        offset += 7
    assert got == want  # ordered by id, every match once

    page, matched = repo.query_items("premises", filters={"kind": "business", "connected": "true"},
                                     limit=1000)
    want_f = premises[(premises["kind"] == "business") & premises["connected"]]
    assert matched == len(want_f) > 0
    assert sorted(page["premise_id"]) == sorted(want_f["premise_id"])
    assert list(page["premise_id"]) == sorted(page["premise_id"])

    page, matched = repo.query_items("premises", filters={"units": "3"}, bbox=bbox, limit=1000)
    assert matched == int(((premises["units"] == 3) & inside).sum())
    assert (page["units"] == 3).all()

    # lines: a bbox touching the middle of one span finds it, not its neighbours' boxes only
    span_page, span_matched = repo.query_items("spans", bbox=(8.60045, 50.09999, 8.60055, 50.10001))
    assert list(span_page["span_id"]) == ["s0"] and span_matched == 1

    empty, none = repo.query_items("premises", bbox=(0.0, 0.0, 1.0, 1.0))
    assert none == 0 and empty.empty and list(empty.columns) == list(page.columns)
    with pytest.raises(ValidationError):
        repo.query_items("premises", filters={"colour": "red"})
    with pytest.raises(ValidationError):
        repo.query_items("premises", filters={"units": "many"})
    with pytest.raises(ParameterError, match="out of range"):
        repo.query_items("premises", filters={"units": str(2**63)})
    with pytest.raises(ValidationError):
        repo.query_items("premises", bbox=(10.0, 50.0, 9.0, 51.0))
    with pytest.raises(NotFoundError):
        repo.query_items("ducts")


def test_query_items_keyset_pages(repo: Repository) -> None:
    data = chain_dataset(300, premises_per_span=2)
    repo.load_dataset(data)
    premises = data.premises
    bbox = (8.6205, 50.1005, 8.6555, 50.1025)
    x, y = premises.geometry.x, premises.geometry.y
    inside = (x >= bbox[0]) & (x <= bbox[2]) & (y >= bbox[1]) & (y <= bbox[3])
    want = sorted(premises.loc[inside, "premise_id"])
    assert len(want) > 20
    # forward from the start: each page is the next rows after the last id read
    got: list[str] = []
    after: str | None = None
    while True:
        page, matched = repo.query_items("premises", bbox=bbox, limit=7, after=after)
        rows, unmatched = repo.query_items_json("premises", bbox=bbox, limit=7, after=after,
                                                count=False)
        assert matched == len(want) and unmatched is None
        assert [r[0] for r in rows] == list(page["premise_id"])
        if page.empty:
            break
        got.extend(page["premise_id"])
        after = got[-1]
    assert got == want  # every match once, in id order
    # backward from past the end: the same ids, each page still in ascending order
    back: list[str] = []
    before: str | None = want[-1] + "~"
    while before is not None:
        page, _ = repo.query_items("premises", bbox=bbox, limit=7, before=before)
        rows, _ = repo.query_items_json("premises", bbox=bbox, limit=7, before=before)
        assert [r[0] for r in rows] == list(page["premise_id"]) == sorted(page["premise_id"])
        back = list(page["premise_id"]) + back
        before = back[0] if not page.empty else None
    assert back == want
    with pytest.raises(ValidationError):
        repo.query_items("premises", after="p1", offset=3)
    with pytest.raises(ValidationError):
        repo.query_items_json("premises", after="p1", before="p9")


def _one(frame: gpd.GeoDataFrame, **changes: Any) -> gpd.GeoDataFrame:
    row = frame.copy()
    for key, value in changes.items():
        row[key] = pd.Series([value], index=row.index, dtype=object)
    return row


def test_item_get_replace_patch_delete(repo: Repository) -> None:
    repo.load_dataset(chain_dataset(10))
    with pytest.raises(NotFoundError):
        repo.get_item("premises", "nope")
    p1 = repo.get_item("premises", "p1")
    assert list(p1["premise_id"]) == ["p1"]

    repo.replace_item("premises", "p1", _one(p1, units=9, kind="anchor", address=None))
    got = repo.get_item("premises", "p1")
    assert (int(got["units"].iat[0]), got["kind"].iat[0]) == (9, "anchor")
    assert got["address"].isna().all()
    with pytest.raises(NotFoundError):
        repo.replace_item("premises", "nope", _one(p1, premise_id="nope"))
    with pytest.raises(ValidationError) as info:
        repo.replace_item("premises", "p1", _one(p1, units=0))
    assert [(p.layer, p.id, p.field) for p in info.value.problems] == [("premises", "p1", "units")]
    with pytest.raises(ValidationError):
        repo.replace_item("premises", "p1", _one(p1, premise_id="p2"))

    repo.patch_item("premises", "p1", {"connected": "true", "units": 2})
    repo.patch_item("premises", "p1", {"geometry": {"type": "Point", "coordinates": [8.61, 50.2]}})
    got = repo.get_item("premises", "p1")
    assert bool(got["connected"].iat[0]) and int(got["units"].iat[0]) == 2
    assert got.geometry.iat[0].equals(shapely.Point(8.61, 50.2))
    with pytest.raises(ValidationError):
        repo.patch_item("premises", "p1", {"colour": "red"})
    with pytest.raises(ValidationError):
        repo.patch_item("premises", "p1", {"kind": "castle"})
    with pytest.raises(ValidationError):
        repo.patch_item("spans", "s1", {"to_node": "ghost"})
    with pytest.raises(NotFoundError):
        repo.patch_item("premises", "nope", {"units": 3})

    with pytest.raises(ConflictError) as conflict:
        repo.delete_item("nodes", "n3")
    assert "s2" in str(conflict.value) and "s3" in str(conflict.value)
    repo.delete_item("spans", "s9")
    repo.delete_item("nodes", "n10")  # the chain's last node, free once s9 is gone
    with pytest.raises(NotFoundError):
        repo.delete_item("nodes", "n10")
    assert repo.count("nodes") == 10 and repo.count("spans") == 9


def test_insert_items_checks_contract_references_and_ids(repo: Repository) -> None:
    repo.load_dataset(chain_dataset(5))
    new_span = gpd.GeoDataFrame(
        {"span_id": ["s_new"], "from_node": ["n0"], "to_node": ["n5"]},
        geometry=[shapely.LineString([(8.600, 50.1), (8.605, 50.1)])], crs=4326)
    assert repo.insert_items("spans", new_span) == 1
    got = repo.get_item("spans", "s_new")
    assert got["status"].iat[0] == "in_service"  # the contract's default
    with pytest.raises(ConflictError) as info:
        repo.insert_items("spans", new_span)
    assert [p.id for p in info.value.problems] == ["s_new"]

    dangling = new_span.assign(span_id="s_bad", to_node="ghost")
    with pytest.raises(ValidationError) as bad:
        repo.insert_items("spans", dangling)
    assert [(p.layer, p.id, p.field) for p in bad.value.problems] == [("spans", "s_bad", "to_node")]

    # a premise given in UTM is stored in WGS84
    utm = gpd.GeoDataFrame({"premise_id": ["p_utm"], "units": [2]},
                           geometry=[shapely.Point(471_000, 5_549_000)], crs=32632)
    repo.insert_items("premises", utm)
    back = repo.get_item("premises", "p_utm")
    assert back.geometry.iat[0].equals_exact(utm.to_crs(4326).geometry.iat[0], 1e-9)
    wrong = gpd.GeoDataFrame({"premise_id": ["p_line"]},
                             geometry=[shapely.LineString([(8, 50), (8.1, 50)])], crs=4326)
    with pytest.raises(ValidationError):
        repo.insert_items("premises", wrong)
    assert repo.count("premises") == 6


def test_data_version_counts_successful_writes_only(repo: Repository) -> None:
    v0 = repo.data_version()
    repo.load_dataset(chain_dataset(3))
    p0 = repo.get_item("premises", "p0")
    steps = [
        lambda: repo.patch_item("premises", "p0", {"units": 5}),
        lambda: repo.replace_item("premises", "p0", p0),
        lambda: repo.insert_items("premises", p0.assign(premise_id="p_extra")),
        lambda: repo.delete_item("premises", "p_extra"),
        lambda: repo.load_dataset(chain_dataset(3), mode="upsert"),
    ]
    for i, step in enumerate(steps, start=2):
        step()  # type: ignore[no-untyped-call]
        assert repo.data_version() == v0 + i
    for failing in (lambda: repo.delete_item("premises", "ghost"),
                    lambda: repo.patch_item("premises", "p0", {"units": -1}),
                    lambda: repo.load_dataset(chain_dataset(3))):
        with pytest.raises((NotFoundError, ValidationError, ConflictError)):
            failing()
        assert repo.data_version() == v0 + len(steps) + 1
    # a second handle on the same database (another process) agrees
    other = Repository(repo.engine)
    assert other.data_version() == repo.data_version()


def _kpis(coverage: float, areas: dict[str, float]) -> dict[str, Any]:
    return {"network": {"coverage_pct": coverage, "premises_total": 10},
            "areas": [{"area_id": a, "name": a.upper(), "coverage_pct": c}
                      for a, c in areas.items()]}


def test_kpi_snapshots_history_in_time_order(repo: Repository) -> None:
    t0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
    ids = [
        repo.save_kpi_snapshot(_kpis(30.0, {"east": 10.0}), data_version=3,
                               taken_at=t0 + timedelta(days=2)),
        repo.save_kpi_snapshot(_kpis(10.0, {"east": 5.0, "west": 1.0}), data_version=1,
                               taken_at=t0),
        repo.save_kpi_snapshot(_kpis(20.0, {"west": 2.0}), data_version=2,
                               taken_at=t0 + timedelta(days=1)),
    ]
    assert len(set(ids)) == 3
    history = repo.kpi_history()
    assert [h["coverage_pct"] for h in history] == [10.0, 20.0, 30.0]
    assert [h["data_version"] for h in history] == [1, 2, 3]
    assert history[0]["taken_at"] == t0 and history[0]["taken_at"].tzinfo is not None
    east = repo.kpi_history(area_id="east")
    assert [(h["coverage_pct"], h["name"]) for h in east] == [(5.0, "EAST"), (10.0, "EAST")]
    recent = repo.kpi_history(since=t0 + timedelta(hours=1))
    assert [h["data_version"] for h in recent] == [2, 3]
    with pytest.raises(ValidationError):
        repo.save_kpi_snapshot({"areas": []}, data_version=1)


def test_analysis_runs(repo: Repository) -> None:
    first = repo.record_analysis_run(drop_m=150.0, data_version=4,
                                     counts={"premises": 10, "passed": 7},
                                     ran_at=datetime(2026, 5, 1, tzinfo=UTC), duration_s=0.5)
    second = repo.record_analysis_run(drop_m=200.0, data_version=5, counts={"premises": 10})
    runs = repo.analysis_runs()
    assert [r["run_id"] for r in runs] == [second, first]
    assert runs[1]["counts"] == {"premises": 10, "passed": 7} and runs[1]["drop_m"] == 150.0


def test_read_dataset_of_empty_database(repo: Repository) -> None:
    ds: Dataset = repo.read_dataset()
    assert all(frame.empty for frame in ds.layers().values())
    assert ds.crs.to_epsg() == 4326


def _in_box(frame: gpd.GeoDataFrame, bbox: tuple[float, float, float, float]) -> set[str]:
    x, y = frame.geometry.x, frame.geometry.y
    inside = (x >= bbox[0]) & (x <= bbox[2]) & (y >= bbox[1]) & (y <= bbox[3])
    return set(frame.loc[inside, "premise_id"])


def _found(repo: Repository, bbox: tuple[float, float, float, float]) -> set[str]:
    page, matched = repo.query_items("premises", bbox=bbox, limit=100_000)
    assert matched == len(page)
    return set(page["premise_id"])


def test_spatial_index_follows_bulk_and_single_writes(repo: Repository) -> None:
    # more than a thousand rows per layer: the bulk path (SpatiaLite fills its R*Tree after)
    first = chain_dataset(1500)
    repo.load_dataset(first)
    box = (8.62, 50.1, 8.66, 50.11)
    assert _found(repo, box) == _in_box(first.premises, box) != set()
    # a second bulk insert into non-empty tables, elsewhere
    second = chain_dataset(1200, prefix="b", lon0=9.6)
    repo.load_dataset(second)
    far = (9.62, 50.1, 9.66, 50.11)
    assert _found(repo, far) == _in_box(second.premises, far) != set()
    # single writes after a bulk write still reach the index
    one = gpd.GeoDataFrame({"premise_id": ["lonely"]}, geometry=[shapely.Point(7.0, 49.0)],
                           crs=4326)
    repo.insert_items("premises", one)
    assert _found(repo, (6.9, 48.9, 7.1, 49.1)) == {"lonely"}
    # a bulk upsert moving every premise of the first load half a degree east
    moved = first.premises.copy()
    moved["geometry"] = shapely.transform(np.asarray(moved.geometry.array, dtype=object),
                                          lambda xy: xy + np.array([0.5, 0.0]))
    shifted = Dataset(first.nodes, first.spans, moved, first.areas)
    repo.load_dataset(shifted, mode="upsert")
    assert _found(repo, box) == set()
    east = (box[0] + 0.5, box[1], box[2] + 0.5, box[3])
    assert _found(repo, east) == _in_box(moved, east) != set()
    assert repo.count("premises") == 1500 + 1200 + 1
    if repo.engine.dialect.name == "sqlite":
        import sqlalchemy

        with repo.engine.connect() as conn:
            for table in ("nodes", "spans", "premises"):
                # SpatiaLite's own consistency check of the R*Tree against the table
                assert conn.execute(sqlalchemy.text("SELECT CheckSpatialIndex(:t, 'geometry')"),
                                    {"t": table}).scalar() == 1, table
                triggers = set(conn.execute(sqlalchemy.text(
                    "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t"),
                    {"t": table}).scalars())
                assert {f"{k}_{table}_geometry" for k in ("gii", "ggi", "tmi")} <= triggers


def test_has_kpi_snapshot_by_version(repo: Repository) -> None:
    assert not repo.has_kpi_snapshot(3)
    repo.save_kpi_snapshot(_kpis(50.0, {}), data_version=3)
    assert repo.has_kpi_snapshot(3)
    assert not repo.has_kpi_snapshot(4)
