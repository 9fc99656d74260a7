#!/usr/bin/env python3
"""Tests of mi-reserve (tools/mi-reserve), suite 'tools'.

usage: mi_reserve_test.py [--lib LIBMIMALLOC_NUMA_SO] [--unit MI_RESERVE_SERVICE] MI_RESERVE GROUP...

GROUP is a test class below (Status, Reserve, Shortfall, Release, DryRun,
Permissions, Config, CheckConfig, Usage, Quiet, Unit: fake sysfs trees; Real,
RealConfig: the machine's own pools, as root) or Class.test_name. Unit runs
the configured unit's ExecStart and ExecStop (--unit) and judges each exit
status as systemd does, by its SuccessExitStatus=. Exit status: 0 passed,
1 failed, 77 every test skipped (meson's "skipped").

The fake trees. Each test builds a directory that mirrors /:
    T/sys/devices/system/node/online                    "0-3"
    T/sys/devices/system/node/nodeN/hugepages/hugepages-<kB>kB/
        nr_hugepages free_hugepages surplus_hugepages   plain files
        fake_max                                        optional cap (below)
    T/sys/kernel/mm/hugepages/hugepages-<kB>kB/...      the trees without NUMA
    T/proc/sys/vm/compact_memory                        empty; one line per compaction
    T/proc/sys/kernel/random/boot_id                    "fake-boot-1"
    T/etc/mimalloc-numa.toml                            when a test wants a default config
and runs mi-reserve --sysfs-root T/sys: then /proc, /run and /etc are
T/proc, T/run, T/etc, and the state file is T/run/mi-reserve/state. T/sys is
not sysfs, so mi-reserve also plays the kernel there (tools/mi-reserve/pools.h):
a pool grows to at most its fake_max ("1": a node that never gives more than
one page; "1 3": one that gives 3 after one compaction), free_hugepages
follows nr_hugepages, and pages in use beyond a shrunk pool become surplus.

Real (root only, else skipped with the reason; also skipped when the kernel
gives no page or /sys cannot be written): reserves one 1 GiB and one 2 MiB
page with mi-reserve and checks the pools' files, /proc/meminfo (Hugetlb grows
by 1 GiB + 2 MiB; HugePages_Total/Free match the default size's pool) and
--status (JSON and every table column against the pools' files). Then it runs
bash under LD_PRELOAD of the library with MIMALLOC_RESERVE_HUGE_OS_PAGES=1,
MIMALLOC_VERBOSE=1 and MIMALLOC_SHOW_STATS=1, reading with builtins only (a
forked child would touch the private huge page and die of SIGBUS): the 1 GiB
pool's free_hugepages/resv_hugepages, /proc/meminfo (no pool grew: the page
claimed is the one reserved) and /proc/self/status (HugetlbPages >= 1 GiB);
and the allocator's output: "reserved 1 GiB huge pages", the statistics'
arenas line (1 huge page, 0 asked for but not given) and per-node table (huge
pages reserved over the nodes: 1). Last, --release, and the pools and
/proc/meminfo are as before. What the test added is given back whatever
happens (mi-reserve --release, then what its state file still holds, taken
off the pools as they are then: never counts saved before the test, which
another program may have changed since).

RealConfig (root only, likewise): the shipped example config changes no pool
and exits 0; a file with a typo in [options] (and show_stats = true, also as
MIMALLOC_CONFIG) next to [reserve] per_node = 1 of 2 MiB pages reserves them,
warns once and prints no statistics; --release restores the pools.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

MI_RESERVE = None
LIB = None
UNIT = None
# the shipped example configuration (installed as /etc/mimalloc-numa.toml.example)
SHIPPED_EXAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "config", "mimalloc-numa.toml")
G1 = 1048576
M2 = 2048
NOBODY = 65534


def clean_env(extra=None):
    """The environment without MIMALLOC_* and HWLOC_* (ours to set)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MIMALLOC_", "HWLOC_", "MI_RESERVE_"))}
    env["LC_ALL"] = "C"
    if extra:
        env.update(extra)
    return env


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def read(path):
    with open(path) as f:
        return f.read()


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def parse_table(stdout):
    """The rows of a table (columns are two or more spaces apart) as dicts."""
    lines = [l for l in stdout.splitlines() if l.strip()]
    start = next(i for i, l in enumerate(lines) if l.lstrip().startswith("node"))
    header = re.split(r"\s{2,}", lines[start].strip())
    rows = []
    for line in lines[start + 1:]:
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) != len(header):
            break
        rows.append(dict(zip(header, cells)))
    return rows


def row_of(rows, node, size):
    for r in rows:
        if r["node"] == str(node) and r["page size"] == size:
            return r
    raise AssertionError(f"no row for node {node}, {size} in {rows}")


class FakeTree:
    """A fake /sys, /proc, /run, /etc under a temporary directory."""

    def __init__(self, nodes=2, sizes=(M2, G1), numa=True, online=None, no_pools=()):
        self.root = tempfile.mkdtemp(prefix="mi-reserve-test-")
        os.chmod(self.root, 0o755)
        self.sys = os.path.join(self.root, "sys")
        self.numa = numa
        self.nodes = list(range(nodes)) if numa else [0]
        if numa:
            if online is None:
                online = f"0-{nodes - 1}" if nodes > 1 else "0"
            write(f"{self.sys}/devices/system/node/online", online + "\n")
            write(f"{self.sys}/devices/system/node/possible", f"0-{nodes - 1}\n")
            for n in self.nodes:
                os.makedirs(f"{self.sys}/devices/system/node/node{n}", exist_ok=True)
                if n in no_pools:
                    continue
                for s in sizes:
                    self.set(n, s, nr=0, free=0, surplus=0)
        else:
            for s in sizes:
                self.set(0, s, nr=0, free=0, surplus=0)
        write(f"{self.root}/proc/sys/vm/compact_memory", "")
        write(f"{self.root}/proc/sys/kernel/random/boot_id", "fake-boot-1\n")
        self.state = f"{self.root}/run/mi-reserve/state"

    def cleanup(self):
        shutil.rmtree(self.root, ignore_errors=True)

    def pool(self, node, size):
        if self.numa:
            return f"{self.sys}/devices/system/node/node{node}/hugepages/hugepages-{size}kB"
        return f"{self.sys}/kernel/mm/hugepages/hugepages-{size}kB"

    def set(self, node, size, nr=None, free=None, surplus=None, cap=None):
        d = self.pool(node, size)
        for name, v in (("nr_hugepages", nr), ("free_hugepages", free), ("surplus_hugepages", surplus), ("fake_max", cap)):
            if v is not None:
                write(f"{d}/{name}", f"{v}\n")

    def nr(self, node, size=G1):
        return int(read(f"{self.pool(node, size)}/nr_hugepages"))

    def free(self, node, size=G1):
        return int(read(f"{self.pool(node, size)}/free_hugepages"))

    def surplus(self, node, size=G1):
        return int(read(f"{self.pool(node, size)}/surplus_hugepages"))

    def compactions(self):
        return read(f"{self.root}/proc/sys/vm/compact_memory").count("1")

    def snapshot(self):
        """Every file (path -> content, as bytes: the tree may hold a copy of the tool) and directory under the
        tree."""
        snap = {}
        for dirpath, dirnames, filenames in os.walk(self.root):
            for d in dirnames:
                snap[os.path.relpath(os.path.join(dirpath, d), self.root) + "/"] = None
            for f in filenames:
                p = os.path.join(dirpath, f)
                snap[os.path.relpath(p, self.root)] = read_bytes(p)
        return snap

    def chown_all(self, uid, gid):
        for dirpath, dirnames, filenames in os.walk(self.root):
            os.chown(dirpath, uid, gid)
            for f in filenames:
                os.chown(os.path.join(dirpath, f), uid, gid)

    def run(self, *args, env=None, user=None, exe=None, timeout=60):
        return run_tool(["--sysfs-root", self.sys, *args], env=env, user=user, exe=exe, timeout=timeout)


def run_tool(args, env=None, user=None, exe=None, timeout=60):
    def drop():
        os.setgroups([])
        os.setgid(user)
        os.setuid(user)

    return subprocess.run([exe or MI_RESERVE, *args], capture_output=True, text=True, env=clean_env(env),
                          preexec_fn=drop if user is not None else None, timeout=timeout)


class FakeTest(unittest.TestCase):
    def tree(self, **kw):
        t = FakeTree(**kw)
        self.addCleanup(t.cleanup)
        return t

    def assertExit(self, r, code):
        self.assertEqual(r.returncode, code, f"exit {r.returncode}, expected {code}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}")

    def assertErrorLine(self, r, *fragments):
        """stderr has a line 'mi-reserve: ...' holding every fragment."""
        for line in r.stderr.splitlines():
            if line.startswith("mi-reserve: ") and all(f in line for f in fragments):
                return
        self.fail(f"no 'mi-reserve: ' line with {fragments} on stderr:\n{r.stderr}")


