#!/usr/bin/env python3
"""Tests of mi-enable (tools/mi-enable), suite 'tools'.

usage: mi_enable_test.py MI_ENABLE LIBMIMALLOC_NUMA_SO GROUP...

GROUP is a test class below or Class.test_name. Exit status: 0 passed,
1 failed, 77 every test skipped (meson's "skipped").

  Files       --root DIR: a scratch tree with unit files, PostgreSQL clusters
              and MariaDB's configuration directory written by the test (no
              server needed): what each SERVICE gets, byte for byte; marks;
              a second run changes nothing; --status; --off and --off --all
              give back the operator's files as they were; the operator's own
              LD_PRELOAD, malloc-lib or file at our path is refused, untouched.
  Usage       exit status 2 and a message for each kind of bad command line.
  Bindings    programs built here against Debian's libjemalloc2: one that
              calls mallocx/dallocx (blocks would cross) is refused, one that
              only queries (mallctl, nallocx) is enabled with a note, a static
              one is refused (LD_PRELOAD cannot reach it).
  Systemd     a fake systemctl on PATH (MI_ENABLE_SYSTEMD=1) and a fake
              cgroup tree (MI_ENABLE_CGROUP_ROOT) holding real processes
              started here with and without the library: the commands issued
              (daemon-reload, try-restart), --check's table and exit status
              for the unit's cgroup and the cgroups below it, v2 and hybrid.
  PostgreSQL  root and PostgreSQL: a scratch cluster (pg_createcluster, a
              private port and socket directory, removed after), mi-enable
              postgresql@V-C, started by pg_ctlcluster exactly as
              postgresql@.service does (emptied environment), two psql
              sessions held open: --check exits 0 and lists the postmaster and
              both backends with the library; --off --now restarts it on glibc
              (--check exits 1: the control); --now restarts it on the
              allocator again.
  MariaDB     root and MariaDB: mi-enable mariadb on the real /etc (its two
              files removed after), a scratch server started by mysqld_safe
              (which reads /etc/mysql/mariadb.conf.d/ and preloads the
              library), queries, --check; --off and a restart: glibc (control).
  Redis       Redis: the drop-in mi-enable writes for Debian's unit (root
              copy of it), a scratch redis-server with its environment (as the
              redis user when root): redis-benchmark, 3000 SET/GET verified,
              DEBUG RELOAD, DEBUG POPULATE, MEMORY commands; INFO memory shows
              jemalloc's query functions answering about jemalloc (allocator_*
              stays small while used_memory grows); --check.

The real-server groups skip (77) with the reason where the server or root is
missing. They leave nothing: clusters dropped, files removed, processes ended
by their pid.
"""

import glob
import os
import pwd
import stat
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

MI_ENABLE = None
LIB = None
MARK = "# Written by mi-enable (mimalloc-numa)"
LINE_MARK = "# mi-enable (mimalloc-numa)"
# mi-enable turns the live statistics on (mi-stat reads them) unless --no-stats
STATS_LINE = f"MIMALLOC_STATS_PUBLISH = '1'  {LINE_MARK}\n"


