"""A typed Python client of annlab's HTTP API (API.md), for scripts and the CLI.

    from app.client import AnnlabClient
    with AnnlabClient() as api:                       # ANNLAB_URL, ANNLAB_API_KEY
        run = api.submit_run(spec)
        for event in api.events(run.id):              # resumes after a dropped connection
            ...
        api.predict(run.id, [[5.1, 3.5, 1.4, 0.2]]).predictions

Every non-2xx answer raises one exception, `ApiError`, whose ``str`` is the
server's own message (FastAPI's 422 list as "field.path: message" lines); a
server that cannot be reached is an `ApiError` with ``status`` None.
"""

from __future__ import annotations

from app.client_base import DEFAULT_URL
from app.client_registry import RegistryClient
from app.client_runs import PlotFormat, PlotKind, RunsClient, WeightsFormat
from app.client_types import ApiError, ProgressEvent, StatusEvent, render_detail


class AnnlabClient(RunsClient, RegistryClient):
    """One connection pool to one annlab server, with a method per route of API.md.

    ``base_url`` defaults to ``ANNLAB_URL`` (else http://127.0.0.1:8000), ``api_key``
    to ``ANNLAB_API_KEY`` (sent as ``Authorization: Bearer``). ``transport`` is
    httpx's hook, for tests (``httpx.MockTransport``). The methods come from
    `RunsClient` (datasets, runs, weights, predict, plots) and `RegistryClient`
    (experiments, models); the plumbing from ``app.client_base``."""


__all__ = [
    "DEFAULT_URL",
    "AnnlabClient",
    "ApiError",
    "PlotFormat",
    "PlotKind",
    "ProgressEvent",
    "StatusEvent",
    "WeightsFormat",
    "render_detail",
]
