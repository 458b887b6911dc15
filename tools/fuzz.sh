#!/usr/bin/env bash
# Contract fuzzing: the whole service as `make dev --headless` runs it (DynamoDB Local,
# graph-stub, the functions on their real paths), on free ports, then schemathesis against
# openapi.yaml with a development key: examples, coverage, fuzzing and stateful phases, every
# default check, a fixed seed. Any finding fails. Usually run as `make fuzz` (and by `make test`).
#
# Configuration: tools/fuzz/schemathesis.toml (phases, seed, example count, the documented
# exceptions) and tools/fuzz/hooks.py (signs webhook bodies, the refusals the spec declares).
# Environment: FUZZ_MAX_EXAMPLES overrides the example count per operation and phase; FUZZ_SEED
# the seed. The stack's logs and schemathesis' reports go to $FUZZ_DIR (target/fuzz).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH="$ROOT/.venv/bin:$PATH"

DIR=${FUZZ_DIR:-$ROOT/target/fuzz}
say() { echo "fuzz: $*" >&2; }

rm -rf "$DIR"
mkdir -p "$DIR"

# Four distinct free ports (API, DynamoDB Local, graph-stub, webhook-receiver): other stacks and
# tests may run.
read -r API_PORT DYNAMODB_PORT GRAPH_PORT RECEIVER_PORT < <(python3 - <<'PY'
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
PY
)

# dev.sh --headless runs until its standard input closes: hold a pipe to it open on fd 3, so
# the stack also stops when this script dies without running its trap.
STACK_PID=""
FUZZ_PID=""
stop_stack() {
    local status=$?
    trap - EXIT INT TERM HUP
    if [ -n "$FUZZ_PID" ]; then kill -TERM "$FUZZ_PID" 2>/dev/null || true; fi
    exec 3>&- 2>/dev/null || true
    if [ -n "$STACK_PID" ]; then
        # Closing its input is the stop signal; dev.sh notices within a second and stops every
        # process it started. A signal now would cut that cleanup short, so it is only the
        # fallback for a dev.sh that does not end by itself.
        local _
        for _ in $(seq 60); do
            kill -0 "$STACK_PID" 2>/dev/null || break
            sleep 0.5
        done
        kill -TERM "$STACK_PID" 2>/dev/null || true
        wait "$STACK_PID" 2>/dev/null || true
    fi
    exit "$status"
}
trap stop_stack EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

say "starting the stack (API on port $API_PORT; log: $DIR/dev.log) ..."
mkfifo "$DIR/stdin"
# The daily caps are raised for this stack: a thousand generated requests from one key would
# otherwise spend the run on 429s (schemathesis' `rate_limited` warning) instead of reaching
# the code behind them. The caps have their own tests (tests/api/limits.rs, messaging_send.rs,
# webhooks_test.rs).
# Webhook test and redeliver deliver to whatever URL the fuzzer set (private targets are allowed
# locally): a short attempt limit keeps an unresponsive one from slowing the run.
USER_DAILY_SEND_LIMIT=1000000 RECIPIENT_DAILY_SEND_LIMIT=1000000 USER_DAILY_MESSAGE_LIMIT=1000000 \
USER_WEBHOOK_ATTEMPTS_PER_MINUTE=1000000 \
VIRTUAL_DAILY_SEND_LIMIT=1000000 VIRTUAL_DAILY_MESSAGE_LIMIT=1000000 WEBHOOK_TIMEOUT_MS=2000 \
DEV_API_PORT=$API_PORT DEV_DYNAMODB_PORT=$DYNAMODB_PORT DEV_GRAPH_PORT=$GRAPH_PORT \
DEV_RECEIVER_PORT=$RECEIVER_PORT \
    DEV_STATE_DIR="$DIR/stack" tools/dev.sh --headless <"$DIR/stdin" >"$DIR/dev.log" 2>&1 &
STACK_PID=$!
exec 3>"$DIR/stdin"
rm -f "$DIR/stdin"

# A cold machine compiles the functions first.
deadline=$((SECONDS + 15 * 60))
until [ -f "$DIR/stack/stack.env" ]; do
    if ! kill -0 "$STACK_PID" 2>/dev/null; then
        tail -n 30 "$DIR/dev.log" >&2 || true
        say "the stack stopped while starting; its log: $DIR/dev.log"
        exit 1
    fi
    [ "$SECONDS" -lt "$deadline" ] || { say "the stack was not ready within 15 minutes"; exit 1; }
    sleep 0.5
