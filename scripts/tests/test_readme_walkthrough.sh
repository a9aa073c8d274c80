#!/usr/bin/env bash
# The READMEs' own command lines still work as written: every code block that follows a
# `<!-- walkthrough -->` line in README.md and icemu/README.md is run line by line, in one
# shell, from the repository root, with `icemu` the suite's binary and TMPDIR inside this
# script's work directory (so `mktemp` state directories and files are removed afterwards).
# A line fails when it exits non-zero; its output is shown. Build lines (`cargo build ...`,
# `scripts/build.sh`) are skipped: the suite runs on what is built.
source "$(dirname "$0")/lib.sh"

icemu() { "$ICEMU" "$@"; }
export TMPDIR="$WORK/tmp"
mkdir -p "$TMPDIR"

# blocks FILE: the walkthrough blocks of FILE as `LINENO<TAB>LINE`.
blocks() {
    awk '
        /^<!-- walkthrough -->/ { armed = 1; next }
        armed && /^```/ && !inside { inside = 1; next }
        inside && /^```/ { inside = 0; armed = 0; next }
        inside { print NR "\t" $0 }
    ' "$1"
}

for readme in README.md icemu/README.md; do
    n=0
    while IFS=$'\t' read -r lineno line; do
        cmd="${line%%  #*}"                       # drop a trailing comment
        [[ "$cmd" =~ ^[[:space:]]*(#|$) ]] && continue
        case "$cmd" in
            "cargo build"*|scripts/build.sh*) echo "skip $readme:$lineno (built by the suite): $cmd"; continue ;;
        esac
        n=$((n + 1))
        CALL_CMD="$cmd"
        eval "$cmd" > "$WORK/out/line" 2>&1
        rc=$?
        if [ "$rc" = 0 ]; then
            pass "$readme:$lineno works as written: $(printf '%s' "$cmd" | cut -c1-90)"
        else
            _fail "$readme:$lineno works as written" "exit 0" "exit $rc: $(cat "$WORK/out/line")"
        fi
    done < <(blocks "$readme")
    check_cmp "$readme has walkthrough lines" -gt "$n" 3
done
finish
