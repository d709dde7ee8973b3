#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Metrics end to end: a coordinator and two agents, one with a (fake) NVIDIA
# driver and the example model running in a real container, one without
# NVML. Both endpoints pass `promtool check metrics` (no parse error, no lint
# finding on shoal's own names; node_exporter's and DCGM's names keep their
# camelCase on purpose), carry the node_exporter and DCGM names dashboards
# expect, and a real Prometheus server scrapes them (up == 1) and answers a
# query on a host metric. The heartbeat summary reaches the coordinator's
# endpoint and `shoalctl top`. Bad requests, garbage and a taken port get
# clear answers, never a crash.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/podman.sh"
need jq curl promtool prometheus shoal-coordinator shoal-agent shoalctl
[ -n "${FAKE_NVML:-}" ] && [ -f "$FAKE_NVML" ] ||
	{ echo "Bail out! FAKE_NVML (the fake libnvidia-ml) is not built: run make check"; exit 1; }
start_podman

IMAGE=localhost/shoal-example-model:1
MODEL_SERVER="$SHOAL_BUILDDIR/examples/model-server" \
	"$SHOAL_SRCDIR/examples/build-image.sh" "$IMAGE" >"$SCRATCH/image.log" 2>&1
ok $? "the example model's image builds with podman import"

P="t$$"
GPU="$P-gpu"
PLAIN="$P-plain"
export SHOAL_CONTROL="ipc://$SCRATCH/control.sock"
trap 'umount "$SCRATCH/mnt" 2>/dev/null; remove_containers $GPU $PLAIN; cleanup' EXIT

PORT=$(free_port)
CM=$(free_port)
start coordinator shoal-coordinator -c /dev/null --enroll-token "$ENROLL_TOKEN" --state-dir "$SCRATCH/coord" \
	--listen "tcp://127.0.0.1:$PORT" --publish "tcp://127.0.0.1:$((PORT + 1))" \
	--control "$SHOAL_CONTROL" --metrics-listen "127.0.0.1:$CM"
wait_for 10 test -S "$SCRATCH/control.sock"
ok $? "coordinator starts with its metrics on 127.0.0.1:$CM"

GM=$(free_port)
PM=$(free_port)
# The fake driver: two GPUs, and Xid 79 (fallen off the bus) on GPU 0.
start "$GPU" env FAKE_NVML_GPUS=2 FAKE_NVML_XID=79 \
	shoal-agent -c /dev/null $(agent_keys) --state-dir "$SCRATCH/$GPU" --node-id "$GPU" \
	--label role=gpu --coordinator "tcp://127.0.0.1:$PORT" --heartbeat 200ms \
	--runtime-socket "$SHOAL_RUNTIME_SOCKET" --metrics-listen "127.0.0.1:$GM" \
	--metrics-interval 1s --nvml-library "$FAKE_NVML"
start "$PLAIN" shoal-agent -c /dev/null $(agent_keys) --state-dir "$SCRATCH/$PLAIN" \
	--node-id "$PLAIN" --label role=cpu --coordinator "tcp://127.0.0.1:$PORT" \
	--heartbeat 200ms --runtime-socket "$SHOAL_RUNTIME_SOCKET" \
	--metrics-listen "127.0.0.1:$PM" --metrics-interval 1s \
	--nvml-library "$SCRATCH/no-such-dir/libnvidia-ml.so.1"
wait_for 20 json_ok '[.[] | select(.state == "online")] | length == 2' shoalctl nodes --json
ok $? "both agents online"

scrape() { curl -sf -m 5 "http://127.0.0.1:$1/metrics"; }
has() { # has PORT REGEX: a sample line of the endpoint matches
	scrape "$1" | grep -v '^#' | grep -Eq "$2"
}
value() { # value PORT SERIES: the value of the first sample line starting so
	scrape "$1" | awk -v s="$2" 'index($0, s) == 1 { print $NF; exit }'
}

