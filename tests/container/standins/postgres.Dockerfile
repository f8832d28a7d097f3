# A stand-in for `postgres:16` where no registry can be pulled from (the container
# tests build it from the local base with Debian's PostgreSQL, 15 on bookworm).
# It does what the compose file asks of the real image and nothing more:
# POSTGRES_USER/PASSWORD/DB make the cluster on the first start, the data is in
# /var/lib/postgresql/data (the volume), pg_isready is on PATH, password logins
# over the network, the server as PID 1 running as `postgres` (SIGTERM stops it).
FROM python:3.11-slim
# No cluster from the package (the entrypoint makes one in the volume), as the
# official image does.
RUN mkdir -p /etc/postgresql-common \
    && echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.conf \
    && apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends postgresql >/dev/null \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /var/run/postgresql /var/lib/postgresql/data \
    && chown -R postgres:postgres /var/run/postgresql /var/lib/postgresql >/dev/null
ENV PATH=/usr/lib/postgresql/15/bin:$PATH \
    PGDATA=/var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/standin-entrypoint
VOLUME ["/var/lib/postgresql/data"]
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT ["sh", "/usr/local/bin/standin-entrypoint"]
CMD ["postgres"]
