#!/usr/bin/env bash
# Builds both canisters for wasm32 in release (BLAKE3 with its wasm SIMD path) and writes
#   target/wasm/backend.wasm.gz   target/wasm/personal.wasm.gz
# Installs the wasm32 target when missing. Never rewrites the committed .did files: the tests
# check them against the code.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    echo "build: installing the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
fi

# +simd128 comes from .cargo/config.toml; the `simd` feature of blobstore (on for wasm32 in the
# canisters' manifests) turns on BLAKE3's wasm SIMD path.
cargo build --release --locked --target wasm32-unknown-unknown -p backend -p personal

mkdir -p target/wasm
for canister in backend personal; do
    src="target/wasm32-unknown-unknown/release/${canister}.wasm"
    dst="target/wasm/${canister}.wasm.gz"
    gzip -9 -n -c "$src" > "$dst.tmp"
    mv "$dst.tmp" "$dst"
    printf 'build: %-28s %9d bytes (%d bytes uncompressed)\n' "$dst" "$(stat -c %s "$dst")" "$(stat -c %s "$src")"
done
