#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The packages under a real systemd (CI; root): systemd is not PID 1 on
# these machines, so this boots one in a container. The container's root is
# an overlay of this machine's / on a tmpfs, so nothing it writes reaches
# the host; the two .debs are installed into it with dpkg, it boots with
# systemd-nspawn, and the checks run inside it through nsenter:
#
#   - the coordinator, enabled by its package, is up at boot as the shoal
#     user: Type=notify (active only after READY=1), its STATUS= line, its
#     state dir, the control socket for the shoal group;
#   - the agent, enabled but without the coordinator's key, exits 78 at boot
#     and is not restarted; with the key it comes up (READY=1) and online;
#   - through its sandbox the agent reaches the container runtime's socket
#     (the container's own Podman API service, socket-activated) and reads
#     /proc (its host metrics);
#   - the journal holds the structured fields (SHOAL_NODE=, SHOAL_SERVICE=,
#     SHOAL_REVISION=); systemd sees the watchdog pings; `systemctl reload`
#     applies a config change; `systemctl stop` ends both cleanly.
#
# Podman in the container stores images with the vfs driver (overlay on
# overlayfs is refused) and cannot start containers there (nspawn mounts the
# cgroup v1 controllers read-only), so the model itself is not run here;
# the other integration tests run it.
#
#   sh scripts/boot-check.sh AGENT.deb COORDINATOR.deb
# Prints TAP; exits 1 if anything failed.
set -eu
umask 022

if [ "$#" -ne 2 ]; then
	echo "usage: boot-check.sh AGENT.deb COORDINATOR.deb" >&2
	exit 2
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "boot-check.sh: run as root (it mounts and boots a container)" >&2
	exit 2
fi
agent_deb=$(readlink -f "$1")
coord_deb=$(readlink -f "$2")

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }
res() { if [ "$1" -eq 0 ]; then ok "$2"; else not_ok "$2"; fi; }
diag() { sed 's/^/# /'; }
check() { # check DESC CMD...: CMD's output as diagnostics when it fails
	desc=$1
	shift
	if out=$("$@" 2>&1); then
		ok "$desc"
	else
		not_ok "$desc"
		printf '%s\n' "$out" | diag
	fi
}
# wait_for SECONDS CMD...: polls CMD until it succeeds (a deadline, not a
# timing assertion).
wait_for() {
	deadline=$(($(date +%s) + $1))
	shift
	while ! "$@" >/dev/null 2>&1; do
		[ "$(date +%s)" -ge "$deadline" ] && return 1
		sleep 0.5
	done
}

if ! command -v systemd-nspawn >/dev/null 2>&1; then
	echo "1..0 # SKIP systemd-nspawn is not installed (systemd-container)"
	exit 0
fi

