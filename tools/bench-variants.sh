#!/usr/bin/env bash
# `make bench`'s other builds of create (README, "Benchmark", "Decisions"; tests/bench.rs,
# DECISIONS), made before the default build, which stays in target/release. Each piece of our
# own that the maintained code replaced is measured as it was decided, from the commit that
# last had it:
#
# - target/bench/own-client/create: create at OWN, the last commit with our HTTP client under
#   the DynamoDB SDK (`https::sdk_client`); this tree's create, on the SDK's own client, is the
#   other side of that decision.
# - target/bench/decided/create[+<feature>]: both sides of each decision before it, from
#   DECIDED, with its `bench-*` features.
#
# Everything builds in this tree's target directory, so the dependencies are compiled once.
set -euo pipefail
cd "$(dirname "$0")/.."
OWN=8f4913ea2d5206ad38d849979253fc775478af5f
DECIDED=87aef5518a844dadf6406a8ada14e67b889c32ea
target=$PWD/target

# create from commit $1's tree (unpacked once under target/bench-src), with feature
# sandbox/bench-$2 unless $2 is empty, copied to target/bench/$3.
build_from() {
    local commit=$1 feature=$2 out=target/bench/$3
    local src=target/bench-src/$commit
    if [ ! -f "$src/Cargo.toml" ]; then
        rm -rf "$src"
        mkdir -p "$src"
        git archive "$commit" | tar -x -C "$src"
    fi
    (cd "$src" && CARGO_TARGET_DIR=$target cargo build --release --quiet -p create \
        ${feature:+--features sandbox/bench-$feature})
    mkdir -p "$(dirname "$out")"
    cp target/release/create "$out"
}

build_from "$OWN" "" own-client/create
for variant in "" real-warm-up no-warm-up own-verifier webpki-roots no-graph-ahead; do
    build_from "$DECIDED" "$variant" "decided/create${variant:++$variant}"
done
