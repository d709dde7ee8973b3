#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Model artifacts end to end: a coordinator and two agents run the example
# model with its weights downloaded from an HTTP server this test starts
# (tests/integration/httpd.py, which logs every request and cuts, stalls or
# slows transfers on demand). A download cut off halfway resumes with a
# range request; a corrupted artifact, a stalled server and an artifact
# larger than the cache budget each fail the rollout before any node
# switches, with a clear reason, while the old revision keeps serving; two
# services naming one sha256 download it once per node; a rollout prepares
# every node (progress in `shoalctl rollout status`) before the first
# switches; a rollback downloads nothing.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/podman.sh"
need jq curl python3 sha256sum shoal-coordinator shoal-agent shoalctl
start_podman

IMAGE=localhost/shoal-example-model:1
MODEL_SERVER="$SHOAL_BUILDDIR/examples/model-server" \
	"$SHOAL_SRCDIR/examples/build-image.sh" "$IMAGE" >"$SCRATCH/image.log" 2>&1
ok $? "the example model's image builds with podman import"

HB=200ms
P="t$$"
A="$P-a"
B="$P-b"
NODES="$A $B"
export SHOAL_CONTROL="ipc://$SCRATCH/control.sock"
trap 'remove_containers $NODES; cleanup' EXIT

# -- the artifacts and their server -------------------------------------------
WWW="$SCRATCH/www"
mkdir -p "$WWW"
# weights NAME: the example weights renamed NAME, padded with comment lines
# to about 2 MiB, so that transfers take a while and a cut lands mid-file.
weights() {
	sed "s/^name iris\$/name $1/" "$SHOAL_SRCDIR/examples/iris.txt" >"$WWW/$1.txt"
	awk -v n="$1" 'BEGIN { for (i = 0; i < 32768; i++)
		printf "# padding of %s, line %06d ...................................\n", n, i }' \
		>>"$WWW/$1.txt"
}
for w in iris-a iris-b iris-c iris-d; do weights "$w"; done
sha() { sha256sum "$WWW/$1.txt" | cut -d' ' -f1; }
# bad.txt: iris-b with one byte changed, served under iris-b's digest
sed '1s/^#/%/' "$WWW/iris-b.txt" >"$WWW/bad.txt"
check "the corrupted copy differs from what its digest names" \
	test "$(sha256sum "$WWW/bad.txt" | cut -d' ' -f1)" != "$(sha iris-b)"

HTTP_LOG="$SCRATCH/http.log"
: >"$HTTP_LOG"
start httpd python3 "$SHOAL_SRCDIR/tests/integration/httpd.py" "$WWW" \
	"$SCRATCH/http.port" "$HTTP_LOG"
wait_for 10 test -s "$SCRATCH/http.port"
ok $? "the test's HTTP server starts"
WEB="http://127.0.0.1:$(cat "$SCRATCH/http.port")"
check "it serves a range" \
	test "$(curl -s -r 10- "$WEB/iris-a.txt" | wc -c)" = $(($(wc -c <"$WWW/iris-a.txt") - 10))
requests() { grep -c " $1 " "$HTTP_LOG"; } # requests PATH: how many so far

# -- a coordinator and two agents ---------------------------------------------
PORT=$(free_port)
start coordinator shoal-coordinator -c /dev/null --enroll-token "$ENROLL_TOKEN" --metrics-listen off --state-dir "$SCRATCH/coord" \
	--listen "tcp://127.0.0.1:$PORT" --publish "tcp://127.0.0.1:$((PORT + 1))" \
	--control "$SHOAL_CONTROL"
wait_for 10 test -S "$SCRATCH/control.sock"
ok $? "coordinator starts"
start_agent() { # start_agent NODE BUDGET
	start "$1" shoal-agent -c /dev/null $(agent_keys) --metrics-listen off --state-dir "$SCRATCH/$1" --node-id "$1" \
		--label role=model --coordinator "tcp://127.0.0.1:$PORT" \
		--heartbeat "$HB" --runtime-socket "$SHOAL_RUNTIME_SOCKET" \
		--artifact-stall-timeout 2s --artifact-attempts 3 \
		--artifact-cache-budget "$2"
}
for n in $NODES; do start_agent "$n" 16Mi; done
wait_for 20 json_ok '[.[] | select(.state == "online")] | length == 2' shoalctl nodes --json
ok $? "two agents online"

