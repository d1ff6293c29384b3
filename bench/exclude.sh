#!/usr/bin/env bash
# Benchmark (not a test): create, stat and read N files (default 10,000), then `git add`+commit
# and `git status` (3 runs) on that tree, through alca's FUSE filtered view and through a plain
# bind mount of the same directory, and print the ratios.
# Usage: bench/exclude.sh [path/to/alca]   (env: N=files). Root uses a real bind mount; other
# users compare against the source path itself (same filesystem, same cost as a bind mount).
set -euo pipefail
N=${N:-10000}
cd "$(dirname "$0")/.."
ALCA=${1:-}
if [ -z "$ALCA" ]; then
  for c in target/release/alca target/debug/alca target-*/release/alca target-*/debug/alca; do
    [ -x "$c" ] && { ALCA=$c; break; }
  done
fi
[ -n "$ALCA" ] && [ -x "$ALCA" ] || { echo "bench/exclude.sh: build alca first (cargo build -p alca)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/alca-bench-XXXXXX)
SERVER=""
cleanup() {
  fusermount3 -u "$WORK/state/mnt" 2>/dev/null || umount "$WORK/state/mnt" 2>/dev/null || true
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null || true
  mountpoint -q "$WORK/bind" 2>/dev/null && umount "$WORK/bind"
  rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$WORK/src" "$WORK/state/mnt" "$WORK/bind"
printf '{"source":"%s","mountpoint":"%s","patterns":["**/.env","**/secrets/","**/*.key","node_modules/"]}\n' \
  "$WORK/src" "$WORK/state/mnt" > "$WORK/state/view.json"
"$ALCA" __serve-view "$WORK/state" > "$WORK/ready" 2> "$WORK/server.log" &
SERVER=$!
for _ in $(seq 1 100); do grep -q ready "$WORK/ready" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$WORK/ready" || { echo "view did not start:"; cat "$WORK/server.log"; exit 1; }
if [ "$(id -u)" = 0 ]; then mount --bind "$WORK/src" "$WORK/bind"; BIND=$WORK/bind; else BIND=$WORK/src; fi

now() { date +%s%N; }
# Prints the seconds one phase took on directory $1.
phase() {
  local dir=$1 what=$2 t0 t1
  t0=$(now)
  case $what in
    create) for ((i = 0; i < N; i++)); do echo "file $i" > "$dir/f$i"; done ;;
    stat)   find "$dir" -type f -printf '%s\n' > /dev/null ;;
    read)   find "$dir" -type f -print0 | xargs -0 cat > /dev/null ;;
    git-add) git -C "$dir" init -q && git -C "$dir" add -A &&
             git -C "$dir" -c user.name=bench -c user.email=bench@invalid commit -qm tree ;;
    git-status) for _ in 1 2 3; do git -C "$dir" status --porcelain > /dev/null; done ;;
  esac
  t1=$(now)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'
}

mkdir "$BIND/b" "$WORK/state/mnt/v"
printf '%-10s %10s %10s %8s\n' phase "bind (s)" "view (s)" ratio
export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=safe.directory GIT_CONFIG_VALUE_0='*'
for what in create stat read git-add git-status; do
  b=$(phase "$BIND/b" "$what")
  v=$(phase "$WORK/state/mnt/v" "$what")
  printf '%-10s %10s %10s %7sx\n' "$what" "$b" "$v" "$(awk -v v="$v" -v b="$b" 'BEGIN { printf "%.1f", v / (b + 0.001) }')"
done
echo "($N files each; git-status = 3 runs on the committed tree; view = FUSE filtered view (100 ms TTLs), bind = plain bind mount)"
