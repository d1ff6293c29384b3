# Helpers shared by bench/run.sh and bench/netd.sh (sourced, not run): timing, statistics,
# running as the unprivileged bench user, and reading the daemon's memory.
# Expects WORK (scratch directory) and BENCH_USER to be set by the caller.

export LC_ALL=C

# Runs "$@" as BENCH_USER with its groups (alcatraz, docker) and a scratch HOME; no PAM
# session, so the wrapper adds only an exec (~1 ms) to what it runs.
as_user() {
  setpriv --reuid="$BENCH_USER" --regid="$BENCH_USER" --init-groups \
    env HOME="$WORK/home" XDG_STATE_HOME="$WORK/home/.state" "$@"
}

# Prints the milliseconds "$@" took; its output is discarded, a failure shows its stderr and
# fails the caller.
ms() {
  local t0=$EPOCHREALTIME
  if ! "$@" > /dev/null 2> "$WORK/last.err"; then
    echo "bench: failed: $*" >&2
    cat "$WORK/last.err" >&2
    return 1
  fi
  awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f\n", (b - a) * 1000 }'
}

# Reads numbers (one a line, last field) from FILE and prints "n min p50 p90 p99 max mean"
# (nearest-rank percentiles, milliseconds with one decimal).
stats() {
  awk '{ print $NF }' "$1" | sort -n | awk '
    { v[NR] = $1; sum += $1 }
    function pct(p,   i) { i = int(p * NR + 0.999999); if (i < 1) i = 1; return v[i] }
    END {
      if (NR == 0) { print "0 0 0 0 0 0 0"; exit }
      printf "%d %.1f %.1f %.1f %.1f %.1f %.1f\n", NR, v[1], pct(0.5), pct(0.9), pct(0.99), v[NR], sum / NR
    }'
}

# One field of `stats FILE`: n min p50 p90 p99 max mean.
stat_of() {
  local field
  case $2 in
    n) field=1 ;; min) field=2 ;; p50) field=3 ;; p90) field=4 ;; p99) field=5 ;; max) field=6 ;; mean) field=7 ;;
  esac
  stats "$1" | awk -v f="$field" '{ print $f }'
}

# awk arithmetic on its arguments: calc "a / b" → a number with two decimals.
calc() { awk "BEGIN { printf \"%.2f\", $1 }"; }

# "met" or "NOT met" for an awk condition.
verdict() { awk "BEGIN { print (($1) ? \"met\" : \"NOT met\") }"; }

# PID of the process owning the daemon's bus name (empty if none).
daemon_pid() {
  dbus-send --system --print-reply --dest=org.freedesktop.DBus / \
    org.freedesktop.DBus.GetConnectionUnixProcessID string:io.github.alcatraz.Netd1 2> /dev/null |
    awk '/uint32/ { print $2 }'
}

# Resident memory of the daemon in KiB, from /proc/<pid>/status (VmRSS; VmHWM with "peak").
daemon_rss_kib() {
  local pid key=VmRSS
  [ "${1:-}" = peak ] && key=VmHWM
  pid=$(daemon_pid)
  [ -n "$pid" ] || { echo "?"; return; }
  awk -v k="$key:" '$1 == k { print $2 }' "/proc/$pid/status"
}

# Base chains hooked at prerouting that the IPv4 hook point carries (families ip and inet).
prerouting_chains() {
  nft -j list chains | jq '[.nftables[] | .chain? | select(. != null and .hook == "prerouting"
    and (.family == "ip" or .family == "inet"))] | length'
}
