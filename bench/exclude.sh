#!/usr/bin/env bash
# Benchmark (not a test): workspace I/O inside a real container, through alca's filtered view
# (`alca up` of a project with workdir_exclude) against the same container layout (image, user,
# capabilities, working directory) whose /workspace is a plain bind mount of an identical
# directory. Every phase runs on both sides back to back, bind and view alternating which goes
# first, ROUNDS times; the table gives medians and ratios (view / bind) against the issue #18
# goals. Times are taken inside the container (adjtimex, microseconds), so `docker exec` itself
# is not counted.
#   cold (≤ 2x): create N files (100 directories), first read of them (page cache dropped),
#     `git add -A` + commit of them, extraction of a tarball of 20,000 small files (`npm
#     install`-like), `git clone` of this project's own tree (a real repository);
#   warm (≤ 1.3x, second pass, timed after one untimed pass): stat of every file (`find
#     -size`), read of every file, a ripgrep-like `grep -r` of every file, `git status` (3
#     runs) on the N-file tree, and `git status` and `grep -r` on the cloned project.
# Usage (root, test env up: bash tests/env/setup.sh): bash bench/exclude.sh [path/to/alca]
# Env: N (10000), ROUNDS (3), BENCH_USER (alcatest, must be in group docker), COLD and WARM
# (the phases to run, space-separated; default all).
# Holds /tmp/alca-e2e.lock while it runs (docker is shared); drops the host's page cache
# before each cold phase.
set -euo pipefail
N=${N:-10000}
ROUNDS=${ROUNDS:-3}
BENCH_USER=${BENCH_USER:-alcatest}
IMAGE=alca-test/busybox-git:latest
cd "$(dirname "$0")/.."
REPO=$PWD
[ "$(id -u)" = 0 ] || { echo "bench/exclude.sh: run as root (bind mounts, drop_caches)" >&2; exit 1; }
ALCA=${1:-}
if [ -z "$ALCA" ]; then
  for c in target/release/alca target/debug/alca; do
    [ -x "$c" ] && { ALCA=$REPO/$c; break; }
  done
fi
[ -n "$ALCA" ] && [ -x "$ALCA" ] || { echo "bench/exclude.sh: build alca first (cargo build --release -p alca)" >&2; exit 1; }
ALCA=$(realpath "$ALCA")
command -v jq > /dev/null || apt-get install -y jq > /dev/null

if [ -z "${ALCA_BENCH_LOCKED:-}" ]; then
  exec 8> /tmp/alca-e2e.lock
  echo "bench: waiting for /tmp/alca-e2e.lock" >&2
  flock 8
fi

WORK=$(mktemp -d /tmp/alca-bench-excl-XXXXXX)
chmod 755 "$WORK"
VIEW_DIR=$WORK/view
BIND_DIR=$WORK/bind
BIND_CTR=alca-bench-bind-$$
VIEW_CTR=""
. bench/lib.sh

