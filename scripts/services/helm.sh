#!/usr/bin/env bash
# Helm 3 for the chart tests (test/integration/packaging.test.ts: `helm lint`, `helm template`),
# built from the Go module proxy: `go install helm.sh/helm/v3/cmd/helm@<version>`. Debian 12, as
# root. Meant to be called by scripts/test-services.sh; runs on its own too.
#
# Idempotent: does nothing when /usr/local/bin/helm already reports the wanted version. The first
# build compiles Helm and its dependencies (a few minutes on 2 cores); later runs take a second.
#
# Environment:
#   DOCKBOT_TEST_HELM_VERSION   version to install (default v3.22.0)
set -euo pipefail

HELM_VERSION="${DOCKBOT_TEST_HELM_VERSION:-v3.22.0}"
HELM_MODULE=helm.sh/helm/v3
BIN_DIR=/usr/local/bin
BIN="$BIN_DIR/helm"
GO=/usr/local/go/bin/go

step() { printf '[test-services] %-16s %s\n' "$1" "$2"; }
fail() { printf '[test-services] error: %s\n' "$*" >&2; exit 1; }

if [[ $EUID -ne 0 ]]; then fail "run as root (installs $BIN)"; fi
[[ "$HELM_VERSION" =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]] || fail "DOCKBOT_TEST_HELM_VERSION must look like v3.22.0, got '$HELM_VERSION'"

installed_version() {
  # Not `helm version`: a `go install` build lacks the release's -ldflags and reports only
  # "v3.22". The module version is in the binary's build info.
  [[ -x $BIN ]] || return 0
  "$GO" version -m "$BIN" 2>/dev/null | awk '$1 == "mod" && $2 == "'"$HELM_MODULE"'" { print $3 }' || true
}

if [[ "$(installed_version)" == "$HELM_VERSION" ]]; then
  step helm "already installed: $BIN $HELM_VERSION"
  exit 0
fi
[[ -x $GO ]] || fail "Go is missing at $GO (needed to build Helm)"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! GOBIN="$BIN_DIR" "$GO" install "$HELM_MODULE/cmd/helm@$HELM_VERSION" >"$log" 2>&1; then
  tail -n 20 "$log" >&2
  fail "go install $HELM_MODULE/cmd/helm@$HELM_VERSION failed; list what the proxy has with: $GO list -m -versions $HELM_MODULE"
fi
got="$(installed_version)"
[[ $got == "$HELM_VERSION" ]] || fail "installed $BIN but its build info says '$got', not $HELM_VERSION"
"$BIN" version --short >/dev/null || fail "installed $BIN but '$BIN version' fails"
step helm "installed $BIN $got from the Go module proxy"