def clean_env(extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MIMALLOC_", "MI_ENABLE_", "LD_"))}
    env["LC_ALL"] = "C.UTF-8"
    if extra:
        env.update(extra)
    return env


def run(args, env=None, timeout=120, check=False, user=None, **kw):
    if user is not None:
        args = ["runuser", "-u", user, "--"] + list(args)
    p = subprocess.run(args, env=env if env is not None else clean_env(), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"{args} exited {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return p


def enable(*args, env=None, timeout=120):
    return run(["bash", MI_ENABLE] + list(args), env=env, timeout=timeout)


def write(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def read(path):
    with open(path) as f:
        return f.read()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def maps_has_lib(pid):
    try:
        return "libmimalloc-numa.so" in read(f"/proc/{pid}/maps")
    except OSError:
        return False


def check_rows(out):
    """The rows of --check's tables: [(pid, mapped, program, command)]."""
    rows = []
    for line in out.splitlines():
        m = re.match(r"^\s*(\d+)  (\S+)\s+(\S+)\s+(.*)$", line)
        if m:
            rows.append((int(m.group(1)), m.group(2), m.group(3), m.group(4)))
    return rows


def debian_units():
    """Unit files like Debian 12's (trimmed to what mi-enable reads)."""
    return {
        "postgresql@.service": (
            "[Unit]\nDescription=PostgreSQL Cluster %i\n\n[Service]\nType=forking\n"
            "ExecStart=-/usr/bin/pg_ctlcluster --skip-systemctl-redirect %i start\n"
            "PIDFile=/run/postgresql/%i.pid\n"),
        "mariadb.service": (
            "[Unit]\nDescription=MariaDB\n\n[Service]\nType=notify\n"
            "ExecStart=/bin/sh -c \"exec /usr/sbin/mariadbd $MYSQLD_OPTS\"\n"),
        "redis-server.service": (
            "[Unit]\nDescription=Advanced key-value store\n\n[Service]\nType=notify\n"
            "ExecStart=/usr/bin/redis-server /etc/redis/redis.conf --supervised systemd --daemonize no\n"
            "SystemCallFilter=@system-service\nSystemCallFilter=~ @privileged @resources\n"
            "[Install]\nAlias=redis.service\n"),
        "foo.service": "[Unit]\nDescription=foo\n\n[Service]\nExecStart=/bin/sleep 1000\n",
        "filtered.service": ("[Unit]\nDescription=filtered\n\n[Service]\nExecStart=/bin/sleep 1000\n"
                             "SystemCallFilter=@system-service\n"),
    }


PG_ENV = ("# environment variables for postgres processes\n"
          "# (the operator's own file)\nTZ = 'Europe/Paris'\n")


class TmpTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="mi-enable-test.")
        os.chmod(self.tmp, 0o755)
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def path(self, *p):
        return os.path.join(self.tmp, *p)


class Files(TmpTest):
    def setUp(self):
        super().setUp()
        self.root = self.path("root")
        for name, text in debian_units().items():
            write(os.path.join(self.root, "lib/systemd/system", name), text)
        os.makedirs(os.path.join(self.root, "etc/systemd/system"))
        os.symlink("/lib/systemd/system/redis-server.service",
                   os.path.join(self.root, "etc/systemd/system/redis.service"))
        for v, c in [("15", "main"), ("15", "reports")]:
            d = os.path.join(self.root, "etc/postgresql", v, c)
            write(os.path.join(d, "postgresql.conf"), f"data_directory = '/var/lib/postgresql/{v}/{c}'\n")
            write(os.path.join(d, "environment"), PG_ENV)
            write(os.path.join(d, "start.conf"), "auto\n")
        os.makedirs(os.path.join(self.root, "etc/postgresql-common"))
        write(os.path.join(self.root, "etc/mysql/mariadb.conf.d/50-mysqld_safe.cnf"), "[mysqld_safe]\nnice = 0\n")

    def r(self, p):
        return os.path.join(self.root, p.lstrip("/"))

    def en(self, *args):
        return enable("--root", self.root, "--lib", LIB, *args)

    def snapshot(self):
        files = {}
        for d, _, names in os.walk(self.root):
            for n in names:
                p = os.path.join(d, n)
                if not os.path.islink(p):
                    files[os.path.relpath(p, self.root)] = (read(p), os.stat(p).st_mtime_ns)
        return files

    def test_postgresql_every_cluster(self):
        p = self.en("postgresql")
        self.assertEqual(p.returncode, 0, p.stderr)
        dropin = read(self.r("/etc/systemd/system/postgresql@.service.d/mimalloc-numa.conf"))
        self.assertTrue(dropin.startswith(MARK), dropin)
        self.assertIn("Wants=mi-reserve.service\nAfter=mi-reserve.service\n", dropin)
        # pg_ctlcluster empties the environment: the library is not named in the unit.
        self.assertNotIn("\nEnvironment=", dropin)
        line = f"LD_PRELOAD = '{LIB}'  {LINE_MARK}\n{STATS_LINE}"
        for c in ["main", "reports"]:
            self.assertEqual(read(self.r(f"/etc/postgresql/15/{c}/environment")), PG_ENV + line)
        common = read(self.r("/etc/postgresql-common/environment"))
        self.assertTrue(common.endswith(line) and common.splitlines()[0].endswith(LINE_MARK), common)
        # Again: nothing written.
        before = self.snapshot()
        p = self.en("postgresql")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn("wrote", p.stdout)
        self.assertEqual(self.snapshot(), before)
        st = enable("--root", self.root, "--status")
        self.assertEqual(st.returncode, 0)
        for s in ["postgresql@.service", "postgresql@15-main.service", "postgresql@15-reports.service",
                  "/etc/postgresql/15/main/environment:4", "/etc/postgresql-common/environment"]:
            self.assertIn(s, st.stdout)
        p = self.en("--off", "postgresql")
        self.assertEqual(p.returncode, 0, p.stderr)
        for c in ["main", "reports"]:
            self.assertEqual(read(self.r(f"/etc/postgresql/15/{c}/environment")), PG_ENV)
        self.assertFalse(os.path.exists(self.r("/etc/postgresql-common/environment")))
        self.assertFalse(os.path.exists(self.r("/etc/systemd/system/postgresql@.service.d")))
        self.assertIn("nothing enabled", enable("--root", self.root, "--status").stdout)

    def test_postgresql_one_cluster_and_config(self):
        write(self.r("/etc/db.toml"), "[options]\n")
        p = self.en("--config", "/etc/db.toml", "postgresql@15-reports")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(os.path.exists(self.r("/etc/systemd/system/postgresql@15-reports.service.d/mimalloc-numa.conf")))
        self.assertEqual(read(self.r("/etc/postgresql/15/reports/environment")),
                         PG_ENV + f"LD_PRELOAD = '{LIB}'  {LINE_MARK}\n{STATS_LINE}MIMALLOC_CONFIG = '/etc/db.toml'  {LINE_MARK}\n")
        self.assertEqual(read(self.r("/etc/postgresql/15/main/environment")), PG_ENV)
        self.assertFalse(os.path.exists(self.r("/etc/postgresql-common/environment")))
        # Without --config now: the MIMALLOC_CONFIG line goes.
        p = self.en("postgresql@15-reports.service")
        self.assertEqual(read(self.r("/etc/postgresql/15/reports/environment")),
                         PG_ENV + f"LD_PRELOAD = '{LIB}'  {LINE_MARK}\n{STATS_LINE}")
        p = self.en("postgresql@15-nosuch")
        self.assertEqual(p.returncode, 1)
        self.assertIn("no cluster 15/nosuch", p.stderr)
        p = self.en("--off", "postgresql@15-reports")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(read(self.r("/etc/postgresql/15/reports/environment")), PG_ENV)
        self.assertFalse(os.path.exists(self.r("/etc/systemd/system/postgresql@15-reports.service.d")))

    def test_postgresql_new_cluster_gets_it_and_off_all(self):
        self.assertEqual(self.en("postgresql").returncode, 0)
        # pg_createcluster copies /etc/postgresql-common/environment into a new cluster.
        d = self.r("/etc/postgresql/16/new")
        write(os.path.join(d, "postgresql.conf"), "port = 5433\n")
        shutil.copyfile(self.r("/etc/postgresql-common/environment"), os.path.join(d, "environment"))
        self.assertIn("postgresql@16-new.service", enable("--root", self.root, "--status").stdout)
        p = enable("--root", self.root, "--off", "--all")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn(LINE_MARK, read(os.path.join(d, "environment")))
        self.assertTrue(os.path.exists(os.path.join(d, "environment")))   # the cluster's own file stays
        self.assertIn("nothing enabled", enable("--root", self.root, "--status").stdout)

    def test_postgresql_stats_publish(self):
        # on by default; --no-stats leaves it out (and takes out ours from before);
        # an operator's own MIMALLOC_STATS_PUBLISH line wins and is kept
        env = self.r("/etc/postgresql/15/main/environment")
        self.assertEqual(self.en("postgresql@15-main").returncode, 0)
        self.assertIn(STATS_LINE, read(env))
        p = self.en("--no-stats", "postgresql@15-main")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(read(env), PG_ENV + f"LD_PRELOAD = '{LIB}'  {LINE_MARK}\n")
        self.assertEqual(self.en("--off", "postgresql@15-main").returncode, 0)
        write(env, PG_ENV + "MIMALLOC_STATS_PUBLISH = '0'\n")
        self.assertEqual(self.en("postgresql@15-main").returncode, 0)
        self.assertEqual(read(env), PG_ENV + f"MIMALLOC_STATS_PUBLISH = '0'\nLD_PRELOAD = '{LIB}'  {LINE_MARK}\n")
        self.assertEqual(self.en("--off", "postgresql@15-main").returncode, 0)
        self.assertEqual(read(env), PG_ENV + "MIMALLOC_STATS_PUBLISH = '0'\n")

    def test_dropin_stats_publish(self):
        self.assertEqual(self.en("mariadb").returncode, 0)
        dropin = read(self.r("/etc/systemd/system/mariadb.service.d/mimalloc-numa.conf"))
        self.assertIn("\nEnvironment=MIMALLOC_STATS_PUBLISH=1\nReadWritePaths=-/run/mimalloc-numa\n", dropin)
        self.assertEqual(self.en("--no-stats", "mariadb").returncode, 0)
        dropin = read(self.r("/etc/systemd/system/mariadb.service.d/mimalloc-numa.conf"))
        self.assertNotIn("MIMALLOC_STATS_PUBLISH", dropin)
        self.assertNotIn("ReadWritePaths", dropin)

    def test_operator_common_environment_kept(self):
        write(self.r("/etc/postgresql-common/environment"), "PGTZ = 'UTC'\n")
        self.assertEqual(self.en("postgresql").returncode, 0)
        self.assertEqual(read(self.r("/etc/postgresql-common/environment")),
                         f"PGTZ = 'UTC'\nLD_PRELOAD = '{LIB}'  {LINE_MARK}\n{STATS_LINE}")
        self.assertEqual(self.en("--off", "postgresql").returncode, 0)
        self.assertEqual(read(self.r("/etc/postgresql-common/environment")), "PGTZ = 'UTC'\n")

    def test_operator_ld_preload_refused(self):
        env = self.r("/etc/postgresql/15/main/environment")
        write(env, PG_ENV + "LD_PRELOAD = '/usr/lib/libother.so'\n")
        p = self.en("postgresql@15-main")
        self.assertEqual(p.returncode, 1)
        self.assertIn("/etc/postgresql/15/main/environment:4: sets LD_PRELOAD", p.stderr)
        self.assertEqual(read(env), PG_ENV + "LD_PRELOAD = '/usr/lib/libother.so'\n")
        # In a unit's drop-in of the operator's: refused, nothing written.
        write(self.r("/etc/systemd/system/foo.service.d/env.conf"), "[Service]\nEnvironment=LD_PRELOAD=/x.so\n")
        p = self.en("foo")
        self.assertEqual(p.returncode, 1)
        self.assertIn("env.conf:2: sets LD_PRELOAD already", p.stderr)
        self.assertFalse(os.path.exists(self.r("/etc/systemd/system/foo.service.d/mimalloc-numa.conf")))

    def test_operator_file_at_our_path(self):
        mine = "[Service]\nEnvironment=LD_PRELOAD=/opt/my.so\n"
        path = self.r("/etc/systemd/system/mariadb.service.d/mimalloc-numa.conf")
        write(path, mine)
        p = self.en("mariadb")
        self.assertEqual(p.returncode, 1)
        self.assertIn("was not written by mi-enable", p.stderr)
        self.assertEqual(read(path), mine)
        p = self.en("--off", "mariadb")
        self.assertEqual(p.returncode, 0)
        self.assertEqual(read(path), mine)
        p = enable("--root", self.root, "--off", "--all")
        self.assertEqual(read(path), mine)

    def test_mariadb(self):
        p = self.en("mysql")   # an alias of mariadb
        self.assertEqual(p.returncode, 0, p.stderr)
        dropin = read(self.r("/etc/systemd/system/mariadb.service.d/mimalloc-numa.conf"))
        self.assertTrue(dropin.startswith(MARK))
        self.assertIn(f"\n[Service]\nEnvironment=LD_PRELOAD={LIB}\n", dropin)
        self.assertNotIn("SystemCallFilter", dropin)
        cnf = read(self.r("/etc/mysql/mariadb.conf.d/90-mimalloc-numa.cnf"))
        self.assertTrue(cnf.startswith(MARK))
        self.assertTrue(cnf.endswith(f"[mysqld_safe]\nmalloc-lib = {LIB}\n"), cnf)
        self.assertEqual(self.en("--off", "mariadb").returncode, 0)
        self.assertFalse(os.path.exists(self.r("/etc/mysql/mariadb.conf.d/90-mimalloc-numa.cnf")))
        self.assertFalse(os.path.exists(self.r("/etc/systemd/system/mariadb.service.d")))
        self.assertEqual(read(self.r("/etc/mysql/mariadb.conf.d/50-mysqld_safe.cnf")), "[mysqld_safe]\nnice = 0\n")
        # The operator's malloc-lib: refused.
        write(self.r("/etc/mysql/mariadb.conf.d/50-mysqld_safe.cnf"), "[mysqld_safe]\nmalloc-lib = jemalloc\n")
        p = self.en("mariadb")
        self.assertEqual(p.returncode, 1)
        self.assertIn("50-mysqld_safe.cnf:2: sets mysqld_safe's malloc-lib", p.stderr)
        self.assertFalse(os.path.exists(self.r("/etc/mysql/mariadb.conf.d/90-mimalloc-numa.cnf")))

    def test_redis_and_units(self):
        p = self.en("redis.service")   # the alias: the drop-in goes to the unit's own name
        self.assertEqual(p.returncode, 0, p.stderr)
        dropin = read(self.r("/etc/systemd/system/redis-server.service.d/mimalloc-numa.conf"))
        self.assertIn(f"Environment=LD_PRELOAD={LIB}\n", dropin)
        # Debian's unit denies @resources, where mbind is.
        self.assertIn("\nSystemCallFilter=mbind\n", dropin)
        self.assertFalse(os.path.exists(self.r("/etc/systemd/system/redis.service.d")))
        self.assertEqual(self.en("foo", "filtered.service").returncode, 0)
        foo = read(self.r("/etc/systemd/system/foo.service.d/mimalloc-numa.conf"))
        self.assertIn(f"Environment=LD_PRELOAD={LIB}\n", foo)
        self.assertNotIn("SystemCallFilter", foo)   # an allow-list of mbind alone would kill the service
        self.assertIn("SystemCallFilter=mbind", read(self.r("/etc/systemd/system/filtered.service.d/mimalloc-numa.conf")))
        # --print-dropin prints what is written.
        self.assertEqual(enable("--root", self.root, "--lib", LIB, "--print-dropin", "foo.service").stdout, foo)
        for bad, msg in [("nosuch", "nosuch.service: no such unit"), ("foo.socket", "not a service unit"),
                         ("foo@.service", "a template")]:
            p = self.en(bad)
            self.assertEqual(p.returncode, 1, bad)
            self.assertIn(msg, p.stderr)
        p = enable("--root", self.root, "--off", "--all")
        self.assertEqual(p.returncode, 0)
        self.assertEqual(sorted(os.listdir(self.r("/etc/systemd/system"))), ["redis.service"])

    def test_off_all_on_a_bare_host(self):
        bare = self.path("bare")
        os.makedirs(bare)
        p = enable("--root", bare, "--off", "--all")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("nothing of mi-enable's", p.stdout)
        self.assertEqual(os.listdir(bare), [])
        self.assertEqual(enable("--root", bare, "--off", "--now", "postgresql", "mariadb").returncode, 0)
        p = enable("--root", bare, "--lib", LIB, "postgresql")
        self.assertEqual(p.returncode, 1)
        self.assertIn("PostgreSQL is not installed", p.stderr)


class Usage(TmpTest):
    def test_usage_errors(self):
        for args, msg in [([], "no service given"), (["--off"], "no service given"),
                          (["--status", "redis"], "--status takes no service"),
                          (["--frobnicate", "redis"], "unknown option"),
                          (["--config", "rel.toml", "redis"], "absolute path"),
                          (["--config", "/nonexistent/x.toml", "redis"], "no such file"),
                          (["--lib", "rel.so", "redis"], "absolute path"),
                          (["--check", "--now", "redis"], "takes no --now"),
                          (["--off", "--all", "redis"], "takes no service"),
                          (["--all", "redis"], "--all goes with --off"),
                          (["--check", "--off", "redis"], "cannot be combined")]:
            p = enable(*args)
            self.assertEqual(p.returncode, 2, f"{args}: {p.stderr}")
            self.assertIn(msg, p.stderr, args)
        p = enable("--version")
        self.assertEqual(p.returncode, 0)
        self.assertRegex(p.stdout, r"^mi-enable \(mimalloc-numa\) \d+\.\d+")
        p = enable("--help")
        self.assertEqual(p.returncode, 0)
        self.assertIn("--check", p.stdout)


def jemalloc_path():
    for d in ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib"]:
        p = os.path.join(d, "libjemalloc.so.2")
        if os.path.exists(p):
            return p
    return None


class Bindings(TmpTest):
    def setUp(self):
        super().setUp()
        self.je = jemalloc_path()
        if shutil.which("cc") is None or self.je is None:
            self.skipTest("needs cc and libjemalloc.so.2 (Debian: gcc libjemalloc2)")
        self.root = self.path("root")

    def build(self, name, source, extra=()):
        src = self.path(name + ".c")
        write(src, source)
        exe = self.path(name)
        run(["cc", "-O1", "-o", exe, src] + list(extra), check=True)
        write(os.path.join(self.root, "lib/systemd/system", name + ".service"),
              f"[Service]\nExecStart=-{exe} --serve\n")
        return exe

    def test_crossing_refused(self):
        self.build("crossing", "#include <stddef.h>\nvoid *mallocx(size_t, int); void dallocx(void *, int);\n"
                   "int main(void) { void *p = mallocx(64, 0); dallocx(p, 0); return 0; }\n", [self.je])
        p = enable("--root", self.root, "--lib", LIB, "crossing")
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("dallocx", p.stderr)
        self.assertIn("mallocx", p.stderr)
        self.assertIn("libjemalloc.so.2", p.stderr)
        self.assertIn("would pass between the two allocators", p.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.root, "etc")))

    def test_query_only_enabled_with_a_note(self):
        self.build("query", "#include <stdlib.h>\n#include <stddef.h>\n"
                   "int mallctl(const char *, void *, size_t *, void *, size_t); size_t nallocx(size_t, int);\n"
                   "int main(void) { size_t n = nallocx(100, 0); void *p = malloc(n); free(p);\n"
                   "  return mallctl(\"epoch\", NULL, NULL, NULL, 0); }\n", [self.je])
        p = enable("--root", self.root, "--lib", LIB, "query")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stderr, r"also links libjemalloc\.so\.2: its memory goes through malloc and free")
        self.assertRegex(p.stderr, r"(mallctl nallocx|nallocx mallctl) still answer from libjemalloc\.so\.2")
        self.assertTrue(os.path.exists(os.path.join(self.root, "etc/systemd/system/query.service.d/mimalloc-numa.conf")))

    def test_static_refused(self):
        try:
            self.build("static", "#include <stdlib.h>\nint main(void) { free(malloc(8)); return 0; }\n", ["-static"])
        except AssertionError:
            self.skipTest("cc -static does not link here (no libc.a)")
        p = enable("--root", self.root, "--lib", LIB, "static")
        self.assertEqual(p.returncode, 1)
        self.assertIn("not dynamically linked", p.stderr)


