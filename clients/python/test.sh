#!/usr/bin/env bash
# The Python client's suite: a venv cached under target/ (keyed by the pins), the package installed
# from this directory, mypy --strict on the hand-written code, examples and tests, then pytest
# against the live harness (target/client-env/env, or $FLOTILLA_CLIENT_ENV).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
python=${PYTHON:-python3}
pins="$here/requirements-test.txt"
key=$({ cat "$pins"; "$python" --version; } | sha256sum | cut -c1-12)
venv="$repo/target/pyenv-client-$key"
if [[ ! -f "$venv/.complete" ]]; then
	rm -rf "$venv"
	"$python" -m venv "$venv"
	"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$pins"
	# Type stubs of google.rpc; without its dependencies, whose grpc-stubs would clash with the
	# newer types-grpcio above.
	"$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps \
		googleapis-common-protos-stubs==2.3.1
	touch "$venv/.complete"
fi
# The package itself, the way a user installs it (no build isolation: hatchling is pinned above).
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps --no-build-isolation \
	--force-reinstall "$here"
cd "$here"
MYPYPATH=examples:tests "$venv/bin/mypy" --strict --cache-dir "$venv/mypy-cache" \
	src/flotilla/*.py examples tests
export FLOTILLA_CLIENT_ENV=${FLOTILLA_CLIENT_ENV:-$repo/target/client-env/env}
# Run from the tests directory with the installed package (not src/) on the path.
exec "$venv/bin/pytest" -q -p no:cacheprovider "$@" tests
