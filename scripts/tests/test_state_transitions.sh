#!/usr/bin/env bash
# Coverage 1: each creation state transition, one at a time. The flow is held at every state
# (Exporting excepted: see below; it is checked in the timeline and by the frozen capsule)
# with the emulator's fault controls (the backend's timer traps; aaaaa-aa or the personal
# canister paused), observed with get_creation_status over several rounds, then released.
source "$(dirname "$0")/lib.sh"

TIMER='<ic-cdk internal> timer_executor'
deploy_backend
top_up_reserve
fill_capsule alice 1000 $((300 * 1024)) $((1024 * 1024))
# held STATE NAME: several rounds pass and the state stays STATE.
held() {
    rounds 6
    creation_status alice
    check "$2" "$1" "$(rec_state)"
}

echo "== NotStarted (the backend's timer traps, so the queue is not served)"
ic fault trap --canister backend --method "$TIMER" > /dev/null
create_personal alice
check "create_personal_canister replies NotStarted" NotStarted "$(rec_state)"
held NotStarted "held at NotStarted while the timer traps"
ic fault clear > /dev/null

echo "== NotStarted -> Exporting -> Creating (held: aaaaa-aa paused, create_canister waits)"
# Exporting is entered and left inside one backend message for a capsule this small (the export
# runs in the admission message up to its instruction share), so it is not observable at a
# round boundary: it is checked in the timeline and by its effect, a frozen capsule.
ic fault clear > /dev/null
ic fault pause aaaaa-aa > /dev/null
wait_state alice Creating 40
check "reached Creating" Creating "$STATE"
held Creating "held at Creating while aaaaa-aa is paused"
check_contains "Creating: quote recorded (export done)" "quote = opt record" "$REPLY"
check_contains "Creating: no canister id yet" "canister_id = null" "$REPLY"
check_contains "Creating: Exporting is in the timeline" "state = variant { Exporting }" "$REPLY"
canister_call --as alice "$BACKEND" add_memory '(record { title = "late"; description = ""; tags = vec {}; kind = variant { Note }; encryption = null; blobs = vec {} })'
check_contains "Creating: the exported capsule is frozen (add_memory refused)" "CapsuleFrozen" "$REPLY"

echo "== Creating -> Installing (held: aaaaa-aa and the personal canister paused)"
count_before=$(canister_count)
# Management calls are delayed, so Installing spans several rounds; then paused.
ic fault delay --canister aaaaa-aa --rounds 6 > /dev/null
ic fault resume aaaaa-aa > /dev/null
wait_state alice Installing 60
check "reached Installing" Installing "$STATE"
personal=$(canister_id_of_record)
check_match "Installing: canister id journaled" '^[a-z0-9-]+-cai$' "$personal"
ic fault pause aaaaa-aa > /dev/null
ic fault pause "$personal" > /dev/null
held Installing "held at Installing while aaaaa-aa and the personal canister are paused"
check "Installing: exactly one canister created" "$((count_before + 1))" "$(canister_count)"

echo "== Installing -> Importing (held: the personal canister paused, its pulls wait)"
ic fault delay --canister "$personal" --rounds 4 > /dev/null
ic fault resume aaaaa-aa > /dev/null
ic fault resume "$personal" > /dev/null
wait_state alice Importing 80
check "reached Importing" Importing "$STATE"
ic fault pause "$personal" > /dev/null
rounds 2
creation_status alice
done1=$(progress_field bytes_done)
held Importing "held at Importing while the personal canister is paused"
done2=$(progress_field bytes_done)
check "Importing: bytes_done does not move while paused" "$done1" "$done2"
check "Importing: bytes_total = the capsule's blob bytes" "$((1000 + 300 * 1024 + 1024 * 1024))" "$(progress_field bytes_total)"

echo "== Importing -> Verifying (held: aaaaa-aa paused, the handoff waits)"
ic fault pause aaaaa-aa > /dev/null
ic fault resume "$personal" > /dev/null
wait_state alice Verifying 200
check "reached Verifying" Verifying "$STATE"
check "Verifying: bytes_done = bytes_total" "$(progress_field bytes_total)" "$(progress_field bytes_done)"
held Verifying "held at Verifying while aaaaa-aa is paused"
CALL_CMD="icemu status $personal"
check_contains "Verifying: the backend is still a controller" "$(ic identity admin >/dev/null; ic canisters | awk '$1=="backend"{print $2}')" "$(controllers_of "$personal")"

echo "== Verifying -> Completed (released)"
ic fault resume aaaaa-aa > /dev/null
wait_final alice 60
check "reached Completed" Completed "$STATE"
timeline=$(printf '%s' "$REPLY" | sed -n 's/^          state = variant { \([A-Za-z]*\) };/\1/p' | tr '\n' ' ')
check "timeline: every state once, in order" "NotStarted Exporting Creating Installing Importing Verifying Completed " "$timeline"
CALL_CMD="icemu status $personal"
check "Completed: controllers = the owner only" "$(ic identity alice) (alice)" "$(controllers_of "$personal")"
finish
