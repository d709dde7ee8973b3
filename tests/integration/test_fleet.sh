#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# One coordinator and three agents as separate processes on loopback, each
# with its own state dir: registration with labels, an agent killed goes
# offline, a coordinator restart keeps the registry and the agents come
# back on their own, events queued while the coordinator was away arrive
# exactly once, and hostile frames do not take the coordinator down.
. "$(dirname "$0")/lib.sh"
need jq shoal-coordinator shoal-agent shoalctl poke

HB=200ms
export SHOAL_CONTROL="ipc://$SCRATCH/control.sock"

start_coordinator() {
	local tries=0
	while :; do
		start coordinator shoal-coordinator -c /dev/null --enroll-token "$ENROLL_TOKEN" --metrics-listen off --state-dir "$SCRATCH/coord" \
			--listen "tcp://127.0.0.1:$PORT" \
			--publish "tcp://127.0.0.1:$((PORT + 1))" \
			--control "$SHOAL_CONTROL" --missed-heartbeats 3
		if wait_for 10 test -S "$SCRATCH/control.sock"; then
			return 0
		fi
		# The port may have been taken between choosing and binding.
		tries=$((tries + 1))
		[ "$tries" -ge 5 ] && return 1
		PORT=$(free_port)
	done
}

start_agent() { # start_agent NAME RACK
	start "$1" shoal-agent -c /dev/null $(agent_keys) --metrics-listen off --state-dir "$SCRATCH/$1" --node-id "$1" \
		--label role=model --label "rack=$2" \
		--coordinator "tcp://127.0.0.1:$PORT" --heartbeat "$HB"
}

nodes() { shoalctl nodes --json; }
state_of() { nodes | jq -r --arg id "$1" '.[] | select(.id == $id) | .state'; }
is_state() { [ "$(state_of "$1")" = "$2" ]; }
online_count() { nodes | jq '[.[] | select(.state == "online")] | length'; }
count_is() { [ "$(online_count)" = "$1" ]; }
alive() { kill -0 "$(pid_of "$1")" 2>/dev/null; }
has_event() { # has_event NODE KIND [N]: at least N events of KIND
	[ "$(shoalctl events --node "$1" --limit 1000 --json |
		jq --arg k "$2" '[.[] | select(.kind == $k)] | length')" -ge "${3:-1}" ]
}

PORT=$(free_port)
start_coordinator
ok $? "coordinator starts and binds its endpoints"
start_agent node-a r1
start_agent node-b r2
start_agent node-c r3

wait_for 20 count_is 3
ok $? "three agents register and are online"

nodes >"$SCRATCH/nodes.json"
check "nodes --json is a JSON array of three" \
	json_ok 'type == "array" and length == 3' cat "$SCRATCH/nodes.json"
check "labels come from the agents' flags" \
	json_ok '.[] | select(.id == "node-b") | .labels == {"role": "model", "rack": "r2"}' \
	cat "$SCRATCH/nodes.json"
check "last_seen is RFC 3339" \
	json_ok 'all(.[]; .last_seen | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?Z$"))' \
	cat "$SCRATCH/nodes.json"
check "facts and agent version are reported" \
	json_ok 'all(.[]; .facts.cpus > 0 and .facts.memory_bytes > 0 and (.agent_version | length) > 0)' \
	cat "$SCRATCH/nodes.json"

wait_for 10 json_ok '.acked_generation == .generation and .generation >= 1' \
	shoalctl node show node-a --json
ok $? "agents fetch and acknowledge their desired-state generation"

check "options may follow the node id" \
	json_ok '.id == "node-a" and .state == "online"' shoalctl node show node-a --json
check "nodes, a page of one node at a time, lists all three in id order" \
	json_ok 'map(.id) == ["node-a", "node-b", "node-c"]' shoalctl nodes --chunk-size 1 --json
poke --list-nodes "$SHOAL_CONTROL" "" 1 >"$SCRATCH/page1.txt" &&
	poke --list-nodes "$SHOAL_CONTROL" node-a 1 >"$SCRATCH/page2.txt" &&
	poke --list-nodes "$SHOAL_CONTROL" node-c 5 >"$SCRATCH/page3.txt"
[ "$(cat "$SCRATCH/page1.txt")" = "$(printf 'node node-a\nnext node-a')" ] &&
	[ "$(cat "$SCRATCH/page2.txt")" = "$(printf 'node node-b\nnext node-b')" ] &&
	[ "$(cat "$SCRATCH/page3.txt")" = "next " ]
