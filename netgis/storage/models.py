"""The one SQLAlchemy 2 model of a netgis database, for SpatiaLite and PostGIS alike.

Geometries are stored in WGS84 (EPSG:4326) whatever CRS a dataset came in, so
that both databases hold the same numbers and bbox queries take lon/lat.
The attribute columns are those of :mod:`netgis.schema`; a test checks that
they never drift apart.

Examples
--------
>>> sorted(LAYER_TABLES)
['areas', 'nodes', 'premises', 'spans']
>>> LAYER_TABLES["spans"].c.from_node.nullable
False
>>> [c.name for c in STRAND_TABLES["cable_spans"].primary_key.columns]
['cable_id', 'seq']
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from geoalchemy2 import Geometry, WKBElement
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    false,
    literal,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from netgis.schema import LAYERS, RESULT_FIELDS, STRAND_KEYS, STRAND_LAYER_NAMES, STRAND_LAYERS

#: SRID of every stored geometry.
SRID = 4326
#: The range of the contract's integer fields as stored (SQL INTEGER: 32 bits on PostgreSQL):
#: a filter value outside it is a 400, never a database error.
INT_MIN, INT_MAX = -(2**31), 2**31 - 1

# Explicit constraint names keep both dialects and the migrations in step.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base holding the netgis metadata."""

    metadata = MetaData(naming_convention=NAMING)


#: The column holding each feature's version: the data version of the write that last
#: changed it (so it grows with every change and is never reused, not even by a feature
#: deleted and created again). The API shows it as the feature's ETag.
ROW_VERSION = "row_version"


def _row_version() -> Any:
    # 0 for rows written by anything but netgis; netgis always writes the version itself.
    # Indexed (ix_<layer>_row_version, revision 0007): the change feed reads the rows of
    # a range of writes by it (netgis.storage.changes).
    return mapped_column(ROW_VERSION, Integer, nullable=False, server_default="0",
                         index=True)


def _geometry(kind: str) -> Geometry:
    # spatial_index=False: the migrations create the spatial indexes through
    # netgis.storage.dialects, the one place that knows how each database does it.
    return Geometry(geometry_type=kind, srid=SRID, spatial_index=False, nullable=False)


class Node(Base):
    """A point of the plant (layer ``nodes``)."""

    __tablename__ = "nodes"

    node_id: Mapped[str] = mapped_column(String, primary_key=True)
    kind: Mapped[str] = mapped_column(String, nullable=False)
    status: Mapped[str] = mapped_column(String, nullable=False)
    name: Mapped[str | None] = mapped_column(String)
    split_ratio: Mapped[int | None] = mapped_column(Integer)
    geometry: Mapped[WKBElement] = mapped_column(_geometry("POINT"), nullable=False)
    row_version: Mapped[int] = _row_version()


class Span(Base):
    """A fiber cable section between two nodes (layer ``spans``)."""

    __tablename__ = "spans"
    __table_args__ = (
        Index("ix_spans_from_node", "from_node"),
        Index("ix_spans_to_node", "to_node"),
    )

    span_id: Mapped[str] = mapped_column(String, primary_key=True)
    from_node: Mapped[str] = mapped_column(
        String, ForeignKey("nodes.node_id", ondelete="RESTRICT"), nullable=False)
    to_node: Mapped[str] = mapped_column(
        String, ForeignKey("nodes.node_id", ondelete="RESTRICT"), nullable=False)
    status: Mapped[str] = mapped_column(String, nullable=False)
    fiber_count: Mapped[int | None] = mapped_column(Integer)
    fibers_used: Mapped[int | None] = mapped_column(Integer)
    placement: Mapped[str | None] = mapped_column(String)
    duct_id: Mapped[str | None] = mapped_column(String)
    owner: Mapped[str | None] = mapped_column(String)
    install_year: Mapped[int | None] = mapped_column(Integer)
    geometry: Mapped[WKBElement] = mapped_column(_geometry("LINESTRING"), nullable=False)
    row_version: Mapped[int] = _row_version()