# spec FILE NAME URL SHA256 [SIZE]: the example model reading its weights
# from the artifact mounted at /models/w.txt
spec() {
	cat >"$1" <<EOF
service: $2
selector: {role: model}
image: $IMAGE
command: ["/model-server", "--port", "8080", "--weights", "/models/w.txt"]
port: 8080
resources: {memory: 64Mi, cpus: 0.5}
artifacts:
  - url: $3
    sha256: $4
    path: /models/w.txt${5:+
    size: $5}
health:
  path: /health
  interval: 300ms
  timeout: 3s
  start_period: 10s
  unhealthy_threshold: 3
update:
  max_parallel: "100%"
  min_healthy_time: 0s
  healthy_deadline: 30s
EOF
}
status() { shoalctl status "${1:-iris}" --json; }
all_at() { # all_at REV STATE [SERVICE]
	json_ok "(.nodes | length) == 2 and all(.nodes[]; .revision == $1 and .state == \"$2\")" status "$3"
}
endpoint_of() { # endpoint_of NODE [SERVICE]
	status "$2" | jq -r --arg n "$1" '.nodes[] | select(.node == $n) | .endpoint'
}
container_of() { # container_of NODE
	status | jq -r --arg n "$1" '.nodes[] | select(.node == $n) | .container'
}
# serves NODE MODEL [SERVICE]: the node's container loaded weights MODEL
# and classifies with them
serves() {
	local ep
	ep=$(endpoint_of "$1" "$3")
	json_ok ".model == \"$2\"" curl -sf -m 5 "http://$ep/health" &&
		json_ok '.class == "virginica"' curl -sf -m 5 \
			-d '{"features": [6.7, 3.0, 5.2, 2.3]}' "http://$ep/v1/predict"
}
rollout() { shoalctl rollout status iris --json; }
events() { shoalctl events --limit 1000 --json; }
cached() { test -f "$SCRATCH/$1/artifacts/sha256/$2"; } # cached NODE SHA

# -- a model served from a downloaded artifact, resumed after a cut ------------
spec "$SCRATCH/v1.yaml" iris "$WEB/cut/iris-a.txt" "$(sha iris-a)"
shoalctl apply -f "$SCRATCH/v1.yaml" --message "weights a" >/dev/null
ok $? "apply revision 1: weights from $WEB/cut/iris-a.txt"
wait_for 90 all_at 1 healthy
ok $? "both nodes healthy at revision 1"
check "$A's model loaded the downloaded weights and answers predictions" serves "$A" iris-a
check "so does $B's" serves "$B" iris-a
check "the server cut one transfer off halfway" grep -q '^GET /cut/iris-a.txt range=- status=200 .* fault=cut' "$HTTP_LOG"
check "... and the agent asked for the rest with a range request" \
	grep -Eq '^GET /cut/iris-a.txt range=bytes=[1-9][0-9]*- status=206' "$HTTP_LOG"
check "the resume is an event" \
	json_ok 'any(.[]; .kind == "artifact.resumed" and (.message | test("resuming at byte [1-9]")))' events
check "the artifact verified and entered the cache" \
	json_ok 'any(.[]; .kind == "artifact.verified")' events
check "... the resumed one at the first try (no failure, no restart)" \
	json_ok 'all(.[]; .kind != "artifact.failed" and .kind != "service.failed")' events
for n in $NODES; do
	f="$SCRATCH/$n/artifacts/sha256/$(sha iris-a)"
	check "$n caches it by content at artifacts/sha256/<sha256>" \
		test "$(sha256sum <"$f" | cut -d' ' -f1)" = "$(sha iris-a)"
	check "... read-only" test "$(stat -c %a "$f")" = 444
	check "... and no partial file is left" test -z "$(ls "$SCRATCH/$n/artifacts/partial")"
done
A1=$(container_of "$A")

# -- two services naming one sha256 download it once per node -----------------
spec "$SCRATCH/t1.yaml" twin-one "$WEB/iris-c.txt" "$(sha iris-c)"
spec "$SCRATCH/t2.yaml" twin-two "$WEB/iris-c.txt" "$(sha iris-c)"
shoalctl apply -f "$SCRATCH/t1.yaml" >/dev/null &&
	shoalctl apply -f "$SCRATCH/t2.yaml" >/dev/null
