#!/usr/bin/env bash
# Builds both canisters for wasm32 in release (BLAKE3 with its wasm SIMD path) and writes
#   target/wasm/personal.wasm.gz      the personal canister
#   target/wasm/backend.wasm.gz       the backend, with the personal-canister factory (embeds the above)
#   target/wasm/backend-core.wasm.gz  the backend without the factory
#   target/wasm/backend-test.wasm.gz  the backend with test-only fault injection (tests only)
#   target/wasm/backend-bench.wasm.gz the backend with the naive-copy baseline (benchmark only)
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
wasm_target=target/wasm32-unknown-unknown/release
mkdir -p target/wasm

# gzip_wasm SRC OUT: compresses the freshly built SRC to target/wasm/OUT.wasm.gz.
gzip_wasm() {
    local src=$1 dst="target/wasm/$2.wasm.gz"
    # A temporary file of this run's own: two builds at once never take each other's.
    local tmp="$dst.$$.tmp"
    gzip -9 -n -c "$src" > "$tmp"
    # Replace only on change: the backend's build script reruns when personal.wasm.gz changes.
    if cmp -s "$tmp" "$dst"; then rm "$tmp"; else mv "$tmp" "$dst"; fi
    printf 'build: %-34s %9d bytes (%d bytes uncompressed)\n' "$dst" "$(stat -c %s "$dst")" "$(stat -c %s "$src")"
}

# The personal canister first: the backend's factory embeds it.
cargo build --release --locked --target wasm32-unknown-unknown -p personal
gzip_wasm "$wasm_target/personal.wasm" personal

cargo build --release --locked --target wasm32-unknown-unknown -p backend
gzip_wasm "$wasm_target/backend.wasm" backend

# Each other build variant has its own target directory, so switching features never
# rebuilds the others (the first build of a variant compiles its dependencies once).
# variant NAME OUT CARGO-ARGS...: builds the backend with CARGO-ARGS into its own directory.
variant() {
    local name=$1 out=$2
    shift 2
    local dir=target/wasm-variants/$name
    cargo build --release --locked --target wasm32-unknown-unknown -p backend --target-dir "$dir" "$@"
    gzip_wasm "$dir/wasm32-unknown-unknown/release/backend.wasm" "$out"
}

# The backend without the factory (cargo feature `personal-canister` off).
variant core backend-core --no-default-features

# Test builds only: the backend with test fault injection. Never deployed.
variant test backend-test --features test-faults

# Benchmark only: the backend with the naive-copy baseline (`bench_naive_copy`) and the
# registry seeding of the factory scale scenario (`bench_seed_creations`). Never deployed.
variant bench backend-bench --features bench-naive,bench-seed
