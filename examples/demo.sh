#!/usr/bin/env bash
# Installs alca for real on a fresh Debian 12 machine and shows it working, as root:
#   sudo bash examples/demo.sh              # install + demo
#   sudo bash examples/demo.sh --uninstall  # remove what the demo installed
#
# 1. installs the packages alca needs (Docker, nftables, FUSE, D-Bus, polkit) and starts them when
#    no init system did, imports the `alca-test/busybox:latest` image (no registry needed) and
#    creates the `lanhost` test netns (a stand-in LAN host 10.99.0.2) — steps shared with
#    tests/env/setup.sh through tests/env/host.sh;
# 2. builds release binaries and installs `alca` and `alca-netd` to /usr/local/bin;
# 3. runs the one privileged step, `alca network-helper install`, for the demo user ($SUDO_USER,
#    or a new unprivileged user `alcademo`), who is also added to group `docker`;
# 4. as that user: copies examples/sample-project to ~/alca-demo-project, `alca trust -y`, `alca up`,
#    `alca run ls -a` (no .env), a LAN probe to 10.99.0.2 that must be refused, `alca status`,
#    `alca down`.
# Network traffic: only the probe to 10.99.0.2:8099 inside the `lanhost` netns (route checked).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOG=/var/log/alca-demo; WORK=/var/lib/alca-demo
DEMO_USER_CREATED="$WORK/created-user"     # marks a user the demo created (removed by --uninstall)
LANHOST_MARK="$WORK/created-lanhost"
PROJECT_NAME=alca-demo-project
PROBE_ADDR=10.99.0.2 PROBE_PORT=8099 PROBE_DEV=alca-lan0
# shellcheck source=tests/env/host.sh
. "$REPO/tests/env/host.sh"

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
die() { echo "demo: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root: sudo bash examples/demo.sh"
mkdir -p "$LOG" "$WORK"

# The unprivileged user the demo runs as: the one who ran sudo, else `alcademo`.
demo_user() {
  if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then echo "$SUDO_USER"; else echo alcademo; fi
}

# Runs a command as the demo user in the demo project, with its own HOME and stdin closed.
as_user() {
  runuser -u "$U" -- env HOME="$UHOME" PATH=/usr/local/bin:/usr/bin:/bin sh -c 'cd "$1" && shift && exec "$@"' \
    sh "$UHOME/$PROJECT_NAME" "$@" < /dev/null
}

uninstall() {
  U=$(demo_user)
  if id "$U" >/dev/null 2>&1; then
    UHOME=$(getent passwd "$U" | cut -d: -f6)
    if [ -f "$UHOME/$PROJECT_NAME/.alca.toml" ] && command -v alca >/dev/null; then
      as_user alca down --force || true
    fi
    rm -rf "${UHOME:?}/$PROJECT_NAME"
  fi
  if [ -x /usr/local/bin/alca ]; then /usr/local/bin/alca network-helper uninstall -y; fi
  rm -f /usr/local/bin/alca /usr/local/bin/alca-netd
  if [ -f "$DEMO_USER_CREATED" ]; then userdel -r "$(cat "$DEMO_USER_CREATED")" 2>/dev/null || true; fi
  if [ -f "$LANHOST_MARK" ]; then
    ip netns del lanhost 2>/dev/null || true; ip link del alca-lan0 2>/dev/null || true
    ip route del 192.88.99.2/32 2>/dev/null || true
  fi
  rm -rf "$WORK" "$LOG"
  echo "demo: uninstalled alca (packages and Docker are left in place)"
}

if [ "${1:-}" = --uninstall ]; then uninstall; exit 0; fi
[ $# -eq 0 ] || die "usage: sudo bash examples/demo.sh [--uninstall]"

say "1/4 Packages, Docker, D-Bus, polkit, the test image and the lanhost test netns"
# busybox-static: the test image, and the containers' keep-alive (the package's dependency
# `catatonit | busybox-static`; docs/boot.md).
host_install_packages nftables iproute2 iptables docker.io containerd runc fuse3 busybox-static \
  dbus dbus-bin polkitd pkexec python3 util-linux gcc libc6-dev
host_device /dev/fuse fuse
host_start_docker
host_start_system_bus
host_busybox_image_docker
host_lanhost_up
[ "$LANHOST_CREATED" = 1 ] && touch "$LANHOST_MARK"
echo "docker $(/usr/bin/docker version -f '{{.Server.Version}}'), polkit $(pkaction --version | awk '{print $NF}')"

say "2/4 Build and install alca and alca-netd (release)"
export PATH="${HOME:-/root}/.cargo/bin:/root/.cargo/bin:/usr/local/cargo/bin:$PATH"
command -v cargo >/dev/null || die "cargo not found; install a Rust toolchain for root first:
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y"
(cd "$REPO" && cargo build --release --locked -p alca -p alca-netd)
install -m 0755 "$REPO/target/release/alca" "$REPO/target/release/alca-netd" /usr/local/bin/
echo "installed $(/usr/local/bin/alca --version) to /usr/local/bin"

say "3/4 The one privileged step: alca network-helper install"
U=$(demo_user)
if ! id "$U" >/dev/null 2>&1; then
  useradd -m -s /bin/bash "$U"
  echo "$U" > "$DEMO_USER_CREATED"
  echo "created the unprivileged user $U"
fi
UHOME=$(getent passwd "$U" | cut -d: -f6)
usermod -aG docker "$U"    # alca drives the Docker CLI as the user, as the Go original does
echo "demo user: $U (group docker)"
/usr/local/bin/alca network-helper install -y --user "$U"

say "4/4 As $U: alca up, run, a LAN probe, status, down"
DEST="$UHOME/$PROJECT_NAME"
if [ -e "$DEST" ]; then
  [ -f "$DEST/.alca.toml" ] || die "$DEST exists and is not the demo project; move it away"
  as_user alca down --force || true
  rm -rf "$DEST"
fi
cp -r "$REPO/examples/sample-project" "$DEST"
chown -R "$U:" "$DEST"
LISTENER_PID=
cleanup() {
  [ -n "$LISTENER_PID" ] && kill "$LISTENER_PID" 2>/dev/null
  if [ "${DEMO_OK:-0}" != 1 ]; then as_user alca down --force >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

# A new project's config is shown and approved once (on a terminal `alca up` asks instead).
echo "\$ alca trust -y"
as_user alca trust -y

echo; echo "\$ alca up"
as_user alca up

echo; echo "\$ alca run ls -a"
listing=$(as_user alca run ls -a)
echo "$listing"
if grep -qx '.env' <<<"$listing"; then die ".env is visible inside the container"; fi
if as_user alca run cat config/.env >/dev/null 2>&1; then die "config/.env is readable inside the container"; fi
echo "(.env and config/.env exist on the host but not in the container)"

echo; echo "\$ alca run sh hello.sh"
as_user alca run sh hello.sh

echo; echo "LAN probe: a TCP service on the test LAN host $PROBE_ADDR:$PROBE_PORT (netns lanhost)"
ip route get "$PROBE_ADDR" | grep -q "dev $PROBE_DEV" ||
  die "$PROBE_ADDR is not routed through the test veth $PROBE_DEV; not probing it"
# A listener that greets every connection, for 60 s at most.
ip netns exec lanhost timeout 60 python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(8)
while True:
    c, _ = s.accept(); c.sendall(b"lanhost answered\n"); c.close()
' "$PROBE_ADDR" "$PROBE_PORT" >"$LOG/lanhost-listener.log" 2>&1 &
LISTENER_PID=$!
host_probe() {
  python3 -c '
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)
sys.stdout.write(c.recv(64).decode())
' "$PROBE_ADDR" "$PROBE_PORT" 2>/dev/null
}
answer=
for _ in $(seq 1 25); do answer=$(host_probe) && break; sleep 0.2; done
[ "$answer" = "lanhost answered" ] || die "the LAN test host does not answer the host itself; see $LOG/lanhost-listener.log"
echo "from the host:      $answer"
echo "\$ alca run sh -c 'echo | nc -w 3 $PROBE_ADDR $PROBE_PORT'"
inside=$(as_user alca run sh -c "echo | nc -w 3 $PROBE_ADDR $PROBE_PORT 2>&1" || true)
echo "from the container: $inside"
case "$inside" in
  *"lanhost answered"*) die "the container reached the LAN host $PROBE_ADDR: isolation is not applied" ;;
  *"Connection refused"*) echo "(refused by the project's nftables rules: no lan-access, so LAN addresses are blocked)" ;;
  *) die "unexpected probe result inside the container: $inside" ;;
esac

echo; echo "\$ alca network verify --local-only"
as_user alca network verify --local-only

echo; echo "\$ alca status"
as_user alca status

echo; echo "\$ alca down"
as_user alca down
DEMO_OK=1

say "Done"
cat <<EOF
alca is installed (/usr/local/bin/alca, daemon alca-netd) and $U may use it without sudo:
  cd $DEST && alca up && alca run sh && alca down
Remove everything the demo installed with: sudo bash examples/demo.sh --uninstall
EOF
