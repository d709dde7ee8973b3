#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The Docker Engine API client against a real daemon: Podman's compatible
# service on a private socket, and a busybox image made with podman import.
# Runs tests/unit/test_docker with SHOAL_RUNTIME_SOCKET, SHOAL_TEST_IMAGE and
# SHOAL_TEST_NODE set, which adds its real-daemon part to the fake-daemon
# one, and passes its points through, renumbered after ours.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/podman.sh"
export PATH="$SHOAL_BUILDDIR/tests/unit:$PATH"
need test_docker busybox
start_podman

# busybox_image TAG: a small image from Debian's busybox-static.
busybox_image() {
	local root="$SCRATCH/rootfs" bb
	bb=$(command -v busybox) || return 1
	mkdir -p "$root/bin"
	cp "$bb" "$root/bin/busybox" || return 1
	for c in sh echo mkdir httpd sleep cat; do ln -sf busybox "$root/bin/$c"; done
	tar -C "$root" -cf "$SCRATCH/rootfs.tar" . &&
		podman import "$SCRATCH/rootfs.tar" "$1" >/dev/null
}
IMAGE=localhost/shoal-test-busybox:1
busybox_image "$IMAGE"
ok $? "a busybox image is imported as $IMAGE"

# The containers of this run carry this node label, and only they.
export SHOAL_TEST_NODE="t-docker-$$"
remove_test_containers() { remove_containers "$SHOAL_TEST_NODE"; }
trap 'remove_test_containers; cleanup' EXIT

out=$(SHOAL_TEST_IMAGE="$IMAGE" test_docker 2>&1)
rc=$?
while IFS= read -r line; do
	case $line in
	"ok "*) ok 0 "${line#ok * - }" ;;
	"not ok "*) ok 1 "${line#not ok * - }" ;;
	"#"*) echo "$line" ;;
	esac
done <<<"$out"
printf '%s\n' "$out" | grep -q "negotiated API"
ok $? "the real-daemon part ran"
# A crash leaves no plan line and an exit status above 1.
[ "$rc" -le 1 ] && printf '%s\n' "$out" | grep -q '^1\.\.[0-9]'
ok $? "test_docker ran to its end (exit status $rc)"
podman ps -aq --filter "label=shoal.node=$SHOAL_TEST_NODE" | grep -q .
ok $((!$?)) "it left no container behind"
done_testing
