#!/usr/bin/env bash
# `make bench`'s other builds of create: one per `bench-*` feature of the shared crate, each the
# maintained alternative to a piece of our own or our own piece beside the maintained one
# (README, "Benchmark"; tests/bench.rs, DECISIONS). Each lands in target/bench/create+<name>;
# the default build, which `make bench` makes after these, stays in target/release. A name with
# `+` combines features: `sdk-client+no-warm-up` is the SDK's client without a warm-up.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p target/bench
for variant in sdk-client sdk-client+no-warm-up real-warm-up no-warm-up own-verifier webpki-roots \
    no-graph-ahead; do
    features=$(echo "$variant" | sed 's/^/sandbox\/bench-/; s/+/,sandbox\/bench-/g')
    cargo build --release --quiet -p create --features "$features"
    cp target/release/create "target/bench/create+$variant"
done
