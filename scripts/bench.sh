#!/usr/bin/env bash
# The migration benchmark (issue 6): synthetic capsules moved to personal canisters by the
# pipeline and, in the same run, copied the naive way (bench_naive_copy, feature bench-naive),
# all measured with the emulator's IC metering. Prints a table and writes JSON.
#
#   scripts/bench.sh            full run (64 MiB, 1 GiB, 100,000 memories; takes a while):
#                               target/bench/migration.json
#   scripts/bench.sh --quick    a few MiB and a few hundred memories:
#                               target/bench/migration-quick.json; part of
#                               scripts/test.sh, so it only checks that the run completed and
#                               wrote well-formed JSON with finite numbers (no performance
#                               assertions)
#   scripts/bench.sh [--quick] --records
#                               only the records scenario (100,000 memories, or a few hundred
#                               with --quick) and the factory's: target/bench/migration-records[-quick].json
#
# Needs target/wasm/{personal,backend,backend-bench}.wasm.gz (scripts/build.sh builds them;
# run here when one is missing). Honours CARGO_TARGET_DIR. The driver is built in the dev
# profile (shared with `cargo test`; the emulator's engine is optimized there): the figures
# come from metering, so the profile changes only the wall time, and a release build of the
# engine with LTO would take longer than the full run.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
records=0
for arg in "$@"; do
    case "$arg" in
        --quick) quick=1 ;;
        --records) records=1 ;;
        *) echo "usage: scripts/bench.sh [--quick] [--records]" >&2; exit 2 ;;
    esac
done

for m in personal backend backend-bench; do
    if [[ ! -f target/wasm/$m.wasm.gz ]]; then
        echo "bench: target/wasm/$m.wasm.gz missing, running scripts/build.sh"
        scripts/build.sh
        break
    fi
done

mkdir -p target/bench
name=migration
flags=()
if ((records)); then
    name=$name-records
    flags+=(--records-only)
fi
if ((quick)); then
    name=$name-quick
    flags+=(--quick)
fi
out=target/bench/$name.json
cargo run --locked -q -p e2e --bin bench -- "${flags[@]}" --out "$out"


# Well-formed, every scenario and the factory scale object have the required keys, every
# number finite.
fkeys='["completed_records","pump_max_instructions","idle_timer_messages_per_hour","request_instructions","stats_instructions","list_page_instructions","baseline_empty_registry"]'
keys='["name","bytes","blob_bytes","rounds","calls","reply_fill_ratio","personal_instructions_per_byte","backend_instructions_per_byte","personal_instructions_per_record","backend_instructions_per_record","max_message_instructions_ratio","cycles_per_gib","verification_instructions","baseline_instruction_ratio","baseline_call_ratio","baseline_round_ratio"]'
if command -v jq > /dev/null; then
    jq -e --argjson keys "$keys" --argjson fkeys "$fkeys" '
        (.scenarios | type == "array" and length > 0)
        and (.factory as $f | $fkeys | all(. as $k | $f | has($k)))
        and all(.scenarios[]; . as $s | ($keys | all(. as $k | $s | has($k))) and (.name | type == "string"))
        and all(.. | numbers; isinfinite | not and (isnan | not))' "$out" > /dev/null \
        || { echo "bench: $out is not well-formed" >&2; exit 1; }
else
    python3 - "$out" "$keys" "$fkeys" <<'PY' || { echo "bench: $out is not well-formed" >&2; exit 1; }
import json, math, sys
def bad(c): raise ValueError(c)
doc = json.load(open(sys.argv[1]), parse_constant=bad)
keys = json.loads(sys.argv[2])
assert doc["scenarios"]
assert all(k in doc["factory"] for k in json.loads(sys.argv[3]))
def nums(v):
    if isinstance(v, dict): return [x for u in v.values() for x in nums(u)]
    if isinstance(v, list): return [x for u in v for x in nums(u)]
    return [v] if isinstance(v, (int, float)) and not isinstance(v, bool) else []
for s in doc["scenarios"]:
    assert all(k in s for k in keys) and isinstance(s["name"], str)
    assert all(math.isfinite(x) for x in nums(s))
assert all(math.isfinite(x) for x in nums(doc["factory"]))
PY
fi
echo "bench: $out well-formed"
