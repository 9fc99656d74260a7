#!/usr/bin/env python3
"""tests/packaging/deb_test.py: the Debian packages, as built (suite 'packaging').

    deb_test.py contents --source S --build B --version V --consumer DIR
        packaging/build-debs builds the packages (debs.py: once per tree,
        shared with the other deb tests), then:
        - exactly libmimalloc-numa0, libmimalloc-numa-dev and
          mimalloc-numa-tools, at the changelog's version, with a .changes
          and a .buildinfo;
        - their fields: Section, Multi-Arch; Depends: the library on libc6
          alone (not libstdc++, Boost or hwloc, which the tools do depend on:
          the control), at a libc6 that has every glibc version the
          library's version references name (GLIBC_ABI_DT_RELR: 2.36), the
          -dev package on the library at its exact
          version, the tools on the library at its exact version;
          Breaks/Replaces of the single package mimalloc-numa they replace;
        - their files: the library package holds the shared library only
          (ELF NEEDED: libc.so.6 alone; its SONAME names the package), the
          -dev package headers, libmimalloc-numa.so, the static library and
          the pkg-config file, the tools package nothing of those; no file
          is in two packages; every program has a manual page;
        - the control files: the library's symbols and shlibs files,
          /etc/mimalloc-numa.toml the one conffile (of the tools), a postinst
          that neither starts nor restarts mi-reserve.service (what the
          maintainer scripts do is deb_scripts_test.py's);
        - all three unpacked (dpkg -x) into a scratch root: the layout, the
          configuration as shipped (changes nothing), the installed tree at
          work and the units, as packaging_test.py checks a meson install.
    deb_test.py lintian --source S --build B
        lintian (Debian's) over the .changes (the three .debs and the
        .buildinfo): no error and no warning; info and pedantic tags are
        printed (the ones expected are listed at LINTIAN_EXPECTED). The
        control: a copy of the library package without its copyright file
        must get lintian's error.

Exit status: 0 pass, 1 fail, 77 skipped (the reason on stdout).
"""
import argparse
import os
import re
import shutil
import subprocess
import sys

from packaging_test import (Failure, Layout, Scratch, Skip, run_test, check_layout, check_shipped_config,
                            check_tree_works, expect, find_units, log, run, verify_units)
import debs as D


# Tags lintian 2.116 (Debian 12) still prints with --display-info --pedantic
# --display-experimental, and why they stay:
#   I: mimalloc-numa-tools: package-supports-alternative-init-but-no-init.d-script
#      mi-reserve.service has no init.d script: mi-reserve is a boot-time
#      oneshot; without systemd, run `mi-reserve` from the boot scripts
#      (mi-reserve(8)).
#   X: mimalloc-numa-tools: bin-sbin-mismatch bin/mi-run -> usr/bin/mi-run
#      experimental, and wrong: mi-run is in /usr/bin, and mi-run's text
#      names <prefix>/bin/mi-run.
LINTIAN_EXPECTED = {"package-supports-alternative-init-but-no-init.d-script", "bin-sbin-mismatch"}


def deb_version(source):
    _, out, _ = run(["dpkg-parsechangelog", "-l", os.path.join(source, "packaging", "debian", "changelog"),
                     "-S", "Version"], quiet=True)
    return out.strip()


def host(var):
    return run(["dpkg-architecture", f"-q{var}"], quiet=True)[1].strip()


