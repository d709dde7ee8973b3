#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Snapshots and restore end to end, with a coordinator, three agents and
# real containers through Podman's Docker API service: a node snapshotted,
# moved to another revision and restored (it runs and answers on the
# snapshot's revision again, and stays there until the service rolls out
# again); a snapshot taken automatically before a rollout moves each node,
# recorded in the rollout; a flipped byte in a snapshot refused with the
# running state untouched; a snapshot queued for an offline node taken when
# it returns; an agent killed with SIGKILL again and again while it writes
# state (a loop of applies and snapshots) restarting every time with a
# consistent LMDB and valid snapshots; and the coordinator restored from a
# backup taken mid-way, serving the registry, services and history as of
# the backup, with the agents reconciling to it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/podman.sh"
need jq curl mdb_stat sha256sum shoal-coordinator shoal-agent shoalctl
start_podman

IMAGE=localhost/shoal-example-model:1
MODEL_SERVER="$SHOAL_BUILDDIR/examples/model-server" \
	"$SHOAL_SRCDIR/examples/build-image.sh" "$IMAGE" >"$SCRATCH/image.log" 2>&1
ok $? "the example model's image builds with podman import"

HB=200ms
P="s$$"
A="$P-a" B="$P-b" C="$P-c"
NODES="$A $B $C"
export SHOAL_CONTROL="ipc://$SCRATCH/control.sock"
trap 'remove_containers $NODES; cleanup' EXIT

PORT=$(free_port)
start_coordinator() { # start_coordinator [ARGS...]
	start coordinator shoal-coordinator -c /dev/null --enroll-token "$ENROLL_TOKEN" --metrics-listen off \
		--state-dir "$SCRATCH/coord" --listen "tcp://127.0.0.1:$PORT" \
		--publish "tcp://127.0.0.1:$((PORT + 1))" --control "$SHOAL_CONTROL" "$@"
	wait_for 10 test -S "$SCRATCH/control.sock"
}
start_agent() { # start_agent NODE ROLE
	start "$1" shoal-agent -c /dev/null $(agent_keys) --metrics-listen off \
		--state-dir "$SCRATCH/$1" --node-id "$1" --label "role=$2" \
		--coordinator "tcp://127.0.0.1:$PORT" --heartbeat "$HB" \
		--runtime-socket "$SHOAL_RUNTIME_SOCKET"
}
start_coordinator
ok $? "coordinator starts"
start_agent "$A" model
start_agent "$B" model
start_agent "$C" crash
wait_for 20 json_ok '[.[] | select(.state == "online")] | length == 3' shoalctl nodes --json
ok $? "three agents online"

spec() { # spec FILE SERVICE ROLE VERSION
	cat >"$1" <<EOF
service: $2
selector: {role: $3}
image: $IMAGE
command: ["/model-server", "--port", "8080"]
env: {MODEL_VERSION: "$4"}
port: 8080
resources: {memory: 64Mi, cpus: 0.5}
health:
  path: /health
  interval: 300ms
  timeout: 3s
  start_period: 10s
update:
  min_healthy_time: 500ms
  healthy_deadline: 30s
  progress_deadline: 60s
EOF
}
status() { shoalctl status "${1:-iris}" --json; }
node_at() { # node_at NODE REV [SERVICE]: NODE healthy on REV
	json_ok "any(.nodes[]; .node == \"$1\" and .revision == $2 and .state == \"healthy\")" status "${3:-}"
}
all_at() { # all_at REV: both model nodes healthy on REV
	json_ok "(.nodes | length) == 2 and all(.nodes[]; .revision == $1 and .state == \"healthy\")" status
}
endpoint_of() { # endpoint_of NODE [SERVICE]
	status "${2:-}" | jq -r --arg n "$1" '.nodes[] | select(.node == $n) | .endpoint'
}
container_of() { status | jq -r --arg n "$1" '.nodes[] | select(.node == $n) | .container'; }
predicts() { # predicts NODE VERSION: the node's model answers as VERSION
	local ep
	ep=$(endpoint_of "$1") || return 1
	json_ok ".class == \"setosa\" and .version == \"$2\"" \
		curl -sf -d '{"features":[5.0,3.5,1.4,0.2]}' "http://$ep/v1/predict"
}
snaps() { shoalctl snapshot list --json; }
snap_state() { # snap_state NODE ID
	snaps | jq -r --arg n "$1" --arg i "$2" '.[] | select(.node == $n and .id == $i) | .state'
}
snap_is() { test "$(snap_state "$1" "$2")" = "$3"; } # snap_is NODE ID STATE
flip_byte() { # flip_byte FILE OFFSET: one byte of FILE changed in place
	local b
	b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	printf "$(printf '\\%03o' $(((b + 1) % 256)))" |
		dd of="$1" bs=1 seek="$2" count=1 conv=notrunc 2>/dev/null
}

