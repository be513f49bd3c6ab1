"""The Alembic environment and revisions of the storage schema (run by
:mod:`netgis.storage.migrate`)."""
