#!/usr/bin/env bash
# The README's test command: installs what the tests need, then runs every check CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/deps.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo clippy (feature dpdk)"
cargo clippy -p pshim6-dataplane -p pshim6 -p pshim6-pktgen --features dpdk --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked --no-fail-fast 2>&1 | tee /tmp/pshim6-test.log
echo "== cargo test (feature dpdk: EAL on virtual devices, no hugepages)"
cargo test -p pshim6-dataplane --features dpdk --locked --test dpdk_backend --test dpdk_afpacket --test dpdk_bench 2>&1 | tee -a /tmp/pshim6-test.log
cargo test -p pshim6 --features dpdk --locked --test bench_dpdk 2>&1 | tee -a /tmp/pshim6-test.log
echo "== pktgen over memif: testpmd io forward and pshim6 run on DPDK (short acceptance run)"
cargo build -p pshim6 --features dpdk --locked
cargo test -p pshim6-pktgen --features dpdk --locked 2>&1 | tee -a /tmp/pshim6-test.log
echo "== cargo fuzz (bounded)"
bash ci/fuzz.sh
echo "== summary"
awk '/^test result:/ { p += $4; f += $6; i += $8 } END { printf "%d passed, %d failed\n", p, f }' /tmp/pshim6-test.log
