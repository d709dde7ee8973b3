#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Model services end to end, with real containers through Podman's Docker
# API service: one coordinator and three agents run the example model, move
# to a new revision, survive agent restarts (adopting, not restarting, the
# healthy container) and an agent that was down during an apply, restart a
# container killed from outside, fail clearly on a missing image and on a
# model that never turns healthy while the previous revision keeps serving,
# refuse broken specs, and remove everything on delete.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/podman.sh"
need jq curl shoal-coordinator shoal-agent shoalctl
start_podman

IMAGE=localhost/shoal-example-model:1
MODEL_SERVER="$SHOAL_BUILDDIR/examples/model-server" \
	"$SHOAL_SRCDIR/examples/build-image.sh" "$IMAGE" >"$SCRATCH/image.log" 2>&1
ok $? "the example model's image builds with podman import"

HB=200ms
P="t$$"
NODES="$P-a $P-b $P-c"
export SHOAL_CONTROL="ipc://$SCRATCH/control.sock"
trap 'remove_containers $NODES; cleanup' EXIT

PORT=$(free_port)
start coordinator shoal-coordinator -c /dev/null --enroll-token "$ENROLL_TOKEN" --metrics-listen off --state-dir "$SCRATCH/coord" \
	--listen "tcp://127.0.0.1:$PORT" --publish "tcp://127.0.0.1:$((PORT + 1))" \
	--control "$SHOAL_CONTROL"
wait_for 10 test -S "$SCRATCH/control.sock"
ok $? "coordinator starts"

start_agent() { # start_agent NODE
	start "$1" shoal-agent -c /dev/null $(agent_keys) --metrics-listen off --state-dir "$SCRATCH/$1" --node-id "$1" \
		--label role=model --coordinator "tcp://127.0.0.1:$PORT" \
		--heartbeat "$HB" --runtime-socket "$SHOAL_RUNTIME_SOCKET"
}
for n in $NODES; do start_agent "$n"; done
wait_for 20 json_ok '[.[] | select(.state == "online")] | length == 3' shoalctl nodes --json
ok $? "three agents online"

spec() { # spec FILE VERSION [IMAGE] [EXTRA-ARG] [HEALTH-PATH]: the example model's spec
	cat >"$1" <<EOF
service: iris
selector: {role: model}
image: ${3:-$IMAGE}
command: ["/model-server", "--port", "8080"${4:+, "$4"}]
env: {MODEL_VERSION: "$2"}
port: 8080
resources: {memory: 64Mi, cpus: 0.5}
health:
  path: ${5:-/health}
  interval: 300ms
  timeout: 1s
  start_period: 8s
  unhealthy_threshold: 3
update:
  max_parallel: "100%"
  min_healthy_time: 0s
  healthy_deadline: 30s
EOF
}
status() { shoalctl status iris --json; }
# all_at REV STATE: every node of iris reports STATE at revision REV
all_at() {
	json_ok "(.nodes | length) == 3 and all(.nodes[]; .revision == $1 and .state == \"$2\")" status
}
predict() { # predict ENDPOINT: prints the JSON answer
	curl -sf -m 5 -H 'Content-Type: application/json' \
		-d '{"features": [6.7, 3.0, 5.2, 2.3]}' "http://$1/v1/predict"
}
container_of() { # container_of NODE
	status | jq -r --arg n "$1" '.nodes[] | select(.node == $n) | .container'
}
endpoint_of() { # endpoint_of NODE
	status | jq -r --arg n "$1" '.nodes[] | select(.node == $n) | .endpoint'
}
answers() { # answers NODE VERSION: the node's model predicts, as VERSION
	json_ok ".class == \"virginica\" and .version == \"$2\"" predict "$(endpoint_of "$1")"
}

# -- apply: all three run it and answer predictions --------------------------
spec "$SCRATCH/v1.yaml" v1
shoalctl apply -f "$SCRATCH/v1.yaml" --message "first" >"$SCRATCH/apply.out" 2>&1
ok $? "apply a spec"
grep -q "revision 1 applied; 3 nodes selected" "$SCRATCH/apply.out"
ok $? "apply says revision 1 and three nodes"
wait_for 90 all_at 1 healthy
ok $? "all three nodes report revision 1 healthy"
status >"$SCRATCH/status1.json"
check "status --json has the contract's shape" json_ok \
	'.service == "iris" and .revision == 1 and all(.nodes[]; (.node | type) == "string" and (.container | length) > 0 and (.endpoint | test("^127\\.0\\.0\\.1:[0-9]+$")))' \
	cat "$SCRATCH/status1.json"
good=0
for n in $NODES; do answers "$n" v1 && good=$((good + 1)); done
[ "$good" -eq 3 ]
ok $? "every node's model answers /v1/predict through its published port"
shoalctl apply -f "$SCRATCH/v1.yaml" >"$SCRATCH/apply.out" 2>&1 &&
	grep -q "unchanged, still revision 1" "$SCRATCH/apply.out"
