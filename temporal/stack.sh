#!/usr/bin/env bash
# Manages the local stack the tests and the demo run against: PostgreSQL (the
# machine's own service, only started, never stopped), a Temporal dev server, a
# MinIO server and a Mailpit SMTP receiver (built from pinned Go modules by
# build-binaries.sh, run as plain background processes whose data and logs live in
# $STACK_DIR), and the Debian tools the tests drive (system-packages.sh).
# Usage: stack.sh up|down|status|wipe
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TEMPORAL_ADDRESS="$TEMPORAL_HOST:$TEMPORAL_PORT"
TEMPORAL_UI_URL="http://$TEMPORAL_HOST:$TEMPORAL_UI_PORT"
MINIO_URL="http://$MINIO_HOST:$MINIO_PORT"
MINIO_CONSOLE_URL="http://$MINIO_HOST:$MINIO_CONSOLE_PORT"
MAILPIT_SMTP="$MAILPIT_HOST:$MAILPIT_SMTP_PORT"
MAILPIT_URL="http://$MAILPIT_HOST:$MAILPIT_HTTP_PORT"
# MinIO's default region; the S3 signature must name the region the server uses.
S3_REGION=us-east-1
# The first start of the Temporal dev server creates its SQLite schema, which on
# a 2-core machine can take the better part of a minute.
STARTUP_TIMEOUT="${STACK_STARTUP_TIMEOUT:-90}"
STOP_TIMEOUT=15

# The application uses TEMPORAL_NAMESPACE, but workers and the CLI fall back to
# `default`, so both carry the stack's search attributes.
NAMESPACES=(default)
[[ "$TEMPORAL_NAMESPACE" == default ]] || NAMESPACES+=("$TEMPORAL_NAMESPACE")

usage() {
  say "usage: $(basename "$0") up|down|status|wipe"
  say "  up      start PostgreSQL (if installed here), Temporal, MinIO and Mailpit; create the buckets"
  say "  down    stop the Temporal, MinIO and Mailpit servers this script started"
  say "  status  one line per service; exit 0 when all are up, 3 otherwise"
  say "  wipe    down, then delete $STACK_DIR (Temporal history, MinIO objects, mail, logs)"
}

# ---------------------------------------------------------------------------
# Processes this script starts

pid_file() { printf '%s/%s/pid\n' "$STACK_DIR" "$1"; }
log_file() { printf '%s/%s/%s.log\n' "$STACK_DIR" "$1" "$1"; }

# our_pid NAME -> prints the pid of the NAME server this script started, if it is
# still running. Its command line must still name our data folder, so that a pid
# reused by an unrelated process (after a reboot, say) is never taken for ours.
our_pid() {
  local file pid
  file="$(pid_file "$1")"
  [[ -s "$file" ]] || return 1
  pid="$(<"$file")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  ps -ww -o args= -p "$pid" 2>/dev/null | grep -qF -- "$STACK_DIR/$1/" || return 1
  printf '%s\n' "$pid"
}

# start_detached NAME COMMAND... -> runs COMMAND in a session of its own, so it
# outlives this script and a Ctrl-C in the terminal that ran it.
start_detached() {
  local name="$1" file log
  shift
  file="$(pid_file "$name")"
  log="$(log_file "$name")"
  mkdir -p "$(dirname "$file")"
  rm -f "$file"
  # The inner shell records its own pid and then becomes the server (exec): $!
  # would be wrong wherever setsid has to fork.
  # shellcheck disable=SC2016 # expanded by the inner shell
  setsid bash -c 'echo "$$" >"$0" && exec "$@"' "$file" "$@" >>"$log" 2>&1 </dev/null &
  wait_for "$name to record its pid" 10 test -s "$file" || die "could not start $name; see $log"
}

# await_server NAME LABEL CHECK -> waits until CHECK passes, failing with the end
# of the server's log if the process exits or takes longer than STARTUP_TIMEOUT.
await_server() {
  local name="$1" label="$2" check="$3" deadline=$((SECONDS + STARTUP_TIMEOUT))
  until "$check"; do
    our_pid "$name" >/dev/null || fail_with_log "$name" "$label exited during startup"
    if ((SECONDS >= deadline)); then
      fail_with_log "$name" "$label did not become ready within ${STARTUP_TIMEOUT}s (it is still running; \`bash $0 down\` stops it, STACK_STARTUP_TIMEOUT waits longer)"
    fi
    sleep 0.5
  done
}