ok $? "apply two services naming the same artifact"
# shown SERVICE: after a failed check, what the service and its events say
shown() {
	shoalctl status "$1" | sed 's/^/# /'
	shoalctl events --service "$1" --limit 30 | sed 's/^/# /'
}
# containers_shown: the nodes' containers, their mounts and last log lines
containers_shown() {
	local id
	for id in $(podman ps -aq --filter "label=shoal.node=$A" --filter "label=shoal.node=$B"); do
		podman inspect --format '# {{.Name}} {{.State.Status}} {{range .Mounts}}{{.Source}}->{{.Destination}} {{end}}' "$id"
		podman logs --tail 5 "$id" 2>&1 | sed 's/^/#   /'
	done
}
wait_for 90 all_at 1 healthy twin-one
rc=$?
ok $rc "twin-one healthy on both nodes"
[ $rc -eq 0 ] || shown twin-one
wait_for 60 all_at 1 healthy twin-two
rc=$?
ok $rc "twin-two healthy on both nodes"
[ $rc -eq 0 ] || shown twin-two
check "both serve the shared weights" serves "$A" iris-c twin-two
check "one download per node: two GETs in all" \
	test "$(grep -c '^GET /iris-c.txt ' "$HTTP_LOG")" = 2
shoalctl delete twin-one >/dev/null && shoalctl delete twin-two >/dev/null
ok $? "delete the twins"

# -- a corrupted artifact: nothing switches, revision 1 keeps serving ----------
spec "$SCRATCH/v2.yaml" iris "$WEB/bad.txt" "$(sha iris-b)"
shoalctl apply -f "$SCRATCH/v2.yaml" --message corrupt >/dev/null
ok $? "apply revision 2, whose server sends a corrupted file"
wait_for 60 json_ok '.to_revision == 2 and .state == "reverted"' rollout
ok $? "the rollout stops and reverts"
check "a node failed while prestaging, on the checksum" \
	json_ok 'any(.nodes[]; .state == "failed" and (.reason | test("prestaging failed: artifact /models/w.txt: checksum mismatch: expected sha256 [0-9a-f]{64}, got [0-9a-f]{64}")))' rollout
check "no node switched: each failed or was dropped while prestaging" \
	json_ok 'all(.nodes[]; .agent_state == "pending" and (.state == "failed" or (.state == "reverted" and (.reason | test("prestaging only")))))' rollout
for n in $NODES; do
	check "the corrupted file never entered $n's cache" sh -c "! ls '$SCRATCH/$n/artifacts/sha256' | grep -q '$(sha iris-b)'"
	check "... nor stays half-way in $n's partial files" test -z "$(ls "$SCRATCH/$n/artifacts/partial")"
done
check "revision 1 keeps serving on $A" serves "$A" iris-a
check "... in the same container" test "$(container_of "$A")" = "$A1"
check "the service stays on revision 1" json_ok 'all(.nodes[]; .revision == 1 and .state == "healthy")' status

# -- a stalled server is detected and reported ----------------------------------
spec "$SCRATCH/v3.yaml" iris "$WEB/stall/iris-d.txt" "$(sha iris-d)"
shoalctl apply -f "$SCRATCH/v3.yaml" --message stall >/dev/null
ok $? "apply revision 3, whose server stops sending halfway"
wait_for 60 json_ok 'any(.[]; .kind == "artifact.stalled" and (.message | test("stalled: no data for 2000ms")))' events
ok $? "the stall is reported as an event naming the configured 2s"
wait_for 90 json_ok '.to_revision == 3 and .state == "reverted"' rollout
ok $? "after three attempts the rollout stops"
check "the reason says stalled, after 3 attempts" \
	json_ok 'any(.nodes[]; .state == "failed" and (.reason | test("stalled: no data for 2000ms.*after 3 attempts")))' rollout
check "the retries resumed where the stall left off" \
	grep -Eq '^GET /stall/iris-d.txt range=bytes=[1-9][0-9]*- status=206' "$HTTP_LOG"
check "revision 1 keeps serving" serves "$A" iris-a

# -- an artifact larger than the cache budget is refused up front ---------------
spec "$SCRATCH/v4.yaml" iris "$WEB/huge.bin" "$(printf '%064d' 0 | tr 0 e)" 64Mi
shoalctl apply -f "$SCRATCH/v4.yaml" --message huge >/dev/null
ok $? "apply revision 4 with a 64Mi artifact; the agents' budget is 16Mi"
wait_for 60 json_ok '.to_revision == 4 and .state == "reverted"' rollout
ok $? "the rollout stops"
check "the reason names the size and the budget" \
	json_ok 'any(.nodes[]; .reason | test("is 64.0 MiB, more than the artifact cache budget of 16.0 MiB \\(artifact_cache_budget\\)"))' rollout
check "nothing was asked of the server for it" test "$(requests /huge.bin)" = 0
check "revision 1 keeps serving" serves "$A" iris-a

