#!/usr/bin/env python3
"""readme_table.py: the table of every option in README.md, from the option table.

usage: readme_table.py GEN_OPTIONS README [--check]

Runs `GEN_OPTIONS --markdown` (the generated docs/options.md) and puts its
tables (options, [node.N], [program.NAME], [reserve], with their headings) between the lines
<!-- options-table: ... --> and <!-- options-table-end --> of README. With
--check it changes nothing and exits 1 when README differs (the meson test
readme-options-in-sync), printing the command that brings it up to date.
"""
import subprocess
import sys

BEGIN = "<!-- options-table:"
END = "<!-- options-table-end -->"


def tables(markdown):
    # everything from the first table on, headings of later sections one level down
    lines = markdown.splitlines()
    first = next(i for i, l in enumerate(lines) if l.startswith("| option |"))
    out = []
    for line in lines[first:]:
        if line.startswith("## "):
            line = "#### " + line[3:]
        out.append(line)
    while out and not out[-1].strip():
        out.pop()
    return out


def main():
    args = [a for a in sys.argv[1:] if a != "--check"]
    check = "--check" in sys.argv[1:]
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    gen, readme = args
    md = subprocess.run([gen, "--markdown"], check=True, capture_output=True, text=True).stdout
    with open(readme) as f:
        text = f.read()
    lines = text.split("\n")
    try:
        b = next(i for i, l in enumerate(lines) if l.startswith(BEGIN))
        e = next(i for i, l in enumerate(lines) if l.startswith(END))
    except StopIteration:
        print(f"{readme}: no '{BEGIN}' ... '{END}' lines", file=sys.stderr)
        return 1
    new = "\n".join(lines[: b + 1] + [""] + tables(md) + [""] + lines[e:])
    if new == text:
        return 0
    if check:
        print(f"{readme}: the option table is out of date; run: {sys.argv[0]} {gen} {readme}", file=sys.stderr)
        return 1
    with open(readme, "w") as f:
        f.write(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
