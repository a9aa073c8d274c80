#!/usr/bin/env bash
# Builds both canisters for wasm32 in release (BLAKE3 with its wasm SIMD path) and writes
#   target/wasm/personal.wasm.gz      the personal canister
#   target/wasm/backend.wasm.gz       the backend, with the personal-canister factory (embeds the above)
#   target/wasm/backend-core.wasm.gz  the backend without the factory
#   target/wasm/backend-test.wasm.gz  the backend with test-only fault injection (tests only)
#   target/wasm/backend-bench.wasm.gz the backend with the naive-copy baseline (benchmark only)
#   target/wasm/personal-minor-next.wasm.gz  the personal canister one API minor version ahead
#   target/wasm/personal-major-next.wasm.gz  ... and one major version ahead (upgrade tests only)
#   target/wasm/backend-personal-next.wasm.gz the backend shipping personal-minor-next (tests only)
# Installs the wasm32 target when missing. Never rewrites the committed .did files: the tests
# check them against the code.
#
# Every module carries public metadata, as dfx-built canisters do: `icp:public candid:service`
# (the committed .did, so tools such as `icemu` type calls to any canister running it, also
# one the backend created) and `icp:public name` (the module's name: `icemu canisters` calls
# a personal canister `personal-<owner>`).
#
#   scripts/build.sh           everything above
#   scripts/build.sh --main    personal and backend only (what the demo and a deployment run)
set -euo pipefail
cd "$(dirname "$0")/.."

main_only=0
case "${1:-}" in
    --main) main_only=1 ;;
    "") ;;
    *) echo "usage: scripts/build.sh [--main]" >&2; exit 2 ;;
esac

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    echo "build: installing the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
fi

# +simd128 comes from .cargo/config.toml; the `simd` feature of blobstore (on for wasm32 in the
# canisters' manifests) turns on BLAKE3's wasm SIMD path.
wasm_target=target/wasm32-unknown-unknown/release
mkdir -p target/wasm

# leb128 N: the unsigned LEB128 bytes of N (wasm's length encoding) on stdout.
leb128() {
    local n=$1 b
    while :; do
        b=$((n & 0x7f))
        n=$((n >> 7))
        [ "$n" -ne 0 ] && b=$((b | 0x80))
        printf "\\x$(printf %02x "$b")"
        [ "$n" -eq 0 ] && break
    done
}

# custom_section NAME FILE: a wasm custom section (id 0) named NAME holding FILE's bytes.
custom_section() {
    local name=$1 file=$2 payload
    payload=$(mktemp)
    { leb128 "${#name}"; printf '%s' "$name"; cat "$file"; } > "$payload"
    printf '\x00'
    leb128 "$(stat -c %s "$payload")"
    cat "$payload"
    rm -f "$payload"
}

# with_metadata SRC NAME DID OUT: SRC with the public metadata `candid:service` (DID's text)
# and `name` (NAME) appended as custom sections, written to OUT. The cargo output is left as it
# is, so running this twice never appends twice.
with_metadata() {
    local src=$1 name=$2 did=$3 out=$4 namefile
    [ -f "$did" ] || { echo "build: $did is missing" >&2; exit 1; }
    namefile=$(mktemp)
    printf '%s' "$name" > "$namefile"
    { cat "$src"; custom_section "icp:public candid:service" "$did"; custom_section "icp:public name" "$namefile"; } > "$out"
    rm -f "$namefile"
}

# gzip_wasm SRC OUT NAME DID: SRC with its metadata (see with_metadata), compressed to
# target/wasm/OUT.wasm.gz.
gzip_wasm() {
    local src=$1 dst="target/wasm/$2.wasm.gz"
    # Temporary files of this run's own: two builds at once never take each other's.
    local tmp="$dst.$$.tmp" meta="target/wasm/$2.$$.meta.wasm"
    with_metadata "$src" "$3" "$4" "$meta"
    gzip -9 -n -c "$meta" > "$tmp"
    rm -f "$meta"
    # Replace only on change: the backend's build script reruns when personal.wasm.gz changes.
    if cmp -s "$tmp" "$dst"; then rm "$tmp"; else mv "$tmp" "$dst"; fi
    printf 'build: %-34s %9d bytes (%d bytes uncompressed)\n' "$dst" "$(stat -c %s "$dst")" "$(stat -c %s "$src")"
}

# The personal canister first: the backend's factory embeds it.
cargo build --release --locked --target wasm32-unknown-unknown -p personal
gzip_wasm "$wasm_target/personal.wasm" personal personal personal/personal.did

cargo build --release --locked --target wasm32-unknown-unknown -p backend
gzip_wasm "$wasm_target/backend.wasm" backend backend backend/backend.did

if ((main_only)); then
    exit 0
fi

# Each other build variant has its own target directory, so switching features never
# rebuilds the others (the first build of a variant compiles its dependencies once).
# variant NAME OUT DID CARGO-ARGS...: builds the backend with CARGO-ARGS into its own directory.
variant() {
    local name=$1 out=$2 did=$3
    shift 3
    local dir=target/wasm-variants/$name
    cargo build --release --locked --target wasm32-unknown-unknown -p backend --target-dir "$dir" "$@"
    gzip_wasm "$dir/wasm32-unknown-unknown/release/backend.wasm" "$out" backend "$did"
}

# The backend without the factory (cargo feature `personal-canister` off).
variant core backend-core backend/backend-core.did --no-default-features

# Test builds only: the backend with test fault injection. Never deployed.
variant test backend-test backend/backend.did --features test-faults

# Benchmark only: the backend with the naive-copy baseline (`bench_naive_copy`) and the
# registry seeding of the factory scale scenario (`bench_seed_creations`). Never deployed.
variant bench backend-bench backend/backend.did --features bench-naive,bench-seed

# Test builds only: the personal canister one API minor version ahead (an owner upgrades to it)
# and one major version ahead (refused), for the owner-upgrade tests. Both share a target
# directory: switching the feature rebuilds only the personal crate.
personal_variant() {
    local feature=$1 out=$2 dir=target/wasm-variants/personal-next
    cargo build --release --locked --target wasm32-unknown-unknown -p personal --target-dir "$dir" --features "$feature"
    gzip_wasm "$dir/wasm32-unknown-unknown/release/personal.wasm" "$out" personal personal/personal.did
}
personal_variant api-minor-next personal-minor-next
personal_variant api-major-next personal-major-next

# Test builds only: the backend shipping the one-minor-ahead personal module (a backend
# release owners upgrade their canisters from).
(
    export PERSONAL_WASM="$PWD/target/wasm/personal-minor-next.wasm.gz" PERSONAL_API_MINOR=1
    variant personal-next backend-personal-next backend/backend.did
)
