# Shared helpers of the bash integration suite (source it; do not run it).
#
# Every script that sources this file gets its own emulator state directory ($WORK/state, a
# fresh mktemp directory removed on exit), so scripts are independent and may run alone or in
# any order. Checks print `PASS name` or `FAIL name` (with the command, the expected and the
# actual value); `finish` prints the script's summary and sets its exit status.
#
# Environment: ICEMU (the icemu binary; default target/debug/icemu, built when missing),
# MANIFEST (the manifest CLI; default target/debug/manifest, built when missing),
# KEEP_STATE=1 keeps the state directory for inspection.
#
# All canister calls go through `canister_call` below. To point a script that needs no fault
# controls (no `ic fault`, `ic advance`, `ic tick`) at a local dfx replica, replace the body
# of `canister_call` by
#     dfx canister call ${query:+--query} --identity "$as" "$canister" "$method" "$arg"
# (with `--argument-file` for `--arg-file`, and dfx's `--output raw` + `icemu decode
# --output-blob` in place of `--output-blob`), create the identities with `dfx identity new`,
# and deploy with `dfx deploy`. This has NOT been run against dfx here; only the emulator is
# exercised by this suite.

set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
SCRIPT_NAME="$(basename "$0" .sh)"

# ---------------------------------------------------------------- tools
if [ -z "${ICEMU:-}" ]; then
    ICEMU="${CARGO_TARGET_DIR:-$ROOT/target}/debug/icemu"
    if [ ! -x "$ICEMU" ]; then
        echo "building icemu (cargo build -p icemu)" >&2
        cargo build -q -p icemu || { echo "FAIL $SCRIPT_NAME: cannot build icemu"; exit 1; }
    fi
fi
if [ -z "${MANIFEST:-}" ]; then
    MANIFEST="${CARGO_TARGET_DIR:-$ROOT/target}/debug/manifest"
    if [ ! -x "$MANIFEST" ]; then
        echo "building the manifest CLI (cargo build -p manifests --features cli)" >&2
        cargo build -q -p manifests --features cli --bin manifest \
            || { echo "FAIL $SCRIPT_NAME: cannot build the manifest CLI"; exit 1; }
    fi
fi
for m in backend backend-core backend-test personal; do
    [ -f "target/wasm/$m.wasm.gz" ] || { echo "FAIL $SCRIPT_NAME: target/wasm/$m.wasm.gz missing: run scripts/build.sh"; exit 1; }
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/icemu-suite.$SCRIPT_NAME.XXXXXX")"
export ICEMU_STATE="$WORK/state"
mkdir -p "$WORK/blobs" "$WORK/out"
_cleanup() { if [ "${KEEP_STATE:-0}" = 1 ]; then echo "state kept in $WORK" >&2; else rm -rf "$WORK"; fi; }
trap _cleanup EXIT

# Raw icemu (deploy, faults, rounds, status ...): not part of what dfx would offer.
ic() { "$ICEMU" "$@"; }

