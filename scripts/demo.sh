#!/usr/bin/env bash
# kdamon's main job on a fresh machine: install kdamon from this checkout, record
# the bundled workload (a hot 8 MiB area it keeps writing, a cold 64 MiB one it
# leaves alone) for 10 s, and draw the access heatmap, as a PNG and in the
# terminal.  Kernel DAMON does the monitoring where it can without disturbing
# anyone; kdamon's own engine does it otherwise (kdamon says which and why).
#
#   bash scripts/demo.sh            # writes /tmp/kdamon-demo.kdr and /tmp/kdamon-demo.png
#
# KDAMON_DEMO_DIR changes where the two files go.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${KDAMON_DEMO_DIR:-/tmp}

py=python3
if [ -e "$($py -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')/EXTERNALLY-MANAGED" ]; then
    # The distribution's Python refuses pip installs into itself (PEP 668): use a venv.
    if ! $py -c 'import ensurepip, venv' 2>/dev/null; then
        apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv
    fi
    [ -x .venv/bin/python ] || $py -m venv .venv
    py=.venv/bin/python
fi
echo "== installing kdamon (with matplotlib for PNG heatmaps)"
$py -m pip install -q --disable-pip-version-check -e '.[plot]'

echo "== recording the hot/cold workload for 10 s"
# --uffd: the workload registers its memory for userfaultfd write-protect, which
# lets kdamon's engine see its writes page by page where kernel DAMON is unusable.
# --layout/--ready-file: monitoring starts once the workload has mapped its areas.
layout="$out/kdamon-demo.layout.json"
$py -m kdamon record -o "$out/kdamon-demo.kdr" --duration 10 --ready-file "$layout" -- \
    $py -m kdamon.testing.workloads hot_cold --sizes 16MiB 48MiB --seconds 12 --uffd --layout "$layout"

echo "== drawing the heatmap of the workload's two areas (hot below, cold above)"
range=$($py -c 'import json, sys; l = json.load(open(sys.argv[1])); print("%#x-%#x" % (l["areas"][0][0], l["areas"][1][1]))' "$layout")
$py -m kdamon report heatmap --address-range "$range" --png "$out/kdamon-demo.png" "$out/kdamon-demo.kdr"
$py -m kdamon report heatmap --address-range "$range" --width 64 --height 20 "$out/kdamon-demo.kdr"
echo "== $out/kdamon-demo.png: time runs right, addresses up; the bright band at the bottom is the hot area"
echo "   (all of the process: kdamon report heatmap $out/kdamon-demo.kdr)"
