#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Builds the libFuzzer harnesses (`make fuzz`, with clang) and runs each
# for SECONDS (default 60): fuzz_wire (common/wire.c), fuzz_spec
# (common/spec.c) and fuzz_config (common/config.c). Each runs on a scratch
# copy of its committed seeds (tests/fuzz/corpus/NAME; the wire seeds also
# freshly generated), so a run never grows the committed corpus.
# Everything lands in tests/fuzz/build/run/: NAME.log, corpus/NAME, and
# crashes/NAME/ for the inputs that crashed, hung (10 s), ran out of memory
# (2 GiB) or set off a sanitizer. Exits 1 on any such finding, naming the
# harness, the reproducer and how to replay it; 2 when clang or libFuzzer
# is missing (scripts/install-deps.sh installs them; this script installs
# nothing). FUZZ_CC picks another clang.
set -eu
cd "$(dirname "$0")/.."

seconds=${1:-60}
case $seconds in
'' | *[!0-9]*)
	echo "usage: scripts/fuzz.sh [SECONDS]  (per harness, default 60)" >&2
	exit 2
	;;
esac
cc=${FUZZ_CC:-clang}
harnesses="wire spec config"
run=tests/fuzz/build/run
rm -rf "$run" # the last run's findings go, whatever happens below

missing() {
	echo "fuzz: $1" >&2
	echo "fuzz: the harnesses need clang with libFuzzer" \
		"(libclang_rt.fuzzer-x86_64.a); on Debian 12:" \
		"apt-get install clang libclang-rt-14-dev llvm," \
		"or run scripts/install-deps.sh as root" >&2
	exit 2
}
command -v "$cc" >/dev/null 2>&1 || missing "$cc not found"
probe=$(mktemp -d)
printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
	'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
	'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { return 0; }' \
	>"$probe/probe.c"
if ! "$cc" -fsanitize=fuzzer,address,undefined -o "$probe/probe" \
	"$probe/probe.c" >"$probe/log" 2>&1; then
	cat "$probe/log" >&2
	rm -rf "$probe"
	missing "$cc cannot link a libFuzzer program"
fi
rm -rf "$probe"

# The config harness repeats the daemons' key tables; say when they drift.
keys() { # keys FILE TABLE: the keys of a config_field_t table, sorted
	sed -n "/$2\[\] = {/,/{ NULL }/p" "$1" |
		sed -n 's/^[[:space:]]*{ "\([a-z_0-9]*\)".*/\1/p' | sort
}
for pair in agent/agent.c:agent_config_fields:agent_fields \
	coordinator/coordinator.c:coord_config_fields:coord_fields; do
	file=${pair%%:*}
	rest=${pair#*:}
	if [ "$(keys "$file" "${rest%%:*}")" != \
		"$(keys tests/fuzz/fuzz_config.c "${rest#*:}")" ]; then
		echo "fuzz: warning: the keys of ${rest%%:*} ($file) differ" \
			"from ${rest#*:} in tests/fuzz/fuzz_config.c; update the" \
			"harness's copy"
	fi
done

[ -f Makefile ] || ./scripts/build.sh
echo "fuzz: building the harnesses with $cc"
make -s -j"$(nproc)" fuzz FUZZ_CC="$cc" ||
	{ echo "fuzz: \`make fuzz' failed" >&2; exit 2; }

mkdir -p "$run/corpus" "$run/crashes"
: >"$run/failures"
status=0
for name in $harnesses; do
	bin=tests/fuzz/build/fuzz_$name
	corpus=$run/corpus/$name
	crashes=$run/crashes/$name
	log=$run/$name.log
	mkdir -p "$corpus" "$crashes"
	cp tests/fuzz/corpus/"$name"/* "$corpus"/
	[ "$name" = wire ] && tests/fuzz/build/gen_wire_seeds "$corpus" >/dev/null
	set -- -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix="$crashes/" -print_final_stats=1
	[ -f tests/fuzz/"$name".dict ] && set -- "$@" -dict=tests/fuzz/"$name".dict
	seeds=$(find "$corpus" -type f | wc -l)
	echo "== fuzz_$name: ${seconds}s from $seeds seeds"
	rc=0
	ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
		UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
		"$bin" "$@" "$corpus" >"$log" 2>&1 || rc=$?
	found=$(find "$crashes" -type f ! -name 'slow-unit-*' | sort)
	if [ "$rc" -eq 0 ] && [ -z "$found" ]; then
		# "#N DONE cov: C ft: F corp: K/SIZE ... exec/s: E rss: R"
		grep -a '^#[0-9]*[[:space:]]*DONE' "$log" | tail -n 1 |
			sed "s/^/fuzz_$name: /"
		grep -a '^stat::number_of_executed_units\|^stat::new_units_added' \
			"$log" | sed "s/^/fuzz_$name: /"
		echo "fuzz_$name: corpus now $(find "$corpus" -type f | wc -l) inputs," \
			"$(cat "$corpus"/* | wc -c) bytes, in $corpus"
		continue
	fi
	status=1
	echo "!! fuzz_$name FAILED (exit $rc); log: $log"
	# The report: from the sanitizer's or the harness's first word on.
	awk '/==[0-9]+==(ERROR|WARNING)|runtime error:|^fuzz_[a-z]+: |ERROR: libFuzzer/ { f = 1 }
		f && n < 120 { print; n++ }' "$log"
	for f in $found; do
		echo "!! reproducer: $f"
		echo "!!   replay: $bin $f"
		echo "fuzz_$name: $(basename "$f" | cut -d- -f1): $f" >>"$run/failures"
	done
	[ -n "$found" ] ||
		echo "fuzz_$name: exit $rc, no reproducer; see $log" >>"$run/failures"
done
if [ "$status" -eq 0 ]; then
	echo "fuzz: no findings (crash reproducers would be in $run/crashes)"
else
	echo "fuzz: findings:"
	cat "$run/failures"
fi
exit $status
