"""The application for ``uvicorn api.main:app`` (settings from the NETGIS_* environment)."""

from netgis.api.app import create_app
from netgis.api.server import configure
from netgis.api.settings import Settings

settings = Settings()
# each worker process of `netgis serve --workers N` imports this module: its protocol too
configure(settings)
app = create_app(settings)
