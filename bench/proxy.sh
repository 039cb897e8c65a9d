#!/usr/bin/env bash
# Benchmarks cutover's embedded proxy against HAProxy and NGINX on
# loopback, all splitting 90/10 between two keep-alive upstreams, and
# prints throughput and latency with the ratios ours/haproxy (DESIGN.md:
# throughput >= 0.9x, p99 <= 1.2x).
#
#   bench/proxy.sh                 # three rounds of 10 s per target, medians
#   ROUNDS=5 bench/proxy.sh        # more rounds on a noisy machine
#   DURATION=5s CONNS=64 THREADS=2 bench/proxy.sh
#   HAPROXY_THREADS=1 GOMAXPROCS=1 bench/proxy.sh   # one thread each
#   TARGETS="haproxy cutover" bench/proxy.sh       # only these (haproxy is the reference)
#   TARGETS="haproxy cutover fasthttp" bench/proxy.sh  # add a Go peer (bench/peers/fasthttp)
#   TARGETS="haproxy cutover evloop" bench/proxy.sh    # add a Go epoll event-loop peer (bench/peers/evloop)
#   TARGETS="haproxy cutover goroutine" bench/proxy.sh # add cutover's goroutine-per-connection data plane
#   PROXY_CMD='bin/cutover proxy --listen {listen} --admin= --legacy {legacy} --new {new} --new-weight 10' bench/proxy.sh
#
# The upstreams are one NGINX serving a fixed 128-byte body on two ports
# (the two sides). Every proxy keeps upstream connections alive, adds
# X-Forwarded-For and sets a sticky cookie on cookieless requests (HAProxy
# "cookie insert", ours by default; NGINX OSS has no cookie insertion, so
# it only splits). Needs haproxy, nginx and wrk (hack/deps.sh installs
# them). Everything runs on ports picked here and is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-2s}
# HAProxy threads; NGINX workers likewise. Ours uses GOMAXPROCS (all CPUs
# unless set in the environment).
HAPROXY_THREADS=${HAPROXY_THREADS:-$(nproc)}

for bin in haproxy nginx wrk; do
  command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || { echo "bench: $bin not installed (hack/deps.sh)" >&2; exit 2; }
done
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

# Free loopback ports, from the kernel.
ports=($(python3 - <<'EOF'
import socket
socks = []
for _ in range(8):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
))
UP_LEGACY=${ports[0]} UP_NEW=${ports[1]} P_HAPROXY=${ports[2]} P_NGINX=${ports[3]} P_OURS=${ports[4]} P_FASTHTTP=${ports[5]} P_EVLOOP=${ports[6]} P_GOROUTINE=${ports[7]}
targets=(${TARGETS:-direct haproxy nginx cutover})

body=$(printf 'x%.0s' $(seq 1 127))

mkdir -p "$work/nginx-up" "$work/nginx-px"
# Upstreams: long keep-alive so that no proxy pays for reconnections.
cat > "$work/nginx-up/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $work/nginx-up/nginx.pid;
error_log $work/nginx-up/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_timeout 300s;
  keepalive_requests 100000000;
  client_body_temp_path $work/nginx-up;
  proxy_temp_path $work/nginx-up;
  fastcgi_temp_path $work/nginx-up;
  uwsgi_temp_path $work/nginx-up;
  scgi_temp_path $work/nginx-up;
  server { listen 127.0.0.1:$UP_LEGACY; location / { return 200 "$body\n"; } }
  server { listen 127.0.0.1:$UP_NEW;    location / { return 200 "$body\n"; } }
}
EOF
cat > "$work/nginx-px/nginx.conf" <<EOF
worker_processes $HAPROXY_THREADS;
daemon off;
pid $work/nginx-px/nginx.pid;
error_log $work/nginx-px/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_timeout 300s;
  keepalive_requests 100000000;
  client_body_temp_path $work/nginx-px;
  proxy_temp_path $work/nginx-px;
  fastcgi_temp_path $work/nginx-px;
  uwsgi_temp_path $work/nginx-px;
  scgi_temp_path $work/nginx-px;
  upstream sides {
    server 127.0.0.1:$UP_LEGACY weight=9;
    server 127.0.0.1:$UP_NEW weight=1;
    keepalive 256;
    keepalive_requests 100000000;
    keepalive_timeout 30s;
  }
  server {
    listen 127.0.0.1:$P_NGINX;
    location / {
      proxy_pass http://sides;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_buffering off;
    }
  }
}
EOF
cat > "$work/haproxy.cfg" <<EOF
global
  nbthread $HAPROXY_THREADS
  maxconn 4000
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 300s
  option http-keep-alive
  option forwardfor
  http-reuse always
frontend fe
  bind 127.0.0.1:$P_HAPROXY
  default_backend sides
