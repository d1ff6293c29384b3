#!/usr/bin/env bash
# Records, once, what `nft --debug=netlink` prints for every golden ruleset of the compiler
# (alca-ruleset/tests/golden/*.json): libnftnl's text of each set, set element list, chain and
# rule nft would send for it. tests/nft_fixtures.rs renders the kernel writer's messages for the
# same rulesets in the same form and compares, without root. Re-run after an intended change to
# the compiler or the writer (and review the diff):
#     sudo bash alca-kernel/tests/record-fixtures.sh
# Needs root and nft. Runs `nft -c` (check mode: nothing is committed) in a network namespace of
# its own, created and deleted here, so no table of the host is read or touched.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
golden="$here/../../alca-ruleset/tests/golden"
out="$here/fixtures"
ns="alca-record-fixtures-$$"
ip netns add "$ns"
trap 'ip netns delete "$ns"' EXIT
mkdir -p "$out"
{
    echo "# nft --version: $(nft --version)"
    echo "# recorded by alca-kernel/tests/record-fixtures.sh with: nft -c --debug=netlink -j -f GOLDEN"
} > "$out/README"
for file in "$golden"/*.json; do
    name="$(basename "$file" .json)"
    ip netns exec "$ns" nft -c --debug=netlink -j -f "$file" > "$out/$name.txt"
done
