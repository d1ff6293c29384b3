#!/usr/bin/env bash
# Benchmark (not a test): what users feel, as ratios against the plain-runtime floor measured in
# the same run, written to bench/RESULTS.md. Figures: `alca up` cold/warm against docker +
# network + nft, `alca run true` against `docker exec`, alca-netd Apply over D-Bus against raw
# `nft -j -f -`, 1/10/100/500 isolated projects (apply time, daemon RSS, the 1024-hook limit),
# CLI start-up and binary sizes; then bench/internet.sh (internet-access set updates and
# per-packet cost) and bench/exclude.sh (filtered view against a bind mount).
# Usage (root, test env up: bash tests/env/setup.sh): bash bench/run.sh
# Env: UP_RUNS (20), RUN_RUNS (50), SCALE_STEPS ("1 10 100 500"), EXCLUDE_N (10000),
# BENCH_USER (alcatest, must be in group docker).
# Holds /tmp/alca-e2e.lock for the whole run (docker, D-Bus and nft are shared); installs the
# network helper with the release daemon and uninstalls it on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
[ "$(id -u)" = 0 ] || { echo "bench/run.sh: run as root (it installs the network helper)" >&2; exit 1; }
UP_RUNS=${UP_RUNS:-20}
RUN_RUNS=${RUN_RUNS:-50}
BENCH_USER=${BENCH_USER:-alcatest}
IMAGE=alca-test/busybox:latest
BENCH_START=$EPOCHREALTIME

command -v hyperfine > /dev/null || apt-get install -y hyperfine > /dev/null
command -v jq > /dev/null || apt-get install -y jq > /dev/null
command -v strace > /dev/null || apt-get install -y strace > /dev/null
command -v curl > /dev/null || apt-get install -y curl > /dev/null
echo "bench: building release binaries" >&2
cargo build --release -q -p alca -p alca-netd --bins --example netd_bench --example internet_bench
ALCA=$REPO/target/release/alca
NETD=$REPO/target/release/alca-netd
NB=$REPO/target/release/examples/netd_bench

exec 9> /tmp/alca-e2e.lock
echo "bench: waiting for /tmp/alca-e2e.lock" >&2
flock 9
BENCH_START=$EPOCHREALTIME

WORK=$(mktemp -d /tmp/alca-bench-XXXXXX)
chmod 755 "$WORK"
. bench/lib.sh
. bench/netd.sh

FLOOR_ID=f1000000000000000000000000000000
FLOOR_NAME=alca-${FLOOR_ID:0:12}
FLOOR_BRIDGE=alca-${FLOOR_ID:0:10}
PROJECT_DIR=$WORK/project
FLOOR_DIR=$WORK/floor
ALCA_NAME=""

