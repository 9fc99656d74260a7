#!/usr/bin/env python3
"""tests/packaging/deb_scripts_test.py: the maintainer scripts, for real (suite 'packaging').

    deb_scripts_test.py --source S --build B

The packages (packaging/build-debs, through debs.py) are installed with apt in
a Debian chroot (chroot.py: the host's release made by mmdebstrap, cached),
and taken through what an operator does, twice:

  without systemd (a container, a chroot; the scripts' plain branch):
    apt install ./*.deb; mi-run --stats runs a program on the library; the
    unit is enabled, not started; mi-enable (when the package has it) puts a
    unit on the allocator; mi-reserve --per-node 2 --page-size 2M reserves
    2 MiB pages (the host kernel's pools: a chroot shares them); the
    operator edits /etc/mimalloc-numa.toml; an upgrade to a newer version
    (the same packages repacked as V+upgradetest1, the conffile changed)
    keeps the operator's file (the new one beside it as .dpkg-dist), the
    pages and mi-reserve's state; apt remove gives the pages back, removes
    mi-enable's files and /run/mi-reserve, names (and keeps) a drop-in of the
    operator's own that still preloads the library, and leaves the conffile
    and the unit's enablement (and a statistics file a server wrote in
    /var/log/mimalloc-numa) only; apt purge leaves nothing: every path of the
    chroot is as it was before the installation (apt's and dpkg's own
    records aside).
  with systemd as the scripts see it (/run/systemd/system there, a
    systemctl on PATH that records its calls and runs mi-reserve.service's
    ExecStop= on `stop`, as systemd does): install and upgrade neither start,
    stop nor restart mi-reserve.service (daemon-reload only); apt purge
    straight from installed stops the unit first (its ExecStop gives the
    pages back), the prerm's own mi-reserve --release then finds nothing to
    release, and nothing is left.
  A booted systemd is the debian-vm suite's (tests/debian-vm).

The pools are checked only where the kernel has 2 MiB pages (else said so);
whatever happens, the pages added here are given back. Needs root, mmdebstrap
and (the first time) the network to deb.debian.org: exit 77 with the reason
without them. Exit status: 0 pass, 1 fail, 77 skipped.
"""
import argparse
import glob
import os
import re
import shutil
import sys

from packaging_test import Failure, Scratch, Skip, expect, log, run, run_test
import chroot as C
import debs as D

WORK = "/root/mimalloc-numa-test"  # the test's own files inside the chroot
PAGES_PER_NODE = 2
OPERATOR_DROPIN = "/etc/systemd/system/operator-db.service.d/preload.conf"
POOL = "hugepages-2048kB"

# Paths apt, dpkg and ldconfig change on any installation: not ours.
BOOKKEEPING = ["/var/lib/dpkg", "/var/lib/apt", "/var/cache/apt", "/var/log/apt", "/var/log/dpkg.log",
               "/var/cache/debconf", "/var/cache/ldconfig", "/etc/ld.so.cache", WORK]
# What `apt remove` leaves by design: the conffile (and the new version's,
# after the upgrade) and the unit's enablement, which purge removes.
# The statistics files a server wrote (stats_file) stay too, as logs do.
LEFT_BY_REMOVE = ["/etc/mimalloc-numa.toml", "/etc/mimalloc-numa.toml.dpkg-dist",
                  "/etc/systemd/system/multi-user.target.wants", "/var/lib/systemd/deb-systemd-helper-enabled",
                  "/var/log/mimalloc-numa"]
STATS_FILE = "/var/log/mimalloc-numa/4242.txt"

