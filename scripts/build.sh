#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Configures and builds shoal in the source tree (extra arguments go to
# configure). Reconfigures only when the build system changed.
set -eu
cd "$(dirname "$0")/.."
if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt configure ]; then
	./autogen.sh >autogen.log 2>&1 || { cat autogen.log >&2; exit 1; }
fi
if [ ! -f Makefile ] || [ configure -nt Makefile ] || [ $# -gt 0 ]; then
	./configure -q "$@"
fi
make -s -j"$(nproc)"
