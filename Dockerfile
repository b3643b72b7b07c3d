# One image for both processes: `switchboard-gateway` (the default) and `switchboard-relay`.
#   docker build -t switchboard .
#   docker run -e REDIS_URL=redis://redis:6379/0 -p 8080:8080 switchboard
#   docker run -e REDIS_URL=redis://redis:6379/0 switchboard switchboard-relay

# palava-client's browser bundle, for the mesh demo page (/demo): npm, as
# package-lock.json pins it.
FROM node:20-bookworm-slim AS palava
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SWITCHBOARD_PALAVA_BUNDLE=/opt/palava/palava.bundle.js \
    SWITCHBOARD_LOG_FORMAT=json
# tini as PID 1: signals reach the process (SIGTERM drains it) and zombies are reaped.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini=0.19.* \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# The dependencies as requirements/service.lock pins them, hashes checked (their own
# layer, rebuilt only when the lock changes); then the project, with the build backend
# that lock installed.
COPY requirements/service.lock ./requirements/
RUN pip install --no-cache-dir --require-hashes -r requirements/service.lock
COPY pyproject.toml README.md LICENSE ./
COPY gateway ./gateway
COPY relay ./relay
COPY shared ./shared
COPY redis_io ./redis_io
COPY switchboard_client ./switchboard_client
# The browser library and the demo pages, which the gateway serves: installed beside it.
COPY browser ./browser
RUN pip install --no-cache-dir --no-deps --no-build-isolation . \
    && rm -rf /app/gateway /app/relay /app/shared /app/redis_io /app/switchboard_client /app/browser \
              /app/requirements
COPY --from=palava /build/node_modules/palava-client/palava.bundle.js /opt/palava/
# A numeric user, so that a runAsNonRoot policy can tell it is not root.
USER 10001:10001
EXPOSE 8080 8081 9090
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["switchboard-gateway"]
