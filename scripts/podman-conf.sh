#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Writes a containers.conf for running shoal's containers through Podman on
# these hosts to the path given: runc (crun refuses a hybrid cgroup layout)
# and default ulimits the calling process may grant (Podman's defaults
# exceed the hard limits here and runc then refuses to start containers).
# Point CONTAINERS_CONF at the file to use it.
set -eu
[ $# -eq 1 ] || { echo "usage: podman-conf.sh FILE" >&2; exit 2; }
cap() { # cap VALUE MAX
	case $1 in unlimited) echo "$2" ;; *) [ "$1" -gt "$2" ] && echo "$2" || echo "$1" ;; esac
}
# Hard limits of this process, from /proc (POSIX sh's ulimit has no -u).
nofile=$(cap "$(awk '/^Max open files/ {print $5}' /proc/self/limits)" 4096)
nproc=$(cap "$(awk '/^Max processes/ {print $4}' /proc/self/limits)" 4096)
cat >"$1" <<CONF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
runtime = "runc"
CONF
