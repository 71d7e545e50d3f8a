#!/usr/bin/env bash
# The README's test command: installs what the tests need, then runs every check CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/deps.sh

# A CI run builds from scratch once: incremental caches would only cost disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
# The DPDK backend is tested in the same build as everything else: a separate `-p ... --features
# dpdk` build would resolve features differently (bindgen's syn features reach every proc-macro)
# and compile the whole dependency tree a second time.
dpdk=(--features pshim6-dataplane/dpdk,pshim6/dpdk,pshim6-pktgen/dpdk)

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo clippy (feature dpdk)"
cargo clippy --workspace --all-targets --locked "${dpdk[@]}" -- -D warnings
echo "== cargo test (with the DPDK backend: EAL on virtual devices, no hugepages; pktgen over memif)"
cargo test --workspace --locked --no-fail-fast "${dpdk[@]}" 2>&1 | tee /tmp/pshim6-test.log
echo "== cargo fuzz (bounded)"
bash ci/fuzz.sh
echo "== summary"
awk '/^test result:/ { p += $4; f += $6; i += $8 } END { printf "%d passed, %d failed\n", p, f }' /tmp/pshim6-test.log
