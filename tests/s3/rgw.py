#!/usr/bin/env python3
"""Throw-away Ceph RADOS Gateways (a real S3 server) for lifeboat's tests.

One gateway is a tiny Ceph cluster of its own: one ceph-mon, one ceph-osd on memstore
(RAM, used only as filled), one radosgw with the beast frontend on 127.0.0.1, auth none,
and one S3 user with random keys. Everything lives in a fresh temporary directory
(ceph.conf, monitor and OSD data, logs, admin sockets, pid files); ports are free
loopback ports picked at run time, so several gateways can run at once. It starts in
about a second (the monitor's paxos interval is cut from 1 s to 50 ms: the gateway's
start creates pools, and each pool costs two map epochs) and needs about 135 MB of RSS
(monitor 35, OSD 50 plus the objects it holds, radosgw 45).

Addressing is path-style only (`rgw dns name` is unset). Region: RGW 16 does not check
the region of a SigV4 credential scope against its zonegroup; any string verifies, and
bucket creation accepts any LocationConstraint. `region` here is "us-east-1", the one
region for which S3 clients send no LocationConstraint; "default" (the zonegroup's
api_name) works as well.

What this RGW (Ceph 16.2, Debian 12) does where S3 servers differ, as s3_selftest.py
checks: PUT with If-None-Match: * is honoured (412 PreconditionFailed if the key exists);
PUT with If-Match compares the bare ETag only (the quoted form S3 returns gets 412);
a PUT with Transfer-Encoding: chunked and no Content-Length gets 411
MissingContentLength; CompleteMultipartUpload repeated after a lost response answers
200 again; creating a bucket the user already owns answers 200.

Cleanup is guaranteed three ways: `RGW.close()` (context manager, try/finally), an
atexit hook plus SIGTERM/SIGINT/SIGHUP handlers that stop every gateway of the process
(chained to handlers installed before), and a watchdog process in its own session that
kills the daemons and removes the directories when this process dies without cleaning up
(SIGKILL, e.g. a CTest timeout).

Data survives `stop()` then `start()` only as far as memstore keeps it: a graceful stop
lets the OSD write its memory to the OSD directory and the next start reads it back; a
crash (`stop(graceful=False)`) loses every object. `restart_gateway()` restarts radosgw
alone and keeps everything; `kill_gateway()` leaves the port closed until then.

HTTPS: `RGW(tls=True)` (CLI `--tls`) also serves HTTPS on a second free loopback port,
with a self-signed certificate for 127.0.0.1 (and localhost) made by openssl in the
workdir: `tls_endpoint` ("https://127.0.0.1:PORT") and `ca_file` (the certificate, which is
its own CA). For clients that insist on TLS (pgBackRest) and for TLS code paths.

Environment:
  LIFEBOAT_RGW_KEEP  1: stop the daemons but keep their directories (for debugging)

Usage:
    from rgw import RGW
    with RGW() as rgw:
        rgw.create_bucket("b")
        s3 = rgw.client()                       # boto3 (python3-boto3)
        s3.put_object(Bucket="b", Key="k", Body=b"x")
        r = rgw.request("GET", "/b/k")          # stdlib SigV4, for raw checks
        subprocess.run([...], env=rgw.env("b"), check=True)

CLI:
    rgw.py run [--bucket B]... [--proxy] [--tls] -- CMD ARGS...   # CMD's exit status
    rgw.py serve [--bucket B]... [--proxy] [--tls]        # prints exports, waits for ^C
"""

from __future__ import annotations

import argparse
import atexit
import dataclasses
import datetime as _dt
import hashlib
import hmac
import http.client
import os
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
import xml.etree.ElementTree as ET

__all__ = [
    "RGW", "RGWError", "S3Response", "DEFAULT_REGION", "free_port", "sign_v4",
    "s3_request", "cleanup_all", "require_boto3", "boto3_client",
]

DEFAULT_REGION = "us-east-1"
KEEP = os.environ.get("LIFEBOAT_RGW_KEEP") == "1"
_PROGRAMS = ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "monmaptool", "ceph")


