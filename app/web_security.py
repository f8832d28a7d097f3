"""Headers every response carries, and CORS only where the admin lists origins.

- ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer`` and
  ``X-Frame-Options: DENY`` on every response (a header a route set is kept: the
  dashboard's pages send their own Referrer-Policy).
- ``Content-Security-Policy`` on every response, with ``frame-ancestors 'none'``
  (no clickjacking). The dashboard's pages set their own strict policy (app/web);
  it is kept. Other HTML (FastAPI's /docs and /redoc, which load Swagger UI and
  ReDoc from jsDelivr and start them with an inline script) gets a policy that
  allows exactly that; everything else (JSON, SSE, files) gets ``default-src 'none'``:
  an API answer opened in a browser runs nothing and loads nothing.
- CORS is off (no ``Access-Control-*`` header, so browsers refuse cross-origin
  reads) unless ``ANNLAB_CORS_ORIGINS`` lists origins, comma-separated. ``*`` is
  allowed only without credentials: ``*`` with ``ANNLAB_CORS_ALLOW_CREDENTIALS=true``
  would let every site act with a visitor's cookies, and is refused at start.

A pure ASGI middleware (no ``BaseHTTPMiddleware``): streamed responses (SSE) pass
through untouched, only the ``http.response.start`` message is edited.
"""

from __future__ import annotations

import re

from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.config import Settings

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
DOCS_CSP = (
    "default-src 'none'; script-src 'self' https://cdn.jsdelivr.net 'unsafe-inline'; "
    "style-src 'self' https://cdn.jsdelivr.net https://fonts.googleapis.com 'unsafe-inline'; "
    "font-src https://fonts.gstatic.com; img-src 'self' data: https://fastapi.tiangolo.com "
    "https://cdn.redoc.ly; connect-src 'self'; worker-src blob:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
ALWAYS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}
ORIGIN = re.compile(r"https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?|\*")


class CorsSettingError(ValueError):
    """ANNLAB_CORS_ORIGINS / ANNLAB_CORS_ALLOW_CREDENTIALS that cannot be served safely."""


def cors_origins(settings: Settings) -> list[str]:
    """The allowed origins (empty: CORS off); ``CorsSettingError`` for an unsafe setting."""
    origins = [part.strip().rstrip("/") for part in settings.cors_origins.split(",")]
    origins = [origin for origin in origins if origin]
    for origin in origins:
        if not ORIGIN.fullmatch(origin):
            raise CorsSettingError(
                f"ANNLAB_CORS_ORIGINS: {origin!r} is not an origin "
                "(scheme://host[:port], no path; comma-separated)"
            )
    if "*" in origins and settings.cors_allow_credentials:
        raise CorsSettingError(
            "ANNLAB_CORS_ORIGINS=* with ANNLAB_CORS_ALLOW_CREDENTIALS=true would let any "
            "web site send requests with a visitor's credentials: list the origins instead"
        )
    if "*" in origins and len(origins) > 1:
        raise CorsSettingError("ANNLAB_CORS_ORIGINS: '*' cannot be combined with other origins")
    return origins


class SecurityHeadersMiddleware:
    """Adds the headers of the module docstring to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in ALWAYS.items():
                    headers.setdefault(name, value)
                if "content-security-policy" not in headers:
                    html = headers.get("content-type", "").startswith("text/html")
                    headers["content-security-policy"] = DOCS_CSP if html else API_CSP
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install_web_security(app: FastAPI, settings: Settings) -> None:
    """CORS (if origins are listed) inside, the headers outermost: every response,
    errors and preflights included, carries them. Call it after every other middleware."""
    origins = cors_origins(settings)
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_credentials=settings.cors_allow_credentials,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID"],
            expose_headers=["Location", "Retry-After"],
            max_age=600,
        )
    app.add_middleware(SecurityHeadersMiddleware)
