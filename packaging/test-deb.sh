#!/usr/bin/env bash
# End-to-end test of the .deb on this machine (Debian 12, root; run under the shared e2e lock):
# build it (unless SKIP_BUILD=1), `apt-get install ./target/packages/alca_*.deb`, then
# `alca network-helper install --user alcatest` (group membership only: the package brought
# every file), a sudo-free `alca up --trust` as alcatest with default isolation, `alca down`,
# `apt-get purge alca`, and checks that no file, group, table or daemon is left, and that
# /etc/fuse.conf and /dev/fuse are as they were (post-install enables user_allow_other).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
USER_NAME=alcatest
BUS=io.github.alcatraz.Netd1
[ "$(id -u)" = 0 ] || { echo "test-deb.sh: run as root" >&2; exit 1; }

fail() { echo "test-deb.sh: FAIL: $*" >&2; exit 1; }
pass() { echo "test-deb.sh: ok: $*"; }
daemon_pid() {
    dbus-send --system --print-reply=literal --dest=org.freedesktop.DBus /org/freedesktop/DBus \
        org.freedesktop.DBus.GetConnectionUnixProcessID "string:$BUS" 2>/dev/null | awk '{print $NF}'
}
alca_tables() { nft list tables inet | awk '$3 ~ /^alca-/ {print $3}'; }

FILES=(/usr/bin/alca /usr/libexec/alca-netd
       /usr/share/dbus-1/system.d/$BUS.conf /usr/share/dbus-1/system-services/$BUS.service
       /usr/share/dbus-1/interfaces/$BUS.xml
       /usr/lib/systemd/system/alca-netd.service /usr/lib/systemd/system/alca-netd-reapply.service
       /usr/share/polkit-1/actions/io.github.alcatraz.netd.policy
       /usr/share/polkit-1/rules.d/50-alcatraz.rules
       /usr/share/containers/oci/hooks.d/io.github.alcatraz.netns.json)

WORK=$(mktemp -d /tmp/alca-test-deb.XXXXXX)
chmod 0755 "$WORK"
cleanup() {
    if [ -x /usr/bin/alca ] && [ -d "$WORK/project/.alca" ]; then
        (cd "$WORK/project" && runuser -u "$USER_NAME" -- env XDG_STATE_HOME="$WORK/state" \
            /usr/bin/alca down --force >/dev/null 2>&1) || true
    fi
    dpkg -s alca >/dev/null 2>&1 && apt-get purge -y -q alca >/dev/null 2>&1 || true
    # The project's filtered view (every workspace has one) outlives the purged binary: unmount
    # it, deepest first, so its server exits and the directory can go.
    findmnt -rn -o TARGET | grep "^$WORK/" | sort -r | while read -r m; do umount -l "$m" || true; done || true
    rm -rf "$WORK"
}
trap cleanup EXIT

[ "${SKIP_BUILD:-0}" = 1 ] || bash packaging/build.sh
DEB=$(ls "$ROOT"/target/packages/alca_*.deb | head -n1)
[ -f "$DEB" ] || fail "no .deb in target/packages (run packaging/build.sh)"

# Start from a machine without any helper: a by-hand install or the helper container would
# otherwise own the bus name or the tables.
if [ -x "$ROOT/target/debug/alca" ]; then
    "$ROOT/target/debug/alca" network-helper uninstall -y >/dev/null 2>&1 || true
fi
[ -z "$(daemon_pid)" ] || fail "an alca-netd is already running"
[ -z "$(alca_tables)" ] || fail "alca- tables exist before the test"
FUSE_BEFORE="$(sha256sum /etc/fuse.conf 2>/dev/null) $(stat -c '%a %G' /dev/fuse 2>/dev/null)"

# 1. Install from the package alone.
apt-get install -y -q "$DEB" >"$WORK/apt-install.log" 2>&1 || { cat "$WORK/apt-install.log"; fail "apt-get install"; }
for f in "${FILES[@]}"; do [ -f "$f" ] || fail "$f not installed"; done
[ "$(stat -c '%u %a' /usr/libexec/alca-netd)" = "0 755" ] || fail "daemon not root-owned 0755"
grep -q '^Exec=/usr/libexec/alca-netd$' /usr/share/dbus-1/system-services/$BUS.service || fail "activation Exec"
grep -q '"path": "/usr/libexec/alca-netd"' /usr/share/containers/oci/hooks.d/io.github.alcatraz.netns.json \
    || fail "the OCI hook does not run the packaged daemon"
