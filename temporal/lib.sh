# shellcheck shell=bash
# Shared settings for the local-stack scripts in temporal/. Sourced, never run.
# Every value can be overridden from the environment; the defaults are the ones
# the README, the demo config and the tests assume.
# shellcheck disable=SC2034 # the settings are used by the scripts that source this

TEMPORAL_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROJECT_DIR="$(dirname "$TEMPORAL_DIR")"

# Built binaries are cached per machine, outside the checkout, keyed by the pinned
# module version and the go.sum that pins its dependencies.
CACHE_DIR="${AUDIT_ARCHIVER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/audit-archiver}"
# Data and logs of the local servers; `npm run stack:wipe` removes this folder.
STACK_DIR="${AUDIT_ARCHIVER_STACK_DIR:-$PROJECT_DIR/.stack}"

TEMPORAL_HOST="${STACK_TEMPORAL_HOST:-127.0.0.1}"
TEMPORAL_PORT="${STACK_TEMPORAL_PORT:-7233}"
TEMPORAL_UI_PORT="${STACK_TEMPORAL_UI_PORT:-8233}"
TEMPORAL_NAMESPACE="${STACK_TEMPORAL_NAMESPACE:-default}"
MINIO_HOST="${STACK_MINIO_HOST:-127.0.0.1}"
MINIO_PORT="${STACK_MINIO_PORT:-9000}"
MINIO_CONSOLE_PORT="${STACK_MINIO_CONSOLE_PORT:-9001}"
# MinIO's own development defaults; the S3 client reads the same pair through the
# standard AWS variables.
MINIO_ROOT_USER="${MINIO_ROOT_USER:-${AWS_ACCESS_KEY_ID:-minioadmin}}"
MINIO_ROOT_PASSWORD="${MINIO_ROOT_PASSWORD:-${AWS_SECRET_ACCESS_KEY:-minioadmin}}"
STACK_BUCKET="${STACK_BUCKET:-audit-archive}"
# A second bucket made as a compliance bucket is: versioning and S3 Object Lock on.
STACK_LOCKED_BUCKET="${STACK_LOCKED_BUCKET:-audit-archive-locked}"
# The name of the KMS key MinIO encrypts with (SSE-S3, and SSE-KMS naming this key).
STACK_KMS_KEY="${STACK_KMS_KEY:-audit-archiver-key}"
# Mailpit: the SMTP server notification e-mails are delivered to, and its HTTP API
# (and web page) that shows what arrived.
MAILPIT_HOST="${STACK_MAILPIT_HOST:-127.0.0.1}"
MAILPIT_SMTP_PORT="${STACK_MAILPIT_SMTP_PORT:-1025}"
MAILPIT_HTTP_PORT="${STACK_MAILPIT_HTTP_PORT:-8025}"
PG_HOST="${PGHOST:-127.0.0.1}"
PG_PORT="${PGPORT:-5432}"
PG_USER="${PGUSER:-postgres}"

# The custom search attributes every namespace of the stack carries. Keep in step
# with src/shared/search-attributes.ts (a unit test compares the two).
SEARCH_ATTRIBUTES=(ArchiveDatabase=Keyword ArchiveTable=Keyword ArchiveOutcome=Keyword)

say() { printf '%s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# The Go programs the stack runs: folder under temporal/go, module, main package.
# toxiproxy is not a stack service: `npm run chaos` starts its own, in front of
# its private PostgreSQL and MinIO, to inject network faults. kubeconform is a
# tool, not a service: the deployment test validates deploy/ with it.
declare -A GO_MODULE=([temporal]=github.com/temporalio/cli [minio]=github.com/minio/minio
  [toxiproxy]=github.com/Shopify/toxiproxy/v2 [mailpit]=github.com/axllent/mailpit
  [kubeconform]=github.com/yannh/kubeconform)
declare -A GO_PACKAGE=([temporal]=github.com/temporalio/cli/cmd/temporal [minio]=github.com/minio/minio
  [toxiproxy]=github.com/Shopify/toxiproxy/v2/cmd/server [mailpit]=github.com/axllent/mailpit
  [kubeconform]=github.com/yannh/kubeconform/cmd/kubeconform)
declare -A GO_FOLDER=([temporal]=temporal-cli [minio]=minio [toxiproxy]=toxiproxy [mailpit]=mailpit
  [kubeconform]=kubeconform)
# Every binary build-binaries.sh makes when named none.
GO_BINARIES=(temporal minio toxiproxy mailpit kubeconform)

# pinned_version NAME -> the module version that temporal/go/FOLDER/go.mod pins.
pinned_version() {
  awk -v m="${GO_MODULE[$1]}" '$1 == m { print $2 }' "$TEMPORAL_DIR/go/${GO_FOLDER[$1]}/go.mod"
}

# binary_path NAME -> where the binary built from the pinned module is cached. The
# folder name carries the version and a hash of go.mod + go.sum, so changing the pin
# builds anew and never reuses a stale binary.
binary_path() {
  local dir="$TEMPORAL_DIR/go/${GO_FOLDER[$1]}" hash
  hash="$(cat "$dir/go.mod" "$dir/go.sum" | sha256sum | cut -c1-12)"
  printf '%s/bin/%s-%s-%s/%s\n' "$CACHE_DIR" "$1" "$(pinned_version "$1")" "$hash" "$1"
}

# port_open HOST PORT -> exit 0 when something accepts TCP connections there.
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# wait_for DESCRIPTION SECONDS COMMAND... -> polls COMMAND until it succeeds.
wait_for() {
  local what="$1" seconds="$2"; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@"; do
    if ((SECONDS >= deadline)); then
      say "timed out after ${seconds}s waiting for $what"
      return 1
    fi
    sleep 0.3
  done
}
