# SPDX-License-Identifier: Apache-2.0
# Helpers for the integration tests: TAP output, a scratch directory that is
# removed on exit with every process the test started, free ports, waiting
# for a condition with a deadline (a deadline, never a timing assertion).

: "${SHOAL_BUILDDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${SHOAL_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
# The tools built (poke) are in the build tree, the scripts (sdlisten.py)
# in the source tree: they differ in an out-of-tree build (make distcheck).
export PATH="$SHOAL_BUILDDIR:$SHOAL_BUILDDIR/tests/tools:$SHOAL_SRCDIR/tests/tools:$PATH"

tap_n=0
tap_failed=0
ok() { # ok COND-EXIT-STATUS NAME
	tap_n=$((tap_n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $tap_n - $2"
	else
		echo "not ok $tap_n - $2"
		tap_failed=$((tap_failed + 1))
	fi
}
check() { # check NAME COMMAND...: ok when the command succeeds
	local name=$1
	shift
	"$@" >/dev/null 2>&1
	ok $? "$name"
}
diag() { echo "# $*"; }
skip_all() { echo "1..0 # SKIP $*"; exit 0; }
done_testing() {
	echo "1..$tap_n"
	[ "$tap_failed" -eq 0 ]
}

need() {
	for tool in "$@"; do
		command -v "$tool" >/dev/null 2>&1 || skip_all "$tool not installed"
	done
}

SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/shoal-test.XXXXXX")
PIDS=""
# Transport security is on in every test, as in production: the tests'
# coordinators accept agents by this enrollment token, and agents pin the
# coordinator's public key, which it writes to its state dir.
ENROLL_TOKEN=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
# agent_keys [COORDINATOR_STATE_DIR]: an agent's flags for both.
agent_keys() {
	echo "--coordinator-key ${1:-$SCRATCH/coord}/coordinator.pub --enroll-token $ENROLL_TOKEN"
}

# stop_agents: kills every process start started except Podman's service,
# so that none of them makes a container after remove_containers looked.
stop_agents() {
	local p
	for p in $PIDS; do
		[ "$p" = "${PID_podman:-}" ] || kill -9 "$p" 2>/dev/null
	done
}
cleanup() {
	for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	if [ "${tap_failed:-0}" -ne 0 ] || [ -n "${SHOAL_KEEP:-}" ]; then
		for log in "$SCRATCH"/*.log; do
			[ -f "$log" ] || continue
			echo "# --- $log"
			sed 's/^/#   /' "$log" | tail -n 40
		done
	fi
	rm -rf "$SCRATCH"
}
trap cleanup EXIT

# A TCP port nobody listens on now (checked through /proc/net/tcp*), and
# that no container port mapping rewrites: netavark's DNAT rules send
# 127.0.0.1:PORT to a container, even one long gone whose rules a killed
# run left behind, before any socket bound to it sees the connection.
free_port() {
	local p hex dnat
	dnat=$(iptables -t nat -S 2>/dev/null | grep -o -- '--dport [0-9]*' | cut -d' ' -f2)
	while :; do
		p=$((20000 + RANDOM % 40000))
		hex=$(printf ':%04X ' "$p")
		grep -qi "$hex" /proc/net/tcp /proc/net/tcp6 2>/dev/null && continue
		printf '%s\n' "$dnat" | grep -qx "$p" && continue
		# The port after it too: daemons take PORT and PORT + 1.
		printf '%s\n' "$dnat" | grep -qx "$((p + 1))" && continue
		break
	done
	echo "$p"
}

# wait_for SECONDS COMMAND...: polls until the command succeeds.
wait_for() {
	local deadline=$(($(date +%s) + $1))
	shift
	while ! "$@" >/dev/null 2>&1; do
		[ "$(date +%s)" -ge "$deadline" ] && return 1
		sleep 0.1
	done
}

# json_ok FILTER COMMAND...: the command succeeds, prints something, and
# jq -e FILTER holds on it (a failed command never passes through a pipe).
json_ok() {
	local filter=$1 out
	shift
	out=$("$@") || return 1
	[ -n "$out" ] || return 1
	printf '%s\n' "$out" | jq -e "$filter" >/dev/null
}

# start NAME COMMAND...: runs a daemon in the background, logs to NAME.log.
start() {
	local name=$1
	shift
	"$@" >>"$SCRATCH/$name.log" 2>&1 &
	eval "PID_$(echo "$name" | tr -c 'A-Za-z0-9_\n' _)=$!"
	PIDS="$PIDS $!"
}
pid_of() { eval "echo \$PID_$(echo "$1" | tr -c 'A-Za-z0-9_\n' _)"; }
