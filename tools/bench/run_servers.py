#!/usr/bin/env python3
"""run_servers.py -- real database servers under each allocator (`tools/dev bench --servers`).

Starts MariaDB (sysbench oltp_read_write), PostgreSQL (pgbench, TPC-B-like),
RocksDB (db_bench readrandom), SQLite (the sqlite3 shell fed transactions
through a pipe) and Redis (redis-benchmark SET and GET) from Debian's packages
as private instances in a temporary directory: unix sockets only, no network,
nothing of the host's installed services or /etc is used or touched (every
server gets --no-defaults or its own configuration on the command line).  The
allocator under test is preloaded into the server process only (LD_PRELOAD in
the server's environment, inherited by PostgreSQL's forked backends); the
clients (sysbench, pgbench, redis-benchmark) run on the C library's malloc.
db_bench and sqlite3 hold the database in their own process, which is
therefore the one preloaded.

Method: the data of each server is made once under glibc into a template
directory; every measured run starts from a fresh copy of it, starts the
server under one allocator, checks in /proc/PID/maps that the allocator's
library is mapped into it (else the run FAILS: a preload that did not take
would silently measure glibc), runs the client for --seconds, stops the
server.  In every round each workload runs once per allocator, the order
rotated from round to round; medians over the rounds are reported.

Figures per (workload, allocator):
  throughput   operations per second as the client counts them (transactions
               for sysbench and pgbench, reads for db_bench, transactions of
               the SQLite script, requests for redis-benchmark)
  p99          99th percentile of the operation latency, as the client measures
               it (sysbench's, pgbench's per-transaction log, db_bench's
               histogram, the driver's own timing for sqlite3, redis-benchmark's)
  CPU/op       CPU time (user + system) of the server's processes during the
               client's run, from /proc/PID/stat of the server and its
               descendants (cutime for the reaped ones), divided by the
               operations; for db_bench and sqlite3 the whole program's
  peak memory  the highest sum of Pss (/proc/PID/smaps_rollup: shared pages
               divided among the processes sharing them) over the server's
               processes, sampled every 0.2 s from the server's start

Exit status: 0 when every run that was attempted succeeded, 1 when a run
failed, 2 on bad arguments, 77 (--skip-status) when no server could be run at
all (packages missing).  Python 3 standard library only.
"""

from __future__ import annotations

import argparse
import datetime
import glob
import json
import os
import platform
import pwd
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
from allocators import ALLOCATORS, allocator_libs, run_main  # noqa: E402  (tools/bench/allocators.py)
import chart  # noqa: E402  (tools/bench/chart.py)

REFERENCE = "glibc"

# Debian packages each server needs (tools/dev bench --servers installs them).
PACKAGES = {
    "mariadb": ["mariadb-server", "mariadb-client", "sysbench"],
    "postgresql": ["postgresql", "postgresql-contrib"],
    "rocksdb": ["rocksdb-tools"],
    "sqlite": ["sqlite3"],
    "redis": ["redis-server", "redis-tools"],
}
SERVERS = list(PACKAGES)

# Variables that change an allocator's or a server's behaviour are not passed on.
ENV_DROP_PREFIXES = ("MIMALLOC_", "MI_", "MALLOC_", "TCMALLOC_", "JEMALLOC_", "JE_", "_RJEM_", "PG", "MYSQL")
ENV_DROP_NAMES = {"LD_PRELOAD", "GLIBC_TUNABLES", "MALLOC_CONF", "PERFTOOLS_VERBOSE"}


class Skip(Exception):
    """The server cannot be run here (a program or package is missing)."""


class RunError(Exception):
    """A run failed; the message says why."""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ENV_DROP_NAMES and not k.startswith(ENV_DROP_PREFIXES)}
    env["LC_ALL"] = "C"
    return env


def which(prog: str, pkg: str) -> str:
    p = shutil.which(prog)
    if p is None:
        raise Skip(f"{prog} not found (Debian package {pkg})")
    return p


def percentile(values: list[float], q: float) -> Optional[float]:
    if not values:
        return None
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(round(q / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


# ---------------------------------------------------------------------------
# Process trees: CPU time and memory of a server and its descendants.

CLK_TCK = os.sysconf("SC_CLK_TCK")


def tree_pids(root: int) -> list[int]:
    pids, todo = [], [root]
    while todo:
        p = todo.pop()
        pids.append(p)
        for task in glob.glob(f"/proc/{p}/task/*/children"):
            try:
                with open(task) as f:
                    todo += [int(x) for x in f.read().split()]
            except OSError:
                pass
    return pids


def tree_cpu_s(root: int) -> float:
    """user + system time of the live tree, with that of the children its processes reaped."""
    total = 0
    for p in tree_pids(root):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
        except (OSError, IndexError, ValueError):
            pass
    return total / CLK_TCK


def tree_pss_kb(root: int) -> int:
    total = 0
    for p in tree_pids(root):
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
        except (OSError, ValueError):
            pass
    return total


class MemorySampler:
    """Samples the tree's summed Pss every 0.2 s in a thread; .peak_kb is the highest."""

    def __init__(self, root: int):
        self.root, self.peak_kb = root, 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._loop, daemon=True)
        self._t.start()

    def _loop(self):
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, tree_pss_kb(self.root))
            self._stop.wait(0.2)

    def stop(self) -> int:
        self.peak_kb = max(self.peak_kb, tree_pss_kb(self.root))
        self._stop.set()
        self._t.join()
        return self.peak_kb


