# alca-netd figures for bench/run.sh (sourced, not run): Apply over D-Bus against raw
# `nft -j -f -` of the same JSON, then 1/10/100/500 isolated projects and the kernel's limit of
# 1024 hooks per hook point. Uses lib.sh helpers and run.sh's NB, WORK, BENCH_USER, PROJECT_ID.

# Cumulative project counts (env SCALE_STEPS="1 10" for a quick trial).
read -ra SCALE_STEPS <<< "${SCALE_STEPS:-1 10 100 500}"
SCALE_MAX=${SCALE_STEPS[-1]}
SCALE_IDS=$WORK/scale.ids
PROBE_TABLE=alca-benchhookprobe

# Project id number I of the scale run (32 hex digits, distinct in the 10 its bridge keeps).
scale_id() { printf 'be%08x%022d\n' "$1" 0; }

# The spec `alca up` sends for a default project, for id $1.
default_spec() { printf '{"project":"%s","bridge":"alca-%s"}\n' "$1" "${1:0:10}"; }

# Apply over D-Bus (as the bench user, polkit and all) and raw nft, interleaved in rounds so a
# change in machine load hits both alike.
fig_netd_apply() {
  local uid round
  uid=$(id -u "$BENCH_USER")
  jq -c .spec "/var/lib/alcatraz/projects/$PROJECT_ID.json" > "$WORK/spec.json"
  "$NB" compile "$uid" < "$WORK/spec.json" > "$WORK/batch.json"
  as_user "$NB" apply 5 < "$WORK/spec.json" > /dev/null
  "$NB" nft 5 < "$WORK/batch.json" > /dev/null
  for ((round = 0; round < 10; round++)); do
    as_user "$NB" apply 20 < "$WORK/spec.json" >> "$WORK/netd-apply"
    "$NB" nft 20 < "$WORK/batch.json" >> "$WORK/netd-nft"
  done
  NETD_RSS_ONE=$(daemon_rss_kib)
}

# Applies projects up to each step (cumulative), then times a change of project 1 (its table
# only) over D-Bus and as raw nft, one Status and one List call (both list the alca- tables
# with nft), and reads the daemon's RSS and the prerouting chain count.
fig_scale() {
  local i prev=0 n t0 uid one
  uid=$(id -u "$BENCH_USER")
  for ((i = 1; i <= SCALE_MAX; i++)); do scale_id "$i"; done > "$SCALE_IDS"
  # Real bridges, as each project's runtime network would have: Apply checks the name over
  # rtnetlink, and a host with N projects has N more links to scan. Each step's bridges are made
  # after its first Apply, as `alca up` does (claim, then network, then rules): the daemon
  # refuses rules on an existing bridge nobody claimed.
  SCALE_BRIDGES=1
  one=$(scale_id 1)
  default_spec "$one" > "$WORK/one.spec"
  "$NB" compile "$uid" < "$WORK/one.spec" > "$WORK/one.batch"
  # The smallest batch there is (create and delete a scratch table): nft's fixed cost per run.
  printf '{"nftables":[{"add":{"table":{"family":"inet","name":"%s"}}},{"delete":{"table":{"family":"inet","name":"%s"}}}]}\n' \
    "$PROBE_TABLE" "$PROBE_TABLE" > "$WORK/empty.batch"
  SCALE_RSS_BEFORE=$(daemon_rss_kib)
  for n in "${SCALE_STEPS[@]}"; do
    sed -n "$((prev + 1)),${n}p" "$SCALE_IDS" > "$WORK/step.ids"
    t0=$EPOCHREALTIME
    as_user "$NB" scale < "$WORK/step.ids" > "$WORK/scale-new-$n"
    SCALE_WALL[$n]=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
    awk '{ print "link add alca-" substr($1, 1, 10) " type bridge" }' "$WORK/step.ids" > "$WORK/bridges.add"
    ip -batch "$WORK/bridges.add"
    tail -n 10 "$WORK/scale-new-$n" > "$WORK/scale-last10-$n"
    as_user "$NB" apply 20 < "$WORK/one.spec" > "$WORK/scale-change-$n"
    "$NB" nft 20 < "$WORK/one.batch" > "$WORK/scale-nft-$n"
    for ((i = 0; i < 10; i++)); do ms nft -j -f "$WORK/empty.batch"; done > "$WORK/scale-nftmin-$n"
    SCALE_STATUS[$n]=$(as_user "$NB" status "$one")
    SCALE_LIST[$n]=$(as_user "$NB" list)
    SCALE_RSS[$n]=$(daemon_rss_kib)
    SCALE_CHAINS[$n]=$(prerouting_chains)
    echo "  $n projects: step took ${SCALE_WALL[$n]} s, daemon RSS ${SCALE_RSS[$n]} KiB" >&2
    prev=$n
  done
  SCALE_RSS_PEAK=$(daemon_rss_kib peak)
}

