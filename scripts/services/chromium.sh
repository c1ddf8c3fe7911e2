#!/usr/bin/env bash
# Debian's chromium for the web dashboard's browser test (test/e2e/ui.test.ts), which drives it
# headless with playwright-core (no browser download: Playwright's own builds are not used).
# Debian 12, as root. Meant to be called by scripts/test-services.sh; runs on its own.
#
# Idempotent: installs the package only when /usr/bin/chromium is missing.
set -euo pipefail

step() { printf '[test-services] %-16s %s\n' "$1" "$2"; }
fail() { printf '[test-services] error: %s\n' "$*" >&2; exit 1; }

CHROMIUM=/usr/bin/chromium

if [[ -x $CHROMIUM ]]; then
  step chromium "already installed: $("$CHROMIUM" --version 2>/dev/null || echo '?')"
  exit 0
fi
[[ $EUID -eq 0 ]] || fail "chromium is missing; run as root to install it"
export DEBIAN_FRONTEND=noninteractive
# Fonts: without any, headless Chromium renders text as boxes in the test's screenshots.
PACKAGES=(chromium fonts-dejavu-core)
if ! apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null 2>&1; then
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
fi
[[ -x $CHROMIUM ]] || fail "installed chromium but $CHROMIUM is missing"
step chromium "installed: $("$CHROMIUM" --version 2>/dev/null || echo '?')"