# -- the example model on the GPU node ---------------------------------------
cat >"$SCRATCH/iris.yaml" <<EOF
service: iris
selector: {role: gpu}
image: $IMAGE
command: ["/model-server", "--port", "8080"]
port: 8080
resources: {memory: 64Mi, cpus: 0.5}
health:
  path: /health
  interval: 300ms
  timeout: 3s
  start_period: 10s
  unhealthy_threshold: 3
update:
  min_healthy_time: 0s
EOF
shoalctl apply -f "$SCRATCH/iris.yaml" >/dev/null
ok $? "apply the example model to the GPU node"
wait_for 90 json_ok '(.nodes | length) == 1 and .nodes[0].state == "healthy"' \
	shoalctl status iris --json
ok $? "iris healthy"

# -- the agent's endpoint -------------------------------------------------------
scrape "$GM" >"$SCRATCH/gpu.prom"
ok $? "GET /metrics on the GPU agent"
curl -s -o /dev/null -D "$SCRATCH/headers" "http://127.0.0.1:$GM/metrics"
grep -qi '^content-type: text/plain; version=0.0.4' "$SCRATCH/headers"
ok $? "served as the text exposition format 0.0.4"

lint() { # lint FILE: promtool's findings on shoal's own names, or a parse error
	promtool check metrics <"$1" >"$1.lint" 2>&1
	if grep -q 'error while linting\|parsing error' "$1.lint"; then
		cat "$1.lint"
		return 1
	fi
	grep -v '^node_\|^DCGM_' "$1.lint"
	return 0
}
out=$(lint "$SCRATCH/gpu.prom")
r=$?
[ $r -eq 0 ] && [ -z "$out" ]
ok $? "promtool check metrics: no parse error, no finding on shoal_ names${out:+: $out}"
check "... and its findings are only the camelCase of node_exporter's and DCGM's names" \
	grep -q 'DCGM_FI_DEV_GPU_UTIL label names\|node_memory_MemAvailable_bytes metric names' "$SCRATCH/gpu.prom.lint"

for series in 'node_cpu_seconds_total{cpu="0",mode="idle"}' node_memory_MemAvailable_bytes \
	node_memory_MemTotal_bytes node_load1 'node_network_receive_bytes_total{device="lo"}' \
	'node_filesystem_avail_bytes{device=' node_disk_ node_context_switches_total \
	node_boot_time_seconds; do
	grep -Fq "$series" "$SCRATCH/gpu.prom"
	ok $? "node_exporter's $series"
done
if [ -r /proc/pressure/cpu ]; then
	check "pressure from /proc/pressure" grep -q '^node_pressure_cpu_waiting_seconds_total ' "$SCRATCH/gpu.prom"
fi
check "every collector succeeded" test -z "$(grep '^node_scrape_collector_success' "$SCRATCH/gpu.prom" | grep -v ' 1$')"
avail=$(awk '$1 == "node_memory_MemAvailable_bytes" { print $2 }' "$SCRATCH/gpu.prom")
total=$(awk '$1 == "MemTotal:" { printf "%.0f", $2 * 1024 }' /proc/meminfo)
check "node_memory_MemTotal_bytes is /proc/meminfo's MemTotal" \
	grep -q "^node_memory_MemTotal_bytes $total\$" "$SCRATCH/gpu.prom"
awk -v a="$avail" -v t="$total" 'BEGIN { exit !(a > 0 && a <= t) }'
ok $? "MemAvailable is within it ($avail of $total)"

# A mount appears and goes: the agent rereads the mount table when the
# kernel says it changed (poll on /proc/self/mounts).
mkdir -p "$SCRATCH/mnt"
if mount -t tmpfs -o size=8m shoal-test "$SCRATCH/mnt" 2>/dev/null; then
	wait_for 15 has "$GM" "^node_filesystem_size_bytes\\{device=\"shoal-test\",fstype=\"tmpfs\",mountpoint=\"$SCRATCH/mnt\"\\} 8388608\$"
	ok $? "a file system mounted while the agent runs appears, with its size"
	umount "$SCRATCH/mnt"
	gone() { ! has "$GM" "mountpoint=\"$SCRATCH/mnt\""; }
	wait_for 15 gone
	ok $? "... and goes when it is unmounted"
