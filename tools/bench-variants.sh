#!/usr/bin/env bash
# `make bench`'s other builds of create (README, "Benchmark", "Decisions"; tests/bench.rs,
# DECISIONS), made before the default build, which stays in target/release:
#
# - target/bench/create+sdk-client: this tree's create with the SDK's own HTTP client, the
#   maintained alternative to our piece that stayed (`https::sdk_client`).
# - target/bench/decided/create[+<feature>]: the pieces the maintained code replaced, measured
#   as they were decided: both sides of each of those decisions are built from the commit
#   that last had them all (DECIDED), with its `bench-*` features.
#
# Everything builds in this tree's target directory, so the dependencies are compiled once.
set -euo pipefail
cd "$(dirname "$0")/.."
DECIDED=87aef5518a844dadf6406a8ada14e67b889c32ea
target=$PWD/target
mkdir -p target/bench/decided

cargo build --release --quiet -p create --features sandbox/bench-sdk-client
cp target/release/create target/bench/create+sdk-client

src=target/bench-src/$DECIDED
if [ ! -f "$src/Cargo.toml" ]; then
    rm -rf "$src"
    mkdir -p "$src"
    git archive "$DECIDED" | tar -x -C "$src"
fi
for variant in "" real-warm-up no-warm-up own-verifier webpki-roots no-graph-ahead; do
    (cd "$src" && CARGO_TARGET_DIR=$target cargo build --release --quiet -p create \
        ${variant:+--features sandbox/bench-$variant})
    cp target/release/create "target/bench/decided/create${variant:++$variant}"
done
