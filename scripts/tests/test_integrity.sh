#!/usr/bin/env bash
# Coverage 5, data integrity: every blob is read from the backend before the migration and
# from the personal canister after it into files; their b3sum-compatible hashes (`manifest
# hash`) match the manifest's blob hashes; `manifest diff` of the backend's exported manifest
# and the personal canister's manifest shows no difference; the roots match the record's.
source "$(dirname "$0")/lib.sh"

deploy_backend
top_up_reserve
# Small capsule: blobs across the 256 KiB chunk boundary and one of ~1 MiB.
fill_capsule alice 1 1000 $((256 * 1024)) $((256 * 1024 + 1)) $((1024 * 1024 + 7))
mkdir -p "$WORK/before" "$WORK/after"

echo "== read every blob from the backend before the migration"
while read -r hash file; do
    n=$(basename "$file")
    read_blob "$BACKEND" alice "$hash" "$WORK/before/$n"
    check "backend read $n ($(stat -c %s "$file") bytes)" 0 "$CALL_RC"
    check "backend $n: manifest hash of the read file = uploaded hash" "$hash" "$(b3 "$WORK/before/$n")"
done < "$WORK/blobs/alice.hashes"

echo "== migrate"
create_personal alice
check_contains "create_personal_canister accepted" "NotStarted" "$REPLY"
wait_final alice
check "creation Completed" Completed "$STATE"
mig=$(migration_id_of_record)
personal=$(canister_id_of_record)
root=$(printf '%s' "$REPLY" | tr '\n' ' ' | sed -n 's/.*manifest = opt record {[^}]*root = blob "\([^"]*\)".*/\1/p' | tr -d '\\')
check_match "record holds the manifest root" '^[0-9a-f]{64}$' "$root"

echo "== read every blob from the personal canister after it"
while read -r hash file; do
    n=$(basename "$file")
    read_blob "$personal" alice "$hash" "$WORK/after/$n"
    check "personal read $n" 0 "$CALL_RC"
    check "personal $n: manifest hash of the read file = uploaded hash" "$hash" "$(b3 "$WORK/after/$n")"
    CALL_CMD="cmp $WORK/before/$n $WORK/after/$n"
    check "personal $n: same bytes as read from the backend" same "$(cmp -s "$WORK/before/$n" "$WORK/after/$n" && echo same || echo differ)"
done < "$WORK/blobs/alice.hashes"

echo "== manifests of both sides"
manifest_pages "$BACKEND" admin admin_get_manifest_page "$WORK/backend.manifest" "$mig"
check "backend manifest pages (admin_get_manifest_page $mig)" 0 "$?"
manifest_pages "$personal" alice get_manifest_page "$WORK/personal.manifest"
check "personal manifest pages (get_manifest_page as the owner)" 0 "$?"
CALL_CMD="manifest show --json $WORK/backend.manifest"
"$MANIFEST" show --json "$WORK/backend.manifest" > "$WORK/backend.json" 2>&1
check "backend manifest verifies" 0 "$?"
# Blob hashes listed by the manifest = hashes of the files read back.
# The manifest's blobs section (the last section of `show --json`).
sed -n '/^  "blobs": \[/,$p' "$WORK/backend.json" > "$WORK/blobs.json"
manifest_hashes=$(sed -n 's/.*"hash": "\([0-9a-f]*\)".*/\1/p' "$WORK/blobs.json" | sort | tr '\n' ' ')
file_hashes=$(for f in "$WORK"/after/*; do b3 "$f"; done | sort | tr '\n' ' ')
check "manifest blob hashes = manifest hash of every blob read from the personal canister" "$manifest_hashes" "$file_hashes"
big=$(b3 "$WORK/after/alice.4")
expected_chunks=$(tr -d ' \n' < "$WORK/blobs.json" | grep -o '"hash":"'"$big"'"[^]]*' | grep -o '[0-9a-f]\{64\}' | tail -n +2 | tr '\n' ' ')
actual_chunks=$("$MANIFEST" hash "$WORK/after/alice.4" | sed -n 's/^ *chunk [0-9]* //p' | tr '\n' ' ')
CALL_CMD="manifest hash $WORK/after/alice.4"
check "chunk hashes of the 1 MiB blob = the manifest's chunk_hashes" "$expected_chunks" "$actual_chunks"

CALL_CMD="manifest diff backend.manifest personal.manifest"
diff_out=$("$MANIFEST" diff "$WORK/backend.manifest" "$WORK/personal.manifest" 2>&1)
check "manifest diff exit status (0 = identical)" 0 "$?"
check "manifest diff: identical, root = the record's root" "identical $root" "$diff_out"
CALL_CMD="manifest show backend.manifest / personal.manifest"
broot=$("$MANIFEST" show "$WORK/backend.manifest" | sed -n 's/^manifest \([0-9a-f]*\) (verified)/\1/p')
proot=$("$MANIFEST" show "$WORK/personal.manifest" | sed -n 's/^manifest \([0-9a-f]*\) (verified)/\1/p')
check "backend and personal roots match" "$broot" "$proot"

echo "== a changed capsule makes manifest diff report the difference"
sed 's/bio = "suite"/bio = "tampered"/' "$WORK/personal.manifest" > "$WORK/changed.manifest"
"$MANIFEST" diff --no-verify "$WORK/backend.manifest" "$WORK/changed.manifest" > "$WORK/d.txt" 2>&1
rc=$?
CALL_CMD="manifest diff --no-verify backend.manifest changed.manifest"
check "manifest diff of an edited copy exits 1" 1 "$rc"
finish