done
set -a
# shellcheck disable=SC1091
. "$DIR/stack/stack.env"
set +a

# The dev key for the session routes, and the app secret hooks.py signs webhook bodies with
# (dev.sh's local-only value).
export FUZZ_API_KEY=$DEV_API_KEY
export FUZZ_APP_SECRET=dev-app-secret

# Hypothesis' own files stay with the run's other outputs, not in the working tree.
export HYPOTHESIS_STORAGE_DIRECTORY=$DIR/hypothesis

# The dev user gets an active session the way a virtual phone gives one (+1 202 555 0158 taps
# Activate once its template is delivered; the phone function plays it from the stream), so
# the messaging operations reach the code behind their 403 `sandbox_session_required` instead
# of answering it to every generated request, and /reply, given its id (`session-ids`), the
# code behind its 400 `session_not_found`. Its phone is in no example or webhook dictionary,
# so no generated STOP ends it early.
say "activating the dev user's session ..."
FUZZ_SESSION_ID=$(python3 - "$DEV_API_URL" "$DEV_API_KEY" <<'PY'
import json, sys, time, urllib.request
url, key = sys.argv[1], sys.argv[2]
def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, method=method, headers={
        "Authorization": "Bearer " + key, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as response:
        return json.load(response)
call("POST", "/v1/whatsapp/sandbox/sessions", {"phone": "+1 202 555 0158"})
deadline = time.time() + 60
while time.time() < deadline:
    sessions = call("GET", "/v1/whatsapp/sandbox/sessions")["sessions"]
    if sessions and sessions[0]["status"] == "active":
        print(sessions[0]["id"])
        sys.exit(0)
    time.sleep(0.5)
sys.exit("fuzz: the dev user's session did not turn active within 60 s")
PY
)
export FUZZ_SESSION_ID
# A webhook of the dev user with one logged delivery, so test, redeliver and recover reach the code
# behind their 404s: its id and the event id are mixed into generated bodies
# (schemathesis.toml, `webhook-ids` and `event-ids`). It points at graph-stub, which answers at
# once; the fuzzer may still change its URL, and the attempt limit above bounds any URL.
say "creating a webhook with one logged delivery ..."
read -r FUZZ_WEBHOOK_ID FUZZ_EVENT_ID < <(python3 - "$DEV_API_URL" "$DEV_API_KEY" "$DEV_GRAPH_PORT" <<'PY'
import json, sys, urllib.request
url, key, graph_port = sys.argv[1], sys.argv[2], sys.argv[3]
def call(method, path, body):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(), method=method, headers={
        "Authorization": "Bearer " + key, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as response:
        return json.load(response)
hook = call("POST", "/v1/webhooks/settings", {
    "name": "fuzz", "url": f"http://127.0.0.1:{graph_port}/fuzz-receiver", "events": ["webhook.test"]})
webhook_id = hook["webhook"]["_id"]
event_id = call("POST", "/v1/webhooks/test", {"webhookId": webhook_id})["eventId"]
print(webhook_id, event_id)
PY
)
export FUZZ_WEBHOOK_ID FUZZ_EVENT_ID

# The content hash the console's page names its assets under (it changes with console/src):
# the asset route's `version` (schemathesis.toml).
FUZZ_CONSOLE_VERSION=$(python3 - "$DEV_API_URL" <<'PY'
import re, sys, urllib.request
with urllib.request.urlopen(sys.argv[1] + "/console", timeout=60) as response:
    print(re.search(r'"console/([0-9a-f]{16})/', response.read().decode())[1])
PY
)
export FUZZ_CONSOLE_VERSION

say "running schemathesis against $DEV_API_URL ..."
args=(--url "$DEV_API_URL" --report junit,har --report-dir "$DIR/report")
[ -z "${FUZZ_MAX_EXAMPLES:-}" ] || args+=(--max-examples "$FUZZ_MAX_EXAMPLES")
[ -z "${FUZZ_SEED:-}" ] || args+=(--seed "$FUZZ_SEED")
# In the background and waited for, so a signal to this script stops everything at once
# (bash runs traps only between foreground commands).
status=0
schemathesis --config-file tools/fuzz/schemathesis.toml run openapi.yaml "${args[@]}" &
FUZZ_PID=$!
wait "$FUZZ_PID" || status=$?
FUZZ_PID=""
if [ "$status" -ne 0 ]; then
    say "FAILED: schemathesis found responses that break openapi.yaml (above); the service's log: $DIR/stack/watch.log"
    exit "$status"
fi
say "passed"
