#!/usr/bin/env bash
# Runs every test of the project on a fresh Debian 12 machine, as root.
# First proves README command 1 on the machine as nothing prepared it (tests/fresh-install.sh:
# examples/demo.sh and its --uninstall, after undoing what an earlier run left behind), then
# brings up the real test environment (packages, containerd+dockerd, podman, system D-Bus,
# polkitd, test images, the `lanhost` netns test host, the uplink guard), then the whole cargo
# suite, and ends with the summary of every test binary and the totals.
set -euo pipefail
cd "$(dirname "$0")/.."
# rustup's default place for root, and the one of the official rust images.
export PATH="${HOME:-/root}/.cargo/bin:/root/.cargo/bin:/usr/local/cargo/bin:$PATH"

if [ "$(id -u)" != 0 ]; then
  echo "tests/run.sh: run as root (the end-to-end suites drive dockerd, nft, dbus-daemon and polkitd)" >&2
  exit 1
fi
if ! command -v cargo >/dev/null; then
  echo "tests/run.sh: cargo not found; install a Rust toolchain for root first:" >&2
  echo "  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y" >&2
  exit 1
fi

# Before the test environment exists: a step the product forgets fails here, not hidden by setup.sh.
if bash tests/fresh-install.sh; then fresh=passed; else fresh=failed; fi
bash tests/env/setup.sh
cargo build --workspace --all-targets
# The end-to-end suites run the freshly built binaries; suites that share the system bus daemon or the
# lanhost netns serialise themselves.
LOG=$(mktemp /tmp/alca-test-run.XXXXXX)
trap 'rm -f "$LOG"' EXIT
set +e
cargo test --workspace --no-fail-fast -- --test-threads="${ALCA_TEST_THREADS:-2}" 2>&1 | tee "$LOG"
status=${PIPESTATUS[0]}
# The .deb, built and installed on this machine, then purged (packaging/test-deb.sh).
if bash packaging/test-deb.sh; then deb=passed; else deb=failed; status=1; fi
[ "$fresh" = passed ] || status=1
set -e

echo
echo "=== summary (cargo test --workspace) ==="
awk '
  /^     Running / { bin = $0; sub(/^ +Running /, "", bin) }
  /^   Doc-tests / { bin = "doc-tests " $2 }
  /^test result: / {
    printf "%s\n    %s\n", bin, $0
    for (i = 1; i <= NF; i++) {
      if ($(i+1) ~ /^passed/)  passed  += $i
      if ($(i+1) ~ /^failed/)  failed  += $i
      if ($(i+1) ~ /^ignored/) ignored += $i
    }
  }
  END {
    printf "tests/fresh-install.sh (examples/demo.sh on an unprepared machine)\n    %s\n", fresh
    if (fresh == "passed") passed++; else failed++
    printf "packaging/test-deb.sh\n    %s\n", deb
    if (deb == "passed") passed++; else failed++
    printf "(%d ignored)\nTOTAL: %d passed, %d failed\n", ignored, passed, failed
  }
' deb="$deb" fresh="$fresh" "$LOG"
exit "$status"
