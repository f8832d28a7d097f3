# A stand-in for `redis:7` where no registry can be pulled from (the container
# tests build it from the local base with Debian's redis-server, 7.0 on bookworm).
# Like the official image: `redis-server ARGS` runs as `redis` in /data (the
# volume, where --appendonly writes) and takes connections from other containers.
FROM python:3.11-slim
RUN apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends redis-server >/dev/null \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /data && chown redis:redis /data
WORKDIR /data
VOLUME ["/data"]
EXPOSE 6379
# The official image's entrypoint: no password and no config file means
# protected mode would refuse every client that is not on loopback.
ENTRYPOINT ["sh", "-c", "chown redis:redis /data && exec setpriv --reuid=redis --regid=redis --init-groups \"$@\" --protected-mode no --bind 0.0.0.0", "redis"]
CMD ["redis-server"]
