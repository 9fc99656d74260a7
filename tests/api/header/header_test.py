#!/usr/bin/env python3
"""The whole mimalloc 2.1 header, as a consumer compiles it.

    header_test.py --meson MESON --build BUILD --dir DIR --cc CC --cxx CXX

1. `meson install --tags devel,runtime --destdir` of the build tree into a
   scratch root: the headers, the library and its pkg-config file as they are
   installed; `pkg-config --cflags --libs mimalloc-numa` in that root gives
   the flags (nothing of the source tree is on the include path).
2. DIR/api21_calls.c in C99 and C11, DIR/api21_calls.cpp in C++11, C++17 and
   C++20, each with -Wall -Wextra -Werror -pedantic (and with clang too when
   it is installed), linked with -lmimalloc-numa and run: every line ends in
   OK, or the failed checks are printed.
3. The names of DIR/mimalloc21-names.txt, cross-checked: each is used by the
   two programs (a name the list gains must be tested), and a generated
   program that refers to every one of them (functions by address, so the
   library must export them; enumerators with their values; struct fields)
   compiles as C and C++ and links. A failure names each missing name.
4. The check of step 3 must be able to fail: against a copy of the installed
   header without mi_heap_recalloc_tp and mi_wdupenv_s, it must name exactly
   those two.
Exit 0 passed, 1 failed.
"""
import argparse
import glob
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

failures = []
WARN = ["-Wall", "-Wextra", "-Werror", "-pedantic", "-O1"]


def fail(msg):
    failures.append(msg)
    print("FAIL:", msg)


def run(cmd, env=None, timeout=300):
    return subprocess.run(cmd, env=env, capture_output=True, text=True, errors="replace", timeout=timeout)


# --- step 1: the installed form -------------------------------------------------------

def install(meson, build, root):
    r = run([meson, "install", "-C", build, "--destdir", root, "--no-rebuild", "--quiet", "--tags", "devel,runtime"])
    if r.returncode != 0:
        sys.exit(f"meson install failed:\n{r.stdout}{r.stderr}")
    pcs = glob.glob(os.path.join(root, "**", "pkgconfig", "mimalloc-numa.pc"), recursive=True)
    if len(pcs) != 1:
        sys.exit(f"expected one mimalloc-numa.pc under {root}, found {pcs}")
    env = dict(os.environ)
    env["PKG_CONFIG_LIBDIR"] = os.path.dirname(pcs[0])
    env["PKG_CONFIG_SYSROOT_DIR"] = root
    env.pop("PKG_CONFIG_PATH", None)
    cflags = run(["pkg-config", "--cflags", "mimalloc-numa"], env=env)
    libs = run(["pkg-config", "--libs", "mimalloc-numa"], env=env)
    if cflags.returncode != 0 or libs.returncode != 0:
        sys.exit(f"pkg-config failed: {cflags.stderr}{libs.stderr}")
    cflags, libs = shlex.split(cflags.stdout), shlex.split(libs.stdout)
    incdirs = [f[2:] for f in cflags if f.startswith("-I")]
    libdirs = [f[2:] for f in libs if f.startswith("-L")]
    if not any(os.path.isfile(os.path.join(d, "mimalloc.h")) for d in incdirs) or not all(d.startswith(root) for d in incdirs):
        sys.exit(f"pkg-config --cflags {cflags}: no installed mimalloc.h under {root}")
    if len(libdirs) != 1 or not glob.glob(os.path.join(libdirs[0], "libmimalloc-numa.so*")):
        sys.exit(f"pkg-config --libs {libs}: no installed libmimalloc-numa.so")
    return cflags, libs, libdirs[0], incdirs


def clean_env(libdir):
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("MIMALLOC_") and k != "LD_PRELOAD"}
    env["LD_LIBRARY_PATH"] = libdir  # the installed library, not the build tree's
    return env


# --- step 2: the programs ---------------------------------------------------------------

def compiler_name(compiler):
    """The compiler of a command ("gcc" of "ccache gcc")."""
    return next((os.path.basename(c) for c in compiler if os.path.basename(c) != "ccache"), compiler[0])