class RGWError(Exception):
    """A gateway could not be set up, started or stopped; the message carries log tails."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------------------
# SigV4 and a tiny S3 client (stdlib only)
# --------------------------------------------------------------------------------------

def _quote(s: str, safe: str = "") -> str:
    return urllib.parse.quote(s, safe="-_.~" + safe)


def sign_v4(method: str, host: str, path: str, query: dict | None, headers: dict,
            payload_sha256: str, access_key: str, secret_key: str, region: str,
            service: str = "s3", now: _dt.datetime | None = None) -> dict:
    """Returns headers plus x-amz-date, x-amz-content-sha256, host and Authorization
    (AWS Signature Version 4). path is the raw, unencoded path ("/bucket/key");
    query maps names to values (None for a bare name). Signs host, every x-amz-* header,
    content-type and content-md5; other headers (range, if-none-match...) go unsigned."""
    now = now or _dt.datetime.now(_dt.timezone.utc)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    out = {k: v for k, v in headers.items() if k.lower() not in ("authorization", "host")}
    out["host"] = host
    out["x-amz-date"] = amz_date
    out["x-amz-content-sha256"] = payload_sha256
    signed = {}
    for k, v in out.items():
        lk = k.lower()
        if lk in ("host", "content-type", "content-md5") or lk.startswith("x-amz-"):
            signed[lk] = " ".join(str(v).strip().split())
    names = sorted(signed)
    canonical_query = "&".join(
        f"{_quote(k)}={_quote('' if v is None else str(v))}"
        for k, v in sorted((query or {}).items()))
    canonical = "\n".join([
        method, _quote(path, safe="/"), canonical_query,
        "".join(f"{n}:{signed[n]}\n" for n in names), ";".join(names), payload_sha256])
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + secret_key).encode()
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    out["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
                            f"SignedHeaders={';'.join(names)}, Signature={signature}")
    return out


@dataclasses.dataclass
class S3Response:
    status: int
    reason: str
    headers: dict          # lower-case names
    body: bytes

    @property
    def error_code(self) -> str | None:
        """The <Code> of an S3 XML error body, or None."""
        if self.status < 300 or not self.body:
            return None
        try:
            root = ET.fromstring(self.body)
        except ET.ParseError:
            return None
        code = root.find("Code")
        return code.text if code is not None else None

    def __str__(self):
        return f"{self.status} {self.error_code or self.reason}"


def s3_request(endpoint: str, method: str, path: str, *, access_key: str, secret_key: str,
               region: str = DEFAULT_REGION, body: bytes = b"", headers: dict | None = None,
               query: dict | None = None, timeout: float = 60) -> S3Response:
    """One signed S3 request over a new connection; returns the whole response. Raises
    OSError / http.client.HTTPException on transport failures, never on HTTP errors."""
    u = urllib.parse.urlsplit(endpoint)
    host = u.netloc
    hdrs = sign_v4(method, host, path, query, dict(headers or {}),
                   hashlib.sha256(body).hexdigest(), access_key, secret_key, region)
    target = _quote(path, safe="/")
    if query:
        target += "?" + "&".join(_quote(k) if v is None else f"{_quote(k)}={_quote(str(v))}"
                                 for k, v in query.items())
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=timeout)
    try:
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        for k, v in hdrs.items():
            conn.putheader(k, v)
        if body or method in ("PUT", "POST"):
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body or None)
        r = conn.getresponse()
        data = r.read()
        return S3Response(r.status, r.reason, {k.lower(): v for k, v in r.getheaders()}, data)
    finally:
        conn.close()


def require_boto3():
    """boto3 comes from Debian (python3-boto3) for /usr/bin/python3, or from the image's
    pip. When the running interpreter has none, re-executes the main script with
    /usr/bin/python3 if that one has it; otherwise raises ImportError with the fix."""
    try:
        import boto3  # noqa: F401
        return
    except ImportError:
        pass
    system_python = "/usr/bin/python3"
    script = getattr(sys.modules.get("__main__"), "__file__", None)
    if (os.environ.get("LIFEBOAT_RGW_REEXEC") != "1" and script and os.path.isfile(script)
            and os.path.exists(system_python)
            and os.path.realpath(sys.executable) != os.path.realpath(system_python)):
        probe = subprocess.run([system_python, "-c", "import boto3"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if probe.returncode == 0:
            sys.stdout.flush()
            sys.stderr.flush()
            os.environ["LIFEBOAT_RGW_REEXEC"] = "1"
            os.execv(system_python, [system_python, os.path.abspath(script)] + sys.argv[1:])
    raise ImportError("boto3 is missing: apt-get install python3-boto3 "
                      "(or run scripts/install-deps.sh), and run with /usr/bin/python3")


def boto3_client(endpoint: str, access_key: str, secret_key: str,
                 region: str = DEFAULT_REGION, max_attempts: int = 3,
                 connect_timeout: float = 10, read_timeout: float = 60,
                 verify: str | bool | None = None, **config):
    """A boto3 S3 client for a path-style endpoint. max_attempts counts the first try
    (1 = no retries; retry mode "standard"). Checksums are computed only where S3
    requires them (botocore >= 1.36 would add CRC32 to every upload otherwise), so old
    and new botocore send the same requests. verify: for https, a CA bundle path (e.g.
    RGW.ca_file) or False; None = the default bundle. config: more botocore Config
    arguments."""
    import boto3
    from botocore.config import Config
    kw = dict(s3={"addressing_style": "path"}, signature_version="s3v4",
              retries={"total_max_attempts": max_attempts, "mode": "standard"},
              connect_timeout=connect_timeout, read_timeout=read_timeout)
    kw.update(config)
    try:
        cfg = Config(request_checksum_calculation="when_required",
                     response_checksum_validation="when_required", **kw)
    except TypeError:  # botocore < 1.36 has neither option nor the behaviour
        cfg = Config(**kw)
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=access_key,
                        aws_secret_access_key=secret_key, region_name=region, config=cfg,
                        verify=verify)


# --------------------------------------------------------------------------------------
# Cleanup: registry, atexit, signals, watchdog process
# --------------------------------------------------------------------------------------

_lock = threading.RLock()
_gateways: list = []           # RGW objects with daemons or a directory to clean up
_watchdog = None               # subprocess.Popen of the watchdog, stdin is our pipe to it
_handlers_installed = False
_previous_handlers: dict = {}

_WATCHDOG_SRC = r'''
import os, shutil, signal, sys
for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(s, signal.SIG_IGN)
keep = sys.argv[1] == "1"
pids, dirs = {}, []
for line in sys.stdin:
    op, _, arg = line.rstrip("\n").partition(" ")
    if op == "+pid":
        pid, _, comm = arg.partition(" ")
        pids[int(pid)] = comm
    elif op == "-pid":
        pids.pop(int(arg), None)
    elif op == "+rm":
        dirs.append(arg)
    elif op == "-rm" and arg in dirs:
        dirs.remove(arg)
# EOF: our parent is gone. Whatever is still registered was not cleaned up by it.
for pid, comm in pids.items():
    try:
        with open("/proc/%d/comm" % pid) as f:
            if f.read().strip() == comm[:15]:
                os.kill(pid, signal.SIGKILL)
    except Exception:
        pass
if not keep:
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)
'''


def _watch(op: str, arg: str):
    """Tells the watchdog what to kill (+pid 'PID COMM') or remove (+rm DIR) if we die,
    and what no longer needs it (-pid PID, -rm DIR)."""
    global _watchdog
    with _lock:
        if _watchdog is None or _watchdog.poll() is not None:
            if op[0] == "-":
                return
            _watchdog = subprocess.Popen(
                [sys.executable, "-c", _WATCHDOG_SRC, "1" if KEEP else "0"],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True, text=True, cwd="/")
        try:
            _watchdog.stdin.write(f"{op} {arg}\n")
            _watchdog.stdin.flush()
        except (BrokenPipeError, OSError):
            pass


def _stop_watchdog():
    global _watchdog
    with _lock:
        w, _watchdog = _watchdog, None
    if w is None:
        return
    try:
        w.stdin.close()   # everything was unregistered: on EOF it has nothing to do
    except OSError:
        pass
    try:
        w.wait(timeout=10)
    except subprocess.TimeoutExpired:
        w.kill()
        w.wait()


def cleanup_all():
    """Kills the daemons of every gateway of this process and removes their directories."""
    with _lock:
        gws = list(_gateways)
    for g in reversed(gws):
        try:
            g.close(graceful=False)
        except Exception as e:  # keep going: the others must be stopped as well
            print(f"rgw: cleanup of {g.workdir}: {e}", file=sys.stderr)
    _stop_watchdog()


def _signal_handler(signum, frame):
    try:
        cleanup_all()
    finally:
        prev = _previous_handlers.get(signum)
        if callable(prev):
            prev(signum, frame)
        else:
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
        if cur is signal.SIG_IGN:
            continue
        if callable(cur):
            # Another harness's cleanup runs after ours; Python's own SIGINT handler then
            # raises KeyboardInterrupt, so finally blocks still run.
            _previous_handlers[s] = cur
        signal.signal(s, _signal_handler)


# --------------------------------------------------------------------------------------
# The gateway
# --------------------------------------------------------------------------------------

def _listener_pid(port: int) -> int | None:
    """The pid of a process listening on 127.0.0.1:port (0 if the socket is not ours to
    see), or None if nothing listens there."""
    inode = None
    try:
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[1] == f"0100007F:{port:04X}" and fields[3] == "0A":
                    inode = fields[9]
                    break
    except OSError:
        return None
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in (d for d in os.listdir("/proc") if d.isdigit()):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    return int(pid)
        except OSError:
            continue
    return 0


def _random_key(n: int, alphabet: str) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


class RGW:
    """One Ceph RADOS Gateway with its monitor and OSD, in a temporary directory.

    workdir layout: ceph.conf, monmap, mon/ (monitor store), osd/ (memstore), rgw/,
    run/ (admin sockets, pid files), log/ (daemon logs, NAME.out = stdout/stderr).

    memstore_bytes: the OSD's capacity (RAM, taken only as filled; writes fail when
      it is 95% full). conf: extra [global] settings {name: value}, winning over ours.
    tls: also serve HTTPS on tls_port with a self-signed certificate (ca_file).
    start_timeout: seconds for the gateway to answer HTTP.
    Attributes once started: endpoint ("http://127.0.0.1:PORT"), host, port,
    access_key, secret_key, region, user_id, workdir; with tls also tls_endpoint
    ("https://127.0.0.1:PORT"), tls_port and ca_file.
    Not thread-safe: one thread drives a gateway (requests may come from any thread).
    """

    def __init__(self, workdir: str | None = None, memstore_bytes: int = 4 << 30,
                 conf: dict | None = None, start_timeout: float = 60,
                 region: str = DEFAULT_REGION, name: str = "rgw", tls: bool = False):
        for p in _PROGRAMS + (("openssl",) if tls else ()):
            if shutil.which(p) is None:
                raise RGWError(f"'{p}' not found\nhint: run scripts/install-deps.sh "
                               "(packages radosgw ceph-mon ceph-osd openssl)")
        _install_handlers()
        self.name = name
        self._owns_workdir = workdir is None
        self.workdir = os.path.abspath(workdir or tempfile.mkdtemp(prefix=f"lifeboat-{name}-"))
        os.makedirs(self.workdir, exist_ok=True)
        self.memstore_bytes = memstore_bytes
        self.extra_conf = dict(conf or {})
        self.start_timeout = start_timeout
        self.region = region
        self.host = "127.0.0.1"
        self.mon_port = 0
        self.port = 0
        self.tls = tls
        self.tls_port = 0
        self.user_id = "lifeboat-test"
        self.access_key = _random_key(20, string.ascii_uppercase + string.digits)
        self.secret_key = _random_key(40, string.ascii_letters + string.digits)
        self._procs: dict = {}          # daemon name -> Popen
        self._bootstrapped = False
        self._closed = False
        self.start_seconds = None       # wall time of the last start()
        self.conf_path = os.path.join(self.workdir, "ceph.conf")
        self.log_dir = os.path.join(self.workdir, "log")
        self.ca_file = os.path.join(self.workdir, "tls", "cert.pem") if tls else None
        with _lock:
            _gateways.append(self)
        if self._owns_workdir:
            _watch("+rm", self.workdir)

    # ---- properties ----

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def tls_endpoint(self) -> str | None:
        """"https://127.0.0.1:PORT" with tls, else None."""
        return f"https://{self.host}:{self.tls_port}" if self.tls else None

    @property
    def running(self) -> bool:
        return bool(self._procs) and all(p.poll() is None for p in self._procs.values())

    def env(self, bucket: str | None = None, endpoint: str | None = None) -> dict:
        """os.environ plus AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
        AWS_REGION (and AWS_DEFAULT_REGION), LIFEBOAT_TEST_S3_BUCKET if bucket is given;
        without AWS_PROFILE and AWS_SESSION_TOKEN, which would override the keys."""
        e = dict(os.environ)
        for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            e.pop(k, None)
        e.update(self.env_vars(bucket, endpoint))
        return e

    def env_vars(self, bucket: str | None = None, endpoint: str | None = None) -> dict:
        """Only the variables that env() sets."""
        v = {"AWS_ENDPOINT_URL": endpoint or self.endpoint,
             "AWS_ACCESS_KEY_ID": self.access_key,
             "AWS_SECRET_ACCESS_KEY": self.secret_key,
             "AWS_REGION": self.region,
             "AWS_DEFAULT_REGION": self.region}
        if bucket:
            v["LIFEBOAT_TEST_S3_BUCKET"] = bucket
        return v

    # ---- lifecycle ----

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.close(graceful=False)
            raise

    def __exit__(self, *exc):
        self.close()
        return False

    def start(self) -> "RGW":
        """Starts monitor, OSD and gateway (setting them up on first use) and waits until
        the gateway answers HTTP. Raises RGWError with log tails on failure; the daemons
        that did start are stopped again. A fresh gateway whose port was taken between
        choosing and binding it is set up again on new ports (up to three times)."""
        if self._closed:
            raise RGWError("gateway already closed")
        if self.running:
            return self
        t0 = time.monotonic()
        for attempt in range(3):
            try:
                if not self._bootstrapped:
                    self._setup_dirs()
                self._start_daemons()
                break
            except RGWError as e:
                taken = "Address already in use" in str(e) or "unable to bind" in str(e)
                self.stop(graceful=False)
                if self._bootstrapped or not taken or attempt == 2:
                    raise
                self._wipe()
        self.start_seconds = time.monotonic() - t0
        return self

    def stop(self, graceful: bool = True):
        """Stops gateway, OSD, monitor, in that order. graceful: SIGTERM first (the OSD
        then saves memstore to disk, so a later start() has the objects), SIGKILL after
        15 s; otherwise SIGKILL at once. Never raises for a daemon that is already gone."""
        for name in ("radosgw", "ceph-osd", "ceph-mon"):
            self._stop_one(name, graceful)

    def restart_gateway(self):
        """Restarts radosgw alone (SIGTERM, then start and wait for HTTP) on the same
        port; monitor and OSD keep running and so every object stays."""
        self._stop_one("radosgw")
        self._spawn("radosgw", ["radosgw", "-f", "-c", self.conf_path, "-n", "client.rgw.a"])
        self._wait_http()

    def kill_gateway(self):
        """SIGKILLs radosgw (monitor and OSD stay up): the server is gone until
        restart_gateway()."""
        self._stop_one("radosgw", graceful=False)

    def close(self, graceful: bool | None = None):
        """stop() and remove the directory (kept with LIFEBOAT_RGW_KEEP=1, or when it was
        given by the caller). graceful None: only when the directory is kept (a graceful
        stop makes the OSD write all its objects to disk). Idempotent."""
        if self._closed:
            return
        if graceful is None:
            graceful = KEEP or not self._owns_workdir
        self.stop(graceful=graceful)
        self._closed = True
        with _lock:
            if self in _gateways:
                _gateways.remove(self)
        if self._owns_workdir:
            if KEEP:
                print(f"rgw: keeping {self.workdir}", file=sys.stderr)
            else:
                shutil.rmtree(self.workdir, ignore_errors=True)
            _watch("-rm", self.workdir)

    # ---- S3 ----

    def request(self, method: str, path: str, body: bytes = b"", headers: dict | None = None,
                query: dict | None = None, endpoint: str | None = None,
                access_key: str | None = None, secret_key: str | None = None,
                region: str | None = None, timeout: float = 60) -> S3Response:
        """A SigV4-signed request as this gateway's user (or the given keys), to the
        gateway or to endpoint (e.g. a proxy in front of it). See s3_request()."""
        return s3_request(endpoint or self.endpoint, method, path,
                          access_key=access_key or self.access_key,
                          secret_key=secret_key or self.secret_key,
                          region=region or self.region, body=body, headers=headers,
                          query=query, timeout=timeout)

    def create_bucket(self, name: str):
        """Creates bucket name (owned by the test user). Raises RGWError unless RGW
        answers 200 (also for a bucket this user already owns)."""
        r = self.request("PUT", f"/{name}")
        if r.status != 200:
            raise RGWError(f"create bucket '{name}': {r}: {r.body[:500]!r}")

    def client(self, endpoint: str | None = None, **kw):
        """A boto3 S3 client as this gateway's user, to the gateway or to endpoint. kw as
        for boto3_client() (max_attempts, connect_timeout, read_timeout, ...)."""
        return boto3_client(endpoint or self.endpoint, self.access_key, self.secret_key,
                            self.region, **kw)

    def admin(self, *args: str, timeout: float = 60) -> str:
        """Runs radosgw-admin against this cluster; returns stdout. Raises RGWError."""
        return self._run(["radosgw-admin", "-c", self.conf_path, *args], timeout=timeout)

    # ---- diagnostics ----

    def rss_bytes(self) -> dict:
        """Resident memory of each running daemon {name: bytes}, from /proc."""
        out = {}
        for name, p in self._procs.items():
            try:
                with open(f"/proc/{p.pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            out[name] = int(line.split()[1]) * 1024
            except OSError:
                pass
        return out

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of every log file of the cluster, each under its name."""
        parts = []
        for fn in sorted(os.listdir(self.log_dir)) if os.path.isdir(self.log_dir) else []:
            path = os.path.join(self.log_dir, fn)
            try:
                with open(path, "rb") as f:
                    f.seek(max(0, os.path.getsize(path) - 64 * 1024))
                    tail = f.read().decode("utf-8", "replace").splitlines()[-lines:]
            except OSError:
                continue
            if tail:
                parts.append(f"==> {fn} <==\n" + "\n".join(tail))
        return "\n".join(parts)

    # ---- internals ----

    def _settings(self) -> dict:
        d = self.workdir
        s = {
            "fsid": self._fsid,
            "mon host": f"v2:127.0.0.1:{self.mon_port}",
            "mon initial members": "a",
            "public addr": "127.0.0.1",
            "cluster addr": "127.0.0.1",
            "ms bind msgr1": "false",
            # A port taken between free_port() and the bind fails after one try (default:
            # three, 5 s apart; 0 means none at all); start() then uses new ports.
            "ms bind retry count": "1",
            "auth cluster required": "none",
            "auth service required": "none",
            "auth client required": "none",
            # With auth none, radosgw never gets past the monitor in the default secure mode.
            "ms mon client mode": "crc",
            "keyring": "/dev/null",
            # Everything in the temp dir: nothing under /var/run, /var/log or /var/lib.
            "run dir": f"{d}/run",
            "admin socket": f"{d}/run/$name.asok",
            "pid file": f"{d}/run/$name.pid",
            "log file": f"{d}/log/$name.log",
            "mon cluster log file": f"{d}/log/$cluster.$channel.log",
            "crash dir": f"{d}/crash",
            "mon data": f"{d}/mon/$cluster-$id",
            "osd data": f"{d}/osd/$cluster-$id",
            "rgw data": f"{d}/rgw",
            "osd objectstore": "memstore",
            "memstore device bytes": str(self.memstore_bytes),
            # One OSD: pools of one replica, few PGs, a CRUSH rule that picks OSDs.
            "osd pool default size": "1",
            "osd pool default min size": "1",
            "osd pool default pg num": "8",
            "osd pool default pgp num": "8",
            "osd pool default pg autoscale mode": "off",
            "mon max pg per osd": "1000",
            "osd crush chooseleaf type": "0",
            "mon allow pool delete": "true",
            # A nearly full /tmp must not stop the monitor (it would at 5% free).
            "mon data avail crit": "0",
            "mon data avail warn": "1",
            "mon warn on pool no redundancy": "false",
            "mon warn on insecure global id reclaim allowed": "false",
            # radosgw creates its pools at first start and at the first bucket; each pool
            # costs two osdmap epochs, each a paxos round of 1 s by default.
            "paxos propose interval": "0.05",
            "osd op num shards": "2",
            "osd op num threads per shard": "1",
            # After SIGTERM an OSD waits this long for the monitor's ack.
            "osd mon shutdown timeout": "1",
            # Without it SIGTERM skips umount and memstore loses every object.
            "osd fast shutdown": "false",
        }
        s.update({k.replace("_", " "): str(v) for k, v in self.extra_conf.items()})
        return s

    def _write_conf(self):
        lines = ["[global]"]
        lines += [f"{k} = {v}" for k, v in self._settings().items()]
        frontends = f"beast endpoint=127.0.0.1:{self.port}"
        if self.tls:
            tls_dir = os.path.join(self.workdir, "tls")
            frontends += (f" ssl_endpoint=127.0.0.1:{self.tls_port}"
                          f" ssl_certificate={tls_dir}/cert.pem"
                          f" ssl_private_key={tls_dir}/key.pem")
        lines += [
            "",
            "[client.rgw.a]",
            f"rgw frontends = {frontends}",
            "rgw thread pool size = 16",
            "rgw enable usage log = false",
            "rgw enable ops log = false",
            "rgw dynamic resharding = false",
            # A gateway that starts before the OSD is up (start() after stop()) learns of it
            # at the objecter's next tick only: 5 s by default.
            "objecter tick interval = 0.5",
            "",
        ]
        with open(self.conf_path, "w") as f:
            f.write("\n".join(lines))

    def _setup_dirs(self):
        self._fsid = str(uuid.uuid4())
        self.mon_port = free_port()
        self.port = free_port()
        while self.port == self.mon_port:
            self.port = free_port()
        for sub in ("run", "log", "crash", "mon", "osd/ceph-0", "rgw"):
            os.makedirs(os.path.join(self.workdir, sub), exist_ok=True)
        if self.tls:
            self.tls_port = free_port()
            while self.tls_port in (self.mon_port, self.port):
                self.tls_port = free_port()
            self._make_certificate()
        self._write_conf()
        monmap = os.path.join(self.workdir, "monmap")
        self._run(["monmaptool", "--create", "--addv", "a", f"[v2:127.0.0.1:{self.mon_port}]",
                   "--fsid", self._fsid, monmap])
        self._run(["ceph-mon", "-c", self.conf_path, "--mkfs", "-i", "a", "--monmap", monmap])

    def _make_certificate(self):
        """A self-signed certificate (its own CA) for 127.0.0.1 and localhost."""
        tls_dir = os.path.join(self.workdir, "tls")
        os.makedirs(tls_dir, mode=0o700, exist_ok=True)
        self._run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
                   "-subj", "/CN=127.0.0.1",
                   "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                   "-addext", "basicConstraints=critical,CA:TRUE",
                   "-keyout", os.path.join(tls_dir, "key.pem"),
                   "-out", os.path.join(tls_dir, "cert.pem")])

    def _wipe(self):
        for sub in ("run", "log", "crash", "mon", "osd", "rgw", "tls", "monmap", "ceph.conf"):
            p = os.path.join(self.workdir, sub)
            if os.path.isdir(p):
                shutil.rmtree(p, ignore_errors=True)
            elif os.path.exists(p):
                os.unlink(p)

    def _start_daemons(self):
        self._spawn("ceph-mon", ["ceph-mon", "-f", "-c", self.conf_path, "-i", "a"])
        self._wait_port("ceph-mon", self.mon_port)
        if not self._bootstrapped:
            osd_uuid = str(uuid.uuid4())
            osd_id = self._run(["ceph", "-c", self.conf_path, "--connect-timeout", "30",
                                "osd", "new", osd_uuid], timeout=60).strip()
            if osd_id != "0":
                raise RGWError(f"ceph osd new: id {osd_id!r}, expected 0")
            self._run(["ceph-osd", "-c", self.conf_path, "-i", "0", "--mkfs",
                       "--osd-uuid", osd_uuid], timeout=60)
        self._spawn("ceph-osd", ["ceph-osd", "-f", "-c", self.conf_path, "-i", "0"])
        self._spawn("radosgw", ["radosgw", "-f", "-c", self.conf_path, "-n", "client.rgw.a"])
        self._wait_http()
        if not self._bootstrapped:
            self.admin("user", "create", f"--uid={self.user_id}",
                       "--display-name=lifeboat test", f"--access-key={self.access_key}",
                       f"--secret={self.secret_key}")
            self._bootstrapped = True

    def _spawn(self, name: str, argv: list):
        out = open(os.path.join(self.log_dir, f"{name}.out"), "ab")
        try:
            # A session of its own: a ^C on the terminal reaches us, not the daemons, so
            # they stop in order (gateway, OSD, monitor) from our handler.
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                 cwd=self.workdir, start_new_session=True)
        except BaseException:
            out.close()
            raise
        p._lb_out = out
        self._procs[name] = p
        _watch("+pid", f"{p.pid} {name}")

    @staticmethod
    def _close_out(p):
        out = getattr(p, "_lb_out", None)
        if out is not None:
            out.close()

    def _stop_one(self, name: str, graceful: bool = True):
        p = self._procs.pop(name, None)
        if p is None:
            return
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM if graceful else signal.SIGKILL)
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            except ProcessLookupError:
                pass
        _watch("-pid", str(p.pid))
        self._close_out(p)

    def _check_alive(self):
        for name, p in self._procs.items():
            if p.poll() is not None:
                raise RGWError(f"{name} exited with status {p.returncode} while starting"
                               f"\n{self.log_tail()}")

    def _wait_port(self, name: str, port: int):
        """Waits until daemon name listens on 127.0.0.1:port, while every daemon is alive.
        Raises RGWError ("Address already in use") if another process has the port."""
        deadline = time.monotonic() + self.start_timeout
        while True:
            self._check_alive()
            owner = _listener_pid(port)
            if owner == self._procs[name].pid:
                return
            if owner is not None:
                raise RGWError(f"{name}: 127.0.0.1:{port}: Address already in use "
                               f"(pid {owner})")
            if time.monotonic() > deadline:
                raise RGWError(f"nothing listens on {self.host}:{port} after "
                               f"{self.start_timeout:.0f} s\n{self.log_tail()}")
            time.sleep(0.02)

    def _wait_http(self):
        """Waits until radosgw answers an anonymous GET / with a bucket list (not merely
        until something answers: another program may have taken the port)."""
        deadline = time.monotonic() + self.start_timeout
        while True:
            self._check_alive()
            try:
                c = http.client.HTTPConnection(self.host, self.port, timeout=2)
                try:
                    c.request("GET", "/")
                    body = c.getresponse().read()
                finally:
                    c.close()
                if b"ListAllMyBucketsResult" in body and (
                        not self.tls or _listener_pid(self.tls_port)
                        in (0, self._procs["radosgw"].pid)):
                    return
            except (OSError, http.client.HTTPException):
                pass
            if time.monotonic() > deadline:
                raise RGWError(f"radosgw did not answer on {self.endpoint} within "
                               f"{self.start_timeout:.0f} s\n{self.log_tail()}")
            time.sleep(0.05)

    def _run(self, argv: list, timeout: float = 60) -> str:
        try:
            r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               cwd=self.workdir, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise RGWError(f"{argv[0]}: no answer within {timeout:.0f} s\n{self.log_tail()}")
        if r.returncode != 0:
            raise RGWError(f"{' '.join(argv[:3])}...: exit {r.returncode}: "
                           f"{r.stderr.strip()[-2000:]}\n{self.log_tail()}")
        return r.stdout


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------