# bring_up NAME LABEL HOST PORT ADDRESS IDENTIFY READY SIDE_PORT SIDE_LABEL PORT_VARS
# -> NAME's server serving at HOST:PORT: the one this script started, one that
# something else started there (IDENTIFY tells it is such a server), or a new one
# (start_NAME), which also needs SIDE_PORT free; waits until READY passes. A port
# taken by anything else is an error naming the variable that moves it (PORT_VARS:
# "PORT_VAR SIDE_PORT_VAR").
bring_up() {
  local name="$1" label="$2" host="$3" port="$4" address="$5" identify="$6" ready="$7"
  local side_port="$8" side_label="$9" port_var side_port_var pid
  read -r port_var side_port_var <<<"${10}"
  if pid="$(our_pid "$name")"; then
    say "$label: already running (pid $pid)"
  elif port_open "$host" "$port"; then
    "$identify" ||
      die "port $port on $host is taken by something that is not a $label server; stop it or choose another port with $port_var"
    say "$label: already running at $address (not started by this script)"
    return
  else
    if port_open "$host" "$side_port"; then
      die "port $side_port on $host ($side_label) is taken; stop what uses it or choose another port with $side_port_var"
    fi
    say "$label: starting at $address (log: $(log_file "$name"))"
    "start_$name"
  fi
  await_server "$name" "$label" "$ready"
}

fail_with_log() {
  local log
  log="$(log_file "$1")"
  say "--- last 30 lines of $log ---"
  tail -n 30 "$log" >&2 || true
  say "---"
  die "$2"
}

process_gone() { ! kill -0 "$1" 2>/dev/null; }

# stop_server NAME LABEL HOST PORT -> stops the NAME server if this script
# started it; one that something else started is left alone.
stop_server() {
  local name="$1" label="$2" host="$3" port="$4" pid
  if ! pid="$(our_pid "$name")"; then
    rm -f "$(pid_file "$name")"
    if port_open "$host" "$port"; then
      say "$label: something not started by this script answers at $host:$port; left running"
    else
      say "$label: not running"
    fi
    return 0
  fi
  say "$label: stopping pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_for "$label to exit" "$STOP_TIMEOUT" process_gone "$pid"; then
    say "$label: killing it"
    kill -KILL "$pid" 2>/dev/null || true
    wait_for "$label to be killed" 5 process_gone "$pid" || die "could not stop $label (pid $pid)"
  fi
  rm -f "$(pid_file "$name")"
  say "$label: stopped"
}

# ---------------------------------------------------------------------------
# PostgreSQL

pg_answers() {
  if command -v pg_isready >/dev/null; then
    pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -t 3
  else
    port_open "$PG_HOST" "$PG_PORT"
  fi
}

# local_pg_cluster -> "VERSION NAME" of the Debian-packaged cluster that is set up
# for PG_PORT on this machine.
local_pg_cluster() {
  pg_lsclusters --no-header 2>/dev/null |
    awk -v port="$PG_PORT" '$3 == port { print $1, $2; found = 1; exit } END { exit !found }'
}

