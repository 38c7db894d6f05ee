#!/usr/bin/env bash
# Installs the Debian packages the tests drive, when they are missing: promtool
# (package prometheus; the metrics test runs `promtool check metrics` and `check
# rules`) and chromium (the Web UI browser test drives it with playwright-core).
# Needs root or sudo for apt-get; without either it says what to run and fails.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# command -> Debian package that provides it
declare -A PACKAGE_OF=([promtool]=prometheus [chromium]=chromium)

missing=()
for command in "${!PACKAGE_OF[@]}"; do
  command -v "$command" >/dev/null || missing+=("${PACKAGE_OF[$command]}")
done
((${#missing[@]})) || exit 0

if ((EUID == 0)); then
  apt=(apt-get)
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  apt=(sudo apt-get)
else
  die "the tests need the Debian packages ${missing[*]}; run: sudo apt-get install -y --no-install-recommends ${missing[*]}"
fi
say "Installing Debian packages: ${missing[*]} (first time on this machine only)"
# Only promtool of the prometheus package is used: no test talks to a Prometheus server.
export DEBIAN_FRONTEND=noninteractive
"${apt[@]}" update -qq >/dev/null
"${apt[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
