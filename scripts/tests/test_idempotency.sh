#!/usr/bin/env bash
# Coverage 6: repeated calls give the same record and one canister.
source "$(dirname "$0")/lib.sh"

deploy_backend
top_up_reserve
fill_capsule alice 3000 $((260 * 1024))
n0=$(canister_count)

create_personal alice
mig=$(migration_id_of_record)
first_created=$(field created_at)
for i in 2 3; do
    create_personal alice
    check "call $i before any round: same migration id" "$mig" "$(migration_id_of_record)"
    check "call $i before any round: same created_at" "$first_created" "$(field created_at)"
done
creation_status alice; a="$REPLY"
creation_status alice
CALL_CMD="get_creation_status twice, no round between"
check "get_creation_status twice: identical replies" "$a" "$REPLY"
wait_state alice Importing 100
create_personal alice
check "call during Importing: same migration id" "$mig" "$(migration_id_of_record)"
check "call during Importing: state not reset" Importing "$(rec_state)"
check "call during Importing: attempts still 1" "1 : nat32" "$(field attempts)"
wait_final alice
check "Completed" Completed "$STATE"
personal=$(canister_id_of_record)
for i in 1 2; do
    create_personal alice
    check "call $i after Completed: same canister" "$personal" "$(canister_id_of_record)"
    check "call $i after Completed: Completed" Completed "$(rec_state)"
    check "call $i after Completed: same migration id" "$mig" "$(migration_id_of_record)"
done
check "exactly one canister was created" "$((n0 + 1))" "$(canister_count)"
canister_call --query "$BACKEND" admin_get_stats
check "stats: one attempt" "1 : nat64" "$(field attempted)"
canister_call --query "$BACKEND" admin_list_creations '(null, 10 : nat32)'
check "admin_list_creations: one record" 1 "$(printf '%s' "$REPLY" | grep -c 'migration_id = ')"
finish
