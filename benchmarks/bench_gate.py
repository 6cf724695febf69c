"""Wall and CPU time of the CI gate, ``gradverify check`` (the default run), at some seeds.

    python benchmarks/bench_gate.py [--seeds 0,101,102,103,104,105] [--jobs N]
                                    [--beside OTHER_PYTHON] [--ops A,B]

Each seed runs as its own ``python -m gradverify check --seed S --plain`` process (default
``--jobs``: one worker per core). Prints per seed: wall time, the CPU time of the run (user
+ system of the process and its workers), the exit status and the load average before and
after, since a machine shared with other jobs stretches the wall time while the CPU time
moves much less. ``--beside`` runs another installation's interpreter (the base commit's
venv) on the same seed right after each run, so before and after share the conditions;
``--ops`` limits the run (a quick look). No timed assertion anywhere: figures for the README.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,101,102,103,104,105")
    ap.add_argument("--jobs", type=int, default=None)
    ap.add_argument("--beside", default=None, help="another Python to run on each seed too")
    ap.add_argument("--ops", default=None)
    args = ap.parse_args(argv)
    pythons = [sys.executable] + ([args.beside] if args.beside else [])
    for seed in (int(s) for s in args.seeds.split(",")):
        for python in pythons:
            cmd = [python, "-m", "gradverify", "check", "--seed", str(seed), "--plain",
                   "--quiet"] + ([] if args.jobs is None else ["--jobs", str(args.jobs)]
                                 ) + ([] if args.ops is None else ["--ops", args.ops])
            load0 = os.getloadavg()[0]
            cpu0, t0 = _children_cpu(), time.perf_counter()
            status = subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL).returncode
            wall, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
            who = "" if len(pythons) == 1 else f" [{python}]"
            print(f"seed {seed}{who}: {wall:.1f} s wall, {cpu:.1f} s CPU, exit {status}, "
                  f"load {load0:.1f} -> {os.getloadavg()[0]:.1f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
