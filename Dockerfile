# Overseer worker image: `docker build -t overseer:local .`
#
# One image for every Overseer process; the default is a worker
# (`overseer worker`). Other commands override the entrypoint, e.g.
#   docker run --rm --entrypoint overseer overseer:local db migrate
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Only what the distribution needs; README.md* is optional on purpose
# (pyproject names it, the build must not fail when it is absent).
WORKDIR /src
COPY pyproject.toml README.md* ./
COPY schemas ./schemas
COPY rules ./rules
COPY streams ./streams
RUN pip install . && cd / && rm -rf /src

# Unprivileged user with a fixed uid/gid so Kubernetes `runAsNonRoot` and
# volume ownership (fsGroup) work without guessing.
RUN groupadd --system --gid 10001 overseer \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/overseer --create-home \
        --shell /usr/sbin/nologin overseer \
 && install -d -o overseer -g overseer -m 0700 /var/lib/overseer/keys \
 && install -d -o overseer -g overseer -m 0755 /var/lib/overseer/cache

# Local state (Faust tables, the embedded store if used, keys) lives under
# OVERSEER_HOME; mount a volume there. The root filesystem can stay read-only.
ENV OVERSEER_HOME=/var/lib/overseer \
    OVERSEER_CACHE_DIR=/var/lib/overseer/cache \
    OVERSEER_WORKER_WEB_HOST=0.0.0.0 \
    OVERSEER_WORKER_WEB_PORT=6066
WORKDIR /var/lib/overseer
USER 10001:10001
EXPOSE 6066

# Liveness: the worker answers /healthz on OVERSEER_WORKER_WEB_PORT. The slim
# image has no curl, so Python does the request.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os,urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('OVERSEER_WORKER_WEB_PORT', '6066'), timeout=4)"]

ENTRYPOINT ["overseer", "worker"]
