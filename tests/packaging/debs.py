"""debs.py: the Debian packages of the tree, for the tests of tests/packaging.

built_debs(source, build) runs packaging/build-debs (the command README's
Install section gives) into <build>/packaging-debs/<tree id>/ and returns what
it made; the tests that run in one `meson test` (packaging-deb,
packaging-lintian, packaging-deb-scripts) share one build. The tree id is a
hash of the files build-debs copies (their paths, modes and contents), so the
packages are built again whenever the tree changes, and reused while it does
not; PACKAGING_DEBS_REBUILD=1 builds them again anyway. Packages of other tree
ids are removed. A lock file serialises the tests that want them.

Also: what a .deb says (fields, files, control files), read with dpkg-deb.
"""
import fcntl
import hashlib
import os
import shlex
import shutil
import subprocess
import tempfile

from packaging_test import Failure, Skip, expect, log, run

PACKAGES = ["libmimalloc-numa0", "libmimalloc-numa-dev", "mimalloc-numa-tools"]
SOURCE_PACKAGE = "mimalloc-numa"


def tree_files(source):
    """The files build-debs copies: those git knows of (tracked, or new and
    not ignored) in a git checkout, else all but .git and build*/; never
    debian/ or obj-* at the top."""
    files = None
    if shutil.which("git") and os.path.exists(os.path.join(source, ".git")):
        p = subprocess.run(["git", "-C", source, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        if p.returncode == 0:
            files = [f for f in p.stdout.decode().split("\0") if f]
    if files is None:
        files = []
        for dirpath, dirnames, filenames in os.walk(source):
            rel = os.path.relpath(dirpath, source)
            if rel == ".":
                dirnames[:] = [d for d in dirnames if d != ".git" and not d.startswith("build")]
            files += [os.path.normpath(os.path.join(rel, f)) for f in filenames]
    top = lambda f: f.split("/", 1)[0]
    return sorted(f for f in files
                  if top(f) not in ("debian", ".git") and not top(f).startswith("obj-")
                  and os.path.lexists(os.path.join(source, f)))


def tree_id(source):
    h = hashlib.sha256()
    for f in tree_files(source):
        path = os.path.join(source, f)
        h.update(f.encode() + b"\0")
        if os.path.islink(path):
            h.update(b"link\0" + os.readlink(path).encode())
        else:
            h.update(b"x\0" if os.access(path, os.X_OK) else b"-\0")
            with open(path, "rb") as fh:
                h.update(hashlib.sha256(fh.read()).digest())
    return h.hexdigest()[:16]


class Debs:
    """What build-debs made: .debs by package name, the .changes, the .buildinfo."""

    def __init__(self, paths):
        self.paths = paths
        self.dir = os.path.dirname(paths[0])
        self.debs = {}
        for p in paths:
            if p.endswith(".deb"):
                self.debs[os.path.basename(p).split("_", 1)[0]] = p
        self.changes = [p for p in paths if p.endswith(".changes")]
        self.buildinfo = [p for p in paths if p.endswith(".buildinfo")]


def require_build_tools():
    for prog, pkg in [("dpkg-buildpackage", "dpkg-dev"), ("dh", "debhelper"), ("dpkg-checkbuilddeps", "dpkg-dev"),
                      ("fakeroot", "fakeroot")]:
        if shutil.which(prog) is None:
            raise Skip(f"{prog} not found (Debian: {pkg}); the Debian packages are not built")


def built_debs(source, build):
    require_build_tools()
    build_debs = os.path.join(source, "packaging", "build-debs")
    cache = os.path.join(os.path.abspath(build), "packaging-debs")
    os.makedirs(cache, exist_ok=True)
    with open(os.path.join(cache, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        tid = tree_id(source)
        out_dir = os.path.join(cache, tid)
        listing = os.path.join(out_dir, "build-debs.out")
        if os.path.exists(listing) and os.environ.get("PACKAGING_DEBS_REBUILD") != "1":
            log(f"the packages of this tree (id {tid}) are built already: {out_dir}")
        else:
            for old in os.listdir(cache):
                if old != ".lock":
                    shutil.rmtree(os.path.join(cache, old), ignore_errors=True)
            log(f"$ {build_debs} {out_dir}")
            p = subprocess.run([build_debs, out_dir], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            log(p.stderr.rstrip())
            if p.returncode != 0:
                raise Failure(f"packaging/build-debs exited with {p.returncode}")
            with open(listing + ".tmp", "w") as f:
                f.write(p.stdout)
            os.rename(listing + ".tmp", listing)
        paths = [l for l in open(listing).read().splitlines() if l]
    missing = [p for p in paths if not os.path.exists(p)]
    expect(paths and not missing, f"build-debs listed files that are not there: {missing or paths}")
    return Debs(paths)


# ---------------------------------------------------------------------------
# Reading a .deb


def fields(deb):
    """The control fields of a .deb, as a dict."""
    _, out, _ = run(["dpkg-deb", "--field", deb], quiet=True)
    result, key = {}, None
    for line in out.splitlines():
        if line.startswith((" ", "\t")) and key:
            result[key] += "\n" + line.strip()
        elif ":" in line:
            key, value = line.split(":", 1)
            result[key] = value.strip()
    return result


def relations(value):
    """A Depends-style field as [(name, relation or '')], first alternative
    of each; architecture qualifiers dropped."""
    out = []
    for item in filter(None, (i.strip() for i in (value or "").split(","))):
        first = item.split("|")[0].strip()
        name, _, rel = first.partition("(")
        out.append((name.strip().split(":")[0], rel.rstrip(")").strip()))
    return out


def contents(deb):
    """{path: type} of a .deb's data (type: 'd', '-', 'l' as tar lists them)."""
    p = subprocess.run(f"dpkg-deb --fsys-tarfile {shlex.quote(deb)} | tar -tvf -", shell=True,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    expect(p.returncode == 0, f"cannot list {deb}: {p.stderr}")
    result = {}
    for line in p.stdout.splitlines():
        parts = line.split(None, 5)
        name = parts[5].split(" -> ", 1)[0]
        name = name[2:] if name.startswith("./") else name
        path = "/" + name.rstrip("/")
        result[path] = parts[0][0]
    return result


def control_files(deb):
    """{name: text} of a .deb's control files (postinst, conffiles, ...)."""
    with tempfile.TemporaryDirectory(prefix="mimalloc-numa-control-") as tmp:
        run(["dpkg-deb", "--control", deb, tmp], quiet=True)
        return {name: open(os.path.join(tmp, name), errors="replace").read() for name in os.listdir(tmp)}