def check_fields(debs, version):
    arch = host("DEB_HOST_ARCH")
    expect(sorted(debs.debs) == sorted(D.PACKAGES), f"packages built: {sorted(debs.debs)}, expected {D.PACKAGES}")
    expect(len(debs.changes) == 1 and len(debs.buildinfo) == 1,
           f"expected one .changes and one .buildinfo among {debs.paths}")
    f = {p: D.fields(debs.debs[p]) for p in D.PACKAGES}
    for p in D.PACKAGES:
        expect(f[p].get("Version") == version and f[p].get("Architecture") == arch,
               f"{p}: Version {f[p].get('Version')}, Architecture {f[p].get('Architecture')}; expected {version} {arch}")
        expect(f[p].get("Source", "").split()[0] == D.SOURCE_PACKAGE, f"{p}: Source {f[p].get('Source')}")
        for field in ["Breaks", "Replaces"]:
            expect(("mimalloc-numa", "<< 0.1.0-2") in D.relations(f[p].get(field)),
                   f"{p}: {field} lacks mimalloc-numa (<< 0.1.0-2) (the single package it replaces): {f[p].get(field)}")
    want = {"libmimalloc-numa0": ("libs", "same"), "libmimalloc-numa-dev": ("libdevel", "same"),
            "mimalloc-numa-tools": ("admin", "foreign")}
    for p, (section, ma) in want.items():
        expect(f[p].get("Section") == section and f[p].get("Multi-Arch") == ma,
               f"{p}: Section {f[p].get('Section')}, Multi-Arch {f[p].get('Multi-Arch')}; expected {section}, {ma}")

    lib_deps = D.relations(f["libmimalloc-numa0"].get("Depends"))
    expect([n for n, _ in lib_deps] == ["libc6"], f"libmimalloc-numa0 depends on {lib_deps}: expected libc6 alone")
    for field in ["Pre-Depends", "Recommends"]:
        expect(field not in f["libmimalloc-numa0"], f"libmimalloc-numa0 has {field}: {f['libmimalloc-numa0'].get(field)}")
    dev_deps = D.relations(f["libmimalloc-numa-dev"].get("Depends"))
    expect(dev_deps == [("libmimalloc-numa0", f"= {version}")],
           f"libmimalloc-numa-dev depends on {dev_deps}: expected libmimalloc-numa0 (= {version}) alone")
    tools_deps = D.relations(f["mimalloc-numa-tools"].get("Depends"))
    expect(("libmimalloc-numa0", f"= {version}") in tools_deps,
           f"mimalloc-numa-tools depends on {tools_deps}: lacks libmimalloc-numa0 (= {version})")
    # The control: the tools' own dependencies, found by the same shlibs
    # mechanism, are the ones the library must not have.
    names = [n for n, _ in tools_deps]
    for pattern in [r"libstdc\+\+6", r"libboost-program-options", r"libhwloc"]:
        expect(any(re.fullmatch(pattern + r".*", n) for n in names),
               f"mimalloc-numa-tools does not depend on {pattern} (shlibs): {tools_deps}")
    log(f"fields: libmimalloc-numa0 Depends: {f['libmimalloc-numa0']['Depends']}; libmimalloc-numa-dev Depends: "
        f"{f['libmimalloc-numa-dev']['Depends']}; mimalloc-numa-tools Depends: {f['mimalloc-numa-tools']['Depends']}")


