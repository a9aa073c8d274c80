#!/usr/bin/env bash
# The main job: a full migration on the emulator. Builds what is missing, deploys the backend,
# tops up its cycles reserve, fills a capsule with realistic content, creates the personal
# canister with a live byte-level progress bar and the state timeline, then prints both sides'
# verified manifest roots, the new controllers, the cycles consumed and the time taken.
# Options are passed to the demo: --memories N, --mib N, --connections N.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
cargo build --locked -p e2e --bin demo
exec target/debug/demo "$@"
