#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time (FUZZ_SECONDS each, default 15).
# cargo-fuzz needs nightly features: use the nightly toolchain when rustup has one, else let the
# stable compiler accept them (RUSTC_BOOTSTRAP=1), as the sanitizer runtimes ship with stable too.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs="${FUZZ_SECONDS:-15}"

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

targets=$(cargo "${toolchain[@]}" fuzz list)
for t in $targets; do
  mkdir -p "corpus/$t"
  echo "== fuzz $t for ${secs}s"
  cargo "${toolchain[@]}" fuzz run "$t" "corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=2048 2>&1 \
    | grep -E '^(#[0-9]+.*DONE|Done [0-9]+ runs|==[0-9]+==ERROR|SUMMARY|thread .* panicked)' || true
  # cargo fuzz exits non-zero on a crash; pipefail carries it here.
done
