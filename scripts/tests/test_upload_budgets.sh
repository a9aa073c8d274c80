#!/usr/bin/env bash
# Upload sessions are budgets, per principal and in total, and expire: a flood of open
# sessions from several principals does not block another user, a principal past its budget
# gets TooManyUploadsForOwner, declared sizes count against the capsule's 8 GiB
# (LimitReached "blob bytes"), and a day after they began abandoned sessions are dropped.
source "$(dirname "$0")/lib.sh"

deploy_backend

FLOODERS=(flood1 flood2 flood3 flood4 flood5)
PER_OWNER=16
GIB=$((1024 * 1024 * 1024))

begin() { # WHO SIZE: begin_blob_upload without an expected hash
    canister_call --as "$1" "$BACKEND" begin_blob_upload "(record { size = $2 : nat64; expected_hash = null })"
}

echo "== a flood: ${#FLOODERS[@]} principals open ${PER_OWNER} sessions each (declared 1 byte, no data)"
first_session=""
for who in "${FLOODERS[@]}"; do
    create_capsule "$who"
    opened=0
    for ((i = 0; i < PER_OWNER; i++)); do
        begin "$who" 1
        id=$(ok_nat)
        [ -n "$id" ] && opened=$((opened + 1))
        [ -z "$first_session" ] && first_session="$id"
    done
    check "$who opened its $PER_OWNER sessions" "$PER_OWNER" "$opened"
    begin "$who" 1
    check_contains "$who's session $((PER_OWNER + 1)): TooManyUploadsForOwner" "TooManyUploadsForOwner = record { max = $PER_OWNER : nat64 }" "$REPLY"
done

echo "== another user uploads through the flood"
create_capsule newcomer
f=$(make_blob newcomer $((300 * 1024 + 7)))
upload_blob newcomer "$f"
check_contains "newcomer: finish_blob_upload Ok" "Ok = record" "$REPLY"
read_blob "$BACKEND" newcomer "$BLOB_HASH" "$WORK/back"
check "newcomer: the blob reads back with its hash" "$BLOB_HASH" "$(b3 "$WORK/back")"

echo "== declared sizes count against the capsule's 8 GiB"
begin newcomer $((8 * GIB))
check_contains "8 GiB on top of what is stored: LimitReached blob bytes" 'LimitReached = record { max = 8_589_934_592 : nat64; what = "blob bytes" }' "$REPLY"
begin newcomer $((4 * GIB)); a=$(ok_nat)
check_match "4 GiB declared: Ok" "Ok = [0-9_]+" "$REPLY"
begin newcomer $((4 * GIB - 300 * 1024 - 7)); b=$(ok_nat)
check_match "4 GiB less what is stored: Ok (exactly 8 GiB)" "Ok = [0-9_]+" "$REPLY"
begin newcomer 1
check_contains "one byte more: LimitReached blob bytes" 'LimitReached = record { max = 8_589_934_592 : nat64; what = "blob bytes" }' "$REPLY"
canister_call --as newcomer "$BACKEND" abort_blob_upload "($b : nat64)"
check_contains "abort_blob_upload: Ok" "variant { Ok }" "$REPLY"
begin newcomer 1
check_match "one byte after the abort: Ok (the room is back)" "Ok = [0-9_]+" "$REPLY"
canister_call --as newcomer "$BACKEND" abort_blob_upload "($a : nat64)"

echo "== a day later the abandoned sessions expire"
ic advance 86401 > /dev/null
# flood1's sessions are the earliest: any begin drops two expired sessions first, so flood1
# (at its maximum a day ago) may open one again.
begin flood1 1
check_match "flood1 begins again after the TTL" "Ok = [0-9_]+" "$REPLY"
printf '(%s : nat64, 0 : nat64, blob "\\00")' "$first_session" > "$WORK/out/arg"
canister_call --as flood1 --arg-file "$WORK/out/arg" "$BACKEND" put_blob_chunk
check_contains "flood1's first session expired: UnknownUpload" "UnknownUpload = record { upload = $first_session : nat64 }" "$REPLY"
begin newcomer $((4 * GIB))
check_match "newcomer declares 4 GiB again" "Ok = [0-9_]+" "$REPLY"

finish