backend sides
  balance roundrobin
  cookie cutover-user insert indirect nocache
  server legacy 127.0.0.1:$UP_LEGACY weight 90 cookie l
  server new 127.0.0.1:$UP_NEW weight 10 cookie n
EOF

echo "bench: building the proxy" >&2
go build -o "$work/cutover" ./cmd/cutover
# proxy_cmd PORT: the command that runs our proxy on PORT.
proxy_cmd() {
  local c=${PROXY_CMD:-"$work/cutover proxy --listen {listen} --admin= --legacy {legacy} --new {new} --new-weight 10"}
  c=${c//\{listen\}/127.0.0.1:$1}
  c=${c//\{legacy\}/http://127.0.0.1:$UP_LEGACY}
  echo "${c//\{new\}/http://127.0.0.1:$UP_NEW}"
}
cmd=$(proxy_cmd "$P_OURS")

declare -A pid
"$NGINX" -c "$work/nginx-up/nginx.conf" -e "$work/nginx-up/error.log" & pids+=($!); pid[direct]=$!
"$NGINX" -c "$work/nginx-px/nginx.conf" -e "$work/nginx-px/error.log" & pids+=($!); pid[nginx]=$!
"$HAPROXY" -f "$work/haproxy.cfg" -db > "$work/haproxy.log" 2>&1 & pids+=($!); pid[haproxy]=$!
$cmd > "$work/ours.log" 2>&1 & pids+=($!); pid[cutover]=$!
wait_for=($UP_LEGACY $UP_NEW $P_HAPROXY $P_NGINX $P_OURS)
if [[ " ${targets[*]} " == *" fasthttp "* ]]; then
  # The Go peer: the same split on valyala/fasthttp, a module of its own.
  echo "bench: building the fasthttp peer" >&2
  (cd bench/peers/fasthttp && go build -o "$work/fasthttp-peer" .)
  "$work/fasthttp-peer" -listen 127.0.0.1:$P_FASTHTTP -legacy http://127.0.0.1:$UP_LEGACY -new http://127.0.0.1:$UP_NEW > "$work/fasthttp.log" 2>&1 & pids+=($!); pid[fasthttp]=$!
  wait_for+=($P_FASTHTTP)
fi
if [[ " ${targets[*]} " == *" goroutine "* ]]; then
  # cutover with its goroutine data plane only (CUTOVER_DATAPLANE=goroutine),
  # which serves what the event loops hand over (TLS, HTTP/2, upgrades...).
  gcmd=$(proxy_cmd "$P_GOROUTINE")
  # Its own directory: the audit log (cutover-audit.log) takes one writer.
  mkdir -p "$work/goroutine"
  (cd "$work/goroutine" && CUTOVER_DATAPLANE=goroutine exec $gcmd) > "$work/goroutine.log" 2>&1 & pids+=($!); pid[goroutine]=$!
  wait_for+=($P_GOROUTINE)
fi
if [[ " ${targets[*]} " == *" evloop "* ]]; then
  # The event-loop peer: the same split as an epoll loop per core, no
  # goroutine per connection (a module of its own, Linux only).
  echo "bench: building the evloop peer" >&2
  (cd bench/peers/evloop && go build -o "$work/evloop-peer" .)
  "$work/evloop-peer" -listen 127.0.0.1:$P_EVLOOP -legacy http://127.0.0.1:$UP_LEGACY -new http://127.0.0.1:$UP_NEW > "$work/evloop.log" 2>&1 & pids+=($!); pid[evloop]=$!
  wait_for+=($P_EVLOOP)
fi

wait_port() {
  for _ in $(seq 1 100); do
    if python3 -c "import socket,sys; s=socket.socket(); s.settimeout(0.2); sys.exit(s.connect_ex(('127.0.0.1', $1)))"; then return 0; fi
    sleep 0.1
  done
  echo "bench: nothing listens on port $1" >&2
  cat "$work"/*.log "$work"/nginx-*/error.log >&2 2>/dev/null || true
  exit 1
}
for p in "${wait_for[@]}"; do wait_port "$p"; done

declare -A url=(
  [direct]="http://127.0.0.1:$UP_LEGACY/"
  [haproxy]="http://127.0.0.1:$P_HAPROXY/"
  [nginx]="http://127.0.0.1:$P_NGINX/"
  [cutover]="http://127.0.0.1:$P_OURS/"
  [fasthttp]="http://127.0.0.1:$P_FASTHTTP/"
  [evloop]="http://127.0.0.1:$P_EVLOOP/"
  [goroutine]="http://127.0.0.1:$P_GOROUTINE/"
)

# Sanity: every target answers 200 with the body.
for t in "${targets[@]}"; do
  out=$(curl -s -o /dev/null -w '%{http_code}' "${url[$t]}" || true)
  [ "$out" = 200 ] || { echo "bench: $t answered $out" >&2; exit 1; }
done

# to_ms converts a wrk latency ("812.00us", "1.23ms", "2.01s") to ms.
to_ms() {
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) { sub(/us$/, "", v); print v / 1000 }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); print v + 0 }
    else if (v ~ /s$/) { sub(/s$/, "", v); print v * 1000 }
    else print v }'
}

