#!/usr/bin/env bash
# Runs every test in the repository (building the canisters first) and exits non-zero on any
# failure. Ends with one summary line: `total: N passed, M failed`.
set -uo pipefail
cd "$(dirname "$0")/.."

# One full run compiles each crate once: incremental caches would only take disk space (set
# CARGO_INCREMENTAL=1 to keep them).
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}

log_dir=target/test-logs
mkdir -p "$log_dir"
rm -f "$log_dir"/*.log
failed_steps=()

step() {
    local name=$1
    shift
    echo "==> $name: $*"
    if ! "$@" 2>&1 | tee "$log_dir/$name.log"; then
        failed_steps+=("$name")
    fi
    echo "<== $name: target/ holds $(du -sh target 2>/dev/null | cut -f1); $(df -h --output=avail . | tail -1 | tr -d ' ') free on this disk"
}

step build scripts/build.sh
# Every crate's tests: unit, integration, the emulator's own, and end to end on the emulator.
step cargo cargo test --workspace --locked
# The backend built without the factory (its interface file and capsule behaviour).
step cargo-core cargo test --locked -p backend --no-default-features
# Where a PocketIC server is installed, the end-to-end tests run on it too.
if [[ -n ${POCKET_IC_BIN:-} ]]; then
    step cargo-pocketic cargo test --locked -p e2e --no-default-features --features pocketic
fi
# The bash integration suite over icemu (its own closing line: "N passed, M failed").
step bash-suite scripts/tests/run.sh
# The frontend: generated bindings up to date, types, unit tests (Vitest).
step frontend bash -c 'cd frontend && npm ci --no-audit --no-fund && npm run typecheck && npm test'
# The client's cases (creation, uploads, the admin console's calls, the capsule after the
# handoff) against the unit tests' fakes and the real wasm on `icemu serve` alike (about 40 s),
# so the fakes cannot drift from the canisters.
step frontend-contract bash -c 'cd frontend && npm run test:contract'
# The page in headless Chromium against `icemu serve` running the real backend.
step frontend-browser scripts/tests/frontend_browser.sh
# The migration benchmark in its quick mode, so it cannot rot (no performance assertions).
step bench scripts/bench.sh --quick

# Count the results of every cargo test binary.
passed=0
failed=0
while read -r p f; do
    passed=$((passed + p))
    failed=$((failed + f))
done < <(cat "$log_dir"/cargo*.log | sed -nE 's/^test result: [a-zA-Z]+\. ([0-9]+) passed; ([0-9]+) failed.*/\1 \2/p')

# And of the bash suite ("N passed, M failed").
if [[ -f $log_dir/bash-suite.log ]]; then
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log_dir/bash-suite.log" | tail -1)
    if [[ -n $line ]]; then
        passed=$((passed + $(cut -d' ' -f1 <<<"$line")))
        failed=$((failed + $(cut -d' ' -f3 <<<"$line")))
    fi
fi

# And of Vitest ("Tests  N passed | M failed (T)"): unit, contract and browser.
for log in "$log_dir/frontend.log" "$log_dir/frontend-contract.log" "$log_dir/frontend-browser.log"; do
    [[ -f $log ]] || continue
    line=$(sed -E 's/\x1b\[[0-9;]*m//g' "$log" | grep -E '^ +Tests +[0-9]' | tail -1)
    p=$(grep -oE '[0-9]+ passed' <<<"$line" | grep -oE '[0-9]+' || true)
    f=$(grep -oE '[0-9]+ failed' <<<"$line" | grep -oE '[0-9]+' || true)
    passed=$((passed + ${p:-0}))
    failed=$((failed + ${f:-0}))
done

if ((${#failed_steps[@]})); then
    echo "failed steps: ${failed_steps[*]}"
    [[ $failed -eq 0 ]] && failed=${#failed_steps[@]}
fi
echo "total: $passed passed, $failed failed"
[[ ${#failed_steps[@]} -eq 0 && $failed -eq 0 ]]
