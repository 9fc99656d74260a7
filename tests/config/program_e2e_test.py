#!/usr/bin/env python3
"""End to end: [program.NAME] tables, as programs under LD_PRELOAD see them.

    program_e2e_test.py LIB PROG

One configuration file (MIMALLOC_CONFIG) for every run:

  - two programs of the system, perl and gzip (both always on Debian): the
    file turns statistics on for [program.perl] only; perl prints a
    statistics block at exit, gzip none (and gzip does print one with
    MIMALLOC_SHOW_STATS=1, so it did run on the allocator and read the file:
    the environment is above the file). Not coreutils: cat, head and the
    rest close stderr at exit (gnulib's close_stdout), before the block;
  - PROG (e2e_prog.c) copied as "e2e-mariadbd" and started through a link
    "e2e-mysqld" (as mysqld -> mariadbd): both tables apply, in file order,
    whichever comes first, over [options]; started by its own name only
    the e2e-mariadbd table; copied as "e2e.v2", the quoted [program."e2e.v2"];
    MIMALLOC_VERBOSE=1 lists each option's value and source
    "(FILE:LINE [program.NAME])" and the names and tables that apply.
Exit 0 passed, 1 failed, 77 skipped (the library cannot be preloaded here).
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

failures = []

CONFIG = """\
# tests/config/program_e2e_test.py
[program.e2e-mysqld]
os_tag = 21                    # line 3
arena_purge_mult = 7           # line 4

[options]
show_stats = false
os_tag = 20                    # line 8
guarded_sample_seed = 30       # line 9

[program.perl]
show_stats = true              # line 12

[program.e2e-mariadbd]
os_tag = 22                    # line 15: after [program.e2e-mysqld], so it wins
guarded_sample_seed = 23       # line 16

[program."e2e.v2"]
os_tag = 24                    # line 19
"""

STATS = re.compile(r"mimalloc-numa[^\n]*statistics")


def fail(msg):
    failures.append(msg)
    print("FAIL:", msg)


def run(argv, env, extra=None):
    e = dict(env)
    e.update(extra or {})
    return subprocess.run(argv, env=e, capture_output=True, text=True, errors="replace", timeout=60,
                          stdin=subprocess.DEVNULL)


def listing(stderr):
    """{option: (value text, source)} of the verbose option list."""
    out = {}
    for line in stderr.split("\n"):
        m = re.match(r"^mimalloc-numa:   (\w+)\s+(.*?)\s+\((.*)\)$", line)
        if m:
            out[m.group(1)] = (m.group(2), m.group(3))
    return out


def main():
    lib, prog = sys.argv[1:3]
    work = tempfile.mkdtemp(prefix="mi-program-e2e-")
    try:
        config = os.path.join(work, "mimalloc-numa.toml")
        with open(config, "w") as f:
            f.write(CONFIG)
        env = {k: v for k, v in os.environ.items() if not k.upper().startswith("MIMALLOC_") and k != "LD_PRELOAD"}
        env["MIMALLOC_CONFIG"] = config
        env["LD_PRELOAD"] = lib
        return check(work, config, env, prog)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def check(work, config, env, prog):
    perl, gzip = shutil.which("perl"), shutil.which("gzip")
    if perl is None or gzip is None:
        print("SKIP: no perl or gzip in PATH")
        return 77
    # 1. two programs of the system, one file
    r = run([perl, "-e", "1"], env)
    if "cannot be preloaded" in r.stderr or "ERROR: ld.so" in r.stderr:
        print("SKIP: the library cannot be preloaded here:", r.stderr.strip())
        return 77
    if r.returncode != 0:
        fail(f"perl exited {r.returncode}: {r.stderr}")
    if not STATS.search(r.stderr):
        fail("perl, named by [program.perl] show_stats = true, printed no statistics:\n" + r.stderr)
    if "warning:" in r.stderr:
        fail("warnings for a valid file:\n" + r.stderr)
    r = run([gzip, "-c", "/dev/null"], env)
    if r.returncode != 0:
        fail(f"gzip exited {r.returncode}: {r.stderr}")
    if r.stderr.strip():
        fail("gzip, which no table names, printed something ([options] show_stats = false):\n" + r.stderr)
    r = run([gzip, "-c", "/dev/null"], env, {"MIMALLOC_SHOW_STATS": "1"})
    if not STATS.search(r.stderr):
        fail("gzip with MIMALLOC_SHOW_STATS=1 printed no statistics: is the library preloaded at all?\n" + r.stderr)
    print("perl: statistics; gzip: none (and with MIMALLOC_SHOW_STATS=1: statistics)")

    # 2. a program started through a link, by its own name, and one with a dot in its name
    real = os.path.join(work, "e2e-mariadbd")
    link = os.path.join(work, "e2e-mysqld")
    dotted = os.path.join(work, "e2e.v2")
    shutil.copy2(prog, real)
    shutil.copy2(prog, dotted)
    os.symlink("e2e-mariadbd", link)
    verbose = {"MIMALLOC_VERBOSE": "1", "E2E_OPTION_COUNT": "0"}
    cases = [
        # started as, names printed, tables that apply (name, line), {option: (value, source)}
        (link, ("e2e-mysqld", "e2e-mariadbd"), [("e2e-mysqld", 2), ("e2e-mariadbd", 14)], {
            "os_tag": ("22", f"{config}:15 [program.e2e-mariadbd]"),
            "arena_purge_mult": ("7", f"{config}:4 [program.e2e-mysqld]"),
            "guarded_sample_seed": ("23", f"{config}:16 [program.e2e-mariadbd]"),
            "show_stats": ("false", f"{config}:7"),
        }),
        (real, ("e2e-mariadbd", "e2e-mariadbd"), [("e2e-mariadbd", 14)], {
            "os_tag": ("22", f"{config}:15 [program.e2e-mariadbd]"),
            "arena_purge_mult": ("10", "default"),
            "guarded_sample_seed": ("23", f"{config}:16 [program.e2e-mariadbd]"),
        }),
        (dotted, ("e2e.v2", "e2e.v2"), [('"e2e.v2"', 18)], {
            "os_tag": ("24", f'{config}:19 [program."e2e.v2"]'),
            "guarded_sample_seed": ("30", f"{config}:9"),
        }),
    ]
    for argv0, names, tables, want in cases:
        r = run([argv0], env, verbose)
        if r.returncode == 3:
            print("SKIP: the library was not preloaded:", r.stderr.strip())
            return 77
        if r.returncode != 0:
            fail(f"{argv0} exited {r.returncode}:\n{r.stderr}")
            continue
        said = f'program names: argv[0] "{names[0]}", executable "{names[1]}"; tables that apply:\n' + "".join(
            f"mimalloc-numa:     [program.{t}] (line {line})\n" for t, line in tables)
        if said not in r.stderr:
            fail(f"{argv0}: the verbose output does not say\n{said}--- it says:\n{r.stderr}")
        got = listing(r.stderr)
        for option, (value, source) in want.items():
            if got.get(option) != (value, source):
                fail(f"{os.path.basename(argv0)}: {option} is {got.get(option)}, expected {(value, source)}")
        if "warning:" in r.stderr:
            fail(f"{argv0}: warnings for a valid file:\n{r.stderr}")
    print(f"program e2e: {len(cases)} programs started by other names checked, {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
