# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# Sourced by the PostgreSQL queue benches (benchpgqueue.sh, benchpgqueueguard.sh): a throwaway
# PostgreSQL 15 server in a temporary folder, on a free loopback port, stopped and removed
# when the script exits, with the workers the script started (their pids in `pids`).
#
#   pg_bench_server NAME [SERVER OPTION ...]
#
# NAME names the folder (/tmp/bench-NAME-XXXXXX) and the messages; each SERVER OPTION is
# passed to postgres (e.g. "-c shared_preload_libraries=pg_stat_statements"). Sets `tmp`
# (the folder; the server's data is $tmp/data, its log $tmp/server.log), `port`, `pgbin` and
# `pids`, and defines psql (as user bench, unaligned, tuples only) and now_ms.

pgbin=/usr/lib/postgresql/15/bin

pg_bench_server() {
    local name=$1
    shift
    [ -x "$pgbin/initdb" ] || { echo "bench_$name: PostgreSQL 15 is not installed" >&2; exit 2; }
    tmp="$(mktemp -d "/tmp/bench-$name-XXXXXX")"
    pg_as_owner=()
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres: "$tmp"
        pg_as_owner=(runuser -u postgres --)
    fi
    pids=()
    trap pg_bench_cleanup EXIT
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "${pg_as_owner[@]}" "$pgbin/initdb" -D "$tmp/data" -A trust -U bench -E UTF8 --locale=C >/dev/null
    "${pg_as_owner[@]}" "$pgbin/pg_ctl" -D "$tmp/data" -l "$tmp/server.log" -w \
        -o "-p $port -k $tmp -c listen_addresses=127.0.0.1 -c max_connections=200 $*" start >/dev/null
}

pg_bench_cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    "${pg_as_owner[@]}" "$pgbin/pg_ctl" -D "$tmp/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$tmp"
}

psql() { "$pgbin/psql" -X -q -t -A -h 127.0.0.1 -p "$port" -U bench "$@"; }
now_ms() { date +%s%3N; }
