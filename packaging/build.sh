#!/usr/bin/env bash
# Builds the alca packages into target/packages/: a .deb (cargo-deb) and an .rpm
# (cargo-generate-rpm), each holding /usr/bin/alca, /usr/libexec/alca-netd, the systemd units,
# the D-Bus policy, activation file and interface XML, the polkit action and rule, the OCI hook
# of rootless containers (Podman's hooks.d), the man page
# alca(1), plus
# maintainer scripts that create group alcatraz and reload the bus (packaging/common.sh).
# Needs cargo-deb and cargo-generate-rpm (`cargo install cargo-deb cargo-generate-rpm`).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/target/packages
STAGE=$OUT/staging
rm -rf "$STAGE"
mkdir -p "$STAGE/files" "$STAGE/debian" "$STAGE/rpm"

# The shipped files live in dbus/, systemd/, polkit/, oci/ (or still under alca-netd/). The package's
# daemon is /usr/libexec/alca-netd, so the paths `alca network-helper install` uses are
# rewritten; everything else is byte for byte what the installer writes.
shipped() {
    local dir=$1 name=$2
    for base in "$ROOT" "$ROOT/alca-netd"; do
        if [ -f "$base/$dir/$name" ]; then echo "$base/$dir/$name"; return; fi
    done
    echo "build.sh: $dir/$name not found" >&2
    exit 1
}
FROM=/usr/local/libexec/alcatraz/alca-netd
TO=/usr/libexec/alca-netd
for f in dbus/io.github.alcatraz.Netd1.conf dbus/io.github.alcatraz.Netd1.service \
         dbus/io.github.alcatraz.Netd1.xml systemd/alca-netd.service \
         systemd/alca-netd-reapply.service polkit/io.github.alcatraz.netd.policy \
         polkit/50-alcatraz.rules oci/io.github.alcatraz.netns.json; do
    sed "s#$FROM#$TO#g" "$(shipped "${f%%/*}" "${f#*/}")" > "$STAGE/files/${f#*/}"
done
grep -q "^Exec=$TO\$" "$STAGE/files/io.github.alcatraz.Netd1.service"
if grep -rq "$FROM" "$STAGE/files"; then
    echo "build.sh: $FROM left in the staged files" >&2
    exit 1
fi

# Maintainer scripts: packaging/common.sh inlined where a script says @COMMON@.
inline() {
    awk -v common="$ROOT/packaging/common.sh" \
        '/^@COMMON@$/ { while ((getline line < common) > 0) print line; next } { print }' "$1" > "$2"
}
for s in postinst prerm postrm; do
    inline "packaging/debian/$s" "$STAGE/debian/$s"
    chmod 0755 "$STAGE/debian/$s"
done
for s in post_install pre_uninstall post_uninstall; do
    inline "packaging/rpm/$s.sh" "$STAGE/rpm/$s.sh"
done

cargo build --release -q -p alca -p alca-netd -p alca-dns
# The man page, generated from the command line's own definition (clap_mangen).
target/release/alca __man-page > "$STAGE/files/alca.1"
test -s "$STAGE/files/alca.1"
cargo deb -p alca --no-build -o "$OUT/"
cargo generate-rpm -p alca -o "$OUT/"
# The helper-container image for macOS (`alca network-helper install --image-archive FILE`),
# when a Docker engine is at hand. It holds Linux binaries of this machine's architecture.
if docker info >/dev/null 2>&1; then
    VERSION=$(target/release/alca-netd --version | awk '{print $2}')
    ALCA_NETD_BIN=target/release/alca-netd target/release/alca network-helper image \
        --output "$OUT/alcatraz-network-helper-$VERSION-$(uname -m).tar"
    # Keep the local engine as it was, unless an installed helper uses the image.
    if ! docker container inspect alcatraz-network-helper >/dev/null 2>&1; then
        docker image rm "alcatraz-network-helper:$VERSION" >/dev/null 2>&1 || true
    fi
fi
ls -l "$OUT"/*.deb "$OUT"/*.rpm "$OUT"/*.tar 2>/dev/null || true