work=$(mktemp -d /tmp/shoal-boot.XXXXXX)
root=$work/root
nspawn_pid=""
leader=""
cleanup() {
	if [ -n "$leader" ] && kill -0 "$leader" 2>/dev/null; then
		nsenter -t "$leader" -a systemctl poweroff >/dev/null 2>&1 || :
		i=0
		while [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null && [ $i -lt 60 ]; do
			sleep 0.5
			i=$((i + 1))
		done
	fi
	[ -n "$nspawn_pid" ] && kill -9 "$nspawn_pid" 2>/dev/null
	# Whatever is mounted below the work directory, deepest first.
	for m in $(awk -v w="$work" 'index($2, w) == 1 { print $2 }' /proc/self/mounts | sort -r); do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || :
	done
	if awk -v w="$work" 'index($2, w) == 1 { f = 1 } END { exit !f }' /proc/self/mounts; then
		echo "# still mounted below $work; not removing it"
		return
	fi
	if [ "${KEEP:-0}" = 1 ]; then
		echo "# kept: $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# The root: / read-only below, a tmpfs above. Only / itself is seen (not
# the file systems mounted on it), but what lies in the root file system
# under /dev, /run and /tmp is whited out: nspawn wants them empty.
mkdir -p "$work/layer" "$root"
mount -t tmpfs -o mode=0755 tmpfs "$work/layer"
mkdir -p "$work/layer/upper" "$work/layer/work"
if ! mount -t overlay overlay \
    -o "lowerdir=/,upperdir=$work/layer/upper,workdir=$work/layer/work" "$root" 2>"$work/mount.err"; then
	echo "1..0 # SKIP cannot mount an overlay of /: $(cat "$work/mount.err")"
	exit 0
fi
rm -rf "$root"/dev/* "$root"/dev/.[!.]* "$root"/run/* "$root"/run/.[!.]* "$root"/tmp/* 2>/dev/null || :

# Podman in the container: runc, and vfs storage of its own.
mkdir -p "$root/etc/containers"
printf '[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\n' \
	>"$root/etc/containers/containers.conf"
printf '[storage]\ndriver = "vfs"\nrunroot = "/run/containers/storage"\ngraphroot = "/var/lib/containers/shoal-boot"\n' \
	>"$root/etc/containers/storage.conf"
# What this machine runs at boot and the test does not need.
chroot "$root" systemctl mask postgresql.service postgresql@15-main.service \
	prometheus.service prometheus-node-exporter.service \
	podman-auto-update.timer podman-restart.service >/dev/null 2>&1 || :
# An earlier install of the packages on this machine does not count.
chroot "$root" dpkg --purge shoal-agent shoal-coordinator >/dev/null 2>&1 || :

# From here on every check reports on its own.
set +e
mkdir -p "$root/tmp/debs"
cp "$agent_deb" "$coord_deb" "$root/tmp/debs/"
check "dpkg -i the two packages into the container's root" \
	chroot "$root" env DEBIAN_FRONTEND=noninteractive sh -c 'dpkg -i /tmp/debs/*.deb'
check "  which made the shoal user (sysusers.d) and enabled both units" \
	chroot "$root" sh -c 'getent passwd shoal && cd /etc/systemd/system/multi-user.target.wants &&
		test -L shoal-agent.service && test -L shoal-coordinator.service'
token=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')

systemd-nspawn --register=no --keep-unit --quiet -D "$root" --machine=shoal-boot -b \
	>"$work/console.log" 2>&1 &
nspawn_pid=$!
find_leader() {
	leader=$(pgrep -P "$nspawn_pid" -x systemd | head -n 1)
	[ -n "$leader" ]
}
wait_for 60 find_leader
inside() { nsenter -t "$leader" -a "$@"; }
booted() {
	s=$(inside systemctl is-system-running 2>/dev/null) || :
	[ "$s" = running ] || [ "$s" = degraded ]
}
if [ -z "$leader" ] || ! wait_for 120 booted; then
	not_ok "the container boots systemd"
	tail -n 30 "$work/console.log" | diag
	exit 1
fi
ok "the container boots systemd ($(inside systemctl is-system-running))"

prop() { inside systemctl show -p "$2" --value "$1"; }
active() { [ "$(prop "$1" ActiveState)" = active ]; }
wait_for 60 active shoal-coordinator.service
res $? "shoal-coordinator is active at boot (Type=notify: after READY=1)"
status_coord=$(prop shoal-coordinator.service StatusText)
check "  its STATUS= line: $status_coord" sh -c "echo '$status_coord' | grep -q '^serving 0 nodes'"
runs_as_shoal() {
	pid=$(prop shoal-coordinator.service MainPID)
	u=$(inside ps -o user= -p "$pid")
	echo "pid $pid runs as $u"
	[ "$u" = shoal ]
}
check "  it runs as shoal" runs_as_shoal
check "  its state dir is shoal's, 0700, with its key pair" inside sh -c \
	'test "$(stat -c %U:%a /var/lib/shoal-coordinator)" = shoal:700 &&
	 test -s /var/lib/shoal-coordinator/coordinator.pub'
check "  the control socket is srw-rw---- shoal:shoal in /run/shoal" inside sh -c \
	'test "$(stat -c %A:%U:%G /run/shoal/control.sock)" = "srw-rw----:shoal:shoal"'
check "  shoalctl nodes answers (as root)" inside shoalctl nodes

# The agent at boot: enabled, no coordinator key yet.
agent_failed78() {
	[ "$(prop shoal-agent.service ActiveState)" = failed ] &&
		[ "$(prop shoal-agent.service ExecMainStatus)" = 78 ]
}
wait_for 30 agent_failed78
res $? "shoal-agent at boot without the coordinator's key: failed with 78"
check "  and systemd did not restart it (RestartPreventExitStatus=78)" \
	test "$(prop shoal-agent.service NRestarts)" = 0
check "  its journal names the missing key file" inside sh -c \
	'journalctl -u shoal-agent -o cat | grep -q "/etc/shoal/coordinator.pub"'

# The token, by a reload of the coordinator; the key, where the agent
# pins it; the agent's config; then start it.
inside sh -c "printf 'enroll_token: $token\nlog_level: debug\n' >>/etc/shoal/coordinator.yaml"
check "systemctl reload shoal-coordinator (SIGHUP)" inside systemctl reload shoal-coordinator
reloaded() { inside journalctl -u shoal-coordinator -o cat | grep -q 'reload: log_level, enroll_token applied'; }
wait_for 20 reloaded
res $? "  which applies the token and the log level"
check "  and it stays active" active shoal-coordinator.service
inside cp /var/lib/shoal-coordinator/coordinator.pub /etc/shoal/coordinator.pub
inside sh -c "cat >>/etc/shoal/agent.yaml" <<EOF
node_id: boot-node
labels: {role: model}
enroll_token: $token
runtime_socket: /run/podman/podman.sock
heartbeat: 1s
EOF
check "systemctl start shoal-agent with the key (returns after READY=1)" \
	inside systemctl start shoal-agent
check "  it is active" active shoal-agent.service
node_online() { inside shoalctl node show boot-node --json | grep -q '"state": *"online"'; }
wait_for 30 node_online
res $? "  the coordinator has boot-node online"
agent_status() { prop shoal-agent.service StatusText | grep -q '^online at tcp://127.0.0.1:7400'; }
wait_for 20 agent_status
res $? "  its STATUS= line: $(prop shoal-agent.service StatusText)"
runtime_reached() { inside journalctl -u shoal-agent -o cat | grep -q 'container runtime at /run/podman/podman.sock: API'; }
wait_for 30 runtime_reached
res $? "  through its sandbox it reaches the runtime's socket (root:root 0660)"
inside journalctl -u shoal-agent -o cat | grep 'container runtime' | tail -n 2 | diag
inside curl -sf http://127.0.0.1:9464/metrics >"$work/metrics.txt" 2>&1 || :
has_metrics() {
	for m in "$@"; do
		grep -q "^$m" "$work/metrics.txt" || { echo "no $m"; return 1; }
	done
}
check "  and reads /proc: node_cpu_seconds_total, node_memory_MemAvailable_bytes, node_load1" \
	has_metrics node_cpu_seconds_total node_memory_MemAvailable_bytes node_load1
# (Its / is an overlay here, which the filesystem metrics leave out, as
# node_exporter does; its tmpfs mounts are shown.)
check "  and sees the mount table: node_filesystem_avail_bytes" \
	has_metrics 'node_filesystem_avail_bytes{'

# The journal's fields, from journald itself.
# (Of the running agent: the one at boot had the host name for its id.)
agent_pid=$(prop shoal-agent.service MainPID)
check "journal: every entry of the running agent has SHOAL_NODE=boot-node" inside sh -c \
	"n=\$(journalctl _PID=$agent_pid -o export | grep -c '^MESSAGE=')
	 m=\$(journalctl _PID=$agent_pid SHOAL_NODE=boot-node -o export | grep -c '^MESSAGE=')
	 echo \"\$m of \$n\"; [ \"\$n\" -gt 0 ] && [ \"\$n\" = \"\$m\" ]"
# Not in /tmp: the container has a tmpfs of its own there.
cat >"$root/root/spec.yaml" <<EOF
service: iris
selector: {role: model}
image: localhost/shoal-example-model:1
command: ["/model-server", "--port", "8080"]
port: 8080
EOF
check "shoalctl apply -f spec.yaml (a service for role=model)" inside shoalctl apply -f /root/spec.yaml
svc_lines() { inside journalctl SHOAL_SERVICE=iris SHOAL_REVISION=1 -o cat | grep -q .; }
wait_for 20 svc_lines
res $? "journalctl SHOAL_SERVICE=iris SHOAL_REVISION=1 finds the service's lines"
inside journalctl SHOAL_SERVICE=iris -o cat | head -n 4 | diag
check "  from both daemons" inside sh -c \
	'journalctl SHOAL_SERVICE=iris SYSLOG_IDENTIFIER=shoal-agent -o cat | grep -q . &&
	 journalctl SHOAL_SERVICE=iris SYSLOG_IDENTIFIER=shoal-coordinator -o cat | grep -q .'
check "journalctl SHOAL_NODE=boot-node finds the coordinator's lines about it" inside sh -c \
	'journalctl SYSLOG_IDENTIFIER=shoal-coordinator SHOAL_NODE=boot-node -o cat | grep -q boot-node'

# The watchdog: WatchdogSec=30s, pinged every 15s; systemd stamps each.
check "watchdog: WatchdogUSec is 30s for both" sh -c \
	"test '$(prop shoal-agent.service WatchdogUSec)' = 30s && test '$(prop shoal-coordinator.service WatchdogUSec)' = 30s"
w0=$(prop shoal-agent.service WatchdogTimestampMonotonic)
pinged() { [ "$(prop shoal-agent.service WatchdogTimestampMonotonic)" != "$w0" ]; }
wait_for 40 pinged
res $? "  systemd saw a new WATCHDOG=1 from the agent (its watchdog timestamp moved)"

# Stop both: SIGTERM, STOPPING=1, a clean exit.
stopped_ok() {
	[ "$(prop "$1" ActiveState)" = inactive ] && [ "$(prop "$1" Result)" = success ]
}
check "systemctl stop shoal-agent" inside systemctl stop shoal-agent
wait_for 20 stopped_ok shoal-agent.service
res $? "  and it exited cleanly ($(prop shoal-agent.service Result), status $(prop shoal-agent.service ExecMainStatus))"
check "systemctl stop shoal-coordinator" inside systemctl stop shoal-coordinator
wait_for 20 stopped_ok shoal-coordinator.service
res $? "  and it exited cleanly ($(prop shoal-coordinator.service Result), status $(prop shoal-coordinator.service ExecMainStatus))"
check "  having removed its control socket" inside sh -c '! test -e /run/shoal/control.sock'

echo "1..$n"
if [ "$failed" -ne 0 ]; then
	echo "# the daemons' journals:"
	inside journalctl -u shoal-coordinator -u shoal-agent --no-pager -o short-monotonic 2>/dev/null |
		tail -n 60 | diag
fi
exit $((failed != 0))