# -- revision 1 everywhere, then a snapshot of one node ---------------------
spec "$SCRATCH/v1.yaml" iris model v1
shoalctl apply -f "$SCRATCH/v1.yaml" >/dev/null
wait_for 90 all_at 1
ok $? "revision 1 runs healthy on both model nodes"
check "node A predicts as v1" predicts "$A" v1

shoalctl snapshot create --node "$A" --message "before v2" --wait=60s \
	>"$SCRATCH/create.out" 2>&1
ok $? "snapshot create --node A --wait: taken"
SNAP1=$(snaps | jq -r --arg n "$A" '[.[] | select(.node == $n)][0].id')
check "snapshot list --json: a valid array of the contract's shape" \
	json_ok 'type == "array" and all(.[]; has("id") and has("node") and has("created") and has("message") and has("services") and has("bytes") and has("state"))' snaps
check "... A's snapshot is ready, records iris 1, its message, size and checksum" \
	json_ok ".[] | select(.id == \"$SNAP1\") | .state == \"ready\" and .services.iris == 1 and .message == \"before v2\" and .bytes > 0 and (.sha256 | test(\"^[0-9a-f]{64}$\")) and (.created | test(\"Z$\"))" snaps
SDIR="$SCRATCH/$A/snapshots/$SNAP1"
check "the snapshot holds the store copy, its manifest and catalogue entry" \
	test -s "$SDIR/state.mdb" -a -s "$SDIR/manifest.json" -a -s "$SDIR/snapshot.pb"
check "... the store copy is a sound LMDB environment (mdb_stat)" \
	mdb_stat -n -a "$SDIR/state.mdb"
check "... the manifest names iris revision 1" \
	json_ok '.services.iris.revision == 1' cat "$SDIR/manifest.json"
shoalctl snapshot list >"$SCRATCH/list.txt"
check "snapshot list prints a table naming the node and snapshot" \
	grep -q "$A .*$SNAP1 .*ready" "$SCRATCH/list.txt"

# -- revision 2: an automatic snapshot before the rollout moves each node --
spec "$SCRATCH/v2.yaml" iris model v2
shoalctl apply -f "$SCRATCH/v2.yaml" >/dev/null
wait_for 120 all_at 2
ok $? "revision 2 rolls out to both nodes"
check "node A predicts as v2" predicts "$A" v2
check "the rollout records a snapshot for every node it moved" \
	json_ok '(.nodes | length) == 2 and all(.nodes[]; .snapshot | type == "string")' \
	shoalctl rollout status iris --json
AUTO_B=$(shoalctl rollout status iris --json | jq -r --arg n "$B" '.nodes[] | select(.node == $n) | .snapshot')
wait_for 20 snap_is "$B" "$AUTO_B" ready
ok $? "B's automatic snapshot was taken"
check "... it recorded revision 1, the rollout and why" \
	json_ok ".[] | select(.id == \"$AUTO_B\") | .services.iris == 1 and .rollout.service == \"iris\" and (.message | test(\"before rollout\"))" snaps
check "the events tell it" \
	json_ok 'any(.[]; .kind == "rollout.snapshot") and any(.[]; .kind == "snapshot.taken")' \
	shoalctl events --json --limit 500

# A backup mid-way: iris at revision 2.
shoalctl backup create "$SCRATCH/backup.mdb" >"$SCRATCH/backup.out" 2>&1
ok $? "backup create writes a backup while the coordinator runs"
check "... with its checksum file, which sha256sum accepts" \
	sh -c "cd '$SCRATCH' && sha256sum -c --status backup.mdb.sha256"
check "... a sound LMDB environment (mdb_stat)" mdb_stat -n -a "$SCRATCH/backup.mdb"
shoalctl backup create "$SCRATCH/coord/over.mdb" >"$SCRATCH/inside.out" 2>&1
ok $((! $?)) "a backup into the coordinator's own state dir is refused"
check "... saying so" grep -q "state dir" "$SCRATCH/inside.out"

# -- restore A to the snapshot taken on revision 1 --------------------------
wait_for 60 json_ok '.state == "succeeded"' shoalctl rollout status iris --json
B_CTR=$(container_of "$B")
shoalctl snapshot restore "$A" "$SNAP1" --wait=60s >"$SCRATCH/restore.out" 2>&1
r=$?
ok $r "snapshot restore A: done"
[ $r -eq 0 ] || sed 's/^/# /' "$SCRATCH/restore.out"
check "... saying what it restored" grep -q "restored: iris 1" "$SCRATCH/restore.out"
wait_for 60 node_at "$A" 1
ok $? "A runs revision 1 again, healthy"
check "... and answers predictions as v1" predicts "$A" v1
check "B was not touched: revision 2, same container" \
	test "$(container_of "$B")" = "$B_CTR"