class Premise(Base):
    """A home, business or other location to serve (layer ``premises``)."""

    __tablename__ = "premises"

    premise_id: Mapped[str] = mapped_column(String, primary_key=True)
    units: Mapped[int] = mapped_column(Integer, nullable=False)
    kind: Mapped[str] = mapped_column(String, nullable=False)
    connected: Mapped[bool] = mapped_column(Boolean, nullable=False)
    address: Mapped[str | None] = mapped_column(String)
    location_id: Mapped[str | None] = mapped_column(String)
    geometry: Mapped[WKBElement] = mapped_column(_geometry("POINT"), nullable=False)
    row_version: Mapped[int] = _row_version()


class Area(Base):
    """A roll-up polygon (layer ``areas``): Polygon or MultiPolygon, hence GEOMETRY."""

    __tablename__ = "areas"

    area_id: Mapped[str] = mapped_column(String, primary_key=True)
    name: Mapped[str | None] = mapped_column(String)
    geometry: Mapped[WKBElement] = mapped_column(_geometry("GEOMETRY"), nullable=False)
    row_version: Mapped[int] = _row_version()


class AnalysisRun(Base):
    """One run of the analysis engine over the stored data.

    A run with a ``params_key`` holds stored results (revision 0005): its rows
    in the result tables below, its KPIs, and the parameters it was computed
    with. It is written in one transaction with those rows, so a run is never
    visible half-written; at most one run exists per data version and
    parameters (the unique index). Runs without a ``params_key`` only record
    that an analysis happened (:meth:`netgis.storage.Repository.record_analysis_run`).
    """

    __tablename__ = "analysis_runs"
    __table_args__ = (
        Index("uq_analysis_runs_data_version", "data_version", "params_key", unique=True),
    )

    run_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    #: when the run was stored (UTC): its created_at
    ran_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    drop_m: Mapped[float] = mapped_column(Float, nullable=False)
    data_version: Mapped[int] = mapped_column(Integer, nullable=False)
    duration_s: Mapped[float | None] = mapped_column(Float)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    #: the analysis parameters as one string (netgis.storage.results.params_key)
    params_key: Mapped[str | None] = mapped_column(String)
    #: drop_m, the optical budget, the working zone: what serving the results needs
    params: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: ``kpis.json``'s network object and its areas list
    network_kpis: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    area_kpis: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)


_RESULT_TYPES: dict[str, Any] = {"text": String, "int": Integer, "float": Float,
                                 "bool": Boolean}

#: Columns the result tables hold besides RESULT_FIELDS: what the API needs to answer a
#: premise's loss breakdown and a serviceability lookup without the in-memory analysis
#: (the optical tree of the least-loss paths, and per span its graph edge). Name, type.
SERVING_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "premises": (
        ("loss_end", "text"),       # node at the span's end the least-loss path enters by
        ("loss_along_m", "float"),  # fiber from that end to the attachment point
    ),
    "spans": (
        ("eu_node", "text"),        # node of the edge's first vertex (null: a core)
        ("ev_node", "text"),        # node of its second vertex (null: a core)
        ("eu_dist_db", "float"),    # dist(v) of those vertices, dB (null: no core reaches)
        ("ev_dist_db", "float"),
        ("edge_reversed", "bool"),  # the geometry starts at the edge's second vertex
        ("span_protected", "bool"),
        ("node_protected", "bool"),
        ("duct_protected", "bool"),
    ),
    "nodes": (
        ("tree_parent", "text"),    # previous node on the least-loss path (null: a core)
        ("dist_db", "float"),       # dist(v), dB (null: no core reaches)
        ("node_loss_db", "float"),  # the node's own loss (splice, splitter)
        ("is_splice", "bool"),
        ("split_ratio", "int"),
        ("tree_edge_m", "float"),   # length of the least span between it and tree_parent
    ),
}
#: Result table of each layer.
RESULT_TABLE_NAMES = {"premises": "premise_results", "spans": "span_results",
                      "nodes": "node_results"}