cleanup() {
  set +e
  if [ -f "$PROJECT_DIR/.alca/state.json" ]; then
    (cd "$PROJECT_DIR" && as_user "$ALCA" down --force > /dev/null 2>&1)
  fi
  cd /
  docker rm -f "$FLOOR_NAME" > /dev/null 2>&1
  docker network rm "$FLOOR_NAME" > /dev/null 2>&1
  remove_pool_networks
  nft delete table inet "alca-$FLOOR_ID" 2> /dev/null
  nft delete table inet "$PROBE_TABLE" 2> /dev/null
  "$ALCA" network-helper uninstall -y > /dev/null 2>&1 ||
    echo "bench: network-helper uninstall failed" >&2
  # uninstall deletes every alca- table; these are ours in case it could not.
  nft -j list tables 2> /dev/null | jq -r '.nftables[].table.name? // empty' | grep '^alca-be' |
    while read -r t; do nft delete table inet "$t"; done
  remove_scale_bridges
  rm -f "$LIMITS_FILE"; rmdir /etc/alcatraz 2> /dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- Set-up: the helper with the release daemon, a project owned by the bench user --------
# The daemon's per-user limits (64 projects, 20 calls/s) would stop the scale run of one user:
# raised for the bench, read by the daemon at its start, removed at clean-up.
LIMITS_FILE=/etc/alcatraz/netd-limits.json
install_helper() {
  "$ALCA" network-helper uninstall -y > /dev/null 2>&1 || true
  mkdir -p /etc/alcatraz
  printf '{"projects_per_user":100000,"projects":100000,"calls_per_second":100000,"burst":100000,"in_flight_per_user":64,"in_flight":64,"resolved_per_second":100000,"resolved_burst":100000}\n' > "$LIMITS_FILE"
  SUDO_USER=$BENCH_USER ALCA_NETD_BIN=$NETD "$ALCA" network-helper install -y > "$WORK/install.log" 2>&1 ||
    { cat "$WORK/install.log" >&2; exit 1; }
}

make_project() {
  mkdir -p "$PROJECT_DIR" "$FLOOR_DIR" "$WORK/home/.state" "$WORK/shim"
  printf 'image = "%s"\nruntime = "docker"\n' "$IMAGE" > "$PROJECT_DIR/.alca.toml"
  chown -R "$BENCH_USER:" "$PROJECT_DIR" "$WORK/home"
  # Approve the config once, untimed (a new project's first `up` would ask).
  (cd "$PROJECT_DIR" && as_user "$ALCA" trust -y > /dev/null)
  # Logs the docker CLI calls alca makes (one diagnostic run each, never timed).
  printf '#!/bin/bash\nprintf "%%q " "$@" >> "$DOCKER_LOG"; echo >> "$DOCKER_LOG"\nexec /usr/bin/docker "$@"\n' > "$WORK/shim/docker"
  chmod 755 "$WORK/shim/docker"
}

# The figures run with the project as the working directory (no subshell on the timed path).
alca_in_project() { as_user "$ALCA" "$@"; }

# Counts the docker CLI calls of one `alca "$@"` (listing their verbs; keeps the calls) and the
# engine API requests alca's own process sends to the Docker socket (its connects, by strace).
docker_calls() {
  local log=$WORK/home/docker-calls trace=$WORK/home/api-trace
  : > "$log"
  : > "$trace"
  chown "$BENCH_USER:" "$log" "$trace"
  as_user env PATH="$WORK/shim:$PATH" DOCKER_LOG="$log" \
    strace -qq -e trace=connect -o "$trace" "$ALCA" "$@" > /dev/null
  cat "$log" >> "$WORK/docker-calls.all"
  local verbs
  verbs=$(awk '{ print ($1 == "network" || $1 == "image" || $1 == "container") ? $1 " " $2 : $1 }' "$log" | paste -sd, | sed 's/,/, /g')
  echo "$(wc -l < "$log") CLI${verbs:+ ($verbs)} + $(grep -c 'docker\.sock' "$trace" || true) engine API requests"
}

# Times each read-only docker call alca made (info, inspect) 10 times: where the overhead goes.
fig_docker_call_costs() {
  local line i
  sort -u "$WORK/docker-calls.all" | grep -E '^(info|inspect|(container|image|network) inspect) ' > "$WORK/readonly-calls" || true
  while read -r line; do
    : > "$WORK/call-times"
    for ((i = 0; i < 10; i++)); do
      eval "ms as_user docker $line" >> "$WORK/call-times" || true
    done
    printf '| `docker %s` | %s |\n' "$(eval "printf '%s ' $line" | sed 's/ $//')" "$(stat_of "$WORK/call-times" p50)" >> "$WORK/call-costs"
  done < "$WORK/readonly-calls"
  : > "$WORK/call-times"
  for ((i = 0; i < 10; i++)); do ms as_user docker version --format x >> "$WORK/call-times"; done
  printf '| `docker version --format x` (CLI + one API round trip) | %s |\n' "$(stat_of "$WORK/call-times" p50)" >> "$WORK/call-costs"
  : > "$WORK/call-times"
  for ((i = 0; i < 10; i++)); do
    ms as_user curl -sf --unix-socket /var/run/docker.sock -o /dev/null "http://docker/containers/$ALCA_NAME/json" >> "$WORK/call-times"
  done
  printf '| `curl --unix-socket …/containers/%s/json` (a process start + one engine API request) | %s |\n' "$ALCA_NAME" "$(stat_of "$WORK/call-times" p50)" >> "$WORK/call-costs"
}

# --- Floor: the same container, network and rules with plain docker and nft --------------
floor_reset() {
  docker rm -f "$FLOOR_NAME" > /dev/null 2>&1 || true
  docker network rm "$FLOOR_NAME" > /dev/null 2>&1 || true
  nft delete table inet "alca-$FLOOR_ID" 2> /dev/null || true
}

floor_cold() {
  docker network create --label "alca.project.id=$FLOOR_ID" --label "alca.project.path=$FLOOR_DIR" \
    -o "com.docker.network.bridge.name=$FLOOR_BRIDGE" "$FLOOR_NAME" &&
    nft -j -f "$WORK/floor.batch" &&
    docker run -d --name "$FLOOR_NAME" --network "$FLOOR_NAME" --restart=unless-stopped -w /workspace \
      --label "alca.project.id=$FLOOR_ID" --label "alca.project.path=$FLOOR_DIR" --label alca.version=0 \
      --mount "type=bind,source=$FLOOR_DIR,target=/workspace" --cap-drop ALL \
      --cap-add CHOWN --cap-add DAC_OVERRIDE --cap-add FOWNER --cap-add KILL --cap-add SETUID \
      --cap-add SETGID "$IMAGE" sleep infinity
}

floor_warm() { nft -j -f "$WORK/floor.batch" && docker start "$FLOOR_NAME"; }

# --- Figures ---------------------------------------------------------------------------
fig_startup() {
  hyperfine -N --style none --warmup 20 --runs 300 --export-json "$WORK/startup.json" \
    "$ALCA --version" "$NETD --version" "/bin/true" > /dev/null 2>&1
  STARTUP_ALCA=$(jq '.results[0].median * 1000' "$WORK/startup.json")
  STARTUP_ALCA_MIN=$(jq '.results[0].min * 1000' "$WORK/startup.json")
  STARTUP_NETD=$(jq '.results[1].median * 1000' "$WORK/startup.json")
  STARTUP_TRUE=$(jq '.results[2].median * 1000' "$WORK/startup.json")
  SIZE_ALCA=$(stat -c %s "$ALCA")
  SIZE_NETD=$(stat -c %s "$NETD")
}

# First `up` (untimed: activates the daemon), then the floor's batch from the spec it saved.
first_up() {
  alca_in_project up -q > /dev/null
  PROJECT_ID=$(jq -r .id "$PROJECT_DIR/.alca/state.json")
  ALCA_NAME=alca-${PROJECT_ID:0:12}
  jq -c --arg p "$FLOOR_ID" --arg b "$FLOOR_BRIDGE" '.spec | .project = $p | .bridge = $b' \
    "/var/lib/alcatraz/projects/$PROJECT_ID.json" > "$WORK/floor.spec"
  "$NB" compile "$(id -u "$BENCH_USER")" < "$WORK/floor.spec" > "$WORK/floor.batch"
  floor_reset
  floor_cold > /dev/null
}

# Cold: alca down, then time `alca up`; floor reset, then time the floor. Interleaved.
fig_up_cold() {
  local i
  for ((i = 0; i < UP_RUNS; i++)); do
    alca_in_project down --force > /dev/null 2>&1
    ms alca_in_project up -q >> "$WORK/up-cold-alca"
    floor_reset
    ms floor_cold >> "$WORK/up-cold-floor"
  done
  alca_in_project down --force > /dev/null 2>&1
  CALLS_COLD=$(docker_calls up -q)
}

# Warm: both containers stopped (SIGKILL, untimed), then time the start.
fig_up_warm() {
  local i
  for ((i = 0; i < UP_RUNS; i++)); do
    docker stop -t 0 "$ALCA_NAME" > /dev/null
    ms alca_in_project up -q >> "$WORK/up-warm-alca"
    docker stop -t 0 "$FLOOR_NAME" > /dev/null
    ms floor_warm >> "$WORK/up-warm-floor"
  done
  docker stop -t 0 "$ALCA_NAME" > /dev/null
  CALLS_WARM=$(docker_calls up -q)
}

fig_run() {
  local i
  for ((i = 0; i < 3; i++)); do
    alca_in_project run true > /dev/null
    as_user docker exec "$ALCA_NAME" true
  done
  for ((i = 0; i < RUN_RUNS; i++)); do
    ms alca_in_project run true >> "$WORK/run-alca"
    ms as_user docker exec "$ALCA_NAME" true >> "$WORK/run-floor"
  done
  CALLS_RUN=$(docker_calls run true)
}

# How many more bridge networks docker creates from its address pools (none given) before it
# refuses: each alca project needs one, so this bounds the projects one host runs at once.
POOL_LABEL=alca.bench.pool
fig_docker_pool() {
  local n=0
  while ((n < 300)) && docker network create --label "$POOL_LABEL" "alca-bench-pool-$n" > /dev/null 2> "$WORK/pool.err"; do
    n=$((n + 1))
  done
  POOL_NETWORKS=$n
  POOL_ERROR=$(head -n 1 "$WORK/pool.err" | cut -c 1-160)
  remove_pool_networks
}

remove_pool_networks() {
  docker network ls -q --filter "label=$POOL_LABEL" | xargs -r docker network rm > /dev/null 2>&1 || true
}

fig_internet() {
  # This run holds the lock and installed the helper (with raised limits) already.
  ALCA_BENCH_LOCKED=1 BENCH_USER=$BENCH_USER bash "$REPO/bench/internet.sh" \
    > "$WORK/internet.txt" 2> "$WORK/internet.err" ||
    { echo "bench/internet.sh failed:"; tail -5 "$WORK/internet.err"; } >> "$WORK/internet.txt"
}

fig_exclude() {
  # This run holds the lock already.
  ALCA_BENCH_LOCKED=1 BENCH_USER=$BENCH_USER N=${EXCLUDE_N:-10000} bash "$REPO/bench/exclude.sh" "$ALCA" \
    > "$WORK/exclude.txt" 2> "$WORK/exclude.err" ||
    { echo "bench/exclude.sh failed:"; tail -5 "$WORK/exclude.err"; } >> "$WORK/exclude.txt"
}

step() { printf 'bench: %s (%ss elapsed)\n' "$1" "$(awk -v a="$BENCH_START" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", b - a }')" >&2; }

step "start-up and sizes"; fig_startup
step "installing the network helper"; install_helper; make_project
cd "$PROJECT_DIR"
step "first up"; first_up
step "alca up, cold ($UP_RUNS runs)"; fig_up_cold
step "alca up, warm ($UP_RUNS runs)"; fig_up_warm
alca_in_project up -q > /dev/null
step "alca run true ($RUN_RUNS runs)"; fig_run
step "cost of alca's read-only docker calls"; fig_docker_call_costs
step "alca-netd Apply (200 calls) and raw nft (200 runs)"; fig_netd_apply
alca_in_project down --force > /dev/null 2>&1
floor_reset
step "scale: ${SCALE_STEPS[*]} projects"; fig_scale
step "hook limit probe"; fig_hook_limit
step "removing $SCALE_MAX projects"; fig_scale_remove
step "nft cost without the deny sets"; fig_nft_without_sets
step "docker's address pools"; fig_docker_pool
step "internet-access: set updates, per-packet cost"; fig_internet
step "exclude (filtered view)"; fig_exclude
BENCH_SECONDS=$(awk -v a="$BENCH_START" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", b - a }')
step "writing bench/RESULTS.md"
. "$REPO/bench/results.sh"
write_results > "$REPO/bench/RESULTS.md"
step "done"
