#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench_pgqueue_guard: what the queue's semantics cost its throughput. N runs drained by
# 2 `taskdeck worker` processes on a throwaway local PostgreSQL, three ways on three databases
# of one server, the rounds interleaved so that the machine's load falls alike on each:
#   plain:   the guard trigger (taskdeck_runs_guard) dropped, no limits stored: the baseline;
#   guarded: the schema as it is (every update of a run checks the claim's holder);
#   capped:  guarded, with a max-running stored so high that it never binds: every claim locks
#            the limits rows and counts the held runs;
#   limited: capped, with a start rate as high stored too: every claim also takes tokens, and
#            workers claim nothing ahead (a claim is a start under a start rate).
# The runs are of the built-in checksum task on a 9-byte file (no process is started).
#
# Environment: PGGUARD_RUNS (default 5000), PGGUARD_CONCURRENCY (per worker, default 16),
# PGGUARD_ROUNDS (default 2). The last line is the JSON result: value = the limited
# configuration's best runs/s, baseline = the plain one's best.
set -euo pipefail

runs=${PGGUARD_RUNS:-5000}
concurrency=${PGGUARD_CONCURRENCY:-16}
rounds=${PGGUARD_ROUNDS:-2}
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
taskdeck="${TASKDECK_BIN:-$here/../app/taskdeck}"
[ -x "$taskdeck" ] || { echo "bench_pgqueue_guard: $taskdeck is not built" >&2; exit 2; }

# shellcheck source=benchpgqueue-server.sh
. "$here/benchpgqueue-server.sh"
pg_bench_server pgqueue_guard
url() { echo "postgresql://bench@127.0.0.1:$port/$1"; }

echo "machine: $(nproc) CPUs, load: $(cut -d' ' -f1-3 /proc/loadavg)"
printf 'taskdeck\n' > "$tmp/input.txt"
python3 -c "
import json, sys
line = json.dumps({'file': sys.argv[1]}) + '\n'
sys.stdout.write(line * int(sys.argv[2]))" "$tmp/input.txt" "$runs" > "$tmp/each.jsonl"
export TASK_DATA_DIR="$tmp/taskdeck-data"
unset TASK_FILE TASK_DATABASE_URL
cd "$tmp"

configs=(plain guarded capped limited)
for config in "${configs[@]}"; do
    psql -d postgres -c "CREATE DATABASE $config"
    "$taskdeck" --database "$(url "$config")" history > /dev/null # brings the schema
done
psql -d plain -c "DROP TRIGGER taskdeck_runs_guard ON taskdeck_runs"

declare -A best
results=""
for round in $(seq 1 "$rounds"); do
    for config in "${configs[@]}"; do
        extra=()
        [ "$config" = capped ] && extra=(--max-running 1000000)
        [ "$config" = limited ] && extra=(--max-running 1000000 --start-rate 1000000/s)
        "$taskdeck" --database "$(url "$config")" start checksum --each "$tmp/each.jsonl" > /dev/null
        start=$(now_ms)
        pids=()
        for w in 1 2; do
            "$taskdeck" --database "$(url "$config")" worker --concurrency "$concurrency" "${extra[@]}" 2>/dev/null &
            pids+=($!)
        done
        while [ "$(psql -d "$config" -c 'SELECT count(*) FROM taskdeck_queue')" != 0 ]; do sleep 0.05; done
        end=$(now_ms)
        for pid in "${pids[@]}"; do kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; done
        pids=()
        rate=$(python3 -c "print(round($runs * 1000 / max(1, $end - $start)))")
        [ "${best[$config]:-0}" -lt "$rate" ] && best[$config]=$rate
        results+="$config:$rate "
        echo "round $round $config: $runs runs in $((end - start)) ms = $rate runs/s (load $(cut -d' ' -f1 /proc/loadavg))"
    done
done
[ "$(psql -d limited -c "SELECT count(*) FROM taskdeck_limits")" = 2 ] || { echo "bench_pgqueue_guard: limits not stored" >&2; exit 1; }

python3 - "$runs" "${best[plain]}" "${best[guarded]}" "${best[capped]}" "${best[limited]}" "$results" <<'PY'
import json, sys
runs, plain, guarded, capped, limited, results = sys.argv[1:]
plain, guarded, capped, limited = int(plain), int(guarded), int(capped), int(limited)
print(json.dumps({"bench": "pgqueue_guard", "value": limited, "baseline": plain,
                  "ratio": round(limited / plain, 3), "unit": "runs/s", "runs": int(runs),
                  "guarded": guarded, "guarded_ratio": round(guarded / plain, 3),
                  "capped": capped, "capped_ratio": round(capped / plain, 3),
                  "rounds": results.split()}))
PY