# ---------------------------------------------------------------------------
class Status(FakeTest):
    def test_table_one_node(self):
        t = self.tree(nodes=1)
        t.set(0, G1, nr=2, free=1, surplus=0)
        t.set(0, M2, nr=5, free=5, surplus=1)
        r = t.run("--status")
        self.assertExit(r, 0)
        rows = parse_table(r.stdout)
        self.assertEqual(list(rows[0].keys()), ["node", "page size", "total", "free", "reserved by us", "surplus"])
        self.assertEqual(len(rows), 2)
        self.assertEqual(row_of(rows, 0, "1 GiB"), {"node": "0", "page size": "1 GiB", "total": "2", "free": "1",
                                                    "reserved by us": "0", "surplus": "0"})
        self.assertEqual(row_of(rows, 0, "2 MiB")["total"], "5")
        self.assertEqual(row_of(rows, 0, "2 MiB")["surplus"], "1")
        self.assertEqual(r.stderr, "")

    def test_json_four_nodes_with_ours(self):
        t = self.tree(nodes=4)
        for n in range(4):
            t.set(n, M2, nr=10 * n, free=n)
        self.assertExit(t.run("--pages", "6"), 0)  # 2, 2, 1, 1 of 1 GiB
        r = t.run("--status", "--json")
        self.assertExit(r, 0)
        doc = json.loads(r.stdout)
        self.assertEqual(doc["sysfs_root"], t.sys)
        self.assertEqual(doc["state_file"], t.state)
        self.assertTrue(doc["numa"])
        pools = {(p["node"], p["page_size_kib"]): p for p in doc["pools"]}
        self.assertEqual(len(pools), 8)
        for n, ours in enumerate([2, 2, 1, 1]):
            p = pools[(n, G1)]
            self.assertEqual((p["total"], p["free"], p["reserved_by_us"], p["surplus"], p["page_size"]),
                             (ours, ours, ours, 0, "1 GiB"))
            q = pools[(n, M2)]
            self.assertEqual((q["total"], q["free"], q["reserved_by_us"], q["page_size"]), (10 * n, n, 0, "2 MiB"))
        # and the table says the same
        rows = parse_table(t.run("--status").stdout)
        self.assertEqual(row_of(rows, 3, "1 GiB")["reserved by us"], "1")

    def test_filters(self):
        t = self.tree(nodes=2)
        r = t.run("--status", "--json", "--nodes", "1", "--page-size", "2M")
        self.assertExit(r, 0)
        pools = json.loads(r.stdout)["pools"]
        self.assertEqual([(p["node"], p["page_size_kib"]) for p in pools], [(1, M2)])

    def test_filter_unknown_node_and_size(self):
        t = self.tree(nodes=2, sizes=(M2,))
        r = t.run("--status", "--nodes", "2")
        self.assertExit(r, 1)
        self.assertErrorLine(r, "no NUMA node 2")
        r = t.run("--status", "--page-size", "1G")
        self.assertExit(r, 1)
        self.assertErrorLine(r, "no such page size", "1 GiB")

    def test_without_numa_sysfs(self):
        t = self.tree(numa=False)
        t.set(0, G1, nr=3, free=2)
        r = t.run("--status", "--json")
        self.assertExit(r, 0)
        doc = json.loads(r.stdout)
        self.assertFalse(doc["numa"])
        g = [p for p in doc["pools"] if p["page_size_kib"] == G1][0]
        self.assertEqual((g["node"], g["total"], g["free"]), (0, 3, 2))

    def test_missing_surplus_file_is_null(self):
        t = self.tree(nodes=1)
        os.unlink(f"{t.pool(0, G1)}/surplus_hugepages")
        doc = json.loads(t.run("--status", "--json").stdout)
        g = [p for p in doc["pools"] if p["page_size_kib"] == G1][0]
        self.assertIsNone(g["surplus"])
        self.assertEqual(row_of(parse_table(t.run("--status").stdout), 0, "1 GiB")["surplus"], "-")

    def test_no_pools_at_all(self):
        t = self.tree(nodes=2, no_pools=(0, 1))
        r = t.run("--status")
        self.assertExit(r, 1)
        self.assertErrorLine(r, "not supported", "no huge page pools")

    def test_stale_state_is_ignored(self):
        t = self.tree(nodes=1)
        t.set(0, G1, nr=2, free=2)
        write(t.state, "boot_id another-boot\npool 0 1048576 2\n")
        doc = json.loads(t.run("--status", "--json").stdout)
        self.assertEqual([p["reserved_by_us"] for p in doc["pools"]], [0, 0])
        r = t.run("--release")
        self.assertExit(r, 0)
        self.assertIn("nothing to release", r.stdout)
        self.assertEqual(t.nr(0), 2)


# ---------------------------------------------------------------------------
class Reserve(FakeTest):
    def test_interleave_two_nodes(self):
        t = self.tree(nodes=2)
        r = t.run("--pages", "3")
        self.assertExit(r, 0)
        self.assertEqual((t.nr(0), t.nr(1)), (2, 1), "the remainder on the lowest node")
        self.assertEqual((t.free(0), t.free(1)), (2, 1))
        self.assertEqual((t.nr(0, M2), t.nr(1, M2)), (0, 0), "other page sizes untouched")
        rows = parse_table(r.stdout)
        self.assertEqual(list(rows[0].keys()), ["node", "page size", "asked", "reserved by us", "total", "free", "result"])
        self.assertEqual([(x["node"], x["asked"], x["reserved by us"], x["result"]) for x in rows],
                         [("0", "2", "2", "ok"), ("1", "1", "1", "ok")])
        state = read(t.state)
        self.assertIn("boot_id fake-boot-1\n", state)
        self.assertIn("pool 0 1048576 2\n", state)
        self.assertIn("pool 1 1048576 1\n", state)

    def test_interleave_four_nodes_subset(self):
        t = self.tree(nodes=4)
        self.assertExit(t.run("--pages", "7", "--nodes", "1-3"), 0)
        self.assertEqual([t.nr(n) for n in range(4)], [0, 3, 2, 2])
        self.assertExit(t.run("--pages", "4", "--nodes", "3,0"), 0)
        self.assertEqual([t.nr(n) for n in range(4)], [2, 3, 2, 2], "node 3 already has its 2: stays")

    def test_per_node_all(self):
        t = self.tree(nodes=4)
        self.assertExit(t.run("--per-node", "2", "--nodes", "all"), 0)
        self.assertEqual([t.nr(n) for n in range(4)], [2, 2, 2, 2])

    def test_one_node(self):
        t = self.tree(nodes=1)
        self.assertExit(t.run("--pages", "5"), 0)
        self.assertEqual(t.nr(0), 5)

    def test_two_mib_pages(self):
        t = self.tree(nodes=2)
        self.assertExit(t.run("--pages", "1000", "--page-size", "2M"), 0)
        self.assertEqual((t.nr(0, M2), t.nr(1, M2)), (500, 500))
        self.assertEqual((t.nr(0), t.nr(1)), (0, 0))
        self.assertIn("pool 0 2048 500\n", read(t.state))

    def test_on_top_of_what_the_pool_had_and_idempotent(self):
        t = self.tree(nodes=2)
        t.set(0, G1, nr=1, free=1)  # someone else's page (kernel command line)
        self.assertExit(t.run("--per-node", "2"), 0)
        self.assertEqual((t.nr(0), t.nr(1)), (3, 2))
        self.assertExit(t.run("--per-node", "2"), 0)
        self.assertEqual((t.nr(0), t.nr(1)), (3, 2), "the same request again changes nothing")
        self.assertExit(t.run("--per-node", "1"), 0)
        self.assertEqual((t.nr(0), t.nr(1)), (2, 1), "a smaller count gives the difference back")
        doc = json.loads(t.run("--status", "--json", "--page-size", "1G").stdout)
        self.assertEqual([p["reserved_by_us"] for p in doc["pools"]], [1, 1])

    def test_without_numa_sysfs_writes_the_global_pool(self):
        t = self.tree(numa=False)
        r = t.run("--pages", "2", "--verbose")
        self.assertExit(r, 0)
        self.assertEqual(int(read(f"{t.sys}/kernel/mm/hugepages/hugepages-{G1}kB/nr_hugepages")), 2)
        self.assertIn("global pools", r.stderr)
        r = t.run("--pages", "1", "--nodes", "1")
        self.assertExit(r, 1)
        self.assertErrorLine(r, "no NUMA node 1")

    def test_missing_page_size(self):
        t = self.tree(nodes=2, sizes=(M2,))
        before = t.snapshot()
        r = t.run("--pages", "2")  # 1 GiB by default
        self.assertExit(r, 1)
        self.assertErrorLine(r, "no such page size", "1 GiB", "hugepages-1048576kB", "it has 2 MiB")
        self.assertEqual(t.snapshot(), before)
        self.assertExit(t.run("--pages", "2", "--page-size", "2M"), 0)
        self.assertEqual((t.nr(0, M2), t.nr(1, M2)), (1, 1))

    def test_no_such_node(self):
        t = self.tree(nodes=2)
        before = t.snapshot()
        r = t.run("--pages", "2", "--nodes", "0,5")
        self.assertExit(r, 1)
        self.assertErrorLine(r, "no NUMA node 5", "0-1")
        self.assertEqual(t.snapshot(), before, "nothing written")

    def test_node_without_memory(self):
        t = self.tree(nodes=4, no_pools=(3,))
        self.assertExit(t.run("--pages", "3"), 0)
        self.assertEqual([t.nr(n) for n in range(3)], [1, 1, 1], "'all' is the nodes with a pool")
        r = t.run("--pages", "1", "--nodes", "3")
        self.assertExit(r, 1)
        self.assertErrorLine(r, "node 3 has no pool of 1 GiB pages")

    def test_sparse_node_numbers(self):
        t = self.tree(nodes=4, online="0-1,3")
        shutil.rmtree(f"{t.sys}/devices/system/node/node2")
        self.assertExit(t.run("--pages", "3"), 0)
        self.assertEqual([t.nr(n) for n in (0, 1, 3)], [1, 1, 1])
        r = t.run("--pages", "1", "--nodes", "2")
        self.assertExit(r, 1)
        self.assertErrorLine(r, "no NUMA node 2", "0-1,3")

    def test_unreadable_pool(self):
        t = self.tree(nodes=2)
        write(f"{t.pool(1, G1)}/nr_hugepages", "garbage\n")
        before = t.snapshot()
        r = t.run("--pages", "2")
        self.assertExit(r, 1)
        self.assertErrorLine(r, "cannot read", f"{t.pool(1, G1)}/nr_hugepages", "not a page count ('garbage')",
                             "nothing changed")
        self.assertEqual(t.snapshot(), before, "node 0 is not written either")
        rows = parse_table(t.run("--status").stdout)
        self.assertEqual(row_of(rows, 1, "1 GiB")["total"], "-")

    def test_zero_pages(self):
        t = self.tree(nodes=2)
        self.assertExit(t.run("--pages", "2"), 0)
        self.assertExit(t.run("--pages", "0"), 0)
        self.assertEqual((t.nr(0), t.nr(1)), (0, 0))
        self.assertFalse(os.path.exists(t.state), "nothing of ours left: no state")


