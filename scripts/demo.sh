#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# shoal's main job on one machine: installs what is needed, builds, starts
# a coordinator and an agent on loopback in a scratch directory, and shows
# the fleet with shoalctl. With --keep both stay running afterwards.
set -eu
cd "$(dirname "$0")/.."
keep=0
[ "${1:-}" = "--keep" ] && keep=1

./scripts/install-deps.sh
./scripts/build.sh

dir=$(mktemp -d /tmp/shoal-demo.XXXXXX)
export SHOAL_CONTROL="ipc://$dir/control.sock"
./shoal-coordinator -c /dev/null --state-dir "$dir/coordinator" \
	--listen tcp://127.0.0.1:7400 --publish tcp://127.0.0.1:7401 \
	--control "$SHOAL_CONTROL" >"$dir/coordinator.log" 2>&1 &
coord=$!
./shoal-agent -c /dev/null --state-dir "$dir/agent" --node-id "$(hostname -s)" \
	--label role=model --coordinator tcp://127.0.0.1:7400 \
	--heartbeat 1s >"$dir/agent.log" 2>&1 &
agent=$!
stop() {
	kill "$agent" "$coord" 2>/dev/null || true
	wait 2>/dev/null || true
}
[ $keep -eq 1 ] || trap stop EXIT

echo "demo: coordinator (pid $coord) and agent (pid $agent) in $dir"
i=0
until ./shoalctl nodes --json 2>/dev/null | grep -q '"online"'; do
	i=$((i + 1))
	if [ $i -gt 100 ] || ! kill -0 "$coord" 2>/dev/null; then
		echo "demo: the agent did not come online; logs:" >&2
		cat "$dir/coordinator.log" "$dir/agent.log" >&2
		exit 1
	fi
	sleep 0.1
done
echo "\$ shoalctl nodes"
./shoalctl nodes
echo
echo "\$ shoalctl node show $(hostname -s)"
./shoalctl node show "$(hostname -s)"
echo
echo "\$ shoalctl events"
./shoalctl events
if [ $keep -eq 1 ]; then
	echo
	echo "demo: still running. export SHOAL_CONTROL=$SHOAL_CONTROL to use ./shoalctl;"
	echo "demo: stop with: kill $agent $coord"
fi
