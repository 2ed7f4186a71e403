#!/usr/bin/env python3
"""A fault-injecting HTTP/1.1 reverse proxy for S3 tests (stdlib only).

It sits on a free 127.0.0.1 port between a client and an S3 server (rgw.py's RGW) and
forwards every request byte for byte: request line and headers exactly as received
(Host included: a SigV4 client signs the Host it connects to, the proxy's, and the
server checks the signature against the Host it receives, the same one), bodies with
Content-Length or chunked, streamed in 64 KiB pieces, "Expect: 100-continue" relayed,
HEAD and ranged GETs untouched. Each client connection keeps one upstream connection.

Modes:
  pass    forward everything.
  faults  (default) with probability p a request gets a fault, drawn uniformly from
          the enabled kinds, from a random.Random(seed). Before that, a queue of forced
          kinds is used up, one per request, whatever p. A regex `match` on
          "METHOD /path?query" limits faults to the requests it finds.
  down    the server is gone: every new connection, and every request on an open
          keep-alive connection, is reset (RST) at once.

Fault kinds (names as in stats and configuration):
  internal-error  500 InternalError, S3 XML body; the request never reaches the server
  slow-down       503 SlowDown, S3 XML body; never reaches the server
  reset-before    the request is read, then the connection reset; never reaches the server
  reset-after     the request is forwarded and answered by the server (so a write did
                  happen), then the client's connection is reset without a response
  stall           the request is read, then the connection is held open without a
                  response for stall_seconds (or until the client gives up), then closed
  truncate        GET only: forwarded; the response's head (full Content-Length) and
                  half of its body are sent, then the connection is closed (a response
                  without body cannot be cut: counted under "skipped" and passed)
  latency         latency_ms of delay, then forwarded normally

With several connections at once the order in which requests draw is the order of
arrival, so a seed reproduces a run exactly only with one request in flight at a time.

Control endpoint (HTTP on its own port, JSON; `control_url`):
  GET  /stats    {"requests", "forwarded", "faults": {kind: n}, "skipped": {kind: n},
                  "connections", "rejected", "upstream_errors"}
  GET  /config   the configuration: {"mode", "p", "kinds", "seed", "stall_seconds",
                  "latency_ms", "match", "queue"}
  POST /config   changes the keys given in a JSON object body and/or as query parameters
                 (?mode=down&p=0.3&kinds=slow-down,stall); answers the new configuration;
                 "seed" restarts the random sequence; 400 on an unknown key or bad value
  POST /reset    zeroes the statistics
Control file (--control-file, control_file=): a JSON object of the same keys, read again
whenever its mtime or size changes (checked at every request); absent = no change.

CLI:
  fault_proxy.py --upstream http://127.0.0.1:PORT [--listen-port 0] [--control-port 0]
      [--mode faults|pass|down] [--p 0.1] [--kinds k1,k2,...] [--seed N]
      [--stall-seconds 30] [--latency-ms 200] [--match REGEX] [--control-file PATH]
      [--port-file PATH]
  prints "fault_proxy: listening on http://127.0.0.1:P control http://127.0.0.1:C",
  runs until SIGINT/SIGTERM, then prints "fault_proxy: stats {json}" and exits 0.

Python:
    with FaultProxy(rgw.endpoint, p=0.3, seed=1) as proxy:
        s3 = rgw.client(endpoint=proxy.endpoint, max_attempts=10)
        proxy.configure(mode="down"); proxy.stats()["faults"]
"""

from __future__ import annotations

import argparse
import dataclasses
import email.utils
import http.server
import json
import os
import random
import re
import select
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse

__all__ = ["FaultProxy", "FAULT_KINDS", "MODES"]

FAULT_KINDS = ("internal-error", "slow-down", "reset-before", "reset-after", "stall",
               "truncate", "latency")
MODES = ("pass", "faults", "down")
_NOT_FORWARDED = ("internal-error", "slow-down", "reset-before", "stall")
_BUF = 64 * 1024
_MAX_HEAD = 64 * 1024


