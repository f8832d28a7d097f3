"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.db.migrate import head_revision, is_at_head
from app.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="The process answers")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Health,
    responses={503: {"model": Health, "description": "Database unreachable or not migrated."}},
    summary="The database answers and is at the latest migration",
)
def readyz(request: Request) -> JSONResponse:
    try:
        ready = is_at_head(request.app.state.engine)
    except Exception as exc:
        return JSONResponse(
            {"status": f"database unavailable: {type(exc).__name__}"}, status_code=503
        )
    if not ready:
        return JSONResponse(
            {"status": f"database schema is not at the latest migration ({head_revision()})"},
            status_code=503,
        )
    return JSONResponse({"status": "ok"})
