#!/usr/bin/env bash
# Coverage 3: insufficient cycles, invalid states, network failures (injected rejects of the
# pulls, reports and management calls; delayed delivery).
source "$(dirname "$0")/lib.sh"

deploy_backend
top_up_reserve 100_000_000_000_000
fill_capsule alice 4000
fill_capsule bob $((300 * 1024)) 7000

echo "== insufficient cycles: the quote would take the reserve below the threshold"
set_config reserve_threshold "100_000_000_000_000 : nat"
r0=$(reserve_nat)
n0=$(canister_count)
create_personal alice
wait_final alice
check "alice Failed" Failed "$STATE"
check_contains "error: InsufficientCycles with available and required" "InsufficientCycles = record" "$REPLY"
check_contains "error names the reserve available" "available = 100_000_000_000_000 : nat" "$REPLY"
check_contains "no canister was created (record)" "canister_id = null" "$REPLY"
check "no canister was created (emulator)" "$n0" "$(canister_count)"
check "the reserve is untouched" "$r0" "$(reserve_nat)"
canister_call --as alice "$BACKEND" add_memory '(record { title = "after"; description = ""; tags = vec {}; kind = variant { Note }; encryption = null; blobs = vec {} })'
check_contains "the capsule is writable again" "Ok = record" "$REPLY"
set_config reserve_threshold "1_000_000_000_000 : nat"

echo "== invalid states"
canister_call "$BACKEND" admin_cleanup_creation '(12345 : nat64)'
check_contains "cleanup of an unknown migration: UnknownMigration" "UnknownMigration" "$REPLY"
create_personal alice
check "retry after Failed: NotStarted, attempts 2" "NotStarted 2 : nat32" "$(rec_state) $(field attempts)"
mig=$(migration_id_of_record)
canister_call "$BACKEND" admin_cleanup_creation "($mig : nat64)"
check_contains "cleanup of a queued creation: Ok (nothing created yet)" "Ok = 0 : nat" "$REPLY"
creation_status alice
check "the cleanup stopped the creation: Failed" Failed "$(rec_state)"
check_contains "the cleanup stopped the creation: CancelledByAdmin" "CancelledByAdmin" "$REPLY"
create_personal alice
wait_final alice
check "alice Completed on retry" Completed "$STATE"
canister_call "$BACKEND" admin_cleanup_creation "($mig : nat64)"
check_contains "cleanup of a Completed creation: InvalidState" "InvalidState" "$REPLY"

echo "== network failures: transient rejects of management calls, pulls and reports"
ic fault reject --canister aaaaa-aa --method create_canister --count 2 --message "injected: create" > /dev/null
ic fault reject --canister aaaaa-aa --method install_code --count 1 --message "injected: install" > /dev/null
for m in export_raw_manifest_page export_chunks report_import_done; do
    ic fault reject --canister backend --method "$m" --count 2 --message "injected: $m" > /dev/null
done
CALL_CMD="icemu fault list"
check_contains "faults armed" "injected" "$(ic fault list)"
# Every message to the personal canister, once created, is also delayed (set below).
create_personal bob
wait_state bob Importing 200
personal=$(canister_id_of_record)
ic fault delay --canister "$personal" --rounds 3 > /dev/null
ic fault delay --canister aaaaa-aa --rounds 3 > /dev/null
wait_final bob 400
check "bob Completed despite rejects and delays" Completed "$STATE"
check "bob: one attempt (the rejects were retried, not fatal)" "1 : nat32" "$(field attempts)"
check "bob: all bytes imported" "$((300 * 1024 + 7000))" "$(progress_field bytes_done)"
CALL_CMD="icemu fault list"
check_not_contains "every injected reject was delivered (none left armed)" "injected" "$(ic fault list)"
ic fault clear > /dev/null

echo "== a permanent reject of create_canister fails the step after its retries"
fill_capsule carol 1000
set_config max_step_retries "1 : nat32"
ic fault reject --canister aaaaa-aa --method create_canister --count 10 --message "injected: down" > /dev/null
create_personal carol
wait_final carol
check "carol Failed" Failed "$STATE"
check_contains "carol: CallFailed at create_canister with the reject message" 'step = "create_canister"' "$REPLY"
check_contains "carol: the reject message is kept" "injected: down" "$REPLY"
check "carol: no cycles consumed" "0" "$(field_nat cycles_consumed)"
finish
