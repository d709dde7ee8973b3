#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The daemons as systemd sees them, without systemd: this test listens on the
# NOTIFY_SOCKET it gives each daemon (tests/tools/sdlisten.py) and checks
# READY=1 once the sockets are bound, STATUS= lines, WATCHDOG=1 pings at
# half of WATCHDOG_USEC (and none without it), RELOADING=1/READY=1 around a
# SIGHUP that applies the live config keys and refuses a broken file, and
# STOPPING=1 on SIGTERM with a clean exit. As root, it also plays the
# journal in a private mount namespace and checks the structured fields
# (SHOAL_NODE=, SHOAL_SERVICE=, SHOAL_REVISION=) on the lines themselves.
. "$(dirname "$0")/lib.sh"
need jq python3 shoal-coordinator shoal-agent shoalctl sdlisten.py

export SHOAL_CONTROL="ipc://$SCRATCH/control.sock"
PORT=$(free_port)
MPORT=$(free_port)

# notes NAME: the JSON lines NAME's listener wrote
notes() { cat "$SCRATCH/$1.notify" 2>/dev/null; }
# count NAME FILTER: notifications that FILTER holds on
count() { notes "$1" | jq -s "[.[] | select(.fields and ($2))] | length"; }
has() { [ "$(count "$1" "$2")" -ge "${3:-1}" ]; }
listen() { # listen NAME [--probe TARGET]...
	local name=$1
	shift
	: >"$SCRATCH/$name.notify"
	start "$name-listener" sdlisten.py notify "$SCRATCH/$name.sock" "$SCRATCH/$name.notify" "$@"
	wait_for 10 test -S "$SCRATCH/$name.sock"
}
probes_ok() { # probes_ok NAME N: N probes written, all connected
	[ "$(notes "$1" | jq -s '[.[] | select(.probe)] | length')" -eq "$2" ] &&
		notes "$1" | jq -se '[.[] | select(.probe)] | all(.ok)' >/dev/null
}
# The intervals between WATCHDOG=1 pings, in ms, for the diagnostics.
intervals() {
	notes "$1" | jq -rs '[.[] | select(.fields.WATCHDOG == "1") | .t] |
		[range(1; length) as $i | ((.[$i] - .[$i - 1]) * 1000 | round)] | map(tostring) | join(" ")'
}
exited() { ! kill -0 "$1" 2>/dev/null; }

cat >"$SCRATCH/coordinator.yaml" <<EOF
state_dir: $SCRATCH/coord
listen: tcp://127.0.0.1:$PORT
publish: tcp://127.0.0.1:$((PORT + 1))
control: $SHOAL_CONTROL
metrics_listen: "off"
enroll_token: $ENROLL_TOKEN
EOF

# -- the coordinator ----------------------------------------------------
listen coord --probe "tcp:127.0.0.1:$PORT" --probe "tcp:127.0.0.1:$((PORT + 1))" \
	--probe "unix:$SCRATCH/control.sock"
NOTIFY_SOCKET="$SCRATCH/coord.sock" WATCHDOG_USEC=600000 \
	start coordinator shoal-coordinator -c "$SCRATCH/coordinator.yaml"
wait_for 20 has coord '.fields.READY == "1"'
ok $? "coordinator: READY=1"
wait_for 5 probes_ok coord 3
ok $? "  when it came, the agents', doorbell and control endpoints all accepted connections"
first_is_starting() {
	notes coord | jq -se 'map(select(.fields)) | (.[0].fields.STATUS | startswith("starting")) and (.[0].fields.READY == null)'
}
check "  a STATUS= line said it was starting before that" first_is_starting
check "  READY=1 carries the status: serving 0 nodes" \
	has coord '.fields.READY == "1" and (.fields.STATUS | startswith("serving 0 nodes"))'
wait_for 20 has coord '.fields.WATCHDOG == "1"' 5
ok $? "  WATCHDOG=1 pings keep coming with WATCHDOG_USEC=600000"
check "  at half the interval: it says it pings every 300ms" \
	grep -q "WatchdogSec is 600ms, pinging every 300ms" "$SCRATCH/coordinator.log"
diag "coordinator watchdog intervals (ms): $(intervals coord)"

