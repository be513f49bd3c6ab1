"""netgis HTTP API: FastAPI application over netgis and its storage."""
