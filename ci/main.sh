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
# The lab (issue #7): two multihomed sites of unmodified Linux hosts in network namespaces
# behind `pshim6 run` proxies; live TCP across a provider failure found by REAP, a local
# link-down, and NATv6 to a legacy host. Needs root (as this script does).
echo "== pshim6 lab (timeline in $out/lab.log)"
if "$bin" lab --scenario all --json > "$out/lab.json" 2> "$out/lab.log"; then
  echo "ok   lab"
else
  echo "FAIL lab"
  tail -n 30 "$out/lab.log"
  status=1
fi
cat "$out/lab.json"
echo "captures and reports in $out (lab captures and proxy logs in /tmp/pshim6-lab)"
exit $status