ok $? "the coordinator pages nodes: one after another, then an empty last page"
shoalctl node show node-a >"$SCRATCH/show.txt" 2>&1
check "node show prints the node" grep -q "^id: *node-a" "$SCRATCH/show.txt"
shoalctl node show no-such-node >/dev/null 2>"$SCRATCH/err.txt"
rc=$?
[ $rc -ne 0 ] && grep -q "no-such-node" "$SCRATCH/err.txt"
ok $? "node show of an unknown node fails and names it"
shoalctl frobnicate >/dev/null 2>&1
[ $? -eq 2 ]
ok $? "an unknown command is a usage error (exit 2)"

# A killed agent goes offline; the others stay online.
kill -9 "$(pid_of node-c)"
wait_for 10 is_state node-c offline
ok $? "a killed agent is marked offline"
is_state node-a online && is_state node-b online
ok $? "the other agents stay online"

# Hostile frames on the agent endpoint: the coordinator answers and lives.
poke "tcp://127.0.0.1:$PORT" "$SCRATCH/coord/coordinator.pub" >"$SCRATCH/poke.out" 2>&1
ok $? "every hostile frame is refused with the expected error, or dropped"
sed 's/^/# /' "$SCRATCH/poke.out"
alive coordinator && shoalctl nodes >/dev/null
ok $? "the coordinator survives malformed, oversized and forged frames"
check "forged nodes were not registered" \
	json_ok 'length == 3 and all(.[]; .id != "poke" and .id != "never-registered")' \
	shoalctl nodes --json

# Restart the coordinator: the registry survives, the agents come back
# without being restarted, and events queued meanwhile arrive.
kill -TERM "$(pid_of coordinator)"
wait "$(pid_of coordinator)"
ok $? "the coordinator exits cleanly on SIGTERM"
check "the control socket is removed on exit" test ! -e "$SCRATCH/control.sock"
shoalctl nodes >/dev/null 2>"$SCRATCH/err.txt"
[ $? -ne 0 ] && grep -q "cannot reach the coordinator" "$SCRATCH/err.txt"
ok $? "shoalctl says so when no coordinator listens"

# While it is away, node-a restarts: its agent.started waits in the outbox.
kill -TERM "$(pid_of node-a)"
wait "$(pid_of node-a)"
ok $? "an agent exits cleanly on SIGTERM"
start_agent node-a r1
wait_for 10 grep -q "lost the coordinator" "$SCRATCH/node-b.log"
ok $? "an agent notices the coordinator is gone"

start_coordinator
ok $? "the coordinator starts again on the same state dir"
nodes >"$SCRATCH/nodes2.json"
check "the registry survived the restart" \
	json_ok 'length == 3 and (map(.id) | sort) == ["node-a", "node-b", "node-c"]' \
	cat "$SCRATCH/nodes2.json"
check "labels survived the restart" \
	json_ok '.[] | select(.id == "node-c") | .labels.rack == "r3"' cat "$SCRATCH/nodes2.json"

wait_for 30 json_ok '[.[] | select(.state == "online") | .id] | sort == ["node-a", "node-b"]' \
	shoalctl nodes --json
ok $? "the agents reconnect on their own"
alive node-b
ok $? "node-b is the same process as before the restart"
is_state node-c offline
ok $? "the killed agent stays offline"

wait_for 20 has_event node-b coordinator.lost
ok $? "the coordinator.lost event queued while away is delivered"
wait_for 20 has_event node-a agent.started 2
ok $? "node-a's restart, queued while the coordinator was away, is delivered"
shoalctl events --node node-a --limit 1000 --json >"$SCRATCH/events.json"
check "node-a's events arrive once each, in sequence order" \
	json_ok 'map(select(.source == "agent") | .seq) as $s | ($s | length) > 0 and $s == ([range(1; ($s | length) + 1)])' cat "$SCRATCH/events.json"
wait_for 20 json_ok '.outbox_depth == 0' shoalctl node show node-a --json
ok $? "node-a's outbox drains once the coordinator acknowledges"

# A config file with a wrong key names the file, line and key.
printf 'node_id: x1\nheartbeet: 5s\n' >"$SCRATCH/bad.yaml"
shoal-agent -c "$SCRATCH/bad.yaml" --state-dir "$SCRATCH/bad" 2>"$SCRATCH/err.txt"
[ $? -ne 0 ] && grep -q "bad.yaml:2: key 'heartbeet': unknown setting" "$SCRATCH/err.txt"
ok $? "an agent config with an unknown key is refused with file, line and key"

done_testing
