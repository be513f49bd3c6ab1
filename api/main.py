"""The application for ``uvicorn api.main:app`` (settings from the NETGIS_* environment)."""

from api.app import create_app
from api.server import configure
from api.settings import Settings

settings = Settings()
# each worker process of `netgis serve --workers N` imports this module: its protocol too
configure(settings)
app = create_app(settings)