FAKE_SYSTEMCTL = r"""#!/bin/bash
# A fake systemctl: logs its arguments, answers show/is-active from $FAKE_DIR.
printf '%s\n' "$*" >>"$FAKE_DIR/log"
case $1 in
  show)
    unit=${!#}
    if [[ -f $FAKE_DIR/show/$unit ]]; then cat "$FAKE_DIR/show/$unit"; else printf 'Id=%s\nLoadState=not-found\n' "$unit"; fi ;;
  is-active) unit=${!#}; [[ -e $FAKE_DIR/active/$unit ]] ;;
  daemon-reload | try-restart) exit 0 ;;
  *) exit 1 ;;
esac
"""


class Systemd(TmpTest):
    def setUp(self):
        super().setUp()
        self.root = self.path("root")
        self.fake = self.path("fake")
        for d in ["bin", "show", "active"]:
            os.makedirs(os.path.join(self.fake, d))
        write(os.path.join(self.fake, "bin/systemctl"), FAKE_SYSTEMCTL, 0o755)
        frag = os.path.join(self.root, "lib/systemd/system/foo.service")
        write(frag, "[Service]\nExecStart=/bin/sleep 1000\n")
        self.show("foo.service", frag, "/system.slice/foo.service")
        self.cg = self.path("cgroup")
        self.env = clean_env({"PATH": os.path.join(self.fake, "bin") + ":" + os.environ["PATH"],
                              "FAKE_DIR": self.fake, "MI_ENABLE_SYSTEMD": "1", "MI_ENABLE_CGROUP_ROOT": self.cg})
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            p.kill()
            p.wait()

    def show(self, unit, frag, cgroup):
        write(os.path.join(self.fake, "show", unit),
              f"Id={unit}\nLoadState=loaded\nActiveState=active\nFragmentPath={frag}\nDropInPaths=\n"
              f"ControlGroup={cgroup}\n")

    def sleeper(self, preload):
        env = clean_env({"LD_PRELOAD": LIB} if preload else None)
        p = subprocess.Popen(["sleep", "300"], env=env)
        self.procs.append(p)
        for _ in range(100):   # until exec has mapped what it maps
            try:
                if read(f"/proc/{p.pid}/comm").strip() == "sleep":
                    break
            except OSError:
                pass
            time.sleep(0.02)
        return p.pid

    def place(self, rel, pids):
        write(os.path.join(self.cg, rel.lstrip("/"), "cgroup.procs"), "".join(f"{p}\n" for p in pids))

    def log(self):
        try:
            return read(os.path.join(self.fake, "log")).splitlines()
        except FileNotFoundError:
            return []

    def test_commands_issued(self):
        open(os.path.join(self.fake, "active", "foo.service"), "w").close()
        p = enable("--root", self.root, "--lib", LIB, "foo", env=self.env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("daemon-reload", self.log())
        self.assertFalse([l for l in self.log() if l.startswith("try-restart")])
        self.assertIn("foo.service is running: restart it to apply this (systemctl restart foo)", p.stdout)
        os.remove(os.path.join(self.fake, "log"))
        p = enable("--root", self.root, "--lib", LIB, "--now", "foo", env=self.env)   # unchanged: nothing to do
        self.assertNotIn("daemon-reload", self.log())
        p = enable("--root", self.root, "--off", "--now", "foo", env=self.env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("daemon-reload", self.log())
        self.assertIn("try-restart -- foo.service", self.log())
        self.assertIn("restarted foo.service", p.stdout)
        # A unit that does not run is not restarted.
        os.remove(os.path.join(self.fake, "active", "foo.service"))
        os.remove(os.path.join(self.fake, "log"))
        p = enable("--root", self.root, "--lib", LIB, "--now", "foo", env=self.env)
        self.assertEqual(self.log().count("daemon-reload"), 1)
        self.assertFalse([l for l in self.log() if l.startswith("try-restart")])

    def test_check_cgroup(self):
        on, off = self.sleeper(True), self.sleeper(False)
        self.assertTrue(maps_has_lib(on))
        self.assertFalse(maps_has_lib(off))
        self.place("/system.slice/foo.service", [on])
        self.place("/system.slice/foo.service/worker", [off])   # a cgroup below the unit's
        p = enable("--check", "foo", env=self.env)
        self.assertEqual(p.returncode, 1, p.stdout)
        rows = {r[0]: r for r in check_rows(p.stdout)}
        self.assertEqual(set(rows), {on, off})
        self.assertEqual(rows[on][1], "yes")
        self.assertEqual(rows[off][1], "NO")
        self.assertIn("foo.service: 2 processes, 1 without libmimalloc-numa (cgroup of foo.service)", p.stdout)
        self.place("/system.slice/foo.service/worker", [self.sleeper(True)])
        p = enable("--check", "foo", env=self.env)
        self.assertEqual(p.returncode, 0, p.stdout)
        self.assertIn("foo.service: 2 processes, all with libmimalloc-numa mapped", p.stdout)
        self.assertIn(f"library: {os.path.realpath(LIB)}", p.stdout)

    def test_check_hybrid_and_not_running(self):
        on = self.sleeper(True)
        self.place("/unified/system.slice/foo.service", [on])
        p = enable("--check", "foo.service", env=self.env)
        self.assertEqual(p.returncode, 0, p.stdout)
        self.assertEqual([r[0] for r in check_rows(p.stdout)], [on])
        # Without a service: the services mi-enable enabled.
        p = enable("--root", self.root, "--check", env=self.env)
        self.assertEqual(p.returncode, 1)
        self.assertIn("nothing enabled by mi-enable to check", p.stdout)
        self.assertEqual(enable("--root", self.root, "--lib", LIB, "foo", env=self.env).returncode, 0)
        p = enable("--root", self.root, "--check", env=self.env)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual([r[0] for r in check_rows(p.stdout)], [on])
        self.show("foo.service", "", "")
        p = enable("--check", "foo.service", env=self.env)
        self.assertEqual(p.returncode, 1)
        self.assertIn("foo.service: not running", p.stdout)
        p = enable("--check", "nosuch", env=self.env)
        self.assertEqual(p.returncode, 1)


def pg_bindir():
    best = None
    for d in sorted(os.listdir("/usr/lib/postgresql")) if os.path.isdir("/usr/lib/postgresql") else []:
        if d.isdigit() and os.path.exists(f"/usr/lib/postgresql/{d}/bin/postgres"):
            if best is None or int(d) > int(best):
                best = d
    return best


class RealServer(TmpTest):
    """A scratch directory the servers' users can read, with a copy of the library."""

    def setUp(self):
        super().setUp()
        if os.geteuid() != 0:
            self.skipTest("needs root (the server's own start path, its user, /etc)")
        self.lib = self.path("libmimalloc-numa.so.0")
        shutil.copyfile(os.path.realpath(LIB), self.lib)
        os.chmod(self.lib, 0o644)

    def log_output(self, title, text):
        print(f"\n---- {title}\n{text}", flush=True)


class PostgreSQL(RealServer):
    def setUp(self):
        super().setUp()
        self.version = pg_bindir()
        for tool in ["pg_createcluster", "pg_ctlcluster", "pg_dropcluster", "psql", "runuser"]:
            if shutil.which(tool) is None:
                self.skipTest(f"{tool} not found (Debian: postgresql, postgresql-common)")
        if self.version is None:
            self.skipTest("no PostgreSQL server in /usr/lib/postgresql")
        self.cluster = f"mienable{os.getpid()}"
        self.unit = f"postgresql@{self.version}-{self.cluster}"
        self.port = free_port()
        self.sock = self.path("sock")
        os.makedirs(self.sock)
        shutil.chown(self.sock, "postgres")
        self.sessions = []
        run(["pg_createcluster", self.version, self.cluster, "-p", str(self.port), "--socketdir", self.sock,
             "--start-conf", "manual", "--", "--no-sync", "-A", "trust"], check=True, timeout=300)
        self.addCleanup(self.drop)
        self.env_file = f"/etc/postgresql/{self.version}/{self.cluster}/environment"
        self.env_before = read(self.env_file)

    def drop(self):
        for s in self.sessions:
            s.kill()
            s.wait()
        run(["pg_ctlcluster", "--skip-systemctl-redirect", self.version, self.cluster, "stop", "-m", "immediate"])
        # an immediate stop ends the backends with _exit: their statistics files stay (the next
        # publisher of the user would remove them); remove those whose process is gone
        for f in glob.glob("/run/mimalloc-numa/*.stats"):
            if not os.path.exists("/proc/" + os.path.basename(f).split("-")[0]):
                os.unlink(f)
        enable("--off", self.unit)
        run(["pg_dropcluster", self.version, self.cluster], timeout=300)
        shutil.rmtree(f"/etc/systemd/system/{self.unit}.service.d", True)

    def start(self):
        # As postgresql@.service does: ExecStart=pg_ctlcluster --skip-systemctl-redirect %i start, with
        # systemd's clean environment.
        run(["env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "pg_ctlcluster",
             "--skip-systemctl-redirect", self.version, self.cluster, "start"], env={}, check=True, timeout=300)

    def psql(self, sql):
        return run(["psql", "-X", "-q", "-A", "-t", "-h", self.sock, "-p", str(self.port), "-U", "postgres",
                    "-d", "postgres", "-c", sql], user="postgres", check=True).stdout.strip()

    def hold_sessions(self, n):
        for _ in range(n):
            self.sessions.append(subprocess.Popen(
                ["runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-h", self.sock, "-p", str(self.port),
                 "-U", "postgres", "-d", "postgres"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, env=clean_env()))
        for _ in range(200):
            held = self.psql("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
                             "AND pid <> pg_backend_pid()")
            if int(held) >= n:
                return
            time.sleep(0.1)
        self.fail(f"{n} psql sessions did not connect")

    def postmaster(self):
        data = f"/var/lib/postgresql/{self.version}/{self.cluster}"
        return int(read(os.path.join(data, "postmaster.pid")).splitlines()[0])

    def test_postgresql_through_pg_ctlcluster(self):
        p = enable("--lib", self.lib, self.unit)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(read(self.env_file), self.env_before + f"LD_PRELOAD = '{self.lib}'  {LINE_MARK}\n{STATS_LINE}")
        self.start()
        self.hold_sessions(2)
        p = enable("--check", self.unit)
        self.log_output(f"mi-enable --check {self.unit} (2 psql sessions held open)", p.stdout + p.stderr)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        rows = check_rows(p.stdout)
        pm = self.postmaster()
        self.assertIn(pm, [r[0] for r in rows])
        backends = [r for r in rows if "[local]" in r[3]]
        self.assertEqual(len(backends), 2, p.stdout)
        self.assertTrue(all(r[1] == "yes" and r[2] == "postgres" for r in rows), p.stdout)
        self.assertGreaterEqual(len(rows), 5)   # postmaster, checkpointer, writers, launchers, backends
        for r in rows:
            self.assertTrue(maps_has_lib(r[0]), r)
        self.assertIn(f"{len(rows)} processes, all with libmimalloc-numa mapped (postmaster {pm} and its children)",
                      p.stdout)
        self.assertEqual(self.psql("SELECT sum(g) FROM generate_series(1, 100000) g"), "5000050000")
        # The live statistics (mi-enable turned stats_publish on): the postmaster and each
        # backend publish their own file in /run/mimalloc-numa, as the server's user, 0600.
        published = {}
        for _ in range(50):
            published = {int(os.path.basename(f).split("-")[0]): f for f in glob.glob("/run/mimalloc-numa/*.stats")}
            if pm in published and all(int(r[0]) in published for r in backends):
                break
            time.sleep(0.1)
        for pid in [pm] + [int(r[0]) for r in backends]:
            self.assertIn(pid, published, f"no statistics file of {pid} in /run/mimalloc-numa: {sorted(published)}")
            st = os.stat(published[pid])
            self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode)), (pwd.getpwnam("postgres").pw_uid, 0o600),
                             published[pid])

        # Off, restarted by mi-enable (pg_ctlcluster without systemd): glibc's malloc (the control).
        p = enable("--off", "--now", self.unit)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(f"restarted {self.unit}.service", p.stdout)
        self.assertEqual(read(self.env_file), self.env_before)
        self.assertFalse(os.path.exists(f"/etc/systemd/system/{self.unit}.service.d"))
        p = enable("--check", self.unit)
        self.assertEqual(p.returncode, 1, p.stdout)
        rows = check_rows(p.stdout)
        self.assertTrue(rows and all(r[1] == "NO" for r in rows), p.stdout)
        self.assertFalse(maps_has_lib(self.postmaster()))

        # On again with --now.
        p = enable("--now", "--lib", self.lib, self.unit)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(f"restarted {self.unit}.service", p.stdout)
        p = enable("--check", self.unit)
        self.assertEqual(p.returncode, 0, p.stdout)
        self.assertTrue(maps_has_lib(self.postmaster()))


