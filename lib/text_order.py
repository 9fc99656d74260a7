#!/usr/bin/env python3
"""Build step (lib/meson.build): the library's objects with the code programs run placed first.

    text_order.py OBJCOPY AR IN.a LIST OUT.a

IN.a holds the library's objects, compiled with -ffunction-sections (each
function in a section .text.<symbol>). LIST (lib/text-order.txt, written by
tools/text-order) names the functions programs run, most common first. Each
of those sections is renamed .text.sorted.<its place in LIST>.<symbol>: the
linker's default script (GNU ld 2.36 and later) places the .text.sorted input
sections, sorted by name, before the rest of .text, so they end up together
at the start of the library's code in LIST's order, what every program runs
in the first of the 64 KiB windows the kernel maps code in. They stay in the
one .text section that debuggers and valgrind read symbols from. OUT.a gets
the renamed objects, in IN.a's order.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile


def members(ar, archive, workdir):
    """The archive's objects, copied into workdir in archive order (thin archives list paths)."""
    names = subprocess.run([ar, "t", archive], capture_output=True, text=True, check=True).stdout.split()
    thin = all(os.path.isfile(n) for n in names)
    out = []
    if not thin:
        subprocess.run([ar, "x", os.path.abspath(archive)], cwd=workdir, check=True)
    for i, n in enumerate(names):
        dst = os.path.join(workdir, f"{i:03d}_{os.path.basename(n)}")
        src = n if thin else os.path.join(workdir, os.path.basename(n))
        shutil.copyfile(src, dst)
        out.append(dst)
    return out


def function_sections(obj):
    text = subprocess.run(["readelf", "-SW", obj], capture_output=True, text=True, check=True).stdout
    return set(re.findall(r"\]\s+\.text\.(\S+)\s+PROGBITS", text))


def main():
    if len(sys.argv) != 6:
        sys.exit("usage: text_order.py OBJCOPY AR IN.a LIST OUT.a")
    objcopy, ar, archive, listfile, output = sys.argv[1:]
    place = {}  # symbol -> its place in LIST
    with open(listfile) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line and line not in place:
                place[line] = len(place)
    with tempfile.TemporaryDirectory() as tmp:
        objs = members(ar, archive, tmp)
        for obj in objs:
            renames = []
            for fn in sorted(function_sections(obj) & place.keys()):
                renames += ["--rename-section", f".text.{fn}=.text.sorted.{place[fn]:05d}.{fn}"]
            if renames:
                subprocess.run([objcopy] + renames + [obj], check=True)
        if os.path.exists(output):
            os.remove(output)
        subprocess.run([ar, "rcsD", output] + objs, check=True)


if __name__ == "__main__":
    main()
