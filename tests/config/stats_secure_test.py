#!/usr/bin/env python3
"""stats_secure_test.py SECURE_PROG: a set-user-ID program does not write its
statistics where MIMALLOC_STATS_FILE says.

The variable comes from a less privileged user: followed, it would let that
user make the program create or append to any file its owner may write
(MIMALLOC_STATS_FILE=/etc/...). Runs SECURE_PROG (the static allocator linked
in) with MIMALLOC_SHOW_STATS=1 and MIMALLOC_STATS_FILE=DIR/%p.txt, from a copy
owned by 'nobody' with the set-user-ID bit, as root (real and effective users
differ: the kernel sets AT_SECURE). Checks that no file is made, that the
warning names both variables, and that no report is printed at all (no
MIMALLOC_* variable is honoured there: the statistics would show that user
the program's memory use); as a control, that the same copy without the bit
writes the file. Exit 77 (skipped) when not root or on a file system mounted
nosuid.
"""
import os
import shutil
import subprocess
import sys
import tempfile

NOBODY = 65534


def run(prog, stats_dir):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIMALLOC_")}
    env["MIMALLOC_SHOW_STATS"] = "1"
    env["MIMALLOC_STATS_FILE"] = stats_dir + "/%p.txt"
    return subprocess.run([prog], capture_output=True, text=True, env=env, timeout=60)


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("skipped: needs root to make a set-user-ID copy", file=sys.stderr)
        return 77
    d = tempfile.mkdtemp(prefix="mi-stats-secure-")
    try:
        os.chmod(d, 0o755)
        prog = os.path.join(d, "secure_prog")
        shutil.copy(sys.argv[1], prog)
        stats_dir = os.path.join(d, "stats")
        os.mkdir(stats_dir)
        os.chmod(stats_dir, 0o777)  # nobody could write there: only AT_SECURE stops it

        plain = run(prog, stats_dir)  # control: the file is written
        if plain.returncode != 0 or len(os.listdir(stats_dir)) != 1 or "statistics of" in plain.stderr:
            print(f"control failed: the plain run should write one file, not stderr: {os.listdir(stats_dir)}\n"
                  f"{plain.stdout}{plain.stderr}")
            return 1
        for f in os.listdir(stats_dir):
            os.unlink(os.path.join(stats_dir, f))

        os.chown(prog, NOBODY, NOBODY)
        os.chmod(prog, 0o4755)
        r = run(prog, stats_dir)
        if "secure=0" in r.stdout:
            print(f"skipped: {d} is on a file system mounted nosuid (no AT_SECURE)", file=sys.stderr)
            return 77
        ok = True
        if r.returncode != 0 or "secure=1" not in r.stdout:
            print(f"the set-user-ID run failed: {r.returncode}\n{r.stdout}{r.stderr}")
            ok = False
        if os.listdir(stats_dir):
            print(f"the set-user-ID run wrote where MIMALLOC_STATS_FILE said: {os.listdir(stats_dir)}")
            ok = False
        warned = [l for l in r.stderr.splitlines() if "are ignored: this program runs set-user-ID" in l]
        if len(warned) != 1 or "MIMALLOC_STATS_FILE" not in warned[0] or "MIMALLOC_SHOW_STATS" not in warned[0]:
            print(f"no one warning that MIMALLOC_STATS_FILE and MIMALLOC_SHOW_STATS are ignored:\n{r.stderr}")
            ok = False
        if "statistics of" in r.stderr:
            print(f"the set-user-ID run printed its statistics (MIMALLOC_SHOW_STATS was honoured):\n{r.stderr}")
            ok = False
        if ok:
            print("ok: set-user-ID run ignores MIMALLOC_STATS_FILE and MIMALLOC_SHOW_STATS and says so; "
                  "the plain run writes the file")
        return 0 if ok else 1
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
