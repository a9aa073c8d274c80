#!/usr/bin/env bash
# The main job: a full migration on the emulator. Builds what is missing, deploys the backend,
# tops up its cycles reserve, fills a capsule with realistic content, creates the personal
# canister with a live byte-level progress bar and the state timeline, then prints both sides'
# verified manifest roots, the new controllers, the cycles the reserve paid, burned and left,
# and the emulated and wall time taken.
# Options are passed to the demo: --memories N, --mib N, --connections N, --round-ms N.
set -euo pipefail
cd "$(dirname "$0")/.."
first_run=0
[ -x target/debug/demo ] || first_run=1
echo "== demo: building the two canisters it runs for wasm32 (scripts/build.sh --main: personal and"
echo "   backend; nothing to do when they are up to date; the test and benchmark variants are not built)"
scripts/build.sh --main
if [ "$first_run" = 1 ]; then
    echo "== demo: building the demo and the emulator it runs the canisters on (the first build"
    echo "   compiles wasmtime and cranelift: several minutes on 2 cores; later runs take seconds)"
fi
# Not -q: a build waiting for another one sharing target/ says so ("Blocking waiting for file lock").
cargo build --locked -p e2e --bin demo
exec target/debug/demo "$@"
