#!/usr/bin/env bash
# Coverage 2 (and 9): every creation endpoint's success and error responses:
# create_personal_canister, get_creation_status, purge_shared_capsule.
source "$(dirname "$0")/lib.sh"

deploy_backend
top_up_reserve
fill_capsule alice 5000

echo "== errors before any creation"
create_personal anonymous
check_contains "create_personal_canister as anonymous: Anonymous" "Err = variant { Anonymous }" "$REPLY"
create_personal bob
check_contains "create_personal_canister without a capsule: NoCapsule" "Err = variant { NoCapsule }" "$REPLY"
creation_status alice
check_contains "get_creation_status before creating: NoCreation" "Err = variant { NoCreation }" "$REPLY"
creation_status anonymous
check_match "get_creation_status as anonymous: an error" "Err = variant \{ (Anonymous|NoCreation) \}" "$REPLY"
canister_call --as alice "$BACKEND" purge_shared_capsule
check_contains "purge_shared_capsule before creating: NoCreation" "Err = variant { NoCreation }" "$REPLY"
canister_call --as alice "$BACKEND" create_personal_canister '(record { name = 5 })'
check "create_personal_canister with an ill-typed argument: refused before sending (exit 1)" 1 "$CALL_RC"
check_contains "ill-typed argument: icemu says the argument does not fit the .did" "does not fit" "$REPLY"

echo "== success"
create_personal alice '(record { name = opt "alice-home"; subnet_id = null })'
check_contains "create_personal_canister: Ok" "Ok = record" "$REPLY"
check "create_personal_canister: state NotStarted" NotStarted "$(rec_state)"
check_contains "create_personal_canister: name recorded" 'name = opt "alice-home"' "$REPLY"
check "create_personal_canister: attempts 1" "1 : nat32" "$(field attempts)"
canister_call --as alice "$BACKEND" purge_shared_capsule
check_contains "purge_shared_capsule while NotStarted: InvalidState" "InvalidState" "$REPLY"
creation_status alice
check_contains "get_creation_status: Ok" "Ok = record" "$REPLY"
creation_status bob
check_contains "get_creation_status of another user: NoCreation" "Err = variant { NoCreation }" "$REPLY"
wait_final alice
check "creation Completed" Completed "$STATE"
check_contains "get_creation_status: byte progress complete" "bytes_done = 5_000 : nat64" "$REPLY"
personal=$(canister_id_of_record)

echo "== after completion"
create_personal alice
check "create_personal_canister after Completed: the same record, Completed" Completed "$(rec_state)"
check "create_personal_canister after Completed: the same canister" "$personal" "$(canister_id_of_record)"
canister_call --as bob "$BACKEND" purge_shared_capsule
check_contains "purge_shared_capsule by a user without a creation: NoCreation" "Err = variant { NoCreation }" "$REPLY"
canister_call --as alice "$BACKEND" get_capsule
check_contains "shared copy still readable before the purge" "Ok = record" "$REPLY"
canister_call --as alice "$BACKEND" add_memory '(record { title = "x"; description = ""; tags = vec {}; kind = variant { Note }; encryption = null; blobs = vec {} })'
check_contains "shared copy is read-only and says where the capsule went" "CapsuleMoved" "$REPLY"
canister_call --as alice "$BACKEND" purge_shared_capsule
check_contains "purge_shared_capsule after Completed: Ok" "Ok = record" "$REPLY"
check_contains "purge_shared_capsule: purge requested" "purge_requested = true" "$REPLY"
rounds 4
creation_status alice
check_contains "shared capsule purged after the request" "shared_capsule_purged = true" "$REPLY"
personal_call --as alice "$personal" get_capsule
check_contains "the personal canister still serves the capsule" 'name = "alice"' "$REPLY"
finish
