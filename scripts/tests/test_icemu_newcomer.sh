#!/usr/bin/env bash
# A newcomer's migration by hand, with the commands icemu offers for it:
#   run-until-idle --until drives two migrations to Completed in one command each, with 1 s
#     rounds (emulated seconds = rounds); stopping short exits 3 and says so;
#   the personal canisters are listed as personal-ada / personal-bob and called by those names
#     with no --did (typed from the module's candid:service: `limit = 10` is sent as nat32);
#   upload prints the b3sum of each file, download verifies it, also from the personal canister;
#   the backend's copy answers reads after the move and refuses writes with CapsuleMoved.
source "$(dirname "$0")/lib.sh"

deploy_backend
top_up_reserve
fill_capsule ada $((700 * 1024)) 5000
fill_capsule bob 300000
read -r ada_hash ada_file < "$WORK/blobs/ada.hashes"

# Uploading with icemu: the blob id is the b3sum of the file.
f=$(make_blob extra 600000)
CALL_CMD="icemu upload --as ada backend $f"
out=$(ic upload --as ada backend "$f" 2>&1); rc=$?
check "upload exits 0" 0 "$rc"
check "upload prints <b3sum>  <file>" "$(b3 "$f")  $f" "$out"

create_personal ada
create_personal bob
CALL_CMD="icemu run-until-idle --max 3"
out=$(ic run-until-idle --max 3 2>&1); rc=$?
check "three rounds are not enough: exit 3" 3 "$rc"
check_contains "and it says so" "not idle after --max 3 rounds" "$out"

for who in ada bob; do
    CALL_CMD="icemu run-until-idle --until Completed --as $who --poll backend get_creation_status"
    out=$(ic run-until-idle --until Completed --as "$who" --poll backend get_creation_status 2>&1); rc=$?
    check "run-until-idle --until Completed ($who) exits 0" 0 "$rc"
    check_match "it reports rounds and as many emulated seconds ($who)" '^reached: .*: ([0-9]+) rounds, \1\.0 s emulated' "$out"
    creation_status "$who"
    check "$who's creation is Completed right after" Completed "$(rec_state)"
    [ "$who" = ada ] && ada_out=$out
done
check_match "ada's migration took under 200 rounds" '^reached: .*: [0-9]{1,2} rounds|^reached: .*: 1[0-9]{2} rounds' "$ada_out"
echo "      ada: $ada_out"
run_until_final ada
check "run_until_final on a finished creation: Completed at once" "Completed" "$STATE"
check_match "in one round" ': 1 rounds' "$RUN_OUT"

CALL_CMD="icemu canisters"
list=$(ic canisters)
check_contains "canisters lists personal-ada" "personal-ada " "$list"
check_contains "canisters lists personal-bob" "personal-bob " "$list"
check_contains "derived names are marked" "(created by a canister; name derived)" "$list"
check "three canisters listed" 3 "$(printf '%s\n' "$list" | grep -c ' ')"
check_contains "status names ada as the controller" "(ada)" "$(ic status personal-ada)"

# The interfaces the modules carry are the committed .did files, byte for byte.
CALL_CMD="icemu metadata personal-ada candid:service | cmp - personal/personal.did"
check "personal-ada's candid:service = personal/personal.did" 0 "$(ic metadata personal-ada candid:service | cmp -s - personal/personal.did; echo $?)"
CALL_CMD="icemu metadata backend candid:service | cmp - backend/backend.did"
check "backend's candid:service = backend/backend.did" 0 "$(ic metadata backend candid:service | cmp -s - backend/backend.did; echo $?)"
check "personal-ada's module is named personal" personal "$(ic metadata personal-ada name)"
out=$(ic metadata backend no-such-section 2>&1); rc=$?
check "a missing section: exit 1" 1 "$rc"
check_contains "and it says which" "no public metadata \`no-such-section\`" "$out"

# Typed calls by name, no --did: an untyped `10` would be an int and trap decoding nat32.
canister_call --as ada personal-ada list_memories '(record { start_after = null; limit = 10 })'
check "list_memories by name, untyped number: replied" 0 "$CALL_RC"
check_contains "reply field names from candid:service" 'title = "photo 0"' "$REPLY"
canister_call --as ada personal-ada get_capsule
check_contains "get_capsule on personal-ada" 'name = "ada"' "$REPLY"

# Download from the personal canister, verified.
CALL_CMD="icemu download --as ada personal-ada $ada_hash --out $WORK/back"
out=$(ic download --as ada personal-ada "$ada_hash" --out "$WORK/back" 2>&1); rc=$?
check "download exits 0" 0 "$rc"
check_contains "download says the hash was verified" "hash verified" "$out"
check "downloaded bytes = uploaded bytes" "$(b3 "$ada_file")" "$(b3 "$WORK/back")"
# Bob cannot read Ada's blob; nothing is written.
CALL_CMD="icemu download --as bob personal-ada $ada_hash --out $WORK/bob-back"
out=$(ic download --as bob personal-ada "$ada_hash" --out "$WORK/bob-back" 2>&1); rc=$?
check "bob downloading from ada's canister: exit 1" 1 "$rc"
check "nothing written for bob" "no" "$([ -e "$WORK/bob-back" ] || [ -e "$WORK/bob-back.part" ] && echo yes || echo no)"
# A new upload into the personal canister.
f=$(make_blob later 300000)
out=$(ic upload --as ada personal-ada "$f" 2>&1); rc=$?
check "upload into personal-ada" "0 $(b3 "$f")  $f" "$rc $out"

# The backend's copy after the move.
canister_call --as ada backend get_capsule
check_contains "backend get_capsule still answers (read-only copy)" 'Ok = record' "$REPLY"
canister_call --as ada backend update_capsule '(record { bio = opt "x"; name = null; settings = null })'
check_contains "backend writes answer CapsuleMoved" 'CapsuleMoved' "$REPLY"

CALL_CMD="icemu run-until-idle"
out=$(ic run-until-idle 2>&1); rc=$?
check "then the subnet goes idle" "0" "$rc"
check_match "idle: within the quiet window" '^idle: ' "$out"

# Ada deletes her canister herself (she controls it): its derived name goes with it.
pid=$(ic canisters | awk '$1 == "personal-ada" { print $2 }')
canister_call --as ada aaaaa-aa stop_canister "(record { canister_id = principal \"$pid\" })"
canister_call --as ada aaaaa-aa delete_canister "(record { canister_id = principal \"$pid\" })"
check "ada deletes personal-ada" 0 "$CALL_RC"
check_not_contains "a deleted canister's derived name is dropped" "personal-ada" "$(ic canisters)"
check_contains "personal-bob stays" "personal-bob" "$(ic canisters)"
finish