FAKE_SYSTEMCTL = f"""#!/bin/sh
# systemctl as a booted systemd answers the maintainer scripts
# (tests/packaging/deb_scripts_test.py): every call recorded; `stop
# mi-reserve.service` runs the unit's ExecStop= first, as systemd does;
# `preset` (deb-systemd-helper's first enable) links the unit into its
# WantedBy= targets, as Debian's default preset (enable) does.
echo "systemctl $*" >>{WORK}/systemctl.log
for last; do :; done
for unit in /lib/systemd/system/$last /usr/lib/systemd/system/$last; do
  [ -f "$unit" ] && break
done
case " $* " in
  *" stop "*mi-reserve.service*)
    cmd=$(sed -n 's/^ExecStop=//p' "$unit")
    echo "ExecStop=$cmd" >>{WORK}/systemctl.log
    $cmd >>{WORK}/systemctl.log 2>&1 || echo "ExecStop failed: exit $?" >>{WORK}/systemctl.log
    echo "2 MiB pages after ExecStop: $(cat /sys/devices/system/node/node*/hugepages/{POOL}/nr_hugepages 2>/dev/null |
      awk '{{ n += $1 }} END {{ print n + 0 }}')" >>{WORK}/systemctl.log
    ;;
  *" preset "*)
    for target in $(sed -n 's/^WantedBy=//p' "$unit"); do
      mkdir -p "/etc/systemd/system/$target.wants"
      ln -sf "$unit" "/etc/systemd/system/$target.wants/$last"
    done
    ;;
esac
exit 0
"""


# ---------------------------------------------------------------------------
# The host's 2 MiB pools (a chroot shares them)


def pool_files():
    return sorted(glob.glob(f"/sys/devices/system/node/node[0-9]*/hugepages/{POOL}/nr_hugepages"))


def pools():
    """{node: nr_hugepages of 2 MiB}, or None where the kernel has no such pools."""
    files = pool_files()
    if not files:
        return None
    return {int(re.search(r"node(\d+)", f).group(1)): int(open(f).read()) for f in files}


class PoolGuard:
    """Gives back, at the end, whatever the test added to the pools and did
    not give back (a failure halfway), never more than it added."""

    def __init__(self):
        self.start = pools()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        now = pools()
        if self.start is None or now is None:
            return False
        for node, count in now.items():
            extra = count - self.start.get(node, 0)
            if extra > 0:
                path = f"/sys/devices/system/node/node{node}/hugepages/{POOL}/nr_hugepages"
                log(f"(giving back {extra} page(s) of 2 MiB on node {node} the test left: {path})")
                try:
                    with open(path, "w") as f:
                        f.write(str(count - min(extra, PAGES_PER_NODE)))
                except OSError as e:
                    log(f"(could not: {e})")
        return False


# ---------------------------------------------------------------------------
# The packages, and a newer version of them


def repack_newer(debs, tmp):
    """The packages as version V+upgradetest1, /etc/mimalloc-numa.toml changed:
    an upgrade as dpkg sees one (the maintainer scripts are the same)."""
    out = os.path.join(tmp, "v2")
    os.makedirs(out)
    result = {}
    for p in D.PACKAGES:
        deb = debs.debs[p]
        old = D.fields(deb)["Version"]
        new = old + "+upgradetest1"
        tree = os.path.join(tmp, "tree-" + p)
        run(["dpkg-deb", "-R", deb, tree], quiet=True)
        control = os.path.join(tree, "DEBIAN", "control")
        text = open(control).read()
        text = text.replace(f"Version: {old}\n", f"Version: {new}\n").replace(f"(= {old})", f"(= {new})")
        open(control, "w").write(text)
        conffile = os.path.join(tree, "etc", "mimalloc-numa.toml")
        if os.path.exists(conffile):
            with open(conffile, "a") as f:
                f.write("# (a line the newer version adds: deb_scripts_test.py)\n")
        result[p] = os.path.join(out, f"{p}_{new}.deb")
        run(["dpkg-deb", "--root-owner-group", "-b", tree, result[p]], quiet=True)
        shutil.rmtree(tree)
    return result, new


