"""Liveness and database reachability."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from api.deps import RepoDep
from api.errors import problem_responses

router = APIRouter(tags=["Health"])


class Health(BaseModel):
    status: str
    database: str
    dialect: str
    data_version: int


@router.get("/health", response_model=Health, responses=problem_responses(503),
            summary="Is the service up and can its database take writes?")
def health(repo: RepoDep) -> Health:
    """200 with the data version when the database could take a write now, else a 503 problem.

    Checks what writes need (SpatiaLite: the file is there, is the one being served
    and is writable; PostGIS: the server answers and accepts writes), not only that
    a read works.
    """
    repo.check_writable()
    version = repo.data_version()
    return Health(status="ok", database="ok", dialect=repo.engine.dialect.name,
                  data_version=version)