# ---------------------------------------------------------------------------
class Shortfall(FakeTest):
    def test_short_node_keep_exit_3(self):
        t = self.tree(nodes=2)
        t.set(1, G1, cap=1)  # node 1 never gives more than one page
        start = time.monotonic()
        r = t.run("--per-node", "3", "--timeout", "60s")
        elapsed = time.monotonic() - start
        self.assertExit(r, 3)
        # two rounds of compaction and retry that gain nothing end it: the 60 s are not waited out
        self.assertLess(elapsed, 30, "stopped retrying once retrying gained nothing")
        self.assertEqual(t.compactions(), 2, "memory was compacted before each retry, twice")
        self.assertEqual((t.nr(0), t.nr(1)), (3, 1))
        rows = parse_table(r.stdout)
        self.assertEqual(row_of(rows, 0, "1 GiB")["result"], "ok")
        self.assertEqual(row_of(rows, 1, "1 GiB")["result"], "short by 2")
        self.assertEqual(row_of(rows, 1, "1 GiB")["reserved by us"], "1")
        self.assertErrorLine(r, "node 1", "1 of 3 pages of 1 GiB reserved", "after 2 rounds of retrying",
                             "the last 2 of which gained nothing", "2 compactions")
        self.assertErrorLine(r, "on_shortfall = keep", "short by 2 pages", "the 4 pages the kernel gave stay reserved",
                             "exit 3")
        self.assertIn("pool 1 1048576 1\n", read(t.state), "the page it did get is remembered")
        # --release gives back what it got
        self.assertExit(t.run("--release"), 0)
        self.assertEqual((t.nr(0), t.nr(1)), (0, 0))

    def test_keep_by_name(self):
        t = self.tree(nodes=1)
        t.set(0, G1, cap=1)
        c = os.path.join(t.root, "keep.toml")
        write(c, '[reserve]\npages = 2\non_shortfall = "keep"\n')
        self.assertExit(t.run("--config", c), 3)
        self.assertEqual(t.nr(0), 1)
        t2 = self.tree(nodes=1)
        t2.set(0, G1, cap=1)
        self.assertExit(t2.run("--pages", "2", "--on-shortfall", "keep"), 3)
        self.assertEqual(t2.nr(0), 1)

    def test_release_gives_everything_back_exit_4(self):
        t = self.tree(nodes=2)
        t.set(0, G1, nr=1, free=1)  # someone else's page: stays
        t.set(1, G1, cap=1)
        c = os.path.join(t.root, "release.toml")
        write(c, '[reserve]\nper_node = 3\non_shortfall = "release"\ntimeout = "10s"\n')
        r = t.run("--config", c)
        self.assertExit(r, 4)
        self.assertEqual((t.nr(0), t.nr(1)), (1, 0), "the pools as they were without mi-reserve")
        self.assertEqual((t.free(0), t.free(1)), (1, 0))
        self.assertFalse(os.path.exists(t.state), "nothing held: no state")
        rows = parse_table(r.stdout)
        self.assertEqual([(x["node"], x["asked"], x["reserved by us"], x["total"], x["result"]) for x in rows],
                         [("0", "3", "0", "1", "ok, gave back 3"), ("1", "3", "0", "0", "short by 2, gave back 1")])
        self.assertErrorLine(r, "node 1", "1 of 3 pages of 1 GiB reserved")
        self.assertErrorLine(r, "on_shortfall = release", "short by 2 pages", "gave back the 4 pages", "exit 4")
        self.assertExit(t.run("--release"), 0)
        self.assertEqual((t.nr(0), t.nr(1)), (1, 0))

    def test_release_gives_back_earlier_pages_too(self):
        # all or nothing: pages of an earlier run in the same pools go back as well
        t = self.tree(nodes=1)
        self.assertExit(t.run("--pages", "2"), 0)
        t.set(0, G1, cap=3)
        r = t.run("--pages", "5", "--on-shortfall", "release")
        self.assertExit(r, 4)
        self.assertEqual(t.nr(0), 0)
        self.assertEqual(row_of(parse_table(r.stdout), 0, "1 GiB")["result"], "short by 2, gave back 3")
        self.assertFalse(os.path.exists(t.state))

    def test_fail_gives_everything_back_exit_5(self):
        t = self.tree(nodes=2)
        t.set(0, G1, cap=0)  # node 0 gives nothing
        before = t.snapshot()
        r = t.run("--per-node", "2", "--on-shortfall", "fail")
        self.assertExit(r, 5)
        self.assertEqual((t.nr(0), t.nr(1)), (0, 0))
        rows = parse_table(r.stdout)
        self.assertEqual(row_of(rows, 0, "1 GiB")["result"], "short by 2")
        self.assertEqual(row_of(rows, 1, "1 GiB")["result"], "ok, gave back 2")
        self.assertErrorLine(r, "on_shortfall = fail", "short by 2 pages", "gave back the 2 pages", "failing (exit 5)")
        after = t.snapshot()
        for d in ("run/", "run/mi-reserve/"):  # the state directory stays
            after.pop(d, None)
        after.pop("proc/sys/vm/compact_memory")
        before.pop("proc/sys/vm/compact_memory")
        self.assertEqual(after, before, "a failed reservation leaves the pools as it found them")
        # nothing to release afterwards (the unit's ExecStop does not run after a failed start)
        r = t.run("--release")
        self.assertExit(r, 0)
        self.assertIn("nothing to release", r.stdout)

    def test_command_line_overrides_config(self):
        t = self.tree(nodes=1)
        t.set(0, G1, cap=1)
        c = os.path.join(t.root, "fail.toml")
        write(c, '[reserve]\npages = 2\non_shortfall = "fail"\n')
        self.assertExit(t.run("--config", c, "--on-shortfall", "keep"), 3)
        self.assertEqual(t.nr(0), 1)

    def test_no_shortfall_no_policy(self):
        for mode in ("keep", "release", "fail"):
            with self.subTest(mode=mode):
                t = self.tree(nodes=2)
                r = t.run("--per-node", "2", "--on-shortfall", mode)
                self.assertExit(r, 0)
                self.assertEqual((t.nr(0), t.nr(1)), (2, 2))
                self.assertNotIn("on_shortfall", r.stderr)

    def test_dry_run_has_no_shortfall(self):
        t = self.tree(nodes=1)
        t.set(0, G1, cap=0)
        self.assertExit(t.run("--pages", "2", "--on-shortfall", "fail", "--dry-run"), 0)
        self.assertEqual(t.nr(0), 0)

    def test_compaction_helps(self):
        t = self.tree(nodes=2)
        t.set(1, G1, cap="1 3")  # 3 pages once memory was compacted
        r = t.run("--per-node", "3", "--timeout", "20s", "--verbose")
        self.assertExit(r, 0)
        self.assertEqual((t.nr(0), t.nr(1)), (3, 3))
        self.assertEqual(t.compactions(), 1)
        self.assertIn("compacted memory", r.stderr)

    def test_retries_go_on_while_they_gain(self):
        # one fruitless round is not the end; a gain starts the count again
        t = self.tree(nodes=1)
        t.set(0, G1, cap="1 1 2 2 4")
        r = t.run("--pages", "4", "--timeout", "60s")
        self.assertExit(r, 0)
        self.assertEqual(t.nr(0), 4)
        self.assertEqual(t.compactions(), 4)

    def test_without_compaction(self):
        t = self.tree(nodes=1)
        os.unlink(f"{t.root}/proc/sys/vm/compact_memory")
        t.set(0, G1, cap=0)
        r = t.run("--pages", "1", "--timeout", "200ms")
        self.assertExit(r, 3)
        self.assertErrorLine(r, "node 0", "0 of 1 page of 1 GiB", "cannot compact memory")
        self.assertEqual(t.nr(0), 0)

    def test_bare_timeout_is_seconds_in_the_file_as_on_the_command_line(self):
        # one rule (config_timeout_parse): `timeout = 1` in [reserve] read as 1 ms once while --timeout 1 was 1 s
        for how in ("file", "command line"):
            with self.subTest(how=how):
                t = self.tree(nodes=1)
                t.set(0, G1, cap=" ".join(str(k) for k in range(1000)))  # gains a page on every compaction
                if how == "file":
                    write(f"{t.root}/etc/mimalloc-numa.toml", "[reserve]\npages = 1000\ntimeout = 1\n")
                    r = t.run()
                else:
                    r = t.run("--pages", "1000", "--timeout", "1")
                self.assertExit(r, 3)
                self.assertErrorLine(r, "within 1000 ms")

    def test_timeout_zero_tries_once(self):
        t = self.tree(nodes=1)
        t.set(0, G1, cap="0 5")
        r = t.run("--pages", "2", "--timeout", "0")
        self.assertExit(r, 3)
        self.assertEqual(t.compactions(), 0)
        self.assertErrorLine(r, "0 of 2 pages", "in one try (--timeout 0)")

    def test_timeout_from_config(self):
        # a node that gains a page on every compaction never stalls: the timeout ends the retries
        t = self.tree(nodes=1)
        t.set(0, G1, cap=" ".join(str(k) for k in range(100)))
        write(f"{t.root}/etc/mimalloc-numa.toml", '[reserve]\npages = 100\ntimeout = "300ms"\n')
        r = t.run()
        self.assertExit(r, 3)
        self.assertErrorLine(r, "within 300 ms")  # [reserve] timeout used, not the 30 s default
        self.assertGreaterEqual(t.compactions(), 1)
        self.assertLess(t.compactions(), 50)


