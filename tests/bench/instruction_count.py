#!/usr/bin/env python3
"""Instructions per malloc+free pair, counted exactly with callgrind.

Counts only what runs inside malloc and free (callgrind --toggle-collect on
both: their callees, the slow paths, included; the program's loop and the
PLT jumps not), for two run lengths, and takes the difference per extra
pair, so start-up and the final frees cancel out. Callgrind's counts are
deterministic: this is a test, not a timing (issue 12).

  instruction_count.py check  --pairs PAIRS --lib LIB --golden FILE
      fails (exit 1) when a count is more than 3% above its golden figure;
      says so when one is more than 3% below (update the golden file then);
      exit 77 (skipped) without valgrind.
  instruction_count.py update --pairs PAIRS --lib LIB --golden FILE
      writes the counts measured into FILE.
  instruction_count.py compare --pairs PAIRS [--lib NAME=PATH ...]
      a table of every pattern for each allocator given and the others
      installed (Debian's mimalloc, jemalloc, tcmalloc; glibc).
  --nodes N (check, update): our library on a topology of N nodes of one
      CPU each (HWLOC_SYNTHETIC), the program pinned to one CPU so that it
      never moves between nodes: the paths that ask on every slow path
      whether the thread moved (the machines our users run). The remote
      pattern is left out there (its two threads' CPUs are the OS's choice);
      remote-node takes its place where CPUs 0 and 1 may be used: the
      allocating thread on CPU 1 (node 1), the freeing one on CPU 0 (node 0),
      every free one into another node's page (said and left out without
      those two CPUs).
      Valgrind refuses the rseq area glibc registers, so these counts take
      the fallback that asks sched_getcpu() (a system call under valgrind);
      with an rseq area the CPU is two loads.

Patterns (tests/bench/instructions/pairs.c): immediate SIZE (the page
empties on every free), ring SIZE (1000 live blocks), cycle (the ring with
sizes 16..128 in turn), remote SIZE (another thread allocates, this one
frees: every free a remote free; the threads take turns, so the count is
deterministic; 4096: the allocating thread's first page has nothing when it
comes back, its queue is searched), random SIZE (1000 live blocks, a random one freed
and replaced at each step: a cache's evictions); sizes 16-128 (the direct pages' fast paths) and 4096,
32768 (the queue-first path of heap_malloc_slow for sizes above 1 KiB).
"""
import argparse
import ctypes
import os
import re
import shutil
import subprocess
import sys
import tempfile

# 4096 and 32768: the sizes with no direct page (1 KiB - 128 KiB), which
# heap_malloc_slow serves from the first page of their queue (RocksDB's 4 KiB
# block-cache blocks; the medium pages of mixed 8 B - 512 KiB)
PATTERNS = ([("immediate", s) for s in (16, 32, 64, 128)] + [("ring", s) for s in (16, 32, 64, 128)] +
            [("cycle", None)] + [("immediate", 4096), ("ring", 4096), ("ring", 32768), ("random", 4096)] +
            [("remote", 64), ("remote", 4096)])
TOLERANCE = 0.03
SHORT, LONG = 20000, 40000

OTHERS = [
    ("mimalloc-2.0", "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2"),
    ("jemalloc", "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"),
    ("tcmalloc", "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"),
    ("glibc", None),
]


def name_of(pattern, size):
    return pattern if size is None else f"{pattern}-{size}"


def collected(pairs, lib, pattern, size, n, tmp, nodes=1):
    """Instructions inside malloc and free for one run of n pairs."""
    args = [pairs, pattern] + ([] if size is None else [str(size)]) + [str(n)]
    out = os.path.join(tmp, "cg.out.%p")
    cmd = ["valgrind", "--tool=callgrind", "--toggle-collect=malloc", "--toggle-collect=free",
           f"--callgrind-out-file={out}"]
    env = dict(os.environ)
    for k in list(env):
        if k.startswith("MIMALLOC_") or k.startswith("HWLOC_") or k in ("LD_PRELOAD", "MALLOC_PERTURB_"):
            del env[k]
    pin = None
    if nodes > 1:
        env["HWLOC_SYNTHETIC"] = f"node:{nodes} core:1 pu:1"
        cpu = min(os.sched_getaffinity(0))
        pin = lambda: os.sched_setaffinity(0, {cpu})  # noqa: E731 (one node for the whole run)
    if lib is not None:
        # the program only: `env` sets LD_PRELOAD for it, valgrind follows
        cmd += ["--trace-children=yes", "env", f"LD_PRELOAD={lib}"]
    r = subprocess.run(cmd + args, env=env, capture_output=True, text=True, preexec_fn=pin)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd + args)} exited {r.returncode}:\n{r.stderr[-2000:]}")
    # the last "Collected" line is the program's (env, when used, comes first)
    found = re.findall(r"Collected : (\d+)", r.stderr)
    if not found:
        raise RuntimeError(f"no 'Collected' line from callgrind:\n{r.stderr[-2000:]}")
    for f in os.listdir(tmp):
        os.unlink(os.path.join(tmp, f))
    return int(found[-1])