cleanup() {
  set +e
  docker rm -f "$BIND_CTR" > /dev/null 2>&1
  if [ -f "$VIEW_DIR/.alca/state.json" ]; then
    (cd "$VIEW_DIR" && as_user "$ALCA" down --force > /dev/null 2>&1)
  fi
  cd /
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- Set-up (untimed) ----------------------------------------------------------------------
mkdir -p "$VIEW_DIR" "$BIND_DIR" "$WORK/home/.state" "$WORK/pkg"
cat > "$VIEW_DIR/.alca.toml" << EOF
image = "$IMAGE"
runtime = "docker"
# Patterns that match nothing in this project (its examples/ hold .env files, which a view
# refuses to create): the clone phase must succeed on both sides.
workdir_exclude = ["/.env", "**/secrets/", "**/*.key", "node_modules/"]
[network]
lan-access = ["*"]
EOF
echo "SECRET=1" > "$VIEW_DIR/.env"
cp -a "$VIEW_DIR/.alca.toml" "$VIEW_DIR/.env" "$BIND_DIR/"
chown -R "$BENCH_USER:" "$WORK/view" "$WORK/bind" "$WORK/home"
(cd "$VIEW_DIR" && as_user "$ALCA" trust -y > /dev/null && as_user "$ALCA" up -q > /dev/null)
VIEW_CTR=alca-$(jq -r .id "$VIEW_DIR/.alca/state.json" | cut -c1-12)
docker inspect "$VIEW_CTR" > "$WORK/view.json"
# The bind side: the view container's user, capabilities, security options and working dir.
mapfile -t SAME < <(jq -r '.[0] | (.HostConfig.CapDrop // [] | .[] | "--cap-drop=\(.)"),
  (.HostConfig.CapAdd // [] | .[] | "--cap-add=\(.)"),
  (.HostConfig.SecurityOpt // [] | .[] | "--security-opt=\(.)"),
  (if .Config.User != "" then "--user=\(.Config.User)" else empty end),
  "--workdir=\(.Config.WorkingDir)"' "$WORK/view.json")
WORKDIR=$(jq -r '.[0].Config.WorkingDir' "$WORK/view.json")
docker run -d --name "$BIND_CTR" --network none "${SAME[@]}" -v "$BIND_DIR:$WORKDIR" "$IMAGE" \
  sleep 3600 > /dev/null

# 20,000 small files in 200 directories, like a node_modules tree; this project as a bundle.
for ((d = 0; d < 200; d++)); do
  mkdir -p "$WORK/pkg/p$d/lib"
  for ((f = 0; f < 100; f++)); do
    printf 'module.exports = function f%d_%d() { return %d; }\n' "$d" "$f" "$f" > "$WORK/pkg/p$d/lib/f$f.js"
  done
done
tar -cf "$WORK/pkg.tar" -C "$WORK/pkg" .
git -C "$REPO" bundle create -q "$WORK/project.bundle" HEAD
cat > "$WORK/phase.sh" << 'EOF'
# Runs one phase in the workspace and prints the microseconds it took.
now() { adjtimex | awk '/tv_sec/ { s = $2 } /tv_usec/ { u = $2 } END { printf "%d%06d\n", s, u }'; }
what=$1 r=$2 n=$3
case $what in
  stat|read|grep|git-status|repo-status|repo-grep) warm=1 ;;
  *) warm=0 ;;
esac
op() {
  case $what in
    create) i=0; while [ $i -lt 100 ]; do mkdir -p t$r/d$i || return 1; j=0
              while [ $j -lt $((n / 100)) ]; do echo "file $i $j" > t$r/d$i/f$j || return 1; j=$((j + 1)); done
              i=$((i + 1)); done ;;
    first-read|read) find t$r -type f -exec cat {} + > /dev/null ;;
    stat) find t$r -size +1000k > /dev/null ;;
    grep) grep -r -q NO_SUCH_TEXT_ANYWHERE t$r || true ;;
    git-commit) git -C t$r init -q && git -C t$r add -A && git -C t$r commit -qm tree ;;
    git-status) for k in 1 2 3; do git -C t$r status --porcelain > /dev/null; done ;;
    untar) mkdir x$r && tar -xf /tmp/pkg.tar -C x$r ;;
    clone) git clone -q /tmp/project.bundle repo$r ;;
    repo-status) git -C repo$r status --porcelain > /dev/null ;;
    repo-grep) grep -r -q NO_SUCH_TEXT_ANYWHERE repo$r || true ;;
  esac
}
# A phase that fails (a git error, a full disk) is reported, never timed as if it had run.
[ $warm = 1 ] && { op || { echo "phase $what failed (untimed pass)" >&2; exit 1; }; }
t0=$(now); op || { echo "phase $what failed" >&2; exit 1; }; t1=$(now)
echo $((t1 - t0))
EOF
for c in "$BIND_CTR" "$VIEW_CTR"; do
  docker cp -q "$WORK/phase.sh" "$c:/tmp/phase.sh"
  docker cp -q "$WORK/pkg.tar" "$c:/tmp/pkg.tar"
  docker cp -q "$WORK/project.bundle" "$c:/tmp/project.bundle"
done

COLD=${COLD-"create first-read git-commit untar clone"}
WARM=${WARM-"stat read grep git-status repo-status repo-grep"}
# One phase on one side; its seconds go to $WORK/<side>.<phase>.
run_phase() {
  local side=$1 what=$2 r=$3 ctr us
  ctr=$BIND_CTR
  [ "$side" = view ] && ctr=$VIEW_CTR
  case " $COLD " in *" $what "*) sync; echo 3 > /proc/sys/vm/drop_caches ;; esac
  us=$(docker exec -w "$WORKDIR" "$ctr" sh /tmp/phase.sh "$what" "$r" "$N")
  awk -v u="$us" 'BEGIN { printf "%.4f\n", u / 1e6 }' >> "$WORK/$side.$what"
}

START=$EPOCHREALTIME
for ((r = 0; r < ROUNDS; r++)); do
  echo "bench: round $((r + 1)) of $ROUNDS" >&2
  for what in $COLD $WARM; do
    if ((r % 2 == 0)); then
      run_phase bind "$what" "$r"; run_phase view "$what" "$r"
    else
      run_phase view "$what" "$r"; run_phase bind "$what" "$r"
    fi
  done
done
# The view really hid what it must, and the bind side really showed it.
docker exec -w "$WORKDIR" "$VIEW_CTR" sh -c '[ ! -e .env ]' || { echo "bench: .env visible in the view" >&2; exit 1; }
docker exec -w "$WORKDIR" "$BIND_CTR" sh -c '[ -e .env ]' || { echo "bench: bind side wrong" >&2; exit 1; }

median() { sort -n "$1" | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
printf '| phase | bind (s) | view (s) | ratio | goal | |\n|---|---|---|---|---|---|\n'
for what in $COLD $WARM; do
  b=$(median "$WORK/bind.$what")
  v=$(median "$WORK/view.$what")
  goal=2
  case " $WARM " in *" $what "*) goal=1.3 ;; esac
  ratio=$(awk -v v="$v" -v b="$b" 'BEGIN { printf "%.2f", v / b }')
  printf '| %s | %.3f | %.3f | %sx | ≤ %sx | %s |\n' "$what" "$b" "$v" "$ratio" "$goal" "$(verdict "$ratio <= $goal")"
done
printf '\n(%s files, %s rounds, medians; bind and view interleaved phase by phase, alternating which goes first; whole run %.0f s)\n' \
  "$N" "$ROUNDS" "$(awk -v a="$START" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }')"
