#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The whole test suite, from a fresh Debian 12 machine: installs what is
# needed, builds, runs `make check` (unit and integration tests), `make
# memcheck` (the unit tests under valgrind), a bounded fuzz run of the
# parsers (scripts/fuzz.sh), `make distcheck` with ASan/UBSan (the whole
# suite again, out of tree from the release tarball, so a file missing from
# it shows up here too), and the Debian and RPM packages
# (scripts/packages.sh), booted under a real systemd in a container
# (scripts/boot-check.sh). .ci/run calls this.
set -eu
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh --enable-werror

status=0
show_failures() { # show_failures DIR
	for log in "$1"/tests/unit/*.log "$1"/tests/integration/*.log; do
		[ -f "$log" ] || continue
		grep -q '^not ok\|^ERROR\|^FAIL' "$log" 2>/dev/null || continue
		echo "=== $log"
		cat "$log"
	done
}

echo "== make check"
make -s -j"$(nproc)" check || { status=1; show_failures .; }

# The contract: a coordinator and agents run side by side from temporary
# directories as an ordinary user. CI runs as root, so run the fleet test
# once more as nobody.
rm -f tests/integration/unprivileged.out
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
	echo "== integration test as an unprivileged user"
	# A copy nobody can read, wherever this checkout lives.
	copy=$(mktemp -d)
	mkdir -p "$copy/tests/tools" "$copy/tests/integration"
	cp shoal-agent shoal-coordinator shoalctl "$copy/"
	cp tests/tools/poke "$copy/tests/tools/"
	cp tests/integration/*.sh "$copy/tests/integration/"
	chmod -R a+rX "$copy"
	if setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME=/tmp \
		bash "$copy/tests/integration/test_fleet.sh" >tests/integration/unprivileged.out 2>&1 &&
		! grep -q '^not ok' tests/integration/unprivileged.out; then
		echo "PASS: the fleet test as nobody"
	else
		cat tests/integration/unprivileged.out
		status=1
	fi
	rm -rf "$copy"
fi

echo "== make memcheck"
make -s memcheck || { status=1; show_failures .; }

# The parsers of what peers and operators send, under libFuzzer for a
# bounded time (about 60 s a harness, 3 minutes in all).
echo "== fuzz: scripts/fuzz.sh 60"
fuzz_failed=0
./scripts/fuzz.sh 60 || { status=1; fuzz_failed=1; }

# The release tarball as a user gets it: make distcheck unpacks it, builds
# it out of tree (the sources read-only) with ASan and UBSan, runs the
# whole suite there, installs, uninstalls and checks nothing is left over.
echo "== make distcheck (--enable-sanitizers: make check, install, uninstall)"
rm -rf _asan
distcheck_log=tests/distcheck.out
if make -s distcheck DISTCHECK_CONFIGURE_FLAGS="--enable-sanitizers --enable-werror" \
	>"$distcheck_log" 2>&1; then
	tail -n 4 "$distcheck_log"
else
	status=1
	tail -n 40 "$distcheck_log"
	# A failed distcheck leaves its tree behind.
	show_failures "$(ls -d shoal-*/_build/sub 2>/dev/null | head -n 1)"
fi

# The Debian and RPM packages, built from that tarball: lintian, install,
# the installed units' verify and security score, removal (root only:
# apt-get installs them).
if [ "$(id -u)" -eq 0 ]; then
	echo "== packages: scripts/packages.sh"
	rm -rf tests/debs
	DEBS_OUT=tests/debs ./scripts/packages.sh >tests/packages.out 2>&1 || status=1
	grep -v '^ok' tests/packages.out | tail -n 60
	grep -c '^ok' tests/packages.out | sed 's/$/ package checks passed/'
	# The same .debs under a real systemd, booted in a container.
	echo "== the packages under systemd: scripts/boot-check.sh"
	if ls tests/debs/shoal-agent_*.deb tests/debs/shoal-coordinator_*.deb >/dev/null 2>&1; then
		./scripts/boot-check.sh tests/debs/shoal-agent_*.deb tests/debs/shoal-coordinator_*.deb \
			>tests/boot.out 2>&1 || status=1
		grep -v '^ok' tests/boot.out | tail -n 60
		grep -c '^ok' tests/boot.out | sed 's/$/ checks under systemd passed/'
	else
		echo "not ok - no .debs to boot (packages.sh failed)" >tests/boot.out
		status=1
	fi
else
	echo "== packages: skipped (scripts/packages.sh installs them: run as root)"
fi

# One closing line over every TAP test point that ran.
results=$(cat tests/*/*.trs 2>/dev/null || true)
passed=$(printf '%s\n' "$results" | grep -c '^:test-result: PASS' || true)
failed=$(printf '%s\n' "$results" | grep -c '^:test-result: \(FAIL\|XPASS\|ERROR\)' || true)
# distcheck removes its tree when it passes: count from what it printed.
passed=$((passed + $(grep -c '^PASS: ' "$distcheck_log" || true)))
failed=$((failed + $(grep -c '^\(FAIL\|XPASS\|ERROR\): ' "$distcheck_log" || true)))
for out in tests/packages.out tests/boot.out; do
	[ -f "$out" ] || continue
	passed=$((passed + $(grep -c '^ok' "$out" || true)))
	failed=$((failed + $(grep -c '^not ok' "$out" || true)))
done
if [ -f tests/integration/unprivileged.out ]; then
	passed=$((passed + $(grep -c '^ok' tests/integration/unprivileged.out || true)))
	failed=$((failed + $(grep -c '^not ok' tests/integration/unprivileged.out || true)))
fi
# CI keeps only the tail of this output: name every failure once more here.
if [ "$failed" -ne 0 ]; then
	echo "== failures"
	for trs in tests/*/*.trs shoal-*/_build/sub/tests/*/*.trs; do
		[ -f "$trs" ] || continue
		grep -q '^:test-result: \(FAIL\|XPASS\|ERROR\)' "$trs" || continue
		log=${trs%.trs}.log
		echo "--- $log"
		grep -E '^(not ok|Bail out)' "$log" 2>/dev/null | head -n 20
		# what the test said after its first failure
		awk '/^not ok/ { f = 1 } f && /^#/' "$log" 2>/dev/null | head -n 40
	done
	[ -f tests/integration/unprivileged.out ] &&
		grep '^not ok' tests/integration/unprivileged.out | sed 's/^/as nobody: /'
	[ -f tests/packages.out ] &&
		grep '^not ok' tests/packages.out | sed 's/^/packages: /'
	[ -f tests/boot.out ] &&
		grep '^not ok' tests/boot.out | sed 's/^/under systemd: /'
fi
if [ "$fuzz_failed" -ne 0 ]; then
	echo "== fuzz findings (replay: tests/fuzz/build/fuzz_NAME FILE)"
	cat tests/fuzz/build/run/failures 2>/dev/null ||
		echo "scripts/fuzz.sh failed before fuzzing; see its output above"
fi
echo "check: $passed passed, $failed failed"
[ "$failed" -eq 0 ] || status=1
exit $status
