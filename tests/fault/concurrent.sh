#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Two, then three taskdeck processes writing one history at once (run --each of 150 lines
# each, with logs): nothing is lost. Every run is in the history with its log line.
source "$(dirname "$0")/faultlib.sh"

lines=150
total=0
for writers in 2 3; do
    pids=()
    for ((w = 1; w <= writers; w++)); do
        input="$WORK/each-$writers-$w.jsonl"
        for ((i = 1; i <= lines; i++)); do
            echo "{\"n\": $((writers * 10000 + w * 1000 + i))}"
        done > "$input"
        "$TASKDECK" run quick --each "$input" --max-concurrent 4 > "$WORK/out-$writers-$w" 2>&1 &
        pids+=($!)
    done
    for ((w = 1; w <= writers; w++)); do
        code=0
        wait "${pids[$((w - 1))]}" || code=$?
        check "$writers writers: writer $w exits 0 (got $code)" test "$code" -eq 0
    done
    total=$((total + writers * lines))
    check "$writers writers: all $total runs are in the history" test "$(count_runs succeeded)" -eq "$total"
done
check "no run in another state" test "$(count_runs)" -eq "$total"

# Every line's log is there: spot-check the first and last line of every writer.
ids_json=$(td history --json --limit 1000)
missing=0
for writers in 2 3; do
    for ((w = 1; w <= writers; w++)); do
        for i in 1 $lines; do
            n=$((writers * 10000 + w * 1000 + i))
            grep -q "\"n\": *\"\\?$n\"\\?" <<<"$ids_json" || { missing=$((missing + 1)); echo "no run with n=$n" >&2; }
        done
    done
done
check "the runs carry their arguments" test "$missing" -eq 0
check "history --check finds no damage" td history --check
finish
