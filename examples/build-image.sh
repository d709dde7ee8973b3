#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Builds the example model's OCI image with neither a registry nor a
# Dockerfile: a root filesystem holding the static model server, its weights
# and busybox (for a shell when debugging) is tarred reproducibly and turned
# into an image by `podman import`.
#
# usage: build-image.sh [TAG]        (default localhost/shoal-example-model:1)
#   MODEL_SERVER   the static model-server binary (default: the build tree's,
#                  $SHOAL_BUILDDIR/examples/model-server, else next to this
#                  script)
#   MODEL_WEIGHTS  the weights file (default: iris.txt next to this script)
#   BUSYBOX        a static busybox (default /bin/busybox, busybox-static)
# Podman reads CONTAINERS_CONF itself when it is set.
#
# The image carries the digest of its root filesystem as a label, so running
# this again with the same inputs changes nothing and takes a second.
set -eu

tag=${1:-localhost/shoal-example-model:1}
here=$(cd "$(dirname "$0")" && pwd)
server=${MODEL_SERVER:-${SHOAL_BUILDDIR:-$here/..}/examples/model-server}
weights=${MODEL_WEIGHTS:-$here/iris.txt}
busybox=${BUSYBOX:-/bin/busybox}
label=org.shoal.rootfs-sha256

die() {
	echo "build-image.sh: $*" >&2
	exit 1
}

command -v podman >/dev/null 2>&1 ||
	die "podman not found (Debian: apt-get install podman)"
[ -f "$server" ] && [ -x "$server" ] ||
	die "$server: no model-server binary; run make, or set MODEL_SERVER"
[ -f "$weights" ] && [ -r "$weights" ] || die "$weights: no weights file"
[ -f "$busybox" ] && [ -x "$busybox" ] ||
	die "$busybox: not found (Debian: apt-get install busybox-static)"
# The image has no libraries: a dynamically linked binary would not start.
if command -v readelf >/dev/null 2>&1; then
	for bin in "$server" "$busybox"; do
		if LC_ALL=C readelf -l "$bin" 2>/dev/null |
			grep -q 'program interpreter'; then
			die "$bin is dynamically linked; the image needs a static binary"
		fi
	done
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/shoal-image.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM
root=$tmp/rootfs
mkdir -p "$root/bin" "$root/models" "$root/etc" "$root/tmp"
cp "$server" "$root/model-server"
cp "$weights" "$root/models/iris.txt"
cp "$busybox" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
printf 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' \
	>"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
# Modes set here, not inherited from the umask or mktemp's 0700, so the
# server can run as nobody and the tarball is the same on every machine.
chmod 0755 "$root" "$root/bin" "$root/models" "$root/etc" \
	"$root/model-server" "$root/bin/busybox"
chmod 0644 "$root/models/iris.txt" "$root/etc/passwd" "$root/etc/group"
chmod 1777 "$root/tmp"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
	-C "$root" -cf "$tmp/rootfs.tar" .
digest=$(sha256sum "$tmp/rootfs.tar" | cut -d' ' -f1)

old=$(podman image inspect --format '{{.Id}} {{index .Labels "'$label'"}}' \
	"$tag" 2>/dev/null || true)
if [ "${old#* }" = "$digest" ]; then
	echo "$tag is up to date (rootfs sha256:$digest)"
	exit 0
fi
podman import --quiet \
	--change 'CMD ["/model-server"]' \
	--change 'EXPOSE 8080' \
	--change 'USER 65534:65534' \
	--change 'STOPSIGNAL SIGTERM' \
	--change "LABEL $label=$digest" \
	--message "shoal example model server" \
	"$tmp/rootfs.tar" "$tag" >/dev/null
# The previous build lost its tag; drop it unless something still uses it.
if [ -n "$old" ]; then
	podman rmi "${old%% *}" >/dev/null 2>&1 || true
fi
echo "built $tag (rootfs sha256:$digest)"
