#!/usr/bin/env python3
"""text-order: the functions lib/text-order.txt lists lie first in the built library's code.

    text_order_check.py LIB LIST [--also SYMBOL]

Fails if more than a tenth of the listed functions are no longer in the
library (renamed or gone: regenerate the list with tools/text-order), or if
any listed function lies past the first SUM + 4 KiB bytes of .text, SUM the
listed functions' sizes (the build step lib/text_order.py did not place them,
or the linker ignored .text.sorted sections). --also SYMBOL checks one more
function as if listed (the should-fail test names one that is not).
"""
import argparse
import re
import subprocess
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("lib")
    ap.add_argument("list")
    ap.add_argument("--also", action="append", default=[])
    a = ap.parse_args()
    listed = []
    with open(a.list) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                listed.append(line)
    listed += a.also
    sections = subprocess.run(["readelf", "-SW", a.lib], capture_output=True, text=True, check=True).stdout
    m = re.search(r"\]\s+\.text\s+PROGBITS\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)", sections)
    if m is None:
        sys.exit(f"text-order: no .text section in {a.lib}")
    text_start, text_size = int(m.group(1), 16), int(m.group(2), 16)
    syms = {}
    out = subprocess.run(["nm", "-S", "--defined-only", a.lib], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        f = line.split()
        if len(f) == 4 and f[2] in "tTwW":
            syms.setdefault(f[3], (int(f[0], 16), int(f[1], 16)))
    present = [s for s in listed if s in syms]
    missing = [s for s in listed if s not in syms]
    total = sum(syms[s][1] for s in present)
    limit = text_start + total + 4096
    late = [s for s in present if syms[s][0] + syms[s][1] > limit]
    print(f"text-order: {len(present)} of {len(listed)} listed functions in the library, {total} bytes; "
          f".text at {text_start:#x}, {text_size} bytes; every listed one must end before {limit:#x}")
    ok = True
    if len(missing) * 10 > len(listed):
        print(f"text-order: FAILED: {len(missing)} listed functions are not in the library (regenerate "
              f"lib/text-order.txt: tools/text-order): {', '.join(missing[:10])}")
        ok = False
    if late:
        print(f"text-order: FAILED: {len(late)} listed functions lie later in the code: "
              + ", ".join(f"{s} at {syms[s][0]:#x}" for s in late[:10]))
        ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
