"""Storage of netgis datasets in SpatiaLite (default) or PostGIS.

- ``sqlite:///FILE`` is a SpatiaLite file (default ``./netgis.db``);
  ``postgresql+psycopg://USER@HOST/DB`` is PostGIS. :func:`create_engine`
  makes either; :mod:`netgis.storage.dialects` holds every difference.
- One model (:mod:`netgis.storage.models`), created by the packaged Alembic
  migrations (:meth:`Repository.init`, ``netgis db upgrade``).
- Geometries are stored in EPSG:4326 whatever the CRS of the input; reads
  return EPSG:4326. Analysis on data read back gives the same answers as on
  the file (distances equal to a micrometer when the file was in another CRS).
- Every write is validated by :mod:`netgis.validate`, is one transaction and
  increases ``data_version``. A bulk load (:meth:`Repository.load_dataset`)
  must be a valid dataset on its own; ``insert`` refuses ids already stored,
  ``upsert`` replaces those rows and keeps the others, ``replace`` makes the
  database hold exactly the dataset.
- Writes take turns (SQLite ``BEGIN IMMEDIATE``, a row lock on PostgreSQL) with a
  busy timeout of 30 s; each stamps the rows it writes with its data version,
  the feature's version (:meth:`Repository.get_item_versioned`, ``if_match``).
  Multi-table reads see one snapshot, and a read labelled with a data version
  (:meth:`Repository.read_consistent`) reads it in that snapshot. Outages, file
  faults and contention past the timeout raise
  :class:`netgis.errors.StorageUnavailable` (retry later); pooled connections
  heal once the fault is gone (:mod:`netgis.storage.faults`).
- Every write of features leaves an entry in the ``audit_log`` table in its own
  transaction (who, when, the ids; the features before and after for single
  writes; one entry with counts per layer for a bulk load, whose ids are paged
  from ``audit_ids``): :mod:`netgis.storage.audit`,
  :meth:`Repository.audit_log`, :meth:`Repository.audit_entry_ids`,
  ``netgis db history``.
- :meth:`Repository.changes_since` is the change feed: the rows written and the ids
  deleted after a data version, read in one snapshot on indexes
  (:mod:`netgis.storage.changes`), for readers that apply writes one by one.
- Close a repository (``with`` or :meth:`Repository.close`) to release its
  pooled connections. In-memory SQLite (``sqlite://``) is one database per
  thread: use a file for anything multi-threaded.

Examples
--------
>>> from netgis.storage import Repository
>>> with Repository.from_url("sqlite:///:memory:") as repo:
...     repo.init()
...     repo.stats()["data_version"]
0
"""

from netgis.storage.changes import ChangeSet
from netgis.storage.engine import create_engine, default_database_url
from netgis.storage.repository import Repository

__all__ = ["ChangeSet", "Repository", "create_engine", "default_database_url"]