def _result_table(layer: str) -> Table:
    """``premise_results`` and co: run, the layer's id, RESULT_FIELDS, SERVING_COLUMNS.

    Geometry-free: rows join the layer table by id (``premise_results.premise_id =
    premises.premise_id``); the primary key (run_id, id) is the lookup index.
    """
    name = RESULT_TABLE_NAMES[layer]
    id_field = LAYERS[layer].id_field
    columns: list[Column[Any]] = [
        Column("run_id", Integer, ForeignKey("analysis_runs.run_id", ondelete="CASCADE"),
               primary_key=True, autoincrement=False),
        Column(id_field, String, primary_key=True),
    ]
    columns += [Column(f.name, _RESULT_TYPES[f.type], nullable=True)
                for f in RESULT_FIELDS[layer]]
    columns += [Column(col, _RESULT_TYPES[kind], nullable=True)
                for col, kind in SERVING_COLUMNS[layer]]
    return Table(name, Base.metadata, *columns)


PREMISE_RESULTS = _result_table("premises")
SPAN_RESULTS = _result_table("spans")
NODE_RESULTS = _result_table("nodes")
#: The result table of each layer, by layer name.
RESULT_TABLES: dict[str, Table] = {"premises": PREMISE_RESULTS, "spans": SPAN_RESULTS,
                                   "nodes": NODE_RESULTS}


class KpiSnapshot(Base):
    """The KPIs (``kpis.json`` shape) at one moment, with the data version they describe.

    ``estimated`` snapshots were not measured but estimated from the spans'
    ``install_year`` (``netgis kpis backfill``, revision 0010).
    """

    __tablename__ = "kpi_snapshots"
    __table_args__ = (Index("ix_kpi_snapshots_taken_at", "taken_at"),)

    snapshot_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    taken_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    data_version: Mapped[int] = mapped_column(Integer, nullable=False)
    kpis: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    estimated: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False,
                                            server_default=false())


class Street(Base):
    """One line of the dataset's optional ``streets`` context layer (docs/data-model.md):
    its ``name`` (None where unnamed) and its geometry as WKB in EPSG:4326. Context, not
    plant: no id of the data model, no row version, no spatial index (revision 0011)."""

    __tablename__ = "streets"

    street_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str | None] = mapped_column(String)
    geometry: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)


class AuditEntry(Base):
    """One write of features: who, when, what, and the features before and after.

    Written in the transaction of the write it describes, so a committed change
    always has its entry and a rolled-back one never does. ``before`` and
    ``after`` are GeoJSON FeatureCollections (WGS84) of the changed features,
    whole, for the writes of single items. A bulk load (``load``, ``import``) is
    one entry for all its layers: ``layer``, ``feature_ids``, ``before`` and
    ``after`` null, ``counts`` what it inserted, replaced and deleted per layer;
    its ids (and the features it replaced or deleted, as they were) are rows of
    ``audit_ids``, read a page at a time.
    """

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_changed_at", "changed_at"),
        Index("ix_audit_log_layer", "layer"),
        # the entries of a range of writes, for the change feed (revision 0007)
        Index("ix_audit_log_data_version", "data_version"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    #: UTC
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    #: the API key's name, "cli" for the command line, "local" for Python callers
    actor: Mapped[str] = mapped_column(String, nullable=False)
    #: create, replace, patch, delete, import (HTTP upload) or load (command line, Python)
    action: Mapped[str] = mapped_column(String, nullable=False)
    #: the layer of a write of items; null for a bulk load (see counts)
    layer: Mapped[str | None] = mapped_column(String)
    #: the ids of the features a write of items wrote, as a JSON array of strings; null for
    #: bulk loads, whose ids are in audit_ids only
    feature_ids: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True))
    count: Mapped[int] = mapped_column(Integer, nullable=False)
    #: a bulk load's {layer: {"inserted": n, "replaced": n, "deleted": n}}; null otherwise
    counts: Mapped[dict[str, dict[str, int]] | None] = mapped_column(JSON(none_as_null=True))
    #: insert, upsert or replace for bulk loads; null for single writes
    mode: Mapped[str | None] = mapped_column(String)
    #: the data version the write gave the database (and the rows it wrote)
    data_version: Mapped[int] = mapped_column(Integer, nullable=False)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: the plan a ``merge`` entry applied (revision 0008); null for other writes
    plan: Mapped[str | None] = mapped_column(String)