# cpu_ticks sums user+system clock ticks of a process and its children
# (NGINX's workers).
cpu_ticks() {
  local total=0 p
  for p in "$1" $(pgrep -P "$1" || true); do
    [ -r "/proc/$p/stat" ] || continue
    total=$(( total + $(awk '{print $14 + $15}' "/proc/$p/stat") ))
  done
  echo "$total"
}
hz=$(getconf CLK_TCK)

declare -A rps p50 p99 errs cpu
for t in "${targets[@]}"; do rps[$t]=""; p50[$t]=""; p99[$t]=""; cpu[$t]=""; errs[$t]=0; done
for round in $(seq 1 "$ROUNDS"); do
  # Alternate the order so that no target always follows the same one on
  # a machine whose load drifts.
  order=("${targets[@]}")
  if (( round % 2 == 0 )); then order=(); for t in "${targets[@]}"; do order=("$t" "${order[@]}"); done; fi
  for t in "${order[@]}"; do
    wrk -c"$CONNS" -t"$THREADS" -d"$WARMUP" "${url[$t]}" >/dev/null 2>&1 || true
    c0=$(cpu_ticks "${pid[$t]}")
    out=$(wrk -c"$CONNS" -t"$THREADS" -d"$DURATION" --latency "${url[$t]}")
    c1=$(cpu_ticks "${pid[$t]}")
    n=$(awk '/requests in/ {print $1}' <<<"$out")
    us=$(awk -v c=$((c1 - c0)) -v n="$n" -v hz="$hz" 'BEGIN {printf "%.1f", c * 1e6 / hz / n}')
    cpu[$t]+="$us "
    r=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    l50=$(awk '$1=="50%" {print $2}' <<<"$out")
    l99=$(awk '$1=="99%" {print $2}' <<<"$out")
    e=$(awk '/Non-2xx or 3xx responses:/ {n+=$NF} /Socket errors:/ {gsub(",",""); n+=$4+$6+$8+$10} END {print n+0}' <<<"$out")
    rps[$t]+="$r "; p50[$t]+="$(to_ms "$l50") "; p99[$t]+="$(to_ms "$l99") "
    errs[$t]=$(( ${errs[$t]} + e ))
    printf 'bench: round %d %-8s %10s req/s  p50 %8s  p99 %8s  %6s CPU us/req  errors %s\n' "$round" "$t" "$r" "$l50" "$l99" "$us" "$e" >&2
  done
done


median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

echo
printf '%-9s %12s %10s %10s %12s %8s\n' target "req/s" "p50 ms" "p99 ms" "CPU us/req" errors
for t in "${targets[@]}"; do
  printf '%-9s %12.0f %10.3f %10.3f %12.1f %8d\n' "$t" "$(median "${rps[$t]}")" "$(median "${p50[$t]}")" "$(median "${p99[$t]}")" "$(median "${cpu[$t]}")" "${errs[$t]}"
done
# ratio METRIC TARGET: TARGET's median over HAProxy's.
ratio() {
  local -n m=$1
  awk -v a="$(median "${m[$2]}")" -v b="$(median "${m[haproxy]}")" 'BEGIN {printf "%.2f", a/b}'
}
echo
echo "cutover/haproxy: throughput $(ratio rps cutover)x (target >= 0.90), p99 $(ratio p99 cutover)x (target <= 1.20), CPU per request $(ratio cpu cutover)x"
declare -A about=(
  [fasthttp]="the Go peer: what the runtime reaches here without cutover's features"
  [evloop]="Go as an epoll event loop, no goroutine per connection"
  [goroutine]="cutover with CUTOVER_DATAPLANE=goroutine: a goroutine per connection"
)
for t in fasthttp evloop goroutine; do
  if [ -n "${rps[$t]:-}" ]; then
    echo "$t/haproxy: throughput $(ratio rps "$t")x, p99 $(ratio p99 "$t")x (${about[$t]})"
  fi
done
echo "(direct = the legacy upstream without a proxy; CPU us/req = the proxy's own user+system time per request)"
echo "($CONNS connections, $THREADS wrk threads, $DURATION x $ROUNDS round(s), $(nproc) CPUs, HAProxy/NGINX threads $HAPROXY_THREADS, GOMAXPROCS ${GOMAXPROCS:-default}, load average $(cut -d' ' -f1-3 /proc/loadavg))"
