"""Wall time of `kdamon start` and `kdamon status` beside the peer's `damo start` and
`damo report damon`, in the same TCG guest (Debian 6.12 by default).

The peer is damo 3.4.3 from PyPI (pure Python): its wheel is fetched with
`pip download` into ~/.cache/kdamon/bench (never committed) and shared into the
guest.  Both tools' sources are compiled to bytecode first (as pip does on
install; the guest's copies are read-only).  Each round resets DAMON, starts a sleeping target process, and times
each command as a fresh process, the way a user or a script runs it (both tools
as their console scripts run them: import the main function and call it); the peer's
first round runs without its feature cache (~/.damo.damon_feature_supports),
as on a machine where it never ran.  Prints every round and the medians.
Target: kdamon at most 1/3 of the peer's time.  It also times the interpreter
alone and ``import attrs`` (the library of kdamon's model classes): the floor
of any Python command built on that model in this guest.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from kdamon.vm import run

DAMO_VERSION = "3.4.3"
CACHE = Path.home() / ".cache" / "kdamon" / "bench"
MARK = "CLI-LATENCY "

GUEST_SCRIPT = r"""
import json, os, subprocess, sys, tempfile, time
from pathlib import Path

DAMO_DIR, ROUNDS = sys.argv[1], int(sys.argv[2])
KDAMONDS = Path("/sys/kernel/mm/damon/admin/kdamonds")
DAMO = [sys.executable, "-c", "import sys; from damo.damo import main; sys.argv[0] = 'damo'; main()"]
KDAMON = [sys.executable, "-c", "import sys; from kdamon.cli.main import main; sys.exit(main())"]
env = dict(os.environ, PYTHONPATH=DAMO_DIR + os.pathsep + os.environ.get("PYTHONPATH", ""),
           HOME=tempfile.mkdtemp(),  # damo keeps its feature cache in $HOME
           PYTHONPYCACHEPREFIX="/tmp/pycache")  # the shared sources are read-only copies
env.pop("PYTHONDONTWRITEBYTECODE", None)
# Installed packages come with their bytecode: compile both tools once, as pip would.
import kdamon
for tree in (os.path.dirname(kdamon.__file__), DAMO_DIR):
    subprocess.run([sys.executable, "-m", "compileall", "-q", tree], env=env, check=True)

def write(path, value):
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)

def reset():
    for i in range(int((KDAMONDS / "nr_kdamonds").read_text())):
        if (KDAMONDS / str(i) / "state").read_text().strip() == "on":
            write(KDAMONDS / str(i) / "state", "off")
    write(KDAMONDS / "nr_kdamonds", "0")

def timed(cmd):
    start = time.monotonic()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    elapsed = time.monotonic() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[-3:])} failed: {done.stderr.strip()[-500:]}")
    return elapsed

target = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
pid = str(target.pid)
for round_ in range(ROUNDS):
    reset()
    figures = {"round": round_}
    figures["kdamon start"] = timed(KDAMON + ["start", "--target-pid", pid])
    figures["kdamon status"] = timed(KDAMON + ["status"])
    timed(KDAMON + ["stop"])
    reset()
    if round_ == 0:
        Path(env["HOME"], ".damo.damon_feature_supports").unlink(missing_ok=True)
    figures["damo start"] = timed(DAMO + ["start", pid])
    figures["damo report damon"] = timed(DAMO + ["report", "damon"])
    timed(DAMO + ["stop"])
    # The floor under any Python CLI built on an attrs model, in this guest.
    figures["python3 -c pass"] = timed([sys.executable, "-c", "pass"])
    figures["import attrs"] = timed([sys.executable, "-c", "import attrs"])
    print("CLI-LATENCY " + json.dumps(figures), flush=True)
reset()
target.kill()
"""


def damo_dir() -> Path:
    """damo's unpacked wheel, fetched once with pip."""
    unpacked = CACHE / f"damo-{DAMO_VERSION}"
    if (unpacked / "damo" / "damo.py").exists():
        return unpacked
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", f"damo=={DAMO_VERSION}", "-d", str(CACHE)],
        check=True,
    )
    [wheel] = CACHE.glob(f"damo-{DAMO_VERSION}-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(unpacked)
    return unpacked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kernel", default="debian-6.12")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    damo = damo_dir()
    rounds: list[dict[str, float]] = []

    def out(line: str) -> None:
        if line.startswith(MARK):
            rounds.append(json.loads(line[len(MARK) :]))

    with tempfile.TemporaryDirectory(prefix="kdamon-bench-") as tmp:
        script = Path(tmp) / "cli_latency_guest.py"
        script.write_text(GUEST_SCRIPT)
        result = run(
            ["python3", str(script), str(damo), str(args.rounds)],
            kernel=args.kernel,
            share=[damo, Path(tmp)],
            output=out,
            timeout=1800,
        )
    if result.exit_code != 0 or len(rounds) != args.rounds:
        raise SystemExit(f"the guest run failed (exit {result.exit_code}); console log {result.console_log}")
    names = ("kdamon start", "damo start", "kdamon status", "damo report damon")
    print(f"kernel {args.kernel}, TCG guest unless KVM works here; wall seconds per command (fresh process)")
    print("round  " + "  ".join(f"{n:>18}" for n in names))
    for r in rounds:
        print(f"{int(r['round']):5}  " + "  ".join(f"{r[n]:18.2f}" for n in names))
    median = {n: statistics.median(r[n] for r in rounds) for n in names}
    print("median " + "  ".join(f"{median[n]:18.2f}" for n in names))
    for ours, theirs in (("kdamon start", "damo start"), ("kdamon status", "damo report damon")):
        ratio = median[ours] / median[theirs]
        verdict = "meets" if ratio <= 1 / 3 else "misses"
        print(
            f"{ours}: {ratio:.2f} of {theirs} (first round {rounds[0][ours] / rounds[0][theirs]:.2f}); "
            f"{verdict} the target of at most 0.33"
        )
    interpreter = statistics.median(r["python3 -c pass"] for r in rounds)
    floor = statistics.median(r["import attrs"] for r in rounds)
    print(
        f"floor: a process that only imports attrs (the model's class library) takes {floor:.2f} s "
        f"(the interpreter alone {interpreter:.2f} s): {floor / median['damo start']:.2f} of damo start and "
        f"{floor / median['damo report damon']:.2f} of damo report damon before kdamon runs a line"
    )


if __name__ == "__main__":
    main()
