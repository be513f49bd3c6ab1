"""Liveness and database reachability."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from netgis.api.deps import RepoDep, ServicesDep
from netgis.api.errors import problem_responses
from netgis.api.live import Published

router = APIRouter(tags=["Health"])


class StaleAnalysis(BaseModel):
    """The newest data could not be analysed; the last good analysis is served meanwhile."""

    status: str = "stale"
    failed_version: int
    served_version: int
    error: str


class Live(BaseModel):
    """What the live analysis reflects (docs/architecture.md, "Live analysis")."""

    data_version: int
    behind: int = Field(description="Data versions written but not reflected yet.")
    last_change: str = Field(description="full, premises, network, areas or none.")
    last_change_s: float = Field(description="Seconds the last change took to reflect.")

    @classmethod
    def of(cls, published: Published | None, version: int) -> Live | None:
        """The live state as /health shows it (None before the first analysis)."""
        if published is None:
            return None
        return cls(data_version=published.version, behind=max(0, version - published.version),
                   last_change=published.path, last_change_s=round(published.seconds, 4))


class Health(BaseModel):
    """The service's state: the database it writes to, its data version and analysis."""

    status: str
    database: str
    dialect: str
    data_version: int
    analysis: StaleAnalysis | None = None
    analyses_computed: int = Field(0, description="Analyses this server process computed "
                                   "from scratch since it started (stored results and "
                                   "cached analyses served without one; edits applied to "
                                   "the live analysis are not counted).")
    live: Live | None = Field(None, description="The live analysis: the data version it "
                              "reflects (null before the first), how far behind the "
                              "database it is, and how its last change was made.")


@router.get("/health", response_model=Health, responses=problem_responses(503),
            summary="Is the service up and can its database take writes?")
def health(repo: RepoDep, services: ServicesDep) -> Health:
    """200 with the data version when the database could take a write now, else a 503 problem.

    Checks what writes need (SpatiaLite: the file is there, is the one being served
    and is writable; PostGIS: the server answers and accepts writes), not only that
    a read works.
    """
    repo.check_writable()
    version = repo.data_version()
    failure = services.live.failure or services.analyses.failure
    stale = None if failure is None else StaleAnalysis(
        failed_version=failure.failed_version, served_version=failure.served_version,
        error=failure.error)
    return Health(status="ok", database="ok", dialect=repo.engine.dialect.name,
                  data_version=version, analysis=stale,
                  analyses_computed=services.analyses.computed + services.live.full_runs,
                  live=Live.of(services.live.published, version))
