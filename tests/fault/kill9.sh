#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# kill -9 of taskdeck in the middle of a run whose command started two more processes:
# nothing it started survives it, the next start records the run as interrupted, and the runs
# that had finished are intact, logs included.
source "$(dirname "$0")/faultlib.sh"

ids=()
for n in 1 2 3; do
    out=$(td run quick --arg n=$n --json)
    ids+=("$(grep -o '"id": *"[^"]*"' <<<"$out" | head -1 | sed 's/.*"\([^"]*\)"$/\1/')")
done
check "three finished runs recorded" test "$(count_runs succeeded)" -eq 3

"$TASKDECK" run hold > "$WORK/hold.out" 2> "$WORK/hold.err" &
victim=$!
check "the command's processes started" wait_for 60 eval '[[ $(survivors | wc -l) -ge 3 ]]'
check "the run is recorded as running" wait_for 60 eval '[[ $(count_runs running) -eq 1 ]]'
kill -9 "$victim"
wait "$victim" 2>/dev/null || true

check "no process of the killed run survives it" wait_for 20 no_survivors
survivors | xargs -r ps -o pid,ppid,pgid,args -p >&2 || true

# The next start: the run is interrupted, nothing is left running.
check "the next start marks the run interrupted" test "$(count_runs interrupted)" -eq 1
check "no run is left running" test "$(count_runs running)" -eq 0
check "the finished runs are still there" test "$(count_runs succeeded)" -eq 3
n=0
for id in "${ids[@]}"; do
    n=$((n + 1))
    check "run $n's log is intact" grep -q "line $n mark $MARK" <(td log "$id")
done
check "history --check finds no damage" td history --check
finish
