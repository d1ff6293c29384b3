# Writes bench/RESULTS.md from the figures bench/run.sh collected (sourced, not run).

# "| label | p50 | p90 | min | n |" for a file of milliseconds.
row() {
  local s
  s=$(stats "$2")
  awk -v l="$1" '{ printf "| %s | %s | %s | %s | %s |\n", l, $3, $4, $2, $1 }' <<< "$s"
}

machine() {
  local cpu mem
  cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
  mem=$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
  echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$REPO" rev-parse --short HEAD), whole run ${BENCH_SECONDS} s"
  echo "- Machine: ${cpu:-unknown CPU}, $(nproc) cores (shared with other work), $mem RAM"
  echo "- Kernel $(uname -r); Docker $(docker version --format '{{.Server.Version}}' 2> /dev/null);" \
    "$(nft --version | awk '{ print $1, $2 }'); $(hyperfine --version)"
  echo "- Release builds (\`cargo build --release\`: thin LTO, stripped); calls as the unprivileged" \
    "user \`$BENCH_USER\` (groups alcatraz, docker) through the real system D-Bus and polkitd"
}

write_results() {
  local c_a c_f w_a w_f r_a r_f a50 a99 n50 n99 n
  c_a=$(stat_of "$WORK/up-cold-alca" p50); c_f=$(stat_of "$WORK/up-cold-floor" p50)
  w_a=$(stat_of "$WORK/up-warm-alca" p50); w_f=$(stat_of "$WORK/up-warm-floor" p50)
  r_a=$(stat_of "$WORK/run-alca" p50); r_f=$(stat_of "$WORK/run-floor" p50)
  a50=$(stat_of "$WORK/netd-apply" p50); a99=$(stat_of "$WORK/netd-apply" p99)
  n50=$(stat_of "$WORK/netd-nft" p50); n99=$(stat_of "$WORK/netd-nft" p99)
  cat << EOF
# Benchmarks

Written by \`bash bench/run.sh\` (root, test env up); every ratio is against a floor measured in
the same run, interleaved run by run with the alca side. Times in milliseconds unless marked.

$(machine)

## Headline

| Figure | alca (p50) | floor (p50) | ratio | goal | |
|---|---|---|---|---|---|
| \`alca up\`, cold (create) | $c_a | $c_f | $(calc "$c_a / $c_f")x | ≤ 1.15x | $(verdict "$c_a <= 1.15 * $c_f") |
| \`alca up\`, warm (start) | $w_a | $w_f | $(calc "$w_a / $w_f")x | ≤ 1.15x | $(verdict "$w_a <= 1.15 * $w_f") |
| \`alca run true\` vs \`docker exec\` | $r_a | $r_f | +$(calc "$r_a - $r_f") ms | ≤ +10 ms | $(verdict "$r_a - $r_f <= 10") |
| alca-netd Apply p99 vs raw nft p99 | $a99 | $n99 | $(calc "$a99 / $n99")x | ≤ 2x | $(verdict "$a99 <= 2 * $n99") |
| Change of one project at $SCALE_MAX projects vs at 1 (Apply p50) | $(stat_of "$WORK/scale-change-$SCALE_MAX" p50) | $(stat_of "$WORK/scale-change-1" p50) | $(calc "$(stat_of "$WORK/scale-change-$SCALE_MAX" p50) / $(stat_of "$WORK/scale-change-1" p50)")x | does not slow (≤ 1.5x) | $(verdict "$(stat_of "$WORK/scale-change-$SCALE_MAX" p50) <= 1.5 * $(stat_of "$WORK/scale-change-1" p50)") |

Daemon RSS at $SCALE_MAX projects: ${SCALE_RSS[$SCALE_MAX]} KiB. Isolated projects one host can hold (kernel
hook limit, measured): ~$((SCALE_MAX + HOOK_PROBE_ADDED)) without a proxy, ~$(((SCALE_MAX + HOOK_PROBE_ADDED) / 2)) with one.
\`alca --version\`: $(printf '%.2f' "$STARTUP_ALCA") ms median, $(printf '%.2f' "$STARTUP_ALCA_MIN") ms min; binaries $(calc "$SIZE_ALCA / 1048576") MiB (alca) and $(calc "$SIZE_NETD / 1048576") MiB (alca-netd).

## \`alca up\` against the floor ($UP_RUNS runs each)

Floor, cold: \`docker network create\` (same labels and bridge name) + \`nft -j -f\` of the batch
the daemon compiles for this project + \`docker run -d\` (same flags, mount, caps, command).
Floor, warm: \`nft -j -f\` of that batch + \`docker start\`. Before each run both containers are
removed (cold) or stopped with SIGKILL (warm), untimed.

| Command | p50 | p90 | min | n |
|---|---|---|---|---|
$(row "alca up (cold)" "$WORK/up-cold-alca")
$(row "floor (cold)" "$WORK/up-cold-floor")
$(row "alca up (warm)" "$WORK/up-warm-alca")
$(row "floor (warm)" "$WORK/up-warm-floor")

Docker calls alca makes (one logged run each): cold $CALLS_COLD; warm $CALLS_WARM.
The floor makes 2 docker calls and one nft run cold (network create, nft, run) and 1 + 1 warm
(nft, start); alca sends the same transaction through one D-Bus Apply (the daemon writes it
to nf_tables over netlink). What one call costs here (as
$BENCH_USER, 10 runs, p50 ms):

| Call | p50 |
|---|---|
$(cat "$WORK/call-costs")

Where the time goes: a docker CLI call is a Go process start plus an API round trip, ~20-30 ms
here, so alca sends its read-only queries (the rootless probe \`GET /info\`, container, image
and network inspect), \`network create\` and \`start\` to the engine API over the local Docker
socket instead, from its own process (~1 ms each; the curl row above adds a process start).
Only \`create\` stays on the CLI (the \`docker run\` flags are the CLI's to parse, and Podman
shares them). The quick \`network verify\` (#10) that proves the rules hold before \`up\`
reports success no longer execs into the container (that exec alone cost what the
\`docker exec\` floor of the next section costs): one D-Bus call, \`ProbeFrom\`, has the daemon
check the live table (one \`nft\` listing, ~5 ms), arm the fence (a netlink element batch,
under a millisecond), connect to each target from a thread inside the container's network
namespace (~1 ms: the rules answer at once), and read the outcome (one listing); the disarm
runs after the reply. What is left over the floor: that call, the D-Bus Apply (below: mostly
polkit's CheckAuthorization), alca's start-up, config and trust check (~10 ms), the three
\`ip -j\` runs of the verify matrix (~7 ms), and cold, \`create\` + \`start\` where the floor
has one \`run -d\`.

## \`alca run true\` against \`docker exec <ctr> true\` ($RUN_RUNS runs each, both as $BENCH_USER)

| Command | p50 | p90 | min | n |
|---|---|---|---|---|
$(row "alca run true" "$WORK/run-alca")
$(row "docker exec ctr true" "$WORK/run-floor")

Docker calls of one \`alca run true\`: $CALLS_RUN. Before the \`exec\` (the CLI, which owns
the terminal), alca reads the container's state and project labels (is it running, was the
project moved?) with engine API requests on the Docker socket instead of a
\`container inspect\` process; the rest of the gap is alca's own start-up, its config load and
trust check.

## alca-netd Apply over D-Bus against raw nft (200 calls each, in 10 interleaved rounds)

One project's spec as \`alca up\` sent it; one D-Bus connection (the client's), called as
$BENCH_USER, so each call includes the bus round trips for the caller's uid and polkit's
CheckAuthorization, the rtnetlink bridge check, the saved-spec write (fsync + rename) and the
transaction itself, which the daemon sends to nf_tables over netlink where the raw side
spawns \`nft -j -f -\` of the same batch (from Rust). The Apply comes out below the raw side:
its transaction is one netlink datagram on a socket the daemon keeps open (closing a socket
right after a commit would wait ~10 ms for the kernel's cleanup of that commit), where nft
pays a process start and the read of the ruleset into its cache. Status, which needs no
polkit, answers in under a millisecond (scale table below), so most of an Apply is polkit's
verdict and the bus round trips.

| Path | p50 | p90 | p99 | max | n |
|---|---|---|---|---|---|
$(stats "$WORK/netd-apply" | awk '{ printf "| Apply over D-Bus | %s | %s | %s | %s | %s |\n", $3, $4, $5, $6, $1 }')
$(stats "$WORK/netd-nft" | awk '{ printf "| nft -j -f - | %s | %s | %s | %s | %s |\n", $3, $4, $5, $6, $1 }')

Daemon against raw nft: p50 $(calc "$a50 - $n50" | awk '{ printf ($1 >= 0 ? "+%s" : "%s"), $1 }') ms, p99 $(calc "$a99 / $n99")x.
Daemon RSS after these calls: $NETD_RSS_ONE KiB.

## Scale: ${SCALE_STEPS[*]} isolated projects

Projects are added cumulatively through D-Bus as $BENCH_USER (default spec: isolation, no
proxy), each with a real (down) Linux bridge \`alca-<id>\` so the daemon's rtnetlink check scans
a realistic link table. "Change of project 1" re-applies project 1's spec 20 times once the step
is complete: a project's change replaces only its own table, so it should not grow with N.
The raw nft columns run the same batch (and an empty one) through the \`nft\` binary, for
comparison: the daemon itself no longer runs it.

| Projects | new applies | new: p50 / p99 | last 10 new: mean | step wall (s) | change of project 1: p50 (D-Bus) | same, raw nft p50 | raw nft, empty batch p50 | Status (1 call) | List (1 call) | daemon RSS (KiB) | prerouting base chains (ip+inet) |
|---|---|---|---|---|---|---|---|---|---|---|---|
$(prev=0; for n in "${SCALE_STEPS[@]}"; do
    printf '| %s | %s | %s / %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$n" "$(stat_of "$WORK/scale-new-$n" n)" \
      "$(stat_of "$WORK/scale-new-$n" p50)" "$(stat_of "$WORK/scale-new-$n" p99)" \
      "$(stat_of "$WORK/scale-last10-$n" mean)" "${SCALE_WALL[$n]}" \
      "$(stat_of "$WORK/scale-change-$n" p50)" "$(stat_of "$WORK/scale-nft-$n" p50)" \
      "$(stat_of "$WORK/scale-nftmin-$n" p50)" "$(calc "${SCALE_STATUS[$n]}")" "$(calc "${SCALE_LIST[$n]}")" "${SCALE_RSS[$n]}" "${SCALE_CHAINS[$n]}"
  done)

- Total to apply $SCALE_MAX projects: $(awk '{ s += $NF } END { printf "%.1f", s / 1000 }' "$WORK"/scale-new-*) s of Apply calls;
  per project $(cat "$WORK"/scale-new-* | stats /dev/stdin | awk '{ print $7 }') ms on average.
- Does a change slow with N? change of project 1 at $SCALE_MAX projects / at 1 project:
  $(calc "$(stat_of "$WORK/scale-change-$SCALE_MAX" p50) / $(stat_of "$WORK/scale-change-1" p50)")x over D-Bus,
  $(calc "$(stat_of "$WORK/scale-nft-$SCALE_MAX" p50) / $(stat_of "$WORK/scale-nft-1" p50)")x for raw nft of the same batch.
  Last 10 new projects / projects 2-10 (mean): $(calc "$(stat_of "$WORK/scale-last10-$SCALE_MAX" mean) / $(stat_of "$WORK/scale-new-10" mean)")x.
- Why \`nft\` slows, and why the daemon no longer does: the raw nft columns grow with N while
  the kernel's work does not (a change still touches one table). It is the \`nft\` binary:
  before running any batch, even the empty
  one that only creates and deletes a scratch table, nft 1.0.6 reads the whole ruleset over
  netlink into its cache, so every run costs O(all tables). Tried by hand on 300 tables in a
  scratch netns (2026-12-01): a batch of a lone \`add table\` is the only shape that skips
  the cache; one \`add chain\`, \`add set\`, \`flush table\` or \`delete table\` fetches
  everything, in JSON and native syntax alike, so no reshaping of the batch helps. Where
  that time goes (strace of \`nft add chain\` at 300 tables, 2026-12-02): the table dump itself
  is one 17 KB netlink answer in under 1 ms; then nft spends most of a second in its own
  code before sending the batch, with ~1,200 mmap/munmap pairs, about four per table: the
  per-table cache nft builds. A shared-table layout is worse: one table holding 500
  projects' chains and sets (jumps through \`iifname\` verdict maps) made a one-project change
  cost 1.4-1.8 s, because nft then fetches the elements of every set in the table (~5,500
  requests). With nft 1.0.6 every run costs O(everything), whatever the layout. The same $SCALE_MAX tables loaded
  without the \`deny4\`/\`deny6\` interval sets (and the rules using them) still cost
  $(stat_of "$WORK/nosets-nftmin" p50) ms per empty batch (with them: $(stat_of "$WORK/scale-nftmin-$SCALE_MAX" p50) ms): the apply cost is the table
  count, not the sets. *Listing* is the sets: \`nft -j list tables\` took $(calc "$NOSETS_LIST / 1000") s without
  them. List, the start-up/\`--reapply\` sweep and uninstall need every table's name, so they
  read the names with one table-only nf_tables netlink dump (\`NFT_MSG_GETTABLE\`, no sets):
  List took $(calc "${SCALE_LIST[$SCALE_MAX]} / 1000") s at $SCALE_MAX projects (it still reads each project's saved spec and
  checks its table). Status and a new project's Apply (its ownership check) ask for the one
  table by a netlink request; verify's probe calls still list the project's own table with
  \`nft -j list table inet alca-<id>\`, which nft serves from that table alone. Start-up
  re-applies every saved spec, one netlink transaction each, with no bus or polkit call.
- Goal "applying project N does not slow with N": $(verdict "$(stat_of "$WORK/scale-change-$SCALE_MAX" p50) <= 1.5 * $(stat_of "$WORK/scale-change-1" p50)")
  (taken as: change of project 1 at $SCALE_MAX projects within 1.5x of its cost at 1 project).
  How it holds: the daemon sends each batch to nf_tables over netlink itself
  (\`alca-kernel/src\`: NEWTABLE/DELTABLE/NEWSET/NEWSETELEM/NEWCHAIN/NEWRULE messages in one
  transaction, which needs no cache), encoded the way nft 1.0.6 encodes the same JSON;
  \`tests/tests/netlink_ruleset.rs\` loads every golden batch both ways and compares nft's
  listings of the two tables, down to each kernel expression. The verification's element
  batches (arm, disarm, forget) go the same way. A batch the encoder does not know still
  goes through \`nft\` (with a warning in the daemon's log).
- Daemon RSS: $SCALE_RSS_BEFORE KiB before, ${SCALE_RSS[$SCALE_MAX]} KiB at $SCALE_MAX projects (peak VmHWM
  $SCALE_RSS_PEAK KiB), $SCALE_RSS_AFTER KiB after removing them (read from /proc/<pid>/status).
- Removing all $SCALE_MAX over D-Bus: $SCALE_REMOVE_WALL s.

### The kernel's 1024 hooks per hook point

Each isolated project's table \`inet alca-<id>\` has one filter base chain at prerouting
(priority -160); a project with \`network.proxy\` has a second one there (nat, -110). An \`inet\`
base chain registers a hook in both the IPv4 and the IPv6 prerouting lists, and the kernel
refuses more than 1024 entries per list (\`MAX_HOOK_COUNT\`, E2BIG), counting every other user
of that hook point too (iptables-nft's \`nat PREROUTING\`, conntrack, defrag, …).

Measured with the $SCALE_MAX projects applied: a probe table took $HOOK_PROBE_ADDED more prerouting
base chains before the kernel refused one; at that point nft listed $HOOK_CHAINS_AT_LIMIT
prerouting base chains (ip + inet), so ~$((1024 - HOOK_CHAINS_AT_LIMIT)) hooks on this host
belong to netfilter itself and Docker. nft said: \`${HOOK_ERROR:-(no error: the probe stopped at its bound)}\`.
Apply of one more project at the limit $HOOK_APPLY_AT_LIMIT — it fails closed: nothing
changes, and \`alca up\` refuses to start the container.

So one host holds at most ~$((SCALE_MAX + HOOK_PROBE_ADDED)) isolated projects without a proxy and
~$(((SCALE_MAX + HOOK_PROBE_ADDED) / 2)) with one. Docker runs out well before that: each project has a
bridge network of its own, and with its default address pools (no \`default-address-pools\`
in daemon.json) docker created $POOL_NETWORKS more bridge networks on this host before it refused
one (\`${POOL_ERROR:-no error: the probe stopped at its bound}\`). The smaller of the two limits is
the one that binds; past the hook limit, an Apply fails closed with a message that names it. The per-packet cost grows with N too: every packet at
prerouting walks every project's base chain (one \`iifname\` compare each) before reaching its own.

What the current design does: one table per project, so a change is one atomic transaction
touching only that project's table, ownership lives in the table, and removal is one
\`delete table\`. What it would take to lift the limit: one shared table \`inet alca\` with a
single base chain per hook (filter and nat prerouting) whose only rule is
\`iifname vmap @projects\` (a verdict map from bridge name to \`jump p-<id>\`), and per-project
regular chains \`p-<id>\`/\`proxy-<id>\` in that table. A change then replaces that project's
chains and its map element in one transaction (still touching nothing of other projects),
hooks stay constant (2 per hook point), and dispatch is one hash lookup per packet instead of N
compares. The cost: ownership moves from the table's \`owner\` set to a per-project element
(e.g. a map keyed by project), the "only \`alca-\` tables" check becomes "only this project's
chains and elements", and restore/sweep work per chain. Through \`nft\` 1.0.6 each run in such
a table fetched every set's elements (the experiment in the scale section); now that the
daemon writes its batches over netlink that cost is gone, and what remains is that redesign
(ownership, the live check and the probes per project chain instead of per table), not done
yet. Until then the limit fails closed and says so: an Apply the kernel refuses with E2BIG
is reported as the hook limit, with what to do (remove unused projects).

## \`internet-access\`: set updates and per-packet cost (bench/internet.sh)

$(cat "$WORK/internet.txt")

## CLI start-up and binary sizes (hyperfine, 300 runs, no shell)

| Command | median | min |
|---|---|---|
$(jq -r '.results[] | "| `\(.command | split("/") | last)` | \(.median * 1000 * 100 | round / 100) ms | \(.min * 1000 * 100 | round / 100) ms |"' "$WORK/startup.json")

The machine is shared with other builds, so medians move with the load (\`/bin/true\` runs
last); the minimum is the quiet-machine figure.

Binary sizes (release, stripped): \`alca\` $(calc "$SIZE_ALCA / 1048576") MiB ($SIZE_ALCA bytes),
\`alca-netd\` $(calc "$SIZE_NETD / 1048576") MiB ($SIZE_NETD bytes).

## File isolation: filtered view against a bind mount (bench/exclude.sh)

Inside real containers: \`alca up\` (the view) against the same container on a bind mount.

$(cat "$WORK/exclude.txt")
$(sed 1d "$REPO/bench/exclude-levers.md")
EOF
}
