#!/usr/bin/env bash
# console/test.sh — the console's browser tests: installs (npm ci), type-checks, builds the tests
# with tsc and runs them with `node --test` in Debian's Chromium (playwright-core) against the
# live harness of `scripts/client-env up` ($FLOTILLA_CLIENT_ENV, default
# <repo>/target/client-env/env), whose `flotilla serve` serves the console.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
t0=$(date +%s)
if [[ ! -d node_modules || package-lock.json -nt node_modules/.package-lock.json ]]; then
	npm ci --no-audit --no-fund --loglevel=error
fi
npx --no-install tsc --noEmit -p tsconfig.json
rm -rf build test-results
npx --no-install tsc -p tsconfig.test.json
export FLOTILLA_CLIENT_ENV=${FLOTILLA_CLIENT_ENV:-$(cd .. && pwd)/target/client-env/env}
rc=0
# The test build mirrors the repository under build/ (the tests and the TypeScript client's
# source they are compiled with); the client's own imports resolve from this node_modules.
node --test --test-concurrency=1 --test-reporter=spec "$@" build/console/test/*.test.js || rc=$?
echo "console: $(($(date +%s) - t0)) s (exit $rc)" >&2
exit $rc
