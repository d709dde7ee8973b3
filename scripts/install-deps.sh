#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Installs the Debian 12 packages shoal needs to build, test and run
# (Podman and runc run the test and example containers; busybox-static is
# the base of the example model's image; python3 runs the artifact tests' HTTP
# server, openssl their TLS one; prometheus checks and scrapes the metrics
# endpoints, prometheus-node-exporter is what the metrics benchmark compares
# against; lmdb-utils (mdb_stat) checks the stores snapshots and backups
# copy; clang builds the fuzz harnesses, libclang-rt-14-dev holds its
# libFuzzer and sanitizer runtimes, llvm the llvm-symbolizer that puts
# file:line in their stack traces; tcpdump shows the security test that
# no spec crosses the wire in plaintext; debhelper, dpkg-dev, fakeroot and
# lintian build and check the Debian packages, rpm (rpmbuild) the RPMs, and
# systemd's systemd-analyze verifies the installed units and scores their
# hardening, its systemd-sysusers makes the shoal user: scripts/packages.sh;
# systemd-container's systemd-nspawn boots a systemd to run the installed
# packages under: scripts/boot-check.sh).
# Runs apt-get only when something is missing; needs root for that.
set -eu

PACKAGES="build-essential autoconf automake libtool pkg-config
libzmq3-dev libczmq-dev libprotobuf-c-dev protobuf-c-compiler liblmdb-dev
libcurl4-openssl-dev libssl-dev libsystemd-dev libjansson-dev libyaml-dev
libmicrohttpd-dev valgrind jq curl
podman runc netavark aardvark-dns iptables catatonit busybox-static
python3 openssl prometheus prometheus-node-exporter lmdb-utils
clang libclang-rt-14-dev llvm tcpdump
debhelper dpkg-dev fakeroot lintian rpm systemd systemd-container"

missing=""
for p in $PACKAGES; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages:$missing" >&2
	echo "install-deps: run as root (or install them with apt-get)" >&2
	exit 1
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
