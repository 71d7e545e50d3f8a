#!/usr/bin/env bash
# The DPDK acceptance run on one box, no NIC, no hugepages: pshim6-pktgen searches the no-drop
# rate over two memif links (a) through dpdk-testpmd in `io` forward mode (the baseline: a
# DPDK forwarder doing nothing per packet) and (b) through `pshim6 run` on the DPDK backend,
# each in its own process with its own --file-prefix. (a) and (b) alternate ROUNDS times, so
# load from other processes hits both alike; the ratio is the median of the rounds' ratios.
# Every process is pinned: the generator (and the forwarders' main lcore / slow path) on
# GEN_CORE, the forwarding lcore / pshim6 worker on FWD_CORE.
#
# One command, on a quiet machine (builds the release binaries when they are missing):
#   bash benches/pktgen/acceptance.sh            # JSON on stdout, the ratio on stderr
#
# Prints one JSON line:
#   {"baseline": <last pktgen report vs testpmd>, "pshim6": <last pktgen report vs pshim6>,
#    "ratio": median over rounds of no-drop pshim6 / testpmd,
#    "flat_out_ratio": median over rounds of received Mpps flat out, pshim6 / testpmd,
#    "rounds": [{"testpmd_no_drop_mpps", "pshim6_no_drop_mpps", "ratio", "testpmd_flat_mpps",
#                "pshim6_flat_mpps", "flat_out_ratio"}, ...],
#    "load_before", "load_after": `uptime` load averages, "size", "contexts",
#    "pshim6_report": "<pshim6's exit counters, last round>"}
#
# Environment (defaults in brackets):
#   PSHIM6, PKTGEN   the binaries [$CARGO_TARGET_DIR or target]/release/{pshim6,pshim6-pktgen]
#   SIZE [78]  CONTEXTS [1000]  TRIAL_SECS [2] per trial  STEPS [8]  TOLERANCE [0]
#   GEN_CORE [0]  FWD_CORE [1]  the generator's lcore, the forwarder's (testpmd's forwarding
#                 lcore, pshim6's worker)
#   ROUNDS [3]    testpmd/pshim6 alternations (the figures are medians over them)
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
ROUNDS=${ROUNDS:-3}
if [ ! -x "$PSHIM6" ] || [ ! -x "$PKTGEN" ]; then
  if [ "$PSHIM6" = "$tgt/release/pshim6" ] && [ "$PKTGEN" = "$tgt/release/pshim6-pktgen" ]; then
    echo "acceptance.sh: building the release binaries (--features dpdk)" >&2
    (cd "$root" && cargo build --release -p pshim6 -p pshim6-pktgen --features dpdk) >&2
  fi
fi
for b in "$PSHIM6" "$PKTGEN"; do
  [ -x "$b" ] || { echo "acceptance.sh: $b missing; build with --features dpdk" >&2; exit 1; }
done
command -v taskset >/dev/null || { echo "acceptance.sh: taskset missing (Debian util-linux)" >&2; exit 1; }
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
  taskset -c "$GEN_CORE" "$PKTGEN" run --hold-secs 30 --search --steps "$STEPS" --seconds "$TRIAL_SECS" --tolerance "$TOLERANCE" \
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

# (a) testpmd io forward: memif0 <-> memif1 on one forwarding lcore. $1: round.
run_testpmd() {
  rm -f "$in_sock" "$out_sock"
  taskset -c "$GEN_CORE" dpdk-testpmd -l "$GEN_CORE,$FWD_CORE" --no-huge -m 512 --no-pci --file-prefix "tp$$" --log-level=error \
    --vdev="net_memif0,role=server,socket=$in_sock,socket-abstract=no" --vdev="net_memif1,role=server,socket=$out_sock,socket-abstract=no" \
    -- --forward-mode=io --auto-start --stats-period=60 --nb-cores=1 --no-mlockall \
    --rxd=1024 --txd=1024 --total-num-mbufs=16384 </dev/null >"$work/testpmd.log" 2>&1 &
  pids+=($!)
  local tp=$!
  wait_ready "$tp" "$work/testpmd.log" "start packet forwarding" || { echo "testpmd did not start:" >&2; tail -20 "$work/testpmd.log" >&2; return 1; }
  gen "gb$$" "$tp" "$work/baseline.$1.json" || true
  [ -s "$work/baseline.$1.json" ] || { echo "testpmd run failed:" >&2; tail -20 "$work/testpmd.log" >&2; return 1; }
}