# An agent, so that the status line and the reloads have something to show.
cat >"$SCRATCH/agent.yaml" <<EOF
node_id: a1
state_dir: $SCRATCH/a1
coordinator: tcp://127.0.0.1:$PORT
coordinator_key: $SCRATCH/coord/coordinator.pub
enroll_token: $ENROLL_TOKEN
heartbeat: 200ms
metrics_listen: 127.0.0.1:$MPORT
runtime_socket: $SCRATCH/no-runtime.sock
labels: {rack: r1, role: model}
EOF
listen agent --probe "tcp:127.0.0.1:$MPORT"
NOTIFY_SOCKET="$SCRATCH/agent.sock" WATCHDOG_USEC=400000 \
	start agent shoal-agent -c "$SCRATCH/agent.yaml"
wait_for 20 has agent '.fields.READY == "1"'
ok $? "agent: READY=1"
wait_for 5 probes_ok agent 1
ok $? "  when it came, its metrics endpoint accepted connections"
wait_for 20 has agent '.fields.STATUS and (.fields.STATUS | startswith("online at tcp://127.0.0.1:'"$PORT"'"))'
ok $? "  STATUS= says when it is online at the coordinator"
check "  and that the container runtime does not answer" \
	has agent '.fields.STATUS and (.fields.STATUS | contains("container runtime unreachable"))'
wait_for 20 has agent '.fields.WATCHDOG == "1"' 5
ok $? "  WATCHDOG=1 pings keep coming with WATCHDOG_USEC=400000"
check "  at half the interval: every 200ms" \
	grep -q "WatchdogSec is 400ms, pinging every 200ms" "$SCRATCH/agent.log"
diag "agent watchdog intervals (ms): $(intervals agent)"
node_rack() { shoalctl nodes --json | jq -r '.[] | select(.id == "a1") | .labels.rack'; }
rack_is() { [ "$(node_rack)" = "$1" ]; }
wait_for 20 has coord '.fields.STATUS and (.fields.STATUS | startswith("serving 1 node (1 online)"))'
ok $? "coordinator: STATUS= counts the node online"

# -- SIGHUP ---------------------------------------------------------------
# The coordinator: a new token and log level apply, a remote control
# endpoint waits for a restart.
NEW_TOKEN=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
sed -i "s|^enroll_token: .*|enroll_token: $NEW_TOKEN|" "$SCRATCH/coordinator.yaml"
printf 'log_level: debug\nremote_control: tcp://127.0.0.1:%s\n' "$(free_port)" >>"$SCRATCH/coordinator.yaml"
ready_before=$(count coord '.fields.READY == "1"')
kill -HUP "$(pid_of coordinator)"
wait_for 10 has coord '.fields.READY == "1"' $((ready_before + 1))
ok $? "coordinator: SIGHUP: READY=1 again after the reload"
check "  RELOADING=1 came first, with MONOTONIC_USEC" \
	has coord '.fields.RELOADING == "1" and (.fields.MONOTONIC_USEC | tonumber > 0)'
check "  the log says which keys applied" \
	grep -q "reload: log_level, enroll_token applied from $SCRATCH/coordinator.yaml" "$SCRATCH/coordinator.log"
check "  and which take a restart" \
	grep -q "reload: remote_control changed, which takes a restart" "$SCRATCH/coordinator.log"
listen agent2
NOTIFY_SOCKET="$SCRATCH/agent2.sock" start agent2 shoal-agent -c /dev/null --node-id a2 \
	--state-dir "$SCRATCH/a2" --coordinator "tcp://127.0.0.1:$PORT" --heartbeat 200ms \
	--coordinator-key "$SCRATCH/coord/coordinator.pub" --enroll-token "$NEW_TOKEN" \
	--metrics-listen off --runtime-socket "$SCRATCH/no-runtime.sock"
a2_online() { shoalctl nodes --json | jq -e '.[] | select(.id == "a2" and .state == "online")'; }
wait_for 20 a2_online
ok $? "  an agent with the new token is accepted"
check "  debug lines follow (log_level applied)" grep -q "debug: " "$SCRATCH/coordinator.log"

# A broken file is refused whole: the running configuration stays.
cp "$SCRATCH/coordinator.yaml" "$SCRATCH/coordinator.good"
printf 'missed_heartbeats: lots\n' >>"$SCRATCH/coordinator.yaml"
ready_before=$(count coord '.fields.READY == "1"')
kill -HUP "$(pid_of coordinator)"
wait_for 10 has coord '.fields.READY == "1"' $((ready_before + 1))
check "  a broken file: the error names the file, line and key" \
	grep -q "reload: $SCRATCH/coordinator.yaml:[0-9]*: .*missed_heartbeats.*the running configuration is kept" "$SCRATCH/coordinator.log"