class MariaDB(RealServer):
    CNF = "/etc/mysql/mariadb.conf.d/90-mimalloc-numa.cnf"
    DROPIN = "/etc/systemd/system/mariadb.service.d/mimalloc-numa.conf"

    def setUp(self):
        super().setUp()
        for tool in ["mysqld_safe", "mariadb-install-db", "mariadb", "mariadb-admin"]:
            if shutil.which(tool) is None:
                self.skipTest(f"{tool} not found (Debian: mariadb-server, mariadb-client)")
        if not os.path.isdir("/etc/mysql/mariadb.conf.d"):
            self.skipTest("no /etc/mysql/mariadb.conf.d")
        for f in [self.CNF, self.DROPIN]:
            if os.path.exists(f):
                self.skipTest(f"{f} exists already: this test will not touch it")
        if run(["pgrep", "-x", "mariadbd"]).returncode == 0:
            self.skipTest("a mariadbd runs on this host: --check (by process name, without systemd) would see it")
        self.sock = self.path("mysqld.sock")
        self.data = self.path("data")
        self.pidfile = self.path("mariadbd.pid")
        self.errlog = self.path("error.log")
        write(self.path("my.cnf"),
              f"[mysqld]\ndatadir = {self.data}\nsocket = {self.sock}\npid-file = {self.pidfile}\n"
              f"skip-networking\nlog-error = {self.errlog}\ninnodb_buffer_pool_size = 32M\n"
              f"[mysqld_safe]\nskip-syslog\nlog-error = {self.errlog}\npid-file = {self.pidfile}\n")
        os.makedirs(self.data)
        shutil.chown(self.data, "mysql", "mysql")
        shutil.chown(self.tmp, "mysql", "mysql")
        self.safe = None
        self.addCleanup(self.cleanup)
        run(["mariadb-install-db", "--no-defaults", f"--datadir={self.data}", "--user=mysql",
             "--skip-test-db", "--auth-root-authentication-method=socket"], check=True, timeout=300)

    def cleanup(self):
        self.stop()
        enable("--off", "mariadb")
        for f in [self.CNF, self.DROPIN]:
            if os.path.exists(f) and MARK in read(f):
                os.remove(f)

    def start(self):
        # mysqld_safe reads /etc/mysql/my.cnf (and so mariadb.conf.d/), then this file.
        with open(self.path("mysqld_safe.out"), "w") as out:
            self.safe = subprocess.Popen(["mysqld_safe", f"--defaults-extra-file={self.path('my.cnf')}"],
                                         stdout=out, stderr=subprocess.STDOUT, env=clean_env(),
                                         start_new_session=True)
        for _ in range(600):
            if os.path.exists(self.sock) and run(["mariadb-admin", "-S", self.sock, "-u", "root", "ping"]).returncode == 0:
                return
            if self.safe.poll() is not None:
                break
            time.sleep(0.1)
        self.fail("MariaDB did not start:\n" + (read(self.errlog) if os.path.exists(self.errlog) else ""))

    def stop(self):
        if self.safe is None:
            return
        run(["mariadb-admin", "-S", self.sock, "-u", "root", "shutdown"], timeout=120)
        try:
            self.safe.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.safe.pid, signal.SIGKILL)
            self.safe.wait()
        if os.path.exists(self.pidfile):   # mariadbd outlived mysqld_safe
            try:
                os.kill(int(read(self.pidfile).strip()), signal.SIGKILL)
            except (OSError, ValueError):
                pass
        self.safe = None

    def sql(self, q):
        return run(["mariadb", "-S", self.sock, "-u", "root", "-N", "-B", "-e", q], check=True).stdout.strip()

    def server_pid(self):
        return int(read(self.pidfile).strip())

    def test_mariadb_through_mysqld_safe(self):
        p = enable("--lib", self.lib, "mariadb")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(f"malloc-lib = {self.lib}", read(self.CNF))
        self.start()
        # mysqld_safe says so before its log is set up, on its output.
        self.assertIn(f"Adding '{self.lib}' to LD_PRELOAD for mysqld", read(self.path("mysqld_safe.out")))
        self.sql("CREATE DATABASE mi; USE mi; CREATE TABLE mi.t (id INT PRIMARY KEY, v VARCHAR(200)) ENGINE=InnoDB; "
                 "INSERT INTO mi.t SELECT seq, REPEAT(MD5(seq), 1 + seq % 5) FROM seq_1_to_20000;")
        self.assertEqual(self.sql("SELECT COUNT(*), SUM(id), SUM(LENGTH(v)) FROM mi.t"),
                         f"20000\t{20000 * 20001 // 2}\t{sum(32 * (1 + i % 5) for i in range(1, 20001))}")
        p = enable("--check", "mariadb")
        self.log_output("mi-enable --check mariadb (mysqld_safe, no systemd)", p.stdout + p.stderr)
        self.assertEqual(p.returncode, 0, p.stdout)
        self.assertEqual([r[0] for r in check_rows(p.stdout)], [self.server_pid()])
        self.assertTrue(maps_has_lib(self.server_pid()))
        self.stop()

        # The control: off, started again the same way: glibc.
        p = enable("--off", "mariadb")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertFalse(os.path.exists(self.CNF) or os.path.exists(self.DROPIN))
        self.start()
        p = enable("--check", "mariadb")
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertEqual([r[1] for r in check_rows(p.stdout)], ["NO"])
        self.assertFalse(maps_has_lib(self.server_pid()))
        self.stop()
        p = enable("--check", "mariadb")
        self.assertEqual(p.returncode, 1)
        self.assertIn("not running", p.stdout)


