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

# --- 1. packages (only installs what is missing) ---------------------------------------------
PKGS=(nftables iproute2 iptables docker.io containerd runc podman netavark aardvark-dns slirp4netns
      uidmap fuse-overlayfs fuse3 busybox-static dbus dbus-bin polkitd pkexec python3-dbus python3-gi)
[ "${ALCA_TESTENV_DEBIAN:-0}" = 1 ] && PKGS+=(debootstrap)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then apt-get update -q; apt-get install -y -q "${missing[@]}"; fi

# --- 2. kernel/device knobs (originals saved once, restored by teardown) ------------------------
[ -s "$WORK/orig.env" ] || printf 'IP_FORWARD=%s\nTUN_MODE=%s\nFUSE_MODE=%s\n' "$(sysctl -n net.ipv4.ip_forward)" \
  "$(stat -c %a /dev/net/tun 2>/dev/null)" "$(stat -c %a /dev/fuse 2>/dev/null)" > "$WORK/orig.env"
chmod 0666 /dev/net/tun /dev/fuse 2>/dev/null || true   # udev-less VM ships them 0600; rootless podman needs them
grep -qx user_allow_other /etc/fuse.conf 2>/dev/null || echo user_allow_other >> /etc/fuse.conf   # alca's filtered view (allow_other)
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
if ! ctr --address /run/containerd/containerd.sock version >/dev/null 2>&1; then
  setsid containerd >"$LOG/containerd.log" 2>&1 < /dev/null &
  echo $! > "$WORK/containerd.pid"
  for _ in $(seq 1 50); do ctr --address /run/containerd/containerd.sock version >/dev/null 2>&1 && break; sleep 0.2; done
fi
if ! /usr/bin/docker info >/dev/null 2>&1; then
  rm -f /var/run/docker.pid
  setsid dockerd --containerd=/run/containerd/containerd.sock --iptables=true \
      >"$LOG/dockerd.log" 2>&1 < /dev/null &
  echo $! > "$WORK/dockerd.pid"
  for _ in $(seq 1 60); do /usr/bin/docker info >/dev/null 2>&1 && break; sleep 0.5; done
  /usr/bin/docker info >/dev/null
fi

# --- 5. system D-Bus (polkitd is bus-activated on first use via dbus-daemon-launch-helper) -----
sysbus_ok() { dbus-send --system --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
                org.freedesktop.DBus.GetId >/dev/null 2>&1; }
if ! sysbus_ok; then
  mkdir -p /run/dbus; rm -f /run/dbus/pid
  dbus-daemon --system --fork --print-pid > "$WORK/dbus.pid"
  for _ in $(seq 1 25); do sysbus_ok && break; sleep 0.2; done
fi

# --- 6. test users / group ---------------------------------------------------------------------
id alcatest  >/dev/null 2>&1 || useradd -m -s /bin/bash alcatest    # gets /etc/subuid range automatically
id alcaother >/dev/null 2>&1 || useradd -m -s /bin/bash alcaother
usermod -aG docker alcatest   # group alcatraz is created by `alca network-helper install`
for u in alcatest alcaother; do
  uid=$(id -u "$u"); mkdir -p "/run/user/$uid"; chown "$u:$u" "/run/user/$uid"; chmod 700 "/run/user/$uid"
done

# --- 7. polkit/D-Bus policy files are NOT installed here: `alca network-helper install` ships them.
# wake polkitd (bus activation) so the first real check is not slowed by start-up
dbus-send --system --print-reply --dest=org.freedesktop.PolicyKit1 /org/freedesktop/PolicyKit1/Authority \
  org.freedesktop.DBus.Properties.Get string:org.freedesktop.PolicyKit1.Authority string:BackendVersion >/dev/null

# --- 8. images (no registry: import a rootfs tarball) -----------------------------------------
ROOTFS_TAR="$WORK/busybox-rootfs.tar"
if [ ! -s "$ROOTFS_TAR" ]; then
  R=$(mktemp -d); mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,proc,sys,dev,root,work}
  cp /bin/busybox "$R/bin/busybox"                      # busybox-static: statically linked
  chroot "$R" /bin/busybox --install -s /bin
  printf 'root:x:0:0:root:/root:/bin/sh\n' > "$R/etc/passwd"; printf 'root:x:0:\n' > "$R/etc/group"
  chmod 1777 "$R/tmp"; tar -C "$R" -cf "$ROOTFS_TAR" .; rm -rf "$R"; chmod 644 "$ROOTFS_TAR"
fi
/usr/bin/docker image inspect alca-test/busybox:latest >/dev/null 2>&1 ||
  /usr/bin/docker import -c 'CMD ["/bin/sh"]' -c 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' "$ROOTFS_TAR" alca-test/busybox:latest >/dev/null
podman image exists localhost/alca-test/busybox:latest ||
  podman import -q --change 'CMD ["/bin/sh"]' --change 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' "$ROOTFS_TAR" localhost/alca-test/busybox:latest >/dev/null
chmod 755 "$WORK"
if [ "${ALCA_TESTENV_DEBIAN:-0}" = 1 ] && ! /usr/bin/docker image inspect alca-test/debian:bookworm >/dev/null 2>&1; then
  D=$(mktemp -d)
  debootstrap --variant=minbase bookworm "$D" http://deb.debian.org/debian >"$LOG/debootstrap.log" 2>&1
  tar -C "$D" -c . | /usr/bin/docker import -c 'CMD ["/bin/bash"]' - alca-test/debian:bookworm >/dev/null
  rm -rf "$D"
fi

# --- 9. lanhost netns: a private-range "LAN host" 10.99.0.2 (+ 198.51.100.2 as a non-LAN host) --
if ! ip netns list | grep -qw lanhost; then
  ip netns add lanhost
  ip link add alca-lan0 type veth peer name lan1 netns lanhost
  ip addr add 10.99.0.1/24 dev alca-lan0; ip link set alca-lan0 up
  ip -n lanhost addr add 10.99.0.2/24 dev lan1; ip -n lanhost addr add 198.51.100.2/32 dev lan1
  ip -n lanhost link set lan1 up; ip -n lanhost link set lo up
  ip -n lanhost route add default via 10.99.0.1
fi
ip route replace 198.51.100.2/32 via 10.99.0.2 dev alca-lan0

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
