#!/usr/bin/env bash
# Installs the Debian packages devicegate's demo and tests need, when missing.
# Package lists live in scripts/deps/*.txt (one package per line, `#` comments), one file per
# feature. Needs root (or passwordless sudo) for apt; without either it says what is missing and
# carries on, so tests needing those servers skip with the reason (under CI=true they fail).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

mapfile -t PACKAGES < <(cat "$here"/deps/*.txt | sed 's/#.*//' | tr -s ' \t' '\n' | sed '/^$/d' | sort -u)

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
  echo "system-deps: not root; missing Debian packages: ${missing[*]} (tests that need them will skip)" >&2
  exit 0
fi
echo "system-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Servers are started by the tests themselves; keep the packages from starting their own.
policy_rc=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy_rc" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy_rc" >/dev/null && $SUDO chmod +x "$policy_rc"
  created_policy=1
fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
[ "$created_policy" -eq 1 ] && $SUDO rm -f "$policy_rc"
exit 0
