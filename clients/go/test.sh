#!/usr/bin/env bash
# clients/go/test.sh — the Go client's suite: gofmt, go vet, then `go test` with the live scenario
# against the harness `scripts/client-env up` started (its env file: $FLOTILLA_CLIENT_ENV, else
# <repo>/target/client-env/env). Modules come from the Go module proxy into the module cache
# (`go env GOMODCACHE`), so a warm run downloads nothing.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
REPO_ROOT=$(cd ../.. && pwd)
export FLOTILLA_CLIENT_ENV=${FLOTILLA_CLIENT_ENV:-$REPO_ROOT/target/client-env/env}
if [[ ! -f $FLOTILLA_CLIENT_ENV ]]; then
	echo "clients/go/test.sh: no harness env file at $FLOTILLA_CLIENT_ENV (run scripts/client-env up)" >&2
	exit 1
fi
command -v go >/dev/null || { echo "clients/go/test.sh: go is not installed" >&2; exit 1; }

go mod download
unformatted=$(gofmt -l .)
if [[ -n $unformatted ]]; then
	echo "clients/go/test.sh: not gofmt-clean:" >&2
	echo "$unformatted" >&2
	exit 1
fi
go vet ./...
go test -count=1 "$@" ./...
