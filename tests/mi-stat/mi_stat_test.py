#!/usr/bin/env python3
"""Tests of mi-stat (tools/mi-stat), suite 'tools'.

usage: mi_stat_test.py --publisher PUBLISHER --schema SCHEMA [--lib LIB] [--mi-enable MI_ENABLE] MI_STAT GROUP...

GROUP is a test class below or Class.test_name. Exit status: 0 passed,
1 failed, 77 every test skipped (meson's "skipped").

Until the library publishes, the areas are written by mi-stat-publisher
(publisher.cpp): it publishes exact figures for its own pid through the
public header alone, and updates them in a loop; its docstring gives the
formula (figures()). Each test publishes into its own temporary directory
and runs mi-stat --dir on it, except where the default directories are the
point (List: $XDG_RUNTIME_DIR/mimalloc-numa). Nothing is written to /run or /etc.

  List         one line per process, node columns, the default directories,
               an empty directory
  Detail       mi-stat PID: every figure exact (JSON), the tables, --bins, a
               pid that publishes nothing (exit 1), several PIDs
  Tree         --tree over a shell, a publisher and its 4 children: 6
               processes, 5 publish, totals the exact sums of the 5
  Stale        a killed publisher's file and a reused pid: skipped, listed
               with --all, JSON "skipped"; mi-stat PID of the dead: exit 1
  Torn         a publisher writing back to back: 100+ samples, every one
               consistent (the sequence lock); an area left mid-update
               (seq odd) is given up on within the bound, with a message
  Invalid      bad magic, unknown version, short file, counts and offsets out
               of range, a name without NUL, a name that is not the
               content's: each a warning naming the file and the cause, the
               good process still listed, exit 0
  Permissions  (root) another user's 0600 file: counted and said once
               ("run as root to see 1 more process") when mi-stat runs as nobody
  Json         every mode's document validates against docs/mi-stat.schema.json
               (python3-jsonschema); a document missing a field does not
  OpenMetrics  promtool check metrics (Debian: prometheus) on the list, --bins
               and the tree; labels, values, escaping, "# EOF"
  Watch        --watch 1 for 2.5 s: 3 frames, each cleared, the figures moving
  Record       --record --for --interval: a line per sample, times and updates
               going up; a tree's record
  Plot         --plot from a record: a PNG (signature); a malformed line is
               skipped with file:line; gnuplot missing: the message, exit 1
  Usage        bad options: a message naming the problem, exit 2; --help, --version
  EndToEnd     (root, PostgreSQL, the library publishing) a cluster put on the
               allocator with mi-enable and started by pg_ctlcluster, pgbench -c 4:
               mi-stat --tree <postmaster> shows the postmaster and the 4
               backends publishing, totals that change; JSON and OpenMetrics
               checked. Skipped (77) with the reason while the library does not
               publish yet.
"""
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

MI_STAT = None
PUBLISHER = None
SCHEMA = None
LIB = None
MI_ENABLE = None

# Offsets of the area's header (include/mimalloc-numa-stats.h; the header's
# layout never changes): magic 0, version 8, size 12, seq 16, pid 24,
# start_ticks 32, ...; program at 72.
OFF_MAGIC, OFF_VERSION, OFF_SIZE, OFF_SEQ, OFF_PID, OFF_TICKS, OFF_PROGRAM = 0, 8, 12, 16, 24, 32, 72
MEMORY_FIELDS = ["reserved", "committed", "in_use", "purgeable", "huge_1g", "large_2m", "local_frees",
                 "remote_frees", "fallbacks", "purged"]
PROCESS_FIELDS = ["threads", "segments", "segments_abandoned", "purges", "purge_ns", "os_mmap_calls",
                  "os_commit_calls", "os_purge_calls", "page_faults_minor", "page_faults_major", "rss",
                  "metadata_committed"]


def figures(v, nodes):
    """What mi-stat-publisher --value v --nodes nodes publishes (publisher.cpp)."""
    f = {"threads": v, "segments": 2 * v, "segments_abandoned": v % 3, "purges": 5 * v, "purge_ns": 1000 * v,
         "os_mmap_calls": 3 * v, "os_commit_calls": 4 * v, "os_purge_calls": 5 * v, "page_faults_minor": 100 * v,
         "page_faults_major": v % 2, "rss": 4096 * v, "metadata_committed": 65536 + v}
    f["nodes"] = [dict({"node": i}, **{k: v * 1000000 + i * 1000 + j + 1 for j, k in enumerate(MEMORY_FIELDS)})
                  for i in range(nodes)]
    f["totals"] = {k: sum(n[k] for n in f["nodes"]) for k in MEMORY_FIELDS}
    f["bins"] = [{"block_size": s, "live_blocks": v * (b + 1), "live_bytes": v * (b + 1) * s,
                  "allocations": 10 * v * (b + 1)} for b, s in enumerate([16, 32, 64, 128])]
    return f


def add_figures(items):
    out = {k: sum(f[k] for f in items) for k in PROCESS_FIELDS}
    out["totals"] = {k: sum(f["totals"][k] for f in items) for k in MEMORY_FIELDS}
    nodes = max(len(f["nodes"]) for f in items)
    out["nodes"] = [dict({"node": i}, **{k: sum(f["nodes"][i][k] for f in items if i < len(f["nodes"]))
                                         for k in MEMORY_FIELDS}) for i in range(nodes)]
    return out


def strip(doc, with_bins=False):
    """The figures of a process or tree document, as figures() gives them."""
    keys = PROCESS_FIELDS + ["totals", "nodes"] + (["bins"] if with_bins else [])
    return {k: doc[k] for k in keys}


def human(b):
    """mi-stat's bytes_human."""
    if b < 1024:
        return f"{b} B"
    v, u = float(b), 0
    while v >= 1024 and u < 6:
        v /= 1024
        u += 1
    return f"{v:.1f} {['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'][u]}"


def start_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        line = f.read()
    return int(line[line.rindex(")") + 2:].split()[19])