ok $? "applying the same spec again changes nothing"
check "services lists iris with three healthy nodes" \
	json_ok '.[0].service == "iris" and .[0].nodes == 3 and .[0].healthy == 3' shoalctl services --json

# -- an agent restarted while its model runs does not restart it -------------
A="$P-a"
before=$(container_of "$A")
started=$(podman inspect -f '{{.State.StartedAt}}' "$before")
kill -TERM "$(pid_of "$A")"
wait "$(pid_of "$A")"
start_agent "$A"
wait_for 30 sh -c "grep -q 'adopted container' '$SCRATCH/$A.log'"
ok $? "the restarted agent adopts its container"
wait_for 30 all_at 1 healthy
[ -n "$before" ] && [ "$(container_of "$A")" = "$before" ] &&
	[ "$(podman inspect -f '{{.State.StartedAt}}' "$before")" = "$started" ]
ok $? "and does not restart the healthy container (same id, same start time)"

# -- an agent down while a spec is applied converges when it returns ---------
B="$P-b"
kill -TERM "$(pid_of "$B")"
wait "$(pid_of "$B")"
spec "$SCRATCH/v2.yaml" v2
shoalctl apply -f "$SCRATCH/v2.yaml" --message "v2" >/dev/null
ok $? "apply revision 2 while $B's agent is down"
start_agent "$B"
wait_for 90 all_at 2 healthy
ok $? "every node moves to revision 2, the one that was down included"
good=0
for n in $NODES; do answers "$n" v2 && good=$((good + 1)); done
[ "$good" -eq 3 ]
ok $? "every node answers with revision 2's model"
state_of_rev() { # state_of_rev NODE REV: "exited (0) 2 seconds ago", ...
	podman ps -a --filter "label=shoal.node=$1" --filter "label=shoal.revision=$2" \
		--format '{{.State}}' | tr 'A-Z' 'a-z'
}
state_of_rev "$A" 1 | grep -q '^exited'
ok $? "revision 1's container is kept, stopped, for rollback"
check "history lists revisions 2 and 1, newest first, with messages" \
	json_ok 'map(.revision) == [2, 1] and .[0].message == "v2" and .[1].message == "first"' \
	shoalctl history iris --json

# -- a container killed from outside is restarted and reported ----------------
C="$P-c"
victim=$(container_of "$C")
podman kill "$victim" >/dev/null 2>&1
ok $? "kill $C's model container from outside"
wait_for 60 json_ok "any(.[]; .kind == \"container.restarted\" and .service == \"iris\")" \
	shoalctl events --node "$C" --json
ok $? "the restart reaches shoalctl events through the outbox"
check "the died event names the service" \
	json_ok 'any(.[]; .kind == "container.died" and .service == "iris")' shoalctl events --node "$C" --json
wait_for 60 all_at 2 healthy
ok $? "and the node is healthy again"
check "status counts the restart" \
	json_ok "any(.nodes[]; .node == \"$C\" and .restarts >= 1)" status

# -- failures stop the rollout with a clear reason; revision 2 keeps serving --
rollout() { shoalctl rollout status iris --json; }
# reverted_with PATTERN: the newest rollout ended reverted, and a failed
# node's reason matches PATTERN
reverted_with() {
	json_ok ".state == \"reverted\" and any(.nodes[]; .state == \"failed\" and (.reason | test(\"$1\")))" rollout
}
spec "$SCRATCH/v3.yaml" v3 localhost/shoal-no-such-image:1
shoalctl apply -f "$SCRATCH/v3.yaml" >/dev/null
ok $? "apply a revision whose image does not exist"
wait_for 60 reverted_with "shoal-no-such-image"
ok $? "the rollout of revision 3 stops and reverts; the reason names the image"
wait_for 30 all_at 2 healthy
ok $? "every node is on revision 2 again"
check "revision 2 still serves" \
	json_ok 'all(.nodes[]; .serving_revision == 2)' status
answers "$A" v2
ok $? "and answers predictions"

serving_a=$(container_of "$A")
# Revision 4 never turns healthy, and probes another path: revision 2,
# serving meanwhile, must still be probed on its own path.
spec "$SCRATCH/v4.yaml" v4 "$IMAGE" --fail-health /ready
shoalctl apply -f "$SCRATCH/v4.yaml" >/dev/null
wait_for 90 reverted_with "health check"
ok $? "a model whose health check never passes fails the rollout, with the health check as the reason"
answers "$B" v2
ok $? "revision 2 keeps serving meanwhile"
sleep 3
[ -n "$serving_a" ] && podman inspect -f '{{.State.Running}}' "$serving_a" | grep -q true &&
	json_ok "any(.nodes[]; .node == \"$A\" and .restarts == 0 and .serving_revision == 2)" status
