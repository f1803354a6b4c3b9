#!/usr/bin/env bash
# The host tests with the lowest versions pyproject.toml allows, so that a floor
# too low for the code fails CI.  The floors become a constraints file
# (scripts/lowest_requirements.py) with which kdamon and its test extra are
# installed into a venv of their own.  The venv is kept under
# ~/.cache/kdamon/lowest-deps, keyed by the floors and the interpreter: a first
# install takes about half a minute, a later run only reinstalls kdamon.
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${KDAMON_CACHE:-$HOME/.cache/kdamon}/lowest-deps
mkdir -p "$cache"
constraints=$(mktemp "$cache/constraints.XXXXXX")
trap 'rm -f "$constraints"' EXIT
python3 scripts/lowest_requirements.py test > "$constraints"
key=$( { python3 -c 'import sys; print(sys.version)'; cat "$constraints"; } | sha256sum | cut -c1-16)
venv=$cache/venv-$key
if [ ! -x "$venv/bin/python" ]; then
    rm -rf "$cache"/venv-*
    python3 -m venv "$venv"
fi
echo "== lowest versions:" $(grep -v '^types-' "$constraints" | tr '\n' ' ')
"$venv/bin/python" -m pip install -q --disable-pip-version-check --only-binary :all: \
    -c "$constraints" -e ".[test]"
"$venv/bin/python" -m pip check
# its own example database: one written by a newer hypothesis does not replay with an older one
HYPOTHESIS_STORAGE_DIRECTORY="$venv/hypothesis" "$venv/bin/python" -m pytest -q -p no:cacheprovider tests