# -- prestaging: every node prepares before the first switches -----------------
spec "$SCRATCH/v5.yaml" iris "$WEB/slow/iris-d.txt" "$(sha iris-d)"
shoalctl apply -f "$SCRATCH/v5.yaml" --message "weights d" >/dev/null
ok $? "apply revision 5 from a slow server"
wait_for 30 json_ok '.to_revision == 5 and any(.nodes[]; .state == "prestaging" and .bytes_done > 0 and .bytes_done < .bytes_total)' rollout
ok $? "rollout status shows a node's bytes done and total while it prestages"
shoalctl rollout status iris >"$SCRATCH/prestaging.txt"
check "... in the human view too" grep -Eq 'prestaging .* [0-9.]+ (KiB|MiB)/2\.[0-9] MiB' "$SCRATCH/prestaging.txt"
wait_for 90 all_at 5 healthy
rc=$?
ok $rc "both nodes healthy at revision 5"
[ $rc -eq 0 ] || { shown iris; containers_shown; }
check "$A serves weights d" serves "$A" iris-d
check "so does $B" serves "$B" iris-d
check "the half left by the stall was resumed, not fetched again" \
	grep -Eq '^GET /slow/iris-d.txt range=bytes=[1-9][0-9]*- status=206' "$HTTP_LOG"
check "progress events came with the download" \
	json_ok 'any(.[]; .kind == "artifact.progress" and (.message | test("of 2.2 MiB \\([0-9]+%\\)")))' events
check "every node prepared before the first wave began" \
	json_ok '[.[] | select(.service == "iris" and (.kind == "rollout.prestaged" or .kind == "rollout.wave"))] | .[-2:] | map(.kind) == ["rollout.prestaged", "rollout.wave"]' events
check "the prestaged nodes are events" \
	json_ok '[.[] | select(.kind == "rollout.node" and (.message | test("prestaged \\([0-9]+ bytes")))] | length >= 2' events

# -- rollback: no download at all ------------------------------------------------
before=$(wc -l <"$HTTP_LOG")
events_before=$(events | jq length)
shoalctl rollback iris --message "back to a" >/dev/null
ok $? "roll back to the previous revision"
wait_for 60 all_at 1 healthy
ok $? "both nodes healthy at revision 1 again"
check "serving weights a" serves "$A" iris-a
check "the kept container came back" test "$(container_of "$A")" = "$A1"
check "zero requests reached the server" test "$(wc -l <"$HTTP_LOG")" = "$before"
check "no download began" \
	json_ok ".[$events_before:] | all(.[]; .kind != \"artifact.downloading\" and .kind != \"artifact.resumed\")" events
for n in $NODES; do
	check "$n still caches the artifacts of both revisions" \
		sh -c "test -f '$SCRATCH/$n/artifacts/sha256/$(sha iris-a)' && test -f '$SCRATCH/$n/artifacts/sha256/$(sha iris-d)'"
done

# -- pins survive an agent restart ----------------------------------------------
# $A caches weights a (serving), d (revision 5, kept stopped for rollback)
# and c (the twins', deleted), 2.2 MiB each. Restarted with a 5Mi budget,
# it needs room for weights b: evicting c and d would make it, but d is
# pinned by the mount of the kept container the agent adopted, and c alone
# is not enough, so b is refused and nothing is evicted in vain.
kill -TERM "$(pid_of "$A")"
wait "$(pid_of "$A")"
start_agent "$A" 5Mi
wait_for 30 json_ok ".[] | select(.id == \"$A\") | .state == \"online\"" shoalctl nodes --json
ok $? "$A restarts with an artifact cache budget of 5Mi"
wait_for 30 json_ok "any(.nodes[]; .node == \"$A\" and .state == \"healthy\")" status
ok $? "... and adopts its healthy container"
spec "$SCRATCH/v6.yaml" iris "$WEB/iris-b.txt" "$(sha iris-b)"
shoalctl apply -f "$SCRATCH/v6.yaml" --message "weights b" >/dev/null
ok $? "apply revision 6 with weights b"
wait_for 60 json_ok '.to_revision == 6 and (.state == "reverted" or .state == "succeeded")' rollout
check "the rollout stops: b does not fit beside what $A must keep" \
	json_ok ".state == \"reverted\" and any(.nodes[]; .node == \"$A\" and .state == \"failed\" and (.reason | test(\"pinned or downloading artifacts with a budget of 5.0 MiB\")))" rollout
check "nothing was evicted for a download that cannot fit (c stays)" cached "$A" "$(sha iris-c)"
check "the serving one (a) stays" cached "$A" "$(sha iris-a)"
check "the kept revision's one (d) stays, pinned through the adopted container" \
	cached "$A" "$(sha iris-d)"
check "... and no eviction event" \
	json_ok 'all(.[]; .kind != "artifact.evicted")' events
check "revision 1 keeps serving" serves "$A" iris-a

done_testing
