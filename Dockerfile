# syntax=docker/dockerfile:1
# annlab: the REST service that trains small NumPy networks.
#   docker build -t annlab:0.1.0 -t annlab:latest .
#   docker run -d --name annlab --init -p 127.0.0.1:8000:8000 -v annlab-data:/data annlab
# The SQLite database, datasets and checkpoints live in the /data volume.
# README "Running it for a lab" has the whole procedure (podman too, offline builds).

# --- build: the locked dependencies, then the project, into a virtualenv --------
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
# OFFLINE=1: install from a wheelhouse in wheels/ instead of the index (README).
ARG OFFLINE=0
# binutils, in this stage only, for `strip --strip-debug`: wheels ship some C
# extensions with debug info (uvloop's alone is 13 MB). Only those that were not
# relinked by auditwheel (no RPATH, not under *.libs/) are stripped: strip breaks
# patchelf's layout. Offline there is no Debian mirror either: nothing is stripped.
RUN if [ "$OFFLINE" != 1 ]; then \
        apt-get update -qq && apt-get install -y -qq --no-install-recommends binutils >/dev/null \
        && rm -rf /var/lib/apt/lists/*; \
    fi
# No pip inside the venv: the base image's pip installs into it (--python), so the
# runtime stage copies the packages without an installer.
RUN python -m venv --without-pip /opt/venv

WORKDIR /src
# Dependencies first, from the lock alone (exact versions, hashes checked, wheels
# only: no compiler): editing the source never re-runs this layer. Then what a
# server never runs goes: test suites, debug info, of the plotly package all but
# the plotly.min.js the dashboard serves (annlab never imports plotly's figure
# classes: its plots are matplotlib's; tests/container checks the file is served),
# and of pyarrow (CSV uploads: its csv and compute modules) Flight, the cloud and
# HDFS filesystems, ORC, C++ headers and sources, and the copies of its libraries
# the wheel holds under unversioned names (tests/container uploads a CSV).
COPY requirements.lock ./
COPY wheels/ ./wheels/
RUN if [ "$OFFLINE" = 1 ]; then set -- --no-index --find-links=/src/wheels; fi \
    && pip --python /opt/venv/bin/python install --no-deps --require-hashes \
       --only-binary=:all: --no-compile "$@" -r requirements.lock \
    && site=/opt/venv/lib/python3.11/site-packages \
    && find "$site" -mindepth 2 -type d -name tests -prune -exec rm -rf {} + \
    && (cd "$site/plotly" && rm -rf labextension graph_objs graph_objects validators \
            express figure_factory matplotlylib package_data/widgetbundle.js) \
    && (cd "$site/pyarrow" && rm -rf include src ./*flight* ./_s3fs.* ./libarrow_s3.* \
            ./_gcsfs.* ./_azurefs.* ./_hdfs.* ./_orc.* ./_dataset_orc.* orc.py \
            ./_pyarrow_cpp_tests.* ./libarrow_python*.so ./libarrow_python*.so.*.*.*) \
    && if command -v strip >/dev/null; then \
           find "$site" -type f -name '*.so' -not -path '*.libs/*' | while read -r so; do \
               readelf -S "$so" | grep -q '[.]debug_info' || continue; \
               readelf -d "$so" | grep -qE 'RPATH|RUNPATH' && continue; \
               strip --strip-debug "$so"; \
           done; \
       fi

COPY pyproject.toml README.md LICENSE ./
COPY core ./core
COPY app ./app
COPY migrations ./migrations
COPY docker/precompile.py /tmp/precompile.py
# The project itself with the locked setuptools (no download), which then leaves;
# then bytecode for what the processes import (docker/precompile.py says why).
RUN pip --python /opt/venv/bin/python install --no-deps --no-index --no-build-isolation \
       --no-compile . \
    && pip --python /opt/venv/bin/python uninstall --yes setuptools \
    && cd /tmp && MPLCONFIGDIR=/tmp/matplotlib /opt/venv/bin/python -B -W ignore precompile.py \
    && rm -rf /tmp/precompile.py /tmp/matplotlib

# --- runtime: the virtualenv only, run as an unprivileged user -----------------
FROM python:3.11-slim

# ANNLAB_HOST/ANNLAB_PORT are read by `annlab serve` and by the HEALTHCHECK, so
# `-e ANNLAB_PORT=9000` moves both. MPLCONFIGDIR: matplotlib's cache under /tmp,
# so plots work on a read-only root filesystem (with a tmpfs on /tmp).
# MALLOC_ARENA_MAX=2: glibc's per-thread malloc arenas fragmented under the soak's
# mixed traffic (server +6.7 MiB in 3 min, still growing); with two it levelled off
# (+0.5 MiB; docs/performance.md, "A soak").
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MALLOC_ARENA_MAX=2 \
    PATH=/opt/venv/bin:$PATH \
    ANNLAB_DATA_DIR=/data \
    ANNLAB_HOST=0.0.0.0 \
    ANNLAB_PORT=8000 \
    MPLCONFIGDIR=/tmp/matplotlib

RUN groupadd --system --gid 10001 annlab \
    && useradd --system --uid 10001 --gid annlab --home-dir /data --no-create-home \
       --shell /usr/sbin/nologin annlab \
    && mkdir -p /data \
    && chown annlab:annlab /data

COPY --from=build /opt/venv /opt/venv

LABEL org.opencontainers.image.title="annlab" \
      org.opencontainers.image.description="Trains small neural networks over HTTP (NumPy engine)" \
      org.opencontainers.image.licenses="MIT"

# Created and chowned above, so a fresh named volume starts owned by annlab.
VOLUME ["/data"]
WORKDIR /data
USER 10001:10001

EXPOSE 8000

# No curl in the slim image: Python's urllib raises (exit 1) on a refused
# connection or any non-2xx answer. The port is the server's (ANNLAB_PORT).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('ANNLAB_PORT', '8000'), timeout=4)"]

CMD ["annlab", "serve"]