# ---------------------------------------------------------------- the driver
# canister_call [--query|--update] [--as ID] [--did FILE] [--with-cycles N] [--arg-file FILE] [--output-blob FILE] CANISTER METHOD [ARG]
# CANISTER is a name given at deploy (`backend`), a derived name or a principal. Canisters the
# factory creates are named by icemu `personal-<owner identity>` (`icemu canisters`) and typed
# from the `candid:service` metadata scripts/build.sh embeds in every module, so neither a
# principal nor `--did` is needed; `personal_call` (with `--did personal/personal.did`) still
# works and types the arguments the same way.
# Sets REPLY (candid text printed, or stderr on a reject), CALL_RC (exit status, 0 = replied,
# 10+code = rejected) and CALL_CMD (the command, for failure messages). Never exits.
canister_call() {
    local query="" update="" as="admin" argfile="" outblob="" did="" cycles=""
    while [ $# -gt 0 ]; do
        case "$1" in
            --query) query=1; shift ;;
            --update) update=1; shift ;;
            --as) as="$2"; shift 2 ;;
            --arg-file) argfile="$2"; shift 2 ;;
            --output-blob) outblob="$2"; shift 2 ;;
            --did) did="$2"; shift 2 ;;
            --with-cycles) cycles="$2"; shift 2 ;;
            *) break ;;
        esac
    done
    local canister="$1" method="$2" arg="${3:-()}"
    local -a cmd=("$ICEMU" call --as "$as")
    [ -n "$query" ] && cmd+=(--query)
    [ -n "$update" ] && cmd+=(--update)
    [ -n "$outblob" ] && cmd+=(--output-blob "$outblob")
    [ -n "$did" ] && cmd+=(--did "$did")
    [ -n "$cycles" ] && cmd+=(--with-cycles "$cycles")
    if [ -n "$argfile" ]; then
        cmd+=("$canister" "$method" --arg-file "$argfile")
        CALL_CMD="icemu call --as $as ${query:+--query }${cycles:+--with-cycles $cycles }$canister $method --arg-file $argfile"
    else
        cmd+=("$canister" "$method" "$arg")
        CALL_CMD="icemu call --as $as ${query:+--query }${cycles:+--with-cycles $cycles }$canister $method '$(printf '%s' "$arg" | cut -c1-300)'"
    fi
    "${cmd[@]}" > "$WORK/out/reply" 2> "$WORK/out/err"
    CALL_RC=$?
    if [ "$CALL_RC" = 0 ]; then REPLY="$(cat "$WORK/out/reply")"; else REPLY="$(cat "$WORK/out/reply" "$WORK/out/err")"; fi
    return 0
}

personal_call() { # [options] CANISTER METHOD [ARG]: canister_call with the personal .did
    canister_call --did personal/personal.did "$@"
}

# ---------------------------------------------------------------- checks
PASSED=0
FAILED=0
_show() { printf '%s' "$1" | head -c 1500 | sed 's/^/      /'; echo; }
_fail() {
    FAILED=$((FAILED + 1))
    echo "FAIL $1"
    echo "    command:  ${CALL_CMD:-<none>}"
    echo "    expected: $2"
    echo "    actual:"
    _show "$3"
}
pass() { PASSED=$((PASSED + 1)); echo "PASS $1"; }
# check NAME EXPECTED ACTUAL: equal strings.
check() { if [ "$2" = "$3" ]; then pass "$1"; else _fail "$1" "$2" "$3"; fi; }
# check_contains NAME NEEDLE HAYSTACK (fixed string).
check_contains() {
    if printf '%s' "$3" | grep -qF -- "$2"; then pass "$1"; else _fail "$1" "contains: $2" "$3"; fi
}
check_not_contains() {
    if printf '%s' "$3" | grep -qF -- "$2"; then _fail "$1" "does not contain: $2" "$3"; else pass "$1"; fi
}
# check_match NAME REGEX HAYSTACK (extended regex).
check_match() {
    if printf '%s' "$3" | grep -qE -- "$2"; then pass "$1"; else _fail "$1" "matches: $2" "$3"; fi
}
# check_cmp NAME OP A B: numeric comparison (OP: -eq -ne -lt -le -gt -ge).
check_cmp() {
    if [ "$3" "$2" "$4" ] 2>/dev/null; then pass "$1"; else _fail "$1" "$3 $2 $4" "$3 vs $4"; fi
}
# Stops the script (a precondition broke: later checks would be meaningless).
die() { _fail "$SCRIPT_NAME: $1" "${2:-}" "${3:-$REPLY}"; finish; }
finish() {
    echo "$SCRIPT_NAME: $PASSED passed, $FAILED failed"
    [ "$FAILED" = 0 ] && exit 0 || exit 1
}