check "  and the coordinator keeps serving" shoalctl nodes
cp "$SCRATCH/coordinator.good" "$SCRATCH/coordinator.yaml"

# The agent: new labels apply and reach the coordinator through a Hello.
check "agent: the coordinator has its rack=r1" rack_is r1
sed -i 's|^labels: .*|labels: {rack: r2, role: model}|' "$SCRATCH/agent.yaml"
ready_before=$(count agent '.fields.READY == "1"')
kill -HUP "$(pid_of agent)"
wait_for 10 has agent '.fields.READY == "1"' $((ready_before + 1))
ok $? "agent: SIGHUP: RELOADING=1 then READY=1"
check "  the log says labels applied" grep -q "reload: labels applied" "$SCRATCH/agent.log"
wait_for 20 rack_is r2
ok $? "  the coordinator sees the new label rack=r2"
sed -i 's|^heartbeat: .*|heartbeat: 1s|' "$SCRATCH/agent.yaml"
kill -HUP "$(pid_of agent)"
wait_for 10 grep -q "reload: heartbeat changed, which takes a restart of shoal-agent" "$SCRATCH/agent.log"
ok $? "  a changed heartbeat waits for a restart, and says so"

# -- SIGTERM ---------------------------------------------------------------
check "agent2: no WATCHDOG_USEC, no WATCHDOG=1" test "$(count agent2 '.fields.WATCHDOG')" -eq 0
check "  and no watchdog line in its log" sh -c "! grep -q 'watchdog:' '$SCRATCH/agent2.log'"
for name in agent agent2 coordinator; do
	pid=$(pid_of "$name")
	kill -TERM "$pid"
	wait_for 20 exited "$pid"
	ok $? "$name: SIGTERM: it exits"
	wait "$pid"
	ok $? "  with status 0"
	l=${name/coordinator/coord}
	check "  having sent STOPPING=1" has "$l" '.fields.STOPPING == "1" and (.fields.STATUS | startswith("stopping (SIGTERM)"))'
done
check "coordinator: its control socket file is gone" test ! -e "$SCRATCH/control.sock"

# -- exit 78 ----------------------------------------------------------------
# What the units do not restart on (RestartPreventExitStatus=78).
shoal-agent -c /dev/null --state-dir "$SCRATCH/a3" --metrics-listen off \
	--coordinator-key "$SCRATCH/nowhere.pub" >"$SCRATCH/a3.log" 2>&1
rc=$?
ok $((rc != 78)) "agent: exit 78 when the coordinator's key file is missing ($rc)"
check "  and the log names the file" grep -q "$SCRATCH/nowhere.pub" "$SCRATCH/a3.log"
printf 'heartbeat: soon\n' >"$SCRATCH/bad.yaml"
shoal-agent -c "$SCRATCH/bad.yaml" >/dev/null 2>&1
rc=$?
ok $((rc != 78)) "agent: exit 78 for a refused config file ($rc)"
shoal-coordinator -c "$SCRATCH/bad.yaml" >/dev/null 2>&1
rc=$?
ok $((rc != 78)) "coordinator: exit 78 for a refused config file ($rc)"
for u in agent coordinator; do
	check "  shoal-$u.service.in: RestartPreventExitStatus=78" \
		grep -qx "RestartPreventExitStatus=78" "$SHOAL_SRCDIR/systemd/shoal-$u.service.in"
done

# -- the journal ---------------------------------------------------------
# sd_journal_sendv() writes to /run/systemd/journal/socket, and the daemons
# use it when stderr is the stream JOURNAL_STREAM names. In a mount
# namespace of its own, with a tmpfs over /run, the test can be the journal.
if [ "$(id -u)" -eq 0 ] && unshare -m true 2>/dev/null; then
	cat >"$SCRATCH/spec.yaml" <<EOF
service: iris
selector: {role: model}
image: localhost/shoal-example-model:1
command: ["/model-server", "--port", "8080"]
port: 8080
health: {path: /health}
EOF
	cat >"$SCRATCH/journal.sh" <<'SCRIPT'
