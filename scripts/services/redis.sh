#!/usr/bin/env bash
# Starts Debian's redis-server on a loopback port for the Socket.io Redis adapter tests
# (test/integration/realtime.test.ts, "several replicas"). Meant to be called by
# scripts/test-services.sh (its setup_redis step) or on its own, as root.
#
# Idempotent: installs the package only when missing, starts the server only when the port is
# not answering, and returns at once when it already runs. The server runs in the background
# (daemonized), keeps nothing on disk and answers only on 127.0.0.1.
#
# Environment:
#   DOCKBOT_TEST_REDIS_PORT   loopback port (default 6380; 6379 is left to a user's own Redis)
set -euo pipefail

REDIS_PORT="${DOCKBOT_TEST_REDIS_PORT:-6380}"
REDIS_DIR=/var/lib/dockbot-test-redis
REDIS_PIDFILE=/run/dockbot-test-redis.pid
REDIS_LOG=/var/log/dockbot-test-redis.log

step() { printf '[test-services] %-16s %s\n' "$1" "$2"; }
fail() { printf '[test-services] error: %s\n' "$*" >&2; exit 1; }

redis_answers() {
  [[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null || true)" == "PONG" ]]
}

[[ "$REDIS_PORT" =~ ^[0-9]+$ ]] || fail "DOCKBOT_TEST_REDIS_PORT must be a port number, got '$REDIS_PORT'"

if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
  [[ $EUID -eq 0 ]] || fail "redis-server is missing; run as root to install it"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  # The package's own service (port 6379) is not needed; policy-rc.d-less containers may start
  # it anyway, which is harmless: this script runs its own server on another port.
  apt-get install -y -qq --no-install-recommends redis-server redis-tools >/dev/null
  step redis "installed redis-server"
fi

if redis_answers; then
  step redis "already answering on 127.0.0.1:$REDIS_PORT"
  exit 0
fi

install -d -m 0750 "$REDIS_DIR"
# Options on the command line, no config file: nothing to keep in sync between runs.
redis-server \
  --port "$REDIS_PORT" \
  --bind 127.0.0.1 \
  --protected-mode yes \
  --daemonize yes \
  --pidfile "$REDIS_PIDFILE" \
  --logfile "$REDIS_LOG" \
  --dir "$REDIS_DIR" \
  --save '' \
  --appendonly no

for _ in $(seq 1 50); do
  if redis_answers; then
    step redis "started on 127.0.0.1:$REDIS_PORT (log: $REDIS_LOG)"
    exit 0
  fi
  sleep 0.1
done
tail -n 20 "$REDIS_LOG" >&2 || true
fail "redis-server did not answer on 127.0.0.1:$REDIS_PORT within 5 s (log: $REDIS_LOG)"