# ---------------------------------------------------------------- candid helpers
nat() { printf '%s' "$1" | tr -d '_'; }
# The number after `Ok = ` (upload ids, cycles).
ok_nat() { printf '%s' "$REPLY" | sed -n 's/.*Ok = \([0-9_]*\).*/\1/p' | head -1 | tr -d '_'; }
# Top-level field NAME of a creation record / reserve / stats / config reply (6-space indent).
field() { printf '%s' "$REPLY" | sed -n "s/^      $1 = \(.*\);\$/\1/p" | head -1; }
field_nat() { field "$1" | sed 's/ : .*//' | tr -d '_'; }
# The state of a creation record reply: NotStarted, Exporting, ..., or "" on an error.
rec_state() { field state | sed -n 's/variant { \(.*\) }/\1/p'; }
progress_field() { printf '%s' "$REPLY" | sed -n "s/^        $1 = \([0-9_]*\).*/\1/p" | head -1 | tr -d '_'; }
hex_of_file() { od -An -v -tx1 "$1" | tr -d ' \n'; }
# A hex string as a candid blob literal.
blob_lit() { printf 'blob "%s"' "$(printf '%s' "$1" | sed 's/../\\&/g')"; }
b3() { "$MANIFEST" hash "$1" | awk 'NR==1{print $1}'; }

# ---------------------------------------------------------------- deploy
BACKEND=backend
BACKEND_DID=backend/backend.did
# deploy_backend [MODULE]: backend (default), backend-test or backend-core, as `admin`.
deploy_backend() {
    local module="${1:-backend}" did=backend/backend.did
    [ "$module" = backend-core ] && did=backend/backend-core.did
    BACKEND_DID="$did"
    CALL_CMD="icemu deploy $BACKEND target/wasm/$module.wasm.gz"
    REPLY="$(ic deploy "$BACKEND" "target/wasm/$module.wasm.gz" --did "$did" --cycles 500_000_000_000_000 2>&1)" \
        || die "deploy $module" "deployed"
}
# top_up_reserve CYCLES: from the backend's balance.
top_up_reserve() {
    canister_call "$BACKEND" admin_top_up_reserve "(opt ${1:-100_000_000_000_000})"
    grep -q 'Ok = record' <<<"$REPLY" || die "top up reserve" "Ok"
}

