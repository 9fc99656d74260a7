"""glibc's malloc introspection and the allocator's statistics, in one python3
process under LD_PRELOAD (run by introspection.sh through tools/mi-run).

    introspection.py LIB_MAPNAME TMPDIR

Checks, with ctypes, as a monitoring agent or a program would call them:
  - mallinfo2, mallinfo, malloc_stats, malloc_info, mallopt and malloc_trim
    are the allocator's (the same addresses as in the preloaded library);
  - mallinfo2 matches mi_numa_stats(MI_NUMA_STATS_TOTAL) taken at the same
    moment: arena + hblkhd == committed, uordblks + hblkhd-blocks == blocks,
    hblks == live blocks over 2 MiB, keepcost == memory waiting for a purge;
    and glibc's identities: uordblks + fordblks == arena, keepcost <=
    fordblks, smblks == usmblks == fsmblks == 0; mallinfo is mallinfo2 in ints;
  - the figures move with the program: 64 blocks of 1 MiB add exactly their
    malloc_usable_size to uordblks, 8 blocks of 5 MiB to hblks; freed, they
    go; malloc_trim gives the free memory back (keepcost 0 after it);
  - malloc_stats prints glibc's shape, its total = the committed bytes;
  - malloc_info writes well-formed XML (python's parser), a <heap> per NUMA
    node, sizes per size class, whose live bytes add up to uordblks;
    malloc_info(1, fp) fails with EINVAL;
  - mallopt applies M_TRIM_THRESHOLD (1; -1 turns purging off, purge_delay
    reads -1) and returns 0 for the parameters it has no equivalent of;
  - a forking server: two children exiting at once write two whole
    statistics reports, every line tagged with its own pid; with
    MIMALLOC_STATS_FILE=DIR/%n-%p.txt every process writes its own file.
Prints "ok" lines and exits 0, or prints FAIL lines and exits 1.
"""
import ctypes
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

failures = []


def check(cond, what):
    if cond:
        print("ok:", what)
    else:
        print("FAIL:", what)
        failures.append(what)


libc = ctypes.CDLL(None, use_errno=True)  # the global scope: the preloaded library first


class Mallinfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]


class Mallinfo(ctypes.Structure):
    _fields_ = [(n, ctypes.c_int) for n in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]


class NumaStats(ctypes.Structure):  # mi_numa_stats_t (mimalloc-numa.h)
    _fields_ = [("node", ctypes.c_int), ("os_index", ctypes.c_int)] + [(n, ctypes.c_size_t) for n in (
        "reserved committed in_use purged huge_pages_reserved huge_pages_in_use local_segments "
        "remote_segments fallbacks blocks block_count big_blocks big_block_bytes purge_pending").split()]


MI_NUMA_STATS_TOTAL, MI_NUMA_STATS_UNBOUND, MI_NUMA_STATS_OUTSIDE, MI_NUMA_STATS_METADATA = -1, -2, -3, -4
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD, M_MMAP_MAX, M_CHECK_ACTION, M_PERTURB, M_ARENA_TEST, M_ARENA_MAX = \
    -1, -2, -3, -4, -5, -6, -7, -8
M_MXFAST = 1
MI_OPTION_PURGE_DELAY = 15