class Publishers:
    """mi-stat-publisher processes, ended (SIGTERM) at cleanup."""

    def __init__(self, test, directory):
        self.test = test
        self.dir = directory
        self.procs = []

    def start(self, value, nodes=2, children=0, program=None, extra=(), wrap_in_shell=False):
        args = [PUBLISHER, "--dir", self.dir, "--value", str(value), "--nodes", str(nodes),
                "--children", str(children)] + list(extra)
        if program:
            args += ["--program", program]
        if wrap_in_shell:
            # A parent that does not publish: sh waits for the publisher.
            args = ["sh", "-c", " ".join(f"'{a}'" for a in args) + " & wait"]
        p = subprocess.Popen(args)
        self.procs.append(p)
        self.test.addCleanup(self.end, p)
        return p

    def end(self, p):
        if p.poll() is None:
            if p.args[0] == "sh":
                # the shell's publisher and its children end with it: TERM the publisher first
                subprocess.run(["pkill", "-TERM", "-P", str(p.pid)])
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def wait_files(self, count, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            names = [n for n in os.listdir(self.dir) if n.endswith(".stats")]
            if len(names) >= count:
                return names
            time.sleep(0.05)
        self.test.fail(f"{count} statistics files did not appear in {self.dir}: {os.listdir(self.dir)}")

    def file_of(self, pid):
        for n in os.listdir(self.dir):
            if n.startswith(f"{pid}-") and n.endswith(".stats"):
                return os.path.join(self.dir, n)
        return None


class Base(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="mi-stat-test-")
        os.chmod(self.tmp, 0o755)
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.dir = os.path.join(self.tmp, "areas")
        os.makedirs(self.dir)
        os.chmod(self.dir, 0o755)
        self.pub = Publishers(self, self.dir)

    def env(self, extra=None):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MIMALLOC_", "LD_"))}
        env["LC_ALL"] = "C.UTF-8"
        env.update(extra or {})
        return env

    def mi_stat(self, *args, dirs=True, env=None, timeout=60, user=None):
        cmd = [MI_STAT] + (["--dir", self.dir] if dirs else []) + list(args)
        if user:
            cmd = ["setpriv", f"--reuid={user}", f"--regid={user_group(user)}", "--clear-groups", "--"] + cmd
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout,
                           env=env or self.env())
        return p

    def mi_stat_json(self, *args, **kw):
        p = self.mi_stat("--json", *args, **kw)
        self.assertIn(p.returncode, (0, 1), p.stderr)
        return json.loads(p.stdout), p

    def path(self, name):
        return os.path.join(self.tmp, name)


def user_group(user):
    import grp
    import pwd
    return grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name


class List(Base):
    def test_one_line_per_process(self):
        a = self.pub.start(3, nodes=2)
        b = self.pub.start(5, nodes=3)
        self.pub.wait_files(2)
        p = self.mi_stat()
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr, "")
        print(p.stdout)
        lines = p.stdout.splitlines()
        self.assertEqual(lines[0].split(), ["PID", "PROGRAM", "RSS", "COMMITTED", "IN", "USE", "NODE", "0", "NODE",
                                            "1", "NODE", "2"])
        self.assertEqual(len(lines), 3)
        for line, proc, v, nodes in [(lines[1], a, 3, 2), (lines[2], b, 5, 3)]:
            f = figures(v, nodes)
            want = [str(proc.pid), "mi-stat-publishe", human(f["rss"]), human(f["totals"]["committed"]),
                    human(f["totals"]["in_use"])] + [human(n["in_use"]) for n in f["nodes"]]
            self.assertEqual(line.split()[0], str(proc.pid))
            for w in want:
                self.assertIn(w, line)
        # process 3 has no node 2: a dash there
        self.assertTrue(lines[1].rstrip().endswith("-"), lines[1])

    def test_default_directories(self):
        # As a publisher without /run/mimalloc-numa does: $XDG_RUNTIME_DIR/mimalloc-numa.
        xdg = os.path.join(self.tmp, "xdg")
        os.makedirs(os.path.join(xdg, "mimalloc-numa"))
        pub = Publishers(self, os.path.join(xdg, "mimalloc-numa"))
        proc = pub.start(7, nodes=1)
        pub.wait_files(1)
        p = self.mi_stat("--json", dirs=False, env=self.env({"XDG_RUNTIME_DIR": xdg}))
        self.assertEqual(p.returncode, 0, p.stderr)
        pids = [x["pid"] for x in json.loads(p.stdout)["list"]]
        self.assertIn(proc.pid, pids)
        # and not without it (unless /run/mimalloc-numa or /tmp held it: it does not)
        env = self.env()
        env.pop("XDG_RUNTIME_DIR", None)
        p = self.mi_stat("--json", dirs=False, env=env)
        self.assertNotIn(proc.pid, [x["pid"] for x in json.loads(p.stdout)["list"]])

    def test_empty(self):
        p = self.mi_stat()
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("no process publishes statistics", p.stdout)
        p = self.mi_stat("--dir", os.path.join(self.tmp, "nonexistent"))
        self.assertEqual(p.returncode, 0, p.stderr)