# ---------------------------------------------------------------- capsules and blobs
create_capsule() { # WHO [NAME]
    canister_call --as "$1" "$BACKEND" create_capsule "(record { name = \"${2:-$1}\"; bio = \"suite\"; settings = null })"
    grep -q 'Ok = record' <<<"$REPLY" || die "create_capsule as $1" "Ok"
}
# make_blob NAME SIZE: random bytes in $WORK/blobs/NAME; prints the path.
make_blob() { head -c "$2" /dev/urandom > "$WORK/blobs/$1"; echo "$WORK/blobs/$1"; }
# upload_blob WHO FILE [CANISTER]: begin / put 256 KiB chunks / finish through the capsule API.
# Sets BLOB_HASH (hex, = b3sum of FILE).
upload_blob() {
    local who="$1" file="$2" canister="${3:-$BACKEND}" size i=0 c
    size=$(stat -c %s "$file")
    BLOB_HASH=$(b3 "$file")
    canister_call --as "$who" "$canister" begin_blob_upload \
        "(record { size = $size : nat64; expected_hash = opt $(blob_lit "$BLOB_HASH") })"
    local upload; upload=$(ok_nat)
    [ -n "$upload" ] || die "begin_blob_upload" "Ok = <id>"
    rm -f "$WORK/out/chunk."*
    split -b $((256 * 1024)) -d -a 3 "$file" "$WORK/out/chunk."
    for c in "$WORK"/out/chunk.*; do
        printf '(%s : nat64, %s : nat64, %s)' "$upload" "$i" "$(blob_lit "$(hex_of_file "$c")")" > "$WORK/out/arg"
        canister_call --as "$who" --arg-file "$WORK/out/arg" "$canister" put_blob_chunk
        grep -q 'Ok' <<<"$REPLY" || die "put_blob_chunk $i" "Ok"
        i=$((i + 1))
    done
    canister_call --as "$who" "$canister" finish_blob_upload "($upload : nat64)"
    grep -q 'Ok = record' <<<"$REPLY" || die "finish_blob_upload" "Ok"
}
# add_memory WHO TITLE [HASH SIZE]: a note, or a photo referencing a blob.
add_memory() {
    local blobs="vec {}" kind="Note"
    if [ -n "${3:-}" ]; then
        blobs="vec { record { hash = $(blob_lit "$3"); size = $4 : nat64; mime_type = \"image/jpeg\" } }"
        kind="Photo"
    fi
    canister_call --as "$1" "$BACKEND" add_memory \
        "(record { title = \"$2\"; description = \"about $2\"; tags = vec { \"suite\" }; kind = variant { $kind }; encryption = null; blobs = $blobs })"
    grep -q 'Ok = record' <<<"$REPLY" || die "add_memory $2" "Ok"
}
add_connection() { # WHO PEER_IDENTITY
    canister_call --as "$1" "$BACKEND" add_connection \
        "(record { peer = principal \"$(ic identity "$2")\"; relationship = \"friend\"; status = variant { Accepted } })"
    grep -q 'Ok = record' <<<"$REPLY" || die "add_connection $2" "Ok"
}
# fill_capsule WHO SIZE...: a capsule with one blob per size (files $WORK/blobs/WHO.N, hashes
# in $WORK/blobs/WHO.hashes), one photo memory per blob, two notes and one connection.
fill_capsule() {
    local who="$1" n=0 f size; shift
    create_capsule "$who"
    : > "$WORK/blobs/$who.hashes"
    for size in "$@"; do
        f=$(make_blob "$who.$n" "$size")
        upload_blob "$who" "$f"
        echo "$BLOB_HASH $f" >> "$WORK/blobs/$who.hashes"
        add_memory "$who" "photo $n" "$BLOB_HASH" "$size"
        n=$((n + 1))
    done
    add_memory "$who" "note a"
    add_memory "$who" "note b"
    add_connection "$who" "${who}-friend"
}

# ---------------------------------------------------------------- creation flow
CREATE_ARG='(record { name = null; subnet_id = null })'
create_personal() { canister_call --as "$1" "$BACKEND" create_personal_canister "${2:-$CREATE_ARG}"; }
creation_status() { canister_call --as "$1" "$BACKEND" get_creation_status; }
# wait_state WHO STATE [MAX_STEPS]: advance time 0.5 s (one round) until the creation is in
# STATE (or is final, or MAX_STEPS passed). Sets STATE; returns 0 when STATE was reached.
wait_state() {
    local who="$1" want="$2" max="${3:-400}" i
    for ((i = 0; i < max; i++)); do
        creation_status "$who"
        STATE=$(rec_state)
        [ "$STATE" = "$want" ] && return 0
        case "$STATE" in Completed|Failed) return 1 ;; esac
        ic advance 0.5 > /dev/null
    done
    return 1
}
# wait_final WHO [MAX_STEPS]: until Completed or Failed.
wait_final() {
    local who="$1" max="${2:-400}" i
    for ((i = 0; i < max; i++)); do
        creation_status "$who"
        STATE=$(rec_state)
        case "$STATE" in Completed|Failed) return 0 ;; esac
        ic advance 0.5 > /dev/null
    done
    return 1
}
# run_until_final WHO: `icemu run-until-idle` (1 s rounds) until WHO's creation is Completed or
# Failed (or the subnet idles). Sets STATE and RUN_OUT (what run-until-idle printed).
run_until_final() {
    RUN_OUT=$(ic run-until-idle --until Completed --as "$1" --poll "$BACKEND" get_creation_status 2>&1)
    creation_status "$1"
    STATE=$(rec_state)
    case "$STATE" in Completed|Failed) return 0 ;; esac
    return 1
}
# rounds N: advance time by 0.5 s N times (each runs a round).
rounds() { local i; for ((i = 0; i < $1; i++)); do ic advance 0.5 > /dev/null; done; }
canister_id_of_record() { field canister_id | sed -n 's/opt principal "\(.*\)"/\1/p'; }
migration_id_of_record() { field_nat migration_id; }
canister_count() { ic canisters >/dev/null 2>&1; ic status | grep -c '^canister '; }
controllers_of() { ic status "$1" | sed -n 's/^ *controllers: //p'; }