# ---------------------------------------------------------------------------
class Release(FakeTest):
    def test_release_restores(self):
        t = self.tree(nodes=2)
        t.set(0, G1, nr=1, free=1)
        t.set(1, M2, nr=7, free=3)
        before = t.snapshot()
        self.assertExit(t.run("--pages", "4"), 0)
        self.assertExit(t.run("--pages", "2", "--page-size", "2M"), 0)
        self.assertEqual((t.nr(0), t.nr(1), t.nr(0, M2), t.nr(1, M2)), (3, 2, 1, 8))
        r = t.run("--release")
        self.assertExit(r, 0)
        rows = parse_table(r.stdout)
        self.assertEqual(row_of(rows, 0, "1 GiB")["released"], "2")
        self.assertEqual(row_of(rows, 1, "2 MiB")["released"], "1")
        after = t.snapshot()
        for d in ("run/", "run/mi-reserve/"):  # the state directory stays
            after.pop(d, None)
        self.assertEqual(after, before, "the pools as mi-reserve found them, the state file gone")

    def test_release_gives_back_only_ours(self):
        t = self.tree(nodes=1)
        self.assertExit(t.run("--pages", "2"), 0)
        t.set(0, G1, nr=4, free=4)  # someone else added 2 meanwhile
        self.assertExit(t.run("--release"), 0)
        self.assertEqual(t.nr(0), 2)

    def test_release_with_pages_in_use(self):
        t = self.tree(nodes=1)
        self.assertExit(t.run("--pages", "2"), 0)
        t.set(0, G1, free=0)  # a database claimed both
        r = t.run("--release")
        self.assertExit(r, 0)
        self.assertEqual((t.nr(0), t.free(0), t.surplus(0)), (0, 0, 2))
        self.assertIn("2 in use", row_of(parse_table(r.stdout), 0, "1 GiB")["result"])
        self.assertErrorLine(r, "warning", "still in use", "surplus")
        self.assertFalse(os.path.exists(t.state))

    def test_release_filters(self):
        t = self.tree(nodes=2)
        self.assertExit(t.run("--per-node", "2"), 0)
        self.assertExit(t.run("--per-node", "3", "--page-size", "2M"), 0)
        self.assertExit(t.run("--release", "--nodes", "1", "--page-size", "1G"), 0)
        self.assertEqual((t.nr(0), t.nr(1), t.nr(0, M2), t.nr(1, M2)), (2, 0, 3, 3))
        self.assertExit(t.run("--release"), 0)
        self.assertEqual((t.nr(0), t.nr(1), t.nr(0, M2), t.nr(1, M2)), (0, 0, 0, 0))

    def test_release_nothing(self):
        t = self.tree(nodes=2)
        r = t.run("--release")
        self.assertExit(r, 0)
        self.assertIn("nothing to release", r.stdout)

    def test_release_dry_run(self):
        t = self.tree(nodes=2)
        self.assertExit(t.run("--pages", "2"), 0)
        before = t.snapshot()
        r = t.run("--release", "--dry-run")
        self.assertExit(r, 0)
        self.assertIn(f"would write 0 to {t.pool(0, G1)}/nr_hugepages", r.stdout)
        self.assertEqual(t.snapshot(), before)

    def test_damaged_state(self):
        t = self.tree(nodes=1)
        write(t.state, "boot_id fake-boot-1\npool zero\n")
        r = t.run("--release")
        self.assertExit(r, 1)
        self.assertErrorLine(r, "state file", "damaged at line 2")


# ---------------------------------------------------------------------------
class DryRun(FakeTest):
    def test_dry_run_writes_nothing(self):
        for nodes in (1, 2, 4):
            with self.subTest(nodes=nodes):
                t = self.tree(nodes=nodes)
                t.set(0, G1, cap=0)  # a short node must not make it retry or compact either
                before = t.snapshot()
                r = t.run("--pages", "8", "--dry-run")
                self.assertExit(r, 0)
                self.assertEqual(t.snapshot(), before, "no file written, no directory made")
                for n in range(nodes):
                    self.assertIn(f"node {n}: would write {8 // nodes} to {t.pool(n, G1)}/nr_hugepages", r.stdout)
                self.assertIn("dry run: nothing changed", r.stdout)

    def test_dry_run_still_checks(self):
        t = self.tree(nodes=2)
        r = t.run("--pages", "1", "--nodes", "7", "--dry-run")
        self.assertExit(r, 1)
        self.assertErrorLine(r, "no NUMA node 7")


# ---------------------------------------------------------------------------
class Permissions(FakeTest):
    """Root may write a mode-0444 file, so as root these run mi-reserve as nobody."""

    def setUp(self):
        self.user = None
        if os.geteuid() == 0:
            self.user = NOBODY

    def as_user(self, t):
        """The tool copied into the tree (the build tree may not be open to nobody), the tree given to the user."""
        exe = os.path.join(t.root, "mi-reserve")
        shutil.copy(MI_RESERVE, exe)
        os.chmod(exe, 0o755)
        if self.user is not None:
            t.chown_all(self.user, self.user)
        return exe

    def test_read_only_pool_file(self):
        t = self.tree(nodes=2)
        exe = self.as_user(t)
        os.chmod(f"{t.pool(1, G1)}/nr_hugepages", 0o444)
        before = t.snapshot()
        r = t.run("--pages", "2", exe=exe, user=self.user)
        self.assertExit(r, 1)
        self.assertErrorLine(r, "not permitted", f"{t.pool(1, G1)}/nr_hugepages", "Permission denied", "nothing changed")
        self.assertEqual(t.snapshot(), before, "node 0 is not written either")

    def test_state_directory_not_writable(self):
        t = self.tree(nodes=1)
        exe = self.as_user(t)
        os.makedirs(f"{t.root}/run/mi-reserve")
        os.chmod(f"{t.root}/run/mi-reserve", 0o555)
        if self.user is not None:
            os.chown(f"{t.root}/run/mi-reserve", 0, 0)
        before = t.snapshot()
        r = t.run("--pages", "1", exe=exe, user=self.user)
        self.assertExit(r, 1)
        self.assertErrorLine(r, "not permitted", "state directory", "Permission denied")
        self.assertEqual(t.snapshot(), before)

    def test_writable_as_that_user(self):
        t = self.tree(nodes=2)
        exe = self.as_user(t)
        r = t.run("--pages", "2", exe=exe, user=self.user)
        self.assertExit(r, 0)
        self.assertEqual((t.nr(0), t.nr(1)), (1, 1))


