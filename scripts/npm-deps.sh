#!/usr/bin/env bash
# Installs the npm packages the tests inject into pages (tests/console/js: axe-core), exactly
# as package-lock.json pins them. Without npm it says so and carries on: the browser tests then
# skip with the reason (under CI=true they fail).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
if ! command -v npm >/dev/null 2>&1; then
  echo "npm-deps: npm is not installed (bash scripts/system-deps.sh); axe-core missing" >&2
  exit 0
fi
npm ci --prefix "$here/tests/console/js" --no-audit --no-fund --silent