up_postgres() {
  if pg_answers; then
    say "PostgreSQL: answering at $PG_HOST:$PG_PORT"
    return 0
  fi
  local how="install PostgreSQL 15 (apt-get install postgresql-15), or point PGHOST/PGPORT at a running server"
  case "$PG_HOST" in
    127.0.0.1 | localhost | ::1 | /*) ;;
    *) die "PostgreSQL is not answering at $PG_HOST:$PG_PORT; start it there, or point PGHOST/PGPORT at a running server" ;;
  esac
  if [[ ! -d /etc/postgresql ]] || ! command -v pg_ctlcluster >/dev/null; then
    die "PostgreSQL is not answering at $PG_HOST:$PG_PORT and is not installed here: $how"
  fi
  local cluster
  cluster="$(local_pg_cluster)" ||
    die "PostgreSQL is installed but no cluster is set up for port $PG_PORT (see pg_lsclusters): create one with pg_createcluster, or point PGHOST/PGPORT at a running server"
  say "PostgreSQL: starting cluster $cluster"
  # shellcheck disable=SC2086 # "VERSION NAME" splits into the two arguments
  pg_ctlcluster --skip-systemctl-redirect $cluster start ||
    die "could not start PostgreSQL cluster $cluster (this needs root or the postgres user)"
  wait_for "PostgreSQL at $PG_HOST:$PG_PORT" 30 pg_answers || die "PostgreSQL did not come up"
}

# ---------------------------------------------------------------------------
# Temporal

# temporal_cli ARGS... -> the built Temporal CLI aimed at the local server. The
# developer's own CLI profile or TEMPORAL_* variables (for a cloud namespace, say)
# must not send these calls elsewhere or switch on TLS.
temporal_cli() {
  "$(binary_path temporal)" "$@" \
    --address "$TEMPORAL_ADDRESS" --command-timeout 5s \
    --disable-config-file --disable-config-env
}

temporal_serving() {
  [[ -x "$(binary_path temporal)" ]] || return 1
  temporal_cli operator cluster health 2>/dev/null | grep -qw SERVING
}

namespace_exists() { temporal_cli operator namespace describe --namespace "$1" >/dev/null 2>&1; }

temporal_ui_answers() { curl -fsS -o /dev/null --max-time 3 "$TEMPORAL_UI_URL/" 2>/dev/null; }

temporal_ready() {
  local ns
  temporal_serving || return 1
  for ns in "${NAMESPACES[@]}"; do namespace_exists "$ns" || return 1; done
  temporal_ui_answers
}

start_temporal() {
  local args=(
    server start-dev
    --ip "$TEMPORAL_HOST" --port "$TEMPORAL_PORT" --ui-port "$TEMPORAL_UI_PORT"
    --db-filename "$STACK_DIR/temporal/temporal.db"
    # Workers report heartbeats (shown in the UI's worker list) only when the
    # server accepts them, which this server version does not by default.
    --dynamic-config-value frontend.WorkerHeartbeatsEnabled=true
    --log-format json --log-level warn
  )
  local ns attribute
  for ns in "${NAMESPACES[@]}"; do args+=(--namespace "$ns"); done
  for attribute in "${SEARCH_ATTRIBUTES[@]}"; do args+=(--search-attribute "$attribute"); done
  start_detached temporal "$(binary_path temporal)" "${args[@]}"
}

ensure_namespace() {
  namespace_exists "$1" && return 0
  say "Temporal: creating namespace $1"
  temporal_cli operator namespace create --namespace "$1" >/dev/null
  wait_for "namespace $1" 30 namespace_exists "$1" || die "namespace $1 did not appear"
}

# start-dev registers --search-attribute only on the namespaces it creates at that
# launch; a namespace kept in the SQLite file from an earlier run, or one on a
# server this script did not start, gets the missing ones here.
ensure_search_attributes() {
  local ns="$1" existing entry name
  existing="$(temporal_cli operator search-attribute list --namespace "$ns" | awk 'NR > 1 { print $1 "=" $2 }')" ||
    die "could not list the search attributes of namespace $ns"
  for entry in "${SEARCH_ATTRIBUTES[@]}"; do
    grep -qxF -- "$entry" <<<"$existing" && continue
    name="${entry%%=*}"
    if grep -q "^$name=" <<<"$existing"; then
      die "search attribute $name of namespace $ns has another type than $entry; \`bash $0 wipe\` starts over"
    fi
    say "Temporal: adding search attribute $entry to namespace $ns"
    temporal_cli operator search-attribute create --namespace "$ns" --name "$name" --type "${entry#*=}" >/dev/null
  done
}

up_temporal() {
  bring_up temporal Temporal "$TEMPORAL_HOST" "$TEMPORAL_PORT" "$TEMPORAL_ADDRESS" \
    temporal_serving temporal_ready "$TEMPORAL_UI_PORT" "Temporal Web UI" "STACK_TEMPORAL_PORT STACK_TEMPORAL_UI_PORT"
  temporal_ui_answers || say "Temporal: warning: no Web UI answers at $TEMPORAL_UI_URL"
  local ns
  for ns in "${NAMESPACES[@]}"; do
    ensure_namespace "$ns"
    ensure_search_attributes "$ns"
  done
}

# ---------------------------------------------------------------------------
# MinIO

require_curl() {
  command -v curl >/dev/null || die "curl is needed to check and set up the local stack (apt-get install curl)"
  # --aws-sigv4 signs the S3 request that creates the bucket, with no S3 client.
  local version
  version="$(curl --version | awk 'NR == 1 { print $2 }')"
  [[ "$(printf '%s\n' 7.75.0 "$version" | sort -V | head -n 1)" == 7.75.0 ]] ||
    die "curl $version is too old: creating the bucket needs curl 7.75 or newer (--aws-sigv4)"
}

minio_live() { curl -fsS -o /dev/null --max-time 3 "$MINIO_URL/minio/health/live" 2>/dev/null; }

s3_request() {
  curl -sS --max-time 10 --aws-sigv4 "aws:amz:$S3_REGION:s3" \
    --user "$MINIO_ROOT_USER:$MINIO_ROOT_PASSWORD" "$@"
}

# bucket_exists NAME
bucket_exists() { s3_request -f -o /dev/null -I "$MINIO_URL/$1" 2>/dev/null; }

# kms_secret -> MinIO's static KMS key, `name:base64 of 32 bytes`, made once per stack
# and kept beside its data: objects encrypted with it can only be read with it.
kms_secret() {
  local file="$STACK_DIR/minio/kms-key"
  if [[ ! -s "$file" ]]; then
    (umask 077 && printf '%s:%s\n' "$STACK_KMS_KEY" "$(head -c 32 /dev/urandom | base64)" >"$file")
  fi
  tr -d '\n' <"$file"
}

start_minio() {
  mkdir -p "$STACK_DIR/minio/data"
  (
    export MINIO_ROOT_USER MINIO_ROOT_PASSWORD
    # Keep the server offline: no update checks against the release site, no
    # call-home diagnostics. Quiet mode would also drop the startup banner, which
    # is worth having in the log.
    export MINIO_UPDATE=off MINIO_CALLHOME_ENABLE=off
    # A built-in KMS key, so that server-side encryption (SSE-S3, SSE-KMS) works as
    # on a production store, and the archiver's encryption checks are tested for real.
    MINIO_KMS_SECRET_KEY="$(kms_secret)"
    export MINIO_KMS_SECRET_KEY
    start_detached minio "$(binary_path minio)" server "$STACK_DIR/minio/data" \
      --address "$MINIO_HOST:$MINIO_PORT" --console-address "$MINIO_HOST:$MINIO_CONSOLE_PORT"
  )
}

# ensure_bucket NAME [HEADER] -> creates the bucket unless it exists; HEADER is sent
# with the create (Object Lock can only be turned on when a bucket is made).
ensure_bucket() {
  local name="$1" response status
  local -a extra=()
  [[ -z "${2:-}" ]] || extra=(-H "$2")
  if bucket_exists "$name"; then
    say "MinIO: bucket $name exists"
    return 0
  fi
  response="$(s3_request -X PUT "${extra[@]}" -w '\n%{http_code}' "$MINIO_URL/$name")" ||
    die "could not reach MinIO at $MINIO_URL to create bucket $name"
  status="${response##*$'\n'}"
  # 409 is the answer to a bucket that came into being since the check above;
  # the HEAD below tells whether these credentials can use it.
  [[ "$status" == 200 || "$status" == 409 ]] ||
    die "creating bucket $name failed with HTTP $status: ${response%$'\n'*}"
  bucket_exists "$name" || die "bucket $name is not usable with access key $MINIO_ROOT_USER"
  say "MinIO: created bucket $name"
}

# locked_bucket_ok -> the locked bucket has Object Lock on (versioning comes with it).
locked_bucket_ok() {
  s3_request -f -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' \
    "$MINIO_URL/$STACK_LOCKED_BUCKET?object-lock=" 2>/dev/null | grep -q '<ObjectLockEnabled>Enabled<'
}

# kms_ok -> the running server encrypts: a MinIO started before the stack had a KMS
# key (an older checkout's) refuses the encrypted write. The check object is removed.
kms_ok() {
  local key="$MINIO_URL/$STACK_BUCKET/_stack-kms-check"
  # curl signs no payload hash of its own: the header says the body is not signed.
  s3_request -f -X PUT -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' \
    -H 'x-amz-server-side-encryption: AES256' --data-binary kms-check \
    -o /dev/null "$key" 2>/dev/null || return 1
  s3_request -f -X DELETE -o /dev/null "$key" 2>/dev/null || true
}

ensure_buckets() {
  ensure_bucket "$STACK_BUCKET"
  kms_ok || die "MinIO at $MINIO_URL does not encrypt (it was started without the stack's KMS key): npm run stack:down, then npm run stack:up"
  ensure_bucket "$STACK_LOCKED_BUCKET" 'x-amz-bucket-object-lock-enabled: true'
  locked_bucket_ok || die "bucket $STACK_LOCKED_BUCKET exists without Object Lock; delete it (npm run stack:wipe) and run up again"
}

up_minio() {
  bring_up minio MinIO "$MINIO_HOST" "$MINIO_PORT" "$MINIO_URL" \
    minio_live minio_live "$MINIO_CONSOLE_PORT" "MinIO console" "STACK_MINIO_PORT STACK_MINIO_CONSOLE_PORT"
  ensure_buckets
}

# ---------------------------------------------------------------------------
# Mailpit: receives the notification e-mails of tests and local runs

mailpit_live() { curl -fsS -o /dev/null --max-time 3 "$MAILPIT_URL/api/v1/info" 2>/dev/null; }

start_mailpit() {
  mkdir -p "$STACK_DIR/mailpit"
  # Any SMTP login is accepted (the notifier's credentials are tested, not checked),
  # and no update check leaves the machine.
  start_detached mailpit "$(binary_path mailpit)" --database "$STACK_DIR/mailpit/mailpit.db" \
    --smtp "$MAILPIT_SMTP" --listen "$MAILPIT_HOST:$MAILPIT_HTTP_PORT" \
    --smtp-auth-accept-any --smtp-auth-allow-insecure --disable-version-check
}

up_mailpit() {
  bring_up mailpit Mailpit "$MAILPIT_HOST" "$MAILPIT_SMTP_PORT" "$MAILPIT_SMTP" \
    mailpit_live mailpit_live "$MAILPIT_HTTP_PORT" "Mailpit web API" "STACK_MAILPIT_SMTP_PORT STACK_MAILPIT_HTTP_PORT"
}

# ---------------------------------------------------------------------------
# Commands

# shown_secret -> MinIO's well-known dev password as it is, any other as a hint.
shown_secret() {
  if [[ "$MINIO_ROOT_PASSWORD" == minioadmin ]]; then printf minioadmin; else printf '<your MINIO_ROOT_PASSWORD>'; fi
}

print_summary() {
  cat >&2 <<EOF

Local stack is up.
  Temporal     $TEMPORAL_ADDRESS, namespace $TEMPORAL_NAMESPACE
               Web UI $TEMPORAL_UI_URL
  Mailpit      SMTP $MAILPIT_SMTP, messages at $MAILPIT_URL
  MinIO (S3)   $MINIO_URL (path-style), region $S3_REGION, bucket $STACK_BUCKET
               bucket $STACK_LOCKED_BUCKET (versioning, Object Lock)
               KMS key $STACK_KMS_KEY (SSE-S3 and SSE-KMS)
               console $MINIO_CONSOLE_URL
  PostgreSQL   $PG_HOST:$PG_PORT, user $PG_USER
  Data, logs   $STACK_DIR/temporal, $STACK_DIR/minio and $STACK_DIR/mailpit
               (\`npm run stack:down\` stops the servers, \`npm run stack:wipe\` also deletes this)
Environment the tools expect:
  TEMPORAL_ADDRESS=$TEMPORAL_ADDRESS TEMPORAL_NAMESPACE=$TEMPORAL_NAMESPACE
  AWS_ACCESS_KEY_ID=$MINIO_ROOT_USER AWS_SECRET_ACCESS_KEY=$(shown_secret) AWS_REGION=$S3_REGION
  PGHOST=$PG_HOST PGPORT=$PG_PORT PGUSER=$PG_USER
EOF
}

cmd_up() {
  require_curl
  up_postgres
  # The Debian tools the tests drive (promtool, chromium): installed when missing. The
  # servers do not need them, so a machine that may not install them still gets a stack
  # (the metrics and Web UI tests then fail, naming what is missing).
  bash "$TEMPORAL_DIR/system-packages.sh" ||
    say "warning: promtool and chromium are missing: the metrics and Web UI tests need them (see above)"
  # toxiproxy and kubeconform do not run as services; they are built here so that
  # `npm test` (whose chaos test starts its own toxiproxy, whose deployment test
  # runs kubeconform) finds them on a fresh machine.
  bash "$TEMPORAL_DIR/build-binaries.sh"
  up_temporal
  up_minio
  up_mailpit
  print_summary
}

cmd_down() {
  stop_server temporal Temporal "$TEMPORAL_HOST" "$TEMPORAL_PORT"
  stop_server minio MinIO "$MINIO_HOST" "$MINIO_PORT"
  stop_server mailpit Mailpit "$MAILPIT_HOST" "$MAILPIT_SMTP_PORT"
  say "PostgreSQL: left running (it is the machine's service)"
}

# status_line SERVICE STATE DETAIL
status_line() { printf '%-9s %-5s %s\n' "$@"; }

# owner NAME -> how the running NAME server came to be, for the status line.
owner() {
  local pid
  if pid="$(our_pid "$1")"; then printf '(pid %s)' "$pid"; else printf '(not started by this script)'; fi
}

status_postgres() {
  if pg_answers; then
    status_line postgres up "$PG_HOST:$PG_PORT"
  else
    status_line postgres down "$PG_HOST:$PG_PORT not answering"
    return 1
  fi
}

status_temporal() {
  local ns problem=""
  if [[ ! -x "$(binary_path temporal)" ]]; then
    problem="cannot check: the Temporal CLI is not built (npm run stack:build)"
  elif ! temporal_serving; then
    problem="not serving"
  else
    for ns in "${NAMESPACES[@]}"; do
      namespace_exists "$ns" || problem="namespace $ns missing"
    done
    temporal_ui_answers || problem="${problem:+$problem, }Web UI $TEMPORAL_UI_URL not answering"
  fi
  if [[ -n "$problem" ]]; then
    status_line temporal down "$TEMPORAL_ADDRESS $problem"
    return 1
  fi
  status_line temporal up "$TEMPORAL_ADDRESS, Web UI $TEMPORAL_UI_URL $(owner temporal)"
}

status_minio() {
  if ! minio_live; then
    status_line minio down "$MINIO_URL not answering"
    return 1
  fi
  if ! bucket_exists "$STACK_BUCKET" || ! locked_bucket_ok; then
    status_line minio down "$MINIO_URL answering, but bucket $STACK_BUCKET or $STACK_LOCKED_BUCKET (Object Lock) missing"
    return 1
  fi
  status_line minio up "$MINIO_URL, buckets $STACK_BUCKET and $STACK_LOCKED_BUCKET $(owner minio)"
}

status_mailpit() {
  if ! mailpit_live; then
    status_line mailpit down "$MAILPIT_URL not answering"
    return 1
  fi
  status_line mailpit up "SMTP $MAILPIT_SMTP, API $MAILPIT_URL $(owner mailpit)"
}

cmd_status() {
  require_curl
  local rc=0
  status_postgres || rc=3
  status_temporal || rc=3
  status_minio || rc=3
  status_mailpit || rc=3
  return "$rc"
}

cmd_wipe() {
  cmd_down
  # Guard the recursive delete against an empty or misdirected override.
  case "$STACK_DIR" in
    "" | / | "$HOME" | "$PROJECT_DIR") die "refusing to delete STACK_DIR=$STACK_DIR" ;;
  esac
  rm -rf -- "$STACK_DIR"
  say "Deleted $STACK_DIR (Temporal history, MinIO objects, mail, logs); the built binaries in $CACHE_DIR are kept"
}

main() {
  case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    wipe) cmd_wipe ;;
    *)
      usage
      exit 2
      ;;
  esac
}

main "$@"