def check_files(debs, upstream_version):
    ma = host("DEB_HOST_MULTIARCH")
    libdir = f"/usr/lib/{ma}"
    files = {p: {path: t for path, t in D.contents(debs.debs[p]).items() if t != "d"} for p in D.PACKAGES}

    def doc(p):
        return {f"/usr/share/doc/{p}/copyright", f"/usr/share/doc/{p}/changelog.Debian.gz"}

    lib_want = {f"{libdir}/libmimalloc-numa.so.0", f"{libdir}/libmimalloc-numa.so.{upstream_version}"} | doc(
        "libmimalloc-numa0")
    expect(set(files["libmimalloc-numa0"]) == lib_want,
           f"libmimalloc-numa0 holds {sorted(files['libmimalloc-numa0'])}, expected {sorted(lib_want)}")
    headers = {f"/usr/include/mimalloc-numa/{h}" for h in
               ["mimalloc.h", "mimalloc-numa.h", "mimalloc-override.h", "mimalloc-new-delete.h", "mimalloc-numa-stats.h"]}
    dev_want = headers | {f"{libdir}/libmimalloc-numa.so", f"{libdir}/libmimalloc-numa.a",
                          f"{libdir}/pkgconfig/mimalloc-numa.pc"} | doc("libmimalloc-numa-dev")
    dev_extra = {f for f in files["libmimalloc-numa-dev"] if not f.startswith("/usr/include/mimalloc-numa/")}
    expect(dev_want <= set(files["libmimalloc-numa-dev"]) and dev_extra <= dev_want,
           f"libmimalloc-numa-dev holds {sorted(files['libmimalloc-numa-dev'])}, expected {sorted(dev_want)}")
    tools = files["mimalloc-numa-tools"]
    tools_want = {"/usr/bin/mi-run", "/usr/bin/mi-stat", "/usr/sbin/mi-reserve", "/etc/mimalloc-numa.toml",
                  "/usr/share/man/man1/mi-stat.1.gz", "/usr/share/doc/mimalloc-numa/mi-stat.schema.json",
                  "/usr/share/man/man5/mimalloc-numa.toml.5.gz", "/usr/share/doc/mimalloc-numa/mimalloc-numa.toml",
                  "/usr/share/doc/mimalloc-numa/options.md",
                  "/usr/lib/tmpfiles.d/mimalloc-numa.conf"} | doc("mimalloc-numa-tools")
    expect(tools_want <= set(tools), f"mimalloc-numa-tools lacks {sorted(tools_want - set(tools))}")
    expect(len([f for f in tools if f.endswith("/systemd/system/mi-reserve.service")]) == 1,
           f"mimalloc-numa-tools holds no mi-reserve.service: {sorted(tools)}")
    allowed = ("/etc/mimalloc-numa.toml", "/lib/systemd/system/", "/usr/lib/systemd/system/", "/usr/bin/", "/usr/sbin/",
               "/usr/lib/tmpfiles.d/mimalloc-numa.conf",
               "/usr/share/man/", "/usr/share/doc/mimalloc-numa/", "/usr/share/doc/mimalloc-numa-tools/")
    stray = sorted(f for f in tools if not f.startswith(allowed))
    expect(not stray, f"mimalloc-numa-tools holds files outside its places: {stray}")
    # Every program has its manual page.
    pages = {os.path.basename(f).split(".")[0] for f in tools if f.startswith("/usr/share/man/")}
    programs = sorted(os.path.basename(f) for f in tools if f.startswith(("/usr/bin/", "/usr/sbin/")))
    expect(all(p in pages for p in programs), f"programs without a manual page: {[p for p in programs if p not in pages]}")
    owners = {}
    for p in D.PACKAGES:
        for f in files[p]:
            owners.setdefault(f, []).append(p)
    shared = {f: o for f, o in owners.items() if len(o) > 1}
    expect(not shared, f"files in more than one package: {shared}")
    log(f"files: libmimalloc-numa0 {len(files['libmimalloc-numa0'])}, libmimalloc-numa-dev "
        f"{len(files['libmimalloc-numa-dev'])}, mimalloc-numa-tools {len(tools)} (programs {', '.join(programs)}, "
        f"each with its manual page); none in two packages")


# glibc versions the loader provides, for version references that do not
# name one: packed relative relocations (DT_RELR) need glibc 2.36, which
# libc6's symbols file does not say (packaging/debian/rules adds it).
GLIBC_SPECIAL_VERSIONS = {"GLIBC_ABI_DT_RELR": "2.36"}