def compile_and_run(compiler, std, source, cflags, libs, libdir, work):
    exe = os.path.join(work, f"api21-{compiler_name(compiler)}-{std}")
    cmd = compiler + [f"-std={std}"] + WARN + cflags + [source, "-o", exe] + libs + ["-pthread"]
    r = run(cmd)
    if r.returncode != 0:
        fail(f"{' '.join(compiler)} -std={std} {os.path.basename(source)} does not compile:\n{r.stderr}")
        return
    r = run([exe], env=clean_env(libdir), timeout=120)
    last = r.stdout.strip().split("\n")[-1] if r.stdout.strip() else ""
    if r.returncode != 0 or not last.endswith(": OK"):
        fail(f"{os.path.basename(exe)} exited {r.returncode}:\n{r.stdout}{r.stderr}")
    else:
        print(f"{compiler_name(compiler)} -std={std}: {last}")


# --- step 3: the names --------------------------------------------------------------------

class Name:
    def __init__(self, kind, name, what, later, cxx_only):
        self.kind, self.name, self.what, self.later, self.cxx_only = kind, name, what, later, cxx_only

    def ident(self):
        return re.sub(r"\W", "_", self.name)


def read_names(path):
    names = []
    with open(path) as f:
        for no, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            later = parts[-1] == "2.x"
            cxx_only = parts[-1] == "c++" or parts[0] == "cxx"
            if later or parts[-1] == "c++":
                parts = parts[:-1]
            kind, name, what = parts[0], parts[1], " ".join(parts[2:])
            if kind not in ("function", "macro", "type", "struct", "field", "enum", "cxx"):
                sys.exit(f"{path}:{no}: unknown kind {kind}")
            names.append(Name(kind, name, what, later, cxx_only))
    return names


def probe_line(n, cxx):
    """One file-scope line that fails to compile (or link) without the name."""
    i = n.ident()
    if n.kind == "function":
        return f"(probe_fn)&{n.name},"  # goes in an array of function pointers
    if n.kind == "macro":
        return f'#ifndef {n.name}\n#error "missing: macro {n.name}"\n#endif'
    if n.kind == "type":
        return f"typedef {n.name}* probe_type_{i};"
    if n.kind == "struct":
        return f"typedef struct {n.name}* probe_struct_{i};"
    if n.kind == "field":
        t, field = n.name.split(".")
        return f"typedef char probe_field_{i}[offsetof({t}, {field}) + 1];"
    if n.kind == "enum":
        if n.what.startswith("="):
            cond = f"({n.name}) == ({n.what[1:].strip()})"
        elif n.what:
            cond = f"({n.name}) == {n.what}"
        else:
            cond = f"(int)({n.name}) >= 0"
        return f"typedef char probe_enum_{i}[({cond}) ? 1 : -1];"
    if n.kind == "cxx":
        return f"typedef {n.name}<int> probe_cxx_{i};" if cxx else ""
    raise AssertionError(n.kind)


def probe_source(names, cxx):
    """The probe program, and which name each of its lines tests."""
    lines = ["#include <mimalloc.h>", "#include <stddef.h>", "#include <stdio.h>", "typedef void (*probe_fn)(void);"]
    owner = {}

    def add(text, n):
        for part in text.split("\n"):
            lines.append(part)
            owner[len(lines)] = n.name

    funcs = [n for n in names if n.kind == "function"]
    for n in names:
        if n.kind != "function" and not (n.cxx_only and not cxx):
            add(probe_line(n, cxx), n)
    lines.append("static const probe_fn probes[] = {")
    for n in funcs:
        add(probe_line(n, cxx), n)
    lines += ["    NULL};", "int main(void) {", "  size_t n = 0;", "  while (probes[n] != NULL) n++;",
              '  printf("%zu functions\\n", n);', "  return 0;", "}", ""]
    return "\n".join(lines), owner


def missing_names(names, cc, cxx, incflags, libs, libdir, work, tag):
    """The names the header (at incflags) or the library lacks: [] when all
    are there. Each probe has a line of its own: a compiler error at that line,
    or a link error for that symbol, names it."""
    missing = []
    for compiler, std, suffix, is_cxx in ((cc, "c11", ".c", False), (cxx, "c++17", ".cpp", True)):
        text, owner = probe_source(names, is_cxx)
        src = os.path.join(work, f"probe-{tag}{suffix}")
        exe = os.path.join(work, f"probe-{tag}")
        with open(src, "w") as f:
            f.write(text)
        r = run(compiler + [f"-std={std}"] + WARN + incflags + [src, "-o", exe] + libs + ["-pthread"])
        if r.returncode == 0:
            ran = run([exe], env=clean_env(libdir))
            if ran.returncode == 0 and ran.stdout.startswith(f"{sum(1 for n in names if n.kind == 'function')} functions"):
                continue
            fail(f"the probe program ({std}) does not run: {ran.stdout}{ran.stderr}")
            continue
        found = set()
        for m in re.finditer(re.escape(src) + r":(\d+):\d+: (?:fatal )?error", r.stderr):
            if int(m.group(1)) in owner:
                found.add(owner[int(m.group(1))])
        for m in re.finditer(r"undefined reference to [`']([\w:]+)'", r.stderr):
            found.add(m.group(1))
        if not found:
            fail(f"the probe program ({std}) does not build, and no error names a probe:\n{r.stderr}")
        missing += [n for n in sorted(found) if n not in missing]
    return missing


