#!/usr/bin/env bash
# The README's main command: from a fresh machine to a finished run of the main job on the
# embedded default (no NIC, no DPDK): two simulated multihomed sites running the pshim6 engines,
# every scenario, each capture checked by tshark.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/deps.sh
cargo build --release --locked -p pshim6
bin="${CARGO_TARGET_DIR:-target}/release/pshim6"
out="${PSHIM6_OUT:-/tmp/pshim6-main}"
mkdir -p "$out"
status=0
for sc in handshake recovery update failover local-down simultaneous host-peer; do
  if "$bin" simulate --scenario "$sc" --pcap "$out/$sc.pcap" --json > "$out/$sc.json"; then
    echo "ok   $sc: $(cat "$out/$sc.json" | head -c 300)..."
  else
    echo "FAIL $sc: $(cat "$out/$sc.json")"
    status=1
  fi
  total=$(tshark -r "$out/$sc.pcap" 2>/dev/null | wc -l)
  good=$(tshark -r "$out/$sc.pcap" -Y 'shim6.p == 0 && shim6.checksum.status == 1' 2>/dev/null | wc -l)
  payload=$(tshark -r "$out/$sc.pcap" -Y 'shim6.p == 1' 2>/dev/null | wc -l)
  echo "     tshark: $total frames: $good control messages with a Good checksum, $payload payload packets with the Shim6 header"
done
echo "captures and reports in $out"
exit $status
