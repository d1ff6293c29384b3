#!/usr/bin/env bash
# Benchmark (not a test): the kernel side of network.internet-access (issue #17), as ratios in
# one run, printed as a Markdown section (bench/run.sh puts it into bench/RESULTS.md).
#   1. Set update time: `AllowResolved` of one address (what the project's resolver sends for
#      an answer, and waits for before it answers the container) over one D-Bus connection as
#      the project's owner, p50/p99, against the floor of a D-Bus round trip the daemon answers
#      from memory (the `Launcher` property, same connection, interleaved call by call); and,
#      for scale, the kernel's own part: one netlink transaction adding one address with a
#      timeout to a set, on a kept socket as the daemon's.
#   2. Per-packet cost against the size of the allow set: TCP connects from inside a real
#      container to the test "internet" host (192.88.99.2 in netns lanhost) allowed through a
#      set of 10 addresses against one of 10,000 (two projects, rounds interleaved).
# Usage (root, test env up: bash tests/env/setup.sh): bash bench/internet.sh
# Env: UPDATES (100 per round), CONNECTS (200 per round), ROUNDS (5), BENCH_USER (alcatest).
# Standalone it takes /tmp/alca-e2e.lock, builds the release binaries and installs the network
# helper (uninstalled on exit); from bench/run.sh (ALCA_BENCH_LOCKED=1) it uses run.sh's.
# Traffic goes only to 192.88.99.2 in netns lanhost (the route is checked first).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
[ "$(id -u)" = 0 ] || { echo "bench/internet.sh: run as root" >&2; exit 1; }
UPDATES=${UPDATES:-100}
CONNECTS=${CONNECTS:-200}
ROUNDS=${ROUNDS:-5}
BENCH_USER=${BENCH_USER:-alcatest}
IMAGE=alca-test/busybox:latest
TARGET=192.88.99.2
PORT=24291
SMALL_N=10
LARGE_N=10000
command -v jq > /dev/null || apt-get install -y jq > /dev/null

if [ -z "${ALCA_BENCH_LOCKED:-}" ]; then
  echo "bench: building release binaries" >&2
  cargo build --release -q -p alca -p alca-netd --bins --example internet_bench
  exec 8> /tmp/alca-e2e.lock
  echo "bench: waiting for /tmp/alca-e2e.lock" >&2
  flock 8
fi
ALCA=$REPO/target/release/alca
NETD=$REPO/target/release/alca-netd
IB=$REPO/target/release/examples/internet_bench
[ -x "$IB" ] || { echo "bench/internet.sh: build it first (cargo build --release -p alca-netd --example internet_bench)" >&2; exit 1; }

# Network safety: the test host must be behind the test veth, never the uplink.
ip route get "$TARGET" | grep -q 'dev alca-lan0' ||
  { echo "bench/internet.sh: $TARGET is not routed to the test veth: run tests/env/setup.sh" >&2; exit 1; }

WORK=$(mktemp -d /tmp/alca-bench-inet-XXXXXX)
chmod 755 "$WORK"
. bench/lib.sh
LIMITS_FILE=/etc/alcatraz/netd-limits.json
INSTALLED=""
LISTENER_PID=""
# Two projects: the allow set of one holds 10 addresses, the other's 10,000.
SMALL=b17e1000000000000000000000000010
LARGE=b17e2000000000000000000000010000

net_name() { echo "alca-bench-${1:0:12}"; }

cleanup() {
  set +e
  [ -n "$LISTENER_PID" ] && kill "$LISTENER_PID" 2> /dev/null
  for id in $SMALL $LARGE; do
    docker rm -f "$(net_name "$id")" > /dev/null 2>&1
    as_user "$IB" remove "$id" > /dev/null 2>&1
    docker network rm "$(net_name "$id")" > /dev/null 2>&1
  done
  if [ -n "$INSTALLED" ]; then
    "$ALCA" network-helper uninstall -y > /dev/null 2>&1 || echo "bench: network-helper uninstall failed" >&2
    rm -f "$LIMITS_FILE"; rmdir /etc/alcatraz 2> /dev/null
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -z "${ALCA_BENCH_LOCKED:-}" ]; then
  # The daemon's default limits (500 AllowResolved/s, 20 other calls/s) would throttle the
  # timed loops; raised for the bench, read by the daemon at its start, removed at clean-up.
  "$ALCA" network-helper uninstall -y > /dev/null 2>&1 || true
  mkdir -p /etc/alcatraz
  printf '{"calls_per_second":100000,"burst":100000,"resolved_per_second":100000,"resolved_burst":100000}\n' > "$LIMITS_FILE"
  INSTALLED=1
  SUDO_USER=$BENCH_USER ALCA_NETD_BIN=$NETD "$ALCA" network-helper install -y > "$WORK/install.log" 2>&1 ||
    { cat "$WORK/install.log" >&2; exit 1; }
