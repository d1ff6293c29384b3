#!/usr/bin/env bash
# README command 1 on a machine nothing prepared, as tests/run.sh runs it BEFORE the test
# environment exists (root; run under the shared e2e lock when other suites may run):
#   1. puts back what an earlier run (of this script, tests/env/setup.sh, the e2e suites or the
#      .deb test) may have left: every alca file, the daemon, group alcatraz, the alca- tables,
#      user_allow_other in /etc/fuse.conf, and the machine's original /dev/fuse and /dev/net/tun
#      modes (recorded by tests/env/setup.sh the first time it ran);
#   2. runs `examples/demo.sh` (install, `alca up` with workdir_exclude, `.env` absent, the LAN
#      probe refused) and `examples/demo.sh --uninstall`;
#   3. checks that the machine is as step 1 left it: fuse.conf byte for byte, /dev/fuse's mode
#      and group, no group alcatraz, no alca file.
# A step the product forgets (and the test environment used to do for it) fails here.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
[ "$(id -u)" = 0 ] || { echo "fresh-install.sh: run as root" >&2; exit 1; }
BUS=io.github.alcatraz.Netd1
ALCA_FILES=(/usr/local/bin/alca /usr/local/bin/alca-netd /usr/local/libexec/alcatraz/alca-netd
            /etc/dbus-1/system.d/$BUS.conf /usr/share/dbus-1/system-services/$BUS.service
            /usr/share/dbus-1/interfaces/$BUS.xml
            /usr/share/polkit-1/actions/io.github.alcatraz.netd.policy
            /etc/polkit-1/rules.d/50-alcatraz.rules /run/alcatraz/fuse-device
            /etc/systemd/system/alca-netd.service /etc/systemd/system/alca-netd-reapply.service)
ORIG=/var/lib/alca-testenv/orig.env

fail() { echo "fresh-install.sh: FAIL: $*" >&2; exit 1; }
say() { echo "fresh-install.sh: $*"; }
machine_state() {
    printf 'fuse.conf %s\n' "$(sha256sum /etc/fuse.conf 2>/dev/null | cut -d' ' -f1)"
    printf '/dev/fuse %s\n' "$(stat -c '%a %G' /dev/fuse 2>/dev/null)"
    printf 'group alcatraz %s\n' "$(getent group alcatraz >/dev/null && echo present || echo absent)"
    for f in "${ALCA_FILES[@]}"; do [ ! -e "$f" ] || echo "left: $f"; done
}

# --- 1. a machine nothing prepared -------------------------------------------------------------
# The demo's own first step (packages, the fuse module), done here first so that the state
# compared below is the one the demo starts from; neither is a step alca owes.
# shellcheck source=tests/env/host.sh
. tests/env/host.sh
host_install_packages fuse3
host_device /dev/fuse fuse
# An earlier demo that stopped half-way: its own --uninstall removes its user, project and binaries.
env -u SUDO_USER bash examples/demo.sh --uninstall >/dev/null 2>&1 || true
dpkg -s alca >/dev/null 2>&1 && apt-get purge -y -q alca >/dev/null
for alca in /usr/local/bin/alca "$ROOT/target/debug/alca"; do
    if [ -x "$alca" ]; then "$alca" network-helper uninstall -y >/dev/null 2>&1 || true; break; fi
done
pid=$(dbus-send --system --print-reply=literal --dest=org.freedesktop.DBus /org/freedesktop/DBus \
      org.freedesktop.DBus.GetConnectionUnixProcessID "string:$BUS" 2>/dev/null | awk '{print $NF}') || true
[ -z "$pid" ] || kill "$pid" 2>/dev/null || true
rm -f "${ALCA_FILES[@]}"; rmdir /usr/local/libexec/alcatraz /run/alcatraz 2>/dev/null || true
if command -v nft >/dev/null; then
    nft list tables inet 2>/dev/null | awk '$3 ~ /^alca-/ {print $3}' | while read -r t; do nft delete table inet "$t"; done
fi
rm -rf /var/lib/alcatraz
getent group alcatraz >/dev/null && groupdel alcatraz
# Earlier test environments appended a bare user_allow_other; alca's own line has a marker.
if [ -f /etc/fuse.conf ]; then
    sed -i -e '/^# added by alca: /d' -e '/^[[:space:]]*user_allow_other[[:space:]]*$/d' /etc/fuse.conf
fi
if [ -s "$ORIG" ]; then   # the modes this machine had before any test environment
    # shellcheck disable=SC1090
    . "$ORIG"
    if [ -n "${FUSE_MODE:-}" ] && [ -e /dev/fuse ]; then chgrp root /dev/fuse; chmod "$FUSE_MODE" /dev/fuse; fi
    if [ -n "${TUN_MODE:-}" ] && [ -e /dev/net/tun ]; then chgrp root /dev/net/tun; chmod "$TUN_MODE" /dev/net/tun; fi
fi
before=$(machine_state)
say "starting from: $(echo "$before" | tr '\n' ';')"

# --- 2. README command 1 and its --uninstall ---------------------------------------------------
# As root directly (CI): the demo runs as the unprivileged user it creates, never as a sudo user.
env -u SUDO_USER bash examples/demo.sh || fail "examples/demo.sh failed"
env -u SUDO_USER bash examples/demo.sh --uninstall || fail "examples/demo.sh --uninstall failed"

# --- 3. the machine is as it was ---------------------------------------------------------------
after=$(machine_state)
if [ "$before" != "$after" ]; then
    diff <(echo "$before") <(echo "$after") >&2 || true
    fail "the demo's install + uninstall did not leave the machine as it was"
fi
say "PASS (install, up with workdir_exclude, .env absent, LAN probe refused, uninstall restored the machine)"
