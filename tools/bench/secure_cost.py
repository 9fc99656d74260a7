#!/usr/bin/env python3
"""secure_cost.py -- what the hardened mode costs (README: The hardened mode).

Runs the benchmark workloads of run_bench.py (the same programs and work sizes)
under three configurations of our library, alternated run by run with the
order rotated every round, so that a shared machine's noise hits all alike:

  default  the release build's library (build/)
  option   the same library with MIMALLOC_SECURE=1 (the run-time secure option)
  secure   the hardened build's library (-Dsecure=true: build-secure/)

and prints, per workload and configuration, the medians of wall, user and
system time, and the ratios of wall and of user+system time to `default`.
run_bench.py compares allocators (its --env sets a variable for all of them);
this compares the configurations of one, with user and system time apart.

  tools/bench/secure_cost.py [--build build] [--secure-build build-secure]
                             [--rounds 5] [--workloads churn,larson,...] [--quick]

Python 3 standard library only; the workloads come from DIR/tests/bench and
DIR/tools/dbsim of --build (build them first: tools/dev build).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run_bench  # noqa: E402  (the workload table and the children's environment)

CONFIGS = ["default", "option", "secure"]


def run_once(argv: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """(wall, user, system) seconds of one run; raises on a failed run."""
    import time
    t0 = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, env, file_actions=[
        (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0)])
    _, status, ru = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{argv[0]} failed ({os.waitstatus_to_exitcode(status)}) under "
                           f"{env.get('LD_PRELOAD')} {env.get('MIMALLOC_SECURE', '')}")
    return wall, ru.ru_utime, ru.ru_stime


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="secure_cost.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build", help="the release build (default: build)")
    ap.add_argument("--secure-build", default="build-secure", help="the -Dsecure=true build (default: build-secure)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--workloads", help="comma-separated subset of: " + ", ".join(
        w.name for w in run_bench.WORKLOADS if w.kind != "startup"))
    ap.add_argument("--quick", action="store_true", help="run_bench.py's --quick work sizes")
    args = ap.parse_args(argv[1:])

    build, secure_build = Path(args.build), Path(args.secure_build)
    libs = {"default": build / "lib/libmimalloc-numa.so", "option": build / "lib/libmimalloc-numa.so",
            "secure": secure_build / "lib/libmimalloc-numa.so"}
    for name, lib in libs.items():
        if not lib.is_file():
            ap.error(f"{name}: {lib} not built")
    wanted = args.workloads.split(",") if args.workloads else None
    mode = "quick" if args.quick else "default"
    workloads = []
    for w in run_bench.WORKLOADS:
        if w.kind == "startup" or (wanted is not None and w.name not in wanted):
            continue
        work = w.quick_args if args.quick else w.args
        if w.kind == "program":
            exe = build / "tests/bench" / w.prog
        else:
            exe = build / "tools/dbsim/dbsim"
            work = work + ["--ops", str(run_bench.DBSIM_OPS[mode])]
        if not os.access(exe, os.X_OK):
            print(f"secure_cost: {w.name} skipped, {exe} not built", file=sys.stderr)
            continue
        workloads.append((w.name, [str(exe.resolve())] + work))

    base_env = run_bench.child_env({})
    envs = {}
    for name in CONFIGS:
        env = dict(base_env, LD_PRELOAD=str(libs[name].resolve()))
        if name == "option":
            env["MIMALLOC_SECURE"] = "1"
        envs[name] = env

    results: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    for rnd in range(args.rounds):
        for wi, (wname, wargv) in enumerate(workloads):
            k = (rnd + wi) % len(CONFIGS)
            for name in CONFIGS[k:] + CONFIGS[:k]:
                results.setdefault((wname, name), []).append(run_once(wargv, envs[name]))
        print(f"round {rnd + 1}/{args.rounds} done", file=sys.stderr, flush=True)

    print(f"# tools/bench/secure_cost.py {' '.join(argv[1:])}: medians of {args.rounds} rounds, "
          f"configurations alternated run by run")
    print(f"{'workload':9} {'config':8} {'wall s':>8} {'user s':>8} {'sys s':>8} {'wall x':>7} {'cpu x':>7}")
    for wname, _ in workloads:
        base = None
        for name in CONFIGS:
            runs = results[(wname, name)]
            wall = statistics.median(r[0] for r in runs)
            user = statistics.median(r[1] for r in runs)
            sys_ = statistics.median(r[2] for r in runs)
            cpu = statistics.median(r[1] + r[2] for r in runs)
            if base is None:
                base = (wall, cpu)
            print(f"{wname:9} {name:8} {wall:8.3f} {user:8.3f} {sys_:8.3f} "
                  f"{wall / base[0]:6.2f}x {cpu / base[1]:6.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