class Redis(TmpTest):
    UNIT = "/lib/systemd/system/redis-server.service"

    def setUp(self):
        super().setUp()
        for tool in ["redis-server", "redis-cli", "redis-benchmark"]:
            if shutil.which(tool) is None:
                self.skipTest(f"{tool} not found (Debian: redis-server, redis-tools)")
        if not os.path.exists(self.UNIT):
            self.skipTest(f"{self.UNIT} not found")
        if run(["pgrep", "-x", "redis-server"]).returncode == 0:
            self.skipTest("a redis-server runs on this host: --check (by process name, without systemd) would see it")
        self.lib = self.path("libmimalloc-numa.so.0")
        shutil.copyfile(os.path.realpath(LIB), self.lib)
        os.chmod(self.lib, 0o644)
        self.user = "redis" if os.geteuid() == 0 and run(["id", "redis"]).returncode == 0 else None
        if self.user:
            shutil.chown(self.tmp, self.user)
        self.sock = self.path("redis.sock")
        write(self.path("redis.conf"), f"port 0\nunixsocket {self.sock}\nunixsocketperm 777\ndir {self.tmp}\n"
              "save \"\"\nappendonly no\ndaemonize no\nenable-debug-command yes\n")
        self.server = None
        self.addCleanup(self.stop)

    def stop(self):
        if self.server is not None and self.server.poll() is None:
            self.server.kill()
            self.server.wait()

    def cli(self, *args, stdin=None):
        return run(["redis-cli", "-s", self.sock] + list(args), input=stdin, check=True).stdout

    def test_redis_with_jemalloc_linked(self):
        root = self.path("root")
        write(os.path.join(root, "lib/systemd/system/redis-server.service"), read(self.UNIT))
        p = enable("--root", root, "--lib", self.lib, "redis")
        self.assertEqual(p.returncode, 0, p.stderr)
        linked = "libjemalloc" in run(["ldd", shutil.which("redis-server")]).stdout
        if linked:
            self.assertRegex(p.stderr, r"also links libjemalloc\.so\.2: its memory goes through malloc and free")
            for sym in ["mallctl", "nallocx", "malloc_stats_print"]:
                self.assertIn(sym, p.stderr)
        dropin = read(os.path.join(root, "etc/systemd/system/redis-server.service.d/mimalloc-numa.conf"))
        if "SystemCallFilter=~" in read(self.UNIT).replace(" ", ""):
            self.assertIn("\nSystemCallFilter=mbind\n", dropin)
        env = clean_env()
        for line in dropin.splitlines():
            if line.startswith("Environment="):
                k, v = line[len("Environment="):].split("=", 1)
                env[k] = v
        self.assertEqual(env.get("LD_PRELOAD"), self.lib)

        # The server as the unit starts it (its user, the drop-in's environment), on a scratch configuration.
        cmd = ["redis-server", self.path("redis.conf")]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--"] + cmd
        self.server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            if os.path.exists(self.sock) and run(["redis-cli", "-s", self.sock, "ping"]).stdout.strip() == "PONG":
                break
            time.sleep(0.05)
        else:
            self.fail("redis-server did not start")
        pid = int(self.cli("info", "server").split("process_id:")[1].split()[0])
        self.assertTrue(maps_has_lib(pid))

        bench = run(["redis-benchmark", "-s", self.sock, "-q", "-n", "5000", "-t", "set,get,lpush,lpop,incr,hset",
                     "-d", "64"], timeout=300)
        self.assertEqual(bench.returncode, 0, bench.stderr)
        self.assertEqual(len(re.findall(r"requests per second", bench.stdout)), 6, bench.stdout)
        self.cli("flushall")
        self.cli(stdin="".join(f"SET key:{i} {'v' * (i % 300)}{i}\n" for i in range(3000)))
        got = self.cli("mget", *[f"key:{i}" for i in range(3000)]).splitlines()
        self.assertEqual(got, [f"{'v' * (i % 300)}{i}" for i in range(3000)])
        self.assertEqual(self.cli("debug", "reload").strip(), "OK")
        self.assertEqual(self.cli("dbsize").strip(), "3000")
        self.assertEqual(self.cli("get", "key:2999").strip(), "v" * (2999 % 300) + "2999")
        self.assertEqual(self.cli("debug", "populate", "100000", "big", "200").strip(), "OK")
        self.assertGreater(int(self.cli("memory", "usage", "big:1")), 200)
        info = dict(l.split(":", 1) for l in self.cli("info", "memory").splitlines() if ":" in l)
        used = int(info["used_memory"])
        self.assertGreater(used, 20 << 20)   # 100000 values of 200 bytes, counted by malloc_usable_size (ours)
        if linked:
            # jemalloc's mallctl answers about jemalloc, which holds none of that memory.
            self.assertTrue(info["mem_allocator"].startswith("jemalloc"))
            self.assertLess(int(info["allocator_allocated"]), used // 10, info)
            self.assertIn("jemalloc", self.cli("memory", "malloc-stats"))
        self.assertEqual(self.cli("memory", "purge").strip(), "OK")
        p = enable("--check", "redis")
        print("\n---- mi-enable --check redis (no systemd)\n" + p.stdout, flush=True)
        self.assertEqual(p.returncode, 0, p.stdout)
        self.assertEqual([r[0] for r in check_rows(p.stdout)], [pid])
        if linked:
            self.assertIn("also mapped: libjemalloc.so.2", p.stdout)
        self.cli("shutdown", "nosave")
        self.assertEqual(self.server.wait(timeout=60), 0)
        p = enable("--check", "redis")
        self.assertEqual(p.returncode, 1)


class Terminated(Exception):
    """SIGTERM (meson's timeout) or SIGINT as an error of the running test, so that its clean-ups run."""


def on_signal(signum, frame):
    raise Terminated(f"stopped by signal {signum}")


def main():
    global MI_ENABLE, LIB
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    args = sys.argv[1:]
    if len(args) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    MI_ENABLE = os.path.abspath(args[0])
    LIB = os.path.abspath(args[1])
    suite = unittest.defaultTestLoader.loadTestsFromNames(args[2:], sys.modules[__name__])
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    if not result.wasSuccessful():
        return 1
    if result.testsRun > 0 and len(result.skipped) == result.testsRun:
        return 77
    return 0


if __name__ == "__main__":
    sys.exit(main())
