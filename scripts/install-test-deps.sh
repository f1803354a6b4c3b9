#!/usr/bin/env bash
# Installs what kdamon's tests need on a Debian machine: QEMU, a static busybox,
# cpio/file/binutils for the guest image, and kdamon with its test extras.
# Kernels are fetched (and cached under ~/.cache/kdamon) by the first guest run.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pkg in qemu-system-x86 busybox-static cpio file binutils debian-archive-keyring; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "== installing ${need[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"
fi
python3 -m pip install -q --disable-pip-version-check -e '.[test,plot]'