def check_names(names, sources, cc, cxx, cflags, libs, libdir, work):
    text = ""
    for s in sources:
        with open(s) as f:
            text += f.read()
    # each name used by the programs (a field as ->field or .field, a struct as "struct NAME" or its type)
    unused = []
    for n in names:
        word = n.name.split(".")[-1] if n.kind == "field" else n.name
        if n.kind == "struct":
            continue  # the typedefs over them are used; the tags are for the declarations
        if not re.search(r"(?<![\w])" + re.escape(word) + r"(?![\w])", text):
            unused.append(n.name)
    if unused:
        fail(f"names of the 2.1 list that the programs do not use (add a call and a check): {unused}")
    missing = missing_names(names, cc, cxx, cflags, libs, libdir, work, "installed")
    if missing:
        fail(f"names of the 2.1 list that the installed <mimalloc.h> or the library lacks: {missing}")
    later = sum(1 for n in names if n.later)
    print(f"names: {len(names)} ({len(names) - later} of mimalloc 2.1, {later} later 2.x), each used by the programs "
          f"and found in the installed header and library")


def self_test(names, cc, cxx, incdirs, libs, libdir, work):
    """The cross-check names what a header lacks: a copy without two names."""
    broken = os.path.join(work, "broken-include")
    shutil.copytree(incdirs[0], broken)
    path = os.path.join(broken, "mimalloc.h")
    with open(path) as f:
        text = f.read()
    cut = re.sub(r"^#define mi_heap_recalloc_tp\(.*$", "", text, flags=re.M)
    cut = re.sub(r"^mi_decl_export int mi_wdupenv_s\(.*$", "", cut, flags=re.M)
    if cut.count("\n") != text.count("\n") or cut == text:
        fail("self-test: could not remove mi_heap_recalloc_tp and mi_wdupenv_s from the copy of mimalloc.h")
        return
    with open(path, "w") as f:
        f.write(cut)
    got = missing_names(names, cc, cxx, [f"-I{broken}"], libs, libdir, work, "broken")
    if sorted(got) != ["mi_heap_recalloc_tp", "mi_wdupenv_s"]:
        fail(f"self-test: a header without mi_heap_recalloc_tp and mi_wdupenv_s is reported as missing {got}")
    else:
        print("self-test: a header without mi_heap_recalloc_tp and mi_wdupenv_s is reported as missing exactly those")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--meson", required=True)
    ap.add_argument("--build", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--cc", required=True)
    ap.add_argument("--cxx", required=True)
    a = ap.parse_args()
    cc, cxx = shlex.split(a.cc), shlex.split(a.cxx)
    names = read_names(os.path.join(a.dir, "mimalloc21-names.txt"))
    c_src, cxx_src = os.path.join(a.dir, "api21_calls.c"), os.path.join(a.dir, "api21_calls.cpp")
    work = tempfile.mkdtemp(prefix="mi-header-test-")
    try:
        root = os.path.join(work, "root")
        cflags, libs, libdir, incdirs = install(a.meson, a.build, root)
        print(f"installed into {root}: pkg-config --cflags {' '.join(cflags)} --libs {' '.join(libs)}")
        compilers = [(cc, cxx)]
        if shutil.which("clang") and shutil.which("clang++") and compiler_name(cc) != "clang":
            compilers.append((["clang"], ["clang++"]))
        for c, cpp in compilers:
            for std in ("c99", "c11"):
                compile_and_run(c, std, c_src, cflags, libs, libdir, work)
            for std in ("c++11", "c++17", "c++20"):
                # (the C++ file includes the C file by a path relative to itself)
                compile_and_run(cpp, std, cxx_src, cflags, libs, libdir, work)
        check_names(names, [c_src, cxx_src], cc, cxx, cflags, libs, libdir, work)
        self_test(names, cc, cxx, incdirs, libs, libdir, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"header test: {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
