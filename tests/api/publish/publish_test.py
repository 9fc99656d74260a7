#!/usr/bin/env python3
"""publish_test.py TARGET AREA_READ SECURE: the published statistics area
(option stats_publish) as a program and a monitoring tool see it.

TARGET (publish_target.c) runs on the library with MIMALLOC_STATS_PUBLISH=1,
as a user sets it; AREA_READ (area_read.c) reads its file through
mimalloc-numa-stats.h only, as mi-stat does. Checked:
  - the first file after one interval, at most 200 ms (none for a short
    command); the background thread only from the first allocation on;
  - the file: in the first usable directory (/run/mimalloc-numa for root),
    named PID-STARTTIME.stats with the kernel's start time, mode 0600, owned
    by the process's user, a regular file; refreshed (updates go up); gone
    after a normal exit;
  - the figures of a quiet program agree with its own mi_stats_get_json and
    mi_numa_stats, taken from the same place;
  - stale files: of a dead pid, of a live pid whose start time differs, and
    a killed (SIGKILL) publisher's, removed by the next publisher; a live
    process's own file kept;
  - fork: the child publishes a file of its own (its pid, its start time),
    the parent's stays whole and keeps being refreshed; the child's goes when
    it exits; with the parent's directory removed, the child makes none (in
    a mount namespace of its own);
  - show_stats=json: one line per process that parses, with the pid;
    mi_stats_get_json(0, NULL) parses; a buffer too small gives NULL;
  - a set-user-ID program never publishes (root only; SECURE, the library
    linked statically, as the config_secure test runs it).
"""
import glob
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL:", msg)


def dirs():
    out = ["/run/mimalloc-numa"]
    if os.environ.get("XDG_RUNTIME_DIR", "").startswith("/"):
        out.append(os.environ["XDG_RUNTIME_DIR"] + "/mimalloc-numa")
    out.append(f"/tmp/mimalloc-numa-{os.geteuid()}")
    return out


def files_of(pid):
    found = []
    for d in dirs():
        found += glob.glob(f"{d}/{pid}-*.stats")
    return found


