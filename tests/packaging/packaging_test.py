#!/usr/bin/env python3
"""tests/packaging: the installed form of mimalloc-numa (suite 'packaging').

    packaging_test.py install  --meson M --build B --consumer DIR
        `meson install --destdir` of the build tree into a scratch root: the
        layout (library, headers, pkg-config file, tools, units, drop-ins,
        manual pages, sample config), the configuration as installed
        (every setting commented out: the library run with it takes every
        option from its default), then the installed tree at work (below).
    packaging_test.py units    --meson M --build B
        The same install; `systemd-analyze verify --root` of mi-reserve.service
        and of each drop-in, the latter on a stub of its server's unit with the
        drop-in in /etc/systemd/system/<unit>.d/ (a control with a bad key in
        the drop-in shows that it is really read).
    packaging_test.py man-pages PAGE...
        groff -man -ww -z and man --warnings -l: no warning on any page.
    packaging_test.py man-generated --gen-options EXE --template T --page P
        P is what `gen-options --man T` prints (the page is generated, and
        committed; a change to the option table must regenerate it).
    packaging_test.py subproject --meson M --source S --consumer DIR
        DIR (tests/packaging/subproject: a meson project using
        dependency('mimalloc-numa', fallback: ...)) copied to a scratch
        directory with subprojects/mimalloc-numa a symbolic link to the tree;
        configured, built, its tests run; only the library is built of
        mimalloc-numa.

The installed tree at work: mi-reserve --help; mi-enable --version and
--print-dropin (the installed library's path); mi-run --version and
--print-lib (finding the library of the tree, not of the system); pkg-config
(PKG_CONFIG_LIBDIR and PKG_CONFIG_SYSROOT_DIR into the root) gives the
version, cflags and libs; consumer.c and consumer.cpp (DIR) compiled with
those flags against the shared library, and against the static one, and run;
preload.c (not linked with the library) run with the library in LD_PRELOAD,
directly and through mi-run --stats (checking the statistics header), and
failing without it (the control).

The Debian packages are deb_test.py's and deb_scripts_test.py's (they use
the helpers here).

Exit status: 0 pass, 1 fail, 77 skipped (the reason on stdout). No timing
checks. Scratch directories are under $TMPDIR, removed after a pass and kept
(their path printed) after a failure or with PACKAGING_TEST_KEEP=1.
"""
import argparse
import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

SKIP = 77
HERE = os.path.dirname(os.path.abspath(__file__))


class Failure(Exception):
    pass


class Skip(Exception):
    pass


def log(msg):
    print(msg, flush=True)


def run(cmd, check=True, env=None, cwd=None, quiet=False, timeout=None):
    """Runs cmd; returns (returncode, stdout, stderr). check: fail unless it exits 0."""
    if not quiet:
        log("$ " + " ".join(shlex.quote(c) for c in cmd))
    try:
        p = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=timeout)
    except FileNotFoundError as e:
        raise Failure(f"cannot run {cmd[0]}: {e}")
    if check and p.returncode != 0:
        raise Failure(f"{cmd[0]} exited with {p.returncode}\n--- stdout\n{p.stdout}--- stderr\n{p.stderr}")
    return p.returncode, p.stdout, p.stderr


def expect(cond, msg):
    if not cond:
        raise Failure(msg)


def under(root, path):
    """root + an absolute path."""
    return os.path.join(root, path.lstrip("/"))


class Scratch:
    """A scratch directory: removed after a pass, kept after a failure."""

    def __init__(self, name):
        self.path = tempfile.mkdtemp(prefix=f"mimalloc-numa-{name}-")
        self.keep = False

    def __enter__(self):
        return self.path

    def __exit__(self, exc_type, exc, tb):
        if (exc_type is not None and exc_type is not Skip) or os.environ.get("PACKAGING_TEST_KEEP") == "1":
            log(f"(scratch directory kept: {self.path})")
        else:
            shutil.rmtree(self.path, ignore_errors=True)
        return False


# ---------------------------------------------------------------------------
# The layout of an installed tree


