#!/usr/bin/env bash
# A three-host wasmserve deployment on one machine, in network namespaces,
# proved end to end:
#
#   deploy/local-cluster/run.sh WASMSERVE HANDLERS_DIR [RESULTS_FILE]
#
# WASMSERVE is the binary, HANDLERS_DIR holds echo.wasm, echo_streams.wasm,
# whoami.wasm, chatroom.wasm and kvstore.wasm (the tests build them into
# target/fixtures/wasm32-wasip2/release). Needs root (ip netns), and
# Debian's iproute2, haproxy, redis-server, docker-registry, python3.
#
# One bridge (in its own namespace) joins seven namespaces on 198.18.0.0/24
# (RFC 2544's benchmarking range), with no route and no NAT out: the
# traffic never leaves them.
#   198.18.0.1   HAProxy: TCP mode, send-proxy-v2, health checks on /readyz
#   198.18.0.2   Redis: the shared state and channels of every host
#   198.18.0.3   an OCI registry (docker-registry) holding the echo handler
#   198.18.0.11-13  three wasmserve hosts, one config file each
#   198.18.0.100-103  the clients
# It proves: the chat room spans the hosts, kvstore answers the same from
# every host, handlers see each client's real address, and a rolling update
# (a new echo handler pushed to the registry's tag; per host: drain in
# HAProxy, wait for its sessions to end, SIGHUP to pull the new digest,
# back in) completes under continuous load with zero failed connections.
set -euo pipefail

WASMSERVE=$(realpath "${1:?usage: run.sh WASMSERVE HANDLERS_DIR [RESULTS_FILE]}")
HANDLERS=$(realpath "${2:?usage: run.sh WASMSERVE HANDLERS_DIR [RESULTS_FILE]}")
RESULTS=${3:-}
HERE=$(cd "$(dirname "$0")" && pwd)
P=ws$(($$ % 10000)) # a prefix of our own for namespaces and links (names stay under 16 bytes)

skip() { echo "local cluster not run: $*"; exit 0; }
[ "$(id -u)" = 0 ] || skip "needs root (ip netns, veth, bridge)"
for tool in ip haproxy redis-server docker-registry python3 socat awk; do
    command -v "$tool" > /dev/null || skip "$tool is not installed"
done
ip netns add "$P-probe" 2> /dev/null || skip "this machine does not allow network namespaces"
ip netns del "$P-probe"

