#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The agent soaked for MINUTES (default 10): heartbeats every 200 ms to a
# coordinator, the host sampled every second, the fake NVML driver's two GPUs
# sampled every second (the real driver needs a GPU), the example model
# running in a real container through Podman (probed every 300 ms, its stats
# read every 10 s), and a scrape of /metrics every 100 ms. The agent's and
# the coordinator's resident memory is sampled every 30 s; the table and the
# growth from the first minute to the end are printed for BENCHMARKS.md.
#
# usage: bench/soak_metrics.sh [MINUTES]   (run from the build directory, as
# root for the container; without Podman it soaks without one). MINUTES may
# be a fraction (0.5).
set -eu
minutes=${1:-10}
build=$(pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
for f in shoal-agent shoal-coordinator shoalctl bench/bench_scrape; do
	[ -x "$build/$f" ] || { echo "soak: build $f first (make soak)" >&2; exit 1; }
done

dir=$(mktemp -d /tmp/shoal-soak.XXXXXX)
pids=""
node="soak-$$"
cleanup() {
	"$build/shoalctl" delete iris >/dev/null 2>&1 || true
	sleep 2
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if command -v podman >/dev/null; then
		podman ps -aq --filter "label=shoal.node=$node" | xargs -r podman rm -f >/dev/null 2>&1 || true
	fi
	rm -rf "$dir"
}
trap cleanup EXIT INT TERM
export SHOAL_CONTROL="ipc://$dir/control.sock"

runtime="$dir/none.sock"
with_container=0
if [ "$(id -u)" -eq 0 ] && command -v podman >/dev/null && command -v runc >/dev/null; then
	export CONTAINERS_CONF="$dir/containers.conf"
	sh "$src/scripts/podman-conf.sh" "$CONTAINERS_CONF"
	runtime="$dir/podman.sock"
	podman system service --time=0 "unix://$runtime" >"$dir/podman.log" 2>&1 &
	pids="$pids $!"
	MODEL_SERVER="$build/examples/model-server" \
		"$src/examples/build-image.sh" localhost/shoal-example-model:1 >"$dir/image.log" 2>&1 &&
		with_container=1
fi

base=$((20000 + $$ % 20000))
"$build/shoal-coordinator" -c /dev/null --state-dir "$dir/coord" \
	--listen "tcp://127.0.0.1:$base" --publish "tcp://127.0.0.1:$((base + 1))" \
	--control "$SHOAL_CONTROL" --metrics-listen "127.0.0.1:$((base + 3))" \
	>"$dir/coord.log" 2>&1 &
coord=$!
pids="$pids $coord"
nvml="$build/tests/tools/libfakenvml.so"
[ -f "$nvml" ] || nvml=off
# SOAK_WRAP runs the agent under a tool, e.g.
# SOAK_WRAP="valgrind --leak-check=full --log-file=/tmp/soak-vg.txt".
# shellcheck disable=SC2086
${SOAK_WRAP:-} "$build/shoal-agent" -c /dev/null --state-dir "$dir/agent" --node-id "$node" \
	--label role=model --coordinator "tcp://127.0.0.1:$base" \
	--runtime-socket "$runtime" --heartbeat 200ms --metrics-interval 1s \
	--metrics-listen "127.0.0.1:$((base + 2))" --nvml-library "$nvml" \
	>"$dir/agent.log" 2>&1 &
agent=$!
pids="$pids $agent"

i=0
until curl -sf -o /dev/null "http://127.0.0.1:$((base + 2))/metrics"; do
	i=$((i + 1))
	[ $i -lt 300 ] || { echo "soak: the agent did not come up" >&2; cat "$dir/agent.log" >&2; exit 1; }
	sleep 0.1
done
if [ $with_container -eq 1 ]; then
	cat >"$dir/iris.yaml" <<EOF
service: iris
image: localhost/shoal-example-model:1
command: ["/model-server", "--port", "8080"]
port: 8080
health: {path: /health, interval: 300ms, timeout: 3s, start_period: 10s}
EOF
	"$build/shoalctl" apply -f "$dir/iris.yaml" >/dev/null
	i=0
	until "$build/shoalctl" status iris --json 2>/dev/null | grep -q '"healthy"'; do
		i=$((i + 1))
		[ $i -lt 600 ] || { echo "soak: iris did not turn healthy" >&2; tail "$dir/agent.log" >&2; exit 1; }
		sleep 0.1
	done
fi

scrapes=$(awk -v m="$minutes" 'BEGIN { printf "%d", m * 600 }')
"$build/bench/bench_scrape" "http://127.0.0.1:$((base + 2))/metrics" $scrapes 100 >"$dir/scrape.txt" &
scraper=$!
pids="$pids $scraper"

kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
# The agent's own count of malloc()ed bytes in use: what a leak grows.
heap() {
	curl -sf "http://127.0.0.1:$((base + 2))/metrics" |
		awk '$1 == "shoal_heap_in_use_bytes" { printf "%d", $2 / 1024 }'
}
echo "| minute | agent RSS (KiB) | agent RssAnon (KiB) | agent heap in use (KiB) | coordinator RSS (KiB) |"
echo "| ---: | ---: | ---: | ---: | ---: |"
t=0
first="" first_heap="" last=""
while kill -0 $scraper 2>/dev/null; do
	rss=$(kib $agent VmRSS) anon=$(kib $agent RssAnon) crss=$(kib $coord VmRSS)
	h=$(heap)
	printf '| %s | %s | %s | %s | %s |\n' "$(awk -v t=$t 'BEGIN { printf "%.1f", t / 60 }')" "$rss" "$anon" "$h" "$crss"
	[ $t -ge 60 ] && [ -z "$first" ] && first=$rss first_heap=$h
	last=$rss
	sleep 30
	t=$((t + 30))
done
wait $scraper || { echo "soak: the scraper failed" >&2; exit 1; }
rss=$(kib $agent VmRSS)
h=$(heap)
printf '| %s (end) | %s | %s | %s | %s |\n' "$(awk -v t=$t 'BEGIN { printf "%.1f", t / 60 }')" "$rss" "$(kib $agent RssAnon)" "$h" "$(kib $coord VmRSS)"
hb=$(curl -sf "http://127.0.0.1:$((base + 3))/metrics" | awk -v n="$node" 'index($0, "shoal_node_up{node=\"" n "\"}") == 1 { print $2 }')
probes=$(curl -sf "http://127.0.0.1:$((base + 2))/metrics" | awk 'index($0, "shoal_health_probe_duration_seconds_count{service=\"iris\"}") == 1 { print $2 }')
echo
echo "scrapes: $(awk '{ print $2 }' "$dir/scrape.txt") (median $(awk '{ print $3 }' "$dir/scrape.txt") µs); health probes: ${probes:-none}; node online at the end: ${hb:-?}; container: $([ $with_container -eq 1 ] && echo yes || echo no)"
echo "agent RSS growth from minute 1 to the end: $((rss - ${first:-$rss})) KiB; heap in use: $((h - ${first_heap:-$h})) KiB"
