#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The example model server run directly on loopback, no container: /health
# answers 503 while the simulated model load lasts and 200 after, three
# clearly separated flowers get their species with probabilities summing to
# one, bad bodies, paths and methods get 4xx, garbage and oversized requests
# leave it serving, a missing or malformed weights file stops it at start
# with a message naming the file, and SIGTERM ends it with status 0.
. "$(dirname "$0")/lib.sh"
need curl jq timeout

SERVER=$SHOAL_BUILDDIR/examples/model-server
WEIGHTS=$(cd "$(dirname "$0")/../../examples" && pwd)/iris.txt
[ -x "$SERVER" ] || skip_all "$SERVER not built"

url() { echo "http://127.0.0.1:$PORT$1"; }
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
answers() { [ "$(code "$(url /health)")" != 000 ]; }
alive() { kill -0 "$(pid_of server)" 2>/dev/null; }
predict() { curl -s -d "{\"features\":$1}" "$(url /v1/predict)"; }
healthy() { [ "$(code "$(url /health)")" = 200 ]; }

# start_server ARGS...: on a free port, retried if the port was taken
# between choosing and binding.
start_server() {
	local tries=0
	while :; do
		PORT=$(free_port)
		start server env MODEL_VERSION=test-7 "$SERVER" --bind 127.0.0.1 \
			--port "$PORT" --weights "$WEIGHTS" "$@"
		wait_for 10 answers && return 0
		tries=$((tries + 1))
		[ "$tries" -ge 5 ] && return 1
	done
}

# send_raw FILE: writes FILE on one connection, prints the reply.
send_raw() {
	exec 3<>"/dev/tcp/127.0.0.1/$PORT" || return 1
	cat "$1" >&3 2>/dev/null
	timeout 10 cat <&3
	exec 3<&-
}

start_server --load-delay 3s
ok $? "model-server starts and answers on loopback"
curl -s "$(url /health)" >"$SCRATCH/loading.json"
check "/health is 503 loading while the model loads" \
	json_ok '.status == "loading"' cat "$SCRATCH/loading.json"
check "... with status 503" test "$(code "$(url /health)")" = 503
wait_for 15 healthy
ok $? "/health turns 200 once the load delay has passed"
check "/health names the model and echoes MODEL_VERSION" \
	json_ok '.status == "ok" and .model == "iris" and .version == "test-7"' \
	curl -sf "$(url /health)"

sums_to_one='(.probabilities | length == 3) and
	((.probabilities | add) > 0.999) and ((.probabilities | add) < 1.001)'
check "a small-petalled flower is setosa" \
	json_ok ".class == \"setosa\" and .index == 0 and $sums_to_one" \
	predict '[5.0, 3.5, 1.4, 0.2]'
check "a middling flower is versicolor" \
	json_ok ".class == \"versicolor\" and .index == 1 and $sums_to_one" \
	predict '[5.9, 2.8, 4.2, 1.3]'
check "a large-petalled flower is virginica" \
	json_ok ".class == \"virginica\" and .index == 2 and $sums_to_one" \
	predict '[6.8, 3.1, 5.8, 2.3]'
check "predictions echo MODEL_VERSION" \
	json_ok '.version == "test-7"' predict '[5.0, 3.5, 1.4, 0.2]'

check "three features is 400" \
	test "$(code -d '{"features":[1,2,3]}' "$(url /v1/predict)")" = 400
check "... with an error naming the count" \
	json_ok '.error | test("expected 4 features, got 3")' \
	predict '[1,2,3]'
check "malformed JSON is 400" \
	test "$(code -d '{"features":[1,2,3,4' "$(url /v1/predict)")" = 400
check "numbers as strings are 400" \
	test "$(code -d '{"features":["1",2,3,4]}' "$(url /v1/predict)")" = 400
check "an empty body is 400" \
	test "$(code -X POST "$(url /v1/predict)")" = 400
check "an unknown path is 404" test "$(code "$(url /v2/nothing)")" = 404
check "GET /v1/predict is 405" test "$(code "$(url /v1/predict)")" = 405
check "POST /health is 405" test "$(code -X POST "$(url /health)")" = 405

printf '\026\003\001\002\000\001\000\001\374\003\003garbage\377\376\r\n%.0s' \
	$(seq 200) >"$SCRATCH/garbage"
send_raw "$SCRATCH/garbage" >"$SCRATCH/garbage.reply"
check "binary garbage gets a 400" grep -q '^HTTP/1.1 400' "$SCRATCH/garbage.reply"
printf 'HELLO\r\n\r\n' >"$SCRATCH/bogus"
send_raw "$SCRATCH/bogus" >"$SCRATCH/bogus.reply"
check "a bogus request line gets a 400" grep -q '^HTTP/1.1 400' "$SCRATCH/bogus.reply"
head -c 100000 /dev/zero | tr '\0' 'A' >"$SCRATCH/endless"
send_raw "$SCRATCH/endless" >"$SCRATCH/endless.reply"
check "headers without an end past 64 KiB get a 413" \
	grep -q '^HTTP/1.1 413' "$SCRATCH/endless.reply"
check "an oversized body gets a 413" test "$(code --data-binary \
	@"$SCRATCH/endless" "$(url /v1/predict)")" = 413
exec 4<>"/dev/tcp/127.0.0.1/$PORT"
printf 'POST /v1/predict HTTP/1.1\r\nContent-Length: 50\r\n\r\n{"feat' >&4
check "a client stalled mid-request does not hold up others" \
	json_ok '.class == "setosa"' predict '[5.0, 3.5, 1.4, 0.2]'
exec 4<&-
check "it survives all of that" alive
check "... and still serves" healthy
check "one log line per request" \
	grep -q '"POST /v1/predict" 200' "$SCRATCH/server.log"

kill -TERM "$(pid_of server)"
wait "$(pid_of server)"
ok $? "SIGTERM ends it with status 0"

start_server --fail-health
check "--fail-health keeps /health at 503" \
	test "$(code "$(url /health)")" = 503
kill -TERM "$(pid_of server)"
wait "$(pid_of server)"

"$SERVER" --weights "$SCRATCH/missing.txt" --port "$(free_port)" \
	>"$SCRATCH/missing.out" 2>&1
ok $((! $?)) "a missing weights file stops it"
check "... with a message naming the file" \
	grep -q "$SCRATCH/missing.txt" "$SCRATCH/missing.out"

sed 's/^versicolor .*/versicolor 1.0 2.0 oops 3.0 4.0/' "$WEIGHTS" \
	>"$SCRATCH/bad.txt"
bad_line=$(grep -n '^versicolor ' "$SCRATCH/bad.txt" | cut -d: -f1)
"$SERVER" --weights "$SCRATCH/bad.txt" --port "$(free_port)" \
	>"$SCRATCH/bad.out" 2>&1
ok $((! $?)) "a malformed weights file stops it"
check "... with a message naming the file and the line" \
	grep -q "$SCRATCH/bad.txt:$bad_line: .*oops" "$SCRATCH/bad.out"
head -n "$bad_line" "$WEIGHTS" | head -n -1 >"$SCRATCH/short.txt"
"$SERVER" --weights "$SCRATCH/short.txt" --port "$(free_port)" \
	>"$SCRATCH/short.out" 2>&1
ok $((! $?)) "a truncated weights file stops it"

done_testing
