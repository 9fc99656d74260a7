#!/usr/bin/env python3
"""compare.py: user time, system time and peak RSS of the purge-policy shapes
under several allocators, alternated, medians over the rounds.

usage: compare.py [--rounds N] [--build DIR] [--lib NAME=PATH ...] [--only W1,W2]

Workloads: churn (tools/bench/purge/thread_churn.c, compiled here with cc),
larson (tests/bench/larson_bench as tools/bench/run_bench.py runs it),
larson-replace (the same, threads replaced every epoch: the classic larson's
short-lived threads), xthread (tests/bench/xthread_bench), dbsim
(tools/dbsim, as run_bench.py), stranded (tools/bench/purge/stranded.c).
Each run goes through /usr/bin/time; the allocator is preloaded for the
program only. Rounds rotate the allocators' order."""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
PEERS = [
    ("glibc", ""),
    ("mimalloc-2.0.9", "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2.0"),
    ("jemalloc", "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"),
    ("tcmalloc", "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--lib", action="append", default=[], help="NAME=PATH (default: ours=BUILD/lib/libmimalloc-numa.so)")
    ap.add_argument("--only", default="")
    ap.add_argument("--no-peers", action="store_true", help="only the libraries given with --lib")
    ap.add_argument("--quick", action="store_true", help="a third of the work (a loaded machine)")
    ap.add_argument("--env", action="append", default=[], help="NAME:KEY=VALUE, for one allocator's runs")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="purge-compare-")
    progs = {}
    for name in ("thread_churn", "stranded"):
        out = os.path.join(tmp, name)
        subprocess.run(["cc", "-O2", "-pthread", "-o", out, os.path.join(HERE, name + ".c")], check=True)
        progs[name] = out
    b = a.build
    workloads = {
        "churn": [progs["thread_churn"], "1000"],
        "larson": [f"{b}/tests/bench/larson_bench", "--epochs", "1000"],
        "larson-replace": [f"{b}/tests/bench/larson_bench", "--epochs", "2000", "--thread-epochs", "1", "--min", "8",
                           "--max", "1000", "--slots", "5000", "--epoch-ops", "5000"],
        "xthread": [f"{b}/tests/bench/xthread_bench", "--count", "3000000"],
        "dbsim": [f"{b}/tools/dbsim/dbsim", "--threads", "4", "--seed", "42", "--ops", "600000"],
        "stranded": [progs["stranded"], "256", "200"],
    }
    if a.quick:
        workloads["churn"][1] = "400"
        workloads["larson"][2] = "300"
        workloads["larson-replace"][2] = "700"
        workloads["xthread"][2] = "1000000"
        workloads["dbsim"][-1] = "200000"
    if a.only:
        workloads = {k: v for k, v in workloads.items() if k in a.only.split(",")}
    allocs = [] if a.no_peers else list(PEERS)
    libs = a.lib or [f"ours={b}/lib/libmimalloc-numa.so"]
    for spec in libs:
        name, path = spec.split("=", 1)
        allocs.append((name, os.path.abspath(path)))
    extra = {}
    for spec in a.env:
        name, kv = spec.split(":", 1)
        k, v = kv.split("=", 1)
        extra.setdefault(name, {})[k] = v
    res = {}
    for r in range(a.rounds):
        order = allocs[r % len(allocs):] + allocs[:r % len(allocs)]
        for w, argv in workloads.items():
            for name, lib in order:
                env = {k: v for k, v in os.environ.items() if not k.startswith(("MIMALLOC_", "LD_PRELOAD", "MALLOC_"))}
                if lib:
                    env["LD_PRELOAD"] = lib
                env.update(extra.get(name, {}))
                p = subprocess.run(["/usr/bin/time", "-f", "@@ %e %U %S %M %R"] + argv, env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                line = [l for l in p.stderr.splitlines() if l.startswith("@@ ")]
                if p.returncode != 0 or not line:
                    print(f"FAILED {w} {name}: {p.stderr[-500:]}", file=sys.stderr)
                    continue
                e, u, s, m, f = line[-1].split()[1:]
                res.setdefault((w, name), []).append((float(e), float(u), float(s), int(m) / 1024.0, int(f)))
        print(f"round {r + 1} done", file=sys.stderr)
    print(f"medians of {a.rounds} alternated rounds (load average now {os.getloadavg()[0]:.1f})")
    print("| workload | allocator | user s | system s | peak RSS MiB | minor faults | wall s |")
    print("|---|---|---|---|---|---|---|")
    for w in workloads:
        for name, _ in allocs:
            v = res.get((w, name))
            if not v:
                continue
            med = [statistics.median(x[i] for x in v) for i in range(5)]
            print(f"| {w} | {name} | {med[1]:.2f} | {med[2]:.3f} | {med[3]:.1f} | {med[4]:.0f} | {med[0]:.2f} |")


if __name__ == "__main__":
    main()