# ---------------------------------------------------------------- reading data back
# read_blob CANISTER WHO HASH OUTFILE: get_blob for the size, then every 256 KiB chunk with
# --output-blob, concatenated into OUTFILE. Returns 1 when a call fails (REPLY says why).
read_blob() {
    local canister="$1" who="$2" hash="$3" out="$4" size chunks i did="$BACKEND_DID"
    [ "$canister" = "$BACKEND" ] || did=personal/personal.did
    canister_call --did "$did" --query --as "$who" "$canister" get_blob "($(blob_lit "$hash"))"
    size=$(printf '%s' "$REPLY" | sed -n 's/^ *size = \([0-9_]*\) : nat64.*/\1/p' | head -1 | tr -d '_')
    [ -n "$size" ] || return 1
    chunks=$(( (size + 262143) / 262144 ))
    : > "$out"
    for ((i = 0; i < chunks; i++)); do
        canister_call --did "$did" --query --as "$who" --output-blob "$WORK/out/part" "$canister" get_blob_chunk "($(blob_lit "$hash"), $i : nat64)"
        [ "$CALL_RC" = 0 ] || return 1
        cat "$WORK/out/part" >> "$out"
    done
    return 0
}
# manifest_pages CANISTER WHO METHOD OUTFILE [MIGRATION]: every page of a manifest (candid
# text, concatenated) following `next`: admin_get_manifest_page (with MIGRATION) on the
# backend, get_manifest_page on the personal canister.
manifest_pages() {
    local canister="$1" who="$2" method="$3" out="$4" mig="${5:-}" cursor n=0 next
    cursor='record { section = variant { Capsule }; index = 0 : nat64 }'
    : > "$out"
    while [ -n "$cursor" ] && [ "$n" -lt 1000 ]; do
        if [ -n "$mig" ]; then
            canister_call --query --as "$who" "$canister" "$method" "($mig : nat64, $cursor)"
        else
            personal_call --query --as "$who" "$canister" "$method" "($cursor)"
        fi
        grep -q 'Ok = record' <<<"$REPLY" || return 1
        printf '%s\n' "$REPLY" >> "$out"
        next=$(printf '%s' "$REPLY" | tr '\n' ' ' | grep -oE 'next = opt record \{[^}]*\}[^}]*\}' | head -1)
        if [ -n "$next" ]; then
            next="$(printf '%s' "$next" | sed -n 's/.*variant { *\([A-Za-z]*\) *}.*/\1/p') $(printf '%s' "$next" | sed -n 's/.*index = \([0-9_]*\).*/\1/p')"
        fi
        if [ -n "$next" ]; then
            cursor="record { section = variant { ${next% *} }; index = ${next#* } : nat64 }"
        else
            cursor=""
        fi
        n=$((n + 1))
    done
    return 0
}

# ---------------------------------------------------------------- factory config
# set_config NAME VALUE...: admin_get_config, replace the fields, admin_set_config (as admin).
set_config() {
    local cfg
    canister_call "$BACKEND" admin_get_config
    cfg=$(printf '%s' "$REPLY" | tr '\n' ' ' | sed 's/^ *( *variant { *Ok = \(.*\) } *, *) *$/\1/')
    while [ $# -ge 2 ]; do
        cfg=$(printf '%s' "$cfg" | sed "s/\\b$1 = [^;]*;/$1 = $2;/")
        shift 2
    done
    canister_call "$BACKEND" admin_set_config "($cfg)"
    grep -q 'Ok = record' <<<"$REPLY" || die "admin_set_config" "Ok"
}
reserve_nat() { canister_call --query "$BACKEND" admin_get_reserve; field_nat reserve; }
