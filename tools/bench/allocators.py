"""allocators.py -- what the benchmark drivers share (run_bench.py, run_servers.py).

The allocators compared and the library each is run with (LD_PRELOAD), the
--lib NAME=PATH arguments that add or replace one, and the drivers' entry
point (an interrupt exits 130 with one line, not a traceback).

Python 3 standard library only.
"""
from __future__ import annotations

import sys
import sysconfig
from pathlib import Path
from typing import Callable, Optional

MULTIARCH = sysconfig.get_config_var("MULTIARCH") or "x86_64-linux-gnu"
SYSLIB = Path("/usr/lib") / MULTIARCH

# name -> library to LD_PRELOAD (None: the C library's own malloc).  "{build}" is
# replaced by the build directory.
ALLOCATORS = {
    "glibc": None,
    "mimalloc": str(SYSLIB / "libmimalloc.so.2"),
    "jemalloc": str(SYSLIB / "libjemalloc.so.2"),
    "tcmalloc": str(SYSLIB / "libtcmalloc_minimal.so.4"),
    "ours": "{build}/lib/libmimalloc-numa.so",
}


def allocator_libs(build: Path, lib_specs: list[str]) -> dict[str, Optional[str]]:
    """ALLOCATORS with {build} filled in, then each NAME=PATH of lib_specs (--lib)
    added or replacing its name's library (an empty PATH: the C library's malloc).
    ValueError names a spec that is not NAME=PATH."""
    libs = {k: (v.replace("{build}", str(build)) if v else None) for k, v in ALLOCATORS.items()}
    for spec in lib_specs:
        name, sep, path = spec.partition("=")
        if not sep or not name:
            raise ValueError(f"--lib expects NAME=PATH, got '{spec}'")
        libs[name] = path or None
    return libs


def run_main(main: Callable[[list[str]], int], prog: str) -> None:
    """Exits with main(sys.argv)'s status; an interrupt (Ctrl-C) exits 130."""
    try:
        sys.exit(main(sys.argv))
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted", file=sys.stderr)
        sys.exit(130)
