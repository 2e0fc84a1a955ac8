#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench_pgqueue: N runs through 2 `taskdeck worker` processes on a throwaway local PostgreSQL,
# against graphile-worker (npm, installed here into a temporary folder) with 2 processes,
# its localQueue batching on, the same server and the same job count. Three rounds each on
# the same database (the second and third show what a grown history and dead tuples cost).
# Then the enqueue-to-start latency, p50 and p99, under a light load (one run every 50 ms).
#
# The Taskdeck runs are of the built-in checksum task on a 9-byte file (no process is
# started); graphile-worker's job is an empty async function.
#
# Each round also says the CPU time the two workers and the server (every backend, the
# background processes included) spent during the drain, per run: where the time goes.
#
# Environment: PGQUEUE_RUNS (default 100000), PGQUEUE_CONCURRENCY (per worker, default 16),
# PGQUEUE_LATENCY_RUNS (default 200), PGQUEUE_STATEMENTS=1 (the server loads
# pg_stat_statements and the Taskdeck side ends with its statements: calls and time per run),
# PGQUEUE_SIDES (default "graphile taskdeck"; one side alone for a quick look, which then has
# no baseline and prints no JSON line). The last line is the JSON result: value = Taskdeck's
# best runs/s, baseline = graphile-worker's best.
set -euo pipefail

runs=${PGQUEUE_RUNS:-100000}
concurrency=${PGQUEUE_CONCURRENCY:-16}
latency_runs=${PGQUEUE_LATENCY_RUNS:-200}
statements=${PGQUEUE_STATEMENTS:-0}
sides=" ${PGQUEUE_SIDES:-graphile taskdeck} "
rounds=3
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
taskdeck="${TASKDECK_BIN:-$here/../app/taskdeck}"
[ -x "$taskdeck" ] || { echo "bench_pgqueue: $taskdeck is not built" >&2; exit 2; }
taskdeck="$(realpath "$taskdeck")" # the Taskdeck side runs in the temporary folder
[[ "$sides" != *" graphile "* ]] || command -v npm >/dev/null || { echo "bench_pgqueue: npm is not installed" >&2; exit 2; }

