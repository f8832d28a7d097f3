"""All routers of the API, under /api/v1 (health checks at the root)."""

from __future__ import annotations

from fastapi import APIRouter

from app.api import datasets, health, optimizers, runs

api_router = APIRouter(prefix="/api/v1")
api_router.include_router(datasets.router)
api_router.include_router(runs.router)
api_router.include_router(optimizers.router)

root_router = APIRouter()
root_router.include_router(health.router)
