#!/usr/bin/env bash
# A hostile owner. The owner is a controller of her personal canister from create_canister
# until the handoff, so she can stop or delete it mid-import through the management canister.
#   ada deletes it: the backend's import watch gets a non-retryable reject (code 3) and fails
#     the creation at once (failed_in Importing), unfreezes her capsule and frees the in-flight
#     slot; admin cleanup of the vanished canister returns Ok 0 and clears canister_id; bob's
#     creation, queued behind hers (max_in_flight 1), completes.
#   cara only stops it: the watch's rejects (code 5, stopped) are retried with backoff and the
#     creation fails after max_step_retries (default 8); cleanup deletes the stopped canister.
source "$(dirname "$0")/lib.sh"

# wait_final_every WHO SECONDS [MAX_STEPS]: like wait_final, with SECONDS of emulated time per
# step (the watch asks every 5 s; retried failures back off 1, 2, 4 ... s).
wait_final_every() {
    local who="$1" secs="$2" max="${3:-200}" i
    for ((i = 0; i < max; i++)); do
        creation_status "$who"
        STATE=$(rec_state)
        case "$STATE" in Completed|Failed) return 0 ;; esac
        ic advance "$secs" > /dev/null
    done
    return 1
}
# seconds_in_importing: sets SECS to the seconds from the Importing entry to the Failed entry
# of the timeline in REPLY (a creation record; each `at = N : nat64;` line precedes its state
# line), -1 if either is missing.
seconds_in_importing() {
    local imp fld
    imp=$(timeline_at Importing); fld=$(timeline_at Failed)
    CALL_CMD="$CALL_CMD (timeline: Importing at ${imp:-?}, Failed at ${fld:-?})"
    SECS=-1
    if [[ $imp =~ ^[0-9]+$ && $fld =~ ^[0-9]+$ ]]; then SECS=$(( (fld - imp) / 1000000000 )); fi
}
timeline_at() {
    printf '%s' "$REPLY" | awk -v s="state = variant { $1 }" \
        '/^ *at = /{at=$3; gsub(/_/, "", at)} index($0, s){v=at} END{print v}'
}
# mgmt_as WHO METHOD CANISTER: an ingress call to aaaaa-aa as WHO (no .did: untyped record).
mgmt_as() { canister_call --as "$1" aaaaa-aa "$2" "(record { canister_id = principal \"$3\" })"; }

deploy_backend
top_up_reserve
# One creation in flight at a time: bob's waits for the slot ada's creation holds.
set_config max_in_flight "1 : nat32"
# 3 MiB in 12 chunks: the import lasts several rounds (the watch asks every 5 s).
fill_capsule ada $((1024 * 1024)) $((1024 * 1024)) $((1024 * 1024))
fill_capsule bob 3000

echo "== ada's creation reaches Importing; bob's waits for the slot"
create_personal ada
mig=$(migration_id_of_record)
wait_state ada Importing 200 || die "ada never reached Importing" Importing "$STATE $REPLY"
check "ada Importing" Importing "$STATE"
personal=$(canister_id_of_record)
[ -n "$personal" ] || die "ada's record names no canister" "canister_id = opt principal"
create_personal bob
check "bob queued (NotStarted) while ada holds the only slot" NotStarted "$(rec_state)"
personal_call --query --as ada "$personal" import_status
check_not_contains "ada's import is not done yet" "phase = variant { Done }" "$REPLY"
CALL_CMD="icemu status $personal"
check_contains "ada is a controller of her personal canister" "(ada)" "$(controllers_of "$personal")"
canister_call --as ada "$BACKEND" add_memory '(record { title = "frozen"; description = ""; tags = vec {}; kind = variant { Note }; encryption = null; blobs = vec {} })'
check_contains "ada's capsule is frozen during the import" "CapsuleFrozen" "$REPLY"

echo "== ada stops and deletes her personal canister (as its controller, via aaaaa-aa)"
mgmt_as bob stop_canister "$personal"
check_contains "stop_canister by bob (not a controller) is rejected" "is not a controller" "$REPLY"
mgmt_as ada stop_canister "$personal"
check "stop_canister by ada replied" 0 "$CALL_RC"
CALL_CMD="icemu status $personal"
check_contains "the personal canister is Stopped" "status: Stopped" "$(ic status "$personal" 2>&1)"
mgmt_as ada delete_canister "$personal"
check "delete_canister by ada replied" 0 "$CALL_RC"
CALL_CMD="icemu status $personal"
check "the personal canister is gone" gone "$(ic status "$personal" >/dev/null 2>&1 && echo present || echo gone)"