sleep 2
check "A stays on the snapshot's revision (the coordinator holds it there)" node_at "$A" 1
check "the restore is in the events" \
	json_ok 'any(.[]; .kind == "snapshot.restored")' shoalctl events --json --limit 500

# -- a flipped byte is refused, the running state untouched ----------------
flip_byte "$SCRATCH/$B/snapshots/$AUTO_B/state.mdb" 5000
shoalctl snapshot restore "$B" "$AUTO_B" --wait=60s >"$SCRATCH/corrupt.out" 2>&1
ok $((! $?)) "restoring a snapshot with a flipped byte fails"
check "... saying the checksum does not match" grep -qi "checksum" "$SCRATCH/corrupt.out"
check "... B still runs revision 2 in the same container" \
	sh -c "test '$(container_of "$B")' = '$B_CTR'"
check "... healthy" node_at "$B" 2
wait_for 10 snap_is "$B" "$AUTO_B" corrupt
ok $? "... and the snapshot is listed as corrupt"
shoalctl snapshot restore "$B" "$AUTO_B" >"$SCRATCH/again.out" 2>&1
ok $((! $?)) "the coordinator refuses a corrupt snapshot up front"
check "... naming it" grep -q "$AUTO_B.*corrupt" "$SCRATCH/again.out"
shoalctl snapshot restore "$B" no-such-snapshot >"$SCRATCH/none.out" 2>&1
ok $((! $?)) "an unknown snapshot is refused"
check "... naming the node and the snapshot" grep -q "$B.*no-such-snapshot" "$SCRATCH/none.out"
shoalctl snapshot restore "$B" ../etc >/dev/null 2>&1
ok $(($? == 2 ? 0 : 1)) "a snapshot id that is a path is a usage error"

# -- the next apply ends the hold -----------------------------------------
spec "$SCRATCH/v3.yaml" iris model v3
shoalctl apply -f "$SCRATCH/v3.yaml" >/dev/null
wait_for 120 all_at 3
ok $? "revision 3 moves both nodes, the restored one too"

# -- an offline node gets its snapshot when it returns ---------------------
kill -TERM "$(pid_of "$B")"
wait_for 20 json_ok ".[] | select(.id == \"$B\") | .state == \"offline\"" shoalctl nodes --json
ok $? "B goes offline"
shoalctl snapshot create --node "$B" --message "while away" >/dev/null
ok $? "a snapshot is queued for the offline node"
OFF=$(snaps | jq -r --arg n "$B" '.[] | select(.node == $n and .message == "while away") | .id')
check "... listed as pending" snap_is "$B" "$OFF" pending
start_agent "$B" model
wait_for 30 snap_is "$B" "$OFF" ready
r=$?
ok $r "... and taken when B returns"
[ $r -eq 0 ] || { snaps | sed 's/^/# /'; tail -5 "$SCRATCH/$B.log" | sed 's/^/# /'; }

# -- SIGKILL while writing state ---------------------------------------------
spec "$SCRATCH/c1.yaml" crash crash c1
shoalctl apply -f "$SCRATCH/c1.yaml" >/dev/null
wait_for 90 node_at "$C" 1 crash
ok $? "node C runs the crash service"
kills=0 sound=0 valid=0
for i in 2 3 4 5 6 7 8 9; do
	spec "$SCRATCH/c.yaml" crash crash "c$i"
	shoalctl apply -f "$SCRATCH/c.yaml" >/dev/null
	shoalctl snapshot create --node "$C" --message "loop $i" >/dev/null
	sleep "0.$((RANDOM % 9 + 1))"
	kill -KILL "$(pid_of "$C")"
	wait "$(pid_of "$C")" 2>/dev/null
	kills=$((kills + 1))
	if mdb_stat -a "$SCRATCH/$C" >/dev/null 2>&1; then sound=$((sound + 1)); fi
	start_agent "$C" crash
	# Back up and its catalogue checked (snapshots_open verifies each).
	wait_for 20 grep -q "snapshots (0 corrupt)" "$SCRATCH/$C.log" &&
		latest=$(ls -t "$SCRATCH/$C/snapshots" | grep -v '^\.' | head -1) &&
		{ [ -z "$latest" ] || mdb_stat -n -a "$SCRATCH/$C/snapshots/$latest/state.mdb" >/dev/null 2>&1; } &&
		valid=$((valid + 1))
	# The next start's lines only, for the next round.
	cat "$SCRATCH/$C.log" >>"$SCRATCH/$C-rounds.log" && : >"$SCRATCH/$C.log"
