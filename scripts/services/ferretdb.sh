#!/usr/bin/env bash
# FerretDB 1.24 (a MongoDB wire-protocol server) with its SQLite backend on a loopback port: the
# "real MongoDB" the MongoDB store's integration tests talk to (docs/architecture.md, "Real parts in
# tests"). Debian 12, as root. Called by scripts/test-services.sh; runs on its own too.
#
# Idempotent: every step checks first and only acts when something is missing, so a second run
# takes seconds. One line per step.
#
# Why not plain `go install github.com/FerretDB/FerretDB/cmd/ferretdb@v1.24.2`: the module on
# the proxy lacks the generated build/version/version.txt, and a binary built from it panics at
# start ("Invalid build/version/version.txt file content"). So the module is downloaded from the
# Go module proxy, copied, given that file, and built with `go build`. The first build takes a
# few minutes (compiling the dependencies); later runs find the binary and skip it.
#
# Environment:
#   DOCKBOT_TEST_MONGODB_PORT   loopback port FerretDB listens on (default 27018)
set -euo pipefail

FERRETDB_VERSION=v1.24.2
FERRETDB_MODULE=github.com/FerretDB/FerretDB
PORT="${DOCKBOT_TEST_MONGODB_PORT:-27018}"
BIN=/usr/local/bin/ferretdb
DATA_DIR=/var/lib/dockbot-test-ferretdb
STATE_DIR="$DATA_DIR/state"
LOG=/var/log/dockbot-test-ferretdb.log
PIDFILE=/run/dockbot-test-ferretdb.pid
GO=/usr/local/go/bin/go

step() { printf '[test-services] %-16s %s\n' "$1" "$2"; }
fail() { printf '[test-services] error: %s\n' "$*" >&2; exit 1; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if [[ $EUID -ne 0 ]]; then fail "run as root (installs $BIN, writes $DATA_DIR and $LOG)"; fi
[[ "$PORT" =~ ^[0-9]+$ ]] || fail "DOCKBOT_TEST_MONGODB_PORT must be a port number, got '$PORT'"

installed_version() {
  # A binary from a plain `go install` panics here, and counts as not installed.
  "$BIN" --version 2>/dev/null | sed -n 's/^version: //p' || true
}

install_ferretdb() {
  if [[ "$(installed_version)" == "$FERRETDB_VERSION" ]]; then
    step ferretdb-bin "already installed: $BIN $FERRETDB_VERSION"
    return
  fi
  [[ -x $GO ]] || fail "Go is missing at $GO (needed to build FerretDB)"
  local tmp dir
  tmp="$(mktemp -d)"
  # shellcheck disable=SC2064 # expand $tmp now: it is local to this function
  trap "rm -rf '$tmp'" EXIT
  # Outside any module, so `go mod download` fetches exactly this version from the proxy.
  dir="$(cd "$tmp" && GOFLAGS=-mod=mod "$GO" mod download -json "$FERRETDB_MODULE@$FERRETDB_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [[ -n $dir && -d $dir ]] || fail "go mod download $FERRETDB_MODULE@$FERRETDB_VERSION gave no source directory"
  cp -r "$dir" "$tmp/src"
  chmod -R u+w "$tmp/src"
  echo "$FERRETDB_VERSION" >"$tmp/src/build/version/version.txt"
  (cd "$tmp/src" && "$GO" build -buildvcs=false -trimpath -o "$tmp/ferretdb" ./cmd/ferretdb)
  install -m 0755 "$tmp/ferretdb" "$BIN"
  [[ "$(installed_version)" == "$FERRETDB_VERSION" ]] || fail "built $BIN but '$BIN --version' does not report $FERRETDB_VERSION"
  step ferretdb-bin "built $BIN $FERRETDB_VERSION from the Go module proxy"
}

ferretdb_running() {
  [[ -f $PIDFILE ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

start_ferretdb() {
  if port_open "$PORT"; then
    ferretdb_running || fail "127.0.0.1:$PORT is taken by another process; set DOCKBOT_TEST_MONGODB_PORT to a free port"
    step ferretdb "already listening on 127.0.0.1:$PORT"
    return
  fi
  install -d -m 0700 "$DATA_DIR" "$STATE_DIR"
  # setsid: its own session, so it outlives this script and a Ctrl-C in the terminal.
  # --debug-addr=-: no metrics/pprof HTTP listener (its default port 8088 may be taken).
  setsid "$BIN" \
    --handler=sqlite \
    --sqlite-url="file:$DATA_DIR/" \
    --listen-addr="127.0.0.1:$PORT" \
    --state-dir="$STATE_DIR" \
    --debug-addr=- \
    --telemetry=disable \
    --log-level=ERROR \
    >>"$LOG" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  local i
  for i in $(seq 1 100); do
    if port_open "$PORT"; then
      step ferretdb "started on 127.0.0.1:$PORT (data: $DATA_DIR, log: $LOG)"
      return
    fi
    ferretdb_running || break
    sleep 0.1
  done
  tail -n 20 "$LOG" >&2 || true
  fail "FerretDB did not listen on 127.0.0.1:$PORT within 10 s (log: $LOG)"
}

install_ferretdb
start_ferretdb