echo "== the backend notices: ada's creation fails in Importing"
wait_final_every ada 2 150
check "ada Failed" Failed "$STATE"
check_contains "failed in Importing" "failed_in = opt variant { Importing }" "$REPLY"
check_contains "the error is the failed import_status watch" 'step = "import_status"' "$REPLY"
check_contains "a non-retryable reject: code 3 (the canister is gone)" 'code = 3 : nat32' "$REPLY"
check_not_contains "not by the deadline (TimedOut)" "TimedOut" "$REPLY"
seconds_in_importing
echo "   ada was Importing for $SECS s before it failed"
check_cmp "failed at once, without backoff (< 30 s in Importing)" -lt "$SECS" 30
check_cmp "(the timeline was read)" -ge "$SECS" 0
check "still the record of the deleted canister until cleanup" "$personal" "$(canister_id_of_record)"
canister_call --as ada "$BACKEND" add_memory '(record { title = "after"; description = ""; tags = vec {}; kind = variant { Note }; encryption = null; blobs = vec {} })'
check_contains "ada's capsule is writable again" "Ok = record" "$REPLY"
canister_call --as ada "$BACKEND" get_capsule
check "ada's capsule still holds her data (3 blobs, 3 MiB, 6 memories)" "3 : nat64 3_145_728 : nat64 6 : nat64" \
    "$(field blob_count) $(field blob_bytes) $(field memory_count)"

echo "== admin cleanup of the vanished canister"
canister_call --as ada "$BACKEND" admin_cleanup_creation "($mig : nat64)"
check_contains "admin_cleanup_creation by ada: NotAdmin" "NotAdmin" "$REPLY"
canister_call "$BACKEND" admin_cleanup_creation "($mig : nat64)"
check_contains "admin_cleanup_creation: Ok 0 (nothing to return from a deleted canister)" "Ok = 0 : nat }" "$REPLY"
creation_status ada
check_contains "cleanup cleared ada's canister_id" "canister_id = null" "$REPLY"
check "ada still Failed after cleanup" Failed "$(rec_state)"

echo "== the slot ada held is free: bob's creation completes"
wait_final bob 200
check "bob Completed" Completed "$STATE"
bob_personal=$(canister_id_of_record)
CALL_CMD="icemu status $bob_personal"
check_contains "bob controls his personal canister after the handoff" "(bob)" "$(controllers_of "$bob_personal")"

echo "== cara only stops her canister: the watch retries (backoff), then fails after max_step_retries"
fill_capsule cara $((1024 * 1024)) $((1024 * 1024)) $((1024 * 1024))
canister_call "$BACKEND" admin_get_config
check "max_step_retries is the default 8" "8 : nat32" "$(field max_step_retries)"
create_personal cara
mig=$(migration_id_of_record)
wait_state cara Importing 200 || die "cara never reached Importing" Importing "$STATE $REPLY"
personal=$(canister_id_of_record)
mgmt_as cara stop_canister "$personal"
check "stop_canister by cara replied" 0 "$CALL_RC"
rounds 20
creation_status cara
check "cara still Importing 10 s after the stop (a stopped canister is retried)" Importing "$(rec_state)"
check_cmp "cara: the watch counts retries" -ge "$(field_nat step_retries)" 1
wait_final_every cara 16 80
check "cara Failed" Failed "$STATE"
check_contains "cara: failed in Importing" "failed_in = opt variant { Importing }" "$REPLY"
check_contains "cara: CallFailed at import_status, code 5" 'code = 5 : nat32' "$REPLY"
check_contains "cara: the reject says the canister is stopped" "is stopped" "$REPLY"
# Entered Importing at I, failed at F: the backoffs 1 + 2 + ... + 128 s lie between.
seconds_in_importing
echo "   cara was Importing for $SECS s before it failed"
check_cmp "cara: failed only after the backoffs (>= 255 s in Importing)" -ge "$SECS" 255
canister_call --as cara "$BACKEND" add_memory '(record { title = "after"; description = ""; tags = vec {}; kind = variant { Note }; encryption = null; blobs = vec {} })'
check_contains "cara's capsule is writable again" "Ok = record" "$REPLY"
# The cleanup starts the stopped canister again, so its cycles come back to the reserve.
canister_call "$BACKEND" admin_cleanup_creation "($mig : nat64)"
check_contains "admin_cleanup_creation of cara's stopped canister: Ok" "Ok =" "$REPLY"
returned=$(printf '%s' "$REPLY" | sed -n 's/.*Ok = \([0-9_]*\).*/\1/p' | tr -d '_')
echo "   cleanup of cara's stopped canister returned $returned cycles"
check_cmp "the stopped canister's cycles came back (> 1 G)" -gt "${returned:-0}" 1000000000
CALL_CMD="icemu status $personal"
check "cleanup deleted cara's stopped canister" gone "$(ic status "$personal" >/dev/null 2>&1 && echo present || echo gone)"
finish