class _Closed(Exception):
    """The client closed or reset its connection (or sent garbage)."""


class _UpstreamClosed(_Closed):
    """The server's connection failed: closed, reset, timed out, or garbage."""


@dataclasses.dataclass
class _Config:
    mode: str = "faults"
    p: float = 0.0
    kinds: tuple = FAULT_KINDS
    seed: int | None = None
    stall_seconds: float = 30.0
    latency_ms: float = 200.0
    match: str | None = None
    queue: tuple = ()

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["kinds"], d["queue"] = list(self.kinds), list(self.queue)
        return d


def _parse_kinds(v) -> tuple:
    if isinstance(v, str):
        v = [k for k in v.split(",") if k.strip()]
    kinds = tuple(k.strip() for k in v)
    for k in kinds:
        if k not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind '{k}' (known: {', '.join(FAULT_KINDS)})")
    return kinds


def _updated(cfg: _Config, changes: dict) -> _Config:
    """cfg with changes applied; raises ValueError on an unknown key or a bad value."""
    c = dataclasses.replace(cfg)
    for key, v in changes.items():
        if key == "mode":
            if v not in MODES:
                raise ValueError(f"mode '{v}' (known: {', '.join(MODES)})")
            c.mode = v
        elif key == "p":
            c.p = float(v)
            if not 0.0 <= c.p <= 1.0:
                raise ValueError(f"p {v} outside [0, 1]")
        elif key == "kinds":
            c.kinds = _parse_kinds(v)
        elif key == "queue":
            c.queue = _parse_kinds(v)
        elif key == "seed":
            c.seed = None if v in (None, "", "none") else int(v)
        elif key == "stall_seconds":
            c.stall_seconds = max(0.0, float(v))
        elif key == "latency_ms":
            c.latency_ms = max(0.0, float(v))
        elif key == "match":
            c.match = v or None
            if c.match:
                re.compile(c.match)
        else:
            raise ValueError(f"unknown key '{key}'")
    return c


