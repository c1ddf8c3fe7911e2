#!/usr/bin/env bash
# The base image dockbot's own Dockerfile builds FROM in tests and CI, where no image registry is
# reachable: a Debian 13 (trixie) minbase root file system made with debootstrap from Debian's
# mirror and imported as `dockbot-image-base:trixie`. The test builds with
# `--build-arg BASE_IMAGE=dockbot-image-base:trixie`; users build FROM debian:trixie-slim, which
# this image stands in for (same release, same apt sources, docs and man pages left out likewise).
#
# Why trixie and not bookworm: dockbot needs Node.js >= 20 and the Compose v2 plugin, and Debian
# packages both only from 13 on (bookworm has nodejs 18 and Compose v1). One release keeps the
# image coherent instead of mixing trixie's libc into a bookworm system.
#
# Debian 12 host, as root. Meant to be called by scripts/test-services.sh; runs on its own too.
# Idempotent: does nothing when the image exists with the current revision label (a second run
# takes a second); the first run downloads about 40 MB and takes a minute or two.
#
# Environment:
#   DOCKBOT_TEST_DEBIAN_MIRROR   Debian mirror (default http://deb.debian.org/debian)
set -euo pipefail

IMAGE=dockbot-image-base:trixie
SUITE=trixie
# Bump when the image's content changes, so machines that built an older one rebuild it.
REVISION=2
MIRROR="${DOCKBOT_TEST_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

step() { printf '[test-services] %-16s %s\n' "$1" "$2"; }
fail() { printf '[test-services] error: %s\n' "$*" >&2; exit 1; }

if [[ $EUID -ne 0 ]]; then fail "run as root (debootstrap and docker import)"; fi
docker info >/dev/null 2>&1 || fail "no Docker engine answers 'docker info' (run scripts/test-services.sh first)"

label="$(docker image inspect --format '{{ index .Config.Labels "dockbot.image-base.revision" }}' "$IMAGE" 2>/dev/null || true)"
if [[ "$label" == "$REVISION" ]]; then
  step image-base "already built: $IMAGE"
  exit 0
fi

if ! command -v debootstrap >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq --no-install-recommends debootstrap >/dev/null 2>&1; then
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
  fi
fi
[[ -f $KEYRING ]] || fail "missing $KEYRING (package debian-archive-keyring)"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
root="$tmp/root"
if ! debootstrap --variant=minbase --keyring="$KEYRING" "$SUITE" "$root" "$MIRROR" >"$tmp/debootstrap.log" 2>&1; then
  tail -n 20 "$tmp/debootstrap.log" >&2
  fail "debootstrap $SUITE from $MIRROR failed (log above)"
fi

# What debian:trixie-slim has too: deb822 sources with updates and security, no docs or man pages
# from later installs, apt deleting downloaded packages after installing them, and no package
# caches or lists in the image.
rm -f "$root/etc/apt/sources.list"
cat >"$root/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: ${MIRROR}
Suites: ${SUITE} ${SUITE}-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${MIRROR%/debian}/debian-security
Suites: ${SUITE}-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
cat >"$root/etc/dpkg/dpkg.cfg.d/docker-slim" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
DPKG
cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT
printf 'Acquire::Languages "none";\n' >"$root/etc/apt/apt.conf.d/docker-no-languages"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin "$root"/var/lib/apt/lists/* "$root"/var/log/*.log \
  "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/*
# A container gets its own resolv.conf and hostname from Docker; leave none from this machine.
: >"$root/etc/resolv.conf"
: >"$root/etc/hostname"

tar --numeric-owner -C "$root" -c . | docker import \
  -c "LABEL dockbot.image-base.revision=$REVISION" \
  -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  -c 'CMD ["bash"]' \
  - "$IMAGE" >/dev/null
step image-base "built $IMAGE (Debian $SUITE minbase, revision $REVISION)"
