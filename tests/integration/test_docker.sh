#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The Docker Engine API client against a real daemon: Podman's compatible
# service on a private socket, and a busybox image made with podman import.
# Runs tests/unit/test_docker with SHOAL_RUNTIME_SOCKET and SHOAL_TEST_IMAGE
# set, which adds its real-daemon part to the fake-daemon one.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/podman.sh"
export PATH="$SHOAL_BUILDDIR/tests/unit:$PATH"
need test_docker busybox
start_podman

# busybox_image TAG: a small image from Debian's busybox-static.
busybox_image() {
	local root="$SCRATCH/rootfs"
	mkdir -p "$root/bin"
	cp /bin/busybox "$root/bin/busybox" || return 1
	for c in sh echo mkdir httpd sleep cat; do ln -sf busybox "$root/bin/$c"; done
	tar -C "$root" -cf "$SCRATCH/rootfs.tar" . &&
		podman import "$SCRATCH/rootfs.tar" "$1" >/dev/null
}
IMAGE=localhost/shoal-test-busybox:1
busybox_image "$IMAGE"
ok $? "a busybox image is imported as $IMAGE"

out=$(SHOAL_TEST_IMAGE="$IMAGE" test_docker 2>&1)
# Renumber its points after ours and pass them through.
while IFS= read -r line; do
	case $line in
	"ok "*) ok 0 "${line#ok * - }" ;;
	"not ok "*) ok 1 "${line#not ok * - }" ;;
	"#"*) echo "$line" ;;
	esac
done <<<"$out"
printf '%s\n' "$out" | grep -q "negotiated API"
ok $? "the real-daemon part ran"
podman ps -aq --filter label=shoal.node=t-node | xargs -r podman rm -f >/dev/null 2>&1
done_testing
