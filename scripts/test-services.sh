#!/usr/bin/env bash
# Brings up the real services the integration tests talk to (docs/architecture.md, "Real parts in
# tests") on a Debian 12 machine, as root: Docker Engine, Compose v1 and v2, the local base image
# test Dockerfiles start FROM, and an sshd git server on a loopback port.
#
# Idempotent: every step checks first and only acts when something is missing, so a second run
# takes seconds. One line per step. CI runs it on a fresh clone of a fresh machine.
#
# Environment:
#   DOCKBOT_TEST_SSH_PORT   loopback port of the git sshd (default 2222)
#   DOCKBOT_TEST_GIT_HOME   home of the `git` user; bare repos live in $HOME/repos
#                           (default /srv/dockbot-test-git)
set -euo pipefail

SSH_PORT="${DOCKBOT_TEST_SSH_PORT:-2222}"
GIT_HOME="${DOCKBOT_TEST_GIT_HOME:-/srv/dockbot-test-git}"
GIT_USER=git
SSHD_DIR=/etc/dockbot-test-sshd
SSHD_CONFIG="$SSHD_DIR/sshd_config"
SSHD_PIDFILE=/run/dockbot-test-sshd.pid
SSHD_LOG=/var/log/dockbot-test-sshd.log
DOCKERD_LOG=/var/log/dockbot-test-dockerd.log
COMPOSE_PLUGIN_DIR=/usr/local/lib/docker/cli-plugins
BASE_IMAGE=dockbot-test-base:latest
# Bump when the image's content changes, so machines that built an older one rebuild it.
BASE_IMAGE_REVISION=2
BASE_IMAGE_APPLETS=(sh httpd sleep echo cat ls mkdir seq true false env printf yes head wc)
APT_PACKAGES=(docker.io docker-compose openssh-server busybox-static git curl)

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
step() { printf '[test-services] %-16s %s\n' "$1" "$2"; }
fail() { printf '[test-services] error: %s\n' "$*" >&2; exit 1; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if [[ $EUID -ne 0 ]]; then fail "run as root (installs packages, starts dockerd and sshd)"; fi
[[ "$SSH_PORT" =~ ^[0-9]+$ ]] || fail "DOCKBOT_TEST_SSH_PORT must be a port number, got '$SSH_PORT'"
[[ "$GIT_HOME" == /* ]] || fail "DOCKBOT_TEST_GIT_HOME must be an absolute path, got '$GIT_HOME'"

export DEBIAN_FRONTEND=noninteractive
WORK_TMP="$(mktemp -d)"
trap 'rm -rf "$WORK_TMP"' EXIT

apt_updated=0
apt_update_once() {
  if [[ $apt_updated -eq 0 ]]; then
    apt-get update -qq >/dev/null
    apt_updated=1
  fi
}

install_apt_packages() {
  local missing=() pkg
  for pkg in "${APT_PACKAGES[@]}"; do
    if [[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)" != "install ok installed" ]]; then
      missing+=("$pkg")
    fi
  done
  if [[ ${#missing[@]} -eq 0 ]]; then
    step packages "already installed: ${APT_PACKAGES[*]}"
    return
  fi
  apt_update_once
  # policy-rc.d-less containers may try to start the services on install; that is harmless
  # because the steps below start them the way the tests need anyway.
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  step packages "installed: ${missing[*]}"
}

start_dockerd() {
  if docker info >/dev/null 2>&1; then
    step dockerd "already running"
    return
  fi
  # setsid: its own session, so it outlives this script and a Ctrl-C in the terminal.
  setsid dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
  local i
  for i in $(seq 1 60); do
    if docker info >/dev/null 2>&1; then
      step dockerd "started (log: $DOCKERD_LOG)"
      return
    fi
    sleep 1
  done
  tail -n 20 "$DOCKERD_LOG" >&2 || true
  fail "dockerd did not answer 'docker info' within 60 s (log: $DOCKERD_LOG)"
}

# Debian 12 ships only Compose v1; the v2 plugin is Debian 13's `docker-compose` package, which
# we unpack by hand (installing it would replace v1, which the tests need as well).
install_compose_v2() {
  if docker compose version >/dev/null 2>&1; then
    step compose-v2 "already present: $(docker compose version --short 2>/dev/null || echo '?')"
    return
  fi
  local sources=/etc/apt/sources.list.d/trixie.sources prefs=/etc/apt/preferences.d/trixie-low
  if [[ ! -f $sources ]]; then
    cat >"$sources" <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    apt_updated=0
  fi
  if [[ ! -f $prefs ]]; then
    # Priority 100: trixie packages are only ever taken when asked for with -t trixie.
    cat >"$prefs" <<'EOF'
Package: *
Pin: release n=trixie
Pin-Priority: 100
EOF
  fi
  local tmp="$WORK_TMP/compose"
  mkdir -p "$tmp"
  if ! (cd "$tmp" && apt-get download -qq -t trixie docker-compose >/dev/null 2>&1); then
    apt_update_once
    (cd "$tmp" && apt-get download -qq -t trixie docker-compose >/dev/null)
  fi
  dpkg-deb -x "$tmp"/docker-compose_*.deb "$tmp/root"
  install -D -m 0755 "$tmp/root/usr/libexec/docker/cli-plugins/docker-compose" \
    "$COMPOSE_PLUGIN_DIR/docker-compose"
  docker compose version >/dev/null 2>&1 || fail "installed $COMPOSE_PLUGIN_DIR/docker-compose but 'docker compose version' still fails"
  step compose-v2 "installed $(docker compose version --short) to $COMPOSE_PLUGIN_DIR"
}

build_base_image() {
  local label
  label="$(docker image inspect --format '{{ index .Config.Labels "dockbot.test-base.revision" }}' "$BASE_IMAGE" 2>/dev/null || true)"
  if [[ "$label" == "$BASE_IMAGE_REVISION" ]]; then
    step base-image "already built: $BASE_IMAGE"
    return
  fi
  local tmp="$WORK_TMP/base-image" applet
  mkdir -p "$tmp/bin" "$tmp/tmp" "$tmp/etc" "$tmp/www"
  chmod 1777 "$tmp/tmp"
  cp /bin/busybox "$tmp/bin/busybox"
  for applet in "${BASE_IMAGE_APPLETS[@]}"; do
    ln -s busybox "$tmp/bin/$applet"
  done
  printf 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$tmp/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$tmp/etc/group"
  tar -C "$tmp" -c . | docker import \
    -c "LABEL dockbot.test-base.revision=$BASE_IMAGE_REVISION" \
    -c 'ENV PATH=/bin' \
    -c 'CMD ["/bin/sh"]' \
    - "$BASE_IMAGE" >/dev/null
  step base-image "built $BASE_IMAGE (revision $BASE_IMAGE_REVISION)"
}

setup_git_user() {
  local changes=()
  if ! getent passwd "$GIT_USER" >/dev/null; then
    useradd --system --home-dir "$GIT_HOME" --shell /usr/bin/git-shell --no-create-home "$GIT_USER"
    changes+=("created user")
  fi
  local entry
  entry="$(getent passwd "$GIT_USER")"
  if [[ "$(cut -d: -f6 <<<"$entry")" != "$GIT_HOME" ]]; then
    usermod --home "$GIT_HOME" "$GIT_USER"
    changes+=("home -> $GIT_HOME")
  fi
  if [[ "$(cut -d: -f7 <<<"$entry")" != /usr/bin/git-shell ]]; then
    usermod --shell /usr/bin/git-shell "$GIT_USER"
    changes+=("shell -> git-shell")
  fi
  # useradd leaves the password field "!" (locked), and sshd without PAM refuses every login,
  # key or not, to a locked account. "*" means "no password" without "locked".
  if [[ "$(getent shadow "$GIT_USER" | cut -d: -f2)" != "*" ]]; then
    usermod -p '*' "$GIT_USER"
    changes+=("unlocked for key login")
  fi
  grep -qx /usr/bin/git-shell /etc/shells || { echo /usr/bin/git-shell >>/etc/shells; changes+=("git-shell in /etc/shells"); }

  # Home and repos are root's (tests create repos as root); the git user only reads them.
  install -d -m 0755 -o root -g root "$GIT_HOME" "$GIT_HOME/repos" "$GIT_HOME/.ssh"
  if [[ ! -f "$GIT_HOME/.ssh/authorized_keys" ]]; then
    install -m 0644 -o root -g root /dev/null "$GIT_HOME/.ssh/authorized_keys"
    changes+=("empty authorized_keys")
  fi
  # Repos are owned by root, not by git: without this git refuses to serve them ("dubious ownership").
  if ! git config --file "$GIT_HOME/.gitconfig" --get-all safe.directory 2>/dev/null | grep -qx '\*'; then
    git config --file "$GIT_HOME/.gitconfig" --add safe.directory '*'
    chmod 0644 "$GIT_HOME/.gitconfig"
    changes+=("safe.directory=*")
  fi
  if [[ ${#changes[@]} -eq 0 ]]; then
    step git-user "ready: $GIT_USER, home $GIT_HOME"
  else
    step git-user "$(IFS=,; echo "${changes[*]}" | sed 's/,/, /g')"
  fi
}

sshd_running() {
  [[ -f $SSHD_PIDFILE ]] && kill -0 "$(cat "$SSHD_PIDFILE")" 2>/dev/null
}

setup_git_sshd() {
  install -d -m 0755 "$SSHD_DIR"
  if [[ ! -f "$SSHD_DIR/ssh_host_ed25519_key" ]]; then
    ssh-keygen -q -t ed25519 -N '' -C dockbot-test-sshd -f "$SSHD_DIR/ssh_host_ed25519_key"
  fi
  local wanted="$WORK_TMP/sshd_config"
  cat >"$wanted" <<EOF
# Written by scripts/test-services.sh: the git server dockbot's integration tests clone from.
Port $SSH_PORT
ListenAddress 127.0.0.1
HostKey $SSHD_DIR/ssh_host_ed25519_key
PidFile $SSHD_PIDFILE
AllowUsers $GIT_USER
PermitRootLogin no
AuthenticationMethods publickey
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
AuthorizedKeysFile %h/.ssh/authorized_keys
StrictModes yes
PermitTTY no
X11Forwarding no
AllowTcpForwarding no
AllowAgentForwarding no
PermitUserEnvironment no
PrintMotd no
LogLevel VERBOSE
# Tests open many short connections at once; the default 10:30:100 drops some of them.
MaxStartups 200
EOF
  local changed=0
  if ! cmp -s "$wanted" "$SSHD_CONFIG"; then
    install -m 0644 "$wanted" "$SSHD_CONFIG"
    changed=1
  fi
  install -d -m 0755 /run/sshd # privilege separation directory sshd insists on
  /usr/sbin/sshd -t -f "$SSHD_CONFIG" || fail "sshd rejects $SSHD_CONFIG"

  if sshd_running && [[ $changed -eq 1 ]]; then
    kill "$(cat "$SSHD_PIDFILE")"
    for _ in $(seq 1 50); do sshd_running || break; sleep 0.1; done
  fi
  if port_open "$SSH_PORT"; then
    sshd_running || fail "127.0.0.1:$SSH_PORT is taken by another process; set DOCKBOT_TEST_SSH_PORT to a free port"
    step git-sshd "already listening on 127.0.0.1:$SSH_PORT"
    return
  fi
  # sshd daemonizes itself once it listens.
  /usr/sbin/sshd -f "$SSHD_CONFIG" -E "$SSHD_LOG"
  for _ in $(seq 1 50); do
    if port_open "$SSH_PORT"; then
      step git-sshd "started on 127.0.0.1:$SSH_PORT (log: $SSHD_LOG)"
      return
    fi
    sleep 0.1
  done
  tail -n 20 "$SSHD_LOG" >&2 || true
  fail "sshd did not listen on 127.0.0.1:$SSH_PORT within 5 s (log: $SSHD_LOG)"
}

# Placeholder: FerretDB (MongoDB wire protocol, SQLite backend) on a loopback port, built with
# `go install github.com/FerretDB/FerretDB/cmd/ferretdb@v1.24.2`. Added by a later task.
setup_ferretdb() {
  bash "$SCRIPT_DIR/services/ferretdb.sh"
}

# Placeholder: Debian's redis-server on loopback, for the Socket.io adapter across replicas.
# Added by a later task.
setup_redis() {
  if [[ -f "$SCRIPT_DIR/services/redis.sh" ]]; then bash "$SCRIPT_DIR/services/redis.sh"; fi
}

install_apt_packages
start_dockerd
install_compose_v2
build_base_image
setup_git_user
setup_git_sshd
setup_ferretdb
setup_redis
# Packaging tests: helm (lint/template), Debian's nginx, and a locally made base for the image.
bash "$SCRIPT_DIR/services/helm.sh"
bash "$SCRIPT_DIR/services/nginx.sh"
bash "$SCRIPT_DIR/services/image-base.sh"
# Dashboard tests: Debian's Chromium.
if [[ -f "$SCRIPT_DIR/services/chromium.sh" ]]; then bash "$SCRIPT_DIR/services/chromium.sh"; fi
# OpenAPI fuzz test: schemathesis from PyPI in its own venv.
bash "$SCRIPT_DIR/services/schemathesis.sh"
step done "all services ready"