libc.mallinfo2.restype = Mallinfo2
libc.mallinfo.restype = Mallinfo
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.malloc_usable_size.restype = ctypes.c_size_t
libc.malloc_usable_size.argtypes = [ctypes.c_void_p]
libc.fopen.restype = ctypes.c_void_p
libc.fclose.argtypes = [ctypes.c_void_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.setvbuf.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
libc.mi_option_get.restype = ctypes.c_long
libc.mi_numa_node_count.restype = ctypes.c_int


def numa_stats(row):
    s = NumaStats()
    rc = libc.mi_numa_stats(row, ctypes.byref(s))
    assert rc == 0, f"mi_numa_stats({row}) = {rc}"
    return s


def fields(st):
    return tuple(getattr(st, n) for n, _ in st._fields_)


def at_one_moment(read):
    """read() between two reads of the allocator's totals that agree: the
    program (this interpreter) allocated nothing in between."""
    for _ in range(200):
        before = fields(numa_stats(MI_NUMA_STATS_TOTAL))
        value = read()
        after = numa_stats(MI_NUMA_STATS_TOTAL)
        if fields(after) == before:
            return value, after
    raise RuntimeError("the figures never held still for one read")


def main():
    mapname, tmp = sys.argv[1], sys.argv[2]

    # --- the symbols are ours ---------------------------------------------
    lib_path = None
    with open("/proc/self/maps") as maps:
        for line in maps:
            if line.rstrip().endswith("/" + mapname):
                lib_path = line.split()[-1]
    check(lib_path is not None, f"{mapname} is mapped into python3")
    ours = ctypes.CDLL(lib_path)
    for name in ("mallinfo2", "mallinfo", "malloc_stats", "malloc_info", "mallopt", "malloc_trim"):
        a = ctypes.cast(getattr(libc, name), ctypes.c_void_p).value
        b = ctypes.cast(getattr(ours, name), ctypes.c_void_p).value
        check(a == b, f"{name} resolves to the allocator's")

    # --- a workload ----------------------------------------------------------
    keep = [bytes(1000 + i % 700) for i in range(20000)]
    big = bytearray(50 * 1024 * 1024)
    text = {str(i): "x" * (i % 3000) for i in range(5000)}

    def expect_mallinfo_matches(when):
        (m2, m1), t = at_one_moment(lambda: (libc.mallinfo2(), libc.mallinfo()))
        d = {n: getattr(m2, n) for n, _ in Mallinfo2._fields_}
        print(f"  mallinfo2 {when}: {d}")
        print(f"  mi_numa_stats(TOTAL): committed={t.committed} blocks={t.blocks} big_blocks={t.big_blocks} "
              f"big_block_bytes={t.big_block_bytes} purge_pending={t.purge_pending}")
        check(m2.arena + m2.hblkhd == t.committed, f"{when}: arena + hblkhd == the committed bytes of mi_numa_stats")
        check(m2.uordblks + t.big_block_bytes == t.blocks, f"{when}: uordblks + the blocks over 2 MiB == its live blocks")
        check(m2.hblks == t.big_blocks, f"{when}: hblks == its blocks over 2 MiB")
        check(m2.hblkhd >= t.big_block_bytes, f"{when}: hblkhd holds those blocks")
        check(m2.keepcost == t.purge_pending, f"{when}: keepcost == the memory waiting for its purge")
        check(m2.uordblks + m2.fordblks == m2.arena, f"{when}: uordblks + fordblks == arena (glibc's identity)")
        check(m2.keepcost <= m2.fordblks, f"{when}: keepcost <= fordblks")
        check(m2.smblks == 0 and m2.usmblks == 0 and m2.fsmblks == 0, f"{when}: smblks, usmblks, fsmblks are 0")
        check(m2.uordblks > 0 and m2.arena > 0, f"{when}: the figures are not glibc's zeros")
        sat = lambda v: min(v, 2**31 - 1)
        check(all(getattr(m1, n) == sat(getattr(m2, n)) for n, _ in Mallinfo._fields_),
              f"{when}: mallinfo is mallinfo2 in ints")
        commit = ctypes.c_size_t()
        libc.mi_process_info(None, None, None, None, None, ctypes.byref(commit), None, None)
        return m2, t

    m_a, t_a = expect_mallinfo_matches("after the workload")
    check(m_a.hblks >= 1 and m_a.hblkhd >= 50 * 1024 * 1024, "the 50 MiB bytearray is a block over 2 MiB")

    # --- the figures move with the program ----------------------------------
    blocks = [libc.malloc(1024 * 1024) for _ in range(64)]
    usable = sum(libc.malloc_usable_size(p) for p in blocks)
    bigs = [libc.malloc(5 * 1024 * 1024) for _ in range(8)]
    m_b, t_b = expect_mallinfo_matches("with 64 x 1 MiB and 8 x 5 MiB more")
    # python may allocate a little between the reads: the difference is at least the blocks
    check(m_b.uordblks - m_a.uordblks >= usable, f"uordblks grew by the 64 blocks' {usable} usable bytes")
    check(m_b.hblks - m_a.hblks == 8, "hblks counts the 8 blocks over 2 MiB")
    for p in blocks + bigs:
        libc.free(p)
    m_c, _ = expect_mallinfo_matches("after freeing them")
    check(m_b.uordblks - m_c.uordblks >= usable, "uordblks went down by them")
    check(m_c.hblks == m_a.hblks, "hblks is back where it was")

    # --- malloc_trim ----------------------------------------------------------
    del keep, big, text
    trimmed = libc.malloc_trim(0)
    m_t, _ = expect_mallinfo_matches("after malloc_trim")
    check(trimmed == 1, "malloc_trim gave memory back (1)")
    check(m_t.keepcost == 0, "nothing waits for a purge after malloc_trim")

    # --- malloc_stats ---------------------------------------------------------
    out_path = os.path.join(tmp, "malloc_stats.txt")
    fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    saved = os.dup(2)
    os.dup2(fd, 2)
    try:
        _, t_s = at_one_moment(lambda: libc.malloc_stats())
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(fd)
    with open(out_path) as f:
        stats = f.read()
    print("  malloc_stats:\n" + "\n".join("    " + l for l in stats.splitlines()))
    check(re.search(r"^Arena 0:\nsystem bytes     = +\d+\nin use bytes     = +\d+\n", stats, re.M) is not None,
          "malloc_stats: glibc's 'Arena 0:' block")
    m = re.search(r"Total \(incl\. mmap\):\nsystem bytes     = +(\d+)\nin use bytes     = +(\d+)\n"
                  r"max mmap regions = +(\d+)\nmax mmap bytes   = +(\d+)\n$", stats)
    check(m is not None, "malloc_stats: glibc's total block")
    if m:
        check(int(m.group(1)) == t_s.committed, "malloc_stats: total system bytes == the committed bytes")
        check(int(m.group(2)) == t_s.blocks, "malloc_stats: total in use bytes == the live blocks")
        check(int(m.group(3)) >= 8, "malloc_stats: max mmap regions saw the 8 blocks over 2 MiB at once")

    # --- malloc_info ----------------------------------------------------------
    xml_path = os.path.join(tmp, "malloc_info.xml")

    # the FILE and its buffer are made outside the measured moment
    fp = libc.fopen(xml_path.encode(), b"w")
    libc.setvbuf(ctypes.c_void_p(fp), None, 2, 0)  # _IONBF: fwrite allocates no buffer
    rc, t_x = at_one_moment(lambda: libc.malloc_info(0, fp))
    libc.fclose(fp)
    check(rc == 0, "malloc_info(0, fp) returns 0")
    try:
        root = ET.parse(xml_path).getroot()
        check(True, "malloc_info: well-formed XML (python's parser)")
    except ET.ParseError as e:
        check(False, f"malloc_info: well-formed XML: {e}")
        root = None
    if root is not None:
        check(root.tag == "malloc" and root.get("version") == "1", "malloc_info: <malloc version=\"1\">")
        heaps = root.findall("heap")
        nodes = libc.mi_numa_node_count()
        node_heaps = [h for h in heaps if h.get("node") is not None]
        check([int(h.get("node")) for h in node_heaps] == list(range(nodes)), f"malloc_info: a <heap> per node ({nodes})")
        inuse = 0
        for h in heaps:
            for s in h.find("sizes").findall("size"):
                lo, hi = int(s.get("from")), int(s.get("to"))
                check_ok = lo <= hi and int(s.get("inuse_total")) % hi == 0 and int(s.get("total")) % hi == 0
                if not check_ok:
                    check(False, f"malloc_info: size class {lo}-{hi}: byte counts are multiples of the block size")
                inuse += int(s.get("inuse_total"))
        totals = {t.get("type"): t for t in root.findall("total")}
        system = {s.get("type"): int(s.get("size")) for s in root.findall("system")}
        check(inuse == t_x.blocks - t_x.big_block_bytes,
              "malloc_info: the live bytes of the size classes add up to uordblks")
        check(int(totals["mmap"].get("count")) == t_x.big_blocks, "malloc_info: mmap count == blocks over 2 MiB")
        check(system["current"] == t_x.committed, "malloc_info: system current == the committed bytes")
        meta = numa_stats(MI_NUMA_STATS_METADATA)
        heap_sum = sum(int(h.find("system[@type='current']").get("size")) for h in heaps)
        check(heap_sum + meta.committed == t_x.committed, "malloc_info: the heaps and the metadata add up to the total")
    ctypes.set_errno(0)
    fp = libc.fopen(xml_path.encode(), b"w")
    rc = libc.malloc_info(1, fp)
    err = ctypes.get_errno()
    libc.fclose(fp)
    check(rc == -1 and err == 22, "malloc_info(1, fp) fails with EINVAL")

    # --- mallopt --------------------------------------------------------------
    delay = libc.mi_option_get(MI_OPTION_PURGE_DELAY)
    check(libc.mallopt(M_TRIM_THRESHOLD, -1) == 1, "mallopt(M_TRIM_THRESHOLD, -1) applies: 1")
    check(libc.mi_option_get(MI_OPTION_PURGE_DELAY) == -1, "... and free memory is no longer purged (purge_delay -1)")
    check(libc.mallopt(M_TRIM_THRESHOLD, 128 * 1024) == 1, "mallopt(M_TRIM_THRESHOLD, 128 KiB) applies: 1")
    check(libc.mi_option_get(MI_OPTION_PURGE_DELAY) == delay, f"... and purging is back (purge_delay {delay})")
    for name, param in (("M_MXFAST", M_MXFAST), ("M_TOP_PAD", M_TOP_PAD), ("M_MMAP_THRESHOLD", M_MMAP_THRESHOLD),
                        ("M_MMAP_MAX", M_MMAP_MAX), ("M_CHECK_ACTION", M_CHECK_ACTION), ("M_PERTURB", M_PERTURB),
                        ("M_ARENA_TEST", M_ARENA_TEST), ("M_ARENA_MAX", M_ARENA_MAX), ("unknown", 12345)):
        check(libc.mallopt(param, 2) == 0, f"mallopt({name}) has no equivalent here: 0")

    # --- a forking server's reports -------------------------------------------
    forking_server(tmp)
    stats_files(tmp)

    print(f"introspection: {len(failures)} failure(s)")
    return 1 if failures else 0


def forking_server(tmp):
    """Two children exit at once, their stderr in one file (O_APPEND)."""
    path = os.path.join(tmp, "children.txt")
    out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    r, w = os.pipe()
    pids = []
    for _ in range(2):
        pid = os.fork()
        if pid == 0:
            os.close(w)
            os.dup2(out, 2)
            work = [bytes(100 * i + 8) for i in range(600)]  # many size classes: a long report
            os.read(r, 1)  # both wait here, and go together
            sys.stdout.flush()
            os._exit(child_exit())
        pids.append(pid)
    os.close(r)
    os.close(w)  # end-of-file for both at once
    for pid in pids:
        os.waitpid(pid, 0)
    os.close(out)
    with open(path) as f:
        text = f.read()
    check_reports(text, pids, "two children exiting at once")


def child_exit():
    # exit as a server's child does, through exit(3): the library's
    # destructor writes the report (os._exit would skip it)
    libc.exit(0)
    return 0


def check_reports(text, pids, what):
    runs = []
    per_pid = {}
    for line in text.splitlines():
        m = re.match(r"^\[(\d+)\] ", line)
        if not m:
            check(False, f"{what}: every line carries a pid: {line!r}")
            return
        pid = int(m.group(1))
        if not runs or runs[-1] != pid:
            runs.append(pid)
        per_pid.setdefault(pid, []).append(line)
    check(sorted(runs) == sorted(pids), f"{what}: one whole report per process (runs of lines: {runs}, pids: {pids})")
    for pid in pids:
        lines = per_pid.get(pid, [])
        check(len(lines) > 20 and "statistics of" in lines[0] and "] process: " in lines[-1],
              f"{what}: the report of {pid} goes from its title to its last line")


def stats_files(tmp):
    """MIMALLOC_STATS_FILE=DIR/%n-%p.txt: a forking python3 writes one file a process."""
    d = os.path.join(tmp, "stats")
    os.mkdir(d)
    env = dict(os.environ)
    env["MIMALLOC_STATS_FILE"] = d + "/%n-%p.txt"
    env.pop("MIMALLOC_VERBOSE", None)
    code = ("import os, ctypes\n"
            "libc = ctypes.CDLL(None)\n"
            "pids = []\n"
            "for _ in range(2):\n"
            "    pid = os.fork()\n"
            "    if pid == 0:\n"
            "        x = [bytes(1000) for i in range(1000)]\n"
            "        libc.exit(0)\n"
            "    pids.append(pid)\n"
            "for pid in pids: os.waitpid(pid, 0)\n"
            "print(os.getpid(), *pids)\n")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    check(r.returncode == 0, f"a forking python3 with MIMALLOC_STATS_FILE ran: {r.stderr[-500:]}")
    pids = [int(p) for p in r.stdout.split()]
    check("statistics of" not in r.stderr, "the reports went to the files, not to stderr")
    names = sorted(os.listdir(d))
    # comm of the interpreter: the name it was started by (python3 here)
    comm = os.path.basename(sys.executable)[:15]
    check(names == sorted(f"{comm}-{p}.txt" for p in pids), f"one file per process named {comm}-PID.txt: {names}")
    for p in pids:
        path = os.path.join(d, f"{comm}-{p}.txt")
        if os.path.exists(path):
            st = os.stat(path)
            check(st.st_mode & 0o777 == 0o640 & ~current_umask(), f"{path}: mode 0640 (less the umask)")
            with open(path) as f:
                check_reports(f.read(), [p], f"{os.path.basename(path)}")


def current_umask():
    m = os.umask(0)
    os.umask(m)
    return m


if __name__ == "__main__":
    sys.exit(main())