def runtime_dependencies(debs):
    """The packages ours depend on (first alternatives), for the chroot's base."""
    names = set()
    for p in D.PACKAGES:
        f = D.fields(debs.debs[p])
        for field in ["Depends", "Pre-Depends"]:
            names |= {n for n, _ in D.relations(f.get(field))}
    return sorted(names - set(D.PACKAGES))


# ---------------------------------------------------------------------------
# One operator's story


class Story:
    def __init__(self, name, ch, debs, v2, v2_version, systemd):
        self.name, self.ch, self.debs, self.v2, self.v2_version, self.systemd = name, ch, debs, v2, v2_version, systemd
        self.log_seen = 0

    def say(self, msg):
        log(f"[{self.name}] {msg}")

    def systemctl_calls(self):
        """The calls the fake systemctl recorded since the last look."""
        path = self.ch.path(f"{WORK}/systemctl.log")
        lines = open(path).read().splitlines() if os.path.exists(path) else []
        new, self.log_seen = lines[self.log_seen:], len(lines)
        return new

    def expect_no_unit_action(self, when):
        if not self.systemd:
            return
        calls = [c for c in self.systemctl_calls() if c.startswith("systemctl ")]
        acting = [c for c in calls if re.search(r"\b(start|stop|restart|try-restart|reload-or-restart)\b", c)]
        expect(not acting, f"{when}: the maintainer scripts acted on units: {acting}")
        expect(any("daemon-reload" in c for c in calls), f"{when}: no systemctl daemon-reload: {calls}")
        self.say(f"{when}: systemctl {'; '.join(sorted(set(c[len('systemctl '):] for c in calls)))} (no start, "
                 f"stop or restart)")

    def expect_quiet_scripts(self, text, when, allowed=()):
        bad = [l for l in text.splitlines()
               if re.search(r"mimalloc-numa-tools: warning|libmimalloc-numa0: warning|called with unknown argument|"
                            r"dpkg: error|dpkg: warning|subprocess .* returned error", l) and l not in allowed]
        expect(not bad, f"{when}: the maintainer scripts complained:\n" + "\n".join(bad) + f"\n--- apt:\n{text}")

    def install(self):
        files = [f"{WORK}/v1/{os.path.basename(self.debs.debs[p])}" for p in D.PACKAGES]
        _, text = self.ch.apt(["install", "-y", "--no-install-recommends"] + files)
        self.expect_quiet_scripts(text, "apt install")
        for p in D.PACKAGES:
            expect(self.ch.status(p) == "install ok installed", f"{p} after apt install: {self.ch.status(p)!r}")
        link = self.ch.path("/etc/systemd/system/multi-user.target.wants/mi-reserve.service")
        expect(os.path.islink(link) and os.readlink(link).endswith("/systemd/system/mi-reserve.service"),
               "apt install did not enable mi-reserve.service (multi-user.target.wants)")
        expect(os.path.isfile(self.ch.path("/etc/mimalloc-numa.toml")), "no /etc/mimalloc-numa.toml")
        self.say(f"apt install: {', '.join(D.PACKAGES)} installed; mi-reserve.service enabled "
                 f"({os.readlink(link)})")
        self.expect_no_unit_action("apt install")
        _, out, err = self.ch.run(["mi-run", "--stats", "--", "/bin/true"])
        expect(re.search(r"mimalloc-numa \S+ statistics", err), f"mi-run --stats -- /bin/true: no statistics:\n{err}")
        self.say("mi-run --stats -- /bin/true: runs on the installed library")
        # A statistics file, where mimalloc-numa.toml(5) suggests stats_file.
        os.makedirs(os.path.dirname(self.ch.path(STATS_FILE)), exist_ok=True)
        with open(self.ch.path(STATS_FILE), "w") as f:
            f.write("4242: mimalloc-numa statistics (deb_scripts_test.py)\n")

    def enable_a_unit(self):
        """mi-enable on a unit of the chroot (when the package has mi-enable):
        returns the paths it wrote."""
        if not os.path.exists(self.ch.path("/usr/sbin/mi-enable")):
            self.say("(the package has no mi-enable: its undoing on removal is not checked)")
            return []
        before = C.snapshot(self.ch.root, BOOKKEEPING)
        self.ch.run(["mi-enable", "mimalloc-numa-test.service"])
        added, removed = C.diff(before, C.snapshot(self.ch.root, BOOKKEEPING))
        expect(added and not removed, f"mi-enable mimalloc-numa-test.service wrote {added}, removed {removed}")
        self.say(f"mi-enable mimalloc-numa-test.service wrote {', '.join(added)}")
        return added

    def reserve(self):
        start = pools()
        if start is None:
            self.say("(the kernel has no 2 MiB pages: the pages are not checked)")
            return None
        if not all(os.access(f, os.W_OK) for f in pool_files()):
            self.say("(the 2 MiB pools are read-only here: the pages are not checked)")
            return None
        rc, out, err = self.ch.run(["mi-reserve", "--per-node", str(PAGES_PER_NODE), "--page-size", "2M"], check=False)
        expect(rc in (0, 3), f"mi-reserve --per-node {PAGES_PER_NODE} --page-size 2M: exit {rc}\n{out}{err}")
        now = pools()
        added = {n: now[n] - start[n] for n in now}
        expect(all(v >= 0 for v in added.values()) and sum(added.values()) > 0,
               f"mi-reserve reserved nothing (exit {rc}): pools {start} -> {now}\n{out}{err}")
        expect(os.path.isfile(self.ch.path("/run/mi-reserve/state")), "mi-reserve left no /run/mi-reserve/state")
        self.say(f"mi-reserve --per-node {PAGES_PER_NODE} --page-size 2M: 2 MiB pools {start} -> {now}")
        return start

    def upgrade(self, reserved_from):
        conffile = self.ch.path("/etc/mimalloc-numa.toml")
        with open(conffile, "a") as f:
            f.write("# the operator's own line\n")
        pools_before = pools()
        files = [f"{WORK}/v2/{os.path.basename(self.v2[p])}" for p in D.PACKAGES]
        _, text = self.ch.apt(["install", "-y", "--no-install-recommends", "-o", "Dpkg::Options::=--force-confdef",
                               "-o", "Dpkg::Options::=--force-confold"] + files)
        self.expect_quiet_scripts(text, "the upgrade")
        for p in D.PACKAGES:
            rc, out, _ = self.ch.run(["dpkg-query", "-W", "-f", "${Version} ${Status}", p], quiet=True)
            expect(out == f"{self.v2_version} install ok installed", f"{p} after the upgrade: {out}")
        expect("# the operator's own line" in open(conffile).read(), "the upgrade replaced the operator's conffile")
        dist = conffile + ".dpkg-dist"
        expect(os.path.isfile(dist) and "a line the newer version adds" in open(dist).read(),
               "the upgrade did not put the new conffile beside the operator's (.dpkg-dist)")
        if reserved_from is not None:
            expect(pools() == pools_before, f"the upgrade changed the pools: {pools_before} -> {pools()}")
            expect(os.path.isfile(self.ch.path("/run/mi-reserve/state")), "the upgrade removed mi-reserve's state")
        self.say(f"upgrade to {self.v2_version}: the operator's conffile kept (the new one as .dpkg-dist)"
                 + ("; the pages and mi-reserve's state kept" if reserved_from is not None else ""))
        self.expect_no_unit_action("the upgrade")

    def expect_pages_back(self, reserved_from, when):
        if reserved_from is None:
            return
        expect(pools() == reserved_from, f"{when}: the 2 MiB pools are {pools()}, were {reserved_from} before "
                                         f"mi-reserve")
        self.say(f"{when}: the pages are back (2 MiB pools {pools()})")

    def remove(self, reserved_from, enabled_files, before):
        _, text = self.ch.apt(["remove", "-y"] + D.PACKAGES)
        # The library's prerm names the operator's own drop-in, which still
        # preloads it, and nothing of mi-enable's (undone before).
        warning = [l for l in text.splitlines() if l.startswith("libmimalloc-numa0: warning: ")]
        named = [l.strip() for l in text.splitlines() if l.startswith("  /")]
        expect(warning and named == [OPERATOR_DROPIN],
               f"apt remove: the library's prerm named {named}, expected {OPERATOR_DROPIN} alone:\n{text}")
        expect(os.path.isfile(self.ch.path(OPERATOR_DROPIN)), f"apt remove took the operator's {OPERATOR_DROPIN}")
        self.expect_quiet_scripts(text, "apt remove", allowed=warning)
        self.expect_pages_back(reserved_from, "apt remove")
        expect(not os.path.lexists(self.ch.path("/run/mi-reserve")), "apt remove left /run/mi-reserve")
        left = [f for f in enabled_files if os.path.lexists(self.ch.path(f))]
        expect(not left, f"apt remove left what mi-enable wrote: {left}")
        expect(self.ch.status("mimalloc-numa-tools") == "deinstall ok config-files",
               f"mimalloc-numa-tools after apt remove: {self.ch.status('mimalloc-numa-tools')!r}")
        added, removed = C.diff(before, C.snapshot(self.ch.root, BOOKKEEPING))
        stray = [p for p in added if not any(p == k or p.startswith(k + "/") for k in LEFT_BY_REMOVE)]
        expect(not stray and not removed, f"apt remove left {stray} and took away {removed}")
        self.say(f"apt remove: left {', '.join(added)} (conffile and enablement, for purge); named the "
                 f"operator's {OPERATOR_DROPIN}, which still preloads the library, and kept it")

    def purge(self, reserved_from, before, enabled_files, straight):
        # After a remove, apt knows only the packages dpkg still has (those
        # with conffiles: the tools), as an operator finds them.
        known = [p for p in D.PACKAGES if self.ch.status(p) not in ("", "unknown ok not-installed")]
        expect(known == (D.PACKAGES if straight else ["mimalloc-numa-tools"]), f"packages dpkg knows: {known}")
        _, text = self.ch.apt(["purge", "-y"] + known)
        self.expect_quiet_scripts(text, "apt purge")
        if straight:
            self.expect_pages_back(reserved_from, "apt purge")
            left = [f for f in enabled_files if os.path.lexists(self.ch.path(f))]
            expect(not left, f"apt purge left what mi-enable wrote: {left}")
        for p in D.PACKAGES:
            expect(self.ch.status(p) in ("", "unknown ok not-installed"), f"{p} after apt purge: {self.ch.status(p)!r}")
        info = [f for f in os.listdir(self.ch.path("/var/lib/dpkg/info"))
                if f.split(".")[0].split(":")[0] in D.PACKAGES]
        expect(not info, f"dpkg still has records of ours: {info}")
        added, removed = C.diff(before, C.snapshot(self.ch.root, BOOKKEEPING))
        expect(not added and not removed, f"apt purge left {added} and took away {removed}")
        self.say(f"apt purge {' '.join(known)}: every path of the chroot is as before the installation")
        return text

    def systemd_purge_order(self, reserved_from, text):
        """Under systemd: the unit was stopped (its ExecStop released the pages)
        before the prerm's own release, which found nothing."""
        calls = self.systemctl_calls()
        stops = [i for i, c in enumerate(calls) if c == "systemctl stop mi-reserve.service"]
        expect(len(stops) == 1, f"apt purge: mi-reserve.service not stopped once: {calls}")
        execstop = calls[stops[0] + 1] if stops[0] + 1 < len(calls) else ""
        expect(execstop.startswith("ExecStop=") and execstop.endswith("mi-reserve --release"),
               f"apt purge: after the stop: {execstop!r}")
        after_stop = "\n".join(calls[stops[0] + 2:])
        expect("ExecStop failed" not in after_stop, f"the unit's ExecStop failed:\n{after_stop}")
        if reserved_from is not None:
            counted = re.findall(r"^2 MiB pages after ExecStop: (\d+)$", after_stop, re.M)
            expect(counted == [str(sum(reserved_from.values()))],
                   f"the unit's ExecStop did not give the pages back (before mi-reserve: "
                   f"{sum(reserved_from.values())}):\n{after_stop}")
        expect("nothing to release" in text,
               f"apt purge: the prerm's mi-reserve --release after the stop found something to release:\n{text}")
        self.say("apt purge: systemctl stop mi-reserve.service (ExecStop gave the pages back), then the prerm's "
                 "mi-reserve --release: nothing to release")


