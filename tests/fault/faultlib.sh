# SPDX-License-Identifier: MIT
# Shared by the fault scripts (docs/fault-suite.md): a private data directory and tasks file,
# the taskdeck under test, assertions, and a check that nothing a test started survives it.
# Sourced; the script's first argument is the taskdeck binary.
set -euo pipefail

TASKDECK=${1:?usage: $0 PATH_TO_TASKDECK}
[[ -x "$TASKDECK" ]] || { echo "not executable: $TASKDECK" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/taskdeck-fault.XXXXXX")
export TASK_DATA_DIR="$WORK/data"
export TASK_FILE="$WORK/tasks.yml"
export XDG_CONFIG_HOME="$WORK/config" XDG_DATA_HOME="$WORK/share"
export QT_QPA_PLATFORM=offscreen
mkdir -p "$TASK_DATA_DIR" "$XDG_CONFIG_HOME" "$XDG_DATA_HOME"

# A number no other process on the machine has on its command line: every command a task
# starts carries it, so what survives is found without guessing.
MARK="$$$RANDOM"

cat > "$TASK_FILE" <<YAML
version: 1
tasks:
  quick:
    title: Quick
    fields:
      - key: n
        type: integer
    shell: 'echo "line \$TASK_ARG_N mark $MARK"'
  slow:
    title: Slow
    fields:
      - key: n
        type: integer
    shell: 'sleep 0.4; echo "done \$TASK_ARG_N mark $MARK"'
  hold:
    title: Hold
    shell: 'echo "holding mark $MARK"; sleep 299.$MARK & sleep 298.$MARK & wait'
YAML

failures=0
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}
check() { # check DESCRIPTION COMMAND...
    local what=$1
    shift
    if "$@"; then echo "ok: $what"; else fail "$what"; fi
}

# Processes whose command line carries this test's mark (the tasks' shells and sleeps).
survivors() { pgrep -f -- "$MARK" || true; }

# Waits up to $1 seconds for COMMAND to succeed.
wait_for() {
    local seconds=$1
    shift
    local i
    for ((i = 0; i < seconds * 10; i++)); do
        "$@" && return 0
        sleep 0.1
    done
    return 1
}
no_survivors() { [[ -z "$(survivors)" ]]; }

td() { "$TASKDECK" "$@"; }

# Runs in the history with STATUS (any status without one), counted from history --json.
count_runs() {
    local json
    json=$(td history --json --limit 1000 ${1:+--status "$1"})
    grep -o '"status": *"[a-z]*"' <<<"$json" | wc -l
}

cleanup() {
    local pids
    pids=$(survivors)
    if [[ -n "$pids" ]]; then
        echo "killing what survived: $pids" >&2
        # shellcheck disable=SC2086
        kill -9 $pids 2>/dev/null || true
    fi
    chmod -R u+rwX "$WORK" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

finish() {
    if ((failures > 0)); then
        echo "$failures check(s) failed" >&2
        exit 1
    fi
    echo "all checks passed"
    exit 0
}
