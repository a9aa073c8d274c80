#!/usr/bin/env bash
# icemu smoke test, the issue's "Must show" in a shell:
#   1. deploy, call, tick, call again in a later process: state intact; a warm call's time
#   2. a 5 MiB blob uploaded through the capsule API and read back with --output-blob: same b3sum
#   3. icemu serve: a curl request with candid bytes returns the reply; a preflight is answered
# Needs target/wasm/backend.wasm.gz (scripts/build.sh). Uses $ICEMU if set, else builds icemu.
# Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/../.."

fail() { echo "icemu_smoke: FAIL: $*" >&2; exit 1; }
[ -f target/wasm/backend.wasm.gz ] || fail "target/wasm/backend.wasm.gz missing: run scripts/build.sh"
if [ -z "${ICEMU:-}" ]; then
    cargo build -q -p icemu
    ICEMU="${CARGO_TARGET_DIR:-target}/debug/icemu"
fi
command -v curl >/dev/null || fail "curl is not installed (apt-get install -y curl)"
if command -v b3sum >/dev/null; then
    b3() { b3sum --no-names "$1"; }
else
    b3() { cargo run -q -p manifests -- hash "$1" | awk 'NR == 1 {print $1}'; }  # line 1: the blob's hash; then its chunks
fi

work=$(mktemp -d)
serve_pid=
cleanup() {
    [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
export ICEMU_STATE="$work/state"
ic() { "$ICEMU" "$@"; }

echo "== 1. deploy, call, tick, call again in a later process"
ic deploy backend target/wasm/backend.wasm.gz --cycles 500_000_000_000_000
ic call --as alice backend create_capsule '(record { name = "Alice"; bio = "smoke"; settings = null })' | tee "$work/out"
grep -q 'name = "Alice"' "$work/out" || fail "create_capsule reply"
ic tick 10
start=$(date +%s%N)
ic call --as alice backend get_capsule > "$work/out"
end=$(date +%s%N)
grep -q 'bio = "smoke"' "$work/out" || fail "state not intact in a later process: $(cat "$work/out")"
echo "warm-state call in a new process: $(( (end - start) / 1000000 )) ms"
set +e
ic call --as alice backend no_such_method 2> "$work/err"; code=$?
set -e
[ "$code" = 15 ] || fail "unknown method exited $code, expected 15"
grep -q IC0536 "$work/err" || fail "reject code not on stderr: $(cat "$work/err")"
echo "unknown method: exit $code, $(cat "$work/err")"

echo "== 2. 5 MiB blob through the capsule API, read back with --output-blob"
head -c $((5 * 1024 * 1024)) /dev/urandom > "$work/blob"
hash=$(b3 "$work/blob")
hexblob() { od -An -v -tx1 "$1" | tr -d ' \n' | sed 's/../\\&/g'; }
hash_lit="blob \"$(printf '%s' "$hash" | sed 's/../\\&/g')\""
out=$(ic call --as alice backend begin_blob_upload "(record { size = $((5 * 1024 * 1024)); expected_hash = opt $hash_lit })")
upload=$(printf '%s' "$out" | sed -n 's/.*Ok = \([0-9_]*\).*/\1/p' | tr -d '_')
[ -n "$upload" ] || fail "begin_blob_upload: $out"
split -b $((256 * 1024)) -d -a 2 "$work/blob" "$work/chunk."
i=0
for c in "$work"/chunk.*; do
    printf '(%s, %s, blob "%s")' "$upload" "$i" "$(hexblob "$c")" > "$work/arg"
    ic call --as alice backend put_blob_chunk --arg-file "$work/arg" > "$work/out"
    grep -q Ok "$work/out" || fail "put_blob_chunk $i: $(cat "$work/out")"
    i=$((i + 1))
done
[ "$i" = 20 ] || fail "expected 20 chunks, got $i"
ic call --as alice backend finish_blob_upload "($upload)" > "$work/out"
grep -q Ok "$work/out" || fail "finish_blob_upload: $(cat "$work/out")"
: > "$work/back"
for i in $(seq 0 19); do
    ic call --as alice backend get_blob_chunk "($hash_lit, $i)" --output-blob "$work/part" > /dev/null
    cat "$work/part" >> "$work/back"
done
back=$(b3 "$work/back")
[ "$back" = "$hash" ] || fail "read back $back, uploaded $hash"
echo "b3sum uploaded $hash, read back $back"

echo "== 3. serve: the IC HTTP interface (status with the root key), a forwarded call, preflight"
"$ICEMU" serve --port 0 --round-ms 20 > "$work/serve.log" 2>&1 &
serve_pid=$!
for _ in $(seq 1 100); do
    grep -q 'serving http' "$work/serve.log" 2>/dev/null && break
    sleep 0.1
done
url=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/serve.log" | head -1)
[ -n "$url" ] || fail "serve did not start: $(cat "$work/serve.log")"
backend=$(curl -sf "$url/api/v1/canisters" | sed -n 's/.*"backend":"\([^"]*\)".*/\1/p')
[ -n "$backend" ] || fail "GET /api/v1/canisters"
# /api/v2/status: CBOR (self-describing tag d9d9f7) with the root key, as a replica answers.
curl -sf "$url/api/v2/status" -o "$work/status.cbor" || fail "GET /api/v2/status"
[ "$(head -c 3 "$work/status.cbor" | od -An -tx1 | tr -d ' \n')" = d9d9f7 ] || fail "status is not self-described CBOR"
grep -aq root_key "$work/status.cbor" || fail "status has no root_key"
echo "status: $(wc -c < "$work/status.cbor") bytes of CBOR with root_key"
# An unsigned body is refused with a reason (agents send signed CBOR envelopes).
code=$(curl -s -o "$work/refused" -w '%{http_code}' -X POST -H 'content-type: application/cbor' --data-binary 'junk' \
    "$url/api/v3/canister/$backend/query")
[ "$code" = 400 ] || fail "junk query answered $code"
grep -q 'not a CBOR request envelope' "$work/refused" || fail "junk query: $(cat "$work/refused")"
# A command while serving is forwarded to the server and runs on its state.
inner=$(ic call --as alice backend get_capsule)
echo "$inner" | grep -q 'bio = "smoke"' || fail "the forwarded call does not see the capsule: $inner"
echo "forwarded call: $(printf '%s' "$inner" | tr -s ' \n' ' ' | cut -c1-120)..."
headers=$(curl -s -o /dev/null -D - -X OPTIONS -H 'origin: http://localhost:5173' \
    -H 'access-control-request-method: POST' -H 'access-control-request-headers: content-type' "$url/api/v3/canister/$backend/call")
echo "$headers" | grep -q '^HTTP/1.1 204' || fail "preflight status: $headers"
echo "$headers" | grep -qi '^access-control-allow-origin: \*' || fail "preflight allow-origin: $headers"
echo "$headers" | grep -qi '^access-control-allow-methods: GET, POST, OPTIONS' || fail "preflight methods: $headers"
echo "$headers" | grep -qi '^access-control-allow-headers: content-type' || fail "preflight headers: $headers"
echo "preflight: 204 with the CORS headers"
kill -TERM "$serve_pid"
wait "$serve_pid" || fail "serve did not stop cleanly"
serve_pid=
echo "icemu_smoke: OK"