class Detail(Base):
    def test_figures_exact(self):
        proc = self.pub.start(4, nodes=3)
        self.pub.wait_files(1)
        doc, p = self.mi_stat_json(str(proc.pid), "--bins")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(doc["processes"], 1)
        d = doc["list"][0]
        self.assertEqual(d["pid"], proc.pid)
        self.assertEqual(d["program"], "mi-stat-publisher")
        self.assertEqual(d["start_ticks"], start_ticks(proc.pid))
        self.assertEqual(d["interval_ms"], 100)
        self.assertGreaterEqual(d["updates"], 1)
        self.assertLess(abs(d["updated_unix_ms"] - time.time() * 1000), 5000)
        self.assertEqual(strip(d, with_bins=True), figures(4, 3))

    def test_tables(self):
        proc = self.pub.start(4, nodes=2)
        self.pub.wait_files(1)
        p = self.mi_stat(str(proc.pid), "--bins")
        self.assertEqual(p.returncode, 0, p.stderr)
        print(p.stdout)
        f = figures(4, 2)
        out = p.stdout
        self.assertIn(f"pid {proc.pid}  mi-stat-publisher", out)
        for i, n in enumerate(f["nodes"]):
            row = next(line for line in out.splitlines() if line.strip().startswith(f"node {i}"))
            self.assertEqual(row.split()[2:], [x for k in ["reserved", "committed", "in_use", "purgeable", "huge_1g",
                                                          "large_2m", "purged"] for x in human(n[k]).split()])
        self.assertIn(f"process: RSS {human(f['rss'])}, allocator metadata {human(f['metadata_committed'])}, "
                      f"threads 4, segments 8 (1 abandoned)", out)
        self.assertIn("purges: 20 taking 0.004 ms in all; OS calls: 12 mmap, 16 commit, 20 purge; "
                      "page faults: 400 minor, 0 major", out)
        for b in f["bins"]:
            self.assertRegex(out, rf"\n\s+{re.escape(human(b['block_size']))}\s+{b['live_blocks']}\s+"
                                  rf"{re.escape(human(b['live_bytes']))}\s+{b['allocations']}\n")
        p = self.mi_stat(str(proc.pid))
        self.assertNotIn("size classes", p.stdout)

    def test_not_publishing(self):
        proc = self.pub.start(4)
        self.pub.wait_files(1)
        p = self.mi_stat(str(os.getpid()), str(proc.pid))
        self.assertEqual(p.returncode, 1)
        self.assertIn(f"pid {os.getpid()} publishes no statistics", p.stderr)
        self.assertIn(f"pid {proc.pid}  mi-stat-publisher", p.stdout)

    def test_several(self):
        a, b = self.pub.start(1), self.pub.start(2)
        self.pub.wait_files(2)
        doc, p = self.mi_stat_json(str(b.pid), str(a.pid))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual([x["pid"] for x in doc["list"]], [b.pid, a.pid])


class Tree(Base):
    def test_four_children_add_up(self):
        shell = self.pub.start(10, nodes=2, children=4, wrap_in_shell=True)
        self.pub.wait_files(5)
        time.sleep(0.2)
        doc, p = self.mi_stat_json("--tree", str(shell.pid))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(doc["tree_root"], shell.pid)
        self.assertEqual(doc["processes"], 6)
        self.assertEqual(doc["publishing"], 5)
        self.assertEqual(doc["members"][0], {"pid": shell.pid, "program": "sh", "publishes": False})
        publishing = [m["pid"] for m in doc["members"] if m["publishes"]]
        self.assertEqual(len(publishing), 5)
        # Exactly the sum of each one's own reading, and of the formula.
        each, _ = self.mi_stat_json(*map(str, publishing))
        self.assertEqual(strip(doc), add_figures([strip(x) for x in each["list"]]))
        self.assertEqual(strip(doc), add_figures([figures(v, 2) for v in [10, 11, 12, 13, 14]]))
        p = self.mi_stat("--tree", str(shell.pid))
        print(p.stdout)
        self.assertIn(f"process tree of {shell.pid} (sh): 6 processes, 5 publish statistics", p.stdout)
        self.assertIn(f"not publishing: {shell.pid} sh", p.stdout)
        total = add_figures([figures(v, 2) for v in [10, 11, 12, 13, 14]])["totals"]
        self.assertRegex(p.stdout, rf"\n  total\s+{re.escape(human(total['reserved']))}\s")

    def test_none_publishing(self):
        p = self.mi_stat("--tree", str(os.getpid()))
        self.assertEqual(p.returncode, 1)
        self.assertIn("none of the", p.stderr)

    def test_no_such_process(self):
        dead = subprocess.Popen(["true"])
        dead.wait()
        p = self.mi_stat("--tree", str(dead.pid))
        self.assertEqual(p.returncode, 1)
        self.assertIn(f"--tree {dead.pid}: no such process", p.stderr)


class Stale(Base):
    def test_killed_process(self):
        live = self.pub.start(2)
        dead = self.pub.start(3)
        self.pub.wait_files(2)
        dead.kill()
        dead.wait()
        path = self.pub.file_of(dead.pid)
        self.assertIsNotNone(path, "SIGKILL left no file: nothing to test")
        doc, p = self.mi_stat_json()
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual([x["pid"] for x in doc["list"]], [live.pid])
        self.assertEqual(doc["skipped"], [{"pid": dead.pid, "start_ticks": int(path.split("-")[-1][:-6]),
                                           "path": path, "reason": "stale", "problem": "the process has ended"}])
        p = self.mi_stat()
        self.assertNotIn(f"\n{dead.pid:8d}", "\n" + p.stdout)
        p = self.mi_stat("--all")
        self.assertIn(f"{dead.pid:8d} (stale: the process has ended)  {path}", p.stdout)
        p = self.mi_stat(str(dead.pid))
        self.assertEqual(p.returncode, 1)
        self.assertIn(f"{path} is stale (the process has ended)", p.stderr)

    def test_reused_pid(self):
        # A file of an earlier process with this test's pid: same pid, another start time.
        live = self.pub.start(2)
        self.pub.wait_files(1)
        with open(self.pub.file_of(live.pid), "rb") as f:
            data = bytearray(f.read())
        me, ticks = os.getpid(), start_ticks(os.getpid())
        struct.pack_into("<qQ", data, OFF_PID, me, ticks - 1)
        old = os.path.join(self.dir, f"{me}-{ticks - 1}.stats")
        with open(old, "wb") as f:
            f.write(data)
        doc, p = self.mi_stat_json()
        self.assertEqual([x["pid"] for x in doc["list"]], [live.pid])
        self.assertEqual([(s["pid"], s["reason"], s["problem"]) for s in doc["skipped"]],
                         [(me, "stale", f"pid {me} is now another process")])
        # The same bytes under the live process's name are read: the stale verdict came from the start time.
        struct.pack_into("<qQ", data, OFF_PID, me, ticks)
        with open(os.path.join(self.dir, f"{me}-{ticks}.stats"), "wb") as f:
            f.write(data)
        doc, p = self.mi_stat_json(str(me))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(strip(doc["list"][0]), strip(figures(2, 2)))