fi
mkdir -p "$WORK/home/.state"
chown -R "$BENCH_USER:" "$WORK/home"

# A project as `alca up` makes one: claim, network on the project's bridge, rules, container.
make_project() {
  local id=$1 subnet=$2 gateway=$3 name
  name=$(net_name "$id")
  as_user "$IB" claim "$id"
  docker network create -o "com.docker.network.bridge.name=alca-${id:0:10}" --subnet "$subnet" "$name" > /dev/null
  as_user "$IB" apply "$id" "$PORT" "$gateway:5353"
  docker run -d --name "$name" --network "$name" "$IMAGE" sleep 600 > /dev/null
}

step() { echo "bench: $*" >&2; }
step "projects with $SMALL_N and $LARGE_N allowed addresses"
make_project $SMALL 172.29.240.0/24 172.29.240.1
make_project $LARGE 172.29.241.0/24 172.29.241.1
t0=$EPOCHREALTIME
as_user "$IB" fill $SMALL $SMALL_N $TARGET
as_user "$IB" fill $LARGE $LARGE_N $TARGET
FILL_S=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
set_size() {
  nft -j list set inet "alca-$1" inet4_0 | jq '[.nftables[] | .set? | select(. != null) | .elem // [] | length] | add'
}
SMALL_SIZE=$(set_size $SMALL)
LARGE_SIZE=$(set_size $LARGE)

# --- 1. set updates ------------------------------------------------------------------------
step "set updates: $ROUNDS rounds of $UPDATES AllowResolved + ping, and $UPDATES kernel adds"
as_user "$IB" update $SMALL 20 $TARGET > /dev/null
"$IB" kernel 20 > /dev/null
for ((r = 0; r < ROUNDS; r++)); do
  as_user "$IB" update $SMALL "$UPDATES" $TARGET > "$WORK/round"
  awk '$1 == "resolved" { print $2 }' "$WORK/round" >> "$WORK/resolved"
  awk '$1 == "ping" { print $2 }' "$WORK/round" >> "$WORK/ping"
  "$IB" kernel "$UPDATES" >> "$WORK/kernel"
done

