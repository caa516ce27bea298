#!/usr/bin/env bash
# clients/typescript/test.sh — installs (npm ci, cached by npm), builds with tsc (dist/ for the
# package, build/ for the tests and examples) and runs the suite with `node --test` against the
# live harness: the env file of `scripts/client-env up` ($FLOTILLA_CLIENT_ENV, default
# <repo>/target/client-env/env).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
t0=$(date +%s)
if [[ ! -d node_modules || package-lock.json -nt node_modules/.package-lock.json ]]; then
	npm ci --no-audit --no-fund --loglevel=error
fi
rm -rf dist build
npx --no-install tsc -p tsconfig.json
npx --no-install tsc -p tsconfig.test.json
export FLOTILLA_CLIENT_ENV=${FLOTILLA_CLIENT_ENV:-$(cd ../.. && pwd)/target/client-env/env}
rc=0
node --test --test-concurrency=1 --test-reporter=spec "$@" build/test/ || rc=$?
echo "clients/typescript: $(($(date +%s) - t0)) s (exit $rc)" >&2
exit $rc
