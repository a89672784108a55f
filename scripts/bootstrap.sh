#!/usr/bin/env bash
# Makes a fresh clone runnable: checks the toolchain, installs pnpm (pinned in
# package.json) when missing, and installs the workspace's dependencies.
# Used by `npm start` and `npm test`; idempotent and quiet when nothing is to do.
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1 || { echo "quire: '$1' is required ($2)" >&2; exit 1; }; }
need node "Node.js 20.19 or newer"
node -e 'const [a,b]=process.versions.node.split(".").map(Number); if (a<20||(a===20&&b<19)) { console.error("quire: Node.js 20.19+ required, found "+process.versions.node); process.exit(1) }'

want=$(node -p 'require("./package.json").packageManager.split("@")[1]')
if ! command -v pnpm >/dev/null 2>&1 || [ "$(pnpm --version)" != "$want" ]; then
  echo "quire: installing pnpm@$want (npm install -g)"
  # Corepack's bundled keys fail to verify pnpm on some machines; npm is reliable.
  npm install -g --no-fund --no-audit "pnpm@$want" >/dev/null
fi

if [ ! -f node_modules/.modules.yaml ] || [ pnpm-lock.yaml -nt node_modules/.modules.yaml ]; then
  echo "quire: installing dependencies (pnpm install)"
  pnpm install --frozen-lockfile --reporter=append-only 2>&1 | tail -5
fi