ok $? "and is probed with its own health check: never restarted"
check "the failed candidates' containers are removed (revision 2's are there)" \
	sh -c "[ -n \"\$(podman ps -aq --filter label=shoal.node=$A --filter label=shoal.revision=2)\" ]" 
check "  and no container of revision 4 is left" \
	sh -c "[ -z \"\$(podman ps -aq --filter label=shoal.node=$A --filter label=shoal.revision=4)\" ]"

# A model that exits at once: the reason quotes its last words.
sed -e 's|^command:.*|command: ["/bin/sh", "-c", "echo no weights at /models/x.bin; exit 3"]|' \
	-e 's|MODEL_VERSION: "v1"|MODEL_VERSION: "v5"|' "$SCRATCH/v1.yaml" >"$SCRATCH/v5.yaml"
shoalctl apply -f "$SCRATCH/v5.yaml" >/dev/null
wait_for 60 reverted_with "exit code 3.: no weights at /models/x.bin"
ok $? "a model that exits at once fails the rollout; the reason has its exit code and last log line"

# -- broken specs are refused with file, line and field; nothing stored ------
refused() { # refused NAME PATTERN: the spec in $SCRATCH/bad.yaml is refused
	shoalctl apply -f "$SCRATCH/bad.yaml" >/dev/null 2>"$SCRATCH/err.txt"
	[ $? -ne 0 ] && grep -q "$2" "$SCRATCH/err.txt"
	ok $? "$1: $(head -c 150 "$SCRATCH/err.txt")"
}
printf 'service: iris\nimage: [unclosed\n' >"$SCRATCH/bad.yaml"
refused "bad YAML" "bad.yaml:[23]"
printf 'service: iris\nimage: %s\nreplicas: 3\n' "$IMAGE" >"$SCRATCH/bad.yaml"
refused "an unknown field" "bad.yaml:3: field 'replicas'"
printf 'service: iris\nimage: %s\nport: eighty\n' "$IMAGE" >"$SCRATCH/bad.yaml"
refused "a wrong type" "bad.yaml:3: field 'port'"
printf 'service: iris\nport: 8080\n' >"$SCRATCH/bad.yaml"
refused "a missing image" "bad.yaml:1: field 'image'"
check "nothing was stored: iris has five revisions, and runs revision 2" \
	json_ok 'length == 5' shoalctl history iris --json
check "  (services says revision 2)" json_ok '.[0].revision == 2' shoalctl services --json

# -- an agent restarted while a new revision comes up ------------------------
# Revision 6 takes a few seconds to load; $A's agent restarts meanwhile. It
# must adopt the loading container as the candidate and keep revision 2
# serving, not remove one or run both as if serving.
sed -e 's|^command:.*|command: ["/model-server", "--port", "8080", "--load-delay", "8s"]|' \
	-e 's|start_period: 8s|start_period: 20s|' \
	-e 's|MODEL_VERSION: "v2"|MODEL_VERSION: "v6"|' "$SCRATCH/v2.yaml" >"$SCRATCH/v6.yaml"
shoalctl apply -f "$SCRATCH/v6.yaml" >/dev/null
wait_for 30 sh -c "podman ps --filter label=shoal.node=$A --filter label=shoal.revision=6 --format '{{.ID}}' | grep -q ."
ok $? "revision 6's container is up (loading) on $A"
kill -TERM "$(pid_of "$A")"
wait "$(pid_of "$A")"
start_agent "$A"
wait_for 30 grep -q "as the candidate" "$SCRATCH/$A.log"
ok $? "the restarted agent adopts the loading container as the candidate"
wait_for 10 answers "$A" v2
ok $? "revision 2 keeps serving while it loads"
wait_for 90 all_at 6 healthy
ok $? "every node reaches revision 6"
answers "$A" v6
ok $? "and answers with it"
[ "$(podman ps -aq --filter "label=shoal.node=$A" --filter label=shoal.revision=6 | wc -l)" -eq 1 ] &&
	state_of_rev "$A" 2 | grep -q '^exited'
ok $? "one container of revision 6, and revision 2's kept, stopped"

# -- delete: the containers are gone ------------------------------------------
[ -n "$(podman ps -aq --filter "label=shoal.node=$A")" ]
ok $? "before delete, $A has the service's containers"
shoalctl delete iris >/dev/null
ok $? "delete the service"
gone() {
	for n in $NODES; do
		[ -z "$(podman ps -aq --filter "label=shoal.node=$n")" ] || return 1
	done
}
wait_for 60 gone
gone_rc=$?
ok $gone_rc "every container of the service is removed from every node"
[ $gone_rc -eq 0 ] ||
	podman ps -a --filter "label=shoal.managed=true" \
		--format '{{.Names}} {{.State}} {{.Labels}}' | sed 's/^/# left: /'

check "services is empty" json_ok 'length == 0' shoalctl services --json

done_testing