class Torn(Base):
    def test_never_torn(self):
        proc = self.pub.start(1, nodes=8, extra=["--torn"])
        self.pub.wait_files(1)
        rec = self.path("torn.jsonl")
        p = self.mi_stat("--record", rec, "--for", "2", "--interval", "0.002", str(proc.pid), timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        samples = [json.loads(line) for line in open(rec)]
        self.assertGreaterEqual(len(samples), 300, f"only {len(samples)} samples")
        ks = []
        for s in samples:
            self.assertEqual(s["processes"], 1, s)
            d = s["list"][0]
            values = [d[k] for k in PROCESS_FIELDS] + [d["totals"][k] for k in MEMORY_FIELDS] + [
                n[k] for n in d["nodes"] for k in MEMORY_FIELDS]
            self.assertEqual(len(set(values)), 1, f"a torn copy: {sorted(set(values))}")
            ks.append(values[0])
        # The writer moved on between samples: the reads were of a live, changing area.
        self.assertGreater(len(set(ks)), len(ks) // 2, ks[:20])
        print(f"{len(samples)} samples, all consistent; update numbers {ks[0]} to {ks[-1]}")

    def test_left_mid_update(self):
        live = self.pub.start(2)
        self.pub.wait_files(1)
        with open(self.pub.file_of(live.pid), "rb") as f:
            data = bytearray(f.read())
        me, ticks = os.getpid(), start_ticks(os.getpid())
        struct.pack_into("<qQ", data, OFF_PID, me, ticks)
        struct.pack_into("<Q", data, OFF_SEQ, 12345)  # odd: a publisher stopped while writing
        path = os.path.join(self.dir, f"{me}-{ticks}.stats")
        with open(path, "wb") as f:
            f.write(data)
        t0 = time.time()
        p = self.mi_stat(str(me))
        self.assertLess(time.time() - t0, 5)
        self.assertEqual(p.returncode, 1)
        self.assertIn(f"{path}: no consistent copy after", p.stderr)
        self.assertIn("seq 12345", p.stderr)
        p = self.mi_stat()
        self.assertEqual(p.returncode, 0)
        self.assertIn(str(live.pid), p.stdout)
        self.assertEqual(p.stderr.count("no consistent copy"), 1, p.stderr)


class Invalid(Base):
    def craft(self, patch, size=None):
        """A copy of a live publisher's area as this test's own (live) pid, patched."""
        with open(self.pub.file_of(self.live.pid), "rb") as f:
            data = bytearray(f.read())
        me, ticks = os.getpid(), start_ticks(os.getpid())
        struct.pack_into("<qQ", data, OFF_PID, me, ticks)
        patch(data)
        if size is not None:
            data = data[:size]
        path = os.path.join(self.dir, f"{me}-{ticks}.stats")
        with open(path, "wb") as f:
            f.write(data)
        return path

    def test_each_problem(self):
        self.live = self.pub.start(2)
        self.pub.wait_files(1)
        # offsets after the 'program' field: threads .. metadata (12), totals (10), then the counts
        counts = OFF_PROGRAM + 64 + 8 * 12 + 8 * 10
        cases = [
            ("bad magic", lambda d: struct.pack_into("<Q", d, OFF_MAGIC, 0x1234), None,
             "not a mimalloc-numa statistics area (bad magic)"),
            ("version 2", lambda d: struct.pack_into("<I", d, OFF_VERSION, 2), None,
             "area version 2, this mi-stat reads version 1"),
            ("short", lambda d: None, 20, "too short for a statistics area (20 bytes)"),
            ("size beyond the file", lambda d: struct.pack_into("<I", d, OFF_SIZE, 1 << 30), None,
             "the area says it holds 1073741824 bytes"),
            ("truncated arrays", lambda d: None, 4096, "the area says it holds"),
            ("65 nodes", lambda d: struct.pack_into("<I", d, counts, 65), None, "counts out of range (65 nodes"),
            ("nodes outside", lambda d: struct.pack_into("<I", d, counts + 8, 0xfffff000), None,
             "nodes[] at offset 4294963200"),
            ("bins overlapping the header", lambda d: struct.pack_into("<I", d, counts + 12, 8), None,
             "bins[] at offset 8"),
            ("program without NUL", lambda d: d.__setitem__(slice(OFF_PROGRAM, OFF_PROGRAM + 64), b"x" * 64), None,
             "the program's name is not NUL-terminated"),
            ("another pid inside", lambda d: struct.pack_into("<q", d, OFF_PID, 1), None,
             "the file's name says pid {me} started at tick {ticks}, the area says pid 1 at tick {ticks}"),
        ]
        me, ticks = os.getpid(), start_ticks(os.getpid())
        for name, patch, size, message in cases:
            message = message.format(me=me, ticks=ticks)
            with self.subTest(name):
                path = self.craft(patch, size)
                p = self.mi_stat()
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertIn(f"mi-stat: warning: {path}: {message}", p.stderr)
                self.assertIn(str(self.live.pid), p.stdout)
                self.assertNotIn(str(os.getpid()), p.stdout)
                p = self.mi_stat(str(os.getpid()))
                self.assertEqual(p.returncode, 1)
                self.assertIn(f"pid {os.getpid()}: {path}: {message}", p.stderr)
                doc, _ = self.mi_stat_json()
                self.assertEqual([s["reason"] for s in doc["skipped"]], ["invalid"])
                os.unlink(path)

    def test_other_files_ignored(self):
        self.live = self.pub.start(2)
        self.pub.wait_files(1)
        for name in ["README", "12-34.stats.tmp", "x-1.stats", "-1.stats", "1-.stats"]:
            with open(os.path.join(self.dir, name), "w") as f:
                f.write("not an area")
        p = self.mi_stat()
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr, "")


class Permissions(Base):
    def test_other_users_files_counted(self):
        if os.geteuid() != 0:
            self.skipTest("needs root (files of two users)")
        if shutil.which("setpriv") is None:
            self.skipTest("setpriv not found (Debian: util-linux)")
        a, b = self.pub.start(2), self.pub.start(3)
        self.pub.wait_files(2)
        for n in os.listdir(self.dir):
            self.assertEqual(os.stat(os.path.join(self.dir, n)).st_mode & 0o777, 0o600)
        p = self.mi_stat(user="nobody")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr.count("\n"), 1, p.stderr)
        self.assertIn("2 processes' statistics not readable by you: run as root to see 2 more processes", p.stderr)
        self.assertNotIn(str(a.pid), p.stdout)
        p = self.mi_stat("--all", user="nobody")
        self.assertIn(f"{a.pid:8d} (unreadable)", p.stdout)
        p = self.mi_stat(str(a.pid), user="nobody")
        self.assertEqual(p.returncode, 1)
        self.assertIn("is another user's (run as root to read it)", p.stderr)
        p = self.mi_stat()
        self.assertEqual(p.returncode, 0)
        self.assertEqual(p.stderr, "")
        self.assertIn(str(a.pid), p.stdout)
        self.assertIn(str(b.pid), p.stdout)


