"""Build stage only: write bytecode for exactly what annlab's processes import.

pip's usual compile-everything doubles the venv's Python (94 MB, a quarter of
the image, mostly for modules never imported), while without bytecode every
server and worker process (workers are spawned, so each re-imports) spends
about 2 s compiling at start on a read-only root filesystem. So: import what
the server, its workers and the plots import, draw a plot with each library,
then compile those modules, and only those. The rest compiles in memory on
first use. CHECKED_HASH pycs are valid whatever the files' mtimes after the
copy into the runtime stage.

Importing and drawing here also smoke-tests the installed wheels (NumPy's BLAS,
matplotlib's Agg and fonts, plotly.min.js, psycopg, uvloop) after `strip`.
"""

from __future__ import annotations

import importlib
import io
import py_compile
import sys
import sysconfig
from pathlib import Path

MODULES = [
    "app.cli",
    "app.main",
    "app.jobs.local",
    "app.jobs.worker",
    "app.db.migrate",
    "uvicorn.loops.auto",
    "uvicorn.loops.uvloop",
    "uvicorn.protocols.http.auto",
    "uvicorn.protocols.http.httptools_impl",
    "uvicorn.protocols.websockets.auto",
    "uvicorn.lifespan.on",
    "uvicorn.middleware.proxy_headers",
    "alembic.command",
    "alembic.runtime.migration",
    "sqlalchemy.dialects.sqlite.pysqlite",
    "sqlalchemy.dialects.postgresql.psycopg",
    "psycopg",
    "psycopg_binary",
]


def exercise() -> None:
    """What the plots do: a matplotlib PNG and SVG; and Plotly.js is there to serve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    figure, axes = plt.subplots()
    axes.plot(np.arange(3.0), np.ones(3) @ np.eye(3))
    axes.contourf(np.eye(4))
    for format_ in ("png", "svg"):
        figure.savefig(io.BytesIO(), format=format_)
    plt.close(figure)

    # The dashboard serves the plotly package's plotly.min.js (the image keeps only
    # that file of the package: annlab never imports plotly's figure classes).
    from app.web.routes import plotly_bytes

    assert len(plotly_bytes()) > 1_000_000, "plotly.min.js missing from the plotly package"


def main() -> int:
    for name in MODULES:
        importlib.import_module(name)
    exercise()
    prefix = Path(sysconfig.get_paths()["purelib"]).resolve()
    compiled = 0
    for module in list(sys.modules.values()):
        source = getattr(module, "__file__", None)
        if not source or not source.endswith(".py"):
            continue
        path = Path(source).resolve()
        if prefix not in path.parents:
            continue
        py_compile.compile(
            str(path), doraise=True, invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH
        )
        compiled += 1
    print(f"precompiled {compiled} imported modules under {prefix}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