def _start_for_cli(args):
    rgw = RGW(memstore_bytes=args.memstore_mib << 20, tls=args.tls)
    rgw.start()
    for b in args.bucket:
        rgw.create_bucket(b)
    proxy = None
    if args.proxy:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import fault_proxy
        proxy = fault_proxy.FaultProxy(rgw.endpoint).start()
    return rgw, proxy


def _proxy_vars(proxy) -> dict:
    if proxy is None:
        return {}
    return {"LIFEBOAT_TEST_S3_PROXY_ENDPOINT": proxy.endpoint,
            "LIFEBOAT_TEST_S3_PROXY_CONTROL": proxy.control_url}


def _tls_vars(rgw) -> dict:
    if not rgw.tls:
        return {}
    return {"LIFEBOAT_TEST_S3_TLS_ENDPOINT": rgw.tls_endpoint,
            "LIFEBOAT_TEST_S3_CA_FILE": rgw.ca_file}


def _cmd_run(args) -> int:
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        print("rgw.py run: no command (usage: rgw.py run [--bucket B]... -- CMD ARGS...)",
              file=sys.stderr)
        return 2
    rgw, proxy = _start_for_cli(args)
    try:
        env = rgw.env(args.bucket[0] if args.bucket else None)
        env.update(_proxy_vars(proxy))
        env.update(_tls_vars(rgw))
        # The terminal's ^C reaches CMD itself; SIGTERM and SIGHUP sent to us are passed
        # on. Either way we wait for CMD, then stop the gateway.
        try:
            child = subprocess.Popen(cmd, env=env)
        except OSError as e:
            print(f"rgw.py run: {cmd[0]}: {e}", file=sys.stderr)
            return 127
        old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for s in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, lambda signum, frame: child.send_signal(signum))
        try:
            rc = child.wait()
        finally:
            for s, h in old.items():
                signal.signal(s, h)
        return rc if rc >= 0 else 128 - rc
    finally:
        if proxy is not None:
            proxy.stop()
        rgw.close()


