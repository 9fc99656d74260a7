#!/usr/bin/env python3
"""publish_cost.py -- what stats_publish costs (issue 11: within 1% on every workload).

Runs every workload of run_bench.py (the same programs and work sizes, and
/bin/true for start-up) under one library twice, alternated run by run with
the order swapped every round, so that a shared machine's slow phases hit
both alike:

  off  the library as installed by default (stats_publish off)
  on   the same library with MIMALLOC_STATS_PUBLISH=1 (what mi-enable sets;
       a refresh every stats_publish_interval, 1 s by default)

A round's two runs follow each other, so their ratio (on / off) is little
touched by load that changes over minutes; per workload it prints the median
of those paired ratios for wall time and for CPU time (user + system), their
spread (the 25th to 75th percentile of the paired ratios), and a verdict:

  costs N%      even the 25th percentile is above 1.01: a cost to look for
  noise (N%)    the spread is wider than 4%: too wide to tell 1% from 0
                (a busy shared machine: count instructions instead, e.g.
                valgrind --tool=callgrind, as README's "Cost" does)
  within 1%     a tight spread and a median paired ratio of at most 1.01
  N%?           a tight spread, a median above 1.01, the 25th percentile not

  tools/bench/publish_cost.py [--build build] [--lib PATH] [--rounds 9]
                              [--workloads churn,larson,...] [--quick]

The areas are published where the library puts them for the user running
this (as root: /run/mimalloc-numa), and removed as each run exits. Python 3
standard library only; build the workloads first (tools/dev build).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run_bench  # noqa: E402  (the workload table and the children's environment)

CONFIGS = ["off", "on"]


def run_once(argv: list[str], env: dict[str, str], repeat: int) -> tuple[float, float]:
    """(wall, user+system) seconds of `repeat` runs of argv; raises on a failed run."""
    wall = cpu = 0.0
    for _ in range(repeat):
        t0 = time.perf_counter()
        pid = os.posix_spawn(argv[0], argv, env, file_actions=[
            (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0)])
        _, status, ru = os.wait4(pid, 0)
        wall += time.perf_counter() - t0
        cpu += ru.ru_utime + ru.ru_stime
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"{argv[0]} failed ({os.waitstatus_to_exitcode(status)}) with "
                               f"MIMALLOC_STATS_PUBLISH={env.get('MIMALLOC_STATS_PUBLISH', '(unset)')}")
    return wall, cpu


def quartiles(xs: list[float]) -> tuple[float, float]:
    if len(xs) < 4:
        return min(xs), max(xs)
    q = statistics.quantiles(xs, n=4)
    return q[0], q[2]


def verdict(median: float, low: float, high: float) -> str:
    if low > 1.01:
        return f"costs {100 * (median - 1):.1f}%"
    if high - low > 0.04:  # a spread this wide cannot tell 1% from 0
        return f"noise (spread {100 * (high - low):.0f}%)"
    return "within 1%" if median <= 1.01 else f"{100 * (median - 1):.1f}%?"


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="publish_cost.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build", help="the build directory with the workloads (default: build)")
    ap.add_argument("--lib", help="the library (default: BUILD/lib/libmimalloc-numa.so)")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--workloads", help="comma-separated subset of: " + ", ".join(run_bench.WORKLOAD_NAMES))
    ap.add_argument("--quick", action="store_true", help="run_bench.py's --quick work sizes")
    args = ap.parse_args(argv[1:])
    if args.rounds < 1:
        ap.error("--rounds must be >= 1")

    build = Path(args.build)
    lib = Path(args.lib) if args.lib else build / "lib/libmimalloc-numa.so"
    if not lib.is_file():
        ap.error(f"{lib} not built")
    wanted = args.workloads.split(",") if args.workloads else None
    for name in wanted or []:
        if name not in run_bench.WORKLOAD_NAMES:
            ap.error(f"unknown workload '{name}'")
    mode = "quick" if args.quick else "default"
    workloads = []
    for w in run_bench.WORKLOADS:
        if wanted is not None and w.name not in wanted:
            continue
        work = w.quick_args if args.quick else w.args
        if w.kind == "program":
            exe = build / "tests/bench" / w.prog
        elif w.kind == "dbsim":
            exe = build / "tools/dbsim/dbsim"
            work = work + ["--ops", str(run_bench.DBSIM_OPS[mode])]
        else:  # startup: the program is the work
            exe, work = Path(work[0]), []
        if not os.access(exe, os.X_OK):
            print(f"publish_cost: {w.name} skipped, {exe} not built", file=sys.stderr)
            continue
        repeat = (100 if args.quick else w.repeat) if w.kind == "startup" else 1
        workloads.append((w.name, [str(exe.resolve())] + work, repeat))

    base_env = run_bench.child_env({"LD_PRELOAD": str(lib.resolve())})
    envs = {"off": base_env, "on": dict(base_env, MIMALLOC_STATS_PUBLISH="1")}

    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for rnd in range(args.rounds):
        for wi, (wname, wargv, repeat) in enumerate(workloads):
            order = CONFIGS if (rnd + wi) % 2 == 0 else CONFIGS[::-1]
            for name in order:
                results.setdefault((wname, name), []).append(run_once(wargv, envs[name], repeat))
        print(f"round {rnd + 1}/{args.rounds} done", file=sys.stderr, flush=True)

    load = os.getloadavg()
    print(f"# tools/bench/publish_cost.py {' '.join(argv[1:])}: {args.rounds} rounds, off and on alternated "
          f"run by run; load average at the end {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    print("# time: median of the rounds (startup: per exec); on/off: median of the paired ratios, "
          "[25th-75th percentile]")
    print(f"| workload | off wall | on wall | on/off wall | off cpu | on cpu | on/off cpu | verdict (cpu) |")
    print(f"|:---|---:|---:|:---|---:|---:|:---|:---|")
    for wname, _, repeat in workloads:
        off, on = results[(wname, "off")], results[(wname, "on")]
        unit, scale = ("ms", 1000.0 / repeat) if repeat > 1 else ("s", 1.0)
        cells = []
        for i in (0, 1):
            ratios = [b[i] / a[i] for a, b in zip(off, on) if a[i] > 0]
            lo, hi = quartiles(ratios)
            med = statistics.median(ratios)
            cells.append((statistics.median(r[i] for r in off) * scale, statistics.median(r[i] for r in on) * scale,
                          med, lo, hi))
        (ow, nw, rw, lw, hw), (oc, nc, rc, lc, hc) = cells
        print(f"| {wname} | {ow:.3f} {unit} | {nw:.3f} {unit} | {rw:.3f} [{lw:.3f}-{hw:.3f}] | "
              f"{oc:.3f} {unit} | {nc:.3f} {unit} | {rc:.3f} [{lc:.3f}-{hc:.3f}] | {verdict(rc, lc, hc)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
