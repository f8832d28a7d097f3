# syntax=docker/dockerfile:1
# annlab: the REST service that trains small NumPy networks.
#   docker build -t annlab .
#   docker run -p 8000:8000 -v annlab-data:/data annlab
# The SQLite database, datasets and checkpoints live in the /data volume.

# --- build: install the project and its dependencies into a virtualenv ---------
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
COPY . .
RUN pip install .

# --- runtime: the virtualenv only, run as an unprivileged user -----------------
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    ANNLAB_DATA_DIR=/data

RUN groupadd --system --gid 10001 annlab \
    && useradd --system --uid 10001 --gid annlab --home-dir /data --no-create-home \
       --shell /usr/sbin/nologin annlab \
    && mkdir -p /data \
    && chown annlab:annlab /data

COPY --from=build /opt/venv /opt/venv

# Created and chowned above, so a fresh named volume starts owned by annlab.
VOLUME ["/data"]
WORKDIR /data
USER 10001:10001

EXPOSE 8000

# No curl in the slim image: Python's urllib raises (exit 1) on a refused
# connection or any non-2xx answer.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

CMD ["annlab", "serve", "--host", "0.0.0.0", "--port", "8000"]
