#!/usr/bin/env python3
"""The include order of lib/, kept by a machine.

Reads the order of the layers from the table of lib/README.md (one row a
layer: | order | name | `dir/` | owns |; written there once) and checks every
`#include "..."` of lib/: a file may include headers of its own directory and
of layers with a lower order, never of a higher one. Order 0 (common) is
beside the stack: it includes only itself. Of the public headers (include/),
mimalloc.h may be included from every layer (its types and option ids are
what every layer uses); the others belong to the api layer.

Every file of a layer's directory is named in the layer's row, in backquotes
(`name`, `name.h` or `name.cpp`), so that the table lists every part there is.

Exceptions are listed below, each with its reason; an exception that no
longer matches an include fails the test too, so that the list only shrinks.

Usage: layering.py [--no-exceptions] [SOURCE_ROOT]   (exit 0: clean, 1: an
include goes up, 2: the table cannot be read). --no-exceptions: for a tree
that is not this project's (tests/lint/fixtures).
"""
import os
import re
import sys

# (file, included header) -> why it is allowed for now
EXCEPTIONS = {
    ("lib/heap/heap.cpp", "include/mimalloc-numa.h"):
        "defines mi_heap_new_on_node, mi_malloc_on_node, mi_numa_node_of (moves to api/ with the heap's public functions)",
}

BASE_PUBLIC = "include/mimalloc.h"
ROW = re.compile(r"^\|\s*(\d+)\s*\|\s*([\w-]+)\s*\|\s*`([\w-]+)/`\s*\|(.*)$")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def read_layers(root, owns):
    layers = {}
    with open(os.path.join(root, "lib", "README.md"), encoding="utf-8") as f:
        for line in f:
            m = ROW.match(line)
            if m:
                layers[m.group(3)] = (int(m.group(1)), m.group(2))
                owns[m.group(3)] = m.group(4)
    return layers


def main():
    args = sys.argv[1:]
    exceptions = EXCEPTIONS
    if args and args[0] == "--no-exceptions":
        exceptions = {}
        args = args[1:]
    root = os.path.abspath(args[0] if args else os.path.join(os.path.dirname(__file__), "..", ".."))
    owns = {}
    layers = read_layers(root, owns)
    if not layers or "api" not in layers:
        print("layering: no table of layers in lib/README.md (| order | layer | `dir/` | owns |)")
        return 2
    api_order = layers["api"][0]
    problems = []
    used = set()
    lib = os.path.join(root, "lib")
    for d in sorted(os.listdir(lib)):
        path = os.path.join(lib, d)
        if not os.path.isdir(path):
            continue
        if d not in layers:
            problems.append(f"lib/{d}/: a directory the table of lib/README.md does not list (give it its place)")
            continue
        order, name = layers[d]
        for dirpath, _, files in os.walk(path):
            for fn in sorted(files):
                if not fn.endswith((".h", ".cpp", ".c")):
                    continue
                src = os.path.join(dirpath, fn)
                rel = os.path.relpath(src, root)
                stem = os.path.splitext(fn)[0]
                if not re.search(r"`" + re.escape(stem) + r"(\.h|\.cpp|\.c)?`", owns[d]):
                    problems.append(f"{rel}: not named in the row of {name} in lib/README.md (say what it owns "
                                    f"there, as `{stem}`)")
                with open(src, encoding="utf-8") as f:
                    for n, line in enumerate(f, 1):
                        m = INCLUDE.match(line)
                        if not m:
                            continue
                        target = os.path.relpath(os.path.normpath(os.path.join(dirpath, m.group(1))), root)
                        parts = target.split(os.sep)
                        if parts[0] == "include":
                            if target == BASE_PUBLIC:
                                continue
                            t_order, t_name = api_order, "api (a public header)"
                        elif parts[0] == "lib" and len(parts) > 2 and parts[1] in layers:
                            if parts[1] == d:
                                continue
                            t_order, t_name = layers[parts[1]]
                        else:
                            continue  # outside lib/ and include/: not ours to order
                        up = t_order > order or (order == 0 and t_order != 0)
                        if not up:
                            continue
                        key = (rel, target)
                        if key in exceptions:
                            used.add(key)
                            continue
                        where = "beside the stack, includes only itself" if order == 0 else f"order {order}"
                        problems.append(f"{rel}:{n}: {name} ({where}) includes {target}, of {t_name} "
                                        f"(order {t_order}): a layer includes only its own and those below")
    for key in sorted(set(exceptions) - used):
        problems.append(f"{key[0]}: the exception for {key[1]} is no longer needed: remove it from "
                        f"tests/lint/layering.py")
    for p in problems:
        print(p)
    if problems:
        print(f"layering: {len(problems)} problem(s); the order is the table of lib/README.md")
        return 1
    print(f"layering: {len(layers)} layers, every include of lib/ goes down or sideways")
    return 0


if __name__ == "__main__":
    sys.exit(main())
