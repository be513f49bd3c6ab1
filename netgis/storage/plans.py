"""Design plans: named sets of edits on top of the stored data (docs/plans.md).

A plan holds only what it changes: per feature (layer and id) the feature as the
plan wants it, or its deletion (table ``plan_features``). What the plan looks
like is main's features with those edits laid over them (:meth:`PlanEdits.apply_to`),
so main's later edits of other features show in the plan at once, and a plan of
a few builds costs a few rows whatever the size of main. Main is not touched by
any plan write: its data version, KPIs, history and audit log stay as they are
until the plan is merged.

Each edited feature keeps the ``row_version`` main's feature had when the plan
first touched it (``main_version``; null when main had no such feature). A
merge (:meth:`Plans.merge`) applies every edit to main in one transaction and one
audit entry (action ``merge``, naming the plan); a feature main changed since
(its version differs, it was deleted, or main created the same id) is a
conflict: nothing is merged, and the conflicts name both versions. After the
planner settles them, :meth:`Plans.rebase` takes main's current versions as the
plan's starting point (the plan's own content stays).

Examples
--------
>>> from netgis.io import read_dataset
>>> from netgis.storage import Repository
>>> repo = Repository.from_url("sqlite:///:memory:"); repo.init()
>>> _ = repo.load_dataset(read_dataset("tests/examples/ring_spur/dataset.gpkg"))
>>> plans = Plans(repo)
>>> plans.create("north", actor="alice").base_version
1
>>> row = repo.get_item("premises", "p_far")
>>> row["units"] = 40
>>> plans.write("north", "premises", row, actor="alice")
1
>>> plans.dataset("north")[1].premises.set_index("premise_id").loc["p_far", "units"]
np.int64(40)
>>> int(repo.get_item("premises", "p_far")["units"].iat[0]), repo.data_version()
(1, 1)
>>> plans.merge("north", actor="alice").data_version
2
>>> int(repo.get_item("premises", "p_far")["units"].iat[0])
40
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, delete, func, insert, or_, select, update

from netgis.dataset import Dataset, empty_layer
from netgis.errors import (
    ConflictError,
    NotFoundError,
    PreconditionFailed,
    Problem,
    ValidationError,
)
from netgis.schema import LAYER_NAMES, LAYERS
from netgis.storage import audit, dialects, strands
from netgis.storage.audit import DEFAULT_ACTOR
from netgis.storage.engine import begin_write
from netgis.storage.models import (
    LAYER_TABLES,
    LOAD_ORDER,
    PLAN_AUDIT,
    PLAN_FEATURES,
    PLANS,
    ROW_VERSION,
    SRID,
)
from netgis.storage.repository import (
    LoadCounts,
    Repository,
    _aware,
    _db_value,
    _next_version,
    _plant_bounds,
    _read_version,
    _storage_errors,
    _to_wgs84,
)
from netgis.validate import validate_frames

#: What a plan name may be: it appears in paths (``/plans/{name}``) and file names.
PLAN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")

PlanWriteMode = Literal["insert", "upsert", "replace"]
#: The plan log's action of each write mode.
_ACTION_OF = {"insert": "create", "upsert": "write", "replace": "replace"}


def check_plan_name(name: str) -> str:
    """``name`` if it is a usable plan name, else a :class:`ValidationError`.

    Examples
    --------
    >>> check_plan_name("fiber-2027")
    'fiber-2027'
    >>> check_plan_name("../x")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    netgis.errors.ValidationError: 1 problem: ... letters, digits, ...
    """
    if not isinstance(name, str) or not PLAN_NAME.fullmatch(name):
        raise ValidationError([Problem("plans", str(name), "name",
                                       "1 to 64 letters, digits, '_', '.' or '-', starting "
                                       "with a letter or digit")])
    return name


@dataclass(frozen=True)
class PlanInfo:
    """A plan as listed: its name, where it started and how many features it edits."""

    name: str
    description: str | None
    base_version: int
    version: int
    created_at: datetime
    created_by: str
    updated_at: datetime
    #: per layer: features the plan writes and deletes
    edits: dict[str, dict[str, int]]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (times as ISO 8601 UTC)."""
        return {"name": self.name, "description": self.description,
                "base_version": self.base_version, "version": self.version,
                "created_at": self.created_at.isoformat(), "created_by": self.created_by,
                "updated_at": self.updated_at.isoformat(), "edits": self.edits}