# ---------------------------------------------------------------------------
class Config(FakeTest):
    def config(self, t, text, name="reserve.toml"):
        path = os.path.join(t.root, name)
        write(path, text)
        return path

    def test_page_sizes_read_alike_in_the_file_and_on_the_command_line(self):
        # one list (config_page_size_parse): the file took only 8 spellings of 1G and 2M once
        accepted = ["2M", "2MiB", "2MB", "2 MiB", "2 M", "2mib", "2048kB", "2048K", "2048 KiB"]
        refused = ["3M", "2", "2  M", "0M", "2MiBs", "-2M", "2T"]
        for size in accepted + refused:
            with self.subTest(size=size):
                t = self.tree(nodes=1)
                cli = t.run("--per-node", "1", "--page-size", size, "--dry-run")
                c = self.config(t, f'[reserve]\nper_node = 1\npage_size = "{size}"\n')
                cfg = t.run("--config", c, "--dry-run")
                if size in accepted:
                    self.assertExit(cli, 0)
                    self.assertExit(cfg, 0)
                    self.assertIn("hugepages-2048kB/nr_hugepages", cli.stdout)
                    self.assertIn("hugepages-2048kB/nr_hugepages", cfg.stdout)
                else:
                    self.assertNotEqual(cli.returncode, 0, cli.stderr)
                    self.assertExit(cfg, 2)
                    self.assertErrorLine(cfg, "page_size")

    def test_reserve_table(self):
        t = self.tree(nodes=4)
        c = self.config(t, '[reserve]\npages = 3\npage_size = "2M"\nnodes = "0-1"\n')
        self.assertExit(t.run("--config", c), 0)
        self.assertEqual([t.nr(n, M2) for n in range(4)], [2, 1, 0, 0])
        self.assertEqual([t.nr(n) for n in range(4)], [0, 0, 0, 0])

    def test_per_node_counts(self):
        t = self.tree(nodes=4)
        c = self.config(t, "[reserve]\npages = 5\n\n[node.1]\nreserve_huge_os_pages = 4\n[node.2]\nreserve_huge_os_pages = 0\n")
        self.assertExit(t.run("--config", c), 0)
        # node 1: 4, node 2: 0; [reserve] pages over the others (0, 3): 3 and 2
        self.assertEqual([t.nr(n) for n in range(4)], [3, 4, 0, 2])

    def test_reserve_per_node(self):
        t = self.tree(nodes=2)
        c = self.config(t, "[reserve]\nper_node = 2\n[node.0]\nreserve_huge_os_pages = 1\n")
        self.assertExit(t.run("--config", c), 0)
        self.assertEqual((t.nr(0), t.nr(1)), (1, 2))

    def test_options_count_is_what_the_allocator_claims(self):
        t = self.tree(nodes=2)
        c = self.config(t, "[options]\nreserve_huge_os_pages = 3\n")
        self.assertExit(t.run("--config", c), 0)
        self.assertEqual((t.nr(0), t.nr(1)), (2, 1))
        t2 = self.tree(nodes=2)
        c2 = self.config(t2, "[options]\nreserve_huge_os_pages = 3\nreserve_huge_os_pages_at = 1\n")
        self.assertExit(t2.run("--config", c2), 0)
        self.assertEqual((t2.nr(0), t2.nr(1)), (0, 3))

    def test_command_line_overrides(self):
        t = self.tree(nodes=2)
        c = self.config(t, '[reserve]\npages = 6\npage_size = "2M"\nnodes = "1"\n[node.0]\nreserve_huge_os_pages = 5\n')
        self.assertExit(t.run("--config", c, "--pages", "2", "--page-size", "1G", "--nodes", "all"), 0)
        self.assertEqual((t.nr(0), t.nr(1), t.nr(0, M2), t.nr(1, M2)), (1, 1, 0, 0))
        self.assertExit(t.run("--config", c, "--page-size", "2M"), 0)  # [reserve] pages and nodes
        self.assertEqual((t.nr(0, M2), t.nr(1, M2)), (0, 6))

    def test_use_numa_nodes_caps_all(self):
        # the allocator uses only the first 2 of 4 nodes: "all" means those two
        t = self.tree(nodes=4)
        c = self.config(t, "[options]\nuse_numa_nodes = 2\n[reserve]\nper_node = 2\n")
        r = t.run("--config", c, "--verbose")
        self.assertExit(r, 0)
        self.assertEqual([t.nr(n) for n in range(4)], [2, 2, 0, 0])
        self.assertIn("nothing reserved on 2-3", r.stderr.replace("2,3", "2-3"))
        # an explicit list is taken as given
        t2 = self.tree(nodes=4)
        self.assertExit(t2.run("--config", c, "--nodes", "1-3"), 0)
        self.assertEqual([t2.nr(n) for n in range(4)], [0, 2, 2, 2])

    def test_node_counts_are_1GiB_pages(self):
        t = self.tree(nodes=2)
        c = self.config(t, '[reserve]\npage_size = "2M"\n[node.0]\nreserve_huge_os_pages = 5\n')
        before = t.snapshot()
        r = t.run("--config", c)
        self.assertExit(r, 0)
        self.assertEqual(r.stdout, f"nothing to reserve in {c}: it sets no [reserve] pages or per_node and no "
                                   "reserve_huge_os_pages for 2 MiB pages ([node.N] reserve_huge_os_pages counts "
                                   "1 GiB pages); nothing changed\n")
        self.assertEqual(t.snapshot(), before)

    def test_node_counts_by_the_allocators_numbering(self):
        # kernel nodes 0, 1, 3: the allocator's (and the config's) node 2 is the kernel's node 3
        t = self.tree(nodes=4, online="0-1,3")
        shutil.rmtree(f"{t.sys}/devices/system/node/node2")
        c = self.config(t, "[reserve]\nper_node = 1\n[node.2]\nreserve_huge_os_pages = 2\n")
        r = t.run("--config", c, "--verbose")
        self.assertExit(r, 0)
        self.assertEqual([t.nr(n) for n in (0, 1, 3)], [1, 1, 2])
        self.assertIn("[node.2] (the allocator's node 2, the kernel's node 3)", r.stderr)
        c = self.config(t, "[node.3]\nreserve_huge_os_pages = 1\n", name="three.toml")
        r = t.run("--config", c)
        self.assertExit(r, 1)
        self.assertErrorLine(r, "no NUMA node 3", "[node.3]", "numbered 0-1,3")

    def test_node_count_for_a_missing_node(self):
        t = self.tree(nodes=2)
        c = self.config(t, "[node.5]\nreserve_huge_os_pages = 1\n")
        before = t.snapshot()
        r = t.run("--config", c)
        self.assertExit(r, 1)
        self.assertErrorLine(r, "no NUMA node 5", "[node.5]")
        self.assertEqual(t.snapshot(), before)

    def test_default_config_under_the_fake_root(self):
        t = self.tree(nodes=2)
        write(f"{t.root}/etc/mimalloc-numa.toml", "[reserve]\nper_node = 1\n")
        self.assertExit(t.run(), 0)
        self.assertEqual((t.nr(0), t.nr(1)), (1, 1))

    def test_config_problems_in_reserve_exit_2(self):
        t = self.tree(nodes=2)
        c = self.config(t, '[options]\nverbos = true\n[reserve]\npages = 3\npage_size = "3G"\nbogus = 1\n')
        before = t.snapshot()
        r = t.run("--config", c)
        self.assertExit(r, 2)
        self.assertErrorLine(r, f"mi-reserve: {c}:5:", "page_size")
        self.assertErrorLine(r, f"mi-reserve: {c}:6:", "bogus")
        self.assertErrorLine(r, f"mi-reserve: warning: {c}:2:", "verbos")  # outside [reserve]: a warning
        self.assertErrorLine(r, "config error", "2 problems in [reserve]", "nothing changed", "--check-config")
        self.assertEqual(t.snapshot(), before)

    def test_every_kind_of_problem_in_reserve_is_an_error(self):
        # a mistyped key must not pass for "nothing to reserve", nor a bad value for a default
        cases = [
            ("[reserve]\nper_nodes = 8\n", "unknown key 'per_nodes'"),
            ('[reserve]\nper_node = "8"\n', "per_node"),
            ("[reserve]\nper_node = 8 8\n", "syntax error"),
            ("reserve.per_node = -1\n", "per_node"),
            ('[reserve]\nper_node = 1\non_shortfall = "maybe"\n', "on_shortfall"),
            ('[reserve]\nper_node = 1\ntimeout = "soon"\n', "timeout"),
            ("[reserve]\nper_node = 1\n[reserve]\npages = 2\n", "defined twice"),
            ("[reserve]\nper_node = 1\nnodes = '" + "0," * 2100 + "0'\n", "line longer than"),
            ('[reserve]\nper_node = 1\nnodes = """0"""\n', "multi-line strings"),
        ]
        for text, fragment in cases:
            with self.subTest(text=text):
                t = self.tree(nodes=2)
                c = self.config(t, text)
                before = t.snapshot()
                r = t.run("--config", c)
                self.assertExit(r, 2)
                self.assertErrorLine(r, f"mi-reserve: {c}:", fragment)
                self.assertNotIn("warning", r.stderr)
                self.assertErrorLine(r, "config error", "in [reserve]", "nothing changed")
                self.assertEqual(t.snapshot(), before)

    def test_typo_outside_reserve_warns_and_reserves(self):
        # issue 9: `verbos = true` next to a valid [reserve] per_node = 1
        t = self.tree(nodes=2)
        c = self.config(t, "[options]\nverbos = true\n\n[reserve]\nper_node = 1\n")
        r = t.run("--config", c)
        self.assertExit(r, 0)
        self.assertEqual((t.nr(0), t.nr(1)), (1, 1))
        self.assertErrorLine(r, f"mi-reserve: warning: {c}:2:", "unknown option 'verbos'")
        self.assertErrorLine(r, "warning", f"{c}: 1 problem outside [reserve]", "going on")
        self.assertEqual(r.stderr.count("verbos"), 1, "each problem said once")
        self.assertEqual([x["result"] for x in parse_table(r.stdout)], ["ok", "ok"])
        # --check-config is still strict about the same file
        r = run_tool(["--check-config", c])
        self.assertExit(r, 1)

    def test_problems_in_what_the_allocator_reads_are_read_as_it_does(self):
        # a bad [node.0] count is skipped by the allocator, which then spreads the [options] count over
        # every node: mi-reserve reserves the same, with a warning
        t = self.tree(nodes=2)
        c = self.config(t, "[options]\nreserve_huge_os_pages = 4\n[node.0]\nreserve_huge_os_pages = -3\n"
                           "arena_reserve = \"lots\"\n[mystery]\nx = 1\n")
        r = t.run("--config", c)
        self.assertExit(r, 0)
        self.assertEqual((t.nr(0), t.nr(1)), (2, 2))
        for line in (4, 5, 6):
            self.assertErrorLine(r, f"mi-reserve: warning: {c}:{line}:")
        self.assertErrorLine(r, "warning", "3 problems outside [reserve]")

    def test_lines_after_reserve_are_not_its_own(self):
        # a bad header or another table after [reserve], or a key named like it in [options]: warnings
        t = self.tree(nodes=2)
        c = self.config(t, "[reserve]\nper_node = 1\n[options\nverbose = 1\n[mystery]\nx = 1\n"
                           "[options]\nreserve.pages = 4\n")
        r = t.run("--config", c)
        self.assertExit(r, 0)
        self.assertEqual((t.nr(0), t.nr(1)), (1, 1))
        for line in (3, 5, 8):
            self.assertErrorLine(r, f"mi-reserve: warning: {c}:{line}:")
        self.assertErrorLine(r, "warning", "3 problems outside [reserve]")

    def test_unknown_table_near_reserve_is_a_warning(self):
        t = self.tree(nodes=2)
        c = self.config(t, "[reserv]\nper_node = 1\n")
        r = t.run("--config", c)
        self.assertExit(r, 0)
        self.assertErrorLine(r, f"mi-reserve: warning: {c}:1:", "unknown table [reserv]")
        self.assertTrue(r.stdout.startswith(f"nothing to reserve in {c}:"), r.stdout)
        self.assertEqual((t.nr(0), t.nr(1)), (0, 0))

    def test_shipped_example_is_a_clean_no_op(self):
        # issue 9: /etc/mimalloc-numa.toml copied from the example makes the unit fail. Under the fake root
        # as the default config, and named with --config; on trees without 1 GiB pools, and without any.
        example = read(SHIPPED_EXAMPLE)
        for kw in ({"nodes": 2}, {"nodes": 1, "sizes": (M2,)}, {"nodes": 2, "no_pools": (0, 1)}):
            with self.subTest(tree=kw):
                t = self.tree(**kw)
                write(f"{t.root}/etc/mimalloc-numa.toml", example)
                before = t.snapshot()
                for args in ([], ["--config", f"{t.root}/etc/mimalloc-numa.toml"]):
                    r = t.run(*args)
                    self.assertExit(r, 0)
                    self.assertEqual(r.stdout, f"nothing to reserve in {t.root}/etc/mimalloc-numa.toml: it sets no "
                                               "[reserve] pages or per_node and no reserve_huge_os_pages; nothing "
                                               "changed\n")
                    self.assertEqual(r.stderr, "")
                    self.assertEqual(t.snapshot(), before, "no file written, no state")
                # and the unit's ExecStop after it: nothing to release, exit 0
                r = t.run("--release")
                self.assertExit(r, 0)
                self.assertIn("nothing to release", r.stdout)

    def test_zero_counts(self):
        t = self.tree(nodes=2)
        c = self.config(t, "[reserve]\nper_node = 0\n")
        r = t.run("--config", c)
        self.assertExit(r, 0)
        self.assertEqual(r.stdout, f"nothing to reserve in {c}: every count is 0; nothing changed\n")
        self.assertFalse(os.path.exists(t.state))
        # with pages held, a count of 0 gives them back, as any smaller count does
        self.assertExit(t.run("--per-node", "2"), 0)
        r = t.run("--config", c)
        self.assertExit(r, 0)
        self.assertEqual((t.nr(0), t.nr(1)), (0, 0))
        self.assertEqual([x["result"] for x in parse_table(r.stdout)], ["ok", "ok"])
        self.assertFalse(os.path.exists(t.state))

    def test_no_count_leaves_earlier_pages(self):
        t = self.tree(nodes=2)
        self.assertExit(t.run("--per-node", "1"), 0)
        c = self.config(t, "[options]\nverbose = false\n")
        r = t.run("--config", c)
        self.assertExit(r, 0)
        self.assertIn("nothing to reserve", r.stdout)
        self.assertIn("the 2 pages mi-reserve reserved before stay; mi-reserve --release gives them back", r.stdout)
        self.assertEqual((t.nr(0), t.nr(1)), (1, 1))

    def test_counts_only_for_nodes_not_selected(self):
        t = self.tree(nodes=2)
        c = self.config(t, '[reserve]\nnodes = "0"\n[node.1]\nreserve_huge_os_pages = 2\n')
        r = t.run("--config", c)
        self.assertExit(r, 0)
        self.assertEqual(r.stdout, f"nothing to reserve on node(s) 0: the counts in {c} are for other nodes; "
                                   "nothing changed\n")
        self.assertEqual((t.nr(0), t.nr(1)), (0, 0))

    def test_missing_config_file(self):
        t = self.tree(nodes=2)
        r = t.run("--config", f"{t.root}/absent.toml", "--pages", "1")
        self.assertExit(r, 2)
        self.assertErrorLine(r, "absent.toml", "cannot read")
        self.assertErrorLine(r, "config error")

    def test_nothing_to_reserve(self):
        t = self.tree(nodes=2)
        r = t.run()
        self.assertExit(r, 2)
        self.assertErrorLine(r, "nothing to reserve", "--pages")