preload=()
[ "$statements" = 1 ] && preload=(-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all)
# shellcheck source=benchpgqueue-server.sh
. "$here/benchpgqueue-server.sh"
pg_bench_server pgqueue "${preload[@]}"
psql -d postgres -c "CREATE DATABASE taskdeck" -c "CREATE DATABASE graphile"
tdurl="postgresql://bench@127.0.0.1:$port/taskdeck"
gwurl="postgres://bench@127.0.0.1:$port/graphile"
# CPU time (user + system, ms) of the given processes so far.
ticks=$(getconf CLK_TCK)
cpu_ms() {
    local total=0 pid t
    for pid in "$@"; do
        t=$(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0)
        total=$((total + t))
    done
    echo $((total * 1000 / ticks))
}
# CPU time of the server so far: the postmaster, its ended children (waited for) and the live ones.
server_cpu_ms() {
    local master total pid
    master=$(head -1 "$tmp/data/postmaster.pid")
    total=$(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$master/stat")
    for pid in $(cat "/proc/$master/task/$master/children" 2>/dev/null); do
        total=$((total + $(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0)))
    done
    echo $((total * 1000 / ticks))
}
# "workers W ms, server S ms of CPU (W/N + S/N µs per run)" for a drain of N runs.
cpu_line() {
    python3 -c "import sys; w, s, n = map(int, sys.argv[1:]); print(f'CPU: workers {w} ms, server {s} ms = {w * 1000 / n:.0f} + {s * 1000 / n:.0f} us per run')" "$@"
}

echo "machine: $(nproc) CPUs, load: $(cut -d' ' -f1-3 /proc/loadavg)"

# --- graphile-worker -------------------------------------------------------------------
gw_rates=()
gwversion=none
: > "$tmp/gw-latency.txt"
if [[ "$sides" == *" graphile "* ]]; then
mkdir -p "$tmp/gw"
(cd "$tmp/gw" && npm init -y >/dev/null && npm install graphile-worker --no-audit --no-fund --loglevel=error >/dev/null)
gwversion=$(node -p "require('$tmp/gw/node_modules/graphile-worker/package.json').version")
cat > "$tmp/gw/bench.mjs" <<'EOF'
import { run, makeWorkerUtils } from "graphile-worker";
import { appendFileSync } from "node:fs";
const [mode, url, arg1, arg2] = process.argv.slice(2);
if (mode === "migrate" || mode === "enqueue" || mode === "trickle") {
  const utils = await makeWorkerUtils({ connectionString: url });
  await utils.migrate();
  if (mode === "enqueue") {
    const n = Number(arg1);
    for (let i = 0; i < n; i += 1000) {
      const specs = [];
      for (let j = i; j < Math.min(n, i + 1000); ++j) specs.push({ identifier: "noop", payload: {} });
      await utils.addJobs(specs);
    }
  } else if (mode === "trickle") {
    for (let i = 0; i < Number(arg1); ++i) {
      await utils.addJob("noop", { t: Date.now() });
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  await utils.release();
} else if (mode === "work") {
  const latencies = arg2;
  const runner = await run({
    preset: {
      worker: {
        connectionString: url,
        concurrentJobs: Number(arg1),
        pollInterval: 2000,
        localQueue: { size: 500 },
        completeJobBatchDelay: 0,
        failJobBatchDelay: 0,
      },
    },
    noHandleSignals: false,
    taskList: {
      noop: async (payload) => {
        if (latencies && payload && payload.t) appendFileSync(latencies, `${Date.now() - payload.t}\n`);
      },
    },
  });
  await runner.promise;
}
EOF
node "$tmp/gw/bench.mjs" migrate "$gwurl"

for round in $(seq 1 $rounds); do
    node "$tmp/gw/bench.mjs" enqueue "$gwurl" "$runs"
    start=$(now_ms)
    server_before=$(server_cpu_ms)
    pids=()
    for w in 1 2; do node "$tmp/gw/bench.mjs" work "$gwurl" "$concurrency" "" >/dev/null 2>&1 & pids+=($!); done
    until [ "$(psql -d graphile -c 'SELECT NOT EXISTS (SELECT 1 FROM graphile_worker.jobs)')" = t ]; do sleep 0.05; done
    end=$(now_ms)
    cpu=$(cpu_line "$(cpu_ms "${pids[@]}")" $(($(server_cpu_ms) - server_before)) "$runs")
    for pid in "${pids[@]}"; do kill "$pid"; wait "$pid" 2>/dev/null || true; done
    pids=()
    rate=$(python3 -c "print(round($runs * 1000 / max(1, $end - $start)))")
    gw_rates+=("$rate")
    echo "graphile-worker $gwversion round $round: $runs jobs in $((end - start)) ms = $rate jobs/s (load $(cut -d' ' -f1 /proc/loadavg)); $cpu"
done
: > "$tmp/gw-latency.txt"
pids=()
for w in 1 2; do node "$tmp/gw/bench.mjs" work "$gwurl" "$concurrency" "$tmp/gw-latency.txt" >/dev/null 2>&1 & pids+=($!); done
sleep 2
node "$tmp/gw/bench.mjs" trickle "$gwurl" "$latency_runs"
while [ "$(wc -l < "$tmp/gw-latency.txt")" -lt "$latency_runs" ]; do sleep 0.1; done
for pid in "${pids[@]}"; do kill "$pid"; wait "$pid" 2>/dev/null || true; done
pids=()
fi

# --- Taskdeck --------------------------------------------------------------------------
td_rates=()
: > "$tmp/td-latency.txt"
if [[ "$sides" == *" taskdeck "* ]]; then
printf 'taskdeck\n' > "$tmp/input.txt"
python3 -c "
import json, sys
line = json.dumps({'file': sys.argv[1]}) + '\n'
sys.stdout.write(line * int(sys.argv[2]))" "$tmp/input.txt" "$runs" > "$tmp/each.jsonl"
export TASK_DATABASE_URL="$tdurl" TASK_DATA_DIR="$tmp/taskdeck-data"
unset TASK_FILE
cd "$tmp"
for round in $(seq 1 $rounds); do
    "$taskdeck" start checksum --each "$tmp/each.jsonl" > /dev/null
    [ "$statements" = 1 ] && psql -d taskdeck -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" \
        -c "SELECT pg_stat_statements_reset()" > /dev/null
    start=$(now_ms)
    server_before=$(server_cpu_ms)
    pids=()
    for w in 1 2; do "$taskdeck" worker --concurrency "$concurrency" 2>/dev/null & pids+=($!); done
    until [ "$(psql -d taskdeck -c 'SELECT NOT EXISTS (SELECT 1 FROM taskdeck_queue)')" = t ]; do sleep 0.05; done
    end=$(now_ms)
    cpu=$(cpu_line "$(cpu_ms "${pids[@]}")" $(($(server_cpu_ms) - server_before)) "$runs")
    for pid in "${pids[@]}"; do kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; done
    pids=()
    rate=$(python3 -c "print(round($runs * 1000 / max(1, $end - $start)))")
    td_rates+=("$rate")
    echo "taskdeck round $round: $runs runs in $((end - start)) ms = $rate runs/s (load $(cut -d' ' -f1 /proc/loadavg)); $cpu"
    if [ "$statements" = 1 ]; then
        # The drain's statements: calls and server time per run, the costliest first.
        psql -d taskdeck -F ' | ' -c "SELECT round(calls::numeric / $runs, 3) AS calls_per_run,
            round((total_exec_time * 1000 / $runs)::numeric, 1) AS us_per_run, left(regexp_replace(query, '\s+', ' ', 'g'), 110)
            FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'taskdeck')
            ORDER BY total_exec_time DESC LIMIT 12" | sed 's/^/    /'
    fi
done
psql -d taskdeck -c "TRUNCATE taskdeck_runs, taskdeck_log_chunks"
pids=()
for w in 1 2; do "$taskdeck" worker --concurrency "$concurrency" 2>/dev/null & pids+=($!); done
sleep 2
# One `taskdeck start --each -` fed a line every 50 ms, as graphile-worker's one adder.
for i in $(seq 1 "$latency_runs"); do
    printf '{"file": "%s"}\n' "$tmp/input.txt"
    sleep 0.05
done | "$taskdeck" start checksum --each - > /dev/null
wait_for=$latency_runs
until [ "$(psql -d taskdeck -c "SELECT count(*) FROM taskdeck_runs WHERE status = 'succeeded'")" -ge "$wait_for" ]; do
    sleep 0.1
done
for pid in "${pids[@]}"; do kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; done
pids=()
psql -d taskdeck -c "SELECT started_at - queued_at FROM taskdeck_runs" > "$tmp/td-latency.txt"
fi

python3 - "$runs" "$gwversion" "$tmp/td-latency.txt" "$tmp/gw-latency.txt" "${td_rates[*]:-}" "${gw_rates[*]:-}" <<'EOF'
import json, sys
runs, version, td_lat, gw_lat, td_rates, gw_rates = sys.argv[1:]
if not td_rates or not gw_rates:
    td = sorted(int(x) for x in open(td_lat).read().split()) or sorted(int(x) for x in open(gw_lat).read().split())
    pct = lambda xs, p: xs[min(len(xs) - 1, int(p * len(xs)))]
    print(f"one side only: latency p50 {pct(td, .5)} ms p99 {pct(td, .99)} ms; no baseline, no result line")
    sys.exit(0)
td = sorted(int(x) for x in open(td_lat).read().split())
gw = sorted(int(x) for x in open(gw_lat).read().split())
pct = lambda xs, p: xs[min(len(xs) - 1, int(p * len(xs)))]
td_rates = [int(x) for x in td_rates.split()]
gw_rates = [int(x) for x in gw_rates.split()]
print(f"latency (enqueue to start, one every 50 ms): taskdeck p50 {pct(td, .5)} ms p99 {pct(td, .99)} ms; "
      f"graphile-worker p50 {pct(gw, .5)} ms p99 {pct(gw, .99)} ms")
value, baseline = max(td_rates), max(gw_rates)
print(json.dumps({"bench": "pgqueue", "value": value, "baseline": baseline, "ratio": round(value / baseline, 3),
                  "unit": "runs/s", "runs": int(runs), "rounds_taskdeck": td_rates, "rounds_graphile": gw_rates,
                  "p50_ms": pct(td, .5), "p99_ms": pct(td, .99), "graphile_p50_ms": pct(gw, .5),
                  "graphile_p99_ms": pct(gw, .99), "graphile_worker": version}))
EOF