def wait_file(pid, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        f = files_of(pid)
        if f:
            return f[0]
        time.sleep(0.02)
    return None


def start_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    return int(s[s.rindex(")") + 2:].split()[19])


def env(**extra):
    e = {k: v for k, v in os.environ.items() if not k.startswith("MIMALLOC_")}
    e.update({"MIMALLOC_STATS_PUBLISH": "1", "MIMALLOC_STATS_PUBLISH_INTERVAL": "20"})
    e.update(extra)
    return e


def read_area(reader, path):
    r = subprocess.run([reader, path], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        return None, r.stderr
    return dict(line.split("=", 1) for line in r.stdout.splitlines()), ""


def start(target, *args, **extra):
    p = subprocess.Popen([target, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=env(**extra))
    lines = []
    while True:
        line = p.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if line.startswith("ready"):
            break
    return p, dict(l.split("=", 1) for l in lines if "=" in l)


def read_refreshed(reader, path):
    """Reads the area at `path`, then again until its update count grows
    (polled for up to 5 s: on a loaded machine the background thread may not
    run within a few intervals; never refreshed in 5 s is a failure for the
    caller to report). Returns (first, last, errors); first or last is None
    when a read failed."""
    first, err = read_area(reader, path)
    last, err2 = None, ""
    deadline = time.monotonic() + 5
    while first is not None and time.monotonic() < deadline:
        time.sleep(0.1)
        last, err2 = read_area(reader, path)
        if last is None or int(last["updates"]) > int(first["updates"]):
            break
    return first, last, err + err2


def check_file_and_figures(target, reader):
    p, out = start(target, "quiet", "20000", "100")
    path = wait_file(p.pid)
    if path is None:
        fail("quiet: no statistics file appeared for pid %d (dirs %s)" % (p.pid, dirs()))
        p.kill()
        return
    name = os.path.basename(path)
    want = f"{p.pid}-{start_ticks(p.pid)}.stats"
    if name != want:
        fail(f"file name {name}, expected {want} (pid and /proc start time)")
    st = os.lstat(path)
    if not stat.S_ISREG(st.st_mode) or stat.S_IMODE(st.st_mode) != 0o600 or st.st_uid != os.geteuid():
        fail(f"{path}: mode {oct(st.st_mode)} owner {st.st_uid}: expected a regular file, 0600, owned by {os.geteuid()}")
    # two reads some refreshes apart, after the program went quiet
    time.sleep(0.2)
    a1, a2, err = read_refreshed(reader, path)
    if a1 is None or a2 is None:
        fail(f"area_read failed: {err}")
        p.kill()
        return
    if int(a2["updates"]) <= int(a1["updates"]):
        fail(f"not refreshed in 5 s: updates {a1['updates']} then {a2['updates']}")
    if int(a2["pid"]) != p.pid or int(a2["start_ticks"]) != start_ticks(p.pid) or a2["program"] != "publish_target":
        fail(f"header figures: pid {a2['pid']} start_ticks {a2['start_ticks']} program {a2['program']}")
    j = json.loads(out["json"])
    # the same place: the quiet program's figures are equal
    for key in ("reserved", "committed", "in_use", "local_frees", "remote_frees", "purged"):
        if int(a2["totals." + key]) != j["totals"][key]:
            fail(f"totals.{key}: area {a2['totals.' + key]}, mi_stats_get_json {j['totals'][key]}")
    if int(a2["totals.in_use"]) != int(out["numa_blocks"]):
        fail(f"totals.in_use {a2['totals.in_use']} != mi_numa_stats(TOTAL).blocks {out['numa_blocks']}")
    if int(a2["totals.committed"]) != int(out["numa_committed"]):
        fail(f"totals.committed {a2['totals.committed']} != mi_numa_stats(TOTAL).committed {out['numa_committed']}")
    for b in j["bins"]:
        i = b["bin"]
        for key in ("live_blocks", "live_bytes", "allocations"):
            if int(a2[f"bins.{i}.{key}"]) != b[key]:
                fail(f"bin {i} {key}: area {a2[f'bins.{i}.{key}']}, json {b[key]}")
    # 20000 blocks of 100 bytes are live and were allocated (in the smallest class that holds 100 bytes)
    big = sorted((b for b in j["bins"] if b["block_size"] >= 100), key=lambda b: b["block_size"])[:1]
    if not big or big[0]["live_blocks"] < 20000 or big[0]["allocations"] < 20000:
        fail(f"the class of 100-byte blocks does not show the 20000 blocks: {big}")
    if int(a2["totals.in_use"]) < 20000 * 100 or int(a2["rss"]) < 20000 * 100 or int(a2["threads"]) < 1:
        fail(f"in_use {a2['totals.in_use']} rss {a2['rss']} threads {a2['threads']}: too small")
    if int(a2["node_count"]) < 1 or int(a2["nodes.0.reserved"]) <= 0:
        fail(f"no node figures: node_count {a2['node_count']}")
    node_sum = sum(int(a2[f"nodes.{n}.in_use"]) for n in range(int(a2["node_count"])))
    if node_sum > int(a2["totals.in_use"]):
        fail(f"nodes' in_use {node_sum} > totals {a2['totals.in_use']}")
    p.stdin.write("go\n")
    p.stdin.flush()
    p.wait(timeout=30)
    if os.path.exists(path):
        fail(f"{path} is still there after a normal exit")


def check_stale(target, reader):
    # a killed publisher's file
    k, _ = start(target, "sleep", "30")
    killed = wait_file(k.pid)
    k.send_signal(signal.SIGKILL)
    k.wait()
    if killed is None or not os.path.exists(killed):
        fail("the publisher to kill had no file")
        return
    d = os.path.dirname(killed)
    # fakes: a dead pid; this test's own (live) pid with another start time;
    # and this test's pid with its real start time (alive: kept)
    dead = 1
    while os.path.exists(f"/proc/{dead}") or dead in (1, os.getpid()):
        dead += 7919
    me = os.getpid()
    fakes = {f"{d}/{dead}-12345.stats": False, f"{d}/{me}-{start_ticks(me) + 1}.stats": False,
             f"{d}/{me}-{start_ticks(me)}.stats": True}
    for f in fakes:
        with open(f, "wb") as fh:
            fh.write(b"\0" * 64)
        os.chmod(f, 0o600)
    p, _ = start(target, "sleep", "0.3")
    wait_file(p.pid)
    p.wait(timeout=30)
    if os.path.exists(killed):
        fail(f"the killed process's file {killed} was not removed by the next publisher")
    for f, keep in fakes.items():
        if os.path.exists(f) != keep:
            fail(f"{f}: {'removed' if keep else 'kept'}; expected {'kept (its process lives)' if keep else 'removed (stale)'}")
        if os.path.exists(f):
            os.unlink(f)


def check_first_publish(target):
    """A process publishes once it has lived one interval, at most 200 ms: a
    short command makes no file; one that lives on has its file by then."""
    p, _ = start(target, "sleep", "0.08", MIMALLOC_STATS_PUBLISH_INTERVAL="1000")
    seen = False
    while p.poll() is None:
        seen = seen or bool(files_of(p.pid))
        time.sleep(0.005)
    if seen:
        fail("a process that lived 80 ms made a statistics file (the first comes after 200 ms)")
    p, _ = start(target, "sleep", "1.5", MIMALLOC_STATS_PUBLISH_INTERVAL="1000")
    f = wait_file(p.pid, timeout=1.2)
    if f is None:
        fail("a process with stats_publish_interval 1s had no file after 1.2 s (the first is due at 200 ms)")
    p.wait(timeout=30)


def check_first_alloc(target):
    """The background thread starts with the process's first allocation: a
    program that never allocates (/bin/true run in a server's environment)
    creates no thread and so no arena (0.13 ms of CPU per exec of /bin/true)."""
    r = subprocess.run([target, "first-alloc", "5"], capture_output=True, text=True, timeout=60, env=env())
    got = dict(l.split("=", 1) for l in r.stdout.splitlines() if "=" in l)
    if r.returncode != 0 or "threads_after" not in got:
        fail(f"first-alloc: exit {r.returncode}: {r.stdout}{r.stderr}")
        return
    if got["threads_before"] != "1":
        fail(f"a publishing process that has not allocated runs {got['threads_before']} threads (want 1: the "
             "background thread starts at the first allocation)")
    if got["threads_after"] != "2":
        fail(f"after its first allocation a publishing process runs {got['threads_after']} threads (want 2)")


def check_fork(target, reader):
    p, _ = start(target, "fork", "1.5")
    parent_file = wait_file(p.pid)
    child = int(p.stdout.readline().strip().split("=")[1])
    child_file = wait_file(child, timeout=5)
    if parent_file is None:
        fail("fork: the parent has no file")
    if child_file is None:
        fail("fork: the child made no file of its own")
    else:
        a, err = read_area(reader, child_file)
        if a is None:
            fail("fork: the child's file does not read: " + err)
        elif int(a["pid"]) != child or os.path.basename(child_file) != f"{child}-{start_ticks(child)}.stats":
            fail(f"fork: the child's file {child_file} says pid {a['pid']}")
    if parent_file is not None:
        # (at load the parent's background thread may not run within 0.1 s:
        # a single second read failed once in a full run)
        before, after, err = read_refreshed(reader, parent_file)
        if before is None or after is None:
            fail(f"fork: the parent's file no longer reads: {err}")
        elif int(after["pid"]) != p.pid or int(after["updates"]) <= int(before["updates"]):
            fail(f"fork: the parent's file: pid {after['pid']}, updates {before['updates']} -> {after['updates']}")
    status = p.stdout.readline().strip()
    if status != "child_status=0":
        fail(f"fork: the child ended with {status}")
    if child_file is not None and os.path.exists(child_file):
        fail(f"fork: the child's file {child_file} is still there after it exited")
    if parent_file is not None and not os.path.exists(parent_file):
        fail("fork: the parent's file went with the child")
    p.stdin.write("go\n")
    p.stdin.flush()
    p.wait(timeout=30)


def check_fork_quiet_child(target):
    """A child that makes no allocator call after the fork (PostgreSQL's
    checkpointer, background writer) publishes too: its background thread
    starts at the fork, not at its next allocator slow path."""
    p, _ = start(target, "fork-quiet", "1.5")
    child = int(p.stdout.readline().strip().split("=")[1])
    if wait_file(child, timeout=1.2) is None:
        fail("fork: a child that does not allocate made no statistics file within 1.2 s")
    status = p.stdout.readline().strip()
    if status != "child_status=0":
        fail(f"fork-quiet: the child ended with {status}")
    p.stdin.write("go\n")
    p.stdin.flush()
    p.wait(timeout=30)


def check_fork_parent_dir_gone(target):
    """A fork child publishes in its parent's directory or not at all: with the
    directory removed under the running parent (mimalloc-numa-tools purged),
    the child makes no new one (/run/mimalloc-numa again, or /tmp/...). Root
    only: in a mount namespace of its own with /run on a fresh tmpfs, so that
    the host's directory is not touched (/tmp stays: the build may be there)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        print("fork, parent's directory gone: skipped (needs root and unshare)")
        return
    script = f"""
set -e
mount -t tmpfs tmpfs /run
tmpdir=/tmp/mimalloc-numa-0
[ -e $tmpdir ] && tmp_before=1 || tmp_before=0
export MIMALLOC_STATS_PUBLISH=1 MIMALLOC_STATS_PUBLISH_INTERVAL=20
{target} fork-late 0.5 1.0 < /dev/null > /run/out &
pid=$!
for i in $(seq 100); do ls /run/mimalloc-numa/$pid-*.stats >/dev/null 2>&1 && break; sleep 0.02; done
ls /run/mimalloc-numa/$pid-*.stats >/dev/null 2>&1 && echo parent_published=1 || echo parent_published=0
rm -rf /run/mimalloc-numa
wait $pid
cat /run/out
child=$(sed -n 's/^child=//p' /run/out)
[ -e /run/mimalloc-numa ] && echo left=/run/mimalloc-numa
[ $tmp_before = 0 ] && [ -e $tmpdir ] && echo left=$tmpdir
ls $tmpdir/$child-*.stats 2>/dev/null | sed 's/^/left=/' || true
"""
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script], capture_output=True,
                       text=True, timeout=60, env={k: v for k, v in os.environ.items() if not k.startswith("MIMALLOC_")})
    if r.returncode != 0 and "unshare failed" in r.stderr:
        print("fork, parent's directory gone: skipped (no mount namespace here)")
        return
    if "parent_published=1" not in r.stdout or "child_status=0" not in r.stdout:
        fail(f"fork, parent's directory gone: the run did not go as planned: {r.stdout}{r.stderr}")
    elif "left=" in r.stdout:
        fail(f"fork, parent's directory gone: the child made a directory again: {r.stdout}")


def check_json(target):
    r = subprocess.run([target, "json"], capture_output=True, text=True, timeout=30,
                       env=env(MIMALLOC_STATS_PUBLISH="0", MIMALLOC_SHOW_STATS="json"))
    out = dict(l.split("=", 1) for l in r.stdout.splitlines() if l.startswith("alloc="))
    try:
        j = json.loads(out["alloc"])
        if j["pid"] != r.args and j["pid"] <= 0:
            fail("mi_stats_get_json: no pid")
    except (KeyError, ValueError) as e:
        fail(f"mi_stats_get_json(0, NULL) did not parse: {e}: {r.stdout}")
    if "small_result=NULL errno_erange=1 small_empty=1" not in r.stdout:
        fail("mi_stats_get_json with a small buffer: " + r.stdout)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    if len(lines) != 1:
        fail(f"show_stats=json: expected one line on stderr, got {len(lines)}: {r.stderr[:500]}")
    for l in lines:
        try:
            d = json.loads(l)
            if d.get("program") != "publish_target" or not isinstance(d.get("pid"), int) or d["pid"] <= 0:
                fail(f"show_stats=json: pid/program: {l[:200]}")
            if not d["bins"] or "totals" not in d or "nodes" not in d:
                fail("show_stats=json: totals, nodes and bins expected")
        except ValueError as e:
            fail(f"show_stats=json: not JSON ({e}): {l[:300]}")


def check_secure(secure):
    if os.geteuid() != 0:
        print("secure: skipped (needs root to make a set-user-ID copy)")
        return
    tmp = tempfile.mkdtemp(prefix="publish-secure-")
    try:
        os.chmod(tmp, 0o755)
        copy = os.path.join(tmp, "publish_secure")
        shutil.copy(secure, copy)
        os.chown(copy, 65534, 65534)
        os.chmod(copy, 0o755)
        plain = subprocess.run([copy], capture_output=True, text=True, timeout=60)
        if "secure=0 published=1" not in plain.stdout:
            fail(f"secure (control, no set-user-ID bit): expected it to publish: {plain.stdout}{plain.stderr}")
        os.chmod(copy, 0o4755)
        r = subprocess.run([copy], capture_output=True, text=True, timeout=60)
        if "secure=1" not in r.stdout:
            print("secure: the set-user-ID bit had no effect (nosuid mount?); skipped")
            return
        if "published=0" not in r.stdout:
            fail(f"a set-user-ID program published its statistics: {r.stdout}{r.stderr}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    target, reader, secure = sys.argv[1:4]
    check_file_and_figures(target, reader)
    check_stale(target, reader)
    check_first_publish(target)
    check_first_alloc(target)
    check_fork(target, reader)
    check_fork_quiet_child(target)
    check_fork_parent_dir_gone(target)
    check_json(target)
    check_secure(secure)
    print(f"publish: {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
