# Shared by the .deb and .rpm maintainer scripts (inlined at @COMMON@ by build.sh; POSIX sh):
# what makes the packaged alca-netd usable with no further sudo than group membership.

ALCA_GROUP=alcatraz
ALCA_STATE=/var/lib/alcatraz
ALCA_BUS_NAME=io.github.alcatraz.Netd1
ALCA_CLI=/usr/bin/alca

alca_reload_bus() {
    # The bus policy and activation file changed: make a running bus daemon read them.
    dbus-send --system --type=method_call --dest=org.freedesktop.DBus /org/freedesktop/DBus \
        org.freedesktop.DBus.ReloadConfig >/dev/null 2>&1 || true
}

alca_configure() {
    getent group "$ALCA_GROUP" >/dev/null || groupadd --system "$ALCA_GROUP"
    install -d -m 0700 "$ALCA_STATE"
    # user_allow_other in /etc/fuse.conf and /dev/fuse open to the group where it is root-only
    # (the same code as `alca network-helper install`; it prints what it changed).
    "$ALCA_CLI" network-helper fuse-setup
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload || true
        systemctl enable alca-netd-reapply.service alca-netd.service >/dev/null 2>&1 || true
    fi
    alca_reload_bus
}

alca_stop_daemon() {
    if [ -d /run/systemd/system ]; then
        systemctl disable --now alca-netd.service alca-netd-reapply.service >/dev/null 2>&1 || true
    fi
    # Started by D-Bus activation (no systemd): the bus knows its PID.
    pid=$(dbus-send --system --print-reply=literal --dest=org.freedesktop.DBus \
        /org/freedesktop/DBus org.freedesktop.DBus.GetConnectionUnixProcessID \
        "string:$ALCA_BUS_NAME" 2>/dev/null | awk '{print $NF}')
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null || true
    fi
}

# Undoes exactly what fuse-setup changed (while the CLI is still installed).
alca_fuse_revert() {
    if [ -x "$ALCA_CLI" ]; then
        "$ALCA_CLI" network-helper fuse-revert
    fi
}

alca_delete_tables() {
    command -v nft >/dev/null 2>&1 || return 0
    nft list tables inet 2>/dev/null | awk '$3 ~ /^alca-/ {print $3}' | while read -r table; do
        nft delete table inet "$table" || true
    done
}

alca_purge() {
    rm -rf "$ALCA_STATE"
    if getent group "$ALCA_GROUP" >/dev/null; then
        groupdel "$ALCA_GROUP" || true
    fi
}

alca_after_removal() {
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload || true
    fi
    alca_reload_bus
}
