#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The agent's metrics endpoint against Debian's prometheus-node-exporter,
# side by side in one run on this machine: a coordinator and an agent
# (heartbeating, no containers) and node_exporter with its default
# collectors, each scraped N times (default 1000) over one kept-alive
# connection, the two scrapers running at the same time, one scrape every
# 150 ms each (the agent serves scrapes less than 100 ms apart from one
# rendering: spaced wider, every scrape it answers is rendered afresh, as
# every one of node_exporter's is); then the memory of each process.
# Prints a Markdown table for BENCHMARKS.md.
#
# usage: bench/bench_scrape.sh [N]      (run from the build directory)
set -eu
n=${1:-1000}
build=$(pwd)
for f in shoal-agent shoal-coordinator bench/bench_scrape bench/rss_floor; do
	[ -x "$build/$f" ] || { echo "bench_scrape: build $f first (make bench)" >&2; exit 1; }
done
exporter=$(command -v prometheus-node-exporter || true)
[ -n "$exporter" ] || { echo "bench_scrape: install prometheus-node-exporter (scripts/install-deps.sh)" >&2; exit 1; }

dir=$(mktemp -d /tmp/shoal-bench-scrape.XXXXXX)
pids=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT INT TERM

# Free ports: the shell's own pid spreads parallel runs apart.
base=$((20000 + $$ % 20000))
"$build/shoal-coordinator" -c /dev/null --state-dir "$dir/coord" \
	--listen "tcp://127.0.0.1:$base" --publish "tcp://127.0.0.1:$((base + 1))" \
	--control "ipc://$dir/control.sock" --metrics-listen off \
	>"$dir/coord.log" 2>&1 &
pids="$pids $!"
"$build/shoal-agent" -c /dev/null --state-dir "$dir/agent" --node-id bench \
	--coordinator "tcp://127.0.0.1:$base" --runtime-socket "$dir/none.sock" \
	--heartbeat 1s --metrics-listen "127.0.0.1:$((base + 2))" \
	>"$dir/agent.log" 2>&1 &
agent=$!
pids="$pids $agent"
"$exporter" --web.listen-address="127.0.0.1:$((base + 3))" \
	>"$dir/exporter.log" 2>&1 &
exp=$!
pids="$pids $exp"
"$build/bench/rss_floor" &
floor=$!
pids="$pids $floor"

up() { curl -sf -o /dev/null "$1"; }
i=0
until up "http://127.0.0.1:$((base + 2))/metrics" && up "http://127.0.0.1:$((base + 3))/metrics"; do
	i=$((i + 1))
	[ $i -lt 100 ] || { echo "bench_scrape: the endpoints did not come up" >&2; cat "$dir"/*.log >&2; exit 1; }
	sleep 0.1
done

rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
hwm() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

a_rss0=$(rss $agent) e_rss0=$(rss $exp)
a_cpu0=$(cpu_ticks $agent) e_cpu0=$(cpu_ticks $exp)
# At the same time, so a load change on the machine hits both alike.
"$build/bench/bench_scrape" "http://127.0.0.1:$((base + 2))/metrics" "$n" 150 >"$dir/a.txt" &
sa=$!
"$build/bench/bench_scrape" "http://127.0.0.1:$((base + 3))/metrics" "$n" 150 >"$dir/e.txt" &
se=$!
wait $sa && wait $se || { echo "bench_scrape: a scraper failed" >&2; exit 1; }
rounds=1
per=$n
a_cpu1=$(cpu_ticks $agent) e_cpu1=$(cpu_ticks $exp)
hz=$(getconf CLK_TCK)

# One line each: median, p99.
med() { awk -v c="$2" '{ print $c }' "$1" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
a_med=$(med "$dir/a.txt" 3) e_med=$(med "$dir/e.txt" 3)
a_p99=$(med "$dir/a.txt" 5) e_p99=$(med "$dir/e.txt" 5)
a_samples=$(tail -n 1 "$dir/a.txt" | awk '{ print $8 }')
e_samples=$(tail -n 1 "$dir/e.txt" | awk '{ print $8 }')
a_bytes=$(tail -n 1 "$dir/a.txt" | awk '{ print $7 }')
e_bytes=$(tail -n 1 "$dir/e.txt" | awk '{ print $7 }')

echo "| | shoal-agent | prometheus-node-exporter $("$exporter" --version 2>&1 | awk 'NR == 1 { print $3 }') |"
echo "| --- | ---: | ---: |"
echo "| scrapes | $((per * rounds)) | $((per * rounds)) |"
echo "| samples served | $a_samples | $e_samples |"
echo "| bytes per scrape | $a_bytes | $e_bytes |"
echo "| scrape latency, median (µs) | $a_med | $e_med |"
echo "| scrape latency, p99 (µs) | $a_p99 | $e_p99 |"
echo "| CPU for all scrapes (ms) | $(( (a_cpu1 - a_cpu0) * 1000 / hz )) | $(( (e_cpu1 - e_cpu0) * 1000 / hz )) |"
echo "| RSS before scraping (KiB) | $a_rss0 | $e_rss0 |"
echo "| RSS after the scrapes (KiB) | $(rss $agent) | $(rss $exp) |"
echo "| peak RSS (KiB) | $(hwm $agent) | $(hwm $exp) |"
# RSS counts the shared libraries' pages every process mapping them shares
# (the agent loads 50-odd: libcurl alone brings TLS, LDAP, SSH, Kerberos);
# node_exporter is one static binary. What each costs the node alone:
anon() { awk '/^RssAnon:/ { print $2 }' "/proc/$1/status"; }
pss() { awk '/^Pss:/ { print $2 }' "/proc/$1/smaps_rollup"; }
priv() { awk '/^Private_(Clean|Dirty):/ { s += $2 } END { print s }' "/proc/$1/smaps_rollup"; }
echo "| anonymous memory, RssAnon (KiB) | $(anon $agent) | $(anon $exp) |"
echo "| private memory, clean + dirty (KiB) | $(priv $agent) | $(priv $exp) |"
echo "| proportional set size, Pss (KiB) | $(pss $agent) | $(pss $exp) |"
echo
echo "The floor: a process linked like the agent that only initialises libcurl and"
echo "ZeroMQ (bench/rss_floor) has RSS $(rss $floor) KiB, RssAnon $(anon $floor) KiB."
awk -v a="$a_med" -v e="$e_med" -v ar="$(rss $agent)" -v er="$(rss $exp)" \
	-v ap="$(priv $agent)" -v ep="$(priv $exp)" \
	'BEGIN { printf "\nmedian scrape: shoal %.1fx faster; RSS after: shoal %.2f of node_exporter'"'"'s; private memory %.2f\n", e / a, ar / er, ap / ep }'