else
	diag "cannot mount a tmpfs here: the mount table checks are skipped"
fi

check "DCGM's GPU utilisation for both GPUs, with DCGM's labels" test \
	"$(grep -c '^DCGM_FI_DEV_GPU_UTIL{gpu="[01]",UUID="GPU-fake[^"]*",device="nvidia[01]",modelName="NVIDIA Fake H100",Hostname=' "$SCRATCH/gpu.prom")" = 2
fb() { awk -v s="DCGM_FI_DEV_FB_$1{gpu=\"1\"" 'index($0, s) == 1 { print $NF }' "$SCRATCH/gpu.prom"; }
check "framebuffer used and free in MiB (80 GiB in all)" test "$(($(fb USED) + $(fb FREE)))" = 81920
check "temperature in C" grep -q '^DCGM_FI_DEV_GPU_TEMP{gpu="1".*} 41$' "$SCRATCH/gpu.prom"
check "power in W" grep -q '^DCGM_FI_DEV_POWER_USAGE{gpu="0".*} 250.5$' "$SCRATCH/gpu.prom"
check "ECC counters" grep -q '^DCGM_FI_DEV_ECC_SBE_VOL_TOTAL{gpu="1".*} 1$' "$SCRATCH/gpu.prom"
wait_for 10 has "$GM" '^DCGM_FI_DEV_XID_ERRORS\{gpu="0".*\} 79$'
ok $? "the Xid the driver reported is DCGM_FI_DEV_XID_ERRORS"
check "... and counted" has "$GM" '^shoal_gpu_xid_errors_total\{gpu="0".*\} 1$'
u1=$(value "$GM" 'DCGM_FI_DEV_GPU_UTIL{gpu="0"')
util_moved() { [ "$(value "$GM" 'DCGM_FI_DEV_GPU_UTIL{gpu="0"')" != "$u1" ]; }
wait_for 10 util_moved
ok $? "GPU figures follow the driver's samples"

# (shoal_heap_in_use_bytes is glibc's count: 0 under ASan's allocator)
check "process metrics" sh -c "grep -q '^process_resident_memory_bytes [1-9]' '$SCRATCH/gpu.prom' && grep -q '^process_open_fds [1-9]' '$SCRATCH/gpu.prom' && grep -q '^shoal_heap_in_use_bytes [0-9]' '$SCRATCH/gpu.prom'"
check "the runtime answers" has "$GM" '^shoal_runtime_up 1$'
check "shoal_build_info names the version" grep -q '^shoal_build_info{version="[0-9]' "$SCRATCH/gpu.prom"
check "the service's state" has "$GM" '^shoal_service_state\{service="iris",state="healthy"\} 1$'
check "... and revision" has "$GM" '^shoal_service_revision\{service="iris"\} 1$'
check "health probes in a latency histogram" has "$GM" \
	'^shoal_health_probe_duration_seconds_count\{service="iris"\} [1-9]'
check "... with buckets" has "$GM" \
	'^shoal_health_probe_duration_seconds_bucket\{service="iris",le="\+Inf"\} [1-9]'
check "restarts" has "$GM" '^shoal_service_restarts_total\{service="iris"\} 0$'
check "outbox depth and artifact cache" sh -c \
	"grep -q '^shoal_outbox_depth ' '$SCRATCH/gpu.prom' && grep -q '^shoal_artifact_cache_bytes ' '$SCRATCH/gpu.prom'"
check "the coordinator session" has "$GM" '^shoal_coordinator_connected 1$'
# The runtime's stats of the serving container come every 10 s.
wait_for 30 has "$GM" '^shoal_container_memory_bytes\{service="iris",revision="1"\} [1-9]'
ok $? "the container's memory, from the runtime API"
check "... and CPU time" has "$GM" '^shoal_container_cpu_seconds_total\{service="iris",revision="1"\} '

# -- without NVML -------------------------------------------------------------
scrape "$PM" >"$SCRATCH/plain.prom"
check "without NVML: no GPUs" grep -q '^shoal_gpu_devices 0$' "$SCRATCH/plain.prom"
check "... NVML down" grep -q '^shoal_gpu_nvml_up 0$' "$SCRATCH/plain.prom"
check "... no DCGM series" test "$(grep -c '^DCGM_' "$SCRATCH/plain.prom")" = 0
check "... and the host metrics are all there" grep -q '^node_load1 ' "$SCRATCH/plain.prom"
out=$(lint "$SCRATCH/plain.prom")
[ $? -eq 0 ] && [ -z "$out" ]
ok $? "promtool finds nothing on the GPU-less agent's shoal_ names${out:+: $out}"

# -- the coordinator's endpoint -----------------------------------------------------
wait_for 10 has "$CM" "^shoal_node_gpus\\{node=\"$GPU\"\\} 2$"
r=$?
ok $r "heartbeats carry the GPU summary to the coordinator"
if [ $r -ne 0 ]; then
	# Once seen in a sanitizer run: say what the endpoint answered.
	curl -sv -m 5 "http://127.0.0.1:$CM/metrics" 2>&1 | head -n 30 | sed 's/^/# /'
	ss -ltnp 2>/dev/null | grep ":$CM " | sed 's/^/# /'
fi
scrape "$CM" >"$SCRATCH/coord.prom"
out=$(lint "$SCRATCH/coord.prom")
[ $? -eq 0 ] && [ -z "$out" ] && [ ! -s "$SCRATCH/coord.prom.lint" ]
ok $? "promtool check metrics on the coordinator: no finding at all${out:+: $out}"
check "nodes by state" grep -q '^shoal_nodes{state="online"} 2$' "$SCRATCH/coord.prom"
check "rollouts by state, every state listed" test "$(grep -c '^shoal_rollouts{state=' "$SCRATCH/coord.prom")" = 8
check "services" grep -q '^shoal_services 1$' "$SCRATCH/coord.prom"
check "per-node memory" grep -q "^shoal_node_memory_total_bytes{node=\"$PLAIN\"} [1-9]" "$SCRATCH/coord.prom"
check "per-node GPU memory" grep -q "^shoal_node_gpu_memory_total_bytes{node=\"$GPU\"} 171798691840$" "$SCRATCH/coord.prom"

check "node show --json has the GPU summary" json_ok \
	'.figures.gpus == 2 and .figures.gpu_memory_total_bytes == 171798691840 and .figures.memory_total_bytes > 0' \
	shoalctl node show "$GPU" --json
check "... and so has its text" sh -c "shoalctl node show '$GPU' | grep -q '^gpus: *2, '"

# -- shoalctl top -----------------------------------------------------------------
check "top --json is an array of both nodes" json_ok 'length == 2 and all(.[]; .state == "online")' shoalctl top --json
check "top --sort gpu puts the GPU node first" json_ok \
	".[0].node == \"$GPU\" and .[0].gpus == 2 and .[1].gpus == 0" shoalctl top --sort gpu --json
check "top --sort memory orders by memory in use" json_ok \
	'.[0].memory_used_percent >= .[1].memory_used_percent' shoalctl top --sort memory --json
check "top --sort cpu orders by CPU" json_ok '.[0].cpu_percent >= .[1].cpu_percent' shoalctl top --json
shoalctl top >"$SCRATCH/top.txt"
check "top's table has a header and a row per node" sh -c \
	"head -n 1 '$SCRATCH/top.txt' | grep -q '^NODE' && grep -q '^$GPU ' '$SCRATCH/top.txt' && grep -q '^$PLAIN ' '$SCRATCH/top.txt'"
shoalctl top --sort disk >/dev/null 2>"$SCRATCH/err.txt"
check "an unknown --sort is a usage error (2)" test $? -eq 2
check "... naming the choices" grep -q 'cpu, memory or gpu' "$SCRATCH/err.txt"
check "top --help" sh -c 'shoalctl top --help | grep -q "Usage: shoalctl top"'

# -- a real Prometheus --------------------------------------------------------------
PP=$(free_port)
cat >"$SCRATCH/prometheus.yml" <<EOF
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: agent
    static_configs: [{targets: ["127.0.0.1:$GM"]}]
  - job_name: coordinator
    static_configs: [{targets: ["127.0.0.1:$CM"]}]
EOF
start prometheus prometheus --config.file="$SCRATCH/prometheus.yml" \
	--storage.tsdb.path="$SCRATCH/prom-data" --web.listen-address="127.0.0.1:$PP"
query() { curl -sf -m 5 --data-urlencode "query=$1" "http://127.0.0.1:$PP/api/v1/query"; }
wait_for 60 json_ok '.status == "success" and ([.data.result[] | select(.value[1] == "1")] | length) == 2' query up
ok $? "Prometheus scrapes the agent and the coordinator: up == 1 for both"
check "Prometheus answers a query on a host metric" json_ok \
	'(.data.result | length) == 1 and (.data.result[0].value[1] | tonumber) > 0' \
	query 'node_memory_MemAvailable_bytes{job="agent"}'
wait_for 20 json_ok '(.data.result | length) == 2' query 'sum by (mode) (rate(node_cpu_seconds_total{mode=~"idle|user"}[5s]))'
ok $? "... and rates a counter (node_cpu_seconds_total)"
check "... a GPU one" json_ok '(.data.result | length) == 2' query 'DCGM_FI_DEV_GPU_UTIL'
check "... and the fleet's" json_ok '.data.result[0].value[1] == "2"' query 'shoal_nodes{state="online"}'

# -- bad requests never hurt ----------------------------------------------------------
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
check "another path is 404" test "$(code "http://127.0.0.1:$GM/nothing")" = 404
check "POST is 405" test "$(code -X POST -d x "http://127.0.0.1:$GM/metrics")" = 405
check "HEAD is answered" test "$(code -I "http://127.0.0.1:$GM/metrics")" = 200
garbage() { # garbage PORT: bytes that are not HTTP, then a half request
	# In a subshell: the server may close first, and a write to a closed
	# socket would kill this shell with SIGPIPE.
	(
		exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
		head -c 4096 /dev/urandom >&3
		printf '\r\n\r\n' >&3
		timeout 5 cat <&3 >/dev/null
		exec 3<&-
		exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
		printf 'GET /metrics HTTP/1.1\r\nHost: x\r\n' >&3
	) 2>/dev/null
	return 0
}
garbage "$GM"
garbage "$CM"
idle=""
for i in $(seq 1 40); do
	(exec 3<>"/dev/tcp/127.0.0.1/$GM"; sleep 8) 2>/dev/null &
	idle="$idle $!"
done
sleep 1
wait_for 5 scrape "$GM"
ok $? "after garbage and half requests, with 40 idle connections open, the agent answers"
kill $idle 2>/dev/null
check "... and so does the coordinator" scrape "$CM"
check "... both still running" kill -0 "$(pid_of "$GPU")" "$(pid_of coordinator)"

shoal-agent -c /dev/null $(agent_keys) --state-dir "$SCRATCH/x" --metrics-listen "127.0.0.1:$GM" \
	--coordinator "tcp://127.0.0.1:$PORT" --runtime-socket "$SHOAL_RUNTIME_SOCKET" \
	2>"$SCRATCH/err.txt"
check "a taken metrics port stops a second agent (1)" test $? -eq 1
check "... naming the address and the reason" grep -q "cannot listen on 127.0.0.1:$GM: Address already in use" "$SCRATCH/err.txt"
shoal-agent -c /dev/null $(agent_keys) --metrics-listen 9464 2>"$SCRATCH/err.txt"
check "--metrics-listen without a host is a usage error (2)" test $? -eq 2
check "... naming the flag" grep -q -- "--metrics-listen" "$SCRATCH/err.txt"
printf 'metrics_listen: "nohost"\n' >"$SCRATCH/bad.yaml"
shoal-agent -c "$SCRATCH/bad.yaml" --state-dir "$SCRATCH/y" 2>"$SCRATCH/err.txt"
check "metrics_listen in a config file is checked too" grep -q 'metrics_listen' "$SCRATCH/err.txt"

done_testing
