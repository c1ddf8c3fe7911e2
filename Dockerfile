# dockbot's container image: compiled JavaScript on Debian's Node.js 20, under tini, with git,
# the OpenSSH client, the Docker CLI and the Compose v2 plugin, all from Debian packages.
#
#   docker build -t dockbot .
#   docker run -d -p 3000:3000 -p 3001:3001 -v /var/run/docker.sock:/var/run/docker.sock -v dockbot-data:/data dockbot
#
# Port 3001 is the preview router (DOCKBOT_PREVIEW_PORT). In a container, 127.0.0.1 is the
# container itself, not the host where versions publish their ports: the router sees that it runs
# in a bridged container of the engine it drives and reaches services over the `dockbot-preview`
# network instead, attaching its own container and each routed service to it (docs/deploying.md,
# "Preview router").
#
# Build arguments:
#   BASE_IMAGE       Debian 13 (trixie) image both stages start from. Default debian:trixie-slim;
#                    where no registry is reachable, any local trixie root file system imported
#                    with `docker import` works (scripts/services/image-base.sh makes one).
#                    Trixie, not bookworm: Node.js >= 20 and the Compose v2 plugin are packaged
#                    from Debian 13 on, so one release has everything.
#   EXTRA_CA_CERTS   PEM text of extra certificate authorities the build stage trusts (a
#                    TLS-intercepting proxy in front of the npm registry). Default: none. The
#                    runtime image does not get them; for an internal GitLab over https with a
#                    private CA, mount its PEM and set NODE_EXTRA_CA_CERTS and GIT_SSL_CAINFO.
#
# The build stage downloads packages with apt and npm: it needs Debian's mirror and the npm
# registry. Where containers reach the network only through the host (a proxy, a firewall),
# build with `docker build --network host`.
#
# Why the image runs as root: dockbot drives the Docker engine, usually through the host's
# /var/run/docker.sock, which is owned by root:docker with mode 0660. A non-root user would need
# the host's `docker` group id, which differs between hosts, and gains nothing: whoever can use
# that socket can start a privileged container and so is root on the host anyway. Treat the
# container (and its API token) as root on the Docker host. With a remote engine (DOCKER_HOST=
# tcp://... with TLS), run it with `--user` of your choice and a writable /data.

ARG BASE_IMAGE=debian:trixie-slim

# ---------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS build
ENV DEBIAN_FRONTEND=noninteractive
# nodejs + npm (npm brings Debian's node-gyp and the Node headers, libnode-dev), and python3,
# make and g++ for node-gyp to compile better-sqlite3.
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends ca-certificates nodejs npm python3 make g++ >/dev/null \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
# Declared here, after apt (plain http, signed by Debian's keys): a changed value keeps that layer.
ARG EXTRA_CA_CERTS=""
RUN if [ -n "$EXTRA_CA_CERTS" ]; then \
      printf '%s\n' "$EXTRA_CA_CERTS" > /usr/local/share/ca-certificates/dockbot-extra.crt \
      && update-ca-certificates >/dev/null; \
    fi
# Node.js ships its own CA list; this makes it (npm included) trust the system's as well.
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
# Compile better-sqlite3 from source: its install script otherwise first downloads a prebuilt
# binary from GitHub, which a build without general internet access cannot reach. Compiling
# takes a minute or two and works wherever the npm registry does.
ENV npm_config_build_from_source=true \
    npm_config_update_notifier=false \
    npm_config_fund=false \
    npm_config_audit=false

WORKDIR /app
# Dependencies first: this layer is reused until package.json or the lock file change.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# Then drop the dev dependencies and better-sqlite3's compiler leftovers (objects, the static
# sqlite library, its sources): only build/Release/better_sqlite3.node is loaded at run time.
RUN npm run build \
 && npm prune --omit=dev \
 && npm cache clean --force \
 && cd node_modules/better-sqlite3 \
 && rm -rf deps src build/Release/obj build/Release/obj.target build/Release/.deps \
      build/Release/test_extension.node build/Release/*.a build/deps \
 && cd /app && node -e "require('better-sqlite3')(':memory:').close()"

# ---------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS runtime
ENV DEBIAN_FRONTEND=noninteractive
# docker-cli (the CLI) and docker-compose (Debian 13's package is the Compose v2 plugin, in
# /usr/libexec/docker/cli-plugins). Not docker-buildx: without it dockbot builds with the classic
# builder (DOCKER_BUILDKIT=0), which every engine has.
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends \
      ca-certificates nodejs tini git openssh-client docker-cli docker-compose >/dev/null \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
 && docker compose version >/dev/null

ENV NODE_ENV=production \
    DOCKBOT_PORT=3000 \
    DOCKBOT_PREVIEW_PORT=3001 \
    DOCKBOT_HOST=0.0.0.0 \
    DOCKBOT_DATA_DIR=/data

WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src

# The SQLite database, the SSH key (ssh/id_ed25519), known_hosts, git mirrors and checkouts.
# Checkouts live here, inside the container: compose runs here but the engine runs on the host,
# so relative bind mounts (./conf:/etc/app) in a deployed compose file point at host paths that
# do not exist. Mount the data dir at the same path on the host and in the container
# (-v /srv/dockbot:/srv/dockbot -e DOCKBOT_DATA_DIR=/srv/dockbot) to make them work.
RUN mkdir -p /data
VOLUME ["/data"]
EXPOSE 3000 3001

# Node's own fetch: no curl in the image. Healthy = the process answers and its store works
# (the answer's `docker` field reports the engine without failing the check).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.DOCKBOT_PORT||3000)+'/api/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# tini as PID 1 reaps the git, ssh and compose processes dockbot starts and passes SIGTERM on
# to node, which stops taking work and gives running operations 10 s (docker stop's default
# grace is 10 s too: use `docker stop -t 30` or stop_grace_period for more).
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/src/main.js"]
