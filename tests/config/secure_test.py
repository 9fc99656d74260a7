#!/usr/bin/env python3
"""secure_test.py SECURE_PROG: a set-user-ID program follows neither
MIMALLOC_CONFIG nor any other MIMALLOC_* variable.

Both come from a less privileged user. The file that user names would be read
with the program's privileges and each bad line echoed in a warning
(MIMALLOC_CONFIG=/etc/shadow prints its lines as unknown keys); the variables
would let that user see the program's addresses (MIMALLOC_VERBOSE=1) and
memory use (MIMALLOC_SHOW_STATS=1) or make a root program reserve what the
user says (MIMALLOC_RESERVE_OS_MEMORY=8GiB). glibc ignores its malloc
tunables there too.

Runs SECURE_PROG (the static allocator linked in; it prints the option values
and the size of arena 1) from a copy owned by 'nobody' with the set-user-ID
bit, as root: the real and effective users differ, so the kernel sets
AT_SECURE. Checks that the file's line is not echoed, that no variable
changed an option, that nothing but one warning per kind is printed (naming
the variables, never their values or an address); and, as a control, that the
same copy without the bit reads the file and honours the variables. Exit 77
(skipped) when not root or when the copy's file system is mounted nosuid.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

NOBODY = 65534
GiB = 1 << 30

# what a less privileged caller sets; the last name holds an escape sequence,
# which must never reach the terminal
VARIABLES = {
    "MIMALLOC_VERBOSE": "1",
    "MIMALLOC_SHOW_STATS": "1",
    "MIMALLOC_RESERVE_OS_MEMORY": "8GiB",
    "MIMALLOC_ARENA_RESERVE": "64MiB",
    "MIMALLOC_\x1b[31mRED": "1",
}


def run(prog, env_add):
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("MIMALLOC_")}
    env.update(env_add)
    return subprocess.run([prog], capture_output=True, text=True, env=env, timeout=60)


def values(stdout):
    """The option values secure_prog printed: {'verbose': 1, ...}."""
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", stdout)}


def check_config_file(prog, config):
    """MIMALLOC_CONFIG: not read, and a warning says so."""
    r = run(prog, {"MIMALLOC_CONFIG": config})
    ok = True
    if r.returncode != 0 or "secure=1" not in r.stdout:
        print(f"the set-user-ID run failed: {r.returncode}\n{r.stdout}{r.stderr}")
        ok = False
    if "secret_line_of_a_private_file" in r.stderr:
        print(f"the file named by MIMALLOC_CONFIG was read and echoed:\n{r.stderr}")
        ok = False
    if "MIMALLOC_CONFIG is ignored" not in r.stderr:
        print(f"no warning that MIMALLOC_CONFIG is ignored:\n{r.stderr}")
        ok = False
    return ok


def check_variables(prog):
    """The other MIMALLOC_* variables: none honoured, one warning naming them."""
    r = run(prog, VARIABLES)
    v = values(r.stdout)
    ok = True
    if r.returncode != 0 or v.get("secure") != 1:
        print(f"the set-user-ID run failed: {r.returncode}\n{r.stdout}{r.stderr}")
        return False
    for name, want in (("verbose", 0), ("show_stats", 0), ("show_errors", 1), ("reserve_os_memory", 0)):
        if v.get(name) != want:
            print(f"{name} is {v.get(name)} in the set-user-ID run (the variable was honoured), expected {want}")
            ok = False
    if v.get("arena1", 0) >= 8 * GiB:
        print(f"the set-user-ID run reserved {v.get('arena1')} bytes at start-up (MIMALLOC_RESERVE_OS_MEMORY)")
        ok = False
    lines = r.stderr.splitlines()
    want = ("mimalloc-numa: warning: environment variables MIMALLOC_VERBOSE, MIMALLOC_SHOW_STATS, "
            "MIMALLOC_RESERVE_OS_MEMORY, MIMALLOC_ARENA_RESERVE and 1 more are ignored: this program runs "
            "set-user-ID or set-group-ID (AT_SECURE); only /etc/mimalloc-numa.toml sets its options")
    if lines != [want]:
        print(f"stderr of the set-user-ID run should be the one warning\n  {want}\nbut is:\n{r.stderr}")
        ok = False
    if "\x1b" in r.stderr or "0x" in r.stderr or "8GiB" in r.stderr:
        print(f"the set-user-ID run echoed an escape sequence, an address or a value:\n{r.stderr!r}")
        ok = False
    # the name with the escape sequence, alone: shown with '?' for the bytes a name should not have
    r = run(prog, {"MIMALLOC_\x1b[31mRED": "1"})
    if r.stderr.splitlines() != ["mimalloc-numa: warning: environment variable MIMALLOC_??31mRED is ignored: this "
                                 "program runs set-user-ID or set-group-ID (AT_SECURE); only /etc/mimalloc-numa.toml "
                                 "sets its options"]:
        print(f"the odd name is not shown as MIMALLOC_??31mRED:\n{r.stderr!r}")
        ok = False
    # nothing set, nothing said
    r = run(prog, {})
    if r.stderr:
        print(f"the set-user-ID run without variables printed:\n{r.stderr}")
        ok = False
    return ok


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("skipped: needs root to make a set-user-ID copy", file=sys.stderr)
        return 77
    d = tempfile.mkdtemp(prefix="mi-secure-")
    try:
        os.chmod(d, 0o755)
        prog = os.path.join(d, "secure_prog")
        shutil.copy(sys.argv[1], prog)
        config = os.path.join(d, "private.toml")
        with open(config, "w") as f:
            f.write("[options]\nsecret_line_of_a_private_file = 1\n")
        os.chmod(config, 0o644)

        # controls, without the bit: the file is read, the variables honoured
        plain = run(prog, {"MIMALLOC_CONFIG": config})
        if plain.returncode != 0 or "secret_line_of_a_private_file" not in plain.stderr:
            print(f"control failed: the plain run should report the unknown key\n{plain.stdout}{plain.stderr}")
            return 1
        plain = run(prog, VARIABLES)
        v = values(plain.stdout)
        if (plain.returncode != 0 or v.get("verbose") != 1 or v.get("show_stats") != 1 or
                v.get("reserve_os_memory") != 8 * GiB or v.get("arena1") != 8 * GiB):
            print(f"control failed: the plain run should honour the variables\n{plain.stdout}{plain.stderr[-2000:]}")
            return 1

        os.chown(prog, NOBODY, NOBODY)
        os.chmod(prog, 0o4755)
        probe = run(prog, {})
        if "secure=0" in probe.stdout:
            print(f"skipped: {d} is on a file system mounted nosuid (no AT_SECURE)", file=sys.stderr)
            return 77
        ok = check_config_file(prog, config)
        ok = check_variables(prog) and ok
        if ok:
            print("ok: the set-user-ID run reads neither MIMALLOC_CONFIG nor the MIMALLOC_* variables and says so "
                  "once each; the plain run honours both")
        return 0 if ok else 1
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
