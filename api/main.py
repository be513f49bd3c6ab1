"""The application for ``uvicorn api.main:app`` (settings from the NETGIS_* environment)."""

from api.app import create_app

app = create_app()