# --- 2. per-packet cost --------------------------------------------------------------------
step "connects: $ROUNDS rounds of $CONNECTS per project"
# Listens on PORT (allowed) and PORT+1 (not allowed: a refusal there is the rules', not the
# host's); accepts and closes; exits after 300 s at most.
ip netns exec lanhost python3 -c '
import socket, sys, signal, threading
signal.alarm(int(sys.argv[3]))
def serve(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((sys.argv[1], port))
    s.listen(1024)
    return s
def loop(s):
    while True:
        c, _ = s.accept()
        c.close()
socks = [serve(int(sys.argv[2])), serve(int(sys.argv[2]) + 1)]
print("ready", flush=True)
threading.Thread(target=loop, args=(socks[1],), daemon=True).start()
loop(socks[0])
' "$TARGET" "$PORT" 300 > "$WORK/listener.out" &
LISTENER_PID=$!
for _ in $(seq 50); do grep -q ready "$WORK/listener.out" 2> /dev/null && break; sleep 0.1; done
CLIENT='
import socket, sys, time
addr = (sys.argv[1], int(sys.argv[2]))
for _ in range(int(sys.argv[3])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t = time.perf_counter()
    s.connect(addr)
    d = time.perf_counter() - t
    s.close()
    print("%.4f" % (d * 1000))
'
# The host's python in the container's network namespace: its packets leave through the
# container's interface and cross the project's rules like the container's own.
connects() {
  local pid
  pid=$(docker inspect -f '{{.State.Pid}}' "$(net_name "$1")")
  nsenter -t "$pid" -n python3 -c "$CLIENT" "$TARGET" "$PORT" "$2"
}
connects $SMALL 20 > /dev/null
connects $LARGE 20 > /dev/null
for ((r = 0; r < ROUNDS; r++)); do
  if ((r % 2)); then
    connects $LARGE "$CONNECTS" >> "$WORK/large"; connects $SMALL "$CONNECTS" >> "$WORK/small"
  else
    connects $SMALL "$CONNECTS" >> "$WORK/small"; connects $LARGE "$CONNECTS" >> "$WORK/large"
  fi
done
# A connect the list refuses (something listens there), as a check that the rules were in the
# path at all.
pid=$(docker inspect -f '{{.State.Pid}}' "$(net_name $SMALL)")
REFUSED=$(nsenter -t "$pid" -n python3 -c '
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
    print("connected")
except OSError as e:
    print(type(e).__name__)
' "$TARGET" $((PORT + 1)))

# --- report -------------------------------------------------------------------------------
# Every figure here is sub-millisecond: microseconds, computed from the raw lines.
pct_us() { sort -n "$1" | awk -v p="$2" '{ v[NR] = $1 } END { i = int(p * NR + 0.999999); if (i < 1) i = 1; printf "%.0f", v[i] * 1000 }'; }
s50=$(pct_us "$WORK/small" 0.5); s99=$(pct_us "$WORK/small" 0.99)
l50=$(pct_us "$WORK/large" 0.5); l99=$(pct_us "$WORK/large" 0.99)
ur50=$(pct_us "$WORK/resolved" 0.5); ur99=$(pct_us "$WORK/resolved" 0.99)
up50=$(pct_us "$WORK/ping" 0.5); up99=$(pct_us "$WORK/ping" 0.99)
uk50=$(pct_us "$WORK/kernel" 0.5); uk99=$(pct_us "$WORK/kernel" 0.99)
cat << EOF
One run, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$REPO" rev-parse --short HEAD), release
binaries, as \`$BENCH_USER\` through the real system D-Bus; $ROUNDS interleaved rounds.

**Set update** ($((ROUNDS * UPDATES)) calls each): \`AllowResolved\` of one address, the call the
project's resolver makes for an answer and waits for before it answers the container,
against a D-Bus round trip the daemon answers from memory (the \`Launcher\` property, same
connection, alternating call by call). The floor is the bus round trip because that is the
part a root daemon fed by an unprivileged resolver cannot avoid; a plain \`nft add element\`
would be a worse floor (a process start and a read of the ruleset, milliseconds). The
kernel's own part is shown for scale: one netlink transaction adding one address with a
timeout to a set, on a kept socket as the daemon's.

| Path | p50 (µs) | p99 (µs) |
|---|---|---|
| \`AllowResolved\` (1 address) | $ur50 | $ur99 |
| D-Bus round trip (floor) | $up50 | $up99 |
| netlink add of the element (kernel only) | $uk50 | $uk99 |

\`AllowResolved\` against the floor: p50 $(calc "$ur50 / $up50")x (+$((ur50 - up50)) µs), p99 $(calc "$ur99 / $up99")x.
What the difference holds: the caller's uid and polkit verdict from the per-connection cache,
the rate gate, the ownership check and the entry check against the saved spec under the state
lock, and the netlink transaction.

**Per-packet cost** ($((ROUNDS * CONNECTS)) TCP connects each, from inside a container, to the test
host allowed through the project's allow set): an established connection's packets are
accepted by the first rule (\`ct state established,related\`) before any set lookup, so the
packet that meets the set is the first of each connection; the connect time is where its
cost would show. Allow set sizes read back from the kernel: $SMALL_SIZE and $LARGE_SIZE (filled through
\`AllowResolved\` in updates of 64, $FILL_S s for both). A connect to a port the entry does not
allow, where the test host listens too: $REFUSED.

| Allow set | connect p50 (µs) | connect p99 (µs) |
|---|---|---|
| $SMALL_SIZE addresses | $s50 | $s99 |
| $LARGE_SIZE addresses | $l50 | $l99 |

$LARGE_SIZE against $SMALL_SIZE: p50 $(calc "$l50 / $s50")x, p99 $(calc "$l99 / $s99")x (flat: the sets are hash sets,
one lookup per new connection whatever their size).
EOF
