#!/usr/bin/env bash
# The test command: installs what the tests need, then runs every test:
# type checks, host tests, and the guest tests on each kernel of the matrix.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh

echo "== mypy"
python3 -m mypy

echo "== host tests"
python3 -m pytest -q -p no:cacheprovider tests

for kernel in ${KDAMON_TEST_KERNELS:-debian-6.12 debian-7.3}; do
    echo "== guest tests on $kernel"
    python3 -m kdamon vm run --kernel "$kernel" --timeout 1500 -- \
        python3 -m pytest -q -p no:cacheprovider tests/vm
done
