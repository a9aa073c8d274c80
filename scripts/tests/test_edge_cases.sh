#!/usr/bin/env bash
# Coverage 7: partial failures, timeouts, recovery by retry and by cleanup.
source "$(dirname "$0")/lib.sh"

deploy_backend backend-test
top_up_reserve
fill_capsule alice $((256 * 1024 + 5)) 900
fill_capsule bob 1500

echo "== partial failure: tampered chunks fail the import; the data stays intact"
canister_call --as alice "$BACKEND" test_tamper_chunks '(true)'
check "test_tamper_chunks is for controllers only" 15 "$CALL_RC"
canister_call "$BACKEND" test_tamper_chunks '(true)'
check "test_tamper_chunks(true) by the controller" 0 "$CALL_RC"
canister_call --as alice "$BACKEND" get_capsule; before="$REPLY"
create_personal alice
wait_final alice
check "alice Failed" Failed "$STATE"
check_contains "failed in Importing" "failed_in = opt variant { Importing }" "$REPLY"
check_contains "ImportFailed names the chunk" "ImportFailed" "$REPLY"
personal=$(canister_id_of_record)
canister_call --as alice "$BACKEND" get_capsule
CALL_CMD="get_capsule before and after the failed creation"
check "capsule unchanged after the failure" "$before" "$REPLY"

echo "== recovery by retry: the same canister is reused"
canister_call "$BACKEND" test_tamper_chunks '(false)'
create_personal alice
check "retry: attempts 2" "2 : nat32" "$(field attempts)"
wait_final alice
check "retry Completed" Completed "$STATE"
check "retry reused the canister" "$personal" "$(canister_id_of_record)"
read -r hash file < "$WORK/blobs/alice.hashes"
read_blob "$personal" alice "$hash" "$WORK/back"
check "retry: a blob read from the personal canister hashes right" "$hash" "$(b3 "$WORK/back")"

echo "== timeout: a management canister that does not answer keeps the step waiting, then it resumes"
ic fault pause aaaaa-aa > /dev/null
create_personal bob
rounds 20
creation_status bob
check "bob waits at Creating while aaaaa-aa does not answer" Creating "$(rec_state)"
ic fault resume aaaaa-aa > /dev/null
wait_final bob
check "bob Completed once aaaaa-aa answers" Completed "$STATE"

echo "== recovery by cleanup: a failed install, cleaned up, then a retry with a new canister"
fill_capsule dave 2500
set_config max_step_retries "0 : nat32"
ic fault fail-install-code 1 > /dev/null
create_personal dave
wait_final dave
check "dave Failed in Installing" "Failed" "$STATE"
mig=$(migration_id_of_record)
old=$(canister_id_of_record)
canister_call "$BACKEND" admin_cleanup_creation "($mig : nat64)"
check_contains "cleanup Ok" "Ok =" "$REPLY"
CALL_CMD="icemu status $old"
check "cleanup deleted the canister" gone "$(ic status "$old" >/dev/null 2>&1 && echo present || echo gone)"
set_config max_step_retries "8 : nat32"
create_personal dave
check "retry after cleanup: attempts 2" "2 : nat32" "$(field attempts)"
check_contains "retry after cleanup: accepted" "Ok = record" "$REPLY"
check_contains "retry after cleanup: a new canister is created" "state = variant { Creating }" "$REPLY"
wait_final dave
check "retry after cleanup Completed" Completed "$STATE"
new="$(canister_id_of_record)"
check "retry after cleanup: another canister than the deleted one" yes "$([[ -n $new && $new != "$old" ]] && echo yes || echo no)"

echo "== a stopped personal canister during the import is waited for"
fill_capsule erin $((600 * 1024))
ic fault delay --canister aaaaa-aa --rounds 2 > /dev/null
create_personal erin
wait_state erin Importing 100
p=$(canister_id_of_record)
ic fault stop "$p" > /dev/null
rounds 10
creation_status erin
check "erin still Importing while its canister is stopped" Importing "$(rec_state)"
ic fault start "$p" > /dev/null
wait_final erin
check "erin Completed after the restart" Completed "$STATE"
finish
