#!/usr/bin/env python3
"""Prints criterion results as a Markdown table with ratios to a baseline from the same run.

Usage: criterion_table.py CRITERION_DIR BASELINE BENCH [BENCH ...]
  CRITERION_DIR  target/criterion (or $CARGO_TARGET_DIR/criterion)
  BASELINE       bench id of the baseline, e.g. baseline/copy8
  BENCH          bench ids, e.g. payload_header/parse+emit

Each figure is criterion's mean point estimate (ns per iteration) of the latest run; the ratio
is that mean divided by the baseline's mean, so the machine's load largely cancels out.
"""
import json
import os
import sys


def mean_ns(root, bench):
    # A benchmark group "g" with function "f" is stored under root/g/f; a plain
    # `bench_function("a/b")` under root/a_b (criterion replaces the slash).
    for parts in (bench.split("/"), [bench.replace("/", "_")]):
        path = os.path.join(root, *parts, "new", "estimates.json")
        if os.path.exists(path):
            with open(path) as f:
                return json.load(f)["mean"]["point_estimate"]
    raise FileNotFoundError(bench)


def human(ns):
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.1f} ns"


def main():
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    root, baseline, benches = sys.argv[1], sys.argv[2], sys.argv[3:]
    base = mean_ns(root, baseline)
    print(f"| bench | mean | ratio to `{baseline}` ({human(base)}) |")
    print("|---|---|---|")
    for b in benches:
        try:
            m = mean_ns(root, b)
        except FileNotFoundError:
            print(f"| `{b}` | not run | |")
            continue
        print(f"| `{b}` | {human(m)} | {m / base:.1f}x |")


if __name__ == "__main__":
    main()
