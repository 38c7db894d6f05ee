#!/usr/bin/env bash
# Builds the pinned Temporal CLI, MinIO server, Mailpit (the SMTP receiver of the
# notification tests), toxiproxy server (the fault proxy of `npm run chaos`) and
# kubeconform (the manifest validator) from the Go modules kept in temporal/go/ with
# the ordinary Go client, once per machine. A binary already in the cache is reused
# as it is. Usage: build-binaries.sh [temporal] [minio] [toxiproxy] [mailpit] [kubeconform]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

command -v go >/dev/null || die "the Go toolchain is needed to build the local Temporal, MinIO, Mailpit and toxiproxy servers (install Go 1.25 or newer, then run this again)"

build() {
  local name="$1" out version dir
  out="$(binary_path "$name")"
  if [[ -x "$out" ]]; then return 0; fi
  mkdir -p "$(dirname "$out")"
  # Two runs at once (say `npm test` in two terminals on a fresh machine) would
  # both compile into the same .partial file: the second waits for the first and
  # then finds its binary.
  local lock
  exec {lock}>"$out.lock"
  flock "$lock"
  if [[ -x "$out" ]]; then
    exec {lock}>&-
    return 0
  fi
  version="$(pinned_version "$name")"
  dir="$TEMPORAL_DIR/go/${GO_FOLDER[$name]}"
  say "Building $name $version from Go modules into $(dirname "$out")"
  say "  (first time on this machine only; downloading modules and compiling takes several minutes)"
  local ldflags="-s -w"
  if [[ "$name" == temporal ]]; then
    ldflags="$ldflags -X github.com/temporalio/cli/temporalcli.Version=${version#v}"
  elif [[ "$name" == toxiproxy ]]; then
    ldflags="$ldflags -X github.com/Shopify/toxiproxy/v2.Version=${version#v}"
  elif [[ "$name" == mailpit ]]; then
    ldflags="$ldflags -X github.com/axllent/mailpit/config.Version=${version}"
  fi
  local started=$SECONDS
  # -mod=readonly: the build must use exactly what go.sum pins; build to a temporary
  # name and rename, so an interrupted build never leaves a half-written binary.
  (cd "$dir" && CGO_ENABLED=0 go build -mod=readonly -trimpath -ldflags "$ldflags" \
    -o "$out.partial" "${GO_PACKAGE[$name]}")
  mv "$out.partial" "$out"
  exec {lock}>&-
  say "Built $name in $((SECONDS - started))s: $out"
}

names=("$@")
((${#names[@]})) || names=("${GO_BINARIES[@]}")
for name in "${names[@]}"; do
  [[ -n "${GO_MODULE[$name]:-}" ]] || die "unknown binary '$name' (expected one of: ${GO_BINARIES[*]})"
  build "$name"
done