@dataclass(frozen=True)
class PlanEdits:
    """What a plan changes: per layer the features it writes (validated, WGS84) and the ids
    it deletes."""

    rows: dict[str, gpd.GeoDataFrame]
    deleted: dict[str, list[str]]
    #: per (layer, id): main's row_version when the plan first touched it (None: absent)
    main_versions: dict[tuple[str, str], int | None] = field(default_factory=dict)
    #: the plan's version these edits are read at (they are those up to it)
    version: int = 0

    @property
    def empty(self) -> bool:
        """No feature is written or deleted."""
        return not any(len(f) for f in self.rows.values()) and \
            not any(self.deleted.values())

    def ids(self, layer: str) -> set[str]:
        """Every id of ``layer`` the plan writes or deletes."""
        frame = self.rows.get(layer)
        written = set() if frame is None else \
            {str(v) for v in frame[LAYERS[layer].id_field].tolist()}
        return written | set(self.deleted.get(layer, ()))

    def dataset_on(self, main: Dataset) -> Dataset:
        """:meth:`apply_to` ``main``, validated as a whole (a :class:`ValidationError` names
        what the edits break, such as a span whose node main deleted since)."""
        return validate_frames(self.apply_to(main).layers()).dataset_or_raise()

    def apply_to(self, main: Dataset) -> Dataset:
        """``main`` (any CRS) with the plan's edits: edited features replaced where they
        are, new ones appended, deleted ones removed."""
        layers: dict[str, gpd.GeoDataFrame] = {}
        for layer in LAYER_NAMES:
            frame = main.layers()[layer]
            id_field = LAYERS[layer].id_field
            written = self.rows.get(layer)
            gone = set(self.deleted.get(layer, ()))
            if written is None or not len(written):
                if gone:
                    keep = ~frame[id_field].astype(str).isin(gone).to_numpy()
                    frame = frame.iloc[np.flatnonzero(keep)].reset_index(drop=True)
                layers[layer] = frame
                continue
            written = written.to_crs(main.crs)[list(frame.columns)]
            new_ids = written[id_field].astype(str)
            at = pd.Index(frame[id_field].astype(str).to_numpy(dtype=object),
                          dtype=object).get_indexer(new_ids.to_numpy(dtype=object))
            out = frame.copy()
            there = at >= 0
            if there.any():
                replaced = written.iloc[np.flatnonzero(there)]
                for col in frame.columns:
                    values = out[col].array.copy()
                    values[at[there]] = replaced[col].array
                    out[col] = values
            if gone:
                keep = ~out[id_field].astype(str).isin(gone).to_numpy()
                out = out.iloc[np.flatnonzero(keep)]
            added = written.iloc[np.flatnonzero(~there)]
            if len(added):
                out = pd.concat([out, added.astype(dict(frame.dtypes))], ignore_index=True)
            layers[layer] = gpd.GeoDataFrame(out.reset_index(drop=True),
                                             geometry=frame.geometry.name, crs=main.crs)
        return Dataset(layers["nodes"], layers["spans"], layers["premises"], layers["areas"])


@dataclass(frozen=True)
class Conflict:
    """A feature the plan edits that main changed since the plan touched it."""

    layer: str
    id: str
    #: main's version when the plan touched it (None: main had no such feature)
    main_version_then: int | None
    #: main's version now (None: main has no such feature now)
    main_version_now: int | None

    def problem(self) -> Problem:
        """The conflict as a problem of a :class:`ConflictError`."""
        if self.main_version_then is None:
            what = f"created in the data since the plan (version {self.main_version_now})"
        elif self.main_version_now is None:
            what = f"deleted from the data since the plan took version {self.main_version_then}"
        else:
            what = (f"changed in the data since the plan (version {self.main_version_then} "
                    f"-> {self.main_version_now})")
        return Problem(self.layer, self.id, None,
                       f"{what}; settle it and rebase the plan before merging")


