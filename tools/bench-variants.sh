#!/usr/bin/env bash
# `make bench`'s other builds of create: one per `bench-*` feature of the shared crate, each the
# maintained alternative to a piece of our own or our own piece beside the maintained one
# (README, "Benchmark"; tests/bench.rs, DECISIONS). Each lands in target/bench/create+<name>;
# the default build, which `make bench` makes after these, stays in target/release.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p target/bench
for variant in sdk-client real-warm-up no-warm-up own-verifier webpki-roots no-graph-ahead; do
    cargo build --release --quiet -p create --features "sandbox/bench-$variant"
    cp target/release/create "target/bench/create+$variant"
done
