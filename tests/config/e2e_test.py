#!/usr/bin/env python3
"""End to end: the config file, the environment and mi_option_set, as a
program under LD_PRELOAD sees them.

    e2e_test.py LIB PROG CONFIG

Runs PROG (e2e_prog.c) with LD_PRELOAD=LIB, MIMALLOC_CONFIG=CONFIG (every
option set, "# expect N" on each line), MIMALLOC_VERBOSE=1 and a few
MIMALLOC_<NAME> variables, and checks:
  - the verbose option list names every option once, with its value and its
    source: "(CONFIG:LINE)" for the file (LINE: the key's line),
    "(environment)" for the variables, "(default)" for none here;
  - mi_option_get returns what the file says (or the variable), every option;
  - the [node.0] setting of the file is listed;
  - mi_option_set at run time: the values read back, the list says
    "(mi_option_set)";
  - no warning at all (the file is valid);
  - CONFIG is valid TOML to Python's tomllib too (where it exists).
Exit 0 passed, 1 failed, 77 skipped (the library cannot be preloaded here).
"""
import os
import re
import subprocess
import sys

ENV_OVERRIDES = {  # variable: (option, expected mi_option_get)
    "MIMALLOC_VERBOSE": ("verbose", 1),
    "MIMALLOC_OS_TAG": ("os_tag", 7),
    "MIMALLOC_PURGE_DELAY": ("purge_delay", 1000),  # "1s"
    "MIMALLOC_NUMA_BIND": ("numa_bind", 0),         # "none"
    "MIMALLOC_ARENA_RESERVE": ("arena_reserve", 131072),  # "128MiB"
}
ENV_TEXT = {"MIMALLOC_VERBOSE": "1", "MIMALLOC_OS_TAG": "7", "MIMALLOC_PURGE_DELAY": "1s",
            "MIMALLOC_NUMA_BIND": "none", "MIMALLOC_ARENA_RESERVE": "128MiB"}
RUNTIME_SET = {"max_segment_reclaim": 60, "arena_purge_mult": 9, "os_tag": 8}

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL:", msg)