def check_library_elf(root, lib_depends):
    ma = host("DEB_HOST_MULTIARCH")
    lib = os.path.join(root, "usr", "lib", ma, "libmimalloc-numa.so.0")
    _, out, _ = run(["objdump", "-p", lib], quiet=True)
    needed = re.findall(r"^\s*NEEDED\s+(\S+)", out, re.M)
    soname = re.findall(r"^\s*SONAME\s+(\S+)", out, re.M)
    expect(needed == ["libc.so.6"], f"libmimalloc-numa.so.0 needs {needed}: expected libc.so.6 alone")
    expect(soname == ["libmimalloc-numa.so.0"], f"SONAME {soname}")
    log(f"libmimalloc-numa.so.0: SONAME {soname[0]} (package libmimalloc-numa0), NEEDED {', '.join(needed)}")
    # The package's libc6 must be one the loader accepts the library with:
    # the newest glibc version among the library's version references.
    refs = re.findall(r"^\s*0x[0-9a-f]+\s+0x[0-9a-f]+\s+\d+\s+(GLIBC_\S+)", out, re.M)
    versions = [GLIBC_SPECIAL_VERSIONS.get(r, r[len("GLIBC_"):]) for r in refs]
    versions = [v for v in versions if re.fullmatch(r"[0-9.]+", v)]
    expect(versions, f"no GLIBC version references in objdump -p of {lib}")
    newest = versions[0]
    for v in versions[1:]:
        if run(["dpkg", "--compare-versions", v, "gt", newest], check=False, quiet=True)[0] == 0:
            newest = v
    libc = [rel for n, rel in D.relations(lib_depends) if n == "libc6"]
    floor = libc[0].split()[-1] if libc and libc[0].startswith(">=") else "0"
    expect(run(["dpkg", "--compare-versions", floor, "ge", newest], check=False, quiet=True)[0] == 0,
           f"libmimalloc-numa0 depends on libc6 (>= {floor}), but the library needs glibc {newest} "
           f"(version references: {', '.join(sorted(set(refs)))})")
    log(f"libmimalloc-numa.so.0 needs glibc {newest}; the package depends on libc6 (>= {floor})")


def check_control(debs):
    ctl = {p: D.control_files(debs.debs[p]) for p in D.PACKAGES}
    symbols = ctl["libmimalloc-numa0"].get("symbols", "")
    first = [l for l in symbols.splitlines() if l and not l.startswith("#")][:1]
    expect(first == ["libmimalloc-numa.so.0 libmimalloc-numa0 #MINVER#"], f"libmimalloc-numa0's symbols file: {first}")
    nsym = sum(1 for l in symbols.splitlines() if l.startswith(" ") and "@Base" in l)
    expect(nsym > 100, f"libmimalloc-numa0's symbols file lists {nsym} symbols")
    expect(" mi_malloc@Base " in symbols and " malloc@Base " in symbols, "symbols: no mi_malloc or malloc")
    expect(ctl["libmimalloc-numa0"].get("shlibs", "").startswith("libmimalloc-numa 0 libmimalloc-numa0"),
           f"libmimalloc-numa0's shlibs file: {ctl['libmimalloc-numa0'].get('shlibs')!r}")
    for p in D.PACKAGES:
        conff = ctl[p].get("conffiles", "").split()
        want = ["/etc/mimalloc-numa.toml"] if p == "mimalloc-numa-tools" else []
        expect(conff == want, f"{p}: conffiles {conff}, expected {want}")
    tools = ctl["mimalloc-numa-tools"]
    for script in ["postinst", "prerm", "postrm"]:
        expect(script in tools, f"mimalloc-numa-tools has no {script}")
    started = re.findall(r"deb-systemd-invoke\s+(?:start|restart|try-restart)\b.*|systemctl\s+(?:start|restart)\b.*",
                         tools["postinst"])
    expect(not started, f"the postinst starts or restarts a unit: {started}")
    log(f"control: symbols file ({nsym} symbols), shlibs; conffile /etc/mimalloc-numa.toml; "
        "postinst, prerm, postrm; the postinst starts nothing")


