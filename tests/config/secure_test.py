#!/usr/bin/env python3
"""secure_test.py SECURE_PROG: a set-user-ID program does not follow MIMALLOC_CONFIG.

The file a less privileged user names would be read with the program's
privileges and each bad line echoed in a warning (MIMALLOC_CONFIG=/etc/shadow
prints its lines as unknown keys). Runs SECURE_PROG (the static allocator
linked in) from a copy owned by 'nobody' with the set-user-ID bit, as root:
the real and effective users differ, so the kernel sets AT_SECURE. Checks
that the file's line is not echoed and that the warning says why; and, as a
control, that the same copy without the bit does echo it. Exit 77 (skipped)
when not root or when the copy's file system is mounted nosuid.
"""
import os
import shutil
import subprocess
import sys
import tempfile

NOBODY = 65534


def run(prog, config):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIMALLOC_")}
    env["MIMALLOC_CONFIG"] = config
    return subprocess.run([prog], capture_output=True, text=True, env=env, timeout=60)


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

        plain = run(prog, config)  # control: the key is echoed
        if plain.returncode != 0 or "secret_line_of_a_private_file" not in plain.stderr:
            print(f"control failed: the plain run should report the unknown key\n{plain.stdout}{plain.stderr}")
            return 1

        os.chown(prog, NOBODY, NOBODY)
        os.chmod(prog, 0o4755)
        r = run(prog, config)
        if "secure=0" in r.stdout:
            print(f"skipped: {d} is on a file system mounted nosuid (no AT_SECURE)", file=sys.stderr)
            return 77
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
        if ok:
            print("ok: set-user-ID run ignores MIMALLOC_CONFIG and says so; the plain run reads it")
        return 0 if ok else 1
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
