#!/usr/bin/env bash
# Coverage 4: admin endpoints: enable/disable, admins, statistics, reserve top-up, threshold,
# low-water alerts, listing, manifests, cleanup of a failed creation.
source "$(dirname "$0")/lib.sh"

deploy_backend
top_up_reserve 50_000_000_000_000
fill_capsule alice 2000
fill_capsule bob 3000

echo "== rights"
canister_call --as alice "$BACKEND" admin_set_creation_enabled '(false)'
check_contains "admin_set_creation_enabled by a user: NotAdmin" "Err = variant { NotAdmin }" "$REPLY"
canister_call --query --as alice "$BACKEND" admin_get_stats
check_contains "admin_get_stats by a user: NotAdmin" "Err = variant { NotAdmin }" "$REPLY"
canister_call --as alice "$BACKEND" admin_set_admin "(principal \"$(ic identity carol)\", true)"
check_contains "admin_set_admin by a user: NotController" "Err = variant { NotController }" "$REPLY"
canister_call "$BACKEND" admin_set_admin "(principal \"$(ic identity carol)\", true)"
check_contains "admin_set_admin by the controller: carol added" "$(ic identity carol)" "$REPLY"
canister_call --query "$BACKEND" admin_list_admins
check_contains "admin_list_admins lists carol" "$(ic identity carol)" "$REPLY"

echo "== enable / disable"
canister_call --as carol "$BACKEND" admin_set_creation_enabled '(false)'
check_contains "carol (admin) disables creation" "creation_enabled = false" "$REPLY"
create_personal alice
check_contains "create while disabled: CreationDisabled" "Err = variant { CreationDisabled }" "$REPLY"
creation_status alice
check_contains "nothing recorded while disabled" "NoCreation" "$REPLY"
canister_call --as carol "$BACKEND" admin_set_creation_enabled '(true)'
check_contains "carol enables creation" "creation_enabled = true" "$REPLY"

echo "== reserve top-up and threshold"
r0=$(reserve_nat)
canister_call "$BACKEND" admin_top_up_reserve '(opt 1_000_000_000_000)'
check "top up from the balance: reserve + 1 T" "$((r0 + 1000000000000))" "$(field_nat reserve)"
canister_call --with-cycles 2_000_000_000_000 "$BACKEND" admin_top_up_reserve '(null)'
check "top up with attached cycles: reserve + 2 T more" "$((r0 + 3000000000000))" "$(field_nat reserve)"
canister_call --as alice "$BACKEND" admin_top_up_reserve '(opt 1)'
check_contains "top up by a user: NotAdmin" "NotAdmin" "$REPLY"
set_config reserve_threshold "7_000_000_000_000 : nat"
canister_call --query "$BACKEND" admin_get_reserve
check "threshold set through the config shows in the reserve" 7000000000000 "$(field_nat threshold)"

echo "== low-water alert"
canister_call --query "$BACKEND" admin_get_reserve
check_contains "no alert while above the low-water mark" "alerts = vec {};" "$REPLY"
set_config low_water_mark "1_000_000_000_000_000 : nat"
rounds 3
canister_call --query "$BACKEND" admin_get_reserve
check_contains "an alert is recorded below the low-water mark" "low_water_mark = 1_000_000_000_000_000 : nat" "$(printf '%s' "$REPLY" | sed -n '/alerts = vec {/,/};/p')"
rounds 3
canister_call --query "$BACKEND" admin_get_reserve
check "at most one alert per day" 1 "$(printf '%s' "$REPLY" | grep -c ' at = ')"
set_config low_water_mark "5_000_000_000_000 : nat" reserve_threshold "1_000_000_000_000 : nat"

echo "== statistics, listing and manifests after one success"
create_personal alice
wait_final alice
check "alice Completed" Completed "$STATE"
mig_a=$(migration_id_of_record)
consumed=$(field_nat cycles_consumed)
canister_call --query "$BACKEND" admin_get_stats
check "stats: attempted 1" "1 : nat64" "$(field attempted)"
check "stats: succeeded 1" "1 : nat64" "$(field succeeded)"
check "stats: total cycles = the record's cycles_consumed" "$consumed" "$(field_nat total_cycles_consumed)"
canister_call --query "$BACKEND" admin_get_reserve
check "reserve: total_consumed = the record's" "$consumed" "$(field_nat total_consumed)"
canister_call --query "$BACKEND" admin_list_creations '(null, 10 : nat32)'
check_contains "admin_list_creations lists the migration" "migration_id = $mig_a : nat64" "$REPLY"
canister_call --query --as alice "$BACKEND" admin_get_manifest_page "($mig_a : nat64, record { section = variant { Capsule }; index = 0 : nat64 })"
check_contains "admin_get_manifest_page by a user: NotAdmin" "NotAdmin" "$REPLY"
canister_call --query "$BACKEND" admin_get_manifest_page "(999 : nat64, record { section = variant { Capsule }; index = 0 : nat64 })"
check_contains "admin_get_manifest_page of an unknown migration: an error naming it" "no migration 999" "$REPLY"

echo "== cleanup of a failed creation"
set_config max_step_retries "0 : nat32"
ic fault fail-install-code 1 > /dev/null
create_personal bob
wait_final bob
check "bob Failed (install_code failed, no retries)" Failed "$STATE"
check_contains "bob failed in Installing" "failed_in = opt variant { Installing }" "$REPLY"
mig_b=$(migration_id_of_record)
personal_b=$(canister_id_of_record)
canister_call --query "$BACKEND" admin_get_stats
check "stats: failed 1" "1 : nat64" "$(field failed)"
r1=$(reserve_nat)
n1=$(canister_count)
canister_call --as alice "$BACKEND" admin_cleanup_creation "($mig_b : nat64)"
check_contains "admin_cleanup_creation by a user: NotAdmin" "NotAdmin" "$REPLY"
canister_call "$BACKEND" admin_cleanup_creation "($mig_a : nat64)"
check_contains "admin_cleanup_creation of a Completed creation: refused" "Err" "$REPLY"
canister_call "$BACKEND" admin_cleanup_creation "($mig_b : nat64)"
check_contains "admin_cleanup_creation: Ok (cycles returned)" "Ok =" "$REPLY"
returned=$(ok_nat)
check_cmp "cleanup returned cycles" -gt "${returned:-0}" 0
check "cleanup: the reserve is credited" "$((r1 + ${returned:-0}))" "$(reserve_nat)"
check "cleanup: the canister is deleted" "$((n1 - 1))" "$(canister_count)"
CALL_CMD="icemu status $personal_b"
check "cleanup: icemu status of the deleted canister fails" 1 "$(ic status "$personal_b" >/dev/null 2>&1 && echo 0 || echo 1)"
creation_status bob
check_contains "cleanup: the record has no canister" "canister_id = null" "$REPLY"
finish