def main():
    lib, prog, config = sys.argv[1:4]
    config = os.path.abspath(config)
    with open(config, encoding="utf-8") as f:
        lines = f.read().split("\n")
    # key -> (line, expected value) from "key = value   # expect N"
    expect = {}
    section = None
    for no, text in enumerate(lines, 1):
        m = re.match(r"^\[(.*)\]", text)
        if m:
            section = m.group(1)
            continue
        m = re.match(r"^(\w+)\s*=.*#\s*expect\s+(-?\d+)", text)
        if m and section == "options":
            expect[m.group(1)] = (no, int(m.group(2)))
    try:
        import tomllib  # Python 3.11
        with open(config, "rb") as f:
            doc = tomllib.load(f)
        if set(doc["options"]) != set(expect):
            fail(f"tomllib reads other [options] keys than the '# expect' lines: {set(doc['options']) ^ set(expect)}")
    except ImportError:
        print("note: no tomllib (Python < 3.11): the file is not checked by a second TOML parser")

    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("MIMALLOC_")}
    env.update(ENV_TEXT)
    env["MIMALLOC_CONFIG"] = config
    env["LD_PRELOAD"] = lib
    env["E2E_OPTION_COUNT"] = str(len(expect))

    # first run: learn the option order (= mi_option_t) from the verbose list
    def run(args):
        return subprocess.run([prog] + args, env=env, capture_output=True, text=True, timeout=60)

    r = run([])
    if r.returncode == 3:
        print("SKIP: the library was not preloaded:", r.stderr.strip())
        return 77
    if r.returncode != 0:
        fail(f"{prog} exited {r.returncode}\n{r.stderr}")
        return 1
    listing = parse_listing(r.stderr.split("@@after-set")[0])
    names = [name for name, _, _ in listing]
    if len(names) != len(expect):
        fail(f"the verbose list has {len(names)} options, the file sets {len(expect)}: "
             f"not in the file: {sorted(set(names) - set(expect))}, not listed: {sorted(set(expect) - set(names))}")
    index = {name: i for i, name in enumerate(names)}
    values = {int(m.group(1)): int(m.group(2)) for m in re.finditer(r"^@@(\d+)=(-?\d+)$", r.stdout, re.M)}
    env_opts = {opt: val for opt, val in ENV_OVERRIDES.values()}
    for name, value_text, source in listing:
        if name not in expect:
            continue
        line, want = expect[name]
        if name in env_opts:
            want = env_opts[name]
            want_source = "environment"
        else:
            want_source = f"{config}:{line}"
        if source != want_source:
            fail(f"{name}: source ({source}), expected ({want_source})")
        got = values.get(index[name])
        if got != want:
            fail(f"{name}: mi_option_get = {got}, expected {want}")
        shown = shown_value(value_text)
        if shown != want:
            fail(f"{name}: the list shows '{value_text}' ({shown}), expected {want}")
    if not re.search(r"configuration file " + re.escape(config) + r"\n", r.stderr):
        fail("the verbose output does not name the configuration file")
    if not re.search(r"\[node\.0\] arena_reserve = 32\.0 MiB", r.stderr):
        fail("the [node.0] arena_reserve of the file is not listed")
    if "mimalloc-numa: warning:" in r.stderr:
        fail("warnings for a valid file:\n" + "\n".join(l for l in r.stderr.split("\n") if "warning:" in l))

    # second run: mi_option_set at run time wins over file and environment
    r = run([f"{index[n]}={v}" for n, v in RUNTIME_SET.items()])
    if r.returncode != 0:
        fail(f"{prog} (with mi_option_set) exited {r.returncode}\n{r.stderr}")
        return 1
    after = {name: (value, source) for name, value, source in parse_listing(r.stderr.split("@@after-set")[1])}
    got_set = {int(m.group(1)): int(m.group(2)) for m in re.finditer(r"^@@set (\d+)=(-?\d+)$", r.stdout, re.M)}
    for name, v in RUNTIME_SET.items():
        if got_set.get(index[name]) != v:
            fail(f"{name}: mi_option_get after mi_option_set({v}) = {got_set.get(index[name])}")
        if after.get(name, (None, None))[1] != "mi_option_set":
            fail(f"{name}: after mi_option_set the list says ({after.get(name)})")
    for name in ("max_errors", "numa_bind"):  # not set at run time: unchanged sources
        want_source = "environment" if name in env_opts else f"{config}:{expect[name][0]}"
        if after.get(name, (None, None))[1] != want_source:
            fail(f"{name}: after other options were set, its source became ({after.get(name)})")

    print(f"e2e: {len(listing)} options checked, {len(RUNTIME_SET)} set at run time, {len(failures)} failures")
    if failures:
        print("--- stderr of the last run ---\n" + r.stderr)
    return 1 if failures else 0


def shown_value(text):
    """The value of the list's text as mi_option_get has it: booleans 0/1,
    sizes in KiB ("64.0 MiB"), durations in ms ("10 ms"), choices by index."""
    if text in ("true", "false"):
        return 1 if text == "true" else 0
    if text.startswith('"') or text == "(none)":  # a file name (stats_file): set or not
        return 0 if text == "(none)" else 1
    if text in ("none", "preferred", "strict"):
        return ("none", "preferred", "strict").index(text)
    if text == "json":  # show_stats: false, true, json
        return 2
    m = re.fullmatch(r"(-?\d+) ms", text)
    if m:
        return int(m.group(1))
    m = re.fullmatch(r"(-?\d+(?:\.\d)?) (B|KiB|MiB|GiB|TiB)", text)
    if m:
        scale = {"B": 1 / 1024, "KiB": 1, "MiB": 1024, "GiB": 1024 ** 2, "TiB": 1024 ** 3}[m.group(2)]
        return round(float(m.group(1)) * scale)
    try:
        return int(text)
    except ValueError:
        return text


def parse_listing(text):
    """[(name, value text, source)] of the verbose option list."""
    out = []
    started = False
    for line in text.split("\n"):
        if "options (value, source):" in line:
            started = True
            out = []
            continue
        m = re.match(r"^mimalloc-numa:   (\w+)\s+(.*?)\s+\((.*)\)$", line)
        if started and m:
            out.append((m.group(1), m.group(2), m.group(3)))
    return out


if __name__ == "__main__":
    sys.exit(main())
