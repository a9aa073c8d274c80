#!/usr/bin/env bash
# Coverage 10: the backend built without the `personal-canister` feature (backend-core) has no
# creation or admin endpoints, and its capsule API still works (blobs in and out).
source "$(dirname "$0")/lib.sh"

deploy_backend backend-core
fill_capsule alice $((300 * 1024))
read -r hash file < "$WORK/blobs/alice.hashes"

args() {
    case "$1" in
        create_personal_canister) echo "$CREATE_ARG" ;;
        admin_top_up_reserve) echo '(null)' ;;
        admin_set_creation_enabled) echo '(true)' ;;
        export_chunks) echo '(1 : nat64, vec {})' ;;
        *) echo '()' ;;
    esac
}
for m in create_personal_canister get_creation_status purge_shared_capsule admin_get_stats admin_top_up_reserve admin_set_creation_enabled export_chunks; do
    # Typed with the full backend.did, sent as an update to the core build.
    canister_call --update --as alice --did backend/backend.did "$BACKEND" "$m" "$(args "$m")"
    check_contains "backend-core has no $m (method not found)" "has no update method '$m'" "$REPLY"
done
CALL_CMD="grep create_personal_canister backend/backend-core.did"
check "backend-core.did lists no creation endpoint" 0 "$(grep -c 'create_personal_canister\|admin_' backend/backend-core.did)"
canister_call --as alice "$BACKEND" get_capsule
check_contains "capsule API: get_capsule" "blob_count = 1 : nat64" "$REPLY"
canister_call --as alice "$BACKEND" list_memories '(record { start_after = null; limit = 10 : nat32 })'
check_contains "capsule API: list_memories" 'title = "photo 0"' "$REPLY"
read_blob "$BACKEND" alice "$hash" "$WORK/back"
check "capsule API: blob read back" 0 "$CALL_RC"
check "capsule API: blob hash" "$hash" "$(b3 "$WORK/back")"
canister_call --as alice "$BACKEND" update_capsule '(record { bio = opt "core"; name = null; settings = null })'
check_contains "capsule API: update_capsule" 'bio = "core"' "$REPLY"
finish