class AuditId(Base):
    """One feature one audit entry wrote, for finding a feature's entries on an index and
    paging through the ids of a bulk load.

    ``action`` is what happened to the feature: ``insert``, ``replace``, ``patch``
    or ``delete`` (``upsert``: written by an upsert logged before this table
    existed, which did not record whether the id was there before). ``before``
    is the feature (a GeoJSON Feature, WGS84) as it was before a bulk load
    replaced or deleted it; null otherwise (a write of items keeps its features
    in the entry).
    """

    __tablename__ = "audit_ids"
    __table_args__ = (Index("ix_audit_ids_feature_id", "feature_id", "layer"),)

    audit_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("audit_log.id", ondelete="CASCADE"), primary_key=True,
        autoincrement=False)
    layer: Mapped[str] = mapped_column(String, primary_key=True)
    feature_id: Mapped[str] = mapped_column(String, primary_key=True)
    action: Mapped[str] = mapped_column(String, nullable=False)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Meta(Base):
    """Key/integer pairs; ``data_version`` grows with every successful write."""

    __tablename__ = "netgis_meta"

    key: Mapped[str] = mapped_column(String, primary_key=True)
    value: Mapped[int] = mapped_column(Integer, nullable=False)


class Plan(Base):
    """A design plan: a named set of edits on top of the stored data (revision 0008).

    The plan's features are main's with its edits (``plan_features``) laid over them;
    main is not touched until the plan is merged (netgis.storage.plans).
    """

    __tablename__ = "plans"

    name: Mapped[str] = mapped_column(String, primary_key=True)
    description: Mapped[str | None] = mapped_column(String)
    #: main's data version when the plan was created or last rebased
    base_version: Mapped[int] = mapped_column(Integer, nullable=False)
    #: the plan's own version: grows with each write of the plan (its features' ETags)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    created_by: Mapped[str] = mapped_column(String, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class PlanFeature(Base):
    """One feature a plan writes or deletes: its layer, id and content (revision 0008).

    ``main_version`` is the ``row_version`` main's feature had when the plan first
    touched it (null: main had no such feature then); a merge refuses a feature
    main changed since (a conflict). ``properties`` holds the layer's fields (JSON),
    ``geometry`` its WKB (WGS84); both null for a deletion.
    """

    __tablename__ = "plan_features"

    plan: Mapped[str] = mapped_column(
        String, ForeignKey("plans.name", ondelete="CASCADE"), primary_key=True)
    layer: Mapped[str] = mapped_column(String, primary_key=True)
    feature_id: Mapped[str] = mapped_column(String, primary_key=True)
    deleted: Mapped[bool] = mapped_column(Boolean, nullable=False)
    properties: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    geometry: Mapped[bytes | None] = mapped_column(LargeBinary)
    main_version: Mapped[int | None] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    actor: Mapped[str] = mapped_column(String, nullable=False)
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class PlanAuditEntry(Base):
    """One write of a design plan (revision 0008): who, when, what, the plan's version.

    Kept apart from ``audit_log`` (main's writes): a plan's work never shows in main's
    log, and goes with the plan when it is discarded or merged (main's log then has the
    one ``merge`` entry naming it).
    """

    __tablename__ = "plan_audit"
    __table_args__ = (Index("ix_plan_audit_plan", "plan"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    plan: Mapped[str] = mapped_column(
        String, ForeignKey("plans.name", ondelete="CASCADE"), nullable=False)
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    actor: Mapped[str] = mapped_column(String, nullable=False)
    #: create, write (upsert), replace, delete, switch_on, build, rebase
    action: Mapped[str] = mapped_column(String, nullable=False)
    layer: Mapped[str | None] = mapped_column(String)
    feature_ids: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True))
    count: Mapped[int] = mapped_column(Integer, nullable=False)
    #: the plan's version after the write
    version: Mapped[int] = mapped_column(Integer, nullable=False)


