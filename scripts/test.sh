#!/usr/bin/env bash
# The whole test suite, set-up included: installs what a fresh machine lacks,
# checks formatting, then builds and runs every crate's tests with every feature
# the project ships (the polars `stats` feature included).
#
# Root, BPF, tracefs, netns and qemu-guest tests run when they can; with CI=true a
# missing capability fails them instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh test

cargo fmt --all -- --check
cargo test --workspace --features xskdbg/stats --no-fail-fast "$@"
