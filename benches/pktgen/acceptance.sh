#!/usr/bin/env bash
# The DPDK acceptance run on one box, no NIC, no hugepages: pshim6-pktgen searches the no-drop
# rate over two memif links (a) through dpdk-testpmd in `io` forward mode (the baseline: a
# DPDK forwarder doing nothing per packet) and (b) through `pshim6 run` on the DPDK backend,
# each in its own process with its own --file-prefix. Prints one JSON line:
#   {"baseline": <pktgen report>, "pshim6": <pktgen report>, "ratio": no-drop pshim6 / baseline,
#    "flat_out_ratio": received Mpps flat out, pshim6 / baseline,
#    "pshim6_report": "<pshim6's exit counters>"}
#
# Environment (defaults in brackets):
#   PSHIM6, PKTGEN   the binaries [$CARGO_TARGET_DIR or target]/release/{pshim6,pshim6-pktgen]
#   SIZE [78]  CONTEXTS [1000]  TRIAL_SECS [2] per trial  STEPS [8]  TOLERANCE [0]
#   GEN_CORE [0]  FWD_CORE [1]  the generator's lcore, the forwarder's (testpmd's forwarding
#                 lcore, pshim6's worker)
# Build first: cargo build --release -p pshim6 -p pshim6-pktgen --features dpdk
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
tgt=${CARGO_TARGET_DIR:-$root/target}
PSHIM6=${PSHIM6:-$tgt/release/pshim6}
PKTGEN=${PKTGEN:-$tgt/release/pshim6-pktgen}
SIZE=${SIZE:-78}
CONTEXTS=${CONTEXTS:-1000}
TRIAL_SECS=${TRIAL_SECS:-2}
STEPS=${STEPS:-8}
TOLERANCE=${TOLERANCE:-0}
GEN_CORE=${GEN_CORE:-0}
FWD_CORE=${FWD_CORE:-1}
for b in "$PSHIM6" "$PKTGEN"; do
  [ -x "$b" ] || { echo "acceptance.sh: $b missing; build with --features dpdk" >&2; exit 1; }
done
command -v dpdk-testpmd >/dev/null || { echo "acceptance.sh: dpdk-testpmd missing (Debian package dpdk-dev)" >&2; exit 1; }

work=$(mktemp -d /tmp/pshim6-accept.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  sleep 0.5
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
in_sock=$work/in.sock
out_sock=$work/out.sock

# The memif client connects once, when its port starts: wait until the server's ports are
# started (its log says so) and its sockets exist.
wait_ready() {  # $1: pid of the server, $2: its log, $3: the line that says its ports started
  for _ in $(seq 300); do
    if [ -S "$in_sock" ] && [ -S "$out_sock" ] && grep -q "$3" "$2"; then
      sleep 0.2
      return 0
    fi
    kill -0 "$1" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# Runs the generator against the server $2 (pid), writing its report to $3; the server is
# stopped while the generator still holds its memif links (DPDK 22.11's memif server can
# crash when a client disconnects), then the generator exits.
gen() {  # $1: file prefix, $2: server pid, $3: report file
  "$PKTGEN" run --hold-secs 30 --search --steps "$STEPS" --seconds "$TRIAL_SECS" --tolerance "$TOLERANCE" \
    --size "$SIZE" --contexts "$CONTEXTS" --inside net_memif0 --outside net_memif1 \
    --eal "-l $GEN_CORE --no-huge -m 512 --no-pci --file-prefix $1 --log-level=error \
      --vdev=net_memif0,role=client,socket=$in_sock,socket-abstract=no --vdev=net_memif1,role=client,socket=$out_sock,socket-abstract=no" >"$3" &
  local g=$!
  until [ -s "$3" ]; do
    kill -0 "$g" 2>/dev/null || break
    sleep 0.2
  done
  kill -INT "$2" 2>/dev/null || true
  wait "$2" 2>/dev/null
  local server_rc=$?
  kill -INT "$g" 2>/dev/null || true
  wait "$g" 2>/dev/null || true
  [ -s "$3" ] || return 1
  return "$server_rc"
}

# (a) testpmd io forward: memif0 <-> memif1 on one forwarding lcore.
dpdk-testpmd -l "$GEN_CORE,$FWD_CORE" --no-huge -m 512 --no-pci --file-prefix "tp$$" --log-level=error \
  --vdev="net_memif0,role=server,socket=$in_sock,socket-abstract=no" --vdev="net_memif1,role=server,socket=$out_sock,socket-abstract=no" \
  -- --forward-mode=io --auto-start --stats-period=60 --nb-cores=1 --no-mlockall \
  --rxd=1024 --txd=1024 --total-num-mbufs=16384 </dev/null >"$work/testpmd.log" 2>&1 &
pids+=($!)
tp=$!
wait_ready "$tp" "$work/testpmd.log" "start packet forwarding" || { echo "testpmd did not start:" >&2; tail -20 "$work/testpmd.log" >&2; exit 1; }
gen "gb$$" "$tp" "$work/baseline.json" || true
[ -s "$work/baseline.json" ] || { echo "testpmd run failed:" >&2; tail -20 "$work/testpmd.log" >&2; exit 1; }
rm -f "$in_sock" "$out_sock"

# (b) pshim6 run on the DPDK backend, same links, worker on FWD_CORE.
cp "$root/crates/sim/keys/site-a.pem" "$work/site.pem"; chmod 600 "$work/site.pem"
sed -e "s|/tmp/pshim6-in.sock|$in_sock|; s|/tmp/pshim6-out.sock|$out_sock|" \
    -e "s|\"--file-prefix\", \"pshim6\"|\"--file-prefix\", \"ps$$\", \"--log-level=error\"|" \
    -e "s|^synthetic_contexts = .*|synthetic_contexts = $CONTEXTS|" \
    -e "s|^worker_cores = .*|worker_cores = [$FWD_CORE]|" \
    -e "s|\"-l\", \"0\"|\"-l\", \"$GEN_CORE\"|" \
    "$root/configs/dpdk-memif.toml" >"$work/pshim6.toml"
"$PSHIM6" run --config "$work/pshim6.toml" >"$work/pshim6.out" 2>"$work/pshim6.err" &
pids+=($!)
ps=$!
wait_ready "$ps" "$work/pshim6.err" "port net_memif1: link" || { echo "pshim6 run did not start:" >&2; cat "$work/pshim6.err" >&2; exit 1; }
gen "gp$$" "$ps" "$work/pshim6.json" || { echo "pshim6 run failed:" >&2; cat "$work/pshim6.err" >&2; exit 1; }

python3 - "$work/pshim6.out" "$work/baseline.json" "$work/pshim6.json" <<'PY'
import json, sys
out, b, p = (open(f).read() for f in sys.argv[1:4])
b, p = json.loads(b), json.loads(p)
ratio = p["no_drop_mpps"] / b["no_drop_mpps"] if b["no_drop_mpps"] > 0 else 0.0
# Throughput flat out (first trial: as fast as the ports take), received frames per second.
fb, fp = b["trials"][0]["received_mpps"], p["trials"][0]["received_mpps"]
flat = fp / fb if fb > 0 else 0.0
print(json.dumps({"baseline": b, "pshim6": p, "ratio": ratio, "flat_out_ratio": flat,
                  "pshim6_report": out}))
PY