def validator():
    try:
        import jsonschema
    except ImportError:
        raise unittest.SkipTest("python3-jsonschema not installed (Debian: python3-jsonschema)")
    with open(SCHEMA) as f:
        schema = json.load(f)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


class Json(Base):
    def test_every_mode_validates(self):
        v = validator()
        shell = self.pub.start(3, nodes=2, children=4, wrap_in_shell=True)
        self.pub.wait_files(5)
        dead = self.pub.start(9)
        self.pub.wait_files(6)
        dead.kill()
        dead.wait()
        docs = {}
        for name, args in [("list", []), ("list --bins", ["--bins"]), ("tree", ["--tree", str(shell.pid)]),
                           ("tree --bins", ["--tree", str(shell.pid), "--bins"]), ("empty tree", ["--tree", "1"])]:
            docs[name], p = self.mi_stat_json(*args)
        pub_pid = [m["pid"] for m in docs["tree"]["members"] if m["publishes"]][0]
        docs["pid"], _ = self.mi_stat_json(str(pub_pid))
        rec = self.path("r.jsonl")
        p = self.mi_stat("--record", rec, "--for", "1", "--interval", "0.5", "--tree", str(shell.pid))
        self.assertEqual(p.returncode, 0, p.stderr)
        for i, line in enumerate(open(rec)):
            docs[f"record line {i + 1}"] = json.loads(line)
        self.assertEqual(docs["list"]["skipped"][0]["reason"], "stale")
        self.assertIn("bins", docs["tree --bins"])
        for name, doc in docs.items():
            errors = [e.message for e in v.iter_errors(doc)]
            self.assertEqual(errors, [], name)
        # The schema checks something: a document without "in_use" in a node does not validate.
        bad = json.loads(json.dumps(docs["tree"]))
        del bad["nodes"][0]["in_use"]
        self.assertFalse(v.is_valid(bad))
        bad = json.loads(json.dumps(docs["list"]))
        bad["processes"] = "5"
        self.assertFalse(v.is_valid(bad))


class OpenMetrics(Base):
    def promtool(self, text):
        p = subprocess.run(["promtool", "check", "metrics"], input=text, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=60)
        return p.returncode, p.stdout + p.stderr

    def setUp(self):
        super().setUp()
        if shutil.which("promtool") is None:
            self.skipTest("promtool not found (Debian: prometheus)")

    def test_list_passes_promtool(self):
        a = self.pub.start(3, nodes=2, program='db "main" \\ one')
        b = self.pub.start(5, nodes=1)
        self.pub.wait_files(2)
        for args in [[], ["--bins"]]:
            p = self.mi_stat("--openmetrics", *args)
            self.assertEqual(p.returncode, 0, p.stderr)
            rc, out = self.promtool(p.stdout)
            self.assertEqual((rc, out), (0, ""), p.stdout)
        text = p.stdout
        self.assertTrue(text.endswith("\n# EOF\n"))
        la = f'pid="{a.pid}",program="db \\"main\\" \\\\ one"'
        lb = f'pid="{b.pid}",program="mi-stat-publisher"'
        fa, fb = figures(3, 2), figures(5, 1)
        self.assertIn("# TYPE mimalloc_numa_node_in_use_bytes gauge\n", text)
        self.assertIn("# TYPE mimalloc_numa_node_remote_frees_total counter\n", text)
        self.assertIn("# HELP mimalloc_numa_purge_seconds_total ", text)
        self.assertIn(f'mimalloc_numa_node_in_use_bytes{{{la},node="1"}} {fa["nodes"][1]["in_use"]}\n', text)
        self.assertIn(f'mimalloc_numa_node_in_use_bytes{{{lb},node="0"}} {fb["nodes"][0]["in_use"]}\n', text)
        self.assertIn(f'mimalloc_numa_committed_bytes{{{la}}} {fa["totals"]["committed"]}\n', text)
        self.assertIn(f'mimalloc_numa_purge_seconds_total{{{la}}} 3.0000000000000001e-06\n', text)
        self.assertIn(f'mimalloc_numa_rss_bytes{{{lb}}} {fb["rss"]}\n', text)
        self.assertIn(f'mimalloc_numa_bin_live_bytes{{{lb},block_size="64"}} {fb["bins"][2]["live_bytes"]}\n', text)
        # Every sample's family is declared, once, before it.
        declared = set()
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                name = line.split()[2]
                self.assertNotIn(name, declared)
                declared.add(name)
            elif not line.startswith("#"):
                self.assertIn(line.split("{")[0], declared, line)

    def test_tree_passes_promtool(self):
        shell = self.pub.start(3, nodes=2, children=4, wrap_in_shell=True)
        self.pub.wait_files(5)
        p = self.mi_stat("--openmetrics", "--tree", str(shell.pid))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.promtool(p.stdout), (0, ""))
        self.assertIn(f'mimalloc_numa_tree_processes{{pid="{shell.pid}",program="sh"}} 6\n', p.stdout)
        self.assertIn(f'mimalloc_numa_tree_publishing_processes{{pid="{shell.pid}",program="sh"}} 5\n', p.stdout)
        total = add_figures([figures(v, 2) for v in [3, 4, 5, 6, 7]])
        self.assertIn(f'mimalloc_numa_in_use_bytes{{pid="{shell.pid}",program="sh"}} {total["totals"]["in_use"]}\n',
                      p.stdout)

    def test_promtool_checks_something(self):
        # The control: promtool refuses a counter without _total.
        rc, out = self.promtool("# HELP x_bytes a\n# TYPE x_bytes counter\nx_bytes 1\n")
        self.assertNotEqual((rc, out), (0, ""))


