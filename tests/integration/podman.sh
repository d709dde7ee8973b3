# SPDX-License-Identifier: Apache-2.0
# Podman's Docker-compatible API service on a private socket, for the tests
# that run real containers. Source after lib.sh; then call start_podman.
# Sets SHOAL_RUNTIME_SOCKET. Its containers.conf (CONTAINERS_CONF) keeps the
# settings local to the test: runc (crun refuses this host's hybrid cgroup
# layout) and ulimits within what the test's own process may grant.

podman_ready() {
	curl -sf --unix-socket "$SHOAL_RUNTIME_SOCKET" http://d/version >/dev/null
}

start_podman() {
	[ "$(id -u)" -eq 0 ] || skip_all "real containers need root (rootful Podman)"
	need podman runc curl
	local dir="$SCRATCH/podman"
	mkdir -p "$dir"
	sh "$SHOAL_SRCDIR/scripts/podman-conf.sh" "$dir/containers.conf"
	export CONTAINERS_CONF="$dir/containers.conf"
	export SHOAL_RUNTIME_SOCKET="$dir/podman.sock"
	start podman podman system service --time=0 "unix://$SHOAL_RUNTIME_SOCKET"
	wait_for 30 podman_ready || {
		echo "Bail out! podman system service did not answer on $SHOAL_RUNTIME_SOCKET"
		exit 1
	}
}

# remove_containers NODE...: every container the agents of these nodes made.
remove_containers() {
	local node ids
	for node in "$@"; do
		ids=$(podman ps -aq --filter "label=shoal.node=$node" 2>/dev/null)
		[ -n "$ids" ] && podman rm -f $ids >/dev/null 2>&1
	done
	return 0
}