class _Reader:
    """Buffered reads from a socket for HTTP framing; raises exc (_Closed or
    _UpstreamClosed) on EOF where more is due, on reset and on a time-out."""

    def __init__(self, sock: socket.socket, exc=_Closed):
        self.sock = sock
        self.exc = exc
        self.buf = bytearray()

    def _fill(self) -> bool:
        try:
            data = self.sock.recv(_BUF)
        except OSError as e:
            raise self.exc(str(e) or type(e).__name__)
        if not data:
            return False
        self.buf += data
        return True

    def head(self) -> bytes | None:
        """Bytes up to and including the blank line; None on a clean EOF before any."""
        while True:
            i = self.buf.find(b"\r\n\r\n")
            if i >= 0:
                out = bytes(self.buf[:i + 4])
                del self.buf[:i + 4]
                return out
            if len(self.buf) > _MAX_HEAD:
                raise self.exc("header too large")
            if not self._fill():
                if self.buf:
                    raise self.exc("eof in header")
                return None

    def line(self) -> bytes:
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                out = bytes(self.buf[:i + 2])
                del self.buf[:i + 2]
                return out
            if len(self.buf) > _MAX_HEAD or not self._fill():
                raise self.exc("eof in chunk line")

    def some(self, n: int) -> bytes:
        """1..n bytes; b'' on EOF."""
        if not self.buf and not self._fill():
            return b""
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def exact(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            b = self.some(n - len(out))
            if not b:
                raise self.exc("eof in body")
            out += b
        return bytes(out)


def _sender(sock, exc=_Closed):
    """A function that sends all of its argument to sock, raising exc on failure."""
    def send(data: bytes):
        if not data:
            return
        try:
            sock.sendall(data)
        except OSError as e:
            raise exc(str(e) or type(e).__name__)
    return send


def _discard(data: bytes):
    pass


def _copy_fixed(src: _Reader, send, n: int):
    while n > 0:
        b = src.some(min(n, _BUF))
        if not b:
            raise src.exc("eof in body")
        send(b)
        n -= len(b)


def _copy_chunked(src: _Reader, send):
    """Copies one chunked body raw (sizes, extensions, trailers) through send."""
    while True:
        line = src.line()
        send(line)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise src.exc(f"bad chunk size line {line[:40]!r}")
        if size == 0:
            while True:               # trailers, then the blank line
                t = src.line()
                send(t)
                if t == b"\r\n":
                    return
        while size > 0:
            b = src.some(min(size, _BUF))
            if not b:
                raise src.exc("eof in chunk")
            send(b)
            size -= len(b)
        send(src.exact(2))


def _copy_until_close(src: _Reader, send):
    while True:
        b = src.some(_BUF)
        if not b:
            return
        send(b)


class _Message:
    """A parsed request or response head; raw is forwarded unchanged."""

    def __init__(self, raw: bytes):
        self.raw = raw
        lines = raw.decode("latin-1").split("\r\n")
        self.first = lines[0]
        self.headers = []
        for ln in lines[1:]:
            if ln and ":" in ln:
                k, v = ln.split(":", 1)
                self.headers.append((k.strip().lower(), v.strip()))

    def get(self, name: str, default: str | None = None) -> str | None:
        for k, v in self.headers:
            if k == name:
                return v
        return default

    def framing(self, exc=_Closed) -> tuple:
        """('chunked', None), ('length', n) or ('none', 0)."""
        te = (self.get("transfer-encoding") or "").lower()
        if "chunked" in te:
            return ("chunked", None)
        cl = self.get("content-length")
        if cl is not None:
            try:
                return ("length", int(cl))
            except ValueError:
                raise exc(f"bad content-length {cl!r}")
        return ("none", 0)

    def wants_close(self, version: str) -> bool:
        conn = (self.get("connection") or "").lower()
        if version == "HTTP/1.0":
            return "keep-alive" not in conn
        return "close" in conn


def _copy_body(src: _Reader, send, framing: tuple):
    """Copies a body framed as ('chunked', _), ('length', n) or ('close', _)."""
    kind, n = framing
    if kind == "chunked":
        _copy_chunked(src, send)
    elif kind == "length":
        _copy_fixed(src, send, n)
    elif kind == "close":
        _copy_until_close(src, send)


class _Connection:
    """A client connection and the upstream connection that serves it."""

    def __init__(self, client: socket.socket):
        self.client = client
        self.reader = _Reader(client, _Closed)
        self.send = _sender(client, _Closed)
        self.up = None
        self.up_reader = None
        self.up_send = None


def _reset(sock):
    """Closes with RST instead of FIN: the peer sees 'connection reset by peer'."""
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def _close(sock):
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class FaultProxy:
    """The proxy. upstream: "http://HOST:PORT" of the server. listen_port / control_port:
    0 = a free port; control_port None = no control endpoint. Other arguments: see the
    module doc. start() returns self; stop() closes every connection and joins the
    threads. configure(), config(), stats(), reset_stats() are thread-safe."""

    def __init__(self, upstream: str, *, listen_port: int = 0, control_port: int | None = 0,
                 mode: str = "faults", p: float = 0.0, kinds=FAULT_KINDS,
                 seed: int | None = None, stall_seconds: float = 30.0,
                 latency_ms: float = 200.0, match: str | None = None, queue=(),
                 control_file: str | None = None, upstream_timeout: float = 120.0):
        u = urllib.parse.urlsplit(upstream)
        if u.scheme != "http" or not u.hostname:
            raise ValueError(f"upstream '{upstream}': need http://HOST:PORT")
        self.upstream = (u.hostname, u.port or 80)
        self.upstream_timeout = upstream_timeout
        self.control_file = control_file
        self._control_file_sig = None
        self._lock = threading.Lock()
        self._cfg = _updated(_Config(), dict(mode=mode, p=p, kinds=kinds, seed=seed,
                                             stall_seconds=stall_seconds,
                                             latency_ms=latency_ms, match=match,
                                             queue=queue))
        self._rng = random.Random(seed)
        self._stats = self._zero_stats()
        self._request_no = 0
        self._stop = threading.Event()
        self._socks: set = set()
        self._threads: set = set()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", listen_port))
        self._listener.listen(128)
        self.port = self._listener.getsockname()[1]
        self._control = None
        self.control_port = None
        if control_port is not None:
            self._control = self._make_control_server(control_port)
            self.control_port = self._control.server_address[1]
        self._accept_thread = None
        self._control_thread = None
        self._load_control_file()

    # ---- public ----

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def control_url(self) -> str | None:
        return None if self.control_port is None else f"http://127.0.0.1:{self.control_port}"

    def start(self) -> "FaultProxy":
        self._accept_thread = threading.Thread(target=self._accept_loop, daemon=True,
                                               name="fault-proxy-accept")
        self._accept_thread.start()
        if self._control is not None:
            self._control_thread = threading.Thread(target=self._control.serve_forever,
                                                    kwargs={"poll_interval": 0.2},
                                                    daemon=True, name="fault-proxy-control")
            self._control_thread.start()
        return self

    def stop(self):
        if self._stop.is_set():
            return
        self._stop.set()
        _close(self._listener)
        if self._control is not None:
            if self._control_thread is not None:
                self._control.shutdown()
            self._control.server_close()
        with self._lock:
            socks, threads = list(self._socks), list(self._threads)
        for s in socks:
            _close(s)
        for t in threads + [self._accept_thread]:
            if t is not None and t is not threading.current_thread():
                t.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def configure(self, **changes) -> dict:
        """Changes the configuration (keys of config()); returns the new one. A new
        "seed" restarts the random sequence. Raises ValueError."""
        with self._lock:
            self._cfg = _updated(self._cfg, changes)
            if "seed" in changes:
                self._rng = random.Random(self._cfg.seed)
            return self._cfg.as_dict()

    def config(self) -> dict:
        with self._lock:
            return self._cfg.as_dict()

    def stats(self) -> dict:
        with self._lock:
            return json.loads(json.dumps(self._stats))

    def reset_stats(self):
        with self._lock:
            self._stats = self._zero_stats()

    # ---- internals ----

    @staticmethod
    def _zero_stats() -> dict:
        return {"requests": 0, "forwarded": 0, "faults": {k: 0 for k in FAULT_KINDS},
                "skipped": {}, "connections": 0, "rejected": 0, "upstream_errors": 0}

    def _count(self, key: str, kind: str | None = None):
        with self._lock:
            if kind is None:
                self._stats[key] += 1
            else:
                self._stats[key][kind] = self._stats[key].get(kind, 0) + 1

    def _load_control_file(self):
        if not self.control_file:
            return
        try:
            st = os.stat(self.control_file)
        except OSError:
            return
        sig = (st.st_mtime_ns, st.st_size)
        if sig == self._control_file_sig:
            return
        try:
            with open(self.control_file) as f:
                changes = json.load(f)
            self.configure(**changes)
        except (OSError, ValueError, TypeError) as e:
            print(f"fault_proxy: control file {self.control_file}: {e}", file=sys.stderr)
        self._control_file_sig = sig

    def _choose(self, method: str, target: str) -> tuple:
        """(config snapshot, fault kind or None) for the next request."""
        with self._lock:
            self._stats["requests"] += 1
            self._request_no += 1
            cfg = self._cfg
            if cfg.mode != "faults":
                return cfg, None
            if cfg.match and not re.search(cfg.match, f"{method} {target}"):
                return cfg, None
            if cfg.queue:
                self._cfg = dataclasses.replace(cfg, queue=cfg.queue[1:])
                return cfg, cfg.queue[0]
            hit = self._rng.random() < cfg.p
            pick = self._rng.random()
            kinds = [k for k in cfg.kinds if k != "truncate" or method == "GET"]
            if not hit or not kinds:
                return cfg, None
            return cfg, kinds[min(int(pick * len(kinds)), len(kinds) - 1)]

    def _track(self, sock, add: bool):
        with self._lock:
            (self._socks.add if add else self._socks.discard)(sock)

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self._count("connections")
            self._load_control_file()
            with self._lock:
                down = self._cfg.mode == "down"
            if down:
                self._count("rejected")
                _reset(conn)
                continue
            t = threading.Thread(target=self._serve_connection, args=(conn,), daemon=True,
                                 name="fault-proxy-conn")
            with self._lock:
                self._threads.add(t)
                self._socks.add(conn)
            t.start()

    def _serve_connection(self, client):
        conn = _Connection(client)
        keep = True
        try:
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while keep and not self._stop.is_set():
                keep = self._serve_request(conn)
        except _Closed:
            pass
        except Exception as e:  # a bug here must not take the proxy down
            print(f"fault_proxy: connection error: {e!r}", file=sys.stderr)
        finally:
            self._track(client, False)
            _close(client)
            self._drop_upstream(conn)
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _drop_upstream(self, conn):
        if conn.up is not None:
            self._track(conn.up, False)
            _close(conn.up)
        conn.up = conn.up_reader = conn.up_send = None

    def _connect_upstream(self, conn):
        """Makes sure conn has a live upstream connection; raises _UpstreamClosed."""
        if conn.up is not None:
            # An idle keep-alive connection is readable only when the server closed it
            # (or sent garbage): either way it is no use any more.
            try:
                readable = bool(select.select([conn.up], [], [], 0)[0])
            except (OSError, ValueError):
                readable = True
            if readable:
                self._drop_upstream(conn)
        if conn.up is None:
            try:
                up = socket.create_connection(self.upstream, timeout=10)
            except OSError as e:
                raise _UpstreamClosed(f"connect: {e}")
            up.settimeout(self.upstream_timeout)
            up.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._track(up, True)
            conn.up = up
            conn.up_reader = _Reader(up, _UpstreamClosed)
            conn.up_send = _sender(up, _UpstreamClosed)

    def _error_response(self, method: str, path: str, kind: str, keep: bool) -> bytes:
        code, status, msg = {
            "internal-error": ("InternalError", "500 Internal Server Error",
                               "We encountered an internal error. Please try again."),
            "slow-down": ("SlowDown", "503 Slow Down", "Please reduce your request rate."),
        }[kind]
        with self._lock:
            rid = f"fault-{self._request_no:08d}"
        body = ('<?xml version="1.0" encoding="UTF-8"?>'
                f"<Error><Code>{code}</Code><Message>{msg}</Message>"
                f"<Resource>{_xml_escape(path)}</Resource><RequestId>{rid}</RequestId>"
                "</Error>").encode()
        head = (f"HTTP/1.1 {status}\r\n"
                f"Date: {email.utils.formatdate(usegmt=True)}\r\n"
                "Server: fault_proxy\r\n"
                f"x-amz-request-id: {rid}\r\n"
                "Content-Type: application/xml\r\n"
                f"Content-Length: {len(body)}\r\n"
                f"Connection: {'Keep-Alive' if keep else 'close'}\r\n\r\n").encode()
        return head + (b"" if method == "HEAD" else body)

    def _stall(self, client, seconds: float):
        """Holds the connection without answering until seconds pass, the client closes
        it, or the proxy stops."""
        deadline = time.monotonic() + seconds
        while not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                r, _, _ = select.select([client], [], [], min(left, 0.2))
                if r and client.recv(_BUF) == b"":
                    return
            except (OSError, ValueError):
                return

    def _serve_request(self, conn) -> bool:
        """Serves one request of a client connection; True to keep the connection.
        Raises _Closed when the connection is done with."""
        raw = conn.reader.head()
        if raw is None:
            return False
        self._load_control_file()
        req = _Message(raw)
        parts = req.first.split(" ")
        if len(parts) != 3:
            raise _Closed(f"bad request line {req.first[:80]!r}")
        method, target, version = parts
        cfg, kind = self._choose(method, target)
        if cfg.mode == "down":
            self._count("rejected")
            _reset(conn.client)
            raise _Closed("down")
        framing = req.framing()
        expect = (req.get("expect") or "").lower() == "100-continue"
        keep = not req.wants_close(version)

        if kind in _NOT_FORWARDED:
            # Act as the server: take the whole request first, as S3 does.
            if expect:
                conn.send(b"HTTP/1.1 100 Continue\r\n\r\n")
            _copy_body(conn.reader, _discard, framing)
            self._count("faults", kind)
            if kind in ("internal-error", "slow-down"):
                path = urllib.parse.unquote(target.split("?", 1)[0])
                conn.send(self._error_response(method, path, kind, keep))
                return keep
            if kind == "stall":
                self._stall(conn.client, cfg.stall_seconds)
                raise _Closed("stalled")
            _reset(conn.client)
            raise _Closed("reset-before")
        if kind == "latency":
            self._count("faults", kind)
            if self._stop.wait(cfg.latency_ms / 1000.0):
                raise _Closed("stopping")

        try:
            self._connect_upstream(conn)
            conn.up_send(raw)
            if expect:
                resp = _Message(conn.up_reader.head() or b"")
                if _status(resp) == 100:
                    conn.send(resp.raw)
                    _copy_body(conn.reader, conn.up_send, framing)
                    resp = self._response_head(conn)
                else:
                    keep = False        # the client may or may not send its body now
            else:
                _copy_body(conn.reader, conn.up_send, framing)
                resp = self._response_head(conn)
        except _UpstreamClosed as e:
            # The server is unreachable or failed mid-request: so is the proxy.
            self._count("upstream_errors")
            self._drop_upstream(conn)
            _reset(conn.client)
            raise _Closed(f"upstream: {e}")
        self._count("forwarded")
        status = _status(resp)
        if method == "HEAD" or status in (204, 304):
            rframing = ("length", 0)
        else:
            rframing = resp.framing(_UpstreamClosed)
            if rframing[0] == "none":
                rframing = ("close", None)      # no length given: the body ends at EOF
        up_keep = (rframing[0] != "close"
                   and not resp.wants_close(resp.first.split(" ", 1)[0]))

        if kind == "reset-after":
            self._count("faults", kind)
            self._drop_upstream(conn)
            _reset(conn.client)
            raise _Closed("reset-after")
        if kind == "truncate":
            if self._truncate(conn, resp, rframing):
                self._count("faults", kind)
                self._drop_upstream(conn)
                _close(conn.client)
                raise _Closed("truncated")
            self._count("skipped", kind)
        else:
            conn.send(resp.raw)
            try:
                _copy_body(conn.up_reader, conn.send, rframing)
            except _UpstreamClosed:
                self._count("upstream_errors")
                self._drop_upstream(conn)
                _reset(conn.client)     # the client must not take a cut body as whole
                raise
        if not up_keep:
            self._drop_upstream(conn)
        return keep and up_keep

    def _response_head(self, conn) -> _Message:
        while True:
            raw = conn.up_reader.head()
            if raw is None:
                raise _UpstreamClosed("closed before responding")
            resp = _Message(raw)
            if _status(resp) != 100:
                return resp

    def _truncate(self, conn, resp: _Message, rframing) -> bool:
        """Sends the head and half the body, then the caller closes. False (and the whole
        response sent) when there is no body to cut."""
        if rframing[0] == "length" and rframing[1] > 0:
            conn.send(resp.raw)
            _copy_fixed(conn.up_reader, conn.send, rframing[1] // 2)
            return True
        if rframing[0] == "chunked":
            body = bytearray()
            _copy_chunked(conn.up_reader, body.extend)
            conn.send(resp.raw)
            conn.send(bytes(body[:len(body) // 2]))
            return True
        conn.send(resp.raw)
        _copy_body(conn.up_reader, conn.send, rframing)
        return False

    def _make_control_server(self, port: int):
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, code: int, obj):
                body = (json.dumps(obj, sort_keys=True) + "\n").encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                path = self.path.split("?", 1)[0]
                if path == "/stats":
                    self._reply(200, proxy.stats())
                elif path == "/config":
                    self._reply(200, proxy.config())
                else:
                    self._reply(404, {"error": f"no such path {path}"})

            def do_POST(self):
                path, _, qs = self.path.partition("?")
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                if path == "/reset":
                    proxy.reset_stats()
                    self._reply(200, proxy.stats())
                    return
                if path != "/config":
                    self._reply(404, {"error": f"no such path {path}"})
                    return
                try:
                    changes = dict(urllib.parse.parse_qsl(qs, keep_blank_values=True))
                    if body.strip():
                        obj = json.loads(body)
                        if not isinstance(obj, dict):
                            raise ValueError("body must be a JSON object")
                        changes.update(obj)
                    self._reply(200, proxy.configure(**changes))
                except (ValueError, TypeError) as e:
                    self._reply(400, {"error": str(e)})

            do_PUT = do_POST

        srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        srv.daemon_threads = True
        return srv


def _status(msg: _Message) -> int:
    """The status code of a response head; raises _UpstreamClosed on garbage."""
    try:
        return int(msg.first.split(" ", 2)[1])
    except (IndexError, ValueError):
        raise _UpstreamClosed(f"bad status line {msg.first[:80]!r}")


def _xml_escape(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Fault-injecting HTTP/1.1 reverse proxy for "
                                             "S3 tests (see the module doc).")
    ap.add_argument("--upstream", required=True, help="http://HOST:PORT of the S3 server")
    ap.add_argument("--listen-port", type=int, default=0, help="0 = a free port (default)")
    ap.add_argument("--control-port", type=int, default=0, help="0 = a free port (default)")
    ap.add_argument("--mode", choices=MODES, default="faults")
    ap.add_argument("--p", type=float, default=0.0, help="fault probability per request")
    ap.add_argument("--kinds", default=",".join(FAULT_KINDS),
                    help="comma-separated fault kinds to draw from (default: all)")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--stall-seconds", type=float, default=30.0)
    ap.add_argument("--latency-ms", type=float, default=200.0)
    ap.add_argument("--match", default=None, help="regex on 'METHOD /path?query'")
    ap.add_argument("--control-file", default=None,
                    help="JSON configuration re-read when it changes")
    ap.add_argument("--port-file", default=None,
                    help='write {"port": P, "control_port": C} here once listening')
    args = ap.parse_args(argv)
    try:
        proxy = FaultProxy(args.upstream, listen_port=args.listen_port,
                           control_port=args.control_port, mode=args.mode, p=args.p,
                           kinds=_parse_kinds(args.kinds), seed=args.seed,
                           stall_seconds=args.stall_seconds, latency_ms=args.latency_ms,
                           match=args.match, control_file=args.control_file)
    except (ValueError, OSError) as e:
        print(f"fault_proxy: {e}", file=sys.stderr)
        return 2
    done = threading.Event()
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, lambda *_: done.set())
    proxy.start()
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"port": proxy.port, "control_port": proxy.control_port}, f)
        os.replace(tmp, args.port_file)
    print(f"fault_proxy: listening on {proxy.endpoint} control {proxy.control_url}",
          flush=True)
    while not done.wait(1):
        pass
    proxy.stop()
    print(f"fault_proxy: stats {json.dumps(proxy.stats(), sort_keys=True)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