# ---------------------------------------------------------------------------
class CheckConfig(FakeTest):
    def test_clean_file(self):
        d = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, d)
        path = f"{d}/good.toml"
        write(path, '# fine\n[options]\nverbose = false\narena_reserve = "256MiB"\n\n[node.0]\nreserve_huge_os_pages = 2\n'
                    '[reserve]\npages = 4\npage_size = "1G"\nnodes = "all"\ntimeout = "30s"\non_shortfall = "release"\n')
        r = run_tool(["--check-config", path])
        self.assertExit(r, 0)
        self.assertEqual(r.stdout, f"{path}: no problems\n")
        self.assertEqual(r.stderr, "")

    def test_every_problem_listed(self):
        d = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, d)
        path = f"{d}/bad.toml"
        write(path, '[options]\nno_such_option = 1\nverbose = "loud"\n[reserve]\nnodes = "0-"\n'
                    'on_shortfall = "later"\n[mystery]\nx = 1\n')
        r = run_tool(["--check-config", path])
        self.assertExit(r, 1)
        for line in (2, 3, 5, 6, 7):
            self.assertErrorLine(r, f"{path}:{line}:")
        self.assertErrorLine(r, f"{path}:6:", "on_shortfall", '"keep", "release" or "fail"')
        self.assertErrorLine(r, f"{path}: 5 problems")
        self.assertEqual(r.stdout, "")

    def test_unreadable_file(self):
        r = run_tool(["--check-config", "/nonexistent/mimalloc-numa.toml"])
        self.assertExit(r, 1)
        self.assertErrorLine(r, "/nonexistent/mimalloc-numa.toml", "cannot read")


# ---------------------------------------------------------------------------
class Usage(FakeTest):
    def test_usage_errors_exit_2(self):
        t = self.tree(nodes=2)
        cases = [
            (["--pages", "x"], "--pages"),
            (["--pages", "-1"], ""),
            (["--pages", "2000000"], "--pages"),
            (["--pages", "1", "--per-node", "1"], "--pages and --per-node"),
            (["--pages", "1", "--page-size", "3X"], "--page-size"),
            (["--pages", "1", "--page-size", "3M"], "--page-size"),
            (["--pages", "1", "--page-size", "2"], "--page-size"),
            (["--pages", "1", "--nodes", "1-"], "--nodes"),
            (["--pages", "1", "--nodes", "3-1"], "--nodes"),
            (["--pages", "1", "--nodes", ""], "--nodes"),
            (["--pages", "1", "--timeout", "soon"], "--timeout"),
            (["--pages", "1", "--on-shortfall", "maybe"], "--on-shortfall: expected keep, release or fail"),
            (["--pages", "1", "--on-shortfall", "Keep"], "--on-shortfall"),
            (["--status", "--on-shortfall", "keep"], "--on-shortfall has no meaning with --status"),
            (["--release", "--on-shortfall", "fail"], "--on-shortfall has no meaning with --release"),
            (["--status", "--release"], "separate actions"),
            (["--json"], "--json goes with --status"),
            (["--status", "--pages", "1"], "--pages has no meaning with --status"),
            (["--release", "--timeout", "1s"], "--timeout has no meaning with --release"),
            (["--status", "--dry-run"], "--dry-run"),
            (["--bogus"], "bogus"),
            (["--page", "1"], "--page"),
            (["extra"], "unexpected argument 'extra'"),
            (["--pages"], "--pages"),
            (["--pages", "1", "--pages", "2"], "--pages"),
            (["--pages", "1", "--config", ""], "--config: the name is empty"),
            (["--status", "--state-file", ""], "--state-file: the name is empty"),
        ]
        before = t.snapshot()
        for args, fragment in cases:
            with self.subTest(args=args):
                r = t.run(*args)
                self.assertExit(r, 2)
                self.assertErrorLine(r, fragment, "--help")
        self.assertEqual(t.snapshot(), before)
        r = run_tool(["--check-config", "/dev/null", "--nodes", "1"])
        self.assertExit(r, 2)
        r = run_tool(["--check-config", ""])
        self.assertExit(r, 2)
        self.assertErrorLine(r, "--check-config: the name is empty")

    def test_help_and_version(self):
        r = run_tool(["--help"])
        self.assertExit(r, 0)
        self.assertTrue(r.stdout.startswith("usage: mi-reserve"))
        for code in range(6):
            self.assertRegex(r.stdout, rf"\n  {code}  ", f"exit status {code} explained")
        for opt in ("--pages", "--page-size", "--nodes", "--per-node", "--config", "--status", "--json", "--release",
                    "--dry-run", "--check-config", "--sysfs-root", "--proc-root", "--state-file", "--verbose",
                    "--version", "--help", "--timeout", "--on-shortfall", "Exit status"):
            self.assertIn(opt, r.stdout)
        r = run_tool(["--version"])
        self.assertExit(r, 0)
        self.assertRegex(r.stdout, r"^mi-reserve \d+\.\d+\.\d+ \(mimalloc-numa \d+\.\d+\.\d+\)\n$")


# ---------------------------------------------------------------------------
class Quiet(FakeTest):
    """The allocator under mi-reserve prints nothing of its own, whatever the environment or the file say
    (issue 9: show_stats = true gave every run of mi-reserve a statistics block); mi-reserve's own
    warnings about the file stay, each said once."""

    LOUD_ENV = {"MIMALLOC_SHOW_STATS": "1", "MIMALLOC_VERBOSE": "1"}

    def assertNothingFromTheAllocator(self, r):
        """No allocator message ("mimalloc-numa: ..."), no statistics: every line on stderr is mi-reserve's."""
        self.assertNotIn("mimalloc-numa:", r.stderr + r.stdout)
        self.assertNotIn("statistics", r.stderr + r.stdout)
        for line in r.stderr.splitlines():
            self.assertTrue(line.startswith("mi-reserve: "), f"not mi-reserve's: {line!r}\n{r.stderr}")

    def test_version_with_show_stats_in_the_environment(self):
        for env in ({"MIMALLOC_SHOW_STATS": "1"}, {"MIMALLOC_VERBOSE": "1"}, self.LOUD_ENV):
            with self.subTest(env=env):
                r = run_tool(["--version"], env=env)
                self.assertExit(r, 0)
                self.assertRegex(r.stdout, r"^mi-reserve \d+\.\d+\.\d+ \(mimalloc-numa \d+\.\d+\.\d+\)\n$")
                self.assertEqual(r.stderr, "")

    def test_config_with_show_stats(self):
        t = self.tree(nodes=2)
        c = os.path.join(t.root, "loud.toml")
        write(c, "[options]\nshow_stats = true\nverbose = true\nverbos = true\n[reserve]\nper_node = 1\n")
        # the file as the allocator's (MIMALLOC_CONFIG, and the environment too) and as mi-reserve's
        for args, env in ((["--version"], {"MIMALLOC_CONFIG": c}),
                          (["--status"], {"MIMALLOC_CONFIG": c, **self.LOUD_ENV}),
                          (["--config", c], {"MIMALLOC_CONFIG": c, **self.LOUD_ENV}),
                          (["--release"], {"MIMALLOC_CONFIG": c})):
            with self.subTest(args=args):
                r = t.run(*args, env=env) if args != ["--version"] else run_tool(args, env=env)
                self.assertExit(r, 0)
                self.assertNothingFromTheAllocator(r)
                if args[0] == "--config":
                    self.assertEqual((t.nr(0), t.nr(1)), (1, 1))
                    # its own warning about the file, once (the allocator under it did not read the file)
                    self.assertEqual(r.stderr.count("unknown option 'verbos'"), 1, r.stderr)
                    self.assertErrorLine(r, f"mi-reserve: warning: {c}:4:", "verbos")
                else:
                    self.assertNotIn("verbos", r.stderr)

    def test_shared_library_preloaded_too(self):
        # a second copy of the allocator (LD_PRELOAD) prints no statistics at exit either
        if not LIB or not os.path.exists(LIB):
            self.skipTest("no libmimalloc-numa.so given (--lib)")
        t = self.tree(nodes=1)
        for args in (["--version"], ["--status"]):
            with self.subTest(args=args):
                r = t.run(*args, env={"LD_PRELOAD": LIB, "MIMALLOC_SHOW_STATS": "1"})
                self.assertExit(r, 0)
                self.assertNothingFromTheAllocator(r)

    def test_no_start_up_reservation(self):
        # the allocator would reserve (and on this machine warn, or claim the pages mi-reserve sets aside)
        t = self.tree(nodes=1)
        env = {"MIMALLOC_RESERVE_HUGE_OS_PAGES": "1", "MIMALLOC_RESERVE_OS_MEMORY": "64MiB", **self.LOUD_ENV}
        r = t.run("--status", "--verbose", env=env)
        self.assertExit(r, 0)
        self.assertNothingFromTheAllocator(r)
        self.assertEqual(t.run("--status", env=env).stderr, "")