def story(name, base, debs, v2, v2_version, systemd):
    with Scratch("chroot-" + name.replace(" ", "-")) as tmp:
        ch = C.Chroot.extract(base, os.path.join(tmp, "root"))
        for sub, paths in [("v1", [debs.debs[p] for p in D.PACKAGES]), ("v2", [v2[p] for p in D.PACKAGES])]:
            os.makedirs(ch.path(f"{WORK}/{sub}"))
            for p in paths:
                shutil.copy(p, ch.path(f"{WORK}/{sub}/"))
        if systemd:
            os.makedirs(ch.path("/run/systemd/system"), exist_ok=True)
            # Where systemd has it: apt runs dpkg with PATH=/usr/sbin:/usr/bin:/sbin:/bin (DPkg::Path).
            fake = ch.path("/usr/bin/systemctl")
            with open(fake, "w") as f:
                f.write(FAKE_SYSTEMCTL)
            os.chmod(fake, 0o755)
        else:
            # A unit for mi-enable to act on (a real server's unit in a real host).
            with open(ch.path("/etc/systemd/system/mimalloc-numa-test.service"), "w") as f:
                f.write("[Unit]\nDescription=a server (deb_scripts_test.py)\n\n[Service]\nExecStart=/bin/sleep 60\n")
            # A drop-in the operator wrote by hand (as README's of 0.1.0-1 said):
            # not mi-enable's, so not removed; the library's prerm names it.
            os.makedirs(os.path.dirname(ch.path(OPERATOR_DROPIN)))
            ma = run(["dpkg-architecture", "-qDEB_HOST_MULTIARCH"], quiet=True)[1].strip()
            with open(ch.path(OPERATOR_DROPIN), "w") as f:
                f.write(f"[Service]\nEnvironment=LD_PRELOAD=/usr/lib/{ma}/libmimalloc-numa.so.0\n")
        s = Story(name, ch, debs, v2, v2_version, systemd)
        before = C.snapshot(ch.root, BOOKKEEPING)
        with PoolGuard():
            s.install()
            enabled = [] if systemd else s.enable_a_unit()
            reserved_from = s.reserve()
            s.upgrade(reserved_from)
            if systemd:
                text = s.purge(reserved_from, before, enabled, straight=True)
                s.systemd_purge_order(reserved_from, text)
            else:
                s.remove(reserved_from, enabled, before)
                s.purge(reserved_from, before, enabled, straight=False)


def cmd(a):
    C.require_tools()
    debs = D.built_debs(a.source, a.build)
    base = C.base_tarball(a.build, runtime_dependencies(debs))
    with Scratch("deb-scripts") as tmp:
        v2, v2_version = repack_newer(debs, tmp)
        story("no systemd", base, debs, v2, v2_version, systemd=False)
        story("systemd", base, debs, v2, v2_version, systemd=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--source", required=True)
    ap.add_argument("--build", required=True)
    a = ap.parse_args()
    a.source = os.path.abspath(a.source)
    return run_test(cmd, a)


if __name__ == "__main__":
    sys.exit(main())