class Layout:
    """Where things are under a root (absolute paths as installed)."""

    def __init__(self, prefix, libdir, includedir, bindir, sbindir, datadir, mandir, sysconfdir, compressed_man,
                 config_name="mimalloc-numa.toml.example"):
        self.prefix = prefix
        self.libdir = libdir
        self.includedir = includedir
        self.bindir = bindir
        self.sbindir = sbindir
        self.docdir = os.path.join(datadir, "doc", "mimalloc-numa")
        self.examplesdir = os.path.join(self.docdir, "examples")
        self.mandir = mandir
        self.sysconfdir = sysconfdir
        self.compressed_man = compressed_man
        # meson installs the configuration as <sysconfdir>/mimalloc-numa.toml.example;
        # the Debian package ships it as /etc/mimalloc-numa.toml (a conffile)
        self.config = os.path.join(sysconfdir, config_name)

    def expected_files(self):
        man_ext = ".gz" if self.compressed_man else ""
        files = [
            os.path.join(self.libdir, "libmimalloc-numa.so.0"),
            os.path.join(self.libdir, "libmimalloc-numa.so"),
            os.path.join(self.libdir, "libmimalloc-numa.a"),
            os.path.join(self.libdir, "pkgconfig", "mimalloc-numa.pc"),
            os.path.join(self.bindir, "mi-run"),
            os.path.join(self.bindir, "mi-stat"),
            os.path.join(self.sbindir, "mi-reserve"),
            os.path.join(self.sbindir, "mi-enable"),
            self.config,
            os.path.join(self.docdir, "mimalloc-numa.toml"),
            os.path.join(self.mandir, "man1", "mi-run.1" + man_ext),
            os.path.join(self.mandir, "man1", "mi-stat.1" + man_ext),
            os.path.join(self.docdir, "mi-stat.schema.json"),
            os.path.join(self.mandir, "man5", "mimalloc-numa.toml.5" + man_ext),
            os.path.join(self.mandir, "man8", "mi-reserve.8" + man_ext),
            os.path.join(self.mandir, "man8", "mi-enable.8" + man_ext),
        ]
        for h in ["mimalloc.h", "mimalloc-numa.h", "mimalloc-override.h", "mimalloc-new-delete.h", "mimalloc-numa-stats.h"]:
            files.append(os.path.join(self.includedir, "mimalloc-numa", h))
        for unit in DROPIN_UNITS:
            files.append(os.path.join(self.examplesdir, unit + ".d", "mimalloc-numa.conf"))
        return files


# The drop-ins, by the unit they are for, and the unit name verified (an
# instance for a template).
DROPIN_UNITS = {
    "postgresql@.service": "postgresql@15-main.service",
    "mariadb.service": "mariadb.service",
    "redis-server.service": "redis-server.service",
}


def check_layout(root, layout):
    missing = [f for f in layout.expected_files() if not os.path.lexists(under(root, f))]
    expect(not missing, "not installed:\n  " + "\n  ".join(missing))
    for exe in [os.path.join(layout.bindir, "mi-run"), os.path.join(layout.bindir, "mi-stat"),
                os.path.join(layout.sbindir, "mi-reserve"),
                os.path.join(layout.sbindir, "mi-enable")]:
        expect(os.access(under(root, exe), os.X_OK), f"{exe} is not executable")
    units = find_units(root)
    expect(len(units) == 1, f"expected one mi-reserve.service under {root}, found {units}")
    log(f"layout: all {len(layout.expected_files())} expected files, unit {units[0]}")


def find_units(root):
    return sorted("/" + os.path.relpath(p, root)
                  for p in glob.glob(os.path.join(root, "**", "systemd", "system", "mi-reserve.service"),
                                     recursive=True))


# ---------------------------------------------------------------------------
# The installed tree at work


