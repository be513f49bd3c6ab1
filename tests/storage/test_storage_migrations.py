"""Migrations on empty databases of both dialects, and the model they must match."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from netgis.schema import LAYERS
from netgis.storage import Repository, migrate
from netgis.storage.models import LAYER_TABLES, Base
from tests.storage.helpers import BACKENDS, chain_dataset

SPATIAL_TABLES = ("nodes", "spans", "premises", "areas")


@pytest.mark.parametrize("backend", BACKENDS)
def test_upgrade_empty_database_then_model_matches(
        backend: str, new_engine: Callable[[str], sqlalchemy.Engine]) -> None:
    engine = new_engine(backend)
    assert migrate.current_revision(engine) is None
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision() is not None
    migrate.upgrade(engine)  # again: nothing to do
    names = set(sqlalchemy.inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= names
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"include_object": migrate.include_object,
                                                     "compare_type": True})
        # the migrations and the model agree, and SpatiaLite's own tables are ignored
        assert compare_metadata(ctx, Base.metadata) == []
        if backend == "spatialite":
            rows = conn.execute(sqlalchemy.text(
                "SELECT f_table_name, srid, spatial_index_enabled FROM geometry_columns "
                "ORDER BY f_table_name")).all()
            assert rows == sorted((t, 4326, 1) for t in SPATIAL_TABLES)
        else:
            assert conn.execute(sqlalchemy.text(
                "SELECT extname FROM pg_extension WHERE extname = 'postgis'")).scalar()
            srids: dict[str, int] = dict(conn.execute(sqlalchemy.text(
                "SELECT f_table_name, srid FROM geometry_columns")).all())
            assert {t: srids[t] for t in SPATIAL_TABLES} == dict.fromkeys(SPATIAL_TABLES, 4326)
            gist = set(conn.execute(sqlalchemy.text(
                "SELECT tablename FROM pg_indexes WHERE indexdef LIKE '%USING gist%'")).scalars())
            assert set(SPATIAL_TABLES) <= gist
    repo = Repository(engine)
    assert repo.data_version() == 0 and repo.count("premises") == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_uninitialised_database_is_a_storage_error(
        backend: str, new_engine: Callable[[str], sqlalchemy.Engine]) -> None:
    from netgis.errors import StorageError

    repo = Repository(new_engine(backend))
    with pytest.raises(StorageError, match="netgis db init"):
        repo.data_version()


def test_model_columns_are_the_contract() -> None:
    for name, layer in LAYERS.items():
        table = LAYER_TABLES[name]
        # the contract's fields, then the geometry and the feature's version (the ETag)
        assert [c.name for c in table.columns] == [*layer.field_names, "geometry",
                                                   "row_version"]
        assert [c.name for c in table.primary_key.columns] == [layer.id_field]
        for f in layer.fields:
            col = table.c[f.name]
            want = {"text": sqlalchemy.String, "int": sqlalchemy.Integer,
                    "bool": sqlalchemy.Boolean}[f.type]
            assert isinstance(col.type, want), (name, f.name)
            # a field with a default is always filled in by validation, hence NOT NULL
            assert col.nullable == (not f.required and f.default is None), (name, f.name)


@pytest.mark.parametrize("backend", BACKENDS)
def test_row_version_migration_keeps_data_and_goes_both_ways(
        backend: str, new_engine: Callable[[str], sqlalchemy.Engine]) -> None:
    engine = new_engine(backend)
    migrate.upgrade(engine, "0001")
    with engine.begin() as conn:
        # a row as the first revision stored it, and a data version to inherit
        conn.execute(sqlalchemy.text(
            "INSERT INTO nodes (node_id, kind, status, geometry) VALUES "
            "('old', 'core', 'in_service', "
            + ("GeomFromText('POINT(8.6 50.1)', 4326))" if backend == "spatialite"
               else "ST_GeomFromText('POINT(8.6 50.1)', 4326))")))
        conn.execute(sqlalchemy.text(
            "UPDATE netgis_meta SET value = 7 WHERE key = 'data_version'"))
    migrate.upgrade(engine)
    repo = Repository(engine)
    frame, version = repo.get_item_versioned("nodes", "old")
    assert version == 7 and list(frame["node_id"]) == ["old"]
    repo.load_dataset(chain_dataset(3))
    assert repo.get_item_versioned("nodes", "n1")[1] == 8
    page, _ = repo.query_items("nodes", bbox=(8.59, 50.09, 8.61, 50.11))
    assert "old" in set(page["node_id"])  # the spatial index survived the migration
    with engine.begin() as conn:
        command.downgrade(migrate.alembic_config(conn), "0001")
    assert "row_version" not in {c["name"] for c in sqlalchemy.inspect(engine).get_columns(
        "nodes")}
    assert migrate.current_revision(engine) == "0001"
