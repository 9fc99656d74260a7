#!/usr/bin/env python3
"""run_bench.py -- benchmark driver of mimalloc-numa (`tools/dev bench` runs it).

Runs every benchmark workload under glibc's malloc and, through LD_PRELOAD, under
Debian's mimalloc, jemalloc and tcmalloc and under our libmimalloc-numa.  The
allocators are alternated run by run: in every round each workload is run once
per allocator, the order rotated from round to round (and workload to workload),
so the noise of a shared machine hits every allocator alike.  The table quotes
medians over the rounds and ratios to mimalloc; a summary says where ours meets
the project's targets (time and peak RSS within 1.10x of mimalloc, faster than
glibc; LD_PRELOAD start-up within 1 ms of glibc).  The summary is informational:
the exit status is 0 unless a run failed (or the arguments were bad).

Workloads (built from tests/bench/ by meson, `DIR/tests/bench/<name>_bench`):
  churn    single-thread small-object churn, 16-512 B
  larson   larson-like server: 2 threads, arrays handed over, remote frees
  xthread  producer/consumer cross-thread free through an SPSC ring
  realloc  realloc growth from 8 B to several MiB (string builders, vectors)
  mixed    mixed sizes up to 1 MiB (log-uniform), 2 threads
  segment  segment-sized and huge objects (1-64 MiB), 2 threads: arena/purge paths
  threadchurn  short-lived threads, 2 at a time, each handing its surviving blocks on
  xfree    64 B blocks allocated by one thread, freed by the other in batches
  mixed512k  1 thread, 10 000 live blocks, 8 B-512 KiB log-uniform, random replace
  immediate  p = malloc(n); *p = 1; free(p) in a loop, 16-128 B
  startup  LD_PRELOAD start-up cost: /bin/true run many times, per-exec median
  dbsim    the `tools/dev run` demo workload (DIR/tools/dbsim/dbsim), when built

Every run goes through `bench_exec` (built next to the workloads): it starts the
program with LD_PRELOAD set for the program only, waits for it with wait4 and
reports the wall time and ru_maxrss.  A child forked straight from this Python
process would report at least this process's RSS as its peak RSS (Linux carries
the forking process's high-water mark over exec), hiding the small workloads'
real peak; bench_exec is tiny, so the floor it leaves is ~1 MiB for everyone.
Without bench_exec the driver falls back to timing and wait4 itself, and says so.

Python 3 standard library only.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
from allocators import ALLOCATORS, allocator_libs, run_main  # noqa: E402  (tools/bench/allocators.py)
import chart  # noqa: E402  (tools/bench/chart.py, next to this script)

# ---------------------------------------------------------------------------
# Configuration

REFERENCE = "mimalloc"  # ratios are quoted against this allocator
BASELINE = "glibc"      # "ahead of glibc" and the start-up difference use this one

# Targets of the project (issue text): time and peak RSS within 1.10x of
# mimalloc's, ahead of glibc; LD_PRELOAD start-up within 1 ms of glibc's.
TIME_TARGET = 1.10
RSS_TARGET = 1.10
STARTUP_TARGET_MS = 1.0


@dataclass
class Workload:
    name: str
    kind: str                  # "program" (tests/bench/<prog>), "startup", "dbsim"
    desc: str
    args: list[str]            # default work
    quick_args: list[str]      # --quick work
    prog: str = ""
    glibc_target: bool = True  # "ahead of glibc" is one of its targets
    repeat: int = 1            # startup: execs per run


WORKLOADS = [
    Workload("churn", "program", "1 thread, small objects 16-512 B, random replace + bursts",
             ["--ops", "10000000"], ["--ops", "2500000"], prog="churn_bench"),
    Workload("larson", "program", "larson-like server, 2 threads, arrays handed over (remote frees)",
             ["--epochs", "1000"], ["--epochs", "250"], prog="larson_bench"),
    Workload("xthread", "program", "producer/consumer cross-thread free, 8 B-4 KiB, SPSC ring",
             ["--count", "3000000"], ["--count", "800000"], prog="xthread_bench"),
    Workload("realloc", "program", "realloc growth 8 B -> up to 4 MiB, 32 buffers interleaved",
             ["--steps", "300000"], ["--steps", "80000"], prog="realloc_bench"),
    Workload("mixed", "program", "mixed sizes 8 B-1 MiB log-uniform, 2 threads, working set",
             ["--ops", "800000"], ["--ops", "200000"], prog="mixed_bench"),
    Workload("segment", "program", "1-64 MiB objects, 2 threads, page-touched (arena/purge)",
             ["--ops", "120"], ["--ops", "30"], prog="segment_bench", glibc_target=False),
    # The four shapes of issue 12 where a peer was clearly ahead.
    Workload("threadchurn", "program", "short-lived threads, 2 at a time: 4000 blocks 16-512 B, half handed on",
             ["--generations", "1500"], ["--generations", "400"], prog="threadchurn_bench"),
    Workload("xfree", "program", "64 B blocks allocated by one thread, freed by another, batches of 1000",
             ["--frees", "10000000"], ["--frees", "2500000"], prog="xfree_bench"),
    Workload("mixed512k", "program", "1 thread, 10 000 live blocks 8 B-512 KiB log-uniform, random replace",
             ["--threads", "1", "--slots", "10000", "--max", "512K", "--ops", "200000"],
             ["--threads", "1", "--slots", "10000", "--max", "512K", "--ops", "50000"], prog="mixed_bench"),
    Workload("immediate", "program", "p = malloc(n); *p = 1; free(p), 16/32/64/128 B, 25 M each",
             ["--ops", "25000000"], ["--ops", "6000000"], prog="immediate_bench"),
    Workload("startup", "startup", "LD_PRELOAD start-up: /bin/true, median per exec",
             ["/bin/true"], ["/bin/true"], repeat=200),
    Workload("dbsim", "dbsim", "the `tools/dev run` demo workload (tools/dbsim)",
             ["--threads", "4", "--seed", "42"], ["--threads", "4", "--seed", "42"]),
]
WORKLOAD_NAMES = [w.name for w in WORKLOADS]

# dbsim --ops: fixed by default (about 1.5 s under glibc, 0.4 s with --quick, on
# the project's 2-core machine); `--dbsim-ops auto` calibrates it under glibc to
# these many seconds instead.
DBSIM_OPS = {"default": 600000, "quick": 150000}
DBSIM_TARGET_S = {"default": 1.5, "quick": 0.4}

# Environment variables that change an allocator's behaviour: removed from the
# children's environment so that runs are comparable (--env adds some back).
ENV_DROP_PREFIXES = ("MIMALLOC_", "MI_", "MALLOC_", "TCMALLOC_", "JEMALLOC_", "JE_", "_RJEM_", "HEAP")
ENV_DROP_NAMES = {"LD_PRELOAD", "LD_LIBRARY_PATH_PRELOAD", "GLIBC_TUNABLES", "MALLOC_CONF", "PERFTOOLS_VERBOSE"}


# ---------------------------------------------------------------------------
# Running one measurement

@dataclass
class Run:
    workload: str
    allocator: str
    round: int              # -1 for warm-up runs
    position: int           # position of the allocator in this round's order
    ok: bool
    status: str             # "exit:0", "exit:1", "signal:11", "timeout", "spawn:..."
    wall_s: float           # program wall time (startup: median per exec)
    maxrss_kb: int          # peak RSS (startup: median per exec)
    driver_wall_s: float    # perf_counter around the whole spawn, for reference
    output: str = ""        # the program's last stdout line
    error: str = ""         # tail of stderr when it failed
    cpu_s: Optional[float] = None  # user + system time of the program (median per exec)


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), or "": results differ between
    CPU models more than between runs, so the header says which one ran."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def child_env(extra: dict[str, str]) -> dict[str, str]:
    env = {}
    for k, v in os.environ.items():
        if k in ENV_DROP_NAMES or k.startswith(ENV_DROP_PREFIXES):
            continue
        env[k] = v
    env.update(extra)
    return env


def _tail(path: str, limit: int = 2000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - limit))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _parse_kv(line: str) -> dict[str, str]:
    out = {}
    for tok in line.split():
        if "=" in tok:
            k, v = tok.split("=", 1)
            out[k] = v
    return out


class Runner:
    def __init__(self, helper: Optional[str], env: dict[str, str], timeout: float, tmpdir: str,
                 alloc_env: Optional[dict[str, dict[str, str]]] = None):
        self.helper = helper
        self.env = env
        self.alloc_env = alloc_env or {}  # allocator -> variables for its runs only (--lib-env)
        self.timeout = timeout
        self.tmpdir = tmpdir
        self.count = 0

    def _spawn_wait(self, argv: list[str], env: dict[str, str], out_path: str, err_path: str):
        """posix_spawn argv in its own process group with stdout/stderr to files;
        wait4 for it, killing the group after the timeout.  Returns
        (wait_status or None on timeout, rusage, seconds)."""
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
            (os.POSIX_SPAWN_OPEN, 2, err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
        ]
        timed_out = threading.Event()
        t0 = time.perf_counter()
        pid = os.posix_spawn(argv[0], argv, env, file_actions=actions, setpgroup=0)

        def kill():
            timed_out.set()
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass

        timer = threading.Timer(self.timeout, kill)
        timer.daemon = True
        timer.start()
        try:
            while True:
                try:
                    _, status, ru = os.wait4(pid, 0)
                    break
                except InterruptedError:
                    continue
        finally:
            timer.cancel()
        t1 = time.perf_counter()
        if timed_out.is_set():
            # bench_exec's own child may survive in the group if it ignored the kill.
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
            return None, ru, t1 - t0
        return status, ru, t1 - t0

    def run(self, workload: str, allocator: str, preload: Optional[str], argv: list[str],
            repeat: int = 1, rnd: int = 0, position: int = 0) -> Run:
        self.count += 1
        run_env = dict(self.env)
        run_env.update(self.alloc_env.get(allocator, {}))
        base = os.path.join(self.tmpdir, f"run{self.count}")
        out_path, err_path, rep_path = base + ".out", base + ".err", base + ".report"
        if repeat > 1:
            out_path = "/dev/null"
        if self.helper:
            full = [self.helper, "--preload", preload or "", "--repeat", str(repeat), "--report", rep_path, "--"]
            full += argv
            status, ru, dt = self._spawn_wait(full, run_env, out_path, err_path)
            report = _parse_kv(_tail(rep_path)) if os.path.exists(rep_path) else {}
            if status is None:
                st, ok = "timeout", False
            elif not report:
                st, ok = f"bench_exec:{os.waitstatus_to_exitcode(status)}", False
            else:
                st = report.get("status", "?")
                ok = st == "exit:0" and os.waitstatus_to_exitcode(status) == 0 and \
                    int(report.get("runs", "0")) == repeat
            wall = int(report.get("wall_ns_median", "0")) / 1e9 if report else dt
            rss = int(report.get("maxrss_kb_median" if repeat > 1 else "maxrss_kb", "0")) if report else 0
            cpu = int(report["cpu_ns_median"]) / 1e9 if "cpu_ns_median" in report else None
        else:
            env = run_env
            if preload:
                env["LD_PRELOAD"] = preload
            walls, rsses, st, ok, dt, cpu = [], [], "exit:0", True, 0.0, None
            for _ in range(repeat):
                status, ru, one = self._spawn_wait(argv, env, out_path, err_path)
                dt += one
                if status is None:
                    st, ok = "timeout", False
                    break
                walls.append(one)
                rsses.append(ru.ru_maxrss)
                code = os.waitstatus_to_exitcode(status)
                if code != 0:
                    st, ok = (f"exit:{code}" if code > 0 else f"signal:{-code}"), False
                    break
            wall = statistics.median(walls) if walls else dt
            rss = int(statistics.median(rsses)) if rsses else 0
        output = ""
        if out_path != "/dev/null":
            lines = [ln for ln in _tail(out_path, 4000).splitlines() if ln.strip()]
            output = lines[-1] if lines else ""
        error = "" if ok else _tail(err_path, 1500).strip()
        for p in (out_path, err_path, rep_path):
            if p != "/dev/null":
                try:
                    os.unlink(p)
                except OSError:
                    pass
        return Run(workload, allocator, rnd, position, ok, st, wall, rss, dt, output, error, cpu)


# ---------------------------------------------------------------------------
# Reporting

def fmt_time(w: Workload, seconds: Optional[float]) -> str:
    if seconds is None:
        return "-"
    if w.kind == "startup":
        return f"{seconds * 1e3:.3f} ms"
    return f"{seconds:.3f} s"


def fmt_ratio(x: Optional[float]) -> str:
    return "-" if x is None else f"{x:.2f}x"


def render(headers: list[str], rows: list[list[str]], markdown: bool, align: Optional[list[str]] = None) -> str:
    align = align or ["l"] * len(headers)
    if markdown:
        out = ["| " + " | ".join(headers) + " |",
               "|" + "|".join(("---:" if a == "r" else ":---") for a in align) + "|"]
        out += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(out)
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def line(cells):
        return "  ".join((c.rjust(wd) if a == "r" else c.ljust(wd)) for c, wd, a in zip(cells, widths, align)).rstrip()

    out = [line(headers), line(["-" * wd for wd in widths])]
    out += [line(r) for r in rows]
    return "\n".join(out)


@dataclass
class Cell:
    runs: list[Run] = field(default_factory=list)

    @property
    def ok_runs(self) -> list[Run]:
        return [r for r in self.runs if r.ok]

    @property
    def failed(self) -> int:
        return sum(1 for r in self.runs if not r.ok)

    def time(self) -> Optional[float]:
        ok = self.ok_runs
        return statistics.median(r.wall_s for r in ok) if ok else None

    def cpu(self) -> Optional[float]:
        vals = [r.cpu_s for r in self.ok_runs if r.cpu_s is not None]
        return statistics.median(vals) if vals else None

    def rss_mib(self) -> Optional[float]:
        ok = self.ok_runs
        return statistics.median(r.maxrss_kb for r in ok) / 1024.0 if ok else None

    def spread(self) -> Optional[float]:
        """(max - min) / median of the times, in percent."""
        ok = self.ok_runs
        med = self.time()
        if len(ok) < 2 or not med:
            return None
        ts = [r.wall_s for r in ok]
        return 100.0 * (max(ts) - min(ts)) / med


def ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    if a is None or b is None or b <= 0:
        return None
    return a / b


# ---------------------------------------------------------------------------
# Main

def parse_list(value: str, known: list[str], what: str) -> list[str]:
    items = [x.strip() for x in value.split(",") if x.strip()]
    for x in items:
        if x not in known:
            raise argparse.ArgumentTypeError(f"unknown {what} '{x}' (known: {', '.join(known)})")
    return items


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(
        prog="run_bench.py",
        description="Run the mimalloc-numa benchmark workloads under several allocators, alternating them "
                    "run by run, and print median time / peak RSS and ratios to mimalloc.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="workloads: " + ", ".join(WORKLOAD_NAMES) + "\nallocators: " + ", ".join(ALLOCATORS))
    ap.add_argument("--build", metavar="DIR",
                    help="meson build directory (default: ./build, else build/ at the top of the source "
                         "tree): DIR/tests/bench/*_bench, "
                         "DIR/tools/dbsim/dbsim, DIR/lib/libmimalloc-numa.so")
    ap.add_argument("--bench-dir", metavar="DIR", help="where the *_bench programs and bench_exec are "
                                                       "(default: DIR/tests/bench)")
    ap.add_argument("--dbsim", metavar="PATH", help="the dbsim binary (default: DIR/tools/dbsim/dbsim)")
    ap.add_argument("--dbsim-ops", metavar="N|auto",
                    help="dbsim --ops (default %d, %d with --quick); 'auto': calibrated under glibc to "
                         "~%.1f s a run (~%.1f s with --quick)"
                         % (DBSIM_OPS["default"], DBSIM_OPS["quick"], DBSIM_TARGET_S["default"],
                            DBSIM_TARGET_S["quick"]))
    ap.add_argument("--rounds", type=int, metavar="N", help="rounds (default 5; 3 with --quick)")
    ap.add_argument("--allocators", metavar="LIST", help="comma-separated subset (default: all available)")
    ap.add_argument("--workloads", metavar="LIST", help="comma-separated subset (default: all)")
    ap.add_argument("--quick", action="store_true", help="fewer rounds and less work per run (< 2 min)")
    ap.add_argument("--lib", action="append", default=[], metavar="NAME=PATH",
                    help="use PATH for allocator NAME (e.g. ours=/tmp/libmimalloc-numa.so); "
                         "a new NAME adds an allocator")
    ap.add_argument("--subject", default="ours", metavar="NAME",
                    help="allocator whose targets the summary checks (default: ours)")
    ap.add_argument("--lib-env", action="append", default=[], metavar="NAME:KEY=VALUE",
                    help="set KEY=VALUE in the runs of allocator NAME only (e.g. two names for one library, "
                         "--lib pub=build/lib/libmimalloc-numa.so --lib-env pub:MIMALLOC_STATS_PUBLISH=1)")
    ap.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                    help="set in every child's environment (allocator variables are otherwise removed)")
    ap.add_argument("--startup-execs", type=int, metavar="N",
                    help="execs of /bin/true per allocator per round (default 200; 100 with --quick)")
    ap.add_argument("--timeout", type=float, default=300.0, metavar="SEC",
                    help="kill a run after SEC seconds (counts as a failure; default 300)")
    ap.add_argument("--no-warmup", action="store_true",
                    help="skip the warm-up (one tiny run of each workload under each allocator)")
    ap.add_argument("--json", metavar="FILE", help="write the configuration and every run to FILE")
    ap.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    ap.add_argument("--chart", metavar="FILE.png",
                    help="also draw each workload's median time, CPU time and peak RSS per allocator, "
                         f"relative to {REFERENCE}'s, to FILE.png (gnuplot)")
    ap.add_argument("-q", "--quiet", action="store_true", help="no per-run progress on stderr")
    args = ap.parse_args(argv[1:])

    if args.build:
        build = Path(args.build)
    else:
        build = Path("build")
        top_build = Path(__file__).resolve().parent.parent.parent / "build"
        if not build.is_dir() and top_build.is_dir():
            build = top_build
    bench_dir = Path(args.bench_dir) if args.bench_dir else build / "tests" / "bench"
    dbsim_path = Path(args.dbsim) if args.dbsim else build / "tools" / "dbsim" / "dbsim"
    rounds = args.rounds if args.rounds is not None else (3 if args.quick else 5)
    if rounds < 1:
        ap.error("--rounds must be >= 1")
    mode = "quick" if args.quick else "default"
    if args.dbsim_ops not in (None, "auto") and (not args.dbsim_ops.isdigit() or int(args.dbsim_ops) < 1):
        ap.error("--dbsim-ops expects a positive number or 'auto'")

    # Allocators.
    try:
        libs = allocator_libs(build, args.lib)
    except ValueError as e:
        ap.error(str(e))
    try:
        wanted_allocs = parse_list(args.allocators, list(libs), "allocator") if args.allocators else list(libs)
        wanted_work = parse_list(args.workloads, WORKLOAD_NAMES, "workload") if args.workloads else WORKLOAD_NAMES
    except argparse.ArgumentTypeError as e:
        ap.error(str(e))
    extra_env = {}
    for spec in args.env:
        k, sep, v = spec.partition("=")
        if not sep or not k:
            ap.error(f"--env expects KEY=VALUE, got '{spec}'")
        extra_env[k] = v
    alloc_env: dict[str, dict[str, str]] = {}
    for spec in args.lib_env:
        name, sep, kv = spec.partition(":")
        k, sep2, v = kv.partition("=")
        if not sep or not sep2 or not name or not k:
            ap.error(f"--lib-env expects NAME:KEY=VALUE, got '{spec}'")
        alloc_env.setdefault(name, {})[k] = v

    notes: list[str] = []
    allocs: list[str] = []
    for name in wanted_allocs:
        path = libs[name]
        if path is not None and not os.path.isfile(path):
            notes.append(f"allocator {name}: skipped, {path} not found")
            continue
        if path is not None:
            libs[name] = os.path.abspath(path)  # the children may not share our idea of "."
        allocs.append(name)
    if not allocs:
        print("run_bench: no allocator available", file=sys.stderr)
        return 2

    # Workloads.
    workloads: list[Workload] = []
    for w in WORKLOADS:
        if w.name not in wanted_work:
            continue
        if w.kind == "program":
            exe = bench_dir / w.prog
            if not os.access(exe, os.X_OK):
                notes.append(f"workload {w.name}: skipped, {exe} not built")
                continue
        elif w.kind == "dbsim":
            if not os.access(dbsim_path, os.X_OK):
                notes.append(f"workload {w.name}: skipped, {dbsim_path} not built")
                continue
        elif w.kind == "startup":
            if not os.access("/bin/true", os.X_OK):
                notes.append("workload startup: skipped, no /bin/true")
                continue
        workloads.append(w)
    if not workloads:
        print("run_bench: no workload available (build first: meson compile -C %s)" % build, file=sys.stderr)
        for n in notes:
            print("  note: " + n, file=sys.stderr)
        return 2

    helper = bench_dir / "bench_exec"
    helper_s: Optional[str] = str(helper.resolve()) if os.access(helper, os.X_OK) else None
    if helper_s is None:
        notes.append(f"{helper} not built: the driver times and wait4s the programs itself; peak RSS then "
                     f"includes a floor of the driver's own RSS (~{driver_rss_mib():.0f} MiB)")

    startup_execs = args.startup_execs or (100 if args.quick else 200)

    def argv_of(w: Workload, dbsim_ops: int = 0) -> list[str]:
        if w.kind == "program":
            return [str((bench_dir / w.prog).resolve())] + (w.quick_args if args.quick else w.args)
        if w.kind == "startup":
            return list(w.args)
        return [str(dbsim_path.resolve())] + (w.quick_args if args.quick else w.args) + ["--ops", str(dbsim_ops)]

    cmdline = shlex.join([sys.argv[0]] + argv[1:])
    started = datetime.datetime.now().astimezone()
    env = child_env(extra_env)
    progress = (lambda s: None) if args.quiet else (lambda s: print(s, file=sys.stderr, flush=True))

    with tempfile.TemporaryDirectory(prefix="run_bench.") as tmpdir:
        runner = Runner(helper_s, env, args.timeout, tmpdir, alloc_env)

        # dbsim work size.
        dbsim_ops = 0
        if any(w.kind == "dbsim" for w in workloads):
            if args.dbsim_ops is None:
                dbsim_ops = DBSIM_OPS[mode]
            elif args.dbsim_ops != "auto":
                dbsim_ops = int(args.dbsim_ops)
            else:
                dbsim_ops = calibrate_dbsim(runner, [x for x in workloads if x.kind == "dbsim"][0],
                                            argv_of, DBSIM_TARGET_S[mode], progress, notes)
                if dbsim_ops == 0:
                    workloads = [x for x in workloads if x.kind != "dbsim"]

        # Header: exactly what is being run.
        print(f"# mimalloc-numa benchmarks: {cmdline}")
        rev = source_revision()
        if rev:
            print(f"# source: {rev}")
        model = cpu_model()
        print(f"# started {started.isoformat(timespec='seconds')} on {platform.node()}, "
              f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs"
              f"{' (' + model + ')' if model else ''}; "
              f"{rounds} rounds, {mode} sizes, allocators alternated run by run (rotated each round)")
        for name in allocs:
            print(f"#   allocator {name:9s} {libs[name] or '(no LD_PRELOAD)'}")
        for w in workloads:
            a = argv_of(w, dbsim_ops)
            shown = shlex.join([display_path(a[0])] + a[1:])
            if w.kind == "startup":
                shown = f"{shown}  x{startup_execs} per run"
            print(f"#   workload  {w.name:9s} {shown}")
        for n in notes:
            print(f"# note: {n}")
        sys.stdout.flush()

        all_runs: list[Run] = []
        cells: dict[tuple[str, str], Cell] = {(w.name, a): Cell() for w in workloads for a in allocs}

        # A (workload, allocator) that timed out once is not run again (it would
        # likely cost the whole timeout every round): its later runs are FAIL.
        timed_out: dict[tuple[str, str], str] = {}

        # Warm-up: page cache, dynamic loader caches; not recorded.
        if not args.no_warmup:
            progress("warm-up ...")
            saved_timeout = runner.timeout
            runner.timeout = min(saved_timeout, 60.0)
            for w in workloads:
                for a in allocs:
                    if w.kind == "program":
                        wargv = [argv_of(w)[0], "--smoke"]
                    elif w.kind == "startup":
                        wargv = ["/bin/true"]
                    else:
                        wargv = [argv_of(w)[0], "--threads", "2", "--ops", "1000", "--seed", "1"]
                    r = runner.run(w.name, a, libs[a], wargv, repeat=5 if w.kind == "startup" else 1, rnd=-1)
                    if not r.ok:
                        progress(f"  warm-up {w.name} under {a}: {r.status} {r.error[-300:]}")
                        if r.status == "timeout":
                            timed_out[(w.name, a)] = "skipped: the warm-up run timed out"
            runner.timeout = saved_timeout

        t_start = time.perf_counter()
        for rnd in range(rounds):
            for wi, w in enumerate(workloads):
                k = (rnd + wi) % len(allocs)
                order = allocs[k:] + allocs[:k]
                for pos, a in enumerate(order):
                    repeat = startup_execs if w.kind == "startup" else 1
                    if (w.name, a) in timed_out:
                        r = Run(w.name, a, rnd, pos, False, timed_out[(w.name, a)], 0.0, 0, 0.0)
                    else:
                        r = runner.run(w.name, a, libs[a], argv_of(w, dbsim_ops), repeat=repeat, rnd=rnd,
                                       position=pos)
                        if r.status == "timeout":
                            timed_out[(w.name, a)] = f"skipped: timed out in round {rnd + 1}"
                    all_runs.append(r)
                    cells[(w.name, a)].runs.append(r)
                    shown = fmt_time(w, r.wall_s) if r.ok else f"FAIL ({r.status})"
                    progress(f"[round {rnd + 1}/{rounds}] {w.name:8s} {a:9s} {shown:>12s} "
                             f"{r.maxrss_kb / 1024.0:9.1f} MiB")
                    if not r.ok and r.error:
                        progress("    " + r.error.replace("\n", "\n    ")[-600:])
        elapsed = time.perf_counter() - t_start

    # ---- Results table.
    print()
    print(f"## Results: median of {rounds} rounds (time: wall time of the program; startup: per exec; "
          f"peak RSS: ru_maxrss)")
    headers = ["workload", "allocator", "time", "spread", f"x{REFERENCE}", f"x{BASELINE}",
               "peak RSS MiB", f"RSS x{REFERENCE}", "cpu", f"cpu x{REFERENCE}", "runs"]
    align = ["l", "l", "r", "r", "r", "r", "r", "r", "r", "r", "l"]
    rows = []
    any_fail = False
    for w in workloads:
        ref = cells.get((w.name, REFERENCE))
        base = cells.get((w.name, BASELINE))
        for a in allocs:
            c = cells[(w.name, a)]
            t, m = c.time(), c.rss_mib()
            sp = c.spread()
            failed = c.failed
            any_fail |= failed > 0
            runs = f"{len(c.ok_runs)}/{len(c.runs)}"
            if failed:
                runs = f"FAIL {failed}/{len(c.runs)}"
            rows.append([
                w.name, a,
                fmt_time(w, t) if t is not None else "FAIL",
                "-" if sp is None else f"±{sp / 2:.0f}%",
                fmt_ratio(ratio(t, ref.time() if ref else None)),
                fmt_ratio(ratio(t, base.time() if base else None)),
                "-" if m is None else f"{m:.1f}",
                fmt_ratio(ratio(m, ref.rss_mib() if ref else None)),
                fmt_time(w, c.cpu()),
                fmt_ratio(ratio(c.cpu(), ref.cpu() if ref else None)),
                runs,
            ])
    print(render(headers, rows, args.markdown, align))
    print()
    for w in workloads:
        base = cells.get((w.name, BASELINE))
        if w.kind != "startup" or base is None or base.time() is None:
            continue
        diffs = [f"{a} {(cells[(w.name, a)].time() - base.time()) * 1e3:+.3f} ms" for a in allocs
                 if a != BASELINE and cells[(w.name, a)].time() is not None]
        if diffs:
            print(f"{w.name}: per-exec time minus {BASELINE}'s: " + ", ".join(diffs))
    print(f"spread: half the range (max-min) of the {rounds} times, relative to the median. "
          f"cpu: user+system time of the program (informational: less sensitive to a busy machine "
          f"than wall time, but counts spinning).")

    # ---- Failures: the first failed run of each (workload, allocator).
    failures = []
    for w in workloads:
        for a in allocs:
            bad = [r for r in cells[(w.name, a)].runs if not r.ok]
            if bad:
                r = bad[0]
                detail = r.error.strip().splitlines()[-1] if r.error.strip() else ""
                failures.append(f"  {w.name} under {a}: {len(bad)} of {len(cells[(w.name, a)].runs)} runs "
                                f"failed; first: {r.status}" + (f": {detail[:200]}" if detail else ""))
    if failures:
        print()
        print("## FAILED runs")
        print("\n".join(failures))

    # ---- Targets summary.
    summary = target_summary(args.subject, workloads, allocs, cells)
    print()
    if summary is None:
        print(f"## Targets: '{args.subject}' was not run, no target check.")
    else:
        print(f"## Targets of {args.subject} (informational): time <= {TIME_TARGET:.2f}x {REFERENCE}, "
              f"peak RSS <= {RSS_TARGET:.2f}x {REFERENCE}, faster than {BASELINE}; "
              f"startup <= {BASELINE} + {STARTUP_TARGET_MS:g} ms")
        print(render(["workload", f"time x{REFERENCE}", f"RSS x{REFERENCE}", f"vs {BASELINE}", "verdict"],
                     [s["cells"] for s in summary["rows"]], args.markdown, ["l", "l", "l", "l", "l"]))
        print()
        print(f"{args.subject}: {summary['met']} of {summary['checked']} targets met "
              f"({summary['rows_pass']} of {len(summary['rows'])} workloads PASS)")
    print()
    print(f"total: {len(all_runs)} runs in {elapsed:.0f} s" + ("; SOME RUNS FAILED" if any_fail else ""))

    if args.chart:
        names = [w.name for w in workloads]
        ref = REFERENCE if REFERENCE in allocs else allocs[0]
        why = chart.write_chart(
            args.chart, f"mimalloc-numa benchmarks: medians of {rounds} rounds, relative to {ref} (lower is better)",
            names, allocs, ref,
            [("time", {(w.name, a): cells[(w.name, a)].time() for w in workloads for a in allocs}),
             ("CPU time", {(w.name, a): cells[(w.name, a)].cpu() for w in workloads for a in allocs}),
             ("peak RSS", {(w.name, a): cells[(w.name, a)].rss_mib() for w in workloads for a in allocs})],
            subtitle=f"{started.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs, {rev or 'source unknown'}; "
                     f"absolute figures: the table")
        print(f"chart: {args.chart}" if why is None else f"chart: not written: {why}")

    if args.json:
        doc = {
            "command": cmdline,
            "argv": argv[1:],
            "started": started.isoformat(timespec="seconds"),
            "host": {"node": platform.node(), "system": platform.system(), "release": platform.release(),
                     "machine": platform.machine(), "cpus": os.cpu_count(), "cpu_model": cpu_model(),
                     "python": platform.python_version()},
            "config": {
                "rounds": rounds, "mode": mode, "bench_exec": helper_s,
                "allocators": {a: libs[a] for a in allocs},
                "workloads": {w.name: {"argv": argv_of(w, dbsim_ops), "kind": w.kind, "desc": w.desc,
                                       "repeat": startup_execs if w.kind == "startup" else 1}
                              for w in workloads},
                "env_added": extra_env, "notes": notes,
            },
            "runs": [r.__dict__ for r in all_runs],
            "medians": [{"workload": w.name, "allocator": a, "time_s": cells[(w.name, a)].time(),
                         "cpu_s": cells[(w.name, a)].cpu(),
                         "peak_rss_mib": cells[(w.name, a)].rss_mib(), "runs": len(cells[(w.name, a)].runs),
                         "failed": cells[(w.name, a)].failed} for w in workloads for a in allocs],
            "targets": summary,
            "elapsed_s": elapsed,
        }
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
        print(f"raw results: {args.json}")
    return 1 if any_fail else 0


def source_revision() -> str:
    """git revision of the tree holding this script ('' if unknown)."""
    try:
        out = subprocess.run(["git", "-C", str(Path(__file__).resolve().parent), "describe", "--always", "--dirty"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def display_path(p: str) -> str:
    """p relative to the current directory when it is below it, else as is."""
    try:
        rel = os.path.relpath(p)
    except ValueError:
        return p
    return p if rel.startswith("..") else rel


def driver_rss_mib() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def calibrate_dbsim(runner: Runner, w: Workload, argv_of, target_s: float, progress, notes: list[str]) -> int:
    """Find a dbsim --ops giving about target_s seconds under glibc (rounded to 2 digits)."""
    ops = 20000
    progress("calibrating dbsim --ops under glibc ...")
    for _ in range(8):
        r = runner.run(w.name, "glibc", None, argv_of(w, ops), rnd=-1)
        if not r.ok:
            notes.append(f"workload dbsim: skipped, calibration run failed ({r.status}): {r.error[-200:]}")
            return 0
        if r.wall_s >= 0.25 * target_s or ops >= 10 ** 10:
            break
        ops *= 4 if r.wall_s < 0.05 * target_s else 2
    scaled = max(1000, int(ops * target_s / max(r.wall_s, 1e-3)))
    digits = len(str(scaled)) - 2
    return int(round(scaled, -digits)) if digits > 0 else scaled


def target_summary(subject: str, workloads: list[Workload], allocs: list[str], cells) -> Optional[dict]:
    if subject not in allocs:
        return None
    rows, met, checked = [], 0, 0
    for w in workloads:
        c = cells[(w.name, subject)]
        ref = cells.get((w.name, REFERENCE))
        base = cells.get((w.name, BASELINE))
        t, m = c.time(), c.rss_mib()
        checks = []  # (label, passed or None when not checkable)
        if c.failed:
            cells_txt = ["FAIL", "FAIL", "FAIL", "MISS (runs failed)"]
            rows.append({"workload": w.name, "pass": False, "cells": [w.name] + cells_txt})
            checked += 1
            continue
        if w.kind == "startup":
            tr_txt = rr_txt = "n/a"
            if base is not None and base.time() is not None and subject != BASELINE:
                diff_ms = (t - base.time()) * 1e3
                ok = diff_ms <= STARTUP_TARGET_MS
                checks.append(ok)
                gl_txt = f"{diff_ms:+.3f} ms {'PASS' if ok else 'MISS'}"
            else:
                gl_txt = "n/a"
        else:
            tr = ratio(t, ref.time() if ref else None) if subject != REFERENCE else None
            rr = ratio(m, ref.rss_mib() if ref else None) if subject != REFERENCE else None
            if tr is None:
                tr_txt = "n/a"
            else:
                checks.append(tr <= TIME_TARGET)
                tr_txt = f"{tr:.3f}x {'PASS' if tr <= TIME_TARGET else 'MISS'}"
            if rr is None:
                rr_txt = "n/a"
            else:
                checks.append(rr <= RSS_TARGET)
                rr_txt = f"{rr:.3f}x {'PASS' if rr <= RSS_TARGET else 'MISS'}"
            gr = ratio(t, base.time() if base else None) if subject != BASELINE else None
            if gr is None:
                gl_txt = "n/a"
            elif w.glibc_target:
                checks.append(gr < 1.0)
                gl_txt = f"{gr:.3f}x {'PASS' if gr < 1.0 else 'MISS'}"
            else:
                gl_txt = f"{gr:.3f}x (info)"
        passed = all(checks) if checks else None
        met += sum(1 for x in checks if x)
        checked += len(checks)
        verdict = "n/a" if passed is None else ("PASS" if passed else "MISS")
        rows.append({"workload": w.name, "pass": passed, "cells": [w.name, tr_txt, rr_txt, gl_txt, verdict]})
    return {"subject": subject, "rows": rows, "met": met, "checked": checked,
            "rows_pass": sum(1 for r in rows if r["pass"])}


if __name__ == "__main__":
    run_main(main, "run_bench")