class Watch(Base):
    def test_refreshes(self):
        proc = self.pub.start(2)
        self.pub.wait_files(1)
        w = subprocess.Popen([MI_STAT, "--dir", self.dir, "--watch", "1", str(proc.pid)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=self.env())
        time.sleep(2.5)
        w.send_signal(signal.SIGINT)
        out, err = w.communicate(timeout=10)
        self.assertEqual(w.returncode, 0, err)
        frames = out.split("\033[H\033[2J")
        self.assertEqual(frames[0], "")
        frames = frames[1:]
        self.assertEqual(len(frames), 3, out)
        for fr in frames:
            self.assertRegex(fr, r"^mi-stat  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d  every 1 s  \(Ctrl-C stops\)\n\n")
            self.assertIn(f"pid {proc.pid}  mi-stat-publisher", fr)
        updates = [int(re.search(r"taken every 100 ms, (\d+) times", fr).group(1)) for fr in frames]
        self.assertEqual(updates, sorted(updates))
        self.assertGreater(updates[-1], updates[0] + 5, updates)

    def test_list(self):
        self.pub.start(2)
        self.pub.wait_files(1)
        w = subprocess.Popen([MI_STAT, "--dir", self.dir, "--watch", "0.5"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=self.env())
        time.sleep(1.2)
        w.send_signal(signal.SIGTERM)
        out, err = w.communicate(timeout=10)
        self.assertEqual(w.returncode, 0, err)
        self.assertEqual(out.count("\033[H\033[2J"), 3, out)
        self.assertEqual(out.count("PID PROGRAM"), 3, out)


class Record(Base):
    def test_series(self):
        proc = self.pub.start(2)
        self.pub.wait_files(1)
        rec = self.path("r.jsonl")
        t0 = time.time()
        p = self.mi_stat("--record", rec, "--for", "2", "--interval", "0.5")
        took = time.time() - t0
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(f"mi-stat: 5 samples in {rec}", p.stderr)
        self.assertLess(took, 4)
        lines = open(rec).read().splitlines()
        self.assertEqual(len(lines), 5)
        docs = [json.loads(line) for line in lines]
        times = [d["time_unix_ms"] for d in docs]
        self.assertEqual(times, sorted(times))
        self.assertTrue(1800 <= times[-1] - times[0] <= 3000, times)
        updates = [d["list"][0]["updates"] for d in docs]
        self.assertEqual(updates, sorted(updates))
        self.assertGreater(updates[-1], updates[0])
        self.assertEqual({d["list"][0]["pid"] for d in docs}, {proc.pid})

    def test_interrupted(self):
        self.pub.start(2)
        self.pub.wait_files(1)
        rec = self.path("r.jsonl")
        r = subprocess.Popen([MI_STAT, "--dir", self.dir, "--record", rec, "--interval", "0.2"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env())
        time.sleep(1.1)
        r.send_signal(signal.SIGINT)
        out, err = r.communicate(timeout=10)
        self.assertEqual(r.returncode, 0, err)
        n = len(open(rec).read().splitlines())
        self.assertTrue(5 <= n <= 7, n)
        self.assertIn(f"{n} samples in {rec}", err)

    def test_unwritable(self):
        p = self.mi_stat("--record", os.path.join(self.tmp, "no", "such", "dir"), "--for", "1")
        self.assertEqual(p.returncode, 1)
        self.assertIn("cannot write", p.stderr)


class Plot(Base):
    def test_png(self):
        if shutil.which("gnuplot") is None:
            self.skipTest("gnuplot not found (Debian: gnuplot-nox)")
        shell = self.pub.start(3, nodes=2, children=2, wrap_in_shell=True)
        self.pub.wait_files(3)
        rec, png = self.path("r.jsonl"), self.path("chart.png")
        p = self.mi_stat("--tree", str(shell.pid), "--record", rec, "--for", "1", "--interval", "0.25",
                         "--plot", png)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(f"chart in {png}", p.stderr)
        with open(png, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        # From the record, with a malformed line: skipped with file:line.
        with open(rec, "a") as f:
            f.write("{not json\n")
        png2 = self.path("chart2.png")
        p = self.mi_stat("--plot", png2, "--from", rec, dirs=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(f"mi-stat: warning: {rec}:6: not a sample of mi-stat --record", p.stderr)
        with open(png2, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        self.assertGreater(os.path.getsize(png2), 5000)

    def test_no_gnuplot(self):
        rec = self.path("r.jsonl")
        with open(rec, "w") as f:
            f.write('{"schema_version":1,"time_unix_ms":1,"processes":0,"list":[],"skipped":[]}\n')
        bindir = self.path("bin")
        os.makedirs(bindir)
        p = self.mi_stat("--plot", self.path("x.png"), "--from", rec, dirs=False,
                         env=self.env({"PATH": bindir}))
        self.assertEqual(p.returncode, 1)
        self.assertIn("gnuplot not found: --plot draws with gnuplot (Debian: apt install gnuplot-nox)", p.stderr)
        self.assertFalse(os.path.exists(self.path("x.png")))

    def test_empty_record(self):
        if shutil.which("gnuplot") is None:
            self.skipTest("gnuplot not found (Debian: gnuplot-nox)")
        rec = self.path("r.jsonl")
        open(rec, "w").close()
        p = self.mi_stat("--plot", self.path("x.png"), "--from", rec, dirs=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("holds no sample", p.stderr)


class Usage(Base):
    def test_bad_options(self):
        cases = [
            (["--frobnicate"], "unrecognised option '--frobnicate'"),
            (["--watch", "abc"], "--watch abc: not a number of seconds"),
            (["--watch", "0"], "--watch 0: not a number of seconds"),
            (["--watch"], "the required argument for option '--watch' is missing"),
            (["--tree", "x"], "--tree x: not a process id"),
            (["12a"], "PID 12a: not a process id"),
            (["--tree", "1", "2"], "--tree PID and PIDs"),
            (["--json", "--openmetrics"], "--json and --openmetrics: choose one"),
            (["--for", "3"], "--for goes with --record FILE"),
            (["--interval", "1"], "--interval goes with --record FILE"),
            (["--plot", "x.png"], "--plot draws a record"),
            (["--from", "r"], "--from goes with --plot"),
            (["--all", "1"], "--all goes with the list"),
            (["--watch", "1", "--json"], "--watch shows the table"),
            (["--record", "r", "--json"], "--record writes JSON lines already"),
            (["--record", "r", "--for", "-1"], "--for -1: not a number of seconds"),
            (["--wat", "1"], "unrecognised option '--wat'"),
        ]
        for args, message in cases:
            with self.subTest(args=args):
                p = self.mi_stat(*args)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertEqual(p.stdout, "")
                self.assertIn(message, p.stderr)
                self.assertTrue(p.stderr.startswith("mi-stat: "), p.stderr)
                self.assertIn("(mi-stat --help lists the options)", p.stderr)

    def test_help_version(self):
        p = self.mi_stat("--help", dirs=False)
        self.assertEqual(p.returncode, 0)
        for opt in ["--tree", "--json", "--openmetrics", "--watch", "--record", "--for", "--interval", "--plot",
                    "--from", "--bins", "--all", "--dir", "Exit status"]:
            self.assertIn(opt, p.stdout)
        p = self.mi_stat("--version", dirs=False)
        self.assertEqual(p.returncode, 0)
        self.assertRegex(p.stdout, r"^mi-stat \(mimalloc-numa\) \d+\.\d+\.\d+ ")


class EndToEnd(Base):
    """PostgreSQL on the library, as an operator runs it: mi-enable, pg_ctlcluster, pgbench -c 4."""

    def setUp(self):
        super().setUp()
        if LIB is None or MI_ENABLE is None:
            self.skipTest("the library or mi-enable is not built")
        if os.geteuid() != 0:
            self.skipTest("needs root (PostgreSQL's own start path, its user, /etc)")
        version = None
        for d in sorted(os.listdir("/usr/lib/postgresql")) if os.path.isdir("/usr/lib/postgresql") else []:
            if d.isdigit() and os.path.exists(f"/usr/lib/postgresql/{d}/bin/pgbench"):
                version = d
        for tool in ["pg_createcluster", "pg_ctlcluster", "pg_dropcluster", "runuser"]:
            if shutil.which(tool) is None:
                self.skipTest(f"{tool} not found (Debian: postgresql, postgresql-common)")
        if version is None:
            self.skipTest("no PostgreSQL server with pgbench in /usr/lib/postgresql")
        self.version = version
        self.lib = self.path("libmimalloc-numa.so.0")
        shutil.copyfile(os.path.realpath(LIB), self.lib)
        os.chmod(self.lib, 0o644)
        self.probe_publishing()

    def probe_publishing(self):
        """Skips while the library does not publish (stats_publish is issue 11's library part)."""
        xdg = self.path("probe")
        os.makedirs(xdg)
        env = self.env({"LD_PRELOAD": self.lib, "MIMALLOC_STATS_PUBLISH": "1", "MIMALLOC_STATS_PUBLISH_INTERVAL": "100",
                        "XDG_RUNTIME_DIR": xdg, "MIMALLOC_CONFIG": "/dev/null"})
        # It ends by itself (exit, not a signal): the library removes its file then, in /run/mimalloc-numa too.
        p = subprocess.Popen(["sleep", "3"], env=env, stderr=subprocess.PIPE, text=True)
        published = False
        while p.poll() is None and not published:
            q = self.mi_stat(str(p.pid), dirs=False, env=self.env({"XDG_RUNTIME_DIR": xdg}))
            published = q.returncode == 0
            time.sleep(0.2)
        _, err = p.communicate()
        if published:
            return
        self.skipTest("the library does not publish statistics yet (a process with MIMALLOC_STATS_PUBLISH=1 "
                      f"wrote no area while it ran, 3 s){': ' + err.strip().splitlines()[0] if err.strip() else ''}")

    def run_cmd(self, args, user=None, check=True, timeout=300, env=None):
        if user:
            args = ["runuser", "-u", user, "--"] + args
        p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout,
                           env=env or self.env())
        if check and p.returncode != 0:
            self.fail(f"{args}: exit {p.returncode}\n{p.stdout}{p.stderr}")
        return p

    def test_postgresql_pgbench_tree(self):
        cluster = f"mistat{os.getpid()}"
        unit = f"postgresql@{self.version}-{cluster}"
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        sock = self.path("sock")
        os.makedirs(sock)
        shutil.chown(sock, "postgres")
        self.run_cmd(["pg_createcluster", self.version, cluster, "-p", str(port), "--socketdir", sock,
                      "--start-conf", "manual", "--", "--no-sync", "-A", "trust"])

        members = set()

        def drop():
            # fast, not immediate: the processes exit, and the library removes their files
            if self.run_cmd(["pg_ctlcluster", "--skip-systemctl-redirect", self.version, cluster, "stop", "-m",
                             "fast"], check=False).returncode != 0:
                self.run_cmd(["pg_ctlcluster", "--skip-systemctl-redirect", self.version, cluster, "stop", "-m",
                              "immediate"], check=False)
            # a postmaster that ignored both (it happened: a library whose background thread took the
            # postmaster's signals): killed, so that the cluster can be dropped
            try:
                with open(f"/var/lib/postgresql/{self.version}/{cluster}/postmaster.pid") as f:
                    stuck = int(f.read().splitlines()[0])
                members.add(stuck)
                os.kill(stuck, signal.SIGKILL)
                time.sleep(0.5)
            except (OSError, ValueError, IndexError):
                pass
            # what a process that died without exiting left (stale) in the shared directory: this test's only
            for name in os.listdir("/run/mimalloc-numa") if os.path.isdir("/run/mimalloc-numa") else []:
                pid = name.split("-")[0]
                if name.endswith(".stats") and pid.isdigit() and int(pid) in members and \
                        not os.path.exists(f"/proc/{pid}"):
                    os.unlink(os.path.join("/run/mimalloc-numa", name))
            self.run_cmd(["bash", MI_ENABLE, "--off", unit], check=False)
            self.run_cmd(["pg_dropcluster", self.version, cluster], check=False)
            shutil.rmtree(f"/etc/systemd/system/{unit}.service.d", True)
        self.addCleanup(drop)
        p = self.run_cmd(["bash", MI_ENABLE, "--lib", self.lib, unit])
        env_file = f"/etc/postgresql/{self.version}/{cluster}/environment"
        with open(env_file) as f:
            env_text = f.read()
        if "STATS_PUBLISH" not in env_text.upper():
            # Issue 11: the enabling command turns stats_publish on. Until mi-enable does, the operator's
            # other way: the cluster's environment file, which pg_ctlcluster reads.
            print(f"NOTE: mi-enable did not turn stats_publish on; set in {env_file}", flush=True)
            with open(env_file, "a") as f:
                f.write("MIMALLOC_STATS_PUBLISH = '1'\n")
        # As postgresql@.service starts it: pg_ctlcluster in systemd's clean environment.
        self.run_cmd(["env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                      "pg_ctlcluster", "--skip-systemctl-redirect", self.version, cluster, "start"], env={})
        data = f"/var/lib/postgresql/{self.version}/{cluster}"
        with open(os.path.join(data, "postmaster.pid")) as f:
            pm = int(f.read().splitlines()[0])
        pgbench = f"/usr/lib/postgresql/{self.version}/bin/pgbench"
        conn = ["-h", sock, "-p", str(port), "-U", "postgres"]
        self.run_cmd([pgbench, "-i", "-q", "-s", "2"] + conn + ["postgres"], user="postgres")
        bench = subprocess.Popen(["runuser", "-u", "postgres", "--", pgbench, "-c", "4", "-j", "2", "-T", "15"] + conn
                                 + ["postgres"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 env=self.env())
        self.addCleanup(lambda: bench.poll() is None and (bench.kill(), bench.wait()))
        time.sleep(3)
        samples, backends = [], set()
        for _ in range(5):
            p = self.mi_stat("--json", "--tree", str(pm), dirs=False)
            self.assertEqual(p.returncode, 0, p.stderr)
            doc = json.loads(p.stdout)
            samples.append(doc)
            members.update(m["pid"] for m in doc["members"])
            # pgbench's 4 sessions: the backends whose title says [local] (it connects through the socket)
            for m in doc["members"]:
                try:
                    with open(f"/proc/{m['pid']}/cmdline") as f:
                        if "[local]" in f.read():
                            backends.add((m["pid"], m["publishes"]))
                except OSError:
                    pass
            time.sleep(1.5)
        text = self.mi_stat("--tree", str(pm), dirs=False).stdout
        print(f"---- mi-stat --tree {pm} during pgbench -c 4\n{text}", flush=True)
        out, err = bench.communicate(timeout=60)
        self.assertEqual(bench.returncode, 0, err)
        last = samples[-1]
        self.assertEqual(last["members"][0], {"pid": pm, "program": "postgres", "publishes": True})
        self.assertEqual(len(backends), 4, backends)
        self.assertTrue(all(publishes for _, publishes in backends), backends)
        self.assertGreaterEqual(last["publishing"], 5, last["members"])
        quiet = [m["pid"] for m in last["members"] if not m["publishes"]]
        if quiet:
            print(f"NOTE: processes of the tree that do not publish: {quiet}", flush=True)
        frees = [s["totals"]["local_frees"] + s["totals"]["remote_frees"] for s in samples]
        self.assertEqual(len(set(frees)), len(frees), f"totals did not change during pgbench: {frees}")
        self.assertGreater(last["totals"]["in_use"], 0)
        v = validator()
        for s in samples:
            self.assertEqual([e.message for e in v.iter_errors(s)], [])


def on_signal(signum, frame):
    raise KeyboardInterrupt


def main():
    global MI_STAT, PUBLISHER, SCHEMA, LIB, MI_ENABLE
    signal.signal(signal.SIGTERM, on_signal)
    args = sys.argv[1:]
    while len(args) >= 2 and args[0] in ("--publisher", "--schema", "--lib", "--mi-enable"):
        value = os.path.abspath(args[1])
        if args[0] == "--publisher":
            PUBLISHER = value
        elif args[0] == "--schema":
            SCHEMA = value
        elif args[0] == "--lib":
            LIB = value
        else:
            MI_ENABLE = value
        args = args[2:]
    if not args or PUBLISHER is None or SCHEMA is None:
        print(__doc__, file=sys.stderr)
        return 2
    MI_STAT = os.path.abspath(args[0])
    names = args[1:] or ["List", "Detail", "Tree", "Stale", "Torn", "Invalid", "Permissions", "Json", "OpenMetrics",
                         "Watch", "Record", "Plot", "Usage", "EndToEnd"]
    suite = unittest.defaultTestLoader.loadTestsFromNames(names, sys.modules[__name__])
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    if not result.wasSuccessful():
        return 1
    if result.testsRun > 0 and len(result.skipped) == result.testsRun:
        return 77
    return 0


if __name__ == "__main__":
    sys.exit(main())
