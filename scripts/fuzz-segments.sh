#!/usr/bin/env bash
# Fuzzes the segment parser for N seconds (default 30): any UTF-8 into `parse`, and whatever
# parses must read back from its canonical form to the same tree
# (fuzz/fuzz_targets/parse_segment.rs). Findings land in fuzz/artifacts/parse_segment/.
#
# Works on the stable toolchain: RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its nightly-only
# -Z flags. AddressSanitizer is used when the toolchain ships its runtime (rust-std does on
# x86_64 Linux), otherwise the target runs without a sanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-30}"
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-1}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz
fi

sanitizer=none
sysroot="$(rustc --print sysroot)"
host="$(rustc -vV | sed -n 's/^host: //p')"
if compgen -G "$sysroot/lib/rustlib/$host/lib/librustc-*_rt.asan.a" >/dev/null; then
    sanitizer=address
fi

cd fuzz
RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer "$sanitizer" parse_segment -- \
    -max_total_time="$seconds" -dict=parse_segment.dict
