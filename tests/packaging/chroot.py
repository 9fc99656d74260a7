"""chroot.py: a Debian system in a directory, for deb_scripts_test.py.

base_tarball(build, packages) makes (once) a tarball of the host's Debian
release with mmdebstrap (variant apt: the essential packages and apt) and the
given packages (the runtime dependencies of ours, so that `apt install
./*.deb` inside needs no network), cached under <build>/packaging-chroot/
and keyed on the package list and BASE_RECIPE (change it to rebuild).
Tarballs of other keys are removed. It needs root, mmdebstrap and, the first
time, the network to deb.debian.org (Skip without).

Chroot(root).run(cmd) runs a command inside, as root, in a mount namespace
of its own (unshare --mount), where /proc is mounted and the host's /sys and
/dev are bound: the mounts go away with the command, whatever happens. /sys
is the host's kernel's: huge-page pools written inside are the host's.
snapshot(root) lists every path under the root but /proc, /sys and /dev.
"""
import fcntl
import hashlib
import os
import shutil
import subprocess
import urllib.request

from packaging_test import Failure, Skip, expect, log, run

BASE_RECIPE = "1"  # bump when base_tarball's mmdebstrap command changes
MIRROR = "http://deb.debian.org/debian"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def host_codename():
    for line in open("/etc/os-release"):
        if line.startswith("VERSION_CODENAME="):
            return line.split("=", 1)[1].strip().strip('"')
    raise Skip("/etc/os-release names no VERSION_CODENAME: not a Debian release the chroot can be made of")


def require_tools():
    if os.geteuid() != 0:
        raise Skip("not root: the chroot (mmdebstrap, chroot, mounts) needs root")
    for prog, pkg in [("mmdebstrap", "mmdebstrap"), ("unshare", "util-linux"), ("chroot", "coreutils")]:
        if shutil.which(prog) is None:
            raise Skip(f"{prog} not found (Debian: {pkg}; tools/dev installs it)")
    p = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        raise Skip(f"no mount namespace here (unshare --mount: {p.stdout.strip()}): the chroot cannot have its own "
                   f"/proc, /sys and /dev")


def mirror_reachable(codename):
    url = f"{MIRROR}/dists/{codename}/InRelease"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=20) as r:
            return r.status == 200
    except Exception as e:  # no network, no DNS, a proxy refusing: all mean "cannot make the chroot here"
        log(f"({url}: {e})")
        return False


def base_tarball(build, packages):
    require_tools()
    codename = host_codename()
    packages = sorted(set(packages))
    key = hashlib.sha256((BASE_RECIPE + codename + " ".join(packages)).encode()).hexdigest()[:12]
    cache = os.path.join(os.path.abspath(build), "packaging-chroot")
    os.makedirs(cache, exist_ok=True)
    tarball = os.path.join(cache, f"{codename}-{key}.tar")
    with open(os.path.join(cache, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(tarball):
            log(f"chroot base: {tarball} (cached)")
            return tarball
        if not mirror_reachable(codename):
            raise Skip(f"no network to {MIRROR}: the chroot's base system cannot be made (made once, it is "
                       f"cached in {cache})")
        for old in os.listdir(cache):
            if old.endswith(".tar"):
                os.remove(os.path.join(cache, old))
        cmd = ["mmdebstrap", "--mode=root", "--variant=apt", "--format=tar", "--quiet", "--include=" + ",".join(packages), codename,
               tarball + ".tmp"]
        log("$ " + " ".join(cmd))
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if p.returncode != 0:
            if os.path.exists(tarball + ".tmp"):
                os.remove(tarball + ".tmp")
            raise Failure(f"mmdebstrap exited with {p.returncode}:\n{p.stdout[-4000:]}")
        os.rename(tarball + ".tmp", tarball)
        log(f"chroot base: {tarball} (made)")
        return tarball


class Chroot:
    def __init__(self, root):
        self.root = root

    @staticmethod
    def extract(tarball, root):
        os.makedirs(root)
        run(["tar", "-C", root, "-xf", tarball], quiet=True)
        return Chroot(root)

    def path(self, p):
        return os.path.join(self.root, p.lstrip("/"))

    def run(self, cmd, check=True, env=None, quiet=False):
        """cmd inside, with a clean environment (PATH, LC_ALL, HOME,
        DEBIAN_FRONTEND and env). Returns (rc, stdout, stderr)."""
        setup = ('set -e; r="$1"; shift; mount -t proc proc "$r/proc"; mount --rbind /sys "$r/sys"; '
                 'mount --rbind /dev "$r/dev"; exec chroot "$r" "$@"')
        e = {"PATH": PATH, "LC_ALL": "C.UTF-8", "HOME": "/root", "DEBIAN_FRONTEND": "noninteractive"}
        e.update(env or {})
        if not quiet:
            log("(chroot)$ " + " ".join(cmd))
        p = subprocess.run(["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", setup, "sh",
                            self.root] + cmd, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if check and p.returncode != 0:
            raise Failure(f"(chroot) {' '.join(cmd)} exited with {p.returncode}\n--- stdout\n{p.stdout}"
                          f"--- stderr\n{p.stderr}")
        return p.returncode, p.stdout, p.stderr

    def apt(self, args, check=True):
        """apt-get ARGS inside; the output of the maintainer scripts is in it."""
        rc, out, err = self.run(["apt-get", "-o", "Dpkg::Use-Pty=0", "-o", "APT::Color=0"] + args, check=False)
        text = out + err
        if check and rc != 0:
            raise Failure(f"(chroot) apt-get {' '.join(args)} exited with {rc}:\n{text}")
        return rc, text

    def status(self, package):
        """dpkg's status of a package inside ('install ok installed',
        'deinstall ok config-files', or '' when dpkg does not know it)."""
        rc, out, _ = self.run(["dpkg-query", "-W", "-f", "${Status}", package], check=False, quiet=True)
        return out.strip() if rc == 0 else ""


def snapshot(root, exclude=()):
    """{path: type} of everything under root ('d', 'l', 'f'), paths absolute
    in the root's terms; /proc, /sys, /dev and the prefixes in exclude left out."""
    result = {}
    prefixes = ("/proc", "/sys", "/dev") + tuple(e.rstrip("/") for e in exclude)

    def skipped(p):
        return any(p == x or p.startswith(x + "/") for x in prefixes)

    for dirpath, dirnames, filenames in os.walk(root):
        rel = "/" + os.path.relpath(dirpath, root) if dirpath != root else "/"
        rel = os.path.normpath(rel)
        keep = []
        for d in dirnames:
            p = os.path.join(rel, d)
            if skipped(p):
                continue
            if os.path.islink(os.path.join(dirpath, d)):
                result[p] = "l"
            else:
                result[p] = "d"
                keep.append(d)
        dirnames[:] = keep
        for f in filenames:
            p = os.path.join(rel, f)
            if not skipped(p):
                result[p] = "l" if os.path.islink(os.path.join(dirpath, f)) else "f"
    return result


def diff(before, after):
    """(paths added, paths removed)."""
    return sorted(set(after) - set(before)), sorted(set(before) - set(after))
