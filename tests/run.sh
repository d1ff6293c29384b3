#!/usr/bin/env bash
# Runs every test of the project on a fresh Debian 12 machine, as root.
# Brings up the real test environment first (packages, containerd+dockerd, podman, system D-Bus,
# polkitd, test images, the `lanhost` netns test host, the uplink guard), then the whole cargo suite.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

if [ "$(id -u)" != 0 ]; then
  echo "tests/run.sh: run as root (the end-to-end suites drive dockerd, nft, dbus-daemon and polkitd)" >&2
  exit 1
fi
command -v cargo >/dev/null || { echo "tests/run.sh: cargo not found; install a Rust toolchain (rustup) first" >&2; exit 1; }

bash tests/env/setup.sh
cargo build --workspace --all-targets
# The end-to-end suites run the freshly built binaries; suites that share the system bus daemon or the
# lanhost netns serialise themselves.
status=0
cargo test --workspace --no-fail-fast -- --test-threads="${ALCA_TEST_THREADS:-2}" || status=$?
# The .deb, built and installed on this machine, then purged (packaging/test-deb.sh).
bash packaging/test-deb.sh || status=$?
exit "$status"