def check_preloaded(pid: int, lib: Optional[str]) -> None:
    """The allocator's library is mapped into the server (a preload the loader
    refused, e.g. unreadable for the server's user, only prints a warning).
    A program just started may still be in the dynamic loader: its maps are
    read until the C library is in them (the loader maps the preloaded
    objects before or with the program's own libraries)."""
    if lib is None:
        return
    real = os.path.realpath(lib)
    end = time.monotonic() + 10.0
    while True:
        try:
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            with open(f"/proc/{pid}/maps") as f:
                maps = f.read()
        except (OSError, IndexError) as e:
            raise RunError(f"cannot read /proc/{pid}: {e}")
        if state in ("Z", "X"):
            raise RunError(f"the process (pid {pid}) exited before the preload could be checked")
        if real in maps or lib in maps:
            return
        if "libc.so" in maps or time.monotonic() > end:
            raise RunError(f"{lib} is not mapped into the server (pid {pid}): the preload did not take")
        time.sleep(0.02)


# ---------------------------------------------------------------------------
# Running things

@dataclass
class Ctx:
    work: str              # the temporary directory of this bench
    seconds: float
    threads: int
    smoke: bool
    env: dict[str, str] = field(default_factory=base_env)


def run(argv: list[str], timeout: float, cwd: Optional[str] = None, env: Optional[dict] = None,
        user: Optional[str] = None, input: Optional[str] = None) -> str:
    try:
        out = subprocess.run(argv, cwd=cwd, env=env or base_env(), capture_output=True, text=True,
                             timeout=timeout, user=user, input=input)
    except subprocess.TimeoutExpired:
        raise RunError(f"{os.path.basename(argv[0])} did not finish in {timeout:.0f} s")
    except OSError as e:
        raise RunError(f"{argv[0]}: {e}")
    if out.returncode != 0:
        tail = (out.stderr.strip() or out.stdout.strip())[-600:]
        raise RunError(f"{os.path.basename(argv[0])} exited {out.returncode}: {tail}")
    return out.stdout + out.stderr


def wait_until(pred: Callable[[], bool], timeout: float, what: str, proc: Optional[subprocess.Popen] = None,
               logfile: Optional[str] = None) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise RunError(f"{what}: the server exited ({proc.returncode}) while starting" + _log_tail(logfile))
        try:
            if pred():
                return
        except (OSError, RunError):
            pass
        time.sleep(0.1)
    if proc is not None:
        stop_process(proc, signal.SIGKILL)
    raise RunError(f"{what}: not ready after {timeout:.0f} s" + _log_tail(logfile))


def _log_tail(path: Optional[str]) -> str:
    if not path:
        return ""
    try:
        with open(path, errors="replace") as f:
            return ": " + f.read()[-500:].strip()
    except OSError:
        return ""


def chown_tree(path: str, user: Optional[str]) -> None:
    if user is None:
        return
    pw = pwd.getpwnam(user)
    for dirpath, dirnames, filenames in os.walk(path):
        os.chown(dirpath, pw.pw_uid, pw.pw_gid)
        for n in filenames:
            os.chown(os.path.join(dirpath, n), pw.pw_uid, pw.pw_gid, follow_symlinks=False)


# Every server started and not stopped yet: main() kills what is left when it
# ends early (an exception, ^C), so that no server outlives the bench.
LIVE: list[subprocess.Popen] = []


def spawn(argv: list[str], **kw) -> subprocess.Popen:
    p = subprocess.Popen(argv, **kw)
    LIVE.append(p)
    return p


