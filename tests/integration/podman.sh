# SPDX-License-Identifier: Apache-2.0
# Podman's Docker-compatible API service on a private socket, for the tests
# that run real containers. Source after lib.sh; then call start_podman.
# Sets SHOAL_RUNTIME_SOCKET. Its containers.conf (CONTAINERS_CONF) keeps the
# settings local to the test: runc (crun refuses this host's hybrid cgroup
# layout) and ulimits within what the test's own process may grant.

podman_ready() {
	curl -sf --unix-socket "$SHOAL_RUNTIME_SOCKET" http://d/version >/dev/null
}

# prune_stale_port_rules: removes the port forwarding rules netavark left
# behind for containers that no longer run (a podman service killed in the
# middle of a teardown leaves them). Such a rule still catches its port, so a
# new container that Podman happens to give the same host port is never
# reached: its health checks fail with "Couldn't connect to server". Only
# rules for dead containers go; prints how many.
prune_stale_port_rules() {
	command -v iptables >/dev/null 2>&1 || return 0
	iptables -t nat -S NETAVARK-HOSTPORT-DNAT >/dev/null 2>&1 || return 0
	local ids ips n=0 rule chain
	ids=" $(podman ps -q --no-trunc 2>/dev/null | tr '\n' ' ') "
	ips=" $(podman ps -q 2>/dev/null | xargs -r podman inspect \
		-f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' 2>/dev/null | tr '\n' ' ') "
	while read -r rule; do
		case "$rule" in *"podman id: "*) ;; *) continue ;; esac
		local id=${rule##*podman id: }
		id=${id%%\"*}
		case "$ids" in *" $id "*) continue ;; esac
		# shellcheck disable=SC2086
		eval "iptables -t nat -D ${rule#-A }" 2>/dev/null && n=$((n + 1))
	done <<EOF2
$(iptables -t nat -S NETAVARK-HOSTPORT-DNAT)
EOF2
	for chain in $(iptables -t nat -S | awk '$1 == "-N" && $2 ~ /^NETAVARK-DN-/ { print $2 }'); do
		while read -r rule; do
			case "$rule" in *"--to-destination "*) ;; *) continue ;; esac
			local ip=${rule##*--to-destination }
			ip=${ip%%:*}
			case "$ips" in *" $ip "*) continue ;; esac
			# shellcheck disable=SC2086
			eval "iptables -t nat -D ${rule#-A }" 2>/dev/null && n=$((n + 1))
		done <<EOF2
$(iptables -t nat -S "$chain")
EOF2
	done
	[ "$n" -eq 0 ] || echo "# removed $n stale port forwarding rules of containers that no longer run"
}

start_podman() {
	[ "$(id -u)" -eq 0 ] || skip_all "real containers need root (rootful Podman)"
	need podman runc curl
	local dir="$SCRATCH/podman"
	mkdir -p "$dir"
	sh "$SHOAL_SRCDIR/scripts/podman-conf.sh" "$dir/containers.conf"
	export CONTAINERS_CONF="$dir/containers.conf"
	prune_stale_port_rules
	export SHOAL_RUNTIME_SOCKET="$dir/podman.sock"
	start podman podman system service --time=0 "unix://$SHOAL_RUNTIME_SOCKET"
	wait_for 30 podman_ready || {
		echo "Bail out! podman system service did not answer on $SHOAL_RUNTIME_SOCKET"
		exit 1
	}
}

# remove_containers NODE...: every container the agents of these nodes made
# (the agents are stopped first: one still running could start another).
remove_containers() {
	local node ids
	stop_agents
	for node in "$@"; do
		ids=$(podman ps -aq --filter "label=shoal.node=$node" 2>/dev/null)
		[ -n "$ids" ] && podman rm -f $ids >/dev/null 2>&1
	done
	return 0
}