getent group alcatraz >/dev/null || fail "postinst did not create group alcatraz"
[ -d /var/lib/alcatraz ] || fail "postinst did not create /var/lib/alcatraz"
grep -qx user_allow_other /etc/fuse.conf || fail "postinst did not enable user_allow_other"
pass "apt-get install ./$(basename "$DEB")"

# 2. The one sudo step: group membership (the package brought every file).
out=$(/usr/bin/alca network-helper install --user "$USER_NAME" -y 2>&1) || { echo "$out"; fail "network-helper install"; }
echo "$out" | grep -q "installed by a package" || { echo "$out"; fail "install did not detect the package"; }
echo "$out" | grep -q "Daemon: running (D-Bus activation)" || { echo "$out"; fail "daemon did not start"; }
[ -z "$(find /usr/local/libexec/alcatraz /etc/dbus-1/system.d/$BUS.conf /etc/polkit-1/rules.d/50-alcatraz.rules 2>/dev/null)" ] \
    || fail "install wrote its own copies over the package's"
getent group alcatraz | grep -qw "$USER_NAME" || fail "$USER_NAME not in group alcatraz"
status=$(runuser -u "$USER_NAME" -- /usr/bin/alca network-helper status 2>&1)
echo "$status" | grep -q "Installed: Yes" || { echo "$status"; fail "status"; }
pass "alca network-helper install --user $USER_NAME"

# 3. A sudo-free `alca up` with default isolation, as the unprivileged user.
mkdir -p "$WORK/project" "$WORK/state"
printf 'image = "alca-test/busybox:latest"\nruntime = "docker"\n' > "$WORK/project/.alca.toml"
chown -R "$USER_NAME:$USER_NAME" "$WORK/project" "$WORK/state"
as_user() { (cd "$WORK/project" && runuser -u "$USER_NAME" -- env XDG_STATE_HOME="$WORK/state" /usr/bin/alca "$@"); }
as_user up --trust >"$WORK/up.log" 2>&1 || { cat "$WORK/up.log"; fail "alca up as $USER_NAME"; }
ID=$(sed -n 's/.*"id": *"\([0-9a-f]*\)".*/\1/p' "$WORK/project/.alca/state.json")
[ -n "$ID" ] || fail "no project id"
nft list table inet "alca-$ID" >/dev/null || fail "rules of alca-$ID not applied"
docker container inspect "alca-${ID:0:12}" >/dev/null || fail "container not running"
[ "$(readlink -f "/proc/$(daemon_pid)/exe")" = /usr/libexec/alca-netd ] || fail "the daemon is not the packaged one"
pass "alca up --trust as $USER_NAME (table alca-$ID)"
as_user down >"$WORK/down.log" 2>&1 || { cat "$WORK/down.log"; fail "alca down"; }
! nft list table inet "alca-$ID" >/dev/null 2>&1 || fail "down left the table"
pass "alca down"

# 4. Leave a table behind on purpose: the purge must remove it too.
as_user up --trust >"$WORK/up2.log" 2>&1 || { cat "$WORK/up2.log"; fail "second alca up"; }
docker rm -f "alca-${ID:0:12}" >/dev/null
apt-get purge -y -q alca >"$WORK/apt-purge.log" 2>&1 || { cat "$WORK/apt-purge.log"; fail "apt-get purge"; }
for f in "${FILES[@]}"; do [ ! -e "$f" ] || fail "$f left behind"; done
[ ! -e /var/lib/alcatraz ] || fail "/var/lib/alcatraz left behind"
! getent group alcatraz >/dev/null || fail "group alcatraz left behind"
[ -z "$(alca_tables)" ] || fail "alca- tables left behind: $(alca_tables)"
[ -z "$(daemon_pid)" ] || fail "alca-netd still running"
! dpkg -s alca >/dev/null 2>&1 || fail "package still known to dpkg"
[ "$FUSE_BEFORE" = "$(sha256sum /etc/fuse.conf 2>/dev/null) $(stat -c '%a %G' /dev/fuse 2>/dev/null)" ] \
    || fail "purge did not put /etc/fuse.conf and /dev/fuse back as they were"
docker network rm "alca-${ID:0:12}" >/dev/null 2>&1 || true
pass "apt-get purge alca leaves nothing behind"
echo "test-deb.sh: PASS"