# With every scale project applied, adds prerouting base chains to a probe table until the
# kernel refuses one, then checks that Apply of one more project fails (closed) there.
fig_hook_limit() {
  local added=0 batch j
  nft add table inet "$PROBE_TABLE"
  while ((added < 1100)); do
    batch=$(for ((j = added; j < added + 16; j++)); do
      echo "add chain inet $PROBE_TABLE p$j { type filter hook prerouting priority 0 ; }"
    done)
    nft -f - <<< "$batch" 2> /dev/null || break
    added=$((added + 16))
  done
  while ((added < 1100)) &&
    nft add chain inet "$PROBE_TABLE" "p$added" '{ type filter hook prerouting priority 0 ; }' 2> "$WORK/hook.err"; do
    added=$((added + 1))
  done
  HOOK_PROBE_ADDED=$added
  HOOK_ERROR=$(head -n 1 "$WORK/hook.err" 2> /dev/null || true)
  HOOK_CHAINS_AT_LIMIT=$(prerouting_chains)
  if as_user "$NB" scale <<< "$(scale_id $((SCALE_MAX + 1)))" > /dev/null 2> "$WORK/apply501.err"; then
    HOOK_APPLY_AT_LIMIT="succeeded (unexpected)"
    as_user "$NB" remove <<< "$(scale_id $((SCALE_MAX + 1)))" > /dev/null
  else
    HOOK_APPLY_AT_LIMIT="failed (\`$(head -n 1 "$WORK/apply501.err" | cut -c 1-160)…\`)"
  fi
  nft delete table inet "$PROBE_TABLE"
}

# Removes every scale project over D-Bus (timed) and the bridges.
fig_scale_remove() {
  local t0
  t0=$EPOCHREALTIME
  as_user "$NB" remove < "$SCALE_IDS" > "$WORK/scale-remove"
  SCALE_REMOVE_WALL=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
  SCALE_RSS_AFTER=$(daemon_rss_kib)
  remove_scale_bridges
}

# The same number of tables loaded directly, minus the deny interval sets and the rules using
# them: how much of nft's per-run cost those sets are. Removed again at once.
fig_nft_without_sets() {
  local i
  for ((i = 1; i <= SCALE_MAX; i++)); do default_spec "$(scale_id "$i")" | "$NB" compile 0; done |
    jq -s '{nftables: [.[].nftables[] | select(.add.set == null or .add.set.name == "owner") | select(.add.rule == null)]}' \
      > "$WORK/nosets.batch"
  nft -j -f "$WORK/nosets.batch"
  NOSETS_LIST=$(ms nft -j list tables)
  for ((i = 0; i < 10; i++)); do ms nft -j -f "$WORK/empty.batch"; done > "$WORK/nosets-nftmin"
  for ((i = 1; i <= SCALE_MAX; i++)); do
    printf 'add table inet alca-%s\ndelete table inet alca-%s\n' "$(scale_id "$i")" "$(scale_id "$i")"
  done | nft -f -
}

remove_scale_bridges() {
  [ -n "${SCALE_BRIDGES:-}" ] || return 0
  awk '{ print "link delete alca-" substr($1, 1, 10) }' "$SCALE_IDS" > "$WORK/bridges.del"
  ip -force -batch "$WORK/bridges.del" 2> /dev/null || true
  SCALE_BRIDGES=
}
