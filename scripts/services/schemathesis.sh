#!/usr/bin/env bash
# schemathesis (PyPI) for the OpenAPI fuzz test (test/integration/openapi-fuzz.test.ts), in its
# own virtualenv so it never touches the system's Python packages. Debian 12, as root. Meant to
# be called by scripts/test-services.sh; runs on its own too.
#
# Idempotent: does nothing when the venv's `st` already reports the pinned version.
#
# Environment:
#   DOCKBOT_TEST_SCHEMATHESIS_VERSION   version to install (default 4.32.5; a 4.x release)
#   DOCKBOT_TEST_SCHEMATHESIS_VENV      where the venv lives (default /opt/dockbot-schemathesis);
#                                       the test runs $VENV/bin/st
set -euo pipefail

ST_VERSION="${DOCKBOT_TEST_SCHEMATHESIS_VERSION:-4.32.5}"
VENV="${DOCKBOT_TEST_SCHEMATHESIS_VENV:-/opt/dockbot-schemathesis}"
# Debian's own Python: a pyenv or other interpreter earlier on PATH may vanish with its shims.
PYTHON=/usr/bin/python3

step() { printf '[test-services] %-16s %s\n' "$1" "$2"; }
fail() { printf '[test-services] error: %s\n' "$*" >&2; exit 1; }

[[ "$ST_VERSION" =~ ^4\.[0-9]+\.[0-9]+$ ]] || fail "DOCKBOT_TEST_SCHEMATHESIS_VERSION must be a 4.x version like 4.32.5, got '$ST_VERSION'"
[[ "$VENV" == /* ]] || fail "DOCKBOT_TEST_SCHEMATHESIS_VENV must be an absolute path, got '$VENV'"

installed_version() {
  [[ -x "$VENV/bin/python" ]] || return 0
  "$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null || true
}

if [[ "$(installed_version)" == "$ST_VERSION" ]] && "$VENV/bin/st" --version >/dev/null 2>&1; then
  step schemathesis "already installed: $VENV/bin/st $ST_VERSION"
  exit 0
fi

if ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  [[ $EUID -eq 0 ]] || fail "python3-venv is missing; run as root to install it"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
  step schemathesis "installed python3-venv"
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# A venv left half-made by an interrupted run is made anew.
if [[ ! -x "$VENV/bin/pip" ]]; then
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
fi
if ! "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$ST_VERSION" >"$log" 2>&1; then
  tail -n 20 "$log" >&2
  fail "pip could not install schemathesis==$ST_VERSION into $VENV"
fi
"$VENV/bin/st" --version >/dev/null 2>&1 || fail "installed schemathesis but '$VENV/bin/st --version' fails"
step schemathesis "installed $("$VENV/bin/st" --version 2>/dev/null | head -n 1) in $VENV"
