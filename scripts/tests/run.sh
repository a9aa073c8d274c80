#!/usr/bin/env bash
# Runs the bash integration suite: every scripts/tests/test_*.sh and icemu_smoke.sh, each in
# its own process with its own emulator state directory, prints their output and ends with
# one line `N passed, M failed` (checks counted across scripts). Exit status 1 if any failed.
#   scripts/tests/run.sh [--shuffle] [NAME_FILTER...]
# A script that exits non-zero without printing a FAIL line counts as one failed check;
# icemu_smoke.sh (no PASS lines of its own) counts as one check.
set -uo pipefail
cd "$(dirname "$0")/../.."
shuffle=0
filters=()
for a in "$@"; do
    case "$a" in
        --shuffle) shuffle=1 ;;
        -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
        *) filters+=("$a") ;;
    esac
done
[ -f target/wasm/backend.wasm.gz ] || { echo "target/wasm missing: run scripts/build.sh first"; echo "0 passed, 1 failed"; exit 1; }
if [ -z "${ICEMU:-}" ]; then
    ICEMU="${CARGO_TARGET_DIR:-target}/debug/icemu"
    [ -x "$ICEMU" ] || cargo build -q -p icemu
fi
if [ -z "${MANIFEST:-}" ]; then
    MANIFEST="${CARGO_TARGET_DIR:-target}/debug/manifest"
    [ -x "$MANIFEST" ] || cargo build -q -p manifests --features cli --bin manifest
fi
export ICEMU="$(realpath "$ICEMU")" MANIFEST="$(realpath "$MANIFEST")"

scripts=(scripts/tests/icemu_smoke.sh scripts/tests/test_*.sh)
if [ "${#filters[@]}" -gt 0 ]; then
    sel=()
    for s in "${scripts[@]}"; do for f in "${filters[@]}"; do [[ "$s" == *"$f"* ]] && sel+=("$s") && break; done; done
    scripts=("${sel[@]}")
fi
[ "$shuffle" = 1 ] && mapfile -t scripts < <(printf '%s\n' "${scripts[@]}" | shuf)

passed=0
failed=0
start=$(date +%s)
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for s in "${scripts[@]}"; do
    name=$(basename "$s" .sh)
    echo "===== $name"
    t0=$(date +%s)
    # Own process, own environment: ICEMU_STATE is chosen by each script (mktemp).
    env -u ICEMU_STATE bash "$s" 2>&1 | tee "$out"
    rc=${PIPESTATUS[0]}
    p=$(grep -c '^PASS ' "$out")
    f=$(grep -c '^FAIL ' "$out")
    if [ "$name" = icemu_smoke ]; then
        if [ "$rc" = 0 ]; then p=1; echo "PASS icemu_smoke"; else f=1; echo "FAIL icemu_smoke (exit $rc)"; fi
    elif [ "$rc" != 0 ] && [ "$f" = 0 ]; then
        f=1
        echo "FAIL $name exited $rc without a FAIL line"
    fi
    echo "----- $name: $p passed, $f failed ($(( $(date +%s) - t0 )) s)"
    passed=$((passed + p))
    failed=$((failed + f))
done
echo "suite time: $(( $(date +%s) - start )) s, ${#scripts[@]} scripts"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