def _cmd_serve(args) -> int:
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()
    # Installed before RGW() so the module's handlers chain to these and do the cleanup.
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    rgw, proxy = _start_for_cli(args)
    try:
        for k, v in {**rgw.env_vars(args.bucket[0] if args.bucket else None),
                     **_proxy_vars(proxy), **_tls_vars(rgw)}.items():
            print(f"export {k}={v}")
        print(f"# workdir {rgw.workdir}; started in {rgw.start_seconds:.1f} s; "
              "^C or SIGTERM stops it", flush=True)
        while not stop.wait(1):
            if not rgw.running:
                print("rgw: a daemon died\n" + rgw.log_tail(), file=sys.stderr)
                return 1
        return 0
    finally:
        if proxy is not None:
            proxy.stop()
        rgw.close()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="A throw-away Ceph RADOS Gateway (S3) on "
                                             "127.0.0.1 for tests.")
    sub = ap.add_subparsers(dest="command", required=True)
    for name, help_ in (("run", "start RGW, run CMD with the AWS_* variables, stop RGW, "
                                "exit with CMD's status"),
                        ("serve", "start RGW, print export lines, wait for SIGINT/SIGTERM")):
        p = sub.add_parser(name, help=help_)
        p.add_argument("--bucket", action="append", default=[],
                       help="create this bucket (repeatable); the first one is "
                            "LIFEBOAT_TEST_S3_BUCKET")
        p.add_argument("--memstore-mib", type=int, default=4096,
                       help="OSD capacity in MiB, RAM taken as filled (default 4096)")
        p.add_argument("--proxy", action="store_true",
                       help="also start fault_proxy.py in front (mode pass) and export "
                            "LIFEBOAT_TEST_S3_PROXY_ENDPOINT and _CONTROL")
        p.add_argument("--tls", action="store_true",
                       help="also serve HTTPS with a self-signed certificate and export "
                            "LIFEBOAT_TEST_S3_TLS_ENDPOINT and LIFEBOAT_TEST_S3_CA_FILE")
        if name == "run":
            p.add_argument("cmd", nargs=argparse.REMAINDER, help="-- CMD ARGS...")
    args = ap.parse_args(argv)
    try:
        return _cmd_run(args) if args.command == "run" else _cmd_serve(args)
    except RGWError as e:
        print(f"rgw: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
