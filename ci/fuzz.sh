#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time (FUZZ_SECONDS each, default 10: 13 targets,
# about 2 min of fuzzing after the build). Each starts from its seed corpus in
# fuzz/corpus/<target>/ (kept in the repo, written by `cargo run --example seed_corpora`);
# what the run discovers goes to a scratch directory, so the repo is not modified. Prints one
# line per target: executions, and the crash/OOM/timeout if any (the script then fails).
# cargo-fuzz needs nightly features: use the nightly toolchain when rustup has one, else let the
# stable compiler accept them (RUSTC_BOOTSTRAP=1), as the sanitizer runtimes ship with stable too.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs="${FUZZ_SECONDS:-10}"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "ci/fuzz.sh: installing cargo-fuzz"
  cargo install cargo-fuzz --locked --quiet
fi
toolchain=()
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  toolchain=(+nightly)
else
  export RUSTC_BOOTSTRAP=1
fi
# Fuzz builds use other flags (sanitizer, coverage) than the workspace build: give them their
# own directory, next to the workspace's target dir when CI keeps that outside the clone.
if [ -n "${FUZZ_TARGET_DIR:-}" ]; then
  export CARGO_TARGET_DIR="$FUZZ_TARGET_DIR"
elif [ -n "${CARGO_TARGET_DIR:-}" ]; then
  export CARGO_TARGET_DIR="$CARGO_TARGET_DIR/fuzz"
else
  export CARGO_TARGET_DIR="$PWD/target"
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cargo "${toolchain[@]}" fuzz build
targets=$(cargo "${toolchain[@]}" fuzz list)
failed=0
for t in $targets; do
  mkdir -p "$scratch/$t" "corpus/$t"
  log="$scratch/$t.log"
  if cargo "${toolchain[@]}" fuzz run "$t" "$scratch/$t" "corpus/$t" -- \
      -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 >"$log" 2>&1; then
    runs=$(grep -oE '^Done [0-9]+ runs' "$log" | grep -oE '[0-9]+' || echo '?')
    echo "fuzz $t: ${secs}s, $runs executions, 0 crashes"
  else
    failed=1
    echo "fuzz $t: FAILED"
    grep -E '==[0-9]+==ERROR|SUMMARY|panicked|Test unit written|libFuzzer: (timeout|out-of-memory)' "$log" || tail -n 30 "$log"
  fi
done
exit "$failed"