def stop_process(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
    if proc in LIVE:
        LIVE.remove(proc)
    if proc.poll() is not None:
        return
    try:
        proc.send_signal(sig)
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass
class Result:
    ops: float = 0.0           # operations done in the measured window
    seconds: float = 0.0       # the window, as the client reports it
    p99_ms: Optional[float] = None
    cpu_s: Optional[float] = None
    peak_kb: int = 0

    @property
    def throughput(self) -> Optional[float]:
        return self.ops / self.seconds if self.seconds > 0 else None

    @property
    def cpu_us_per_op(self) -> Optional[float]:
        return self.cpu_s * 1e6 / self.ops if (self.cpu_s is not None and self.ops) else None


class Server:
    """A daemon-like server: start(data dir, preload) -> Popen; client work measured around it."""
    name = ""
    workloads: list[str] = []

    def __init__(self, ctx: Ctx):
        self.ctx = ctx

    def prepare(self, template: str) -> None:  # make the data once, under glibc
        raise NotImplementedError

    def measure(self, datadir: str, preload: Optional[str]) -> dict[str, Result]:
        raise NotImplementedError

    def server_env(self, preload: Optional[str]) -> dict[str, str]:
        env = dict(self.ctx.env)
        if preload:
            env["LD_PRELOAD"] = preload
        return env

    def daemon_measure(self, proc: subprocess.Popen, preload: Optional[str], clients: dict[str, Callable[[], Result]],
                       stop: Callable[[], None]) -> dict[str, Result]:
        """The common part for servers: memory sampled from the start, each client timed
        with the tree's CPU before and after, the server stopped whatever happens."""
        sampler = MemorySampler(proc.pid)
        out: dict[str, Result] = {}
        try:
            check_preloaded(proc.pid, preload)
            for wname, client in clients.items():
                c0 = tree_cpu_s(proc.pid)
                r = client()
                r.cpu_s = tree_cpu_s(proc.pid) - c0
                out[wname] = r
        finally:
            peak = sampler.stop()
            stop()
        for r in out.values():
            r.peak_kb = peak
        return out


# ---------------------------------------------------------------------------
# MariaDB + sysbench

class MariaDB(Server):
    name = "mariadb"
    workloads = ["mariadb-rw"]
    TABLE_SIZE = 20000

    def __init__(self, ctx: Ctx):
        super().__init__(ctx)
        self.mariadbd = shutil.which("mariadbd") or shutil.which("mysqld") or which("mariadbd", "mariadb-server")
        self.install_db = shutil.which("mariadb-install-db") or which("mysql_install_db", "mariadb-server")
        self.admin = shutil.which("mariadb-admin") or which("mysqladmin", "mariadb-client")
        self.sysbench = which("sysbench", "sysbench")
        self.user = "mysql" if os.geteuid() == 0 else None
        if self.user:
            try:
                pwd.getpwnam(self.user)
            except KeyError:
                raise Skip("running as root and there is no 'mysql' account for mariadbd (mariadb-server)")

    def _args(self, d: str) -> list[str]:
        a = [self.mariadbd, "--no-defaults", f"--datadir={d}/data", f"--socket={d}/sock", f"--pid-file={d}/pid",
             "--skip-networking", f"--log-error={d}/error.log", "--innodb-buffer-pool-size=128M",
             "--innodb-log-file-size=48M", "--innodb-flush-log-at-trx-commit=2", "--skip-log-bin",
             f"--tmpdir={d}", f"--max-connections={self.ctx.threads + 20}"]
        if self.user:
            a.append(f"--user={self.user}")
        return a

    def _start(self, d: str, preload: Optional[str]) -> subprocess.Popen:
        p = spawn(self._args(d), env=self.server_env(preload), stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: subprocess.run([self.admin, "--no-defaults", f"--socket={d}/sock", "-uroot", "ping"],
                                          capture_output=True, env=base_env(), timeout=10).returncode == 0,
                   90, "mariadbd", p, f"{d}/error.log")
        return p

    def _stop(self, d: str, p: subprocess.Popen) -> None:
        subprocess.run([self.admin, "--no-defaults", f"--socket={d}/sock", "-uroot", "shutdown"],
                       capture_output=True, env=base_env(), timeout=60)
        stop_process(p)

    def _sysbench(self, d: str, *extra: str) -> list[str]:
        return [self.sysbench, "oltp_read_write", "--db-driver=mysql", f"--mysql-socket={d}/sock",
                "--mysql-user=root", "--mysql-db=sbtest", "--tables=2", f"--table-size={self.TABLE_SIZE}", *extra]

    def prepare(self, t: str) -> None:
        os.makedirs(f"{t}/data")
        chown_tree(t, self.user)
        args = [self.install_db, "--no-defaults", f"--datadir={t}/data", "--auth-root-authentication-method=normal",
                "--skip-test-db"]
        if self.user:
            args.append(f"--user={self.user}")
        run(args, 180)
        p = self._start(t, None)
        try:
            run([self.admin, "--no-defaults", f"--socket={t}/sock", "-uroot", "create", "sbtest"], 60)
            run(self._sysbench(t, "prepare"), 300)
        finally:
            self._stop(t, p)

    def measure(self, d: str, preload: Optional[str]) -> dict[str, Result]:
        p = self._start(d, preload)

        def client() -> Result:
            out = run(self._sysbench(d, f"--threads={self.ctx.threads}", f"--time={self.ctx.seconds:g}",
                                     "--percentile=99", "--report-interval=0", "run"), self.ctx.seconds * 3 + 60)
            m = re.search(r"transactions:\s+(\d+)\s+\(([\d.]+) per sec", out)
            t = re.search(r"total time:\s+([\d.]+)s", out)
            q = re.search(r"99th percentile:\s+([\d.]+)", out)
            if not (m and t):
                raise RunError("sysbench: no transaction count in its output: " + out[-400:])
            return Result(ops=float(m.group(1)), seconds=float(t.group(1)), p99_ms=float(q.group(1)) if q else None)

        return self.daemon_measure(p, preload, {"mariadb-rw": client}, lambda: self._stop(d, p))


# ---------------------------------------------------------------------------
# PostgreSQL + pgbench

class PostgreSQL(Server):
    name = "postgresql"
    workloads = ["postgresql-tpcb"]
    SCALE = 5

    def __init__(self, ctx: Ctx):
        super().__init__(ctx)
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"),
                      key=lambda p: int(re.sub(r"\D", "", p.split("/")[4]) or 0))
        if not bins:
            raise Skip("no /usr/lib/postgresql/*/bin/postgres (Debian package postgresql)")
        self.bindir = os.path.dirname(bins[-1])
        self.pgbench = os.path.join(self.bindir, "pgbench")
        if not os.access(self.pgbench, os.X_OK):
            self.pgbench = which("pgbench", "postgresql-contrib")
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user:
            try:
                pwd.getpwnam(self.user)
            except KeyError:
                raise Skip("running as root and there is no 'postgres' account (postgresql)")

    def _start(self, d: str, preload: Optional[str]) -> subprocess.Popen:
        args = [f"{self.bindir}/postgres", "-D", f"{d}/data", "-k", d, "-c", "listen_addresses=",
                "-c", "shared_buffers=128MB", "-c", "synchronous_commit=off", "-c", "max_connections=40",
                "-c", "logging_collector=off", "-c", "log_min_messages=warning"]
        logf = open(f"{d}/server.log", "w")
        try:
            p = spawn(args, env=self.server_env(preload), stdin=subprocess.DEVNULL, stdout=logf,
                                 stderr=subprocess.STDOUT, user=self.user, cwd=d)
        finally:
            logf.close()
        wait_until(lambda: subprocess.run([f"{self.bindir}/pg_isready", "-q", "-h", d], env=base_env(),
                                          timeout=10).returncode == 0, 60, "postgres", p, f"{d}/server.log")
        return p

    def prepare(self, t: str) -> None:
        chown_tree(t, self.user)
        run([f"{self.bindir}/initdb", "-D", f"{t}/data", "-U", "postgres", "--auth=trust", "--no-sync"], 180,
            user=self.user, cwd=t)
        p = self._start(t, None)
        try:
            run([self.pgbench, "-h", t, "-U", "postgres", "-i", "-q", "-s", str(self.SCALE), "postgres"], 300,
                user=self.user, cwd=t)
        finally:
            stop_process(p, signal.SIGINT, 60)  # fast shutdown

    def measure(self, d: str, preload: Optional[str]) -> dict[str, Result]:
        p = self._start(d, preload)

        def client() -> Result:
            logdir = f"{d}/pgbench-log"
            os.makedirs(logdir)
            chown_tree(logdir, self.user)
            out = run([self.pgbench, "-h", d, "-U", "postgres", "-n", "-c", str(self.ctx.threads), "-j",
                       str(self.ctx.threads), "-T", str(max(1, int(self.ctx.seconds))), "-l",
                       "--log-prefix", f"{logdir}/tx", "postgres"], self.ctx.seconds * 3 + 60, user=self.user,
                      cwd=d)
            m = re.search(r"number of transactions actually processed:\s+(\d+)", out)
            if not m:
                raise RunError("pgbench: no transaction count in its output: " + out[-400:])
            lat = []  # per-transaction log: client tx_no latency_us script epoch us
            for fn in glob.glob(f"{logdir}/tx.*"):
                with open(fn) as f:
                    for line in f:
                        parts = line.split()
                        if len(parts) >= 3:
                            lat.append(int(parts[2]) / 1000.0)
            p99 = percentile(lat, 99)
            return Result(ops=float(m.group(1)), seconds=max(1, int(self.ctx.seconds)), p99_ms=p99)

        return self.daemon_measure(p, preload, {"postgresql-tpcb": client},
                                   lambda: stop_process(p, signal.SIGINT, 60))