set -u
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/systemd/journal
sdlisten.py journal /run/systemd/journal/socket "$SCRATCH/journal.json" &
lpid=$!
for i in $(seq 100); do [ -S /run/systemd/journal/socket ] && break; sleep 0.1; done
as_journal() { # as_journal LOG COMMAND...: stderr to LOG, named by JOURNAL_STREAM
	local log=$1
	shift
	: >"$log"
	JOURNAL_STREAM="$(stat -c %d "$log"):$(stat -c %i "$log")" "$@" >/dev/null 2>>"$log" &
}
sed -i '/^log_level\|^remote_control/d' "$SCRATCH/coordinator.yaml"
as_journal "$SCRATCH/j-coord.log" shoal-coordinator -c "$SCRATCH/coordinator.yaml"
cpid=$!
for i in $(seq 100); do [ -S "$SCRATCH/control.sock" ] && break; sleep 0.1; done
as_journal "$SCRATCH/j-agent.log" shoal-agent -c "$SCRATCH/agent.yaml" --node-id j1 --state-dir "$SCRATCH/j1" \
	--enroll-token "$NEW_TOKEN"
apid=$!
for i in $(seq 200); do
	shoalctl nodes --json 2>/dev/null | grep -q '"j1"' && break
	sleep 0.1
done
shoalctl apply -f "$SCRATCH/spec.yaml" >/dev/null
for i in $(seq 200); do
	grep -q 'revision 1 wanted' "$SCRATCH/journal.json" 2>/dev/null && break
	sleep 0.1
done
kill -TERM "$apid" "$cpid"
wait "$apid" "$cpid"
kill "$lpid"
SCRIPT
	SCRATCH="$SCRATCH" NEW_TOKEN="$NEW_TOKEN" unshare -m --propagation private \
		bash "$SCRATCH/journal.sh" >"$SCRATCH/journal-run.log" 2>&1
	j() { jq -s "$1" "$SCRATCH/journal.json"; }
	jok() { j "$1" | grep -qx true; }
	check "journal: the daemons wrote entries to the journal socket" \
		jok '[.[] | select(.fields.SYSLOG_IDENTIFIER == "shoal-agent")] | length > 3'
	check "  and nothing to stderr" sh -c "! [ -s '$SCRATCH/j-agent.log' ] && ! [ -s '$SCRATCH/j-coord.log' ]"
	check "  every agent entry carries SHOAL_NODE=j1" \
		jok '[.[] | select(.fields.SYSLOG_IDENTIFIER == "shoal-agent")] | all(.fields.SHOAL_NODE == "j1")'
	check "  with MESSAGE= and PRIORITY=" \
		jok '[.[] | select(.fields.SYSLOG_IDENTIFIER == "shoal-agent")] | all((.fields.MESSAGE | length > 0) and (.fields.PRIORITY | test("^[0-7]$")))'
	check "  the agent's line about the service: SHOAL_SERVICE=iris SHOAL_REVISION=1" \
		jok 'any(.[]; .fields.SYSLOG_IDENTIFIER == "shoal-agent" and .fields.SHOAL_SERVICE == "iris" and .fields.SHOAL_REVISION == "1" and (.fields.MESSAGE | contains("revision 1 wanted")))'
	check "  the coordinator's line about the node: SHOAL_NODE=j1" \
		jok 'any(.[]; .fields.SYSLOG_IDENTIFIER == "shoal-coordinator" and .fields.SHOAL_NODE == "j1" and (.fields.MESSAGE | contains("j1")))'
	check "  the coordinator's line about the revision: SHOAL_SERVICE=iris SHOAL_REVISION=1" \
		jok 'any(.[]; .fields.SYSLOG_IDENTIFIER == "shoal-coordinator" and .fields.SHOAL_SERVICE == "iris" and .fields.SHOAL_REVISION == "1")'
	check "  the coordinator's lines about no node carry no SHOAL_NODE" \
		jok 'any(.[]; .fields.SYSLOG_IDENTIFIER == "shoal-coordinator" and .fields.SHOAL_NODE == null)'
	if [ "$tap_failed" -ne 0 ]; then
		sed 's/^/# /' "$SCRATCH/journal-run.log"
		head -c 3000 "$SCRATCH/journal.json" | sed 's/^/# /'
	fi
else
	diag "journal checks skipped: they need root and unshare -m"
fi

done_testing
