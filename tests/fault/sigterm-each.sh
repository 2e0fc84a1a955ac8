#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# SIGTERM during run --each: taskdeck stops cleanly with exit code 1 (docs/fault-suite.md),
# cancels what was running, reports the lines not started as skipped, leaves no process
# behind, and records every run it started as finished (succeeded or canceled): none is left
# running for a later start to find interrupted.
source "$(dirname "$0")/faultlib.sh"

input="$WORK/each.jsonl"
for ((i = 1; i <= 60; i++)); do echo "{\"n\": $i}"; done > "$input"

"$TASKDECK" run slow --each "$input" --max-concurrent 2 > "$WORK/each.out" 2> "$WORK/each.err" &
victim=$!
check "some runs finished before the signal" wait_for 60 grep -q "done\|succeeded" "$WORK/each.out" "$WORK/each.err"
sleep 0.5
kill -TERM "$victim"
code=0
timeout 60 tail --pid="$victim" -f /dev/null || fail "taskdeck did not stop within 60 s of SIGTERM"
wait "$victim" || code=$?
check "exit code 1 after SIGTERM (got $code)" test "$code" -eq 1
check "no process survives" wait_for 10 no_survivors
grep -qi "skipped" "$WORK/each.err" "$WORK/each.out" && echo "ok: lines not started are reported as skipped" ||
    fail "no skipped lines reported: $(tail -5 "$WORK/each.err")"

# The states as this taskdeck left them: history marks the runs of a dead process
# interrupted before it lists them, so any run it had left running shows up as interrupted.
succeeded=$(count_runs succeeded)
canceled=$(count_runs canceled)
check "some runs succeeded ($succeeded)" test "$succeeded" -ge 1
check "not every line ran ($succeeded of 60)" test "$succeeded" -lt 60
check "no run was left for recovery to mark interrupted" test "$(count_runs interrupted)" -eq 0
check "no run is left running" test "$(count_runs running)" -eq 0
check "every run is succeeded or canceled" test "$(count_runs)" -eq $((succeeded + canceled))
check "history --check finds no damage" td history --check
finish