def check_tree_works(root, layout, version, consumer_dir, work):
    """mi-reserve, mi-run, pkg-config, compiling and linking, LD_PRELOAD."""
    env = dict(os.environ)
    for k in ["LD_PRELOAD", "LD_LIBRARY_PATH", "MI_RUN_LIB", "PKG_CONFIG_PATH", "MIMALLOC_CONFIG"]:
        env.pop(k, None)
    # The library is the tree's; no host configuration file changes a run.
    env["MIMALLOC_CONFIG"] = "/dev/null"

    mi_reserve = under(root, os.path.join(layout.sbindir, "mi-reserve"))
    _, out, _ = run([mi_reserve, "--help"], env=env)
    expect("--release" in out and "--status" in out, f"mi-reserve --help does not list --release and --status:\n{out}")
    log("mi-reserve --help: OK")

    # mi-enable: configured with the installed library's path.
    mi_enable = under(root, os.path.join(layout.sbindir, "mi-enable"))
    _, out, _ = run([mi_enable, "--version"], env=env)
    expect(version in out, f"mi-enable --version does not say {version}: {out}")
    _, out, _ = run([mi_enable, "--root", work, "--print-dropin", "redis-server.service"], env=env)
    lib = os.path.join(layout.libdir, "libmimalloc-numa.so.0")
    expect(f"Environment=LD_PRELOAD={lib}\n" in out, f"mi-enable does not preload {lib}:\n{out}")
    log(f"mi-enable --version, --print-dropin (preloads {lib}): OK")

    # mi-stat: runs (on any malloc; it reads files only); its schema is where its page says.
    mi_stat = under(root, os.path.join(layout.bindir, "mi-stat"))
    _, out, _ = run([mi_stat, "--version"], env=env)
    expect(version in out, f"mi-stat --version does not say {version}: {out}")
    _, out, _ = run([mi_stat, "--dir", work, "--json"], env=env)
    expect(json.loads(out)["processes"] == 0, f"mi-stat --dir (empty) --json: {out}")
    expect(os.path.exists(under(root, os.path.join(layout.docdir, "mi-stat.schema.json"))), "no mi-stat.schema.json")
    log("mi-stat --version, --json: OK")

    mi_run = under(root, os.path.join(layout.bindir, "mi-run"))
    _, out, _ = run([mi_run, "--version"], env=env)
    expect(version in out, f"mi-run --version does not say {version}: {out}")
    _, out, _ = run([mi_run, "--print-lib"], env=env)
    lib_found = out.strip()
    expect(os.path.realpath(lib_found).startswith(os.path.realpath(root) + "/"),
           f"mi-run --print-lib found {lib_found}, not the library under {root}")
    log(f"mi-run finds {lib_found}: OK")

    # pkg-config in the root: PKG_CONFIG_LIBDIR (not _PATH: the host's own
    # mimalloc-numa.pc, if any, must not answer) and the sysroot.
    pc_env = dict(env)
    pc_env["PKG_CONFIG_LIBDIR"] = under(root, os.path.join(layout.libdir, "pkgconfig"))
    pc_env["PKG_CONFIG_SYSROOT_DIR"] = root
    _, out, _ = run(["pkg-config", "--modversion", "mimalloc-numa"], env=pc_env)
    expect(out.strip() == version, f"pkg-config --modversion: {out.strip()}, expected {version}")
    _, cflags, _ = run(["pkg-config", "--cflags", "mimalloc-numa"], env=pc_env)
    _, libs, _ = run(["pkg-config", "--libs", "mimalloc-numa"], env=pc_env)
    cflags, libs = shlex.split(cflags), shlex.split(libs)
    incdir = under(root, os.path.join(layout.includedir, "mimalloc-numa"))
    libdir = under(root, layout.libdir)
    expect(f"-I{incdir}" in cflags, f"pkg-config --cflags {cflags} lacks -I{incdir}")
    expect(f"-L{libdir}" in libs and "-lmimalloc-numa" in libs,
           f"pkg-config --libs {libs} lacks -L{libdir} -lmimalloc-numa")
    log(f"pkg-config: {version}, {' '.join(cflags)} / {' '.join(libs)}: OK")

    run_env = dict(env)
    run_env["LD_LIBRARY_PATH"] = libdir
    static_lib = os.path.join(libdir, "libmimalloc-numa.a")
    builds = [
        ("consumer-c", ["cc", "-std=c11", "-Wall", "-Wextra", "-Werror"], "consumer.c", libs),
        ("consumer-cpp", ["c++", "-std=c++17", "-Wall", "-Wextra", "-Werror"], "consumer.cpp", libs),
        ("consumer-c-static", ["cc", "-std=c11", "-Wall", "-Wextra", "-Werror"], "consumer.c",
         [static_lib, "-pthread"]),
        ("consumer-cpp-static", ["c++", "-std=c++17", "-Wall", "-Wextra", "-Werror"], "consumer.cpp",
         [static_lib, "-pthread"]),
    ]
    for name, compiler, source, link in builds:
        exe = os.path.join(work, name)
        run(compiler + cflags + [os.path.join(consumer_dir, source), "-o", exe] + link, env=env)
        if not name.endswith("-static"):
            _, out, _ = run(["ldd", exe], env=run_env, quiet=True)
            line = [l for l in out.splitlines() if "libmimalloc-numa" in l]
            expect(line and os.path.realpath(libdir) in os.path.realpath(line[0].split("=>")[1].split()[0]),
                   f"{name} does not load the tree's library:\n{out}")
        _, out, _ = run([exe], env=run_env)
        expect(out.rstrip().endswith("OK"), f"{name}: {out}")
        log(out.rstrip())

    # LD_PRELOAD: a program that is not linked with the library.
    preload = os.path.join(work, "preload")
    run(["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", os.path.join(HERE, "preload.c"), "-o", preload], env=env)
    rc, _, _ = run([preload], check=False, env=env)
    expect(rc == 1, f"preload without LD_PRELOAD exited {rc}, expected 1 (the control)")
    lib = os.path.join(libdir, "libmimalloc-numa.so.0")
    pre_env = dict(env)
    pre_env["LD_PRELOAD"] = lib
    pre_env["MIMALLOC_SHOW_STATS"] = "1"
    _, out, err = run([preload], env=pre_env)
    expect(out.rstrip().endswith("OK"), f"preload: {out}")
    expect(f"mimalloc-numa {version} statistics" in err, f"no statistics at exit under LD_PRELOAD:\n{err}")
    log(f"LD_PRELOAD={lib}: {out.rstrip()}; statistics printed")
    _, out, err = run([mi_run, "--stats", "--", preload], env=env)
    expect(out.rstrip().endswith("OK"), f"mi-run preload: {out}")
    expect(f"mimalloc-numa {version} statistics" in err, f"mi-run --stats: no statistics:\n{err}")
    log("mi-run --stats -- preload: OK")


