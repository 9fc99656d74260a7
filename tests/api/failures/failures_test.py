#!/usr/bin/env python3
"""Impossible requests and a real shortage, as a program under LD_PRELOAD
meets them (issue 10, defects 7 and 8).

    failures_test.py LIB C_PROG CXX_PROG

C_PROG (failures_prog.c) and CXX_PROG (failures_new_prog.cpp) use the C library's
and the C++ standard's names only. Each runs with LD_PRELOAD=LIB, with the
default options (an empty configuration file, no MIMALLOC_* variable), and
without LD_PRELOAD (glibc, libstdc++) for comparison:

  impossible  malloc(SIZE_MAX), calloc overflows, realloc, reallocarray,
              aligned_alloc, memalign, valloc, pvalloc, posix_memalign, new:
              NULL and ENOMEM (or bad_alloc) as with glibc, the block passed
              to realloc intact, the new_handler never called -- and nothing
              on stderr (glibc and jemalloc print nothing for a request that
              can never be met). With MIMALLOC_VERBOSE=1 each is said once.
  oom         under an address-space limit: malloc(1 GiB) fails with ENOMEM
              as with glibc and says so in exactly one line per failed request
              (not once per attempt around the collect-and-retry, not once per
              new_handler call); nothrow new returns NULL when the new_handler
              throws std::bad_alloc (it called std::terminate).

Exit 0 passed, 1 failed, 77 skipped (the library cannot be preloaded here).
"""
import os
import re
import subprocess
import sys
import tempfile

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL:", msg)


def run(prog, mode, lib=None, verbose=False, config=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIMALLOC_") and k != "LD_PRELOAD"}
    if lib is not None:
        env["LD_PRELOAD"] = lib
        env["MIMALLOC_CONFIG"] = config  # empty: the defaults, whatever /etc holds
        if verbose:
            env["MIMALLOC_VERBOSE"] = "1"
    r = subprocess.run([prog, mode], env=env, capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout, r.stderr


UNABLE = re.compile(r"^mimalloc-numa: error: unable to allocate memory \((\d+) bytes\): Cannot allocate memory$")

C_IMPOSSIBLE_CALLS = 12  # the lines failures_prog impossible prints, one request each

CXX_IMPOSSIBLE = """\
new(SIZE_MAX) threw bad_alloc
new[](2^62) threw bad_alloc
new(SIZE_MAX, align 64) threw bad_alloc
new char[SIZE_MAX/2] threw bad_alloc
new(SIZE_MAX, nothrow) returned NULL
new[](SIZE_MAX/2, align 4096, nothrow) returned NULL
handler calls 0
"""

CXX_OOM = """\
start
new(1GiB) threw bad_alloc
new(1GiB, nothrow) returned NULL
new(1GiB, nothrow) throwing handler returned NULL
new[](1GiB, align 64, nothrow) throwing handler returned NULL
new(1GiB) throwing handler threw bad_alloc
handler calls 3
new(1GiB) handler giving up threw bad_alloc
handler calls 2
new(100) returned a block
"""


def check_quiet(name, stderr):
    if stderr != "":
        fail(f"{name}: printed on stderr (nothing is expected for requests that can never be met):\n{stderr}")


def check_oom_lines(name, stderr, expected):
    lines = stderr.splitlines()
    bad = [l for l in lines if not UNABLE.match(l)]
    if bad:
        fail(f"{name}: unexpected stderr lines: {bad}")
    if len(lines) != expected:
        fail(f"{name}: {len(lines)} 'unable to allocate' lines for {expected} failed requests:\n{stderr}")


def main():
    lib, c_prog, cxx_prog = sys.argv[1:4]
    with tempfile.NamedTemporaryFile("w", suffix=".toml") as cfg:
        config = cfg.name
        rc, out, err = run(c_prog, "impossible", lib, verbose=True, config=config)
        if "mimalloc-numa" not in err:
            print(f"SKIP: {lib} does not preload here (no verbose output)")
            return 77

        # --- requests that can never be met: C ---
        g_rc, g_out, g_err = run(c_prog, "impossible")
        rc, out, err = run(c_prog, "impossible", lib, config=config)
        print("failures_prog impossible (ours):\n" + out)
        if rc != 0 or g_rc != 0:
            fail(f"failures_prog impossible: exit {rc} (glibc {g_rc}): {out}{err}")
        if out != g_out:
            fail(f"failures_prog impossible: results differ from glibc's:\nours:\n{out}\nglibc:\n{g_out}")
        if len(out.splitlines()) != C_IMPOSSIBLE_CALLS:
            fail(f"failures_prog impossible: {len(out.splitlines())} results, {C_IMPOSSIBLE_CALLS} expected")
        for line in out.splitlines():
            if not (line.endswith(" NULL 12") or line.endswith(" unchanged 12")):
                fail(f"failures_prog impossible: {line!r}: NULL and ENOMEM (12) expected")
        check_quiet("failures_prog impossible", err)
        # verbose: each request said once, not twice around a retry
        rc, out, err = run(c_prog, "impossible", lib, verbose=True, config=config)
        said = [l for l in err.splitlines() if "can never be met" in l or "overflows" in l]
        if len(said) != C_IMPOSSIBLE_CALLS:
            fail(f"failures_prog impossible, verbose: {len(said)} lines about the requests, "
                 f"{C_IMPOSSIBLE_CALLS} expected:\n" + "\n".join(said))
        if any("unable to allocate" in l for l in err.splitlines()):
            fail("failures_prog impossible, verbose: an impossible request reported as out of memory")

        # --- requests that can never be met: C++ ---
        rc, out, err = run(cxx_prog, "impossible", lib, config=config)
        print("failures_new_prog impossible (ours):\n" + out)
        if rc != 0 or out != CXX_IMPOSSIBLE:
            fail(f"failures_new_prog impossible: exit {rc}, got:\n{out}expected:\n{CXX_IMPOSSIBLE}")
        check_quiet("failures_new_prog impossible", err)

        # --- a real shortage: C ---
        g_rc, g_out, g_err = run(c_prog, "oom")
        rc, out, err = run(c_prog, "oom", lib, config=config)
        print("failures_prog oom (ours):\n" + out + err)
        if rc != 0 or out != g_out:
            fail(f"failures_prog oom: exit {rc}, results differ from glibc's:\nours:\n{out}\nglibc:\n{g_out}")
        if out.count("malloc(1GiB) NULL 12") != 2:
            fail(f"failures_prog oom: malloc(1GiB) did not fail twice with ENOMEM:\n{out}")
        check_oom_lines("failures_prog oom", err, 2)

        # --- a real shortage: C++ ---
        g_rc, g_out, g_err = run(cxx_prog, "oom")
        rc, out, err = run(cxx_prog, "oom", lib, config=config)
        print("failures_new_prog oom (ours):\n" + out + err)
        if rc != 0 or out != CXX_OOM:
            fail(f"failures_new_prog oom: exit {rc} (std::terminate is -6), got:\n{out}expected:\n{CXX_OOM}")
        if g_out != CXX_OOM:
            print(f"note: libstdc++ over glibc printed:\n{g_out}")
        check_oom_lines("failures_new_prog oom", err, 6)  # one per failed new above

    if failures:
        print(f"{len(failures)} failure(s)")
        return 1
    print("failures: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
