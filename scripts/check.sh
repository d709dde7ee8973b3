#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The whole test suite, from a fresh Debian 12 machine: installs what is
# needed, builds, runs `make check` (unit and integration tests) and
# `make memcheck` (the unit tests under valgrind). .ci/run calls this.
set -eu
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh

status=0
make -s -j"$(nproc)" check || status=1
if [ $status -ne 0 ]; then
	for log in tests/unit/*.log tests/integration/*.log; do
		[ -f "$log" ] || continue
		grep -q "^not ok\|^ERROR\|^FAIL" "$log" 2>/dev/null || continue
		echo "=== $log"
		cat "$log"
	done
fi
make -s memcheck || status=1

# One closing line over every TAP test point that ran.
passed=$(cat tests/unit/*.trs tests/integration/*.trs 2>/dev/null | grep -c '^:test-result: PASS' || true)
failed=$(cat tests/unit/*.trs tests/integration/*.trs 2>/dev/null | grep -c '^:test-result: \(FAIL\|XPASS\|ERROR\)' || true)
echo "check: $passed passed, $failed failed"
[ "$failed" -eq 0 ] || status=1
exit $status