# ---------------------------------------------------------------------------
# Redis + redis-benchmark

class Redis(Server):
    name = "redis"
    workloads = ["redis-set", "redis-get"]

    def __init__(self, ctx: Ctx):
        super().__init__(ctx)
        self.server = which("redis-server", "redis-server")
        self.bench = which("redis-benchmark", "redis-tools")
        self.cli = which("redis-cli", "redis-tools")

    def prepare(self, t: str) -> None:
        pass  # redis-benchmark makes its own keys

    def measure(self, d: str, preload: Optional[str]) -> dict[str, Result]:
        sock = f"{d}/sock"
        p = spawn([self.server, "--port", "0", "--unixsocket", sock, "--save", "", "--appendonly", "no",
                              "--dir", d, "--daemonize", "no", "--logfile", f"{d}/redis.log",
                              "--io-threads", "1"],
                             env=self.server_env(preload), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        wait_until(lambda: run([self.cli, "-s", sock, "ping"], 10).strip() == "PONG", 30, "redis-server", p,
                   f"{d}/redis.log")

        def bench(test: str) -> Callable[[], Result]:
            def client() -> Result:
                # redis-benchmark takes a request count, not a time: a short
                # calibration run sets the count for about --seconds.
                base = [self.bench, "-s", sock, "-c", str(max(2, self.ctx.threads * 4)), "-d", "256",
                        "-r", "100000", "--csv", "--precision", "3", "-t", test]
                cal = self._csv(run(base + ["-n", "5000"], 120))
                n = max(5000, int(cal[0] * self.ctx.seconds))
                t0 = time.monotonic()
                rps, p99 = self._csv(run(base + ["-n", str(n)], self.ctx.seconds * 4 + 60))
                return Result(ops=float(n), seconds=n / rps if rps else time.monotonic() - t0, p99_ms=p99)
            return client

        def stop():
            subprocess.run([self.cli, "-s", sock, "shutdown", "nosave"], capture_output=True, timeout=30)
            stop_process(p)

        return self.daemon_measure(p, preload, {"redis-set": bench("set"), "redis-get": bench("get")}, stop)

    @staticmethod
    def _csv(out: str) -> tuple[float, Optional[float]]:
        for line in out.splitlines():
            cells = [c.strip('"') for c in line.strip().split(",")]
            if len(cells) >= 7 and cells[0] in ("SET", "GET"):
                return float(cells[1]), float(cells[6])
        raise RunError("redis-benchmark: no CSV result line: " + out[-400:])


# ---------------------------------------------------------------------------
# In-process databases: the program itself is preloaded and measured.

def measure_program(argv: list[str], preload: Optional[str], env: dict[str, str], timeout: float,
                    cwd: str, feed: Optional[Callable[[subprocess.Popen], Result]] = None) -> tuple[str, Result]:
    """Run argv under the allocator; CPU from wait4, memory sampled as for servers.
    feed, if given, talks to the program's stdin/stdout and returns the client-side figures."""
    env = dict(env)
    if preload:
        env["LD_PRELOAD"] = preload
    p = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.PIPE if feed else subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    sampler = MemorySampler(p.pid)

    def kill():  # not Popen.kill: its poll() would reap the child before our wait4
        try:
            os.kill(p.pid, signal.SIGKILL)
        except OSError:
            pass

    killer = threading.Timer(timeout, kill)
    killer.start()
    out, res, err = "", Result(), None
    try:
        check_preloaded(p.pid, preload)
        if feed:
            res = feed(p)
            p.stdin.close()
        out = p.stdout.read()
    except (RunError, OSError, ValueError) as e:
        err = e
        kill()
    finally:
        killer.cancel()
        peak = sampler.stop()
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        for f in (p.stdin, p.stdout):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass
    if err is not None:
        raise RunError(f"{os.path.basename(argv[0])}: {err} (exit status {p.returncode})")
    if p.returncode != 0:
        raise RunError(f"{os.path.basename(argv[0])} exited {p.returncode}: {out[-500:]}")
    res.cpu_s = ru.ru_utime + ru.ru_stime
    res.peak_kb = peak
    return out, res


class RocksDB(Server):
    name = "rocksdb"
    workloads = ["rocksdb-readrandom"]
    NUM = 300000

    def __init__(self, ctx: Ctx):
        super().__init__(ctx)
        self.db_bench = shutil.which("db_bench") or shutil.which("rocksdb_db_bench") or \
            which("db_bench", "rocksdb-tools")

    def _common(self, d: str) -> list[str]:
        return [self.db_bench, f"--db={d}/db", f"--num={self.NUM}", "--value_size=200", "--compression_type=none",
                "--cache_size=8388608", f"--wal_dir={d}/db"]

    def prepare(self, t: str) -> None:
        run(self._common(t) + ["--benchmarks=fillrandom,compact", "--threads=1"], 600, cwd=t)

    def measure(self, d: str, preload: Optional[str]) -> dict[str, Result]:
        out, res = measure_program(self._common(d) + [
            "--benchmarks=readrandom", "--use_existing_db=1", f"--threads={self.ctx.threads}",
            f"--duration={max(1, int(self.ctx.seconds))}", "--histogram=1"],
            preload, self.ctx.env, self.ctx.seconds * 3 + 120, d)
        m = re.search(r"readrandom\s*:\s*([\d.]+) micros/op (\d+) ops/sec(?:\s+([\d.]+) seconds\s+(\d+) operations)?",
                      out)
        q = re.search(r"P99:\s*([\d.]+)", out)
        if not m:
            raise RunError("db_bench: no readrandom line in its output: " + out[-400:])
        ops_s = float(m.group(2))
        ops = float(m.group(4)) if m.group(4) else ops_s * self.ctx.seconds
        res.ops, res.seconds = ops, ops / ops_s if ops_s else self.ctx.seconds
        res.p99_ms = float(q.group(1)) / 1000.0 if q else None
        return {"rocksdb-readrandom": res}


class SQLite(Server):
    """The sqlite3 shell on a database file, fed one transaction at a time
    through its stdin (inserts, an indexed range query, updates, a delete:
    speedtest1-like), each followed by a marker line whose echo ends it."""
    name = "sqlite"
    workloads = ["sqlite-mixed"]
    ROWS = 20000

    def __init__(self, ctx: Ctx):
        super().__init__(ctx)
        self.sqlite3 = which("sqlite3", "sqlite3")

    def prepare(self, t: str) -> None:
        sql = f"""PRAGMA journal_mode=WAL;
CREATE TABLE t(a INTEGER PRIMARY KEY, b INTEGER, c TEXT);
CREATE INDEX tb ON t(b);
WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {self.ROWS})
INSERT INTO t SELECT i, (i * 7919) % {self.ROWS}, printf('%.*c', 40 + i % 200, 'x') FROM s;
"""
        run([self.sqlite3, f"{t}/db.sqlite"], 300, input=sql, cwd=t)

    def measure(self, d: str, preload: Optional[str]) -> dict[str, Result]:
        rows = self.ROWS

        def feed(p: subprocess.Popen) -> Result:
            p.stdin.write("PRAGMA synchronous=NORMAL;\nPRAGMA cache_size=-8000;\n")
            lat, i = [], 0
            t_end = time.monotonic() + self.ctx.seconds
            t0 = time.monotonic()
            while time.monotonic() < t_end:
                k = (i * 104729) % rows
                tx = (f"BEGIN;\n"
                      f"INSERT INTO t(b, c) SELECT (a * 31 + {i}) % {rows}, printf('%.*c', 20 + a % 300, 'y') "
                      f"FROM t WHERE a BETWEEN {k} AND {k + 49};\n"
                      f"SELECT count(*), sum(length(c)) FROM t WHERE b BETWEEN {k} AND {k + 100};\n"
                      f"UPDATE t SET c = c || 'z', b = b + 1 WHERE b BETWEEN {k} AND {k + 20};\n"
                      f"DELETE FROM t WHERE a IN (SELECT a FROM t WHERE a > {rows} ORDER BY a LIMIT 50);\n"
                      f"COMMIT;\nSELECT 'done {i}';\n")
                s = time.monotonic()
                p.stdin.write(tx)
                p.stdin.flush()
                want = f"done {i}"
                while True:
                    line = p.stdout.readline()
                    if not line:
                        raise RunError("sqlite3 ended early")
                    if line.strip() == want:
                        break
                    if line.startswith(("Error", "Parse error", "Runtime error")):
                        raise RunError("sqlite3: " + line.strip())
                lat.append((time.monotonic() - s) * 1e3)
                i += 1
            return Result(ops=float(i), seconds=time.monotonic() - t0, p99_ms=percentile(lat, 99))

        _, res = measure_program([self.sqlite3, "-batch", f"{d}/db.sqlite"], preload, self.ctx.env,
                                 self.ctx.seconds * 3 + 60, d, feed)
        return {"sqlite-mixed": res}


SERVER_CLASSES = {"mariadb": MariaDB, "postgresql": PostgreSQL, "rocksdb": RocksDB, "sqlite": SQLite, "redis": Redis}


# ---------------------------------------------------------------------------
# Main

@dataclass
class Cell:
    results: list[Result] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def med(self, f: Callable[[Result], Optional[float]]) -> Optional[float]:
        vals = [v for v in (f(r) for r in self.results) if v is not None]
        return statistics.median(vals) if vals else None


def fmt(v: Optional[float], spec: str) -> str:
    return "-" if v is None else format(v, spec)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="run_servers.py", description=__doc__.split("\n\n")[0],
                                 epilog="servers: " + ", ".join(SERVERS) + "; allocators: " + ", ".join(ALLOCATORS))
    ap.add_argument("--build", metavar="DIR", help="meson build directory (default: build/ at the top of the tree)")
    ap.add_argument("--servers", metavar="LIST", help="comma-separated subset (default: all)")
    ap.add_argument("--allocators", metavar="LIST", help="comma-separated subset (default: all available)")
    ap.add_argument("--lib", action="append", default=[], metavar="NAME=PATH",
                    help="use PATH for allocator NAME; a new NAME adds an allocator")
    ap.add_argument("--rounds", type=int, default=3, metavar="N", help="rounds (default 3)")
    ap.add_argument("--seconds", type=float, default=10.0, metavar="S",
                    help="client run time per measured run (default 10)")
    ap.add_argument("--threads", type=int, default=2, metavar="N", help="client threads / connections (default 2)")
    ap.add_argument("--smoke", action="store_true",
                    help="a short check: 1 round of 2 s, smaller data (the meson test)")
    ap.add_argument("--skip-status", type=int, default=0, metavar="N",
                    help="exit with N when no server can be run here (meson: 77); default 0")
    ap.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    ap.add_argument("--chart", metavar="FILE.png", help="also draw throughput, p99, CPU/op and peak memory "
                                                        f"relative to {REFERENCE}'s (gnuplot)")
    ap.add_argument("--json", metavar="FILE", help="write every run's figures to FILE")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (for a look at the logs)")
    args = ap.parse_args(argv[1:])
    if args.smoke:
        args.rounds, args.seconds = 1, 2.0
        MariaDB.TABLE_SIZE, PostgreSQL.SCALE, RocksDB.NUM, SQLite.ROWS = 2000, 1, 20000, 2000
    if args.rounds < 1 or args.seconds <= 0 or args.threads < 1:
        ap.error("--rounds, --seconds and --threads must be positive")

    build = Path(args.build) if args.build else Path(__file__).resolve().parent.parent.parent / "build"
    try:
        libs = allocator_libs(build, args.lib)
    except ValueError as e:
        ap.error(str(e))
    wanted_allocs = args.allocators.split(",") if args.allocators else list(libs)
    wanted_servers = args.servers.split(",") if args.servers else SERVERS
    for a in wanted_allocs:
        if a not in libs:
            ap.error(f"unknown allocator '{a}' (known: {', '.join(libs)})")
    for s in wanted_servers:
        if s not in SERVER_CLASSES:
            ap.error(f"unknown server '{s}' (known: {', '.join(SERVERS)})")

    notes: list[str] = []
    allocs = []
    for a in wanted_allocs:
        if libs[a] is not None and not os.path.isfile(libs[a]):
            notes.append(f"allocator {a}: skipped, {libs[a]} not found")
            continue
        allocs.append(a)
    if not allocs:
        print("run_servers: no allocator available", file=sys.stderr)
        return 2

    work = tempfile.mkdtemp(prefix="run_servers.")
    os.chmod(work, 0o755)  # servers that run as their own account reach their directories
    ctx = Ctx(work=work, seconds=args.seconds, threads=args.threads, smoke=args.smoke)
    # The libraries are copied next to the data: readable by the servers' accounts
    # whatever the permissions of the build tree.
    preload: dict[str, Optional[str]] = {}
    os.makedirs(f"{work}/libs")
    for a in allocs:
        if libs[a] is None:
            preload[a] = None
        else:
            dst = f"{work}/libs/{a}-{os.path.basename(libs[a])}"
            shutil.copy2(os.path.realpath(libs[a]), dst)
            os.chmod(dst, 0o755)
            preload[a] = dst

    started = datetime.datetime.now().astimezone()
    servers: list[Server] = []
    for s in wanted_servers:
        try:
            servers.append(SERVER_CLASSES[s](ctx))
        except Skip as e:
            notes.append(f"server {s}: skipped, {e}")
    cells: dict[tuple[str, str], Cell] = {}
    runs: list[dict] = []
    any_fail = False
    try:
        ready: list[Server] = []
        for srv in servers:
            t = f"{work}/template-{srv.name}"
            os.makedirs(t)
            log(f"preparing {srv.name} data under glibc ...")
            try:
                srv.prepare(t)
                ready.append(srv)
            except (RunError, OSError) as e:
                notes.append(f"server {srv.name}: FAILED to prepare its data under glibc: {e}")
                any_fail = True
        for srv in ready:
            for wl in srv.workloads:
                for a in allocs:
                    cells[(wl, a)] = Cell()
        for rnd in range(args.rounds):
            for si, srv in enumerate(ready):
                k = (rnd + si) % len(allocs)
                for a in allocs[k:] + allocs[:k]:
                    d = f"{work}/run-{srv.name}-{a}-{rnd}"
                    shutil.copytree(f"{work}/template-{srv.name}", d, symlinks=True)
                    owner = getattr(srv, "user", None)
                    chown_tree(d, owner)
                    try:
                        res = srv.measure(d, preload[a])
                        for wl, r in res.items():
                            cells[(wl, a)].results.append(r)
                            runs.append({"workload": wl, "allocator": a, "round": rnd, "ok": True,
                                         "ops": r.ops, "seconds": r.seconds, "p99_ms": r.p99_ms, "cpu_s": r.cpu_s,
                                         "peak_kb": r.peak_kb})
                            log(f"[round {rnd + 1}/{args.rounds}] {wl:20s} {a:9s} {fmt(r.throughput, '>10.0f')} "
                                f"ops/s  p99 {fmt(r.p99_ms, '.3g')} ms  CPU/op {fmt(r.cpu_us_per_op, '.1f')} us  "
                                f"peak {r.peak_kb / 1024:.1f} MiB")
                    except (RunError, OSError, subprocess.SubprocessError) as e:
                        any_fail = True
                        for wl in srv.workloads:
                            cells[(wl, a)].failures.append(str(e))
                            runs.append({"workload": wl, "allocator": a, "round": rnd, "ok": False, "error": str(e)})
                        log(f"[round {rnd + 1}/{args.rounds}] {srv.name} under {a}: FAILED: {e}")
                    finally:
                        if not args.keep:
                            shutil.rmtree(d, ignore_errors=True)
    finally:
        for p in list(LIVE):
            stop_process(p, signal.SIGKILL)
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    print(f"# mimalloc-numa real-server benchmarks: {' '.join([os.path.basename(argv[0])] + argv[1:])}")
    print(f"# started {started.isoformat(timespec='seconds')} on {platform.node()}, {os.cpu_count()} CPUs, "
          f"load average at the end {os.getloadavg()[0]:.1f}; {args.rounds} rounds of {args.seconds:g} s per run, "
          f"{args.threads} client threads, allocators rotated each round")
    for a in allocs:
        print(f"#   allocator {a:9s} {libs[a] or '(no LD_PRELOAD)'}")
    for n in notes:
        print(f"# note: {n}")
    if not cells:
        print("no server could be run here")
        return args.skip_status if not any_fail else 1

    print()
    print(f"## Real servers: medians of {args.rounds} rounds")
    wls = list(dict.fromkeys(w for (w, _) in cells))
    headers = ["workload", "allocator", "ops/s", f"x{REFERENCE}", "p99 ms", "server CPU us/op", "peak MiB", "runs"]
    rows = []
    for wl in wls:
        ref = cells.get((wl, REFERENCE))
        ref_tp = ref.med(lambda r: r.throughput) if ref else None
        for a in allocs:
            c = cells[(wl, a)]
            tp = c.med(lambda r: r.throughput)
            runs_txt = f"{len(c.results)}/{len(c.results) + len(c.failures)}"
            if c.failures:
                runs_txt = f"FAIL {len(c.failures)}/{len(c.results) + len(c.failures)}"
            rows.append([wl, a, fmt(tp, ".0f"), "-" if (tp is None or not ref_tp) else f"{tp / ref_tp:.2f}x",
                         fmt(c.med(lambda r: r.p99_ms), ".3g"), fmt(c.med(lambda r: r.cpu_us_per_op), ".1f"),
                         fmt(c.med(lambda r: r.peak_kb / 1024.0 if r.peak_kb else None), ".1f"), runs_txt])
    if args.markdown:
        print("| " + " | ".join(headers) + " |")
        print("|:---|:---|" + "---:|" * (len(headers) - 3) + ":---|")
        for r in rows:
            print("| " + " | ".join(r) + " |")
    else:
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
        print("  ".join(h.ljust(w) for h, w in zip(headers, widths)))
        for r in rows:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
    print()
    print("ops/s: the client's count (transactions, reads, requests); p99: the client's latency; server CPU: "
          "user+system time of the server's processes during the client's run (db_bench and sqlite3: the "
          "whole program) per operation; peak: highest summed Pss of the server's processes, sampled every 0.2 s.")
    fails = [f"  {wl} under {a}: {c.failures[0][:300]}" for (wl, a), c in cells.items() if c.failures]
    if fails:
        print()
        print("## FAILED runs")
        print("\n".join(fails))

    if args.chart:
        why = chart.write_chart(
            args.chart, f"mimalloc-numa: real servers, medians of {args.rounds} rounds, relative to {REFERENCE}",
            wls, allocs, REFERENCE,
            [("ops/s (higher is better)", {(w, a): cells[(w, a)].med(lambda r: r.throughput) for w in wls for a in allocs}),
             ("p99 latency", {(w, a): cells[(w, a)].med(lambda r: r.p99_ms) for w in wls for a in allocs}),
             ("server CPU per op", {(w, a): cells[(w, a)].med(lambda r: r.cpu_us_per_op) for w in wls for a in allocs}),
             ("peak memory", {(w, a): cells[(w, a)].med(lambda r: r.peak_kb or None) for w in wls for a in allocs})],
            subtitle=f"{started.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs, {args.seconds:g} s per run, "
                     f"{args.threads} client threads; absolute figures: the table")
        print(f"chart: {args.chart}" if why is None else f"chart: not written: {why}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"argv": argv[1:], "started": started.isoformat(timespec="seconds"),
                       "allocators": {a: libs[a] for a in allocs}, "notes": notes, "runs": runs}, f, indent=1)
            f.write("\n")
    return 1 if any_fail else 0


if __name__ == "__main__":
    run_main(main, "run_servers")