def per_pair(pairs, lib, pattern, size, tmp, nodes=1):
    a = collected(pairs, lib, pattern, size, SHORT, tmp, nodes)
    b = collected(pairs, lib, pattern, size, LONG, tmp, nodes)
    return (b - a) / (LONG - SHORT)


def measure(pairs, lib, nodes=1):
    patterns = [(p, s) for p, s in PATTERNS if nodes == 1 or p != "remote"]
    if nodes > 1:
        if {0, 1} <= os.sched_getaffinity(0):
            patterns += [("remote-node", 64), ("remote-node", 4096)]
        else:
            print("remote-node-64 and -4096 left out: they need CPUs 0 and 1 (one on each node)")
    with tempfile.TemporaryDirectory() as tmp:
        return {name_of(p, s): per_pair(pairs, lib, p, s, tmp, nodes) for p, s in patterns}


def read_golden(path):
    golden = {}
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                name, count = line.split()
                golden[name] = float(count)
    return golden


def write_golden(path, counts, nodes):
    on = "" if nodes == 1 else f" --nodes {nodes}"
    with open(path, "w") as f:
        f.write("# Instructions per malloc+free pair inside malloc and free (callgrind), one pattern per line.\n")
        if nodes > 1:
            f.write(f"# On a topology of {nodes} nodes (HWLOC_SYNTHETIC; see instruction_count.py --nodes).\n")
        f.write("# tests/bench/instruction_count.py fails when a count grows by more than 3%.\n"
                "# Regenerate after a deliberate change:\n"
                f"#   tests/bench/instruction_count.py update{on} --pairs build/tests/bench/pairs \\\n"
                f"#     --lib build/lib/libmimalloc-numa.so --golden tests/bench/{os.path.basename(path)}\n")
        for name, count in counts.items():
            f.write(f"{name} {count:.1f}\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["check", "update", "compare"])
    ap.add_argument("--pairs", required=True, help="the pairs program (built from tests/bench/instructions/pairs.c)")
    ap.add_argument("--lib", action="append", default=[],
                    help="our library (check, update); NAME=PATH, repeatable (compare)")
    ap.add_argument("--golden", help="the golden file (check, update)")
    ap.add_argument("--nodes", type=int, default=1, help="our library on a synthetic topology of N nodes (check, update)")
    a = ap.parse_args()
    if shutil.which("valgrind") is None:
        print("SKIP: valgrind is not installed (Debian: apt-get install valgrind)")
        return 77
    if a.nodes > 1:
        try:
            ctypes.CDLL("libhwloc.so.15")  # what the library loads for HWLOC_SYNTHETIC (topology.cpp)
        except OSError:
            print("SKIP: libhwloc.so.15 cannot be loaded: no synthetic topology (Debian: apt-get install libhwloc15)")
            return 77
    if a.command in ("check", "update"):
        if len(a.lib) != 1 or not a.golden:
            ap.error(f"{a.command} needs one --lib and --golden")
        counts = measure(a.pairs, a.lib[0], a.nodes)
        if a.command == "update":
            write_golden(a.golden, counts, a.nodes)
            for name, c in counts.items():
                print(f"{name:14} {c:7.1f}")
            return 0
        golden = read_golden(a.golden)
        failed = []
        for name, c in counts.items():
            g = golden.get(name)
            if g is None:
                failed.append(f"{name}: {c:.1f} instructions, no golden figure (run 'update')")
                continue
            verdict = "ok"
            if c > g * (1 + TOLERANCE):
                verdict = f"GREW by {100 * (c / g - 1):.1f}% (more than {100 * TOLERANCE:.0f}%)"
                failed.append(f"{name}: {c:.1f} instructions, golden {g:.1f}: {verdict}")
            elif c < g * (1 - TOLERANCE):
                verdict = f"fell by {100 * (1 - c / g):.1f}%: update the golden file"
            print(f"{name:14} {c:7.1f}  golden {g:7.1f}  {verdict}")
        if failed:
            print("FAIL:\n  " + "\n  ".join(failed))
            print(f"(a deliberate change: regenerate {a.golden} as its header says)")
            return 1
        return 0
    # compare
    libs = []
    for spec in a.lib:
        name, _, path = spec.partition("=")
        libs.append((name, path))
    libs += [(n, p) for n, p in OTHERS if p is None or os.path.exists(p)]
    table = {name: measure(a.pairs, path) for name, path in libs}
    names = [name_of(p, s) for p, s in PATTERNS]
    print("| pattern | " + " | ".join(n for n, _ in libs) + " |")
    print("|---|" + "---|" * len(libs))
    for pat in names:
        print(f"| {pat} | " + " | ".join(f"{table[n][pat]:.1f}" for n, _ in libs) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
