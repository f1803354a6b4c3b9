#!/usr/bin/env bash
# The test command: installs what the tests need, then runs every test:
# type checks, host tests (also with the lowest dependency versions allowed),
# and the guest tests on each kernel of the matrix.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh

echo "== mypy"
python3 -m mypy

echo "== ruff (lint and format)"
python3 -m ruff check .
python3 -m ruff format --check .

# Five runs in a row: a test that fails one run in a few shows up here, not weeks later
# (a run takes about 2.5 min on two shared cores).  The runs after the first leave out the
# runner tests that boot guests (tests/vm, about 1.5 min): the guest steps below
# boot guests many times over.
runs=${KDAMON_HOST_TEST_RUNS:-5}
for run in $(seq 1 "$runs"); do
    echo "== host tests, run $run of $runs"
    if [ "$run" -eq 1 ]; then
        python3 -m pytest -q -p no:cacheprovider tests
    else
        python3 -m pytest -q -p no:cacheprovider tests --ignore=tests/vm
    fi
done

echo "== host tests with the lowest versions pyproject.toml allows"
bash scripts/test-lowest-deps.sh

# linux-6.1-dbgfs is built from source on first use (about 11 min on two cores
# cold, a few minutes with a warm ccache: keep ~/.cache/kdamon between CI runs).
for kernel in ${KDAMON_TEST_KERNELS:-debian-6.12 debian-7.3 linux-6.1-dbgfs}; do
    echo "== guest tests on $kernel"
    python3 -m kdamon vm run --kernel "$kernel" --timeout 1500 -- \
        python3 -m pytest -q -p no:cacheprovider tests/guest
done

echo "== kdamon check on the kernel matrix"
check_out=$(mktemp -d)
python3 -m kdamon check --kernel debian-6.12 --kernel debian-7.3 --kernel linux-6.1-dbgfs \
    --junit "$check_out/kdamon-check.xml" --json "$check_out/kdamon-check.json"
echo "kdamon check: JUnit XML in $check_out/kdamon-check.xml"
