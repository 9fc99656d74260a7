#!/usr/bin/env python3
"""startup_test.py LIB: whatever MIMALLOC_CONFIG names, a program under
LD_PRELOAD starts and ends at once, with one warning naming the file and why.

Every program on the library reads the configuration file at start-up, so a
path that blocks or never ends stops every program started with it. Before
the reader took regular files only (lib/common/config.cpp), /bin/true hung
for ever on a FIFO (in open), spun at 100% CPU on /dev/zero, hung on
/dev/urandom after 16 warnings, and read a 1 GB sparse file whole (3.4 s).

Runs /bin/true (and, for the value after the limit, /bin/echo) under
LD_PRELOAD=LIB with MIMALLOC_CONFIG naming: a FIFO, /dev/zero, /dev/urandom,
a link to /dev/zero, a directory, a 1 GiB sparse file, a file a little over
the 1 MiB limit; each must exit 0 within 2 s (a hang is killed after 5 s and reported)
with exactly one warning, naming the path and the cause. /dev/null means "no
file": no warning at all. Exit 0 passed, 1 failed.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

TIMEOUT = 5.0
WARN = "mimalloc-numa: warning: "


def run(lib, config, prog=("/bin/true",), extra=None):
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("MIMALLOC_")}
    env["LD_PRELOAD"] = lib
    env["MIMALLOC_CONFIG"] = config
    env.update(extra or {})
    t0 = time.monotonic()
    try:
        r = subprocess.run(list(prog), env=env, capture_output=True, text=True, errors="replace", timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return None, None, None, TIMEOUT
    return r.returncode, r.stdout, r.stderr, time.monotonic() - t0


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    lib = os.path.abspath(sys.argv[1])
    failures = []
    d = tempfile.mkdtemp(prefix="mi-startup-")
    try:
        fifo = os.path.join(d, "fifo.toml")
        os.mkfifo(fifo)
        link = os.path.join(d, "zero.toml")
        os.symlink("/dev/zero", link)
        sparse = os.path.join(d, "sparse.toml")
        with open(sparse, "wb") as f:
            f.truncate(1 << 30)
        cases = [
            (fifo, "0: cannot read the configuration file: it is a FIFO, not a regular file; the defaults apply"),
            ("/dev/zero", "0: cannot read the configuration file: it is a character device, not a regular file; "
                          "the defaults apply"),
            ("/dev/urandom", "0: cannot read the configuration file: it is a character device, not a regular file; "
                             "the defaults apply"),
            (link, "0: cannot read the configuration file: it is a character device, not a regular file; "
                   "the defaults apply"),
            (d, "0: cannot read the configuration file: it is a directory, not a regular file; the defaults apply"),
            (sparse, "1: the configuration file is longer than 1 MiB, the most that is read; this line and the rest "
                     "of the file are ignored"),
        ]
        for path, why in cases:
            rc, _, err, secs = run(lib, path)
            if rc is None:
                failures.append(f"MIMALLOC_CONFIG={path}: /bin/true did not end within {TIMEOUT:.0f} s")
                continue
            want = [f"{WARN}{path}:{why}"]
            if rc != 0 or err.splitlines() != want:
                failures.append(f"MIMALLOC_CONFIG={path}: exit {rc}, stderr should be\n  {want[0]}\nbut is:\n{err[:2000]}")
            if secs > 2.0:  # /bin/true takes a millisecond; a 1 GiB file read whole took 3.4 s
                failures.append(f"MIMALLOC_CONFIG={path}: /bin/true took {secs:.1f} s")
            print(f"MIMALLOC_CONFIG={path}: exit {rc} in {secs * 1000:.0f} ms")

        # the null device: the empty file, no word
        rc, _, err, _ = run(lib, "/dev/null")
        if rc != 0 or err != "":
            failures.append(f"MIMALLOC_CONFIG=/dev/null: exit {rc}, stderr:\n{err}")

        # over the limit: what comes before it applies (max_warnings = 0: no warning printed at all)
        big = os.path.join(d, "big.toml")
        with open(big, "w") as f:
            f.write("[options]\nmax_warnings = 0\n")
            f.write(("# " + "." * 61 + "\n") * ((1 << 20) // 64 + 10))
            f.write("show_errors = false\n")
        rc, out, err, _ = run(lib, big, ("/bin/echo", "ok"))
        if rc != 0 or out != "ok\n" or err != "":
            failures.append(f"a file over the limit: exit {rc}, stdout {out!r}, stderr (max_warnings = 0 from its "
                            f"first lines should silence it):\n{err[:2000]}")
    finally:
        shutil.rmtree(d, ignore_errors=True)
    for f in failures:
        print("FAIL:", f)
    if not failures:
        print("ok: every kind of path ends at once, with one warning naming it")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
