#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A read-only history (the file 0444, its folder 0555): history, show, log and export work; run
# says the history cannot be written, naming the file; rerun is refused; nothing changes. As root, taskdeck runs
# without the capabilities that pass permission checks.
source "$(dirname "$0")/faultlib.sh"

out=$(td run quick --arg n=7 --json)
id=$(grep -o '"id": *"[^"]*"' <<<"$out" | head -1 | sed 's/.*"\([^"]*\)"$/\1/')
check "a run recorded" test -n "$id"

wrap=()
if [[ $(id -u) -eq 0 ]]; then
    if ! command -v setpriv >/dev/null; then
        echo "running as root without setpriv: permissions cannot be tested" >&2
        exit 77
    fi
    dropped=-dac_override,-dac_read_search,-fowner
    wrap=(setpriv --bounding-set "$dropped" --inh-caps "$dropped" --)
fi
ro() { "${wrap[@]}" "$TASKDECK" "$@"; }

history=$TASK_DATA_DIR/history.sqlite3
before=$(cksum < "$history")
find "$TASK_DATA_DIR" -type f -exec chmod 0444 {} +
chmod 0555 "$TASK_DATA_DIR"

check "history lists the run" grep -q "$id" <(ro history --json 2>"$WORK/history.err")
grep -q "not writable" "$WORK/history.err" && echo "ok: history says why it only reads" ||
    fail "history does not say the history is read-only: $(cat "$WORK/history.err")"
check "show prints the run" grep -q "$id" <(ro show "$id")
check "log prints the run's log" grep -q "line 7 mark $MARK" <(ro log "$id")
check "export works" grep -q "line 7 mark $MARK" <(ro export "$id")

# A run still runs (help: the history is only required by history, show, log, export and
# rerun), and says plainly, naming the file, that it is not recorded.
set +e
ro run quick --arg n=8 > "$WORK/run.out" 2> "$WORK/run.err"
code=$?
set -e
echo "run with a read-only history: exit code $code"
check "run says the history cannot be written, naming the file" \
    grep -q "history unavailable: .*$history cannot be written" "$WORK/run.err"
# rerun needs the history and is refused.
set +e
ro rerun "$id" > "$WORK/rerun.out" 2> "$WORK/rerun.err"
code=$?
set -e
check "rerun is refused with exit code 2 (got $code)" test "$code" -eq 2
check "rerun says the history cannot be written" grep -q "cannot be written" "$WORK/rerun.err"
check "the history file is unchanged" test "$(cksum < "$history")" = "$before"

# A folder that can be written, but a -shm file left read-only (by another user's Taskdeck,
# say): still read, and the -shm file is named.
chmod 0755 "$TASK_DATA_DIR"
touch "$history-shm"
chmod 0444 "$history-shm"
check "history reads past a read-only -shm file" grep -q "$id" <(ro history --json 2>"$WORK/shm.err")
check "the -shm file is named" grep -q "$history-shm is not writable" "$WORK/shm.err"
rm -f "$history-shm"

find "$TASK_DATA_DIR" -type f -exec chmod 0644 {} +
check "writable again, runs are recorded" td run quick --arg n=9
check "two runs in the history" test "$(count_runs succeeded)" -eq 2
finish