# (b) pshim6 run on the DPDK backend, same links, worker on FWD_CORE. $1: round.
cp "$root/crates/sim/keys/site-a.pem" "$work/site.pem"; chmod 600 "$work/site.pem"
sed -e "s|/tmp/pshim6-in.sock|$in_sock|; s|/tmp/pshim6-out.sock|$out_sock|" \
    -e "s|\"--file-prefix\", \"pshim6\"|\"--file-prefix\", \"ps$$\", \"--log-level=error\"|" \
    -e "s|^synthetic_contexts = .*|synthetic_contexts = $CONTEXTS|" \
    -e "s|^worker_cores = .*|worker_cores = [$FWD_CORE]|" \
    -e "s|\"-l\", \"0\"|\"-l\", \"$GEN_CORE\"|" \
    "$root/configs/dpdk-memif.toml" >"$work/pshim6.toml"
run_pshim6() {
  rm -f "$in_sock" "$out_sock"
  taskset -c "$GEN_CORE" "$PSHIM6" run --config "$work/pshim6.toml" >"$work/pshim6.$1.out" 2>"$work/pshim6.err" &
  pids+=($!)
  local ps=$!
  wait_ready "$ps" "$work/pshim6.err" "port net_memif1: link" || { echo "pshim6 run did not start:" >&2; cat "$work/pshim6.err" >&2; return 1; }
  gen "gp$$" "$ps" "$work/pshim6.$1.json" || { echo "pshim6 run failed:" >&2; cat "$work/pshim6.err" >&2; return 1; }
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for r in $(seq "$ROUNDS"); do
  run_testpmd "$r" || exit 1
  run_pshim6 "$r" || exit 1
  echo "acceptance.sh: round $r/$ROUNDS done" >&2
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$work" "$ROUNDS" "$load_before" "$load_after" "$SIZE" "$CONTEXTS" <<'PY'
import json, statistics, sys
work, rounds, lb, la, size, contexts = sys.argv[1:7]
rows, b, p = [], None, None
for r in range(1, int(rounds) + 1):
    b = json.load(open(f"{work}/baseline.{r}.json"))
    p = json.load(open(f"{work}/pshim6.{r}.json"))
    # Flat out: the search's first trial, as fast as the ports take; received frames/s.
    fb, fp = b["trials"][0]["received_mpps"], p["trials"][0]["received_mpps"]
    rows.append({
        "testpmd_no_drop_mpps": b["no_drop_mpps"], "pshim6_no_drop_mpps": p["no_drop_mpps"],
        "ratio": p["no_drop_mpps"] / b["no_drop_mpps"] if b["no_drop_mpps"] > 0 else 0.0,
        "testpmd_flat_mpps": fb, "pshim6_flat_mpps": fp,
        "flat_out_ratio": fp / fb if fb > 0 else 0.0,
    })
ratio = statistics.median(x["ratio"] for x in rows)
flat = statistics.median(x["flat_out_ratio"] for x in rows)
out = open(f"{work}/pshim6.{rounds}.out").read()
print(json.dumps({"baseline": b, "pshim6": p, "ratio": ratio, "flat_out_ratio": flat,
                  "rounds": rows, "load_before": lb, "load_after": la, "size": size,
                  "contexts": int(contexts), "pshim6_report": out}))
print(f"pshim6 / testpmd io forward, no-drop rate over memif, size {size}: ratio {ratio:.2} "
      f"(median of {rounds} interleaved rounds: testpmd "
      f"{statistics.median(x['testpmd_no_drop_mpps'] for x in rows):.3} Mpps, pshim6 "
      f"{statistics.median(x['pshim6_no_drop_mpps'] for x in rows):.3} Mpps); flat-out ratio "
      f"{flat:.2}; load {lb} -> {la}", file=sys.stderr)
PY