def cmd_contents(a):
    debs = D.built_debs(a.source, a.build)
    version = deb_version(a.source)
    expect(version.split("-")[0] == a.version,
           f"packaging/debian/changelog is at {version}, the project (meson.build) at {a.version}")
    check_fields(debs, version)
    check_files(debs, a.version)
    check_control(debs)
    with Scratch("deb") as tmp:
        root = os.path.join(tmp, "root")
        os.makedirs(root)
        for p in D.PACKAGES:
            run(["dpkg", "-x", debs.debs[p], root], quiet=True)
        check_library_elf(root, D.fields(debs.debs["libmimalloc-numa0"]).get("Depends"))
        ma = host("DEB_HOST_MULTIARCH")
        layout = Layout("/usr", f"/usr/lib/{ma}", "/usr/include", "/usr/bin", "/usr/sbin", "/usr/share",
                        "/usr/share/man", "/etc", compressed_man=True, config_name="mimalloc-numa.toml")
        check_layout(root, layout)
        # The unit where Debian 12's systemd looks (pkg-config systemd).
        rc, unitdir, _ = run(["pkg-config", "--variable=systemdsystemunitdir", "systemd"], check=False, quiet=True)
        if rc == 0 and unitdir.strip():
            expect(find_units(root) == [os.path.join(unitdir.strip(), "mi-reserve.service")],
                   f"mi-reserve.service at {find_units(root)}, not in {unitdir.strip()}")
        check_shipped_config(root, layout)
        work = os.path.join(tmp, "work")
        os.makedirs(work)
        check_tree_works(root, layout, a.version, a.consumer, work)
        try:
            verify_units(root, layout)
        except Skip as s:
            log(f"(units not verified: {s})")


def lintian(args):
    """lintian's tags: [(letter, package, tag, rest)], and its exit status."""
    p = subprocess.run(["lintian"] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       env=dict(os.environ, LC_ALL="C.UTF-8"))
    tags = []
    for line in p.stdout.splitlines():
        m = re.match(r"^([EWIPXON]): (\S+?)(?: \w+)?: (\S+)(.*)$", line)
        if m:
            tags.append(m.groups())
    return p.returncode, tags, p.stdout + p.stderr


def cmd_lintian(a):
    if shutil.which("lintian") is None:
        raise Skip("lintian not found (Debian: lintian; tools/dev installs it); the packages are not checked")
    debs = D.built_debs(a.source, a.build)
    changes = debs.changes[0]
    args = ["--fail-on", "error,warning", "--display-info", "--pedantic", "--display-experimental"]
    log(f"$ lintian {' '.join(args)} {changes}")
    rc, tags, out = lintian(args + [changes])
    log(out.rstrip())
    bad = [t for t in tags if t[0] in "EW"]
    expect(not bad and rc == 0, f"lintian: exit {rc}, errors or warnings:\n" +
           "\n".join(f"{t[0]}: {t[1]}: {t[2]}{t[3]}" for t in bad))
    unexpected = sorted({t[2] for t in tags} - LINTIAN_EXPECTED)
    if unexpected:
        log(f"(info, pedantic or experimental tags not listed in LINTIAN_EXPECTED: {', '.join(unexpected)})")
    # The control: lintian run the same way reports a library package without
    # its copyright file.
    with Scratch("lintian-control") as tmp:
        tree = os.path.join(tmp, "lib")
        run(["dpkg-deb", "-R", debs.debs["libmimalloc-numa0"], tree], quiet=True)
        os.remove(os.path.join(tree, "usr", "share", "doc", "libmimalloc-numa0", "copyright"))
        broken = os.path.join(tmp, os.path.basename(debs.debs["libmimalloc-numa0"]))
        run(["dpkg-deb", "--root-owner-group", "-b", tree, broken], quiet=True)
        rc2, tags2, out2 = lintian(args + [broken])
        expect(rc2 != 0 and any(t[0] == "E" and t[2] == "no-copyright-file" for t in tags2),
               f"the control failed: lintian did not report the missing copyright file (exit {rc2}):\n{out2}")
    log(f"lintian: no error, no warning over {os.path.basename(changes)} "
        f"({', '.join(sorted(debs.debs))}); {len(tags)} info/pedantic/experimental tags; "
        f"control: a copy without copyright gets E: no-copyright-file")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("contents")
    p.add_argument("--source", required=True)
    p.add_argument("--build", required=True)
    p.add_argument("--version", required=True)
    p.add_argument("--consumer", required=True)
    p = sub.add_parser("lintian")
    p.add_argument("--source", required=True)
    p.add_argument("--build", required=True)
    a = ap.parse_args()
    a.source = os.path.abspath(a.source)
    return run_test({"contents": cmd_contents, "lintian": cmd_lintian}[a.cmd], a)


if __name__ == "__main__":
    sys.exit(main())
