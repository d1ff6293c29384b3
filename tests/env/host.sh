#!/usr/bin/env bash
# Host set-up steps shared by tests/env/setup.sh (the test environment) and examples/demo.sh (a
# real install): sourced, never run. Each function is idempotent and runs as root on Debian 12,
# with or without systemd as PID 1.
# Callers set LOG (log directory) and WORK (cache directory) before calling.

# Installs the Debian packages among "$@" that are not installed yet.
host_install_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
  done
  if ((${#missing[@]})); then
    DEBIAN_FRONTEND=noninteractive apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
  fi
}

# Starts containerd and dockerd unless Docker already answers (systemd starts them on a normal
# install; containers/CI have no init, so they are started here and their PIDs recorded).
# Runs "$@" in the background in a new session with every inherited descriptor above 2 closed,
# so a long-lived daemon started by a test never keeps that test's lock (`flock`) held.
host_detached() {
  (
    for fd in /proc/$BASHPID/fd/*; do
      fd=${fd##*/}
      [ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-"
    done
    exec setsid "$@"
  ) &
}

host_start_docker() {
  if ! ctr --address /run/containerd/containerd.sock version >/dev/null 2>&1; then
    host_detached containerd >"$LOG/containerd.log" 2>&1 < /dev/null
    echo $! > "$WORK/containerd.pid"
    for _ in $(seq 1 50); do ctr --address /run/containerd/containerd.sock version >/dev/null 2>&1 && break; sleep 0.2; done
  fi
  if ! /usr/bin/docker info >/dev/null 2>&1; then
    rm -f /var/run/docker.pid
    host_detached dockerd --containerd=/run/containerd/containerd.sock --iptables=true \
        >"$LOG/dockerd.log" 2>&1 < /dev/null
    echo $! > "$WORK/dockerd.pid"
    for _ in $(seq 1 60); do /usr/bin/docker info >/dev/null 2>&1 && break; sleep 0.5; done
    /usr/bin/docker info >/dev/null
  fi
}

# Starts the system D-Bus unless it answers; polkitd is then bus-activated on first use.
host_start_system_bus() {
  if ! host_system_bus_ok; then
    mkdir -p /run/dbus; rm -f /run/dbus/pid
    dbus-daemon --system --fork --print-pid > "$WORK/dbus.pid"
    for _ in $(seq 1 25); do host_system_bus_ok && break; sleep 0.2; done
  fi
  # wake polkitd so the first real authorisation check is not slowed by its start-up
  dbus-send --system --print-reply --dest=org.freedesktop.PolicyKit1 /org/freedesktop/PolicyKit1/Authority \
    org.freedesktop.DBus.Properties.Get string:org.freedesktop.PolicyKit1.Authority string:BackendVersion >/dev/null
}

host_system_bus_ok() {
  dbus-send --system --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
    org.freedesktop.DBus.GetId >/dev/null 2>&1
}

# Prints the path of a busybox root filesystem tarball (built once from busybox-static).
host_busybox_rootfs() {
  local tar="$WORK/busybox-rootfs.tar" r
  if [ ! -s "$tar" ]; then
    r=$(mktemp -d); mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,proc,sys,dev,root,work}
    cp /bin/busybox "$r/bin/busybox"                      # busybox-static: statically linked
    chroot "$r" /bin/busybox --install -s /bin
    printf 'root:x:0:0:root:/root:/bin/sh\n' > "$r/etc/passwd"; printf 'root:x:0:\n' > "$r/etc/group"
    chmod 1777 "$r/tmp"; tar -C "$r" -cf "$tar" .; rm -rf "$r"; chmod 644 "$tar"
  fi
  echo "$tar"
}

# Imports `alca-test/busybox:latest` into Docker (no registry needed).
host_busybox_image_docker() {
  /usr/bin/docker image inspect alca-test/busybox:latest >/dev/null 2>&1 ||
    /usr/bin/docker import -c 'CMD ["/bin/sh"]' -c 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' \
      "$(host_busybox_rootfs)" alca-test/busybox:latest >/dev/null
}

# The `lanhost` netns: a private-range "LAN host" 10.99.0.2 (+ 192.88.99.2 as a non-LAN host:
# public space in no deny list; the TEST-NETs such as 198.51.100.0/24 are denied as special
# ranges) behind the veth alca-lan0 (10.99.0.1). Sets LANHOST_CREATED=1 when it created the netns.
host_lanhost_up() {
  LANHOST_CREATED=0
  if ! ip netns list | grep -qw lanhost; then
    ip netns add lanhost
    ip link add alca-lan0 type veth peer name lan1 netns lanhost
    ip addr add 10.99.0.1/24 dev alca-lan0; ip link set alca-lan0 up
    ip -n lanhost addr add 10.99.0.2/24 dev lan1
    ip -n lanhost link set lan1 up; ip -n lanhost link set lo up
    ip -n lanhost route add default via 10.99.0.1
    LANHOST_CREATED=1
  fi
  ip -n lanhost addr replace 192.88.99.2/32 dev lan1
  ip route replace 192.88.99.2/32 via 10.99.0.2 dev alca-lan0
}

# Loads a kernel module whose device node is missing (udev-less VMs and CI containers).
host_device() {
  local node=$1 module=$2
  [ -e "$node" ] || modprobe "$module" 2>/dev/null || true
}