ANALYSIS_RUNS = cast(Table, AnalysisRun.__table__)
AUDIT_LOG = cast(Table, AuditEntry.__table__)
AUDIT_IDS = cast(Table, AuditId.__table__)
KPI_SNAPSHOTS = cast(Table, KpiSnapshot.__table__)
STREETS = cast(Table, Street.__table__)
META = cast(Table, Meta.__table__)
PLANS = cast(Table, Plan.__table__)
PLAN_FEATURES = cast(Table, PlanFeature.__table__)
PLAN_AUDIT = cast(Table, PlanAuditEntry.__table__)
#: The table of each dataset layer, by layer name.
LAYER_TABLES: dict[str, Table] = {
    model.__tablename__: cast(Table, model.__table__) for model in (Node, Span, Premise, Area)
}
#: Tables in load order: nodes before the spans that reference them.
LOAD_ORDER: tuple[str, ...] = ("nodes", "spans", "premises", "areas")
DATA_VERSION_KEY = "data_version"


# --------------------------------------------------------------------------- strand layers
# The seven optional attribute tables of the strand-level plant (revision 0009), made from
# netgis.schema.STRAND_LAYERS like the result tables from RESULT_FIELDS. No geometry and no
# foreign keys: the strand validation checks every reference on each write.

_FIELD_TYPES: dict[str, Any] = {"text": String, "int": Integer, "float": Float,
                                "bool": Boolean}
#: Columns of each strand table that are indexed besides its key and row_version: what a
#: route feature deleted is looked up by (revision 0009).
STRAND_INDEXED: dict[str, tuple[str, ...]] = {
    "cables": ("from_node", "to_node"),
    "cable_spans": ("span_id",),
    "splitters": ("node_id",),
    "olt_ports": ("node_id",),
    "connections": ("node_id",),
    "drops": ("premise_id", "node_id"),
    "strand_state": (),
}


def strand_key(layer: str) -> tuple[str, ...]:
    """The fields that identify a row of strand layer ``layer``: its id field, or the pair
    of :data:`netgis.schema.STRAND_KEYS`.

    Examples
    --------
    >>> strand_key("cables"), strand_key("strand_state")
    (('cable_id',), ('cable_id', 'strand'))
    """
    if layer in STRAND_KEYS:
        return STRAND_KEYS[layer]
    return (STRAND_LAYERS[layer].id_field,)


def _strand_table(layer: str) -> Table:
    spec = STRAND_LAYERS[layer]
    key = strand_key(layer)
    columns: list[Column[Any]] = [
        Column(f.name, _FIELD_TYPES[f.type], primary_key=f.name in key,
               autoincrement=False if f.name in key else "auto",
               # a field with a fixed default is always filled in when written, hence NOT NULL
               nullable=not (f.required or f.default is not None or f.name in key))
        for f in spec.fields]
    columns.append(Column(ROW_VERSION, Integer, nullable=False, server_default="0",
                          index=True))
    indexes = [Index(f"ix_{layer}_{col}", col) for col in STRAND_INDEXED[layer]]
    return Table(layer, Base.metadata, *columns, *indexes)


#: The table of each strand layer, by layer name, in the order of STRAND_LAYER_NAMES.
STRAND_TABLES: dict[str, Table] = {name: _strand_table(name) for name in STRAND_LAYER_NAMES}


def strand_feature_id(layer: str, table: Table | None = None) -> Any:
    """The feature id of each row of strand layer ``layer`` as an SQL expression: its id
    column, or ``cable_id || ':' || seq`` (``strand``) for the two keyed layers.

    Examples
    --------
    >>> print(strand_feature_id("strand_state"))
    strand_state.cable_id || :param_1 || CAST(strand_state.strand AS VARCHAR)
    """
    table = STRAND_TABLES[layer] if table is None else table
    key = strand_key(layer)
    if len(key) == 1:
        return table.c[key[0]]
    return table.c[key[0]] + literal(":", String) + sql_cast(table.c[key[1]], String)
