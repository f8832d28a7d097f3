"""The plumbing of `app.client.AnnlabClient`: one httpx pool, errors as `ApiError`.

The resource methods live in mixins over this base (``client_runs``, ``client_registry``),
so each module stays about one part of API.md; they reach the server only through
`ClientBase.request` and `ClientBase._json`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from app.client_types import ApiError, error_from

DEFAULT_URL = "http://127.0.0.1:8000"
API = "/api/v1"

M = TypeVar("M", bound=BaseModel)


class ClientBase:
    """One connection pool to one annlab server.

    ``base_url`` defaults to ``ANNLAB_URL`` (else http://127.0.0.1:8000), ``api_key``
    to ``ANNLAB_API_KEY`` (sent as ``Authorization: Bearer``). ``transport`` is
    httpx's hook, for tests (``httpx.MockTransport``)."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 30.0,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = (base_url or os.environ.get("ANNLAB_URL") or DEFAULT_URL).rstrip("/")
        key = api_key if api_key is not None else os.environ.get("ANNLAB_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request to ``/api/v1`` + ``path``; any non-2xx answer raises `ApiError`."""
        return self._send(method, API + path, **kwargs)

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One request to ``url`` on the server: an unreachable server and every non-2xx
        answer both become an `ApiError`, so callers handle one exception."""
        try:
            response = self._http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            raise ApiError(None, f"cannot reach annlab at {self.base_url}: {exc}") from exc
        if response.is_error:
            raise error_from(response)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.request(method, path, **kwargs).json()

    def health(self) -> dict[str, Any]:
        """``GET /healthz`` (outside ``/api/v1``, so a load balancer needs no key)."""
        return dict(self._send("GET", "/healthz").json())


def not_none(**params: Any) -> dict[str, Any]:
    """The query parameters that were given: an old server 422s the ones it does not know,
    so an unset filter is left out rather than sent empty."""
    return {key: value for key, value in params.items() if value is not None}


def epoch_param(epoch: int | None) -> dict[str, int] | None:
    """``?epoch=`` when a snapshot epoch is asked for, else the final model (no parameter)."""
    return {"epoch": epoch} if epoch is not None else None


def predict_body(
    inputs: Sequence[Sequence[float]] | None, records: Sequence[Mapping[str, float]] | None
) -> dict[str, Any]:
    """The body of every predict route (a run's or a model version's): rows or records,
    exactly one of them."""
    if (inputs is None) == (records is None):
        raise ValueError("give exactly one of inputs or records=")
    if inputs is not None:
        return {"inputs": [list(row) for row in inputs]}
    return {"records": [dict(row) for row in records or []]}


def optional_model(model: type[M], response: httpx.Response) -> M | None:
    """The body as ``model`` when there is one (a 202 may come without)."""
    if not response.content:
        return None
    try:
        return model.model_validate(response.json())
    except (ValueError, ValidationError):
        return None
