#!/usr/bin/env bash
# Installs what kdamon's tests need on a Debian machine: QEMU, a static busybox,
# cpio/file/binutils for the guest image, the tools that build the
# linux-6.1-dbgfs kernel (gcc, make, flex, bison, bc, libelf-dev, xz, ccache),
# tmux (the full-screen `kdamon top` test) and zsh (completion in a terminal),
# prometheus (promtool checks the shipped alert rules and dashboard queries),
# and kdamon with its test and man extras.  Kernels
# are fetched or built (and cached under ~/.cache/kdamon) by the first guest run.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pkg in qemu-system-x86 busybox-static cpio file binutils debian-archive-keyring \
           gcc make flex bison bc libelf-dev xz-utils ccache libudev1 tmux zsh prometheus; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "== installing ${need[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"
fi
python3 -m pip install -q --disable-pip-version-check -e '.[test,man]'