# ---------------------------------------------------------------------------
class Unit(FakeTest):
    """mi-reserve.service as configured (--unit): its ExecStart and ExecStop run against fake trees, each outcome
    judged the way systemd judges it (exit 0 or one of SuccessExitStatus= is success). No systemd needed: the
    unit's syntax is tests/packaging's (systemd-analyze verify)."""

    def setUp(self):
        if not UNIT or not os.path.exists(UNIT):
            self.skipTest("no configured mi-reserve.service given (--unit)")
        self.keys = {}
        for line in read(UNIT).splitlines():
            if "=" in line and not line.startswith("#"):
                k, v = line.split("=", 1)
                self.keys.setdefault(k.strip(), []).append(v.strip())
        self.success = {0} | {int(c) for v in self.keys.get("SuccessExitStatus", []) for c in v.split()}

    def command(self, key):
        """The unit's ExecStart/ExecStop arguments, /etc/mimalloc-numa.toml standing for the fake root's."""
        (line,) = self.keys[key]
        words = line.split()
        self.assertTrue(words[0].endswith("/mi-reserve"), line)
        return words[1:]

    def start(self, t, config_text):
        write(f"{t.root}/etc/mimalloc-numa.toml", config_text)
        args = [f"{t.root}/etc/mimalloc-numa.toml" if a == "/etc/mimalloc-numa.toml" else a
                for a in self.command("ExecStart")]
        return t.run(*args)

    def assertStarted(self, r, started):
        verdict = r.returncode in self.success
        self.assertEqual(verdict, started, f"exit {r.returncode}: the unit {'succeeds' if verdict else 'fails'}"
                                           f" (SuccessExitStatus {sorted(self.success)})\n{r.stdout}{r.stderr}")

    def stop(self, t):
        r = t.run(*self.command("ExecStop"))
        self.assertExit(r, 0)
        self.assertEqual(sum(t.nr(n) for n in t.nodes), 0, "ExecStop gave every page back")

    def test_unit_reads_the_config_it_is_conditioned_on(self):
        self.assertEqual(self.keys["ConditionPathExists"], ["/etc/mimalloc-numa.toml"])
        self.assertIn("/etc/mimalloc-numa.toml", self.command("ExecStart"))
        self.assertEqual(self.command("ExecStop"), ["--release"])

    def test_outcomes(self):
        short = '[reserve]\nper_node = 3\ntimeout = "20s"\n'
        cases = [
            # (name, config, node 1's cap, unit started, pages held after start)
            ("shipped example", read(SHIPPED_EXAMPLE), None, True, 0),
            ("typo outside [reserve]", "[options]\nverbos = true\n[reserve]\nper_node = 1\n", None, True, 2),
            ("everything", "[reserve]\nper_node = 2\n", None, True, 4),
            ("short, keep", short, 1, True, 4),
            ("short, release", short + 'on_shortfall = "release"\n', 1, True, 0),
            ("short, fail", short + 'on_shortfall = "fail"\n', 1, False, 0),
            ("problem in [reserve]", "[reserve]\nper_nodes = 2\n", None, False, 0),
        ]
        for name, text, cap, started, held in cases:
            with self.subTest(name):
                t = self.tree(nodes=2)
                if cap is not None:
                    t.set(1, G1, cap=cap)
                t0 = time.monotonic()
                r = self.start(t, text)
                self.assertLess(time.monotonic() - t0, 15, "the servers after it do not wait out the 20 s timeout")
                self.assertStarted(r, started)
                self.assertEqual(t.nr(0) + t.nr(1), held, r.stdout + r.stderr)
                if started:
                    self.stop(t)


# ---------------------------------------------------------------------------
class RealConfig(unittest.TestCase):
    """The machine's own pools, as root, with config files: the shipped example changes nothing; a typo outside
    [reserve] next to a count of 2 MiB pages reserves them with a warning. Everything is given back."""

    POOL = f"/sys/kernel/mm/hugepages/hugepages-{M2}kB"

    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to change the kernel's huge page pools")
        if not os.path.exists(self.POOL):
            self.skipTest(f"the kernel has no pool of 2 MiB pages ({self.POOL})")
        self.dir = tempfile.mkdtemp(prefix="mi-reserve-real-")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        self.state = f"{self.dir}/state"
        self.before = self.pools()
        self.addCleanup(self.restore)

    @staticmethod
    def pools():
        return {d: int(read(f"/sys/kernel/mm/hugepages/{d}/nr_hugepages"))
                for d in sorted(os.listdir("/sys/kernel/mm/hugepages"))}

    def restore(self):
        handlers = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            give_back_real(self.state)
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)

    def test_shipped_example(self):
        r = run_tool(["--config", SHIPPED_EXAMPLE, "--state-file", self.state])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertTrue(r.stdout.startswith("nothing to reserve in "), r.stdout)
        self.assertEqual(r.stderr, "")
        self.assertEqual(self.pools(), self.before)
        self.assertFalse(os.path.exists(self.state))
        r = run_tool(["--release", "--state-file", self.state])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("nothing to release", r.stdout)

    def test_typo_outside_reserve(self):
        c = f"{self.dir}/typo.toml"
        write(c, '[options]\nverbos = true\nshow_stats = true\n[reserve]\nper_node = 1\npage_size = "2M"\n')
        r = run_tool(["--config", c, "--state-file", self.state, "--timeout", "5s"], env={"MIMALLOC_CONFIG": c},
                     timeout=120)
        if r.returncode == 1 and "not permitted" in r.stderr:
            self.skipTest(f"the pools cannot be changed here:\n{r.stderr}")
        if r.returncode == 3:
            self.skipTest(f"the kernel gave no 2 MiB page:\n{r.stdout}{r.stderr}")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        rows = parse_table(r.stdout)
        self.assertTrue(rows and all(x["result"] == "ok" and x["reserved by us"] == "1" for x in rows), r.stdout)
        self.assertEqual(self.pools()[f"hugepages-{M2}kB"], self.before[f"hugepages-{M2}kB"] + len(rows))
        self.assertEqual(r.stderr.count("unknown option 'verbos'"), 1, r.stderr)
        self.assertNotIn("statistics", r.stderr)
        self.assertNotIn("mimalloc-numa:", r.stderr)
        r = run_tool(["--release", "--state-file", self.state])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(self.pools(), self.before)


def give_back_real(state):
    """What a test on the real pools added, given back relative to the pools as they are now: mi-reserve
    --release, then, for whatever the state file still holds (a release that failed), that many pages less per
    pool, written directly. Never the counts saved before the test: other programs (another test run on this
    machine) may have changed the pools meanwhile, and writing old counts back would take their pages or leave
    pages behind."""
    if not os.path.exists(state):
        return
    run_tool(["--release", "--state-file", state])
    if not os.path.exists(state):
        return
    lines = read(state).splitlines()
    if f"boot_id {read('/proc/sys/kernel/random/boot_id').strip()}" not in lines:
        return  # not this boot's: nothing of it is in the pools
    for line in lines:
        words = line.split()
        if len(words) != 4 or words[0] != "pool":
            continue
        node, size, added = int(words[1]), int(words[2]), int(words[3])
        d = f"/sys/devices/system/node/node{node}/hugepages/hugepages-{size}kB"
        if not os.path.isdir(d):
            d = f"/sys/kernel/mm/hugepages/hugepages-{size}kB"
        nr = int(read(f"{d}/nr_hugepages"))
        with open(f"{d}/nr_hugepages", "w") as f:
            f.write(f"{max(0, nr - added)}\n")
        print(f"mi_reserve_test: gave back {added} pages of {size} kB on node {node} directly ({d})", file=sys.stderr)
    os.unlink(state)