def check_shipped_config(root, layout):
    """The configuration as installed (layout.config) changes nothing: every
    setting in it is commented out (table headers aside), the library run with
    it takes every option from its default, without a warning, and
    mi-reserve --check-config finds no problem. The control: the full sample
    in the documentation directory, which sets every option, is the source
    the library names for them."""
    config = under(root, layout.config)
    text = open(config).read()
    live = [l for l in text.splitlines() if l.strip() and not l.lstrip().startswith(("#", "["))]
    expect(not live, f"{layout.config} sets options as installed:\n  " + "\n  ".join(live))
    expect("# purge_delay = " in text, f"{layout.config} does not list the options (commented out)")
    lib = under(root, os.path.join(layout.libdir, "libmimalloc-numa.so.0"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIMALLOC_") and k != "LD_PRELOAD"}

    def options_from(path):
        e = dict(env, LD_PRELOAD=lib, MIMALLOC_CONFIG=path, MIMALLOC_VERBOSE="1")
        _, _, err = run(["/bin/true"], env=e, quiet=True)
        lines = [l for l in err.splitlines() if re.match(r"mimalloc-numa:\s+[a-z_]+\s+\S+\s+\(", l)]
        expect(len(lines) > 20, f"MIMALLOC_VERBOSE=1 listed no options:\n{err}")
        return err, lines

    err, lines = options_from(config)
    from_file = [l for l in lines if os.path.basename(config) in l]
    expect(not from_file, f"options taken from {layout.config} as installed:\n" + "\n".join(from_file))
    warned = [l for l in err.splitlines() if re.search(r"warning:|\bignored\b|error:", l, re.I)]
    expect(not warned, f"{layout.config}: the library warns:\n" + "\n".join(warned))
    sample = under(root, os.path.join(layout.docdir, "mimalloc-numa.toml"))
    _, control = options_from(sample)
    expect(sum("mimalloc-numa.toml:" in l for l in control) > 20,
           "the control failed: the full sample's options are not listed as read from it:\n" + "\n".join(control))
    mi_reserve = under(root, os.path.join(layout.sbindir, "mi-reserve"))
    rc, out, err = run([mi_reserve, "--check-config", config], check=False, env=dict(env, MIMALLOC_CONFIG="/dev/null"))
    expect(rc == 0, f"mi-reserve --check-config {layout.config}: exit {rc}\n{out}{err}")
    log(f"{layout.config}: every setting commented out; the library lists {len(lines)} options, none from it "
        f"(control: {sum('mimalloc-numa.toml:' in l for l in control)} from the full sample); "
        f"mi-reserve --check-config: clean")


# ---------------------------------------------------------------------------
# systemd units


def verify_units(root, layout):
    """systemd-analyze verify --root of mi-reserve.service and the drop-ins.
    Raises Skip without systemd-analyze."""
    sa = shutil.which("systemd-analyze")
    if sa is None:
        raise Skip("systemd-analyze not found (Debian: systemd); units not verified")
    units = find_units(root)
    expect(len(units) == 1, f"expected one mi-reserve.service under {root}, found {units}")
    unit_file = under(root, units[0])
    text = open(unit_file).read()
    for line in ["Type=oneshot", "RemainAfterExit=yes", f"ExecStart={layout.sbindir}/mi-reserve ",
                 f"ExecStop={layout.sbindir}/mi-reserve --release", "Before=postgresql.service"]:
        expect(line in text, f"{units[0]} lacks '{line}'")
    expect(not re.search(r"@[A-Z_]+@", text), f"{units[0]} has an unsubstituted @VARIABLE@")

    env = dict(os.environ)
    args = [sa, "verify", f"--root={root}"]
    if shutil.which("man"):
        # Documentation=man:mi-reserve(8) man:mimalloc-numa.toml(5): found in the root's pages.
        env["MANPATH"] = under(root, layout.mandir)
    else:
        args.append("--man=no")
        log("(man not found: Documentation= not checked)")

    def verify(name):
        rc, out, err = run(args + [name], check=False, env=env)
        return rc, (out + err).strip()

    rc, out = verify("mi-reserve.service")
    expect(rc == 0 and out == "", f"systemd-analyze verify mi-reserve.service: exit {rc}\n{out}")
    log(f"{units[0]}: verified")

    # Each drop-in, where its instructions put it, on a stub of its unit (no
    # default dependencies: the root has no sysinit.target and the like).
    stub_exe = "/usr/libexec/mimalloc-numa-test/stub-server"
    os.makedirs(os.path.dirname(under(root, stub_exe)), exist_ok=True)
    with open(under(root, stub_exe), "w") as f:
        f.write("#!/bin/sh\nexit 0\n")
    os.chmod(under(root, stub_exe), 0o755)
    etc_units = under(root, "/etc/systemd/system")
    for unit, instance in DROPIN_UNITS.items():
        example = under(root, os.path.join(layout.examplesdir, unit + ".d", "mimalloc-numa.conf"))
        text = open(example).read()
        # What mi-enable writes (mi-enable --print-dropin): its mark first; the library in the
        # unit's environment, except for PostgreSQL, whose pg_ctlcluster empties the environment
        # (mi-enable names the library in each cluster's environment file instead).
        expect(text.startswith("# Written by mi-enable (mimalloc-numa)"), f"{unit} drop-in: not mi-enable's")
        lib_line = [l for l in text.splitlines() if l.startswith("Environment=LD_PRELOAD=")]
        if unit.startswith("postgresql@"):
            expect(not [l for l in text.splitlines() if l.startswith("Environment=")],
                   f"{unit} drop-in: an Environment= line would not reach the postmaster")
        else:
            expect(len(lib_line) == 1, f"{unit} drop-in: no Environment=LD_PRELOAD= line")
            lib = lib_line[0].split("=", 2)[2]
            expect(lib == os.path.join(layout.libdir, "libmimalloc-numa.so.0"), f"{unit} drop-in preloads {lib}")
            expect(os.path.exists(under(root, lib)), f"{unit} drop-in preloads {lib}, which is not installed")
        for line in ["After=mi-reserve.service", "Wants=mi-reserve.service"]:
            expect(line in text.splitlines(), f"{unit} drop-in lacks '{line}'")
        expect(not re.search(r"@[A-Z_]+@", text), f"{unit} drop-in has an unsubstituted @VARIABLE@")
        os.makedirs(os.path.join(etc_units, unit + ".d"), exist_ok=True)
        with open(os.path.join(etc_units, unit), "w") as f:
            f.write(f"[Unit]\nDescription=stub of {unit}\nDefaultDependencies=no\n\n"
                    f"[Service]\nExecStart={stub_exe}\n")
        dropin = os.path.join(etc_units, unit + ".d", "mimalloc-numa.conf")
        shutil.copyfile(example, dropin)
        rc, out = verify(instance)
        expect(rc == 0 and out == "", f"systemd-analyze verify {instance} with the drop-in: exit {rc}\n{out}")
        # The control: a bad key in the drop-in is reported, so it is read.
        with open(dropin, "a") as f:
            f.write("MimallocNumaTestBadKey=1\n")
        rc, out = verify(instance)
        expect("MimallocNumaTestBadKey" in out and "mimalloc-numa.conf" in out,
               f"a bad key in {dropin} was not reported: is the drop-in read?\n{out}")
        shutil.copyfile(example, dropin)
        log(f"{unit} drop-in: verified on {instance}")


# ---------------------------------------------------------------------------
# meson install


def meson_options(meson, build):
    _, out, _ = run([meson, "introspect", "--buildoptions", build], quiet=True)
    return {o["name"]: o["value"] for o in json.loads(out)}


def meson_install(meson, build, root):
    run([meson, "install", "-C", build, "--destdir", root, "--no-rebuild", "--quiet"])


def meson_layout(meson, build):
    o = meson_options(meson, build)
    prefix = o["prefix"]

    def p(d):
        return os.path.join(prefix, o[d])  # an absolute option value stays as it is

    return Layout(prefix, p("libdir"), p("includedir"), p("bindir"), p("sbindir"), p("datadir"), p("mandir"),
                  p("sysconfdir"), compressed_man=False), o


def cmd_install(a):
    layout, opts = meson_layout(a.meson, a.build)
    with Scratch("install") as tmp:
        root = os.path.join(tmp, "root")
        meson_install(a.meson, a.build, root)
        check_layout(root, layout)
        check_shipped_config(root, layout)
        work = os.path.join(tmp, "work")
        os.makedirs(work)
        check_tree_works(root, layout, a.version, a.consumer, work)


def cmd_units(a):
    if shutil.which("systemd-analyze") is None:
        raise Skip("systemd-analyze not found (Debian: systemd); units not verified")
    layout, _ = meson_layout(a.meson, a.build)
    with Scratch("units") as tmp:
        root = os.path.join(tmp, "root")
        meson_install(a.meson, a.build, root)
        verify_units(root, layout)


# ---------------------------------------------------------------------------
# Manual pages


def cmd_man_pages(a):
    if shutil.which("groff") is None:
        raise Skip("groff not found (Debian: groff-base); manual pages not checked")
    env = dict(os.environ, LC_ALL="C.UTF-8")
    for page in map(os.path.normpath, a.pages):
        name = os.path.basename(page)
        base, section = name.rsplit(".", 1)
        th = [l for l in open(page) if l.startswith(".TH ")]
        expect(len(th) == 1, f"{name}: expected one .TH line")
        th_words = shlex.split(th[0])
        expect(th_words[1].replace("\\-", "-").lower() == base.lower() and th_words[2] == section,
               f"{name}: .TH says {th_words[1]} {th_words[2]}")
        rc, out, err = run(["groff", "-man", "-ww", "-z", "-Kutf8", page], check=False, env=env)
        expect(rc == 0 and err.strip() == "", f"groff -man -ww -z {name}: exit {rc}\n{err}")
        if shutil.which("man"):
            rc, out, err = run(["man", "--warnings", "-l", page], check=False,
                               env=dict(env, MANWIDTH="80", MAN_KEEP_FORMATTING="0"))
            expect(rc == 0 and err.strip() == "", f"man --warnings -l {name}: exit {rc}\n{err}")
            expect(len(out.splitlines()) > 20, f"man -l {name}: only {len(out.splitlines())} lines")
        log(f"{name}: no warnings")


def cmd_man_generated(a):
    a.template, a.page = os.path.normpath(a.template), os.path.normpath(a.page)
    _, out, _ = run([a.gen_options, "--man", a.template])
    page = open(a.page).read()
    if out != page:
        import difflib
        diff = "".join(difflib.unified_diff(page.splitlines(True), out.splitlines(True), a.page, "gen-options --man"))
        raise Failure(f"{a.page} is not what gen-options --man prints; edit the template (or the option table) "
                      f"and regenerate the page:\n  {a.gen_options} --man {a.template} > {a.page}\n{diff}")
    log(f"{a.page}: in sync with gen-options --man")


# ---------------------------------------------------------------------------
# A meson subproject


def cmd_subproject(a):
    with Scratch("subproject") as tmp:
        proj = os.path.join(tmp, "consumer")
        shutil.copytree(a.consumer, proj)
        os.makedirs(os.path.join(proj, "subprojects"))
        os.symlink(os.path.realpath(a.source), os.path.join(proj, "subprojects", "mimalloc-numa"))
        build = os.path.join(tmp, "build")
        env = dict(os.environ)
        for k in ["LD_PRELOAD", "MIMALLOC_CONFIG"]:
            env.pop(k, None)
        # The subproject even where mimalloc-numa is installed; a plain debug
        # build (no -O3) is quicker.
        run([a.meson, "setup", build, proj, "--force-fallback-for=mimalloc-numa", "--buildtype=debug"], env=env)
        jobs = str(max(1, min(os.cpu_count() or 1, 4)))
        run([a.meson, "compile", "-C", build, "-j", jobs], env=env)
        _, out, _ = run([a.meson, "introspect", "--targets", build], quiet=True)
        targets = json.loads(out)
        ours = sorted(t["name"] for t in targets if t.get("subproject") == "mimalloc-numa")
        # The library and the three static libraries it is linked from (the
        # objects; new_handler.cpp, the one file built with exceptions; the
        # code that runs once or rarely, built for size), and the objects'
        # copy with the code programs run placed first (lib/text_order.py): no
        # tool, test or benchmark.
        expect(set(ours) <= {"mimalloc-numa", "mimalloc-numa-objects", "mimalloc-numa-new-handler",
                             "mimalloc-numa-cold", "mimalloc-numa-ordered"},
               f"the subproject builds more than its library: {ours}")
        expect("mimalloc-numa" in ours, f"no library target in the subproject: {ours}")
        log(f"subproject targets: {', '.join(ours)}")
        _, out, _ = run([a.meson, "introspect", "--tests", build], quiet=True)
        tests = sorted(t["name"] for t in json.loads(out))
        expect(tests == ["consumer-c", "consumer-cpp"], f"tests in the consumer build: {tests}")
        run([a.meson, "test", "-C", build, "--print-errorlogs"], env=env)
        for exe in ["consumer-c", "consumer-cpp"]:
            _, out, _ = run([os.path.join(build, exe)], env=env, quiet=True)
            log(out.rstrip())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("install")
    p.add_argument("--meson", required=True)
    p.add_argument("--build", required=True)
    p.add_argument("--version", required=True)
    p.add_argument("--consumer", required=True)
    p = sub.add_parser("units")
    p.add_argument("--meson", required=True)
    p.add_argument("--build", required=True)
    p = sub.add_parser("man-pages")
    p.add_argument("pages", nargs="+")
    p = sub.add_parser("man-generated")
    p.add_argument("--gen-options", required=True)
    p.add_argument("--template", required=True)
    p.add_argument("--page", required=True)
    p = sub.add_parser("subproject")
    p.add_argument("--meson", required=True)
    p.add_argument("--source", required=True)
    p.add_argument("--consumer", required=True)
    a = ap.parse_args()
    handlers = {"install": cmd_install, "units": cmd_units, "man-pages": cmd_man_pages,
                "man-generated": cmd_man_generated, "subproject": cmd_subproject}
    return run_test(handlers[a.cmd], a)


def run_test(cmd, args):
    """Runs one test command: 0 PASS, 1 FAIL, 77 SKIP (the reason printed); the
    exit status of every tests/packaging script."""
    try:
        cmd(args)
    except Skip as s:
        log(f"SKIP: {s}")
        return SKIP
    except Failure as f:
        log(f"FAIL: {f}")
        return 1
    log("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
