"""Throw-away PostgreSQL clusters for lifeboat's integration tests.

Every cluster lives in a fresh temporary directory (data directory, Unix socket
directory, server log, WAL archive), listens only on 127.0.0.1 on a free port and is
initialized with --data-checksums. The Debian default cluster is never touched.

PostgreSQL refuses to run as root, so when the tests run as root (as in CI) every
server-side program runs as the `postgres` system user through `runuser -u postgres --`,
and every directory the server uses is owned by that user. Clients (psql, psycopg2,
lifeboat itself) may run as root: the clusters use `trust` authentication.

Cleanup is guaranteed three ways: `Cluster.cleanup()` (context managers, try/finally),
an atexit hook plus SIGTERM/SIGINT/SIGHUP handlers that stop every cluster of the
process, and a watchdog process in its own session that stops the clusters
(`pg_ctl stop -m immediate`) and removes the directories when this process dies
without cleaning up (SIGKILL, e.g. a CTest timeout).

Environment:
  LIFEBOAT_PG_BIN   directory of the PostgreSQL programs (default: newest
                    /usr/lib/postgresql/*/bin)
  LIFEBOAT_PG_KEEP  1: stop the clusters but keep their directories (for debugging)

Usage:
    from pgharness import Cluster, running_cluster
    with running_cluster(archive_command=True) as pg:      # archive into pg.archive_dir
        with pg.connect(autocommit=True) as conn: ...
        subprocess.run(["lifeboat", ...], env=pg.env(), check=True)
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as _dt
import glob
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time


def _ensure_psycopg2():
    """psycopg2 comes from Debian (python3-psycopg2) and is importable by /usr/bin/python3
    only. When an other interpreter (pyenv, venv) runs a script that imports this module,
    re-execute the script with the system interpreter instead of failing."""
    try:
        import psycopg2  # noqa: F401
        return
    except ImportError:
        pass
    system_python = "/usr/bin/python3"
    main = sys.modules.get("__main__")
    script = getattr(main, "__file__", None)
    if (os.environ.get("LIFEBOAT_PG_REEXEC") != "1" and script and os.path.isfile(script)
            and os.path.exists(system_python)
            and os.path.realpath(sys.executable) != os.path.realpath(system_python)):
        probe = subprocess.run([system_python, "-c", "import psycopg2"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if probe.returncode == 0:
            sys.stdout.flush()
            sys.stderr.flush()
            os.environ["LIFEBOAT_PG_REEXEC"] = "1"
            os.execv(system_python, [system_python, os.path.abspath(script)] + sys.argv[1:])
    raise ImportError("psycopg2 is missing: apt-get install python3-psycopg2 "
                      "(or run scripts/install-deps.sh), and run with /usr/bin/python3")


_ensure_psycopg2()
import psycopg2  # noqa: E402
import psycopg2.extensions  # noqa: E402

__all__ = [
    "PG_BIN", "Cluster", "ClusterError", "running_cluster", "start_cluster_from_datadir",
    "run_as_postgres", "make_tempdir", "remove_tempdir", "free_port", "write_recovery_config",
    "format_pg_timestamp", "cleanup_all",
]


class ClusterError(RuntimeError):
    pass


# --------------------------------------------------------------------------------------
# Programs, users, ports
# --------------------------------------------------------------------------------------

def _find_pg_bin() -> str:
    env = os.environ.get("LIFEBOAT_PG_BIN")
    if env:
        return env
    cands = [d for d in glob.glob("/usr/lib/postgresql/*/bin") if os.path.exists(os.path.join(d, "postgres"))]
    if cands:
        cands.sort(key=lambda d: int(re.sub(r"\D", "", d.split("/")[-2]) or 0))
        return cands[-1]
    found = shutil.which("pg_ctl")
    if found:
        return os.path.dirname(found)
    return "/usr/lib/postgresql/15/bin"


PG_BIN = _find_pg_bin()
PG_USER = "postgres"          # the OS user servers run as (when we are root) and the DB superuser
KEEP = os.environ.get("LIFEBOAT_PG_KEEP") == "1"


def pg_prog(name: str) -> str:
    return os.path.join(PG_BIN, name)


def _is_root() -> bool:
    return os.geteuid() == 0


def _pg_ids():
    pw = pwd.getpwnam(PG_USER)
    return pw.pw_uid, pw.pw_gid


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bind port 0, read, close).
    Another process may still take it before the server binds; Cluster.start() retries."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_as_postgres(cmd, env=None, check=True, capture=True, timeout=None, cwd=None, input=None):
    """Runs cmd (a list) as the postgres OS user (through runuser when we are root, directly
    otherwise). env: the complete environment (default: ours). Returns CompletedProcess with
    text stdout/stderr (when capture). Raises ClusterError with the output when check and
    the command fails."""
    cmd = [str(c) for c in cmd]
    full = (["runuser", "-u", PG_USER, "--"] + cmd) if _is_root() else cmd
    # The postgres user may not be allowed into our working directory (e.g. /root/...).
    cwd = cwd or "/"
    p = subprocess.run(full, env=env if env is not None else os.environ.copy(), cwd=cwd,
                       stdout=subprocess.PIPE if capture else None,
                       stderr=subprocess.STDOUT if capture else None,
                       stdin=subprocess.DEVNULL if input is None else None,
                       input=input, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise ClusterError(f"command failed (exit {p.returncode}): {shlex.join(cmd)}\n{p.stdout or ''}")
    return p


def _chown_postgres(path: str, recursive: bool = False):
    if not _is_root():
        return
    uid, gid = _pg_ids()
    os.chown(path, uid, gid)
    if recursive:
        for root, dirs, files in os.walk(path):
            for n in dirs + files:
                os.lchown(os.path.join(root, n), uid, gid)


def _postgres_can_enter(path: str) -> bool:
    if not _is_root():
        return os.access(path, os.X_OK)
    return run_as_postgres(["test", "-x", path], check=False).returncode == 0


def format_pg_timestamp(ts) -> str:
    """A timestamptz literal with full microsecond precision in UTC, e.g.
    '2026-11-24 20:40:01.123456+00' (the form recovery_target_time needs: a naive or
    truncated value would silently move the recovery target)."""
    if ts.tzinfo is None:
        raise ValueError("timestamp without time zone: %r" % (ts,))
    return ts.astimezone(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f+00")


# --------------------------------------------------------------------------------------
# Cleanup: registry, atexit, signals, watchdog process
# --------------------------------------------------------------------------------------

_lock = threading.RLock()
_clusters: list = []           # live Cluster objects
_tempdirs: list = []           # directories to remove at exit
_watchdog = None               # subprocess.Popen of the watchdog, stdin is our pipe to it
_handlers_installed = False

_WATCHDOG_SRC = r'''
import os, signal, shutil, subprocess, sys, time
for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(s, signal.SIG_IGN)
pg_ctl, root, keep = sys.argv[1], sys.argv[2] == "1", sys.argv[3] == "1"
pgs, dirs = [], []
for line in sys.stdin:
    op, _, arg = line.rstrip("\n").partition(" ")
    lst = pgs if op[1:] == "pg" else dirs
    if op[0] == "+":
        lst.append(arg)
    elif arg in lst:
        lst.remove(arg)
# EOF: our parent is gone. Whatever is still registered was not cleaned up by it.
for d in pgs:
    pidfile = os.path.join(d, "postmaster.pid")
    if not os.path.exists(pidfile):
        continue
    cmd = [pg_ctl, "stop", "-D", d, "-m", "immediate", "-w", "-t", "30"]
    if root:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    try:
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/", timeout=60)
    except Exception:
        pass
    try:
        with open(pidfile) as f:
            pid = int(f.readline())
        with open("/proc/%d/comm" % pid) as f:
            if f.read().strip() == "postgres":
                os.kill(pid, signal.SIGKILL)
    except Exception:
        pass
if not keep:
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)
'''


def _watch(op: str, path: str):
    """Tells the watchdog process to stop (pg) or remove (rm) path if we die: op is
    '+pg', '-pg', '+rm' or '-rm'."""
    global _watchdog
    with _lock:
        if _watchdog is None or _watchdog.poll() is not None:
            if op[0] == "-":
                return
            _watchdog = subprocess.Popen(
                [sys.executable, "-c", _WATCHDOG_SRC, pg_prog("pg_ctl"), "1" if _is_root() else "0",
                 "1" if KEEP else "0"],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True, text=True, cwd="/")
        try:
            _watchdog.stdin.write(f"{op} {path}\n")
            _watchdog.stdin.flush()
        except (BrokenPipeError, OSError):
            pass


def _stop_watchdog():
    global _watchdog
    with _lock:
        w, _watchdog = _watchdog, None
    if w is None:
        return
    # Everything was unregistered: on EOF it finds nothing to do and exits.
    try:
        w.stdin.close()
    except OSError:
        pass
    try:
        w.wait(timeout=10)
    except subprocess.TimeoutExpired:
        w.kill()
        w.wait()


def make_tempdir(prefix: str = "lifeboat-pg-", for_postgres: bool = True) -> str:
    """A fresh directory (mktemp -d) under $TMPDIR or /tmp, removed at exit (also when the
    process is killed). for_postgres: owned by the postgres user, so a server can use it
    (a root-owned mktemp directory has mode 700 and the server could not enter it)."""
    _install_handlers()
    d = tempfile.mkdtemp(prefix=prefix)
    if for_postgres:
        _chown_postgres(d)
    with _lock:
        _tempdirs.append(d)
    _watch("+rm", d)
    return d


def remove_tempdir(d: str):
    """Removes a directory made by make_tempdir now (unless LIFEBOAT_PG_KEEP=1)."""
    with _lock:
        if d in _tempdirs:
            _tempdirs.remove(d)
    if not KEEP:
        shutil.rmtree(d, ignore_errors=True)
    else:
        print(f"pgharness: keeping {d}", file=sys.stderr)
    _watch("-rm", d)


def cleanup_all():
    """Stops every cluster of this process (immediate) and removes every temp directory."""
    with _lock:
        clusters = list(_clusters)
    for c in reversed(clusters):
        try:
            c.cleanup()
        except Exception as e:  # keep going: the others must be stopped as well
            print(f"pgharness: cleanup of {c.workdir}: {e}", file=sys.stderr)
    with _lock:
        dirs = list(_tempdirs)
    for d in reversed(dirs):
        remove_tempdir(d)
    _stop_watchdog()


def _signal_handler(signum, frame):
    try:
        cleanup_all()
    finally:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


def _install_handlers():
    global _handlers_installed
    with _lock:
        if _handlers_installed:
            return
        _handlers_installed = True
    atexit.register(cleanup_all)
    if threading.current_thread() is not threading.main_thread():
        return
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        cur = signal.getsignal(s)
        if cur in (signal.SIG_DFL, signal.default_int_handler, None):
            signal.signal(s, _signal_handler)


# --------------------------------------------------------------------------------------
# Cluster
# --------------------------------------------------------------------------------------

def _conf_value(v) -> str:
    if isinstance(v, bool):
        return "on" if v else "off"
    if isinstance(v, (int, float)):
        return str(v)
    return "'" + str(v).replace("'", "''") + "'"


class Cluster:
    """One PostgreSQL cluster in a temporary directory.

    workdir layout: data/ (PGDATA), sock/ (unix_socket_directories), archive/ (for
    archive_command=True), postgres.log (server log, logging_collector off).

    workdir: None = fresh mktemp -d (removed by cleanup); a given directory is created if
      needed, chowned to postgres, and kept.
    port: None = a free port (re-picked if another process takes it first).
    conf: extra postgresql.conf settings {name: value}; they win over the defaults here.
    archive_command: None (archive_mode off), True (cp into workdir/archive) or a command.
    archive_timeout: seconds, or None for the server default.
    """

    def __init__(self, workdir=None, port=None, conf=None, archive_command=None,
                 archive_timeout=None, max_wal_senders=10, name="pg"):
        _install_handlers()
        self.name = name
        self._owns_workdir = workdir is None
        if workdir is None:
            workdir = tempfile.mkdtemp(prefix=f"lifeboat-{name}-")
        else:
            os.makedirs(workdir, exist_ok=True)
        self.workdir = os.path.abspath(workdir)
        _chown_postgres(self.workdir)
        self._port_fixed = port is not None
        self.port = port or free_port()
        self.data_dir = os.path.join(self.workdir, "data")
        self.sock_dir = os.path.join(self.workdir, "sock")
        self.archive_dir = os.path.join(self.workdir, "archive")
        self.log_path = os.path.join(self.workdir, "postgres.log")
        self.conf = dict(conf or {})
        if archive_command is True:
            archive_command = f"cp %p {self.archive_dir}/%f"
        self.archive_command = archive_command
        self.archive_timeout = archive_timeout
        self.max_wal_senders = max_wal_senders
        self._external_data = False      # data_dir not made by init() (restored copy)
        self._conf_file = "postgresql.conf"
        self._initialized = False
        self._running = False
        self._cleaned = False
        for d in (self.sock_dir, self.archive_dir):
            os.makedirs(d, exist_ok=True)
            _chown_postgres(d)
        with _lock:
            _clusters.append(self)
        if self._owns_workdir:
            _watch("+rm", self.workdir)

    # ---- lifecycle ----

    def init(self):
        """initdb (trust auth, UTF8, C locale, --data-checksums) and the configuration."""
        if self._initialized:
            raise ClusterError("already initialized")
        run_as_postgres([pg_prog("initdb"), "-D", self.data_dir, "-U", PG_USER, "--auth=trust",
                         "--encoding=UTF8", "--locale=C", "--data-checksums", "--no-sync"],
                        env=self._server_env(), timeout=300)
        self._initialized = True
        self._write_conf()
        return self

    def _settings(self) -> dict:
        s = {
            "listen_addresses": "127.0.0.1",
            "port": self.port,
            "unix_socket_directories": self.sock_dir,
            "wal_level": "replica",
            "max_wal_senders": self.max_wal_senders,
            "max_replication_slots": max(10, self.max_wal_senders),
            "track_commit_timestamp": True,
            "logging_collector": False,
            "log_line_prefix": "%m [%p] %q%u@%d ",
            "log_timezone": "UTC",
            "timezone": "UTC",
            "log_checkpoints": True,
            "archive_mode": bool(self.archive_command),
        }
        if self.archive_command:
            s["archive_command"] = self.archive_command
        if self.archive_timeout is not None:
            s["archive_timeout"] = int(self.archive_timeout)
        s.update(self.conf)
        return s

    def _write_conf(self):
        """(Re)writes the harness's block at the end of postgresql.conf (or of
        postgresql.auto.conf for a restored data directory, where it must win)."""
        path = os.path.join(self.data_dir, self._conf_file)
        begin, end = "# --- lifeboat pgharness begin ---", "# --- lifeboat pgharness end ---"
        with open(path) as f:
            text = f.read()
        text = re.sub(re.escape(begin) + r".*?" + re.escape(end) + r"\n?", "", text, flags=re.S)
        if text and not text.endswith("\n"):
            text += "\n"
        lines = [begin] + [f"{k} = {_conf_value(v)}" for k, v in self._settings().items()] + [end]
        with open(path, "w") as f:
            f.write(text + "\n".join(lines) + "\n")
        _chown_postgres(path)

    def _server_env(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update({"LC_ALL": "C", "LANG": "C", "TZ": "UTC"})
        return env

    def start(self, wait=True, timeout=120):
        """pg_ctl start (log into log_path). With wait, returns once the server accepts
        connections (a server in archive recovery: once it is consistent)."""
        if self._running:
            return self
        # Registered before pg_ctl start: a start that waits (recovery) may be killed midway.
        _watch("+pg", self.data_dir)
        for attempt in range(5):
            p = run_as_postgres([pg_prog("pg_ctl"), "start", "-D", self.data_dir, "-l", self.log_path,
                                 "-t", str(timeout)] + (["-w"] if wait else ["-W"]),
                                env=self._server_env(), check=False, timeout=timeout + 30)
            if p.returncode == 0:
                self._running = True
                return self
            log = self.tail_log(30)
            if not self._port_fixed and ("could not bind" in log or "could not create any TCP/IP" in log) \
                    and attempt < 4:
                self.port = free_port()          # somebody took our port: try another one
                self._write_conf()
                continue
            raise ClusterError(f"{self.name}: pg_ctl start failed (exit {p.returncode}):\n{p.stdout}\n"
                               f"--- {self.log_path} (tail) ---\n{log}")
        raise AssertionError("unreachable")

    def stop(self, mode="fast", timeout=120):
        """pg_ctl stop -m mode (fast, smart or immediate); falls back to immediate and then
        to SIGKILL of the postmaster."""
        pid = self.postmaster_pid()
        if pid is None:
            self._running = False
            _watch("-pg", self.data_dir)
            return
        p = run_as_postgres([pg_prog("pg_ctl"), "stop", "-D", self.data_dir, "-m", mode, "-w",
                             "-t", str(timeout)], env=self._server_env(), check=False, timeout=timeout + 30)
        if p.returncode != 0 and mode != "immediate":
            p = run_as_postgres([pg_prog("pg_ctl"), "stop", "-D", self.data_dir, "-m", "immediate", "-w",
                                 "-t", "30"], env=self._server_env(), check=False, timeout=60)
        if p.returncode != 0 and _is_postgres(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        # pg_ctl returns once postmaster.pid is gone; the postmaster exits a moment later.
        deadline = time.monotonic() + 30
        while _is_postgres(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        self._running = False
        _watch("-pg", self.data_dir)

    def restart(self, mode="fast"):
        self.stop(mode)
        return self.start()

    def postmaster_pid(self):
        try:
            with open(os.path.join(self.data_dir, "postmaster.pid")) as f:
                return int(f.readline())
        except (OSError, ValueError):
            return None

    def is_running(self) -> bool:
        return _is_postgres(self.postmaster_pid())

    def cleanup(self):
        """Stops the server (immediate) and removes the workdir if we made it (and the
        data directory of a restored cluster if remove_data_dir was asked). Idempotent."""
        if self._cleaned:
            return
        try:
            self.stop("immediate")
        finally:
            self._cleaned = True
            with _lock:
                if self in _clusters:
                    _clusters.remove(self)
            dirs = []
            if self._owns_workdir:
                dirs.append(self.workdir)
            if self._external_data and getattr(self, "_remove_data_dir", False):
                dirs.append(self.data_dir)
            for d in dirs:
                if KEEP:
                    print(f"pgharness: keeping {d}", file=sys.stderr)
                else:
                    shutil.rmtree(d, ignore_errors=True)
            if self._owns_workdir:
                _watch("-rm", self.workdir)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()
        return False

    # ---- recovery ----

    def promote(self, wait=True, timeout=60):
        run_as_postgres([pg_prog("pg_ctl"), "promote", "-D", self.data_dir, "-t", str(timeout)]
                        + (["-w"] if wait else ["-W"]), env=self._server_env(), timeout=timeout + 30)

    def is_in_recovery(self) -> bool:
        return self.query_one("SELECT pg_is_in_recovery()")

    def wait_promoted(self, timeout=120):
        """Waits until pg_is_in_recovery() is false (e.g. after recovery_target_action=
        'promote'). Raises ClusterError with the log tail if the server dies or times out."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if not self.is_in_recovery():
                    return
            except psycopg2.OperationalError:
                if not self.is_running():
                    raise ClusterError(f"{self.name}: server died during recovery:\n{self.tail_log(40)}")
            if time.monotonic() > deadline:
                raise ClusterError(f"{self.name}: still in recovery after {timeout}s:\n{self.tail_log(40)}")
            time.sleep(0.1)

    def switch_wal_and_wait_archived(self, timeout=60) -> str:
        """pg_switch_wal() and waits until the segment it closed is archived. Returns its
        name. (Makes the WAL of everything committed so far available to a restore.)"""
        conn = self.connect(autocommit=True)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_walfile_name(pg_switch_wal())")
                seg = cur.fetchone()[0]
        finally:
            conn.close()
        status = os.path.join(self.data_dir, "pg_wal", "archive_status")
        deadline = time.monotonic() + timeout
        while True:
            # pg_switch_wal() returns after the segment is complete, i.e. after its .ready
            # file exists; the archiver renames it to .done once archive_command succeeded
            # (and a checkpoint may then recycle the segment with its status file).
            ready = os.path.exists(os.path.join(status, seg + ".ready"))
            done = os.path.exists(os.path.join(status, seg + ".done"))
            present = os.path.exists(os.path.join(self.data_dir, "pg_wal", seg))
            if not ready and (done or not present):
                return seg
            if time.monotonic() > deadline:
                raise ClusterError(f"{self.name}: {seg} not archived after {timeout}s:\n{self.tail_log(20)}")
            time.sleep(0.05)

    # ---- clients ----

    def dsn(self, dbname="postgres", host="127.0.0.1") -> str:
        return f"host={host} port={self.port} user={PG_USER} dbname={dbname}"

    def connect(self, dbname="postgres", autocommit=False, **kwargs):
        """A psycopg2 connection over TCP 127.0.0.1 (autocommit as asked). Use it in a
        with-block and close it: `with c.connect() as conn:` only ends the transaction."""
        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user=PG_USER, dbname=dbname,
                                connect_timeout=10, application_name=kwargs.pop("application_name", "pgharness"),
                                **kwargs)
        conn.autocommit = autocommit
        return conn

    def query_one(self, sql, args=None, dbname="postgres"):
        conn = self.connect(dbname, autocommit=True)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, args)
                row = cur.fetchone()
                return row[0] if row and len(row) == 1 else row
        finally:
            conn.close()

    def psql(self, sql, dbname="postgres", check=True) -> str:
        """Runs sql through psql (-X -A -t, ON_ERROR_STOP) and returns its stdout stripped."""
        p = subprocess.run([pg_prog("psql"), "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1",
                            "-d", dbname, "-c", sql], env=self.env(dbname=dbname),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=600)
        if check and p.returncode != 0:
            raise ClusterError(f"psql failed (exit {p.returncode}): {sql[:200]}\n{p.stderr}")
        return p.stdout.strip()

    def env(self, dbname="postgres", inherit=True, socket=False) -> dict:
        """Environment for client subprocesses (lifeboat, psql, pg_basebackup): PGHOST
        (127.0.0.1, or the socket directory with socket=True), PGPORT, PGUSER=postgres,
        PGDATABASE. inherit: on top of our environment (minus any other PG* variable)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")} if inherit else {}
        env.update({"PGHOST": self.sock_dir if socket else "127.0.0.1", "PGPORT": str(self.port),
                    "PGUSER": PG_USER, "PGDATABASE": dbname})
        return env

    def tail_log(self, n=50) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return "(no log)"

    def __repr__(self):
        return f"<Cluster {self.name} port={self.port} data={self.data_dir}>"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _proc_cwd(pid: int):
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None


def _is_postgres(pid: int) -> bool:
    """pid is a live postgres process (a pid in a stale postmaster.pid may be reused by
    anything else, which we must neither wait for nor kill)."""
    if not pid or not _pid_alive(pid):
        return False
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip() == "postgres"
    except OSError:
        return False


@contextlib.contextmanager
def running_cluster(**kwargs):
    """with running_cluster(archive_command=True, conf={...}) as pg: an initialized, started
    cluster, stopped (immediate) and removed at the end of the block."""
    c = Cluster(**kwargs)
    try:
        c.init()
        c.start()
        yield c
    finally:
        c.cleanup()


def write_recovery_config(data_dir, restore_command, recovery_target_time=None,
                          target_action="promote", target_inclusive=None, extra=None):
    """Prepares a restored data directory for archive recovery: recovery.signal plus
    restore_command / recovery_target_* appended to postgresql.auto.conf. A datetime
    target is written with full microsecond precision in UTC."""
    settings = {"restore_command": restore_command}
    if recovery_target_time is not None:
        if isinstance(recovery_target_time, _dt.datetime):
            recovery_target_time = format_pg_timestamp(recovery_target_time)
        settings["recovery_target_time"] = recovery_target_time
        settings["recovery_target_action"] = target_action
        if target_inclusive is not None:
            settings["recovery_target_inclusive"] = bool(target_inclusive)
    settings.update(extra or {})
    with open(os.path.join(data_dir, "postgresql.auto.conf"), "a") as f:
        f.write("# recovery settings written by lifeboat pgharness\n")
        for k, v in settings.items():
            f.write(f"{k} = {_conf_value(v)}\n")
    open(os.path.join(data_dir, "recovery.signal"), "w").close()
    _chown_postgres(os.path.join(data_dir, "postgresql.auto.conf"))
    _chown_postgres(os.path.join(data_dir, "recovery.signal"))


def start_cluster_from_datadir(datadir, port=None, conf=None, wait=True, archive=False,
                               remove_data_dir=False, name="restored") -> Cluster:
    """Starts a data directory made by a restore (lifeboat, pg_basebackup, a copy).

    chown -R postgres and chmod 700 the directory first, forget a stale postmaster.pid,
    then put port / listen_addresses / unix_socket_directories (a new temp workdir, which
    also holds the server log) at the end of postgresql.auto.conf, so the copy never
    collides with its original. archive=False also turns archive_mode off so a restored
    copy does not write into the original's archive (conf can override everything).
    remove_data_dir: cleanup() also removes datadir. wait: as for Cluster.start(); None:
    configure only, do not start. Returns the Cluster; its cleanup() stops it. If the
    start fails, the ClusterError holds the tail of the server log (recovery errors)."""
    datadir = os.path.abspath(datadir)
    if not os.path.isfile(os.path.join(datadir, "PG_VERSION")):
        raise ClusterError(f"{datadir} is not a PostgreSQL data directory (no PG_VERSION)")
    _chown_postgres(datadir, recursive=True)
    os.chmod(datadir, 0o700)
    if not _postgres_can_enter(datadir):
        raise ClusterError(f"the {PG_USER} user cannot enter {datadir}: some parent directory "
                           f"is not searchable by it (use pgharness.make_tempdir() for restore targets)")
    pidfile = os.path.join(datadir, "postmaster.pid")
    if os.path.exists(pidfile):
        try:
            with open(pidfile) as f:
                pid = int(f.readline())
        except (OSError, ValueError):
            pid = 0
        if _is_postgres(pid) and _proc_cwd(pid) == os.path.realpath(datadir):
            raise ClusterError(f"{datadir}: a postmaster (pid {pid}) is running on it")
        # Copied along from a running cluster, or left by a crash: the server would refuse
        # to start while the pid in it is alive (e.g. the original's postmaster).
        os.unlink(pidfile)
    auto = os.path.join(datadir, "postgresql.auto.conf")
    if not os.path.exists(auto):
        open(auto, "w").close()
    settings = {} if archive else {"archive_mode": False}
    settings.update(conf or {})
    c = Cluster(port=port, conf=settings, name=name)
    c.data_dir = datadir
    c._external_data = True
    c._remove_data_dir = remove_data_dir
    c._initialized = True
    c._conf_file = "postgresql.auto.conf"
    # Only the settings that must differ from the original go in: the rest of the
    # original's configuration (wal_level, track_commit_timestamp, ...) stays as it was.
    base = {"listen_addresses": "127.0.0.1", "port": c.port, "unix_socket_directories": c.sock_dir,
            "logging_collector": False}
    c._settings = lambda: {**base, "port": c.port, **settings}
    c._write_conf()
    if wait is not None:
        try:
            c.start(wait=wait)
        except BaseException:
            c.cleanup()          # the error carries the server log's tail
            raise
    return c