done
ok $((sound == kills ? 0 : 1)) "after each of $kills SIGKILLs the agent's LMDB is sound (mdb_stat): $sound"
ok $((valid == kills ? 0 : 1)) "... and it restarts with no corrupt snapshot and a sound latest one: $valid"
check "no half-written snapshot is left" \
	sh -c "! ls -a '$SCRATCH/$C/snapshots' | grep -q '^\.tmp-\|^\.del-'"
wait_for 120 node_at "$C" 9 crash
ok $? "C ends up running the last revision, healthy"
wait_for 20 json_ok "[.[] | select(.node == \"$C\" and .state == \"ready\")] | length > 0 and ([.[] | select(.node == \"$C\" and .state == \"corrupt\")] | length == 0)" snaps
ok $? "C's snapshots are all ready"

# -- the coordinator restored from the backup -------------------------------
check "restoring while the coordinator runs is refused" \
	sh -c "! shoal-coordinator -c /dev/null --state-dir '$SCRATCH/coord' --restore '$SCRATCH/backup.mdb' \
		--listen tcp://127.0.0.1:1 --publish tcp://127.0.0.1:2 --control ipc://$SCRATCH/x.sock --metrics-listen off 2>'$SCRATCH/busy.err'"
check "... saying a coordinator runs on the state dir" grep -q "running" "$SCRATCH/busy.err"
kill -TERM "$(pid_of coordinator)"
wait "$(pid_of coordinator)"
cp "$SCRATCH/backup.mdb" "$SCRATCH/bad.mdb"
sed "s/backup.mdb/bad.mdb/" "$SCRATCH/backup.mdb.sha256" >"$SCRATCH/bad.mdb.sha256"
flip_byte "$SCRATCH/bad.mdb" 9000
before=$(sha256sum "$SCRATCH/coord/data.mdb")
shoal-coordinator -c /dev/null --state-dir "$SCRATCH/coord" --restore "$SCRATCH/bad.mdb" \
	--metrics-listen off >"$SCRATCH/bad.out" 2>&1
ok $((! $?)) "a damaged backup is refused"
check "... naming the file and the checksum" grep -q "bad.mdb: checksum mismatch" "$SCRATCH/bad.out"
check "... the state dir untouched" test "$(sha256sum "$SCRATCH/coord/data.mdb")" = "$before"
cp "$SCRATCH/$A/snapshots/$SNAP1/state.mdb" "$SCRATCH/agent.mdb"
(cd "$SCRATCH" && sha256sum agent.mdb >agent.mdb.sha256)
shoal-coordinator -c /dev/null --state-dir "$SCRATCH/coord" --restore "$SCRATCH/agent.mdb" \
	--metrics-listen off >"$SCRATCH/agent-restore.out" 2>&1
ok $((! $?)) "an agent's store offered as a backup is refused"
check "... as not a coordinator store, the state dir untouched" \
	sh -c "grep -q 'not a coordinator store' '$SCRATCH/agent-restore.out' &&
		test \"\$(sha256sum '$SCRATCH/coord/data.mdb')\" = '$before'"
# As on a new host: no key files; the key pair comes back with the backup,
# so the agents, which pinned the old key, still trust the coordinator.
key_before=$(grep public-key "$SCRATCH/coord/coordinator.pub")
rm -f "$SCRATCH/coord/coordinator.key" "$SCRATCH/coord/coordinator.pub"
start_coordinator --restore "$SCRATCH/backup.mdb"
ok $? "the coordinator starts from the backup"
check "... with the CurveZMQ key of the backup, its files written again" \
	test "$(grep public-key "$SCRATCH/coord/coordinator.pub")" = "$key_before"
check "... keeping the store it replaced" sh -c "ls '$SCRATCH/coord' | grep -q before-restore"
check "the registry is as of the backup: all three nodes" \
	json_ok 'length == 3' shoalctl nodes --json
check "the services are as of the backup: iris at revision 2, crash unknown" \
	json_ok '(map(.service) | sort) == ["iris"] and .[0].revision == 2' shoalctl services --json
check "the history is as of the backup: revisions 2 and 1" \
	json_ok '[.[].revision] == [2, 1]' shoalctl history iris --json
wait_for 120 all_at 2
ok $? "the agents reconcile to it: both model nodes back on revision 2"
wait_for 30 predicts "$A" v2
ok $? "A predicts as v2 again"
wait_for 60 sh -c "! podman ps -q --filter label=shoal.node=$C --filter label=shoal.service=crash | grep -q ."
ok $? "C's crash service, unknown to the backup, is removed"

done_testing
