#!/usr/bin/env bash
# The frontend's browser test (issue 8): the built page in Debian's Chromium (playwright-core)
# against `icemu serve` running the real backend wasm. alice creates a capsule with files, creates
# her personal canister and watches the byte progress to Completed, then reads a file back from
# it; bob gets a fault injected (forwarded to the running server), sees the error, and recovers
# with the retry button once it is cleared; dave uploads two files (a progress bar each), sees his
# image's thumbnail and reloads the page mid-import. The admin console (browser/admin.test.ts):
# an admin reads a failing creation's reason and manifest (the download is checked with
# `manifest show`), cleans it up, edits the settings, tops up the reserve and sees the chart move;
# a non-admin is turned away; the console at 375 px. After the handoff (browser/after_handoff.test.ts):
# erin's outlook, "download my capsule" checked with `manifest verify`, the upgrade to the minor
# release backend-personal-next ships, the low-cycles warning and the purge guard's hold.
# Screenshots: target/frontend-screenshots/.
#
# Setup it does when needed: Chromium (`apt-get install -y chromium`, needs root), `npm ci`,
# `cargo build -p icemu` and the manifest CLI (into $CARGO_TARGET_DIR or target/; $ICEMU and
# $MANIFEST_BIN skip them),
# scripts/build.sh when target/wasm/backend.wasm.gz or backend-personal-next.wasm.gz is missing.
# Exits non-zero when the test fails; prints Vitest's summary and the run time either way.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
start=$(date +%s)

say() { echo "frontend_browser: $*"; }
fail() { echo "frontend_browser: FAIL: $*" >&2; exit 1; }

# Chromium.
chromium=${CHROMIUM:-/usr/bin/chromium}
if [[ ! -x $chromium ]]; then
    [[ $(id -u) -eq 0 ]] || fail "$chromium is missing and installing it needs root: apt-get install -y chromium"
    say "installing chromium"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; } \
        || fail "apt-get install -y chromium failed"
    [[ -x $chromium ]] || fail "chromium installed but $chromium is missing (set CHROMIUM)"
fi
export CHROMIUM=$chromium

# The canisters.
if [[ ! -f target/wasm/backend.wasm.gz || ! -f target/wasm/backend-personal-next.wasm.gz ]]; then
    say "building the canisters (scripts/build.sh)"
    scripts/build.sh
fi

# icemu.
if [[ -z ${ICEMU:-} ]]; then
    say "building icemu"
    cargo build -q -p icemu
    target_dir=${CARGO_TARGET_DIR:-target}
    [[ $target_dir = /* ]] || target_dir=$repo/$target_dir
    ICEMU=$target_dir/debug/icemu
fi
[[ -x $ICEMU ]] || fail "no icemu at $ICEMU"
export ICEMU

# The manifest CLI (the admin test reads the console's manifest download with it; the
# after-handoff test verifies the downloaded capsule archive with it).
if [[ -z ${MANIFEST_BIN:-} ]]; then
    say "building the manifest CLI"
    cargo build -q -p manifests --bin manifest
    target_dir=${CARGO_TARGET_DIR:-target}
    [[ $target_dir = /* ]] || target_dir=$repo/$target_dir
    MANIFEST_BIN=$target_dir/debug/manifest
fi
[[ -x $MANIFEST_BIN ]] || fail "no manifest CLI at $MANIFEST_BIN"
export MANIFEST_BIN

# The page's dependencies.
say "npm ci"
(cd frontend && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || fail "npm ci failed"

log=$(mktemp)
trap 'rm -f "$log"' EXIT
say "npm run test:browser (icemu: $ICEMU, chromium: $CHROMIUM)"
set +e
(cd frontend && npm run test:browser) 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

echo
say "summary"
sed -E 's/\x1b\[[0-9;]*m//g' "$log" | grep -E '^ +(Test Files|Tests|Duration) ' || echo "  (no Vitest summary: the run failed before the tests)"
say "screenshots: $(ls target/frontend-screenshots 2>/dev/null | grep -c png || true) in target/frontend-screenshots/"
say "run time $(( $(date +%s) - start )) s"
if [[ $status -ne 0 ]]; then
    fail "npm run test:browser exited with $status"
fi
say "ok"