class Plans:
    """The design plans of one database (see the module).

    Parameters
    ----------
    repo
        The repository of the database the plans live in (and are merged into).
    """

    def __init__(self, repo: Repository) -> None:
        self.repo = repo

    # ------------------------------------------------------------ lifecycle

    def create(self, name: str, *, actor: str = DEFAULT_ACTOR,
               description: str | None = None) -> PlanInfo:
        """Start a plan at main's current data version (a :class:`ConflictError` if the name
        is taken)."""
        check_plan_name(name)
        now = datetime.now(UTC)
        with _storage_errors(), begin_write(self.repo.engine) as conn:
            if conn.execute(select(PLANS.c.name).where(PLANS.c.name == name)).first():
                raise ConflictError([Problem("plans", name, "name", "a plan of this name "
                                             "exists")])
            base = _read_version(conn)
            conn.execute(insert(PLANS).values(
                name=name, description=description, base_version=base, version=0,
                created_at=now, created_by=str(actor), updated_at=now))
        return self.get(name)

    def all(self) -> list[PlanInfo]:
        """Every plan, by name."""
        with _storage_errors(), self.repo.engine.connect() as conn:
            names = conn.execute(select(PLANS.c.name).order_by(PLANS.c.name)).scalars().all()
            return [self._info(conn, n) for n in names]

    def get(self, name: str) -> PlanInfo:
        """One plan (a :class:`NotFoundError` if there is none of that name)."""
        with _storage_errors(), self.repo.engine.connect() as conn:
            return self._info(conn, name)

    def version(self, name: str) -> int:
        """The plan's version (one indexed read: what a reader asks before each answer)."""
        with _storage_errors(), self.repo.engine.connect() as conn:
            return int(self._plan_row(conn, name)["version"])

    def discard(self, name: str) -> None:
        """Delete a plan and its edits (main is not touched)."""
        with _storage_errors(), begin_write(self.repo.engine) as conn:
            self._plan_row(conn, name)
            conn.execute(delete(PLAN_AUDIT).where(PLAN_AUDIT.c.plan == name))
            conn.execute(delete(PLAN_FEATURES).where(PLAN_FEATURES.c.plan == name))
            conn.execute(delete(PLANS).where(PLANS.c.name == name))

    # ----------------------------------------------------------------- reads

    def edits(self, name: str, *, since: int | None = None) -> PlanEdits:
        """What the plan writes and deletes; with ``since``, only the features written or
        deleted after the plan's version ``since`` (what an incremental analysis of the plan
        applies next). ``version`` of the result is the plan's version they are read at."""
        with _storage_errors(), self.repo.engine.connect() as conn:
            row = self._plan_row(conn, name)
            return self._edits(conn, name, since=since, upto=int(row["version"]))

    def dataset(self, name: str) -> tuple[int, Dataset]:
        """Main's data version and the plan's dataset (main with the plan's edits), WGS84,
        validated as a whole (a :class:`ValidationError` names what the edits break, such
        as a span whose node main deleted since)."""
        edits = self.edits(name)
        version, main = self.repo.read_consistent()
        return version, edits.dataset_on(main)

    def item(self, name: str, layer: str, item_id: str) -> tuple[gpd.GeoDataFrame, str]:
        """One feature as the plan has it, and its version as an ETag value (``p<n>``: the
        plan's version of its last write; ``m<n>``: main's row_version, untouched by the
        plan). A :class:`NotFoundError` if the plan deletes it or neither has it."""
        with _storage_errors(), self.repo.engine.connect() as conn:
            self._plan_row(conn, name)
            row = conn.execute(select(PLAN_FEATURES).where(
                PLAN_FEATURES.c.plan == name, PLAN_FEATURES.c.layer == layer,
                PLAN_FEATURES.c.feature_id == str(item_id))).mappings().first()
        if row is not None:
            if row["deleted"]:
                raise NotFoundError(layer, str(item_id))
            return _rows_frame(layer, [row]), f"p{int(row['version'])}"
        frame, version = self.repo.get_item_versioned(layer, str(item_id))
        return frame, f"m{version}"

    # ---------------------------------------------------------------- writes

    def write(self, name: str, layer: str, items: gpd.GeoDataFrame, *,
              mode: PlanWriteMode = "upsert", actor: str = DEFAULT_ACTOR) -> int:
        """Write features of one layer into the plan, all or nothing; the plan's new version.

        ``insert``: every id must be new in the plan's view (main with its edits);
        ``replace``: every id must be there; ``upsert``: either. The features are
        validated as a write to main would be (a span's nodes must exist in the plan's
        view). Items without a CRS are taken as WGS84.
        """
        return self.write_layers(name, {layer: items}, mode=mode, actor=actor)

    def write_layers(self, name: str, layers: Mapping[str, gpd.GeoDataFrame], *,
                     mode: PlanWriteMode = "upsert", actor: str = DEFAULT_ACTOR,
                     action: str | None = None) -> int:
        """:meth:`write` of several layers in one transaction (nodes before the spans that
        name them); what ``netgis plan apply`` and gap builds use. The plan's log gets an
        entry per layer (``action``: by default ``create`` for insert, ``write`` for upsert,
        ``replace`` for replace)."""
        for layer in layers:
            _check_layer(layer)
        with _storage_errors(), begin_write(self.repo.engine) as conn:
            self._plan_row(conn, name)
            version = self._bump(conn, name)
            for layer in LOAD_ORDER:
                items = layers.get(layer)
                if items is None or not len(items):
                    continue
                clean = self._validate(conn, name, layer, items)
                ids = [str(v) for v in clean[LAYERS[layer].id_field].tolist()]
                present = self._present(conn, name, layer, ids)
                if mode == "insert" and present:
                    raise ConflictError([Problem(layer, i, LAYERS[layer].id_field,
                                                 "id already exists in the plan")
                                         for i in sorted(present)])
                if mode == "replace" and len(present) < len(set(ids)):
                    raise NotFoundError(layer, sorted(set(ids) - present)[0])
                self._put(conn, name, layer, clean, version=version, actor=actor)
                self._log(conn, name, actor, action or _ACTION_OF[mode], layer, ids, version)
        return version

    def write_item(self, name: str, layer: str, item_id: str, item: gpd.GeoDataFrame, *,
                   if_match: Collection[str] | None = None,
                   actor: str = DEFAULT_ACTOR) -> str:
        """Replace one feature the plan's data has, only if its version (``p<n>`` or
        ``m<n>``, see :meth:`item`) is one of ``if_match`` when that is given
        (:class:`PreconditionFailed` if not); its new version."""
        _check_layer(layer)
        id_field = LAYERS[layer].id_field
        if len(item) != 1:
            raise ValidationError([Problem(layer, str(item_id), None,
                                           f"expected one feature, got {len(item)}")])
        item = item.copy()
        given: Any = item[id_field].iat[0] if id_field in item.columns else None
        if given is not None and not pd.isna(given) and str(given) != str(item_id):
            raise ValidationError([Problem(layer, str(item_id), id_field,
                                           f"id in the body ({given!r}) differs from the id "
                                           "in the path")])
        item[id_field] = str(item_id)
        with _storage_errors(), begin_write(self.repo.engine) as conn:
            self._plan_row(conn, name)
            current = self._etag(conn, name, layer, str(item_id))
            if if_match is not None and current not in if_match:
                raise PreconditionFailed(layer, str(item_id), current)
            version = self._bump(conn, name)
            clean = self._validate(conn, name, layer, item)
            self._put(conn, name, layer, clean, version=version, actor=actor)
            self._log(conn, name, actor, "replace", layer, [str(item_id)], version)
        return f"p{version}"

    def _etag(self, conn: Connection, name: str, layer: str, item_id: str) -> str:
        """The feature's version in the plan (``p<n>`` or ``m<n>``); NotFoundError if the
        plan's data has no such feature."""
        row = conn.execute(select(PLAN_FEATURES.c.deleted, PLAN_FEATURES.c.version).where(
            PLAN_FEATURES.c.plan == name, PLAN_FEATURES.c.layer == layer,
            PLAN_FEATURES.c.feature_id == item_id)).first()
        if row is not None:
            if row[0]:
                raise NotFoundError(layer, item_id)
            return f"p{int(row[1])}"
        found = self._main_versions(conn, layer, [item_id])
        if item_id not in found:
            raise NotFoundError(layer, item_id)
        return f"m{found[item_id]}"

    def switch_on(self, name: str, *, spans: Sequence[str] = (), nodes: Sequence[str] = (),
                  all_planned: bool = False, actor: str = DEFAULT_ACTOR
                  ) -> tuple[int, dict[str, list[str]]]:
        """Put spans and nodes of the plan's data in service (status ``in_service``) in one
        write: those named, and with ``all_planned`` every one whose status is ``planned``.
        The plan's new version and the ids switched per layer (an id the plan's data does
        not have is a :class:`NotFoundError`)."""
        wanted = {"spans": [str(i) for i in spans], "nodes": [str(i) for i in nodes]}
        with _storage_errors(), self.repo.engine.connect() as conn:
            self._plan_row(conn, name)
            if all_planned:
                for layer in wanted:
                    wanted[layer] = sorted(set(wanted[layer])
                                           | self._planned_ids(conn, name, layer))
            frames: dict[str, gpd.GeoDataFrame] = {}
            for layer, ids in wanted.items():
                if not ids:
                    continue
                rows = self._view_rows(conn, name, layer, sorted(set(ids)))
                found = set(rows[LAYERS[layer].id_field].astype(str))
                missing = sorted(set(ids) - found)
                if missing:
                    raise NotFoundError(layer, missing[0])
                frames[layer] = rows.assign(status="in_service")
        if not frames:
            return self.get(name).version, {"spans": [], "nodes": []}
        version = self.write_layers(name, frames, mode="upsert", actor=actor,
                                    action="switch_on")
        return version, {layer: sorted(set(ids)) for layer, ids in wanted.items()}

    def _planned_ids(self, conn: Connection, name: str, layer: str) -> set[str]:
        """Ids of ``layer`` whose status is ``planned`` in the plan's data."""
        table = LAYER_TABLES[layer]
        id_col = table.c[LAYERS[layer].id_field]
        in_main = set(conn.execute(select(id_col).where(table.c.status == "planned"))
                      .scalars())
        own = conn.execute(select(PLAN_FEATURES.c.feature_id, PLAN_FEATURES.c.deleted,
                                  PLAN_FEATURES.c.properties).where(
            PLAN_FEATURES.c.plan == name, PLAN_FEATURES.c.layer == layer)).all()
        for feature_id, deleted, props in own:
            in_main.discard(feature_id)
            if not deleted and (props or {}).get("status") == "planned":
                in_main.add(feature_id)
        return in_main

    def delete(self, name: str, layer: str, ids: Sequence[str], *,
               actor: str = DEFAULT_ACTOR) -> int:
        """Delete features from the plan's view; the plan's new version. A node that spans
        of the plan still name is a :class:`ConflictError`; an id the view does not have
        is a :class:`NotFoundError`."""
        _check_layer(layer)
        ids = [str(i) for i in ids]
        with _storage_errors(), begin_write(self.repo.engine) as conn:
            self._plan_row(conn, name)
            version = self._bump(conn, name)
            present = self._present(conn, name, layer, ids)
            missing = [i for i in ids if i not in present]
            if missing:
                raise NotFoundError(layer, missing[0])
            if layer == "nodes":
                users = self._spans_naming(conn, name, set(ids))
                if users:
                    raise ConflictError([Problem(
                        "nodes", node, "node_id",
                        f"still referenced by {len(spans)} span(s) of the plan: "
                        + ", ".join(sorted(spans)[:20])) for node, spans in sorted(users.items())])
            main_versions = self._main_versions(conn, layer, ids)
            now = datetime.now(UTC)
            for i in ids:
                self._upsert_row(conn, name, layer, i, deleted=True, properties=None,
                                 geometry=None, main_version=main_versions.get(i),
                                 version=version, actor=actor, now=now)
            self._log(conn, name, actor, "delete", layer, ids, version)
        return version

    # ----------------------------------------------------------- merge, rebase

    def conflicts(self, name: str) -> list[Conflict]:
        """The plan's features that main changed since the plan touched them."""
        with _storage_errors(), self.repo.engine.connect() as conn:
            self._plan_row(conn, name)
            return self._conflicts(conn, name)

    def merge(self, name: str, *, actor: str = DEFAULT_ACTOR) -> LoadCounts:
        """Apply the plan's edits to main in one transaction and remove the plan.

        One audit entry (action ``merge``, ``plan`` = the plan's name) records what it
        inserted, replaced and deleted per layer. A :class:`ConflictError` lists every
        feature main changed since the plan touched it (:meth:`conflicts`), any
        feature the result would make invalid, and every error of main's strand plant on
        the result (a plan deleting a span a cable runs along); nothing is merged then.

        Returns
        -------
        LoadCounts
            Features written per layer, and main's new data version.
        """
        repo = self.repo
        with _storage_errors(), begin_write(repo.engine) as conn:
            self._plan_row(conn, name)
            conflicts = self._conflicts(conn, name)
            if conflicts:
                raise ConflictError([c.problem() for c in conflicts])
            edits = self._edits(conn, name)
            version = _next_version(conn)
            entry_id = audit.begin_bulk(conn, actor=actor, action="merge", mode="upsert",
                                        data_version=version, plan=name)
            written: dict[str, int] = {}
            for layer in LOAD_ORDER:
                table = LAYER_TABLES[layer]
                frame = edits.rows.get(layer, empty_layer(layer, SRID))
                ids = [str(v) for v in frame[LAYERS[layer].id_field].tolist()]
                replaced = sorted(set(repo._existing_ids(conn, layer, pd.Series(ids))))
                audit.keep_before(conn, entry_id, layer, table, replaced, "replace")
                audit.keep_before(conn, entry_id, layer, table,
                                  sorted(edits.deleted.get(layer, [])), "delete")
            # deletions of features that others may name first (spans, premises, areas),
            # then writes in load order (nodes before the spans naming them), then nodes
            for layer in ("spans", "premises", "areas"):
                self._delete_main(conn, layer, edits.deleted.get(layer, []))
            for layer in LOAD_ORDER:
                given = edits.rows.get(layer)
                if given is None or not len(given):
                    written[layer] = 0
                    continue
                clean = repo._validate_items(conn, layer, given)
                repo._write(conn, layer, clean, upsert=True, version=version)
                written[layer] = len(clean)
            self._delete_main(conn, "nodes", edits.deleted.get("nodes", []))
            try:
                # main's strand plant (plans do not edit it) must stay valid on the result
                strands.check_plant(conn, repo)
            except ValidationError as exc:
                raise ConflictError(exc.problems) from None
            for layer in LOAD_ORDER:
                audit.finish_layer(conn, entry_id, layer, LAYER_TABLES[layer], version)
            audit.finish_bulk(conn, entry_id)
            conn.execute(delete(PLAN_AUDIT).where(PLAN_AUDIT.c.plan == name))
            conn.execute(delete(PLAN_FEATURES).where(PLAN_FEATURES.c.plan == name))
            conn.execute(delete(PLANS).where(PLANS.c.name == name))
        repo._written(version)
        return LoadCounts(written, version)

    def rebase(self, name: str, *, actor: str = DEFAULT_ACTOR) -> PlanInfo:
        """Start the plan again from main as it is now: every edited feature takes main's
        current version as its starting point (the plan's content of it stays), so the
        conflicts the planner settled no longer hold a merge back."""
        with _storage_errors(), begin_write(self.repo.engine) as conn:
            self._plan_row(conn, name)
            for layer in LAYER_NAMES:
                ids = conn.execute(select(PLAN_FEATURES.c.feature_id).where(
                    PLAN_FEATURES.c.plan == name, PLAN_FEATURES.c.layer == layer)
                ).scalars().all()
                now_versions = self._main_versions(conn, layer, list(ids))
                for i in ids:
                    conn.execute(update(PLAN_FEATURES).where(
                        PLAN_FEATURES.c.plan == name, PLAN_FEATURES.c.layer == layer,
                        PLAN_FEATURES.c.feature_id == i).values(
                            main_version=now_versions.get(i)))
            conn.execute(update(PLANS).where(PLANS.c.name == name).values(
                base_version=_read_version(conn), updated_at=datetime.now(UTC)))
            version = int(conn.execute(select(PLANS.c.version).where(PLANS.c.name == name))
                          .scalar_one())
            self._log(conn, name, actor, "rebase", None, None, version)
        return self.get(name)

    def audit(self, name: str, *, limit: int = 100, offset: int = 0
              ) -> tuple[list[dict[str, Any]], int]:
        """The plan's log, newest first (a page), and how many entries it has in all."""
        with _storage_errors(), self.repo.engine.connect() as conn:
            self._plan_row(conn, name)
            total = int(conn.execute(select(func.count()).select_from(PLAN_AUDIT)
                                     .where(PLAN_AUDIT.c.plan == name)).scalar_one())
            rows = conn.execute(select(PLAN_AUDIT).where(PLAN_AUDIT.c.plan == name)
                                .order_by(PLAN_AUDIT.c.id.desc()).limit(limit)
                                .offset(offset)).mappings().all()
        return [{"id": int(r["id"]), "time": _aware(r["changed_at"]).isoformat(),
                 "actor": r["actor"], "action": r["action"], "layer": r["layer"],
                 "feature_ids": r["feature_ids"], "count": int(r["count"]),
                 "plan_version": int(r["version"])} for r in rows], total

    def _log(self, conn: Connection, name: str, actor: str, action: str, layer: str | None,
             ids: Sequence[str] | None, version: int) -> None:
        conn.execute(insert(PLAN_AUDIT).values(
            plan=name, changed_at=datetime.now(UTC), actor=str(actor), action=action,
            layer=layer, feature_ids=None if ids is None else list(ids),
            count=0 if ids is None else len(ids), version=version))

    # --------------------------------------------------------------- helpers

    def _plan_row(self, conn: Connection, name: str) -> Any:
        row = conn.execute(select(PLANS).where(PLANS.c.name == str(name))).mappings().first()
        if row is None:
            raise NotFoundError("plans", str(name))
        return row

    def _info(self, conn: Connection, name: str) -> PlanInfo:
        row = self._plan_row(conn, name)
        edits = {layer: {"written": 0, "deleted": 0} for layer in LAYER_NAMES}
        for layer, deleted, n in conn.execute(
                select(PLAN_FEATURES.c.layer, PLAN_FEATURES.c.deleted, func.count())
                .where(PLAN_FEATURES.c.plan == name)
                .group_by(PLAN_FEATURES.c.layer, PLAN_FEATURES.c.deleted)):
            edits[layer]["deleted" if deleted else "written"] = int(n)
        return PlanInfo(name=row["name"], description=row["description"],
                        base_version=int(row["base_version"]), version=int(row["version"]),
                        created_at=_aware(row["created_at"]), created_by=row["created_by"],
                        updated_at=_aware(row["updated_at"]), edits=edits)

    def _bump(self, conn: Connection, name: str) -> int:
        """The plan's next version (taken in the write's transaction)."""
        conn.execute(update(PLANS).where(PLANS.c.name == name).values(
            version=PLANS.c.version + 1, updated_at=datetime.now(UTC)))
        return int(conn.execute(select(PLANS.c.version).where(PLANS.c.name == name))
                   .scalar_one())

    def _edits(self, conn: Connection, name: str, *, since: int | None = None,
               upto: int | None = None) -> PlanEdits:
        rows: dict[str, gpd.GeoDataFrame] = {}
        deleted: dict[str, list[str]] = {}
        versions: dict[tuple[str, str], int | None] = {}
        where = [PLAN_FEATURES.c.plan == name]
        if since is not None:
            where.append(PLAN_FEATURES.c.version > since)
        if upto is not None:
            where.append(PLAN_FEATURES.c.version <= upto)
        for layer in LAYER_NAMES:
            found = conn.execute(select(PLAN_FEATURES).where(
                *where, PLAN_FEATURES.c.layer == layer)
                .order_by(PLAN_FEATURES.c.feature_id)).mappings().all()
            for r in found:
                versions[(layer, r["feature_id"])] = r["main_version"]
            deleted[layer] = [r["feature_id"] for r in found if r["deleted"]]
            rows[layer] = _rows_frame(layer, [r for r in found if not r["deleted"]])
        return PlanEdits(rows, deleted, versions, upto or 0)

    def _validate(self, conn: Connection, name: str, layer: str,
                  items: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        """Items checked against the contract and, for spans, against the plan's nodes."""
        if not isinstance(items, gpd.GeoDataFrame):
            raise ValidationError([Problem(layer, None, "geometry", "features need a geometry")])
        frame = items.set_crs(SRID) if items.crs is None else items.to_crs(SRID)
        frames: dict[str, gpd.GeoDataFrame] = {n: empty_layer(n, SRID)
                                               for n in ("nodes", "spans", "premises")}
        frames[layer] = frame
        if layer == "spans":
            ends = pd.concat([frame.get("from_node", pd.Series(dtype=object)),
                              frame.get("to_node", pd.Series(dtype=object))])
            wanted = sorted({str(v) for v in ends.dropna().unique()})
            frames["nodes"] = self._view_rows(conn, name, "nodes", wanted)
        report = validate_frames(frames, crs_required=False,
                                 plant_bounds=_plant_bounds(conn))
        errors = [p for p in report.errors if p.layer == layer or layer == "spans"]
        if errors:
            raise ValidationError(errors, [w for w in report.warnings if w.layer == layer])
        return _to_wgs84(report.dataset_or_raise().layers()[layer])

    def _view_rows(self, conn: Connection, name: str, layer: str,
                   ids: Sequence[str]) -> gpd.GeoDataFrame:
        """The features ``ids`` of ``layer`` as the plan has them (those it has)."""
        if not ids:
            return empty_layer(layer, SRID)
        own = conn.execute(select(PLAN_FEATURES).where(
            PLAN_FEATURES.c.plan == name, PLAN_FEATURES.c.layer == layer,
            PLAN_FEATURES.c.feature_id.in_(list(ids)))).mappings().all()
        touched = {r["feature_id"] for r in own}
        table = LAYER_TABLES[layer]
        rest = [i for i in ids if i not in touched]
        parts = [_rows_frame(layer, [r for r in own if not r["deleted"]])]
        if rest:
            parts.append(self.repo._select_frame(
                conn, layer, where=[table.c[LAYERS[layer].id_field].in_(rest)]))
        frames = [p for p in parts if len(p)]
        if not frames:
            return empty_layer(layer, SRID)
        return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=SRID)

    def _present(self, conn: Connection, name: str, layer: str,
                 ids: Iterable[str]) -> set[str]:
        """The ids among ``ids`` that the plan's view of ``layer`` holds."""
        ids = sorted(set(ids))
        if not ids:
            return set()
        own = {r["feature_id"]: bool(r["deleted"]) for r in conn.execute(
            select(PLAN_FEATURES.c.feature_id, PLAN_FEATURES.c.deleted).where(
                PLAN_FEATURES.c.plan == name, PLAN_FEATURES.c.layer == layer,
                PLAN_FEATURES.c.feature_id.in_(ids))).mappings()}
        in_main = set(self.repo._existing_ids(conn, layer, pd.Series(ids)))
        return {i for i in ids if (i in own and not own[i]) or (i not in own and i in in_main)}

    def _spans_naming(self, conn: Connection, name: str, nodes: set[str]
                      ) -> dict[str, set[str]]:
        """Per node of ``nodes``: the spans of the plan's view that name it."""
        out: dict[str, set[str]] = {}
        own = conn.execute(select(PLAN_FEATURES).where(
            PLAN_FEATURES.c.plan == name, PLAN_FEATURES.c.layer == "spans")).mappings().all()
        touched = {r["feature_id"] for r in own}
        for r in own:
            if r["deleted"]:
                continue
            props = r["properties"] or {}
            for end in ("from_node", "to_node"):
                if props.get(end) in nodes:
                    out.setdefault(props[end], set()).add(r["feature_id"])
        spans = LAYER_TABLES["spans"]
        for span_id, a, b in conn.execute(
                select(spans.c.span_id, spans.c.from_node, spans.c.to_node).where(
                    or_(spans.c.from_node.in_(sorted(nodes)), spans.c.to_node.in_(sorted(nodes))))):
            if span_id in touched:
                continue
            for end in (a, b):
                if end in nodes:
                    out.setdefault(end, set()).add(span_id)
        return out

    def _main_versions(self, conn: Connection, layer: str, ids: Sequence[str]
                       ) -> dict[str, int]:
        """main's row_version of each of ``ids`` it has."""
        if not ids:
            return {}
        table = LAYER_TABLES[layer]
        id_col = table.c[LAYERS[layer].id_field]
        out: dict[str, int] = {}
        for condition in dialects.id_conditions(conn.dialect, id_col, list(ids)):
            for i, v in conn.execute(select(id_col, table.c[ROW_VERSION]).where(condition)):
                out[str(i)] = int(v)
        return out

    def _put(self, conn: Connection, name: str, layer: str, clean: gpd.GeoDataFrame, *,
             version: int, actor: str) -> None:
        id_field = LAYERS[layer].id_field
        ids = [str(v) for v in clean[id_field].tolist()]
        main_versions = self._main_versions(conn, layer, ids)
        attrs = clean[LAYERS[layer].field_names].astype(object)
        attrs = attrs.where(attrs.notna(), None)
        wkb = shapely.to_wkb(np.asarray(clean.geometry.array, dtype=object))
        now = datetime.now(UTC)
        for i, values, geom in zip(ids, attrs.to_dict("records"), wkb, strict=True):
            props = {str(k): _db_value(v) for k, v in values.items()}
            self._upsert_row(conn, name, layer, i, deleted=False, properties=props,
                             geometry=bytes(geom), main_version=main_versions.get(i),
                             version=version, actor=actor, now=now)

    def _upsert_row(self, conn: Connection, name: str, layer: str, feature_id: str, *,
                    deleted: bool, properties: dict[str, Any] | None, geometry: bytes | None,
                    main_version: int | None, version: int, actor: str,
                    now: datetime) -> None:
        """Write one plan feature; a feature the plan touched before keeps the main version
        it started from."""
        key = (PLAN_FEATURES.c.plan == name, PLAN_FEATURES.c.layer == layer,
               PLAN_FEATURES.c.feature_id == feature_id)
        values = {"deleted": deleted, "properties": properties, "geometry": geometry,
                  "version": version, "actor": str(actor), "changed_at": now}
        if conn.execute(select(PLAN_FEATURES.c.feature_id).where(*key)).first() is not None:
            conn.execute(update(PLAN_FEATURES).where(*key).values(**values))
        else:
            conn.execute(insert(PLAN_FEATURES).values(
                plan=name, layer=layer, feature_id=feature_id, main_version=main_version,
                **values))

    def _conflicts(self, conn: Connection, name: str) -> list[Conflict]:
        out: list[Conflict] = []
        for layer in LAYER_NAMES:
            rows = conn.execute(select(PLAN_FEATURES.c.feature_id, PLAN_FEATURES.c.main_version)
                                .where(PLAN_FEATURES.c.plan == name,
                                       PLAN_FEATURES.c.layer == layer)
                                .order_by(PLAN_FEATURES.c.feature_id)).all()
            now = self._main_versions(conn, layer, [r[0] for r in rows])
            for feature_id, then in rows:
                current = now.get(feature_id)
                if then != current:
                    out.append(Conflict(layer, feature_id, then, current))
        return out

    def _delete_main(self, conn: Connection, layer: str, ids: Sequence[str]) -> None:
        if not ids:
            return
        table = LAYER_TABLES[layer]
        id_col = table.c[LAYERS[layer].id_field]
        if layer == "nodes":
            spans = LAYER_TABLES["spans"]
            users = conn.execute(select(spans.c.span_id).where(
                or_(spans.c.from_node.in_(list(ids)), spans.c.to_node.in_(list(ids))))
                .order_by(spans.c.span_id)).scalars().all()
            if users:
                raise ConflictError([Problem("nodes", None, "node_id",
                                             "the merge would delete nodes that spans still "
                                             "name: " + ", ".join(users[:20]))])
        for condition in dialects.id_conditions(conn.dialect, id_col, list(ids)):
            conn.execute(delete(table).where(condition))


def _check_layer(layer: str) -> None:
    if layer not in LAYERS:
        raise ValidationError([Problem("plans", None, "layer",
                                       f"unknown layer {layer!r}; one of "
                                       + ", ".join(LAYER_NAMES))])


def _rows_frame(layer: str, rows: Sequence[Any]) -> gpd.GeoDataFrame:
    """Plan features (rows of ``plan_features``) as a frame of the layer's schema, WGS84."""
    if not rows:
        return empty_layer(layer, SRID)
    fields = LAYERS[layer].field_names
    data = pd.DataFrame([{f: (r["properties"] or {}).get(f) for f in fields} for r in rows])
    geoms = shapely.from_wkb([bytes(r["geometry"]) for r in rows])
    frame = gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(geoms, crs=SRID), crs=SRID)
    like = empty_layer(layer, SRID)
    for col in fields:
        frame[col] = frame[col].astype(like[col].dtype)
    return frame[list(like.columns)]