# ---------------------------------------------------------------------------
class Real(unittest.TestCase):
    """The machine's own pools, as root (see the module's description)."""

    SIZES = (G1, M2)

    # The program under the allocator: bash, reading with builtins only. It
    # must not fork: a child that writes to a MAP_PRIVATE huge page before
    # exec needs a copy of it from the pool, which has none left, and dies of
    # SIGBUS (the kernel's rule for private hugetlb mappings).
    PROGRAM = (
        'p=/sys/kernel/mm/hugepages/hugepages-1048576kB; read f < "$p/free_hugepages"; read r < "$p/resv_hugepages"; '
        'echo "pool free=$f resv=$r"; '
        'while read -r k v u; do case $k in HugePages_*|Hugepagesize:|Hugetlb:) echo "meminfo $k $v";; esac; '
        'done < /proc/meminfo; '
        'while read -r k v u; do case $k in HugetlbPages:) echo "status $k $v";; esac; done < /proc/self/status')

    @staticmethod
    def global_pool(size):
        return f"/sys/kernel/mm/hugepages/hugepages-{size}kB"

    def counts(self):
        """size -> (nr_hugepages, free_hugepages) of the machine's pools (all nodes)."""
        out = {}
        for s in self.SIZES:
            d = self.global_pool(s)
            out[s] = (int(read(f"{d}/nr_hugepages")), int(read(f"{d}/free_hugepages")))
        return out

    @staticmethod
    def meminfo(lines=None):
        """/proc/meminfo's huge page lines as name -> number (kB for Hugepagesize and Hugetlb)."""
        if lines is None:
            lines = [f"meminfo {l}" for l in read("/proc/meminfo").splitlines()]
        out = {}
        for line in lines:
            words = line.split()
            if len(words) >= 3 and words[0] == "meminfo" and words[1].startswith(("HugePages_", "Hugepagesize", "Hugetlb")):
                out[words[1].rstrip(":")] = int(words[2])
        return out

    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to change the kernel's huge page pools")
        for s in self.SIZES:
            if not os.path.exists(self.global_pool(s)):
                self.skipTest(f"the kernel has no pool of {s} kB pages ({self.global_pool(s)})")
        if not LIB or not os.path.exists(LIB):
            self.skipTest("no libmimalloc-numa.so given (--lib)")
        self.dir = tempfile.mkdtemp(prefix="mi-reserve-real-")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        self.state = f"{self.dir}/state"
        self.config = f"{self.dir}/empty.toml"
        write(self.config, "")
        self.before = self.counts()
        self.addCleanup(self.restore)  # runs before the rmtree (last in, first out)

    def restore(self):
        """Always (not to be stopped half-way): what the test added, given back (give_back_real)."""
        handlers = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            give_back_real(self.state)
            if self.counts() != self.before:
                print(f"mi_reserve_test: the pools are {self.counts()}, were {self.before} (another program?)",
                      file=sys.stderr)
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)

    def reserve(self, size_arg):
        r = run_tool(["--pages", "1", "--page-size", size_arg, "--state-file", self.state, "--config", self.config,
                      "--timeout", "10s"], timeout=120)
        if r.returncode == 3:
            self.skipTest(f"the kernel gave no {size_arg} page:\n{r.stdout}{r.stderr}")
        if r.returncode == 1 and "not permitted" in r.stderr:
            self.skipTest(f"the pools cannot be changed here:\n{r.stderr}")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        rows = parse_table(r.stdout)
        self.assertEqual(sum(int(x["reserved by us"]) for x in rows), 1, r.stdout)
        self.assertTrue(all(x["result"] == "ok" for x in rows), r.stdout)
        return r

    def test_reserve_claim_release(self):
        nr1, free1 = self.before[G1]
        nr2, free2 = self.before[M2]
        mem_before = self.meminfo()
        self.reserve("1G")
        self.reserve("2M")
        self.assertEqual(self.counts(), {G1: (nr1 + 1, free1 + 1), M2: (nr2 + 1, free2 + 1)})

        # /proc/meminfo agrees: Hugetlb is every pool's pages in kB; HugePages_* count the default size
        mem = self.meminfo()
        if "Hugetlb" in mem_before:
            self.assertEqual(mem["Hugetlb"] - mem_before["Hugetlb"], G1 + M2, f"{mem_before} -> {mem}")
        default_kib = mem.get("Hugepagesize")
        if default_kib in self.SIZES:
            self.assertEqual((mem["HugePages_Total"], mem["HugePages_Free"]), self.counts()[default_kib],
                             f"/proc/meminfo's HugePages_* ({default_kib} kB pages) against the pool's files")

        # --status: JSON and table, every column, against the pools' own files
        r = run_tool(["--status", "--json", "--state-file", self.state])
        self.assertEqual(r.returncode, 0, r.stderr)
        pools = json.loads(r.stdout)["pools"]
        ours = {p["page_size_kib"]: p["reserved_by_us"] for p in pools if p["reserved_by_us"]}
        self.assertEqual(ours, {G1: 1, M2: 1})
        for s in self.SIZES:
            self.assertEqual((sum(p["total"] for p in pools if p["page_size_kib"] == s),
                              sum(p["free"] for p in pools if p["page_size_kib"] == s)), self.counts()[s])
        r = run_tool(["--status", "--state-file", self.state])
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = parse_table(r.stdout)
        self.assertEqual(list(rows[0].keys()), ["node", "page size", "total", "free", "reserved by us", "surplus"])
        for p in pools:
            row = row_of(rows, p["node"], p["page_size"])
            self.assertEqual((row["total"], row["free"], row["reserved by us"], row["surplus"]),
                             (str(p["total"]), str(p["free"]), str(p["reserved_by_us"]),
                              "-" if p["surplus"] is None else str(p["surplus"])))

        # a program under the allocator claims the 1 GiB page at start-up
        mem_reserved = self.meminfo()
        env = clean_env({"LD_PRELOAD": LIB, "MIMALLOC_RESERVE_HUGE_OS_PAGES": "1", "MIMALLOC_VERBOSE": "1",
                         "MIMALLOC_SHOW_STATS": "1", "MIMALLOC_CONFIG": self.config})
        p = subprocess.run(["bash", "-c", self.PROGRAM], capture_output=True, text=True, env=env, timeout=120)
        out = p.stdout + p.stderr
        self.assertEqual(p.returncode, 0, out)
        # the pool's files: one of its free pages is the program's (faulted in: not free; or only reserved: resv)
        m = re.search(r"pool free=(\d+) resv=(\d+)", p.stdout)
        self.assertIsNotNone(m, out)
        free_in, resv_in = int(m.group(1)), int(m.group(2))
        self.assertEqual(free_in - resv_in, free1, f"the program holds the page (free {free_in}, resv {resv_in})")
        # /proc/meminfo seen by the program: the pages are the ones reserved (no pool grew, no surplus)
        mem_in = self.meminfo(p.stdout.splitlines())
        self.assertTrue(mem_in, f"no /proc/meminfo lines from the program:\n{out}")
        for key in ("Hugetlb", "HugePages_Total", "HugePages_Surp"):
            if key in mem_reserved:
                self.assertEqual(mem_in.get(key), mem_reserved[key], f"/proc/meminfo {key} in the program")
        if mem_in.get("Hugepagesize") == G1:
            self.assertEqual(mem_in["HugePages_Free"] - mem_in["HugePages_Rsvd"], free1, "/proc/meminfo in the program")
        # /proc/self/status: the program maps 1 GiB of huge pages (its arena is in use, so the page is faulted in)
        m = re.search(r"^status HugetlbPages: (\d+)$", p.stdout, re.M)
        if m:  # Linux >= 4.4
            self.assertGreaterEqual(int(m.group(1)), G1, "HugetlbPages (kB) in /proc/self/status")
        # the allocator's own word: its verbose message and MIMALLOC_SHOW_STATS's arenas line and per-node table
        self.assertRegex(p.stderr, r"reserved 1 GiB huge pages", "the allocator says it reserved the page")
        self.assertNotIn("the kernel gave", p.stderr)
        m = re.search(r"arenas: \d+; 1 GiB pages: (\d+) reserved, \d+ in use, (\d+) asked for but not given", out)
        self.assertIsNotNone(m, f"no arenas line in the statistics:\n{out}")
        self.assertEqual((int(m.group(1)), int(m.group(2))), (1, 0), m.group(0))
        self.assertIn("numa nodes:", out)
        table = out[out.index("numa nodes:"):].splitlines()
        self.assertRegex(table[1], r"\bnode\b.*\b1G pages\b", "the per-node table's header")
        huge = [re.search(r"\s(\d+)/(\d+)\s", line + " ") for line in table[2:]]
        huge = [(int(h.group(1)), int(h.group(2))) for h in huge if h]
        self.assertTrue(huge, f"no node rows in the statistics:\n{out}")
        self.assertEqual(sum(r for _, r in huge), 1, f"huge pages reserved over the nodes: {huge}")
        self.assertTrue(all(u <= r for u, r in huge), huge)
        self.assertEqual(self.counts()[G1], (nr1 + 1, free1 + 1), "free again when the program ended")

        r = run_tool(["--release", "--state-file", self.state])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        rows = parse_table(r.stdout)
        self.assertEqual(sorted((x["page size"], x["released"], x["result"]) for x in rows),
                         [("1 GiB", "1", "ok"), ("2 MiB", "1", "ok")])
        self.assertEqual(self.counts(), self.before)
        self.assertFalse(os.path.exists(self.state))
        if "Hugetlb" in mem_before:
            self.assertEqual(self.meminfo()["Hugetlb"], mem_before["Hugetlb"])


class Terminated(Exception):
    """SIGTERM (meson's timeout) or SIGINT, as an error of the running test, so that its clean-ups (Real: the kernel's
    pools restored) still run: unittest skips them for KeyboardInterrupt."""


def on_signal(signum, frame):
    raise Terminated(f"stopped by signal {signum}")


def main():
    global MI_RESERVE, LIB, UNIT
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    args = sys.argv[1:]
    while len(args) >= 2 and args[0] in ("--lib", "--unit"):
        if args[0] == "--lib":
            LIB = args[1]
        else:
            UNIT = args[1]
        args = args[2:]
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    MI_RESERVE = os.path.abspath(args[0])
    names = args[1:] or [c for c in ("Status", "Reserve", "Shortfall", "Release", "DryRun", "Permissions", "Config",
                                     "CheckConfig", "Usage", "Quiet", "Unit", "Real", "RealConfig")]
    suite = unittest.defaultTestLoader.loadTestsFromNames(names, sys.modules[__name__])
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    if not result.wasSuccessful():
        return 1
    if result.testsRun > 0 and len(result.skipped) == result.testsRun:
        return 77
    return 0


if __name__ == "__main__":
    sys.exit(main())
