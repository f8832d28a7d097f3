"""The dashboard: server-rendered page shells, the static JS/CSS, and Plotly.js.

The pages hold no data of their own: each template is a skeleton and its JavaScript
module fetches everything from the public ``/api/v1`` like any other client (so the
dashboard can never see more than a user's API key allows). ``mount_web(app)`` is the
one call ``app.main`` makes.

Plotly.js is not copied into the repository: it is the file the ``plotly`` Python
package ships, found with ``importlib.resources`` and served with a versioned URL
and a year-long cache (gzip-compressed once, in memory, for clients that accept it).
"""

from __future__ import annotations

import gzip
import hashlib
import re
from functools import cache
from importlib import resources
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")

#: Every script, style, image and request stays on this server; Plotly injects
#: <style> elements and draws images from data:/blob: URLs, hence those two allowances.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; font-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
RUN_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")

router = APIRouter(include_in_schema=False)

#: (path, template, title, nav key, needs Plotly)
PAGES: list[tuple[str, str, str, str, bool]] = [
    ("/", "runs.html", "Runs", "runs", False),
    ("/runs/new", "new_run.html", "New run", "new", False),
    ("/compare", "compare.html", "Compare runs", "compare", True),
    ("/experiments", "experiments.html", "Experiments", "experiments", False),
    ("/models", "models.html", "Models", "models", False),
    ("/datasets", "datasets.html", "Datasets", "datasets", True),
    ("/optimizers", "optimizers.html", "Optimizer race", "optimizers", True),
]


@cache
def plotly_version() -> str:
    try:
        return version("plotly")
    except PackageNotFoundError:  # pragma: no cover - plotly is a dependency
        return "0"


@cache
def plotly_bytes() -> bytes:
    """The ``plotly.min.js`` inside the installed ``plotly`` package."""
    return (resources.files("plotly") / "package_data" / "plotly.min.js").read_bytes()


@cache
def plotly_gzip() -> bytes:
    return gzip.compress(plotly_bytes(), compresslevel=6, mtime=0)


@cache
def asset_version() -> str:
    """A hash of the static files, appended to their URLs so a deploy busts caches."""
    digest = hashlib.sha256()
    for path in sorted(STATIC_DIR.rglob("*")):
        if path.is_file():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def render(request: Request, template: str, title: str, nav: str, **extra: Any) -> HTMLResponse:
    """One page shell; ``extra`` reaches the template as data-* attributes (auto-escaped)."""
    context = {
        "title": title,
        "nav": nav,
        "v": asset_version(),
        "plotly_url": f"/vendor/plotly-{plotly_version()}.min.js",
        "page_data": extra,
        "script": template.removesuffix(".html"),
    }
    response = templates.TemplateResponse(request, template, context)
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-cache"
    return response


def _page(template: str, title: str, nav: str) -> Any:
    async def page(request: Request) -> HTMLResponse:
        return render(request, template, title, nav)

    page.__name__ = f"page_{nav}"
    return page


for _path, _template, _title, _nav, _plotly in PAGES:
    router.add_api_route(_path, _page(_template, _title, _nav), methods=["GET"])


def _checked_id(value: str) -> str:
    return value if RUN_ID.fullmatch(value) else ""


@router.get("/runs/{run_id}")
async def run_page(request: Request, run_id: str) -> HTMLResponse:
    """The run page; an id the API does not know is the page's own "not found" message."""
    return render(request, "run.html", "Run", "runs", run_id=_checked_id(run_id))


@router.get("/experiments/{experiment_id}")
async def experiment_page(request: Request, experiment_id: str) -> HTMLResponse:
    return render(
        request,
        "experiment.html",
        "Experiment",
        "experiments",
        experiment_id=_checked_id(experiment_id),
    )


@router.get("/vendor/plotly-{requested}.min.js")
async def plotly_js(request: Request, requested: str) -> Response:
    """Plotly.js from the ``plotly`` package; the URL names its version, so it is immutable."""
    if requested != plotly_version():
        return Response("unknown Plotly version", status_code=404, media_type="text/plain")
    headers = {
        "Cache-Control": "public, max-age=31536000, immutable",
        "ETag": f'"plotly-{plotly_version()}"',
        "Vary": "Accept-Encoding",
    }
    if request.headers.get("if-none-match") == headers["ETag"]:
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(plotly_gzip(), media_type="text/javascript", headers=headers)
    return Response(plotly_bytes(), media_type="text/javascript", headers=headers)


class CachedStatic(StaticFiles):
    """Static files revalidated on every load (ETag), so an edited module is never stale."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def mount_web(app: FastAPI) -> None:
    """Add the dashboard's pages, ``/static`` and ``/vendor`` to ``app``."""
    app.include_router(router)
    app.mount("/static", CachedStatic(directory=STATIC_DIR), name="static")
