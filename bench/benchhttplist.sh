#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench_httplist: requests per second of `GET /admin/task?format=json` with a bearer token,
# driven by wrk against a real `taskdeck serve`, and against nginx serving the same bytes
# from a file (the baseline), in the same run. nginx is started here on a free port with a
# generated configuration under a temporary prefix (nothing of the system's nginx is used).
#
# Usage: bench_httplist [--duration=SECONDS] [--connections=N] [--rounds=N]
# The taskdeck binary: $TASKDECK_BIN (the bench_httplist launcher sets it), or `taskdeck`.
# Needs wrk and nginx (packaging/install-deps --bench), curl and python3.
#
# Last line: {"bench":"httplist","value":TASKDECK_RPS,"baseline":NGINX_RPS,"ratio":...,
# "unit":"requests/s",...}; here a higher ratio is better (target >= 0.8).
set -euo pipefail

duration=5
connections=8
rounds=3
for arg in "$@"; do
    case "$arg" in
        --duration=*) duration="${arg#*=}" ;;
        --connections=*) connections="${arg#*=}" ;;
        --rounds=*) rounds="${arg#*=}" ;;
        --count=*) ;; # the other benches' scale option: the list is what the server has
        *) echo "bench_httplist: unknown argument $arg" >&2; exit 2 ;;
    esac
done

taskdeck="${TASKDECK_BIN:-$(command -v taskdeck || true)}"
nginx="$(command -v nginx || echo /usr/sbin/nginx)"
for tool in wrk curl python3; do
    command -v "$tool" >/dev/null || { echo "bench_httplist: $tool is missing (packaging/install-deps --bench)" >&2; exit 2; }
done
[[ -x "$nginx" ]] || { echo "bench_httplist: nginx is missing (packaging/install-deps --bench)" >&2; exit 2; }
[[ -n "$taskdeck" && -x "$taskdeck" ]] || { echo "bench_httplist: no taskdeck binary (set TASKDECK_BIN)" >&2; exit 2; }

work="$(mktemp -d "${TMPDIR:-/tmp}/bench-httplist.XXXXXX")"
serve_pid=""
nginx_pid=""
cleanup() {
    [[ -n "$serve_pid" ]] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
    [[ -n "$nginx_pid" ]] && kill -QUIT "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

# taskdeck serve on a port of its choosing; it prints "listening on http://ADDRESS:PORT".
mkdir -p "$work/data" "$work/home"
HOME="$work/home" XDG_CONFIG_HOME="$work/home/.config" XDG_DATA_HOME="$work/home/.local/share" \
    "$taskdeck" serve --listen 127.0.0.1:0 --data-dir "$work/data" >"$work/serve.out" 2>"$work/serve.err" &
serve_pid=$!
for _ in $(seq 1 300); do
    grep -q '^listening on ' "$work/serve.out" 2>/dev/null && break
    kill -0 "$serve_pid" 2>/dev/null || { cat "$work/serve.err" >&2; exit 1; }
    sleep 0.1
done
base="$(sed -n 's/^listening on //p' "$work/serve.out" | head -n 1)"
[[ -n "$base" ]] || { echo "bench_httplist: taskdeck serve did not start" >&2; cat "$work/serve.err" >&2; exit 1; }
token="$(tr -d '\n' < "$work/data/admin-token")"
path='/admin/task?format=json'

# The same bytes for nginx to serve.
mkdir -p "$work/nginx/www" "$work/nginx/tmp" "$work/nginx/logs"
curl -fsS -H "Authorization: Bearer $token" "$base$path" -o "$work/nginx/www/tasks.json"
bytes=$(stat -c %s "$work/nginx/www/tasks.json")
tasks=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["count"])' "$work/nginx/www/tasks.json")

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
user_line=""
# As root, nginx's workers would switch to a user that cannot read the private temp dir.
[[ $(id -u) -eq 0 ]] && user_line="user root;"
cat > "$work/nginx/nginx.conf" <<EOF
$user_line
daemon off;
master_process on;
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $work/nginx/tmp/body;
    proxy_temp_path $work/nginx/tmp/proxy;
    fastcgi_temp_path $work/nginx/tmp/fastcgi;
    uwsgi_temp_path $work/nginx/tmp/uwsgi;
    scgi_temp_path $work/nginx/tmp/scgi;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$port;
        location = /admin/task {
            default_type application/json;
            alias $work/nginx/www/tasks.json;
        }
    }
}
EOF
"$nginx" -p "$work/nginx" -c "$work/nginx/nginx.conf" -e "$work/nginx/logs/error.log" &
nginx_pid=$!
for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "http://127.0.0.1:$port$path" 2>/dev/null && break
    kill -0 "$nginx_pid" 2>/dev/null || { cat "$work/nginx/logs/error.log" >&2; exit 1; }
    sleep 0.1
done
cmp -s <(curl -fsS "http://127.0.0.1:$port$path") "$work/nginx/www/tasks.json" \
    || { echo "bench_httplist: nginx does not serve the same bytes" >&2; exit 1; }

# One wrk run; prints requests/s. Any answer but 2xx fails the benchmark.
measure() {
    local url="$1" out
    out="$(wrk -t1 -c"$connections" -d"${duration}s" -H "Authorization: Bearer $token" "$url")"
    if grep -q 'Non-2xx' <<<"$out"; then
        echo "bench_httplist: $url answered errors:" >&2
        echo "$out" >&2
        exit 1
    fi
    sed -n 's/^Requests\/sec:[[:space:]]*//p' <<<"$out"
}

echo "taskdeck $base, nginx http://127.0.0.1:$port; $tasks tasks, $bytes bytes an answer;" \
     "wrk -t1 -c$connections -d${duration}s, $rounds rounds alternating"
# Warm-up of both, not counted.
wrk -t1 -c"$connections" -d1s -H "Authorization: Bearer $token" "$base$path" >/dev/null
wrk -t1 -c"$connections" -d1s "http://127.0.0.1:$port$path" >/dev/null
ours=()
theirs=()
for ((i = 0; i < rounds; ++i)); do
    # Each round starts with the other side.
    if ((i % 2 == 0)); then
        ours+=("$(measure "$base$path")")
        theirs+=("$(measure "http://127.0.0.1:$port$path")")
    else
        theirs+=("$(measure "http://127.0.0.1:$port$path")")
        ours+=("$(measure "$base$path")")
    fi
    echo "round $((i + 1)): taskdeck ${ours[-1]} requests/s, nginx ${theirs[-1]} requests/s"
done

load="$(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$bytes" "$tasks" "$connections" "$duration" "$load" "${ours[*]}" "${theirs[*]}" <<'EOF'
import json, statistics, sys
nbytes, tasks, connections, duration, load = sys.argv[1:6]
ours = [float(x) for x in sys.argv[6].split()]
theirs = [float(x) for x in sys.argv[7].split()]
value, baseline = statistics.median(ours), statistics.median(theirs)
print(f"median: taskdeck {value:.0f} requests/s, nginx {baseline:.0f} requests/s, "
      f"ratio {value / baseline:.3f} (target >= 0.8); load average {load}")
print(json.dumps({"bench": "httplist", "value": round(value, 1), "baseline": round(baseline, 1),
                  "ratio": round(value / baseline, 3), "unit": "requests/s", "target": 0.8,
                  "higherIsBetter": True, "samples": ours, "baselineSamples": theirs,
                  "bytes": int(nbytes), "tasks": int(tasks), "connections": int(connections),
                  "durationS": float(duration), "loadAverage": load}, separators=(",", ":")))
EOF