WORK=$(mktemp -d /tmp/wasmserve-cluster.XXXXXX)
NODES="sw lb redis reg h1 h2 h3 client"
cleanup() {
    for pid in $(cat "$WORK"/*.pid 2> /dev/null); do kill "$pid" 2> /dev/null || true; done
    sleep 0.3
    for node in $NODES; do ip netns del "$P-$node" 2> /dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

in_ns() { local node=$1; shift; ip netns exec "$P-$node" "$@"; }
# start NODE NAME COMMAND...: runs COMMAND in NODE's namespace, logs to NAME.log
start() {
    local node=$1 name=$2; shift 2
    ip netns exec "$P-$node" "$@" > "$WORK/$name.out" 2> "$WORK/$name.log" &
    echo $! > "$WORK/$name.pid"
}

# The network: a bridge in its own namespace, a veth pair per node.
for node in $NODES; do ip netns add "$P-$node"; in_ns "$node" ip link set lo up; done
in_ns sw ip link add br0 type bridge
in_ns sw ip link set br0 up
attach() {
    local node=$1; shift
    ip link add "$P-$node" type veth peer name "$P-$node-b"
    ip link set "$P-$node" netns "$P-$node"
    ip link set "$P-$node-b" netns "$P-sw"
    in_ns sw ip link set "$P-$node-b" master br0 up
    in_ns "$node" ip link set "$P-$node" name eth0
    for addr in "$@"; do in_ns "$node" ip addr add "$addr/24" dev eth0; done
    in_ns "$node" ip link set eth0 up
}
attach lb 198.18.0.1
attach redis 198.18.0.2
attach reg 198.18.0.3
attach h1 198.18.0.11
attach h2 198.18.0.12
attach h3 198.18.0.13
attach client 198.18.0.100 198.18.0.101 198.18.0.102 198.18.0.103
if in_ns client ip route get 192.0.2.1 > /dev/null 2>&1; then
    echo "error: the client namespace has a route out" >&2; exit 1
fi

# Redis and the registry.
start redis redis redis-server --bind 198.18.0.2 --port 6379 --save "" --appendonly no --protected-mode no
cat > "$WORK/registry.yml" <<YML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $WORK/registry
http:
  addr: 198.18.0.3:5000
YML
start reg registry docker-registry serve "$WORK/registry.yml"
export WASMSERVE_INSECURE_REGISTRIES=198.18.0.3:5000
ECHO_TAG=oci://198.18.0.3:5000/demo/echo:live
for _ in $(seq 100); do in_ns client "$WASMSERVE" push "$HANDLERS/echo.wasm" "$ECHO_TAG" > "$WORK/push-v1" 2>&1 && break; sleep 0.1; done
V1=$(grep -o 'sha256:[0-9a-f]*' "$WORK/push-v1")

# Three hosts, one config file each.
for i in 1 2 3; do
    addr=198.18.0.1$i
    cat > "$WORK/h$i.toml" <<TOML
[[service]]
name = "echo"
handler = "$ECHO_TAG"
listen = ["tcp:$addr:7200"]
[service.access]
proxy_protocol = ["198.18.0.1"]

[[service]]
name = "whoami"
handler = "$HANDLERS/whoami.wasm"
listen = ["tcp:$addr:7100"]
[service.access]
proxy_protocol = ["198.18.0.1"]

[[service]]
name = "chat"
handler = "$HANDLERS/chatroom.wasm"
listen = ["tcp:$addr:7000"]
[service.state]
backend = "redis://198.18.0.2:6379"
[service.access]
proxy_protocol = ["198.18.0.1"]

[[service]]
name = "kv"
handler = "$HANDLERS/kvstore.wasm"
listen = ["tcp:$addr:6379"]
[service.state]
backend = "redis://198.18.0.2:6379"
[service.access]
proxy_protocol = ["198.18.0.1"]
TOML
    start "h$i" "h$i" "$WASMSERVE" --config "$WORK/h$i.toml" --metrics "$addr:9100" \
        --cache-dir "$WORK/h$i-cache" --access-log "$WORK/h$i-access.log"
done
for i in 1 2 3; do in_ns client python3 "$HERE/cluster.py" wait-ready "http://198.18.0.1$i:9100/readyz"; done

# HAProxy in front: TCP mode, PROXY protocol v2 to the hosts, /readyz checks.
{
    printf 'global\n    maxconn 4000\n    stats socket %s mode 600 level admin\n' "$WORK/haproxy.sock"
    printf 'defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 60s\n    timeout server 60s\n    retries 3\n    option redispatch\n'
    for svc in echo:7200 whoami:7100 chat:7000 kv:6379; do
        name=${svc%%:*} port=${svc##*:}
        printf 'frontend %s\n    bind 198.18.0.1:%s\n    default_backend %s\n' "$name" "$port" "$name"
        printf 'backend %s\n    balance roundrobin\n    option httpchk GET /readyz\n    http-check expect status 200\n' "$name"
        printf '    default-server send-proxy-v2 check port 9100 inter 300ms fall 1 rise 1\n'
        for i in 1 2 3; do printf '    server h%s 198.18.0.1%s:%s\n' "$i" "$i" "$port"; done
    done
} > "$WORK/haproxy.cfg"
start lb haproxy haproxy -db -f "$WORK/haproxy.cfg"
haproxy_cmd() { echo "$1" | socat stdio "unix-connect:$WORK/haproxy.sock"; }
for _ in $(seq 100); do [ -S "$WORK/haproxy.sock" ] && break; sleep 0.1; done
sleep 1 # the first health checks

report() { echo "$*" | tee -a "$WORK/report"; }
report "# wasmserve local cluster, $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r), $(nproc) cores"
report "hosts 198.18.0.11-13 (wasmserve), HAProxy 198.18.0.1, Redis 198.18.0.2, registry 198.18.0.3"
report "echo handler: $ECHO_TAG at $V1"

report "## real client addresses (whoami through HAProxy, PROXY protocol v2)"
in_ns client python3 "$HERE/cluster.py" whoami | while read -r line; do report "    $line"; done
report "## chat across hosts (Redis channels)"
report "    $(in_ns client python3 "$HERE/cluster.py" chat)"
report "## kvstore from every host (Redis buckets)"
report "    $(in_ns client python3 "$HERE/cluster.py" kv)"

# The rolling update, under load.
in_ns client "$WASMSERVE" push "$HANDLERS/echo_streams.wasm" "$ECHO_TAG" > "$WORK/push-v2" 2>&1
V2=$(grep -o 'sha256:[0-9a-f]*' "$WORK/push-v2")
report "## rolling update to $V2 (echo_streams.wasm) under load"
in_ns client python3 "$HERE/cluster.py" load 14 16 "$WORK/load.json" &
LOAD=$!
sleep 2
for i in 1 2 3; do
    started=$(date +%s.%N)
    for svc in echo whoami chat kv; do haproxy_cmd "set server $svc/h$i state drain" > /dev/null; done
    # Wait for the host's sessions to end (new ones go to the others).
    for _ in $(seq 300); do
        busy=$(haproxy_cmd "show stat" | awk -F, -v h="h$i" '$2 == h { s += $5 } END { print s + 0 }')
        [ "$busy" = 0 ] && break
        sleep 0.1
    done
    kill -HUP "$(cat "$WORK/h$i.pid")"
    for _ in $(seq 100); do grep -q "handler reloaded" "$WORK/h$i.log" && break; sleep 0.1; done
    grep -q "handler reloaded" "$WORK/h$i.log" || { echo "error: h$i did not reload" >&2; exit 1; }
    for svc in echo whoami chat kv; do haproxy_cmd "set server $svc/h$i state ready" > /dev/null; done
    took=$(awk -v now="$(date +%s.%N)" -v then="$started" 'BEGIN { printf "%.1f", now - then }')
    report "    h$i: drained (sessions left: $busy), reloaded, back in $took s"
    sleep 2
done
wait "$LOAD"
report "    load: $(cat "$WORK/load.json")"
failed=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['failed'])" "$WORK/load.json")
OLD=$(sha256sum "$HANDLERS/echo.wasm" | cut -c1-12)
NEW=$(sha256sum "$HANDLERS/echo_streams.wasm" | cut -c1-12)
report "## per host: echo connections served (from HAProxy), handler versions in the access logs (before: $OLD, after: $NEW)"
for i in 1 2 3; do
    served=$(haproxy_cmd "show stat" | awk -F, -v h="h$i" '$1 == "echo" && $2 == h { print $8 }')
    before=$(grep -c "handler=\"echo:live\" version=\"$OLD\"" "$WORK/h$i-access.log" || true)
    after=$(grep -c "handler=\"echo:live\" version=\"$NEW\"" "$WORK/h$i-access.log" || true)
    versions="$before on the old version, $after on the new"
    report "    h$i: $served connections; $versions"
done
bad=$(cat "$WORK"/h?-access.log | grep 'handler="echo:live"' | grep -vc 'outcome="ok"' || true)
report "## result: $failed failed connections during the rolling update; $bad echo requests not ended ok on the hosts"
if [ -n "$RESULTS" ]; then cp "$WORK/report" "$RESULTS"; fi
[ "$failed" = 0 ] || { echo "error: $failed connections failed" >&2; exit 1; }
echo "local cluster: all checks passed"
