#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# shoal's main job on one machine: installs what is needed, builds, starts
# Podman's Docker API service, a coordinator and an agent on loopback in a
# scratch directory, builds the example model's image, deploys it with
# `shoalctl apply` of examples/iris.yaml, its weights given as an artifact
# (file://, verified by sha256 into the agent's cache and mounted
# read-only), waits until it is healthy, asks it for a prediction and shows
# the fleet's figures (shoalctl top) and the agent's Prometheus metrics.
# With --keep everything stays running afterwards.
set -eu
cd "$(dirname "$0")/.."
keep=0
[ "${1:-}" = "--keep" ] && keep=1

./scripts/install-deps.sh
./scripts/build.sh

dir=$(mktemp -d /tmp/shoal-demo.XXXXXX)
node=$(hostname -s)
export SHOAL_CONTROL="ipc://$dir/control.sock"
export CONTAINERS_CONF="$dir/containers.conf"
./scripts/podman-conf.sh "$CONTAINERS_CONF"

podman system service --time=0 "unix://$dir/podman.sock" >"$dir/podman.log" 2>&1 &
podman=$!
./shoal-coordinator -c /dev/null --state-dir "$dir/coordinator" \
	--listen tcp://127.0.0.1:7400 --publish tcp://127.0.0.1:7401 \
	--control "$SHOAL_CONTROL" >"$dir/coordinator.log" 2>&1 &
coord=$!
# The agent pins the coordinator's public key (CurveZMQ), which the
# coordinator writes to its state dir when it starts.
i=0
until [ -s "$dir/coordinator/coordinator.pub" ]; do
	i=$((i + 1))
	[ $i -gt 100 ] && { tail "$dir/coordinator.log" >&2; exit 1; }
	sleep 0.1
done
./shoal-agent -c /dev/null --state-dir "$dir/agent" --node-id "$node" \
	--coordinator-key "$dir/coordinator/coordinator.pub" \
	--label role=model --coordinator tcp://127.0.0.1:7400 \
	--runtime-socket "$dir/podman.sock" \
	--artifact-file-root "$PWD/examples" \
	--heartbeat 1s >"$dir/agent.log" 2>&1 &
agent=$!
stop() {
	./shoalctl delete iris >/dev/null 2>&1 && sleep 3
	kill "$agent" "$coord" "$podman" 2>/dev/null || true
	wait 2>/dev/null || true
	podman ps -aq --filter "label=shoal.node=$node" | xargs -r podman rm -f >/dev/null 2>&1 || true
}
[ $keep -eq 1 ] || trap stop EXIT

logs() {
	echo "demo: $1; logs in $dir:" >&2
	tail -n 20 "$dir/coordinator.log" "$dir/agent.log" >&2
	exit 1
}
# wait_until SECONDS WHAT COMMAND...
wait_until() {
	limit=$(($1 * 10)) what=$2 i=0
	shift 2
	until "$@" >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -gt "$limit" ] && logs "$what did not happen in time"
		sleep 0.1
	done
}

echo "demo: podman (pid $podman), coordinator (pid $coord) and agent (pid $agent) in $dir"
# A new agent's key waits for an operator (or an --enroll-token).
wait_until 30 "the agent asking to enrol" sh -c "./shoalctl keys list --json | grep -q '\"pending\"'"
echo "\$ shoalctl keys list"
./shoalctl keys list
echo "\$ shoalctl keys accept $node   # compare: shoal-agent --print-key --state-dir $dir/agent"
./shoalctl keys accept "$node"
echo
wait_until 30 "the agent coming online" sh -c './shoalctl nodes --json | grep -q "\"online\""'
echo "\$ shoalctl nodes"
./shoalctl nodes
echo

echo "demo: building the example model's image (podman import)"
MODEL_SERVER=./examples/model-server ./examples/build-image.sh >"$dir/image.log" 2>&1 ||
	logs "the image build failed (see $dir/image.log)"

# The example spec, its weights served as an artifact from the checkout.
spec="$dir/iris.yaml"
cp examples/iris.yaml "$spec"
cat >>"$spec" <<EOF
artifacts:
  - url: file://$PWD/examples/iris.txt
    sha256: $(sha256sum examples/iris.txt | cut -d' ' -f1)
    path: /models/iris.txt
EOF
echo "\$ shoalctl apply -f $spec   # examples/iris.yaml, weights as an artifact"
./shoalctl apply -f "$spec" --message "demo"
echo
# Progress: one line per change of the node's state.
last=""
i=0
while :; do
	state=$(./shoalctl status iris --json 2>/dev/null |
		sed -n 's/.*"state": "\([a-z]*\)".*/\1/p' | head -n 1)
	if [ -n "$state" ] && [ "$state" != "$last" ]; then
		echo "demo: iris on $node: $state"
		last=$state
	fi
	[ "$state" = healthy ] && break
	[ "$state" = failed ] && { ./shoalctl status iris; logs "the model failed"; }
	i=$((i + 1))
	[ $i -gt 1200 ] && logs "the model did not turn healthy in 2 minutes"
	sleep 0.1
done
echo
echo "\$ shoalctl status iris"
./shoalctl status iris
endpoint=$(./shoalctl status iris --json | sed -n 's/.*"endpoint": "\([^"]*\)".*/\1/p' | head -n 1)
echo
echo "\$ curl -d '{\"features\": [6.7, 3.0, 5.2, 2.3]}' http://$endpoint/v1/predict"
curl -sf -H 'Content-Type: application/json' \
	-d '{"features": [6.7, 3.0, 5.2, 2.3]}' "http://$endpoint/v1/predict" ||
	logs "the model did not answer"
echo
echo
echo "\$ shoalctl events"
./shoalctl events
echo
echo "\$ shoalctl top"
./shoalctl top
echo
echo "\$ curl -s http://127.0.0.1:9464/metrics | grep '^shoal_service\|^node_load1'"
curl -sf http://127.0.0.1:9464/metrics | grep '^shoal_service\|^node_load1' ||
	logs "the agent's metrics endpoint did not answer"
if [ $keep -eq 1 ]; then
	echo
	echo "demo: still running. export SHOAL_CONTROL=$SHOAL_CONTROL to use ./shoalctl;"
	echo "demo: stop with: ./shoalctl delete iris; kill $agent $coord $podman"
fi
