#!/usr/bin/env bash
# Debian's nginx for the reverse-proxy test (test/integration/packaging.test.ts), which starts its
# own nginx process with a config made from deploy/nginx/dockbot.conf, on a loopback port, with
# its pid file and logs in a temporary folder. So this script only installs: the system's nginx
# service is stopped again if the package's postinst started it (it would hold port 80 for
# nothing). Debian 12, as root. Meant to be called by scripts/test-services.sh; runs on its own.
#
# Idempotent: installs the package only when `nginx` is missing.
set -euo pipefail

step() { printf '[test-services] %-16s %s\n' "$1" "$2"; }
fail() { printf '[test-services] error: %s\n' "$*" >&2; exit 1; }

if command -v nginx >/dev/null 2>&1; then
  step nginx "already installed: $(nginx -v 2>&1 | sed 's/^nginx version: //')"
  exit 0
fi
[[ $EUID -eq 0 ]] || fail "nginx is missing; run as root to install it"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -qq --no-install-recommends nginx >/dev/null 2>&1; then
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends nginx >/dev/null
fi
# Without systemd the postinst starts nginx through its init script; stop that one (by its pid
# file) so only the test's own nginx processes run.
if [[ -f /run/nginx.pid ]] && kill -0 "$(cat /run/nginx.pid)" 2>/dev/null; then
  nginx -s quit 2>/dev/null || true
fi
command -v nginx >/dev/null 2>&1 || fail "installed nginx but 'nginx' is not on PATH"
step nginx "installed: $(nginx -v 2>&1 | sed 's/^nginx version: //')"
