#!/usr/bin/env bash
# The project resolver's added latency (network.internet-access) against asking the same
# upstream directly, p50 and p99, loopback only (an in-process .test zone server); no root, no
# lock needed. Usage: bash bench/dns.sh [QUERIES]   (default 2000)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --release -q -p alca-dns --example resolver_latency -- "${1:-2000}"
