#!/usr/bin/env python3
"""Self test of the S3 test infrastructure (rgw.py, fault_proxy.py) against a real RADOS
Gateway, and a record of what this RGW does where S3 implementations differ.

  - the gateway: start time, memory, loopback only, S3 basics through boto3 (put, get,
    ranged get, head, list, delete, multipart upload and abort), SigV4 with several
    region strings, a wrong secret, an unknown key, a missing bucket and key;
  - conditional writes: PUT with If-None-Match: * (and If-Match, which RGW 16 matches
    only against the unquoted ETag);
  - the proxy: byte-for-byte forwarding (SigV4 still verifies), every fault kind once,
    then p=0.3 over a workload with a retrying client (data must round-trip, every kind
    must have happened), "down" failing fast, control endpoint and control file;
  - HTTPS: RGW(tls=True) with its self-signed certificate;
  - lifecycle: two gateways at once, stop/start and restart_gateway keep data, the CLI,
    and no daemon left behind after success, a failed assertion, SIGINT or SIGKILL.
Exits non-zero on any failure; the last line is 'N passed, N failed'.
"""

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import rgw as R  # noqa: E402

R.require_boto3()
import botocore.exceptions  # noqa: E402
from fault_proxy import FAULT_KINDS, FaultProxy  # noqa: E402

results = []


def check(name, ok, detail=""):
    results.append((name, bool(ok)))
    print(f"{'PASS' if ok else 'FAIL'} {name}" + (f": {detail}" if detail else ""), flush=True)
    return ok


def info(msg):
    print(f"INFO {msg}", flush=True)


def expect_error(fn, code=None):
    """The S3 error code (or exception class name) that fn raises; None if it succeeds."""
    try:
        fn()
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"]
    except Exception as e:  # transport errors
        return type(e).__name__
    return None


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_gone(pids, timeout=15.0) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [p for p in pids if pid_alive(p)]
        if not alive:
            return []
        time.sleep(0.1)
    return [p for p in pids if pid_alive(p)]


# ---- a client that retries ----------------------------------------------------------

RETRYABLE_CODES = {"InternalError", "SlowDown", "ServiceUnavailable", "500", "503"}


def retrying(fn, attempts=20):
    """Calls fn until it returns, retrying transport errors and 500/503 (what a real
    driver must retry), with a short pause. Other errors are raised at once."""
    for i in range(attempts):
        try:
            return fn()
        except botocore.exceptions.ClientError as e:
            if e.response["Error"]["Code"] not in RETRYABLE_CODES or i == attempts - 1:
                raise
        except (botocore.exceptions.BotoCoreError, OSError):
            # ConnectionClosedError, ReadTimeoutError, EndpointConnectionError,
            # IncompleteReadError / ResponseStreamingError (a cut body), plain resets.
            if i == attempts - 1:
                raise
        except Exception as e:
            # A body cut short surfaces from urllib3 unwrapped in some botocore versions.
            if "ProtocolError" not in type(e).__name__ or i == attempts - 1:
                raise
        time.sleep(0.01)


def get_bytes(s3, bucket, key, **kw):
    return retrying(lambda: s3.get_object(Bucket=bucket, Key=key, **kw)["Body"].read())


# ---- the gateway --------------------------------------------------------------------

def test_gateway(g):
    info(f"endpoint {g.endpoint}, region {g.region}, workdir {g.workdir}")
    rss = g.rss_bytes()
    total = sum(rss.values())
    check("gateway started", g.running, f"{g.start_seconds:.2f} s, RSS {total / 1e6:.0f} MB "
          + ", ".join(f"{k} {v / 1e6:.0f}" for k, v in sorted(rss.items())))
    listening = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True).stdout
    ours = [ln for ln in listening.splitlines()
            if any(f"pid={p.pid}," in ln for p in g._procs.values())]
    check("daemons listen on 127.0.0.1 only", ours and all(" 127.0.0.1:" in ln for ln in ours),
          f"{len(ours)} sockets")

    t0 = time.monotonic()
    g.create_bucket("lifeboat-selftest")
    check("create bucket", True, f"{time.monotonic() - t0:.2f} s (the first creates pools)")
    b = "lifeboat-selftest"
    s3 = g.client(max_attempts=1)

    body = os.urandom(300_000)
    s3.put_object(Bucket=b, Key="dir/obj 1", Body=body)
    check("put/get", s3.get_object(Bucket=b, Key="dir/obj 1")["Body"].read() == body)
    r = s3.get_object(Bucket=b, Key="dir/obj 1", Range="bytes=1000-1999")
    check("ranged get", r["Body"].read() == body[1000:2000]
          and r["ContentRange"] == f"bytes 1000-1999/{len(body)}", r["ContentRange"])
    check("head", s3.head_object(Bucket=b, Key="dir/obj 1")["ContentLength"] == len(body))
    for i in range(3):
        s3.put_object(Bucket=b, Key=f"dir/k{i}", Body=b"%d" % i)
    page = s3.list_objects_v2(Bucket=b, Prefix="dir/", MaxKeys=2)
    page2 = s3.list_objects_v2(Bucket=b, Prefix="dir/", MaxKeys=2,
                               ContinuationToken=page["NextContinuationToken"])
    keys = [o["Key"] for o in page["Contents"] + page2["Contents"]]
    check("list v2 with continuation", keys == ["dir/k0", "dir/k1", "dir/k2", "dir/obj 1"],
          str(keys))
    s3.delete_object(Bucket=b, Key="dir/k0")
    check("delete", expect_error(lambda: s3.head_object(Bucket=b, Key="dir/k0")) == "404")
    r = s3.delete_objects(Bucket=b, Delete={"Objects": [{"Key": "dir/k1"}, {"Key": "dir/k2"}]})
    check("delete_objects", len(r.get("Deleted", [])) == 2)

    parts = [os.urandom(5 << 20), os.urandom(5 << 20), os.urandom(1234)]
    up = s3.create_multipart_upload(Bucket=b, Key="mp")
    etags = [s3.upload_part(Bucket=b, Key="mp", UploadId=up["UploadId"], PartNumber=i + 1,
                            Body=p)["ETag"] for i, p in enumerate(parts)]
    s3.complete_multipart_upload(
        Bucket=b, Key="mp", UploadId=up["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": i + 1, "ETag": e}
                                   for i, e in enumerate(etags)]})
    got = s3.get_object(Bucket=b, Key="mp")["Body"].read()
    check("multipart upload (5 MiB + 5 MiB + 1234 B)", got == b"".join(parts))
    up = s3.create_multipart_upload(Bucket=b, Key="mp-aborted")
    s3.upload_part(Bucket=b, Key="mp-aborted", UploadId=up["UploadId"], PartNumber=1, Body=b"x")
    s3.abort_multipart_upload(Bucket=b, Key="mp-aborted", UploadId=up["UploadId"])
    check("abort multipart leaves no upload",
          not s3.list_multipart_uploads(Bucket=b).get("Uploads"))

    # Region: RGW 16 takes the region of the SigV4 scope as given.
    for region in ("us-east-1", "default", "eu-central-1"):
        r = g.request("GET", f"/{b}/mp", region=region, headers={"Range": "bytes=0-0"})
        check(f"SigV4 with region '{region}'", r.status == 206, str(r))
    r = g.request("GET", f"/{b}/mp", secret_key="x" * 40)
    check("wrong secret: 403 SignatureDoesNotMatch",
          r.status == 403 and r.error_code == "SignatureDoesNotMatch", str(r))
    r = g.request("GET", f"/{b}/mp", access_key="NOSUCHKEY0000000000")
    check("unknown key: 403 InvalidAccessKeyId",
          r.status == 403 and r.error_code == "InvalidAccessKeyId", str(r))
    r = g.request("GET", "/no-such-bucket/x")
    check("missing bucket: 404 NoSuchBucket", r.status == 404 and r.error_code == "NoSuchBucket",
          str(r))
    r = g.request("GET", f"/{b}/no-such-key")
    check("missing key: 404 NoSuchKey", r.status == 404 and r.error_code == "NoSuchKey", str(r))

    # Conditional writes.
    r1 = g.request("PUT", f"/{b}/cond", body=b"first", headers={"If-None-Match": "*"})
    r2 = g.request("PUT", f"/{b}/cond", body=b"second", headers={"If-None-Match": "*"})
    kept = s3.get_object(Bucket=b, Key="cond")["Body"].read()
    honoured = r1.status == 200 and r2.status == 412 and kept == b"first"
    check("PUT If-None-Match: * honoured (200 new, 412 PreconditionFailed existing)", honoured,
          f"new {r1}, existing {r2}, object {kept!r}")
    etag = g.request("HEAD", f"/{b}/cond").headers["etag"]
    quoted = g.request("PUT", f"/{b}/cond", body=b"x", headers={"If-Match": etag})
    bare = g.request("PUT", f"/{b}/cond", body=b"third", headers={"If-Match": etag.strip('"')})
    check("PUT If-Match: RGW 16 matches the bare ETag only (quoted: 412)",
          quoted.status == 412 and bare.status == 200, f"quoted {quoted}, bare {bare}")
    return b


# ---- the proxy ----------------------------------------------------------------------

def test_proxy_kinds(g, b):
    with FaultProxy(g.endpoint, seed=7, stall_seconds=30) as px:
        s3 = g.client(endpoint=px.endpoint, max_attempts=1, read_timeout=2)
        s3.put_object(Bucket=b, Key="px/a", Body=b"A" * 100_000)
        check("through proxy: SigV4 verifies with the Host forwarded unchanged",
              s3.get_object(Bucket=b, Key="px/a")["Body"].read() == b"A" * 100_000)
        big = os.urandom(3 << 20)
        with tempfile.NamedTemporaryFile(prefix="lifeboat-s3-") as f:
            f.write(big)
            f.flush()
            # curl asks Expect: 100-continue for a body over 1 MiB, as libcurl does.
            r = subprocess.run(
                ["curl", "-sS", "-f", "-v", "-T", f.name, "--aws-sigv4",
                 f"aws:amz:{g.region}:s3", "--user", f"{g.access_key}:{g.secret_key}",
                 "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD", f"{px.endpoint}/{b}/px/curl"],
                capture_output=True, text=True)
        check("through proxy: curl PUT with Expect: 100-continue",
              r.returncode == 0 and "100 CONTINUE" in r.stderr.upper()
              and get_bytes(s3, b, "px/curl") == big, r.stderr[-300:] if r.returncode else "")
        outcomes = {}
        for kind in FAULT_KINDS:
            px.configure(queue=[kind], stall_seconds=4)
            t0 = time.monotonic()
            outcomes[kind] = expect_error(
                lambda: s3.get_object(Bucket=b, Key="px/a")["Body"].read())
            outcomes[kind] = (outcomes[kind], round(time.monotonic() - t0, 1))
        st = px.stats()
        info(f"one of each kind, GET with read timeout 2 s: {outcomes}")
        check("each fault kind injected once", all(st["faults"][k] == 1 for k in FAULT_KINDS),
              json.dumps(st["faults"]))
        check("500 -> InternalError, 503 -> SlowDown",
              outcomes["internal-error"][0] == "InternalError"
              and outcomes["slow-down"][0] == "SlowDown")
        check("latency -> success", outcomes["latency"][0] is None)
        check("resets, stall, truncate -> transport errors",
              all(outcomes[k][0] not in (None, "InternalError", "SlowDown")
                  for k in ("reset-before", "reset-after", "stall", "truncate")))
        check("stall outlasts the client's 2 s read timeout", outcomes["stall"][1] >= 1.5,
              f"{outcomes['stall'][1]} s")

        # After forwarding: the write happened although the client saw a reset.
        px.configure(queue=["reset-after"])
        err = expect_error(lambda: s3.put_object(Bucket=b, Key="px/after", Body=b"written"))
        ok = get_bytes(s3, b, "px/after") == b"written"
        px.configure(queue=["reset-before"])
        err2 = expect_error(lambda: s3.put_object(Bucket=b, Key="px/before", Body=b"x"))
        missing = expect_error(lambda: s3.head_object(Bucket=b, Key="px/before")) == "404"
        check("reset-after: client error yet object written; reset-before: not written",
              err and ok and err2 and missing, f"{err}, {err2}")
        px.configure(queue=["reset-after"])
        first = None
        try:
            g.request("PUT", f"/{b}/px/cond", body=b"1", headers={"If-None-Match": "*"},
                      endpoint=px.endpoint)
        except OSError as e:
            first = type(e).__name__
        again = g.request("PUT", f"/{b}/px/cond", body=b"1", headers={"If-None-Match": "*"},
                          endpoint=px.endpoint)
        check("conditional PUT retried after a lost response gets 412 (ambiguous to a driver)",
              first is not None and again.status == 412, f"first {first}, retry {again}")


def test_proxy_workload(g, b):
    """p = 0.3 over every kind with a retrying client: data must round-trip."""
    rnd = random.Random(42)
    with FaultProxy(g.endpoint, p=0.3, seed=1234, stall_seconds=10, latency_ms=50) as px:
        s3 = g.client(endpoint=px.endpoint, max_attempts=1, read_timeout=1,
                      connect_timeout=2)
        written = {}
        t0 = time.monotonic()
        rounds = 0
        while rounds < 400:
            rounds += 1
            key = f"w/{rounds:04d}"
            size = rnd.choice([0, 1, 1000, 70_000, 1_100_000])
            data = os.urandom(size)
            retrying(lambda: s3.put_object(Bucket=b, Key=key, Body=data))
            written[key] = data
            if get_bytes(s3, b, key) != data:
                check(f"workload: {key} round-trips", False)
                break
            if size >= 1000:
                lo = rnd.randrange(size // 2)
                got = get_bytes(s3, b, key, Range=f"bytes={lo}-{lo + 99}")
                if got != data[lo:lo + 100]:
                    check(f"workload: ranged get of {key}", False)
                    break
            if rounds % 5 == 0:
                gone = rnd.choice(sorted(written))
                retrying(lambda: s3.delete_object(Bucket=b, Key=gone))
                del written[gone]
            st = px.stats()
            if rounds >= 30 and all(st["faults"][k] > 0 for k in FAULT_KINDS):
                break
        listed = []
        pager = s3.get_paginator("list_objects_v2")
        retrying(lambda: listed.extend(
            o["Key"] for page in pager.paginate(Bucket=b, Prefix="w/") for o in
            page.get("Contents", [])) or True)
        st = px.stats()
        info(f"workload: {rounds} rounds in {time.monotonic() - t0:.1f} s, proxy stats "
             f"{json.dumps(st, sort_keys=True)}")
        check("workload through p=0.3: every fault kind happened",
              all(st["faults"][k] > 0 for k in FAULT_KINDS), json.dumps(st["faults"]))
        check("workload: faults are about 30% of requests",
              0.15 < sum(st["faults"].values()) / max(1, st["requests"]) < 0.45)
        direct = g.client()
        final = {o["Key"] for page in direct.get_paginator("list_objects_v2").paginate(
            Bucket=b, Prefix="w/") for o in page.get("Contents", [])}
        check("workload: listing (through the proxy and direct) has exactly the live keys",
              set(listed) == set(written) == final,
              f"{len(written)} live, {len(set(listed))} listed, {len(final)} direct")
        ok = all(direct.get_object(Bucket=b, Key=k)["Body"].read() == v
                 for k, v in written.items())
        check("workload: every live object reads back intact (direct)", ok)

        # Server gone: a client with one try fails at once, then it comes back.
        px.configure(mode="down")
        t0 = time.monotonic()
        err = expect_error(lambda: s3.head_bucket(Bucket=b))
        took = time.monotonic() - t0
        check("down: fails fast", err is not None and took < 2, f"{err} in {took:.2f} s")
        try:
            g.request("GET", f"/{b}/w/0001", endpoint=px.endpoint, timeout=5)
            raw = None
        except OSError as e:
            raw = type(e).__name__
        check("down: raw client sees a reset", raw in ("ConnectionResetError",
                                                       "RemoteDisconnected",
                                                       "BrokenPipeError"), str(raw))
        px.configure(mode="pass")
        check("pass again: works", expect_error(lambda: s3.head_bucket(Bucket=b)) is None)


def test_proxy_control(g, b):
    with tempfile.TemporaryDirectory(prefix="lifeboat-fp-") as d:
        ctl = os.path.join(d, "control.json")
        portfile = os.path.join(d, "ports.json")
        p = subprocess.Popen([sys.executable, os.path.join(HERE, "fault_proxy.py"),
                              "--upstream", g.endpoint, "--mode", "pass", "--seed", "3",
                              "--control-file", ctl, "--port-file", portfile],
                             stdout=subprocess.PIPE, text=True, start_new_session=True)
        try:
            line = p.stdout.readline()
            ports = json.load(open(portfile))
            ep = f"http://127.0.0.1:{ports['port']}"
            cu = f"http://127.0.0.1:{ports['control_port']}"
            check("CLI: prints where it listens", ep in line and cu in line, line.strip())

            def post(path, body=None):
                req = urllib.request.Request(cu + path, method="POST",
                                             data=json.dumps(body).encode() if body else None)
                return json.loads(urllib.request.urlopen(req, timeout=5).read())
            cfg = post("/config", {"queue": ["slow-down"]})
            r1 = g.request("GET", f"/{b}/mp", endpoint=ep, headers={"Range": "bytes=0-0"})
            cfg2 = post("/config?mode=faults")
            r2 = g.request("GET", f"/{b}/mp", endpoint=ep, headers={"Range": "bytes=0-0"})
            r3 = g.request("GET", f"/{b}/mp", endpoint=ep, headers={"Range": "bytes=0-0"})
            check("control endpoint: POST /config queues a fault, applied in mode faults",
                  cfg["queue"] == ["slow-down"] and r1.status == 206
                  and cfg2["mode"] == "faults" and cfg2["queue"] == ["slow-down"]
                  and r2.error_code == "SlowDown" and r3.status == 206, f"{r1}, {r2}, {r3}")
            stats = json.loads(urllib.request.urlopen(cu + "/stats", timeout=5).read())
            check("control endpoint: GET /stats counts it",
                  stats["faults"]["slow-down"] == 1 and stats["requests"] == 3,
                  json.dumps(stats, sort_keys=True))
            bad = None
            try:
                post("/config", {"mode": "sideways"})
            except urllib.error.HTTPError as e:
                bad = e.code
            check("control endpoint: bad value -> 400", bad == 400)
            with open(ctl + ".tmp", "w") as f:
                json.dump({"mode": "down"}, f)
            os.replace(ctl + ".tmp", ctl)
            try:
                g.request("GET", f"/{b}/mp", endpoint=ep, timeout=5)
                down = False
            except OSError:
                down = True
            with open(ctl + ".tmp", "w") as f:
                json.dump({"mode": "pass", "p": 0.5}, f)
            os.replace(ctl + ".tmp", ctl)
            back = g.request("GET", f"/{b}/mp", endpoint=ep, headers={"Range": "bytes=0-0"})
            check("control file: down, then pass again", down and back.status == 206, str(back))
        finally:
            p.send_signal(signal.SIGTERM)
            out, _ = p.communicate(timeout=15)
        check("CLI: stats printed at exit",
              p.returncode == 0 and '"slow-down": 1' in out and "fault_proxy: stats" in out,
              out.strip().splitlines()[-1] if out.strip() else "")


# ---- lifecycle ----------------------------------------------------------------------

def test_two_and_restart(g, b):
    s3 = g.client()
    with R.RGW() as g2:
        g2.create_bucket("second")
        other = g2.client()
        other.put_object(Bucket="second", Key="k", Body=b"2")
        iso = (expect_error(lambda: other.head_bucket(Bucket=b)) == "404"
               and expect_error(lambda: s3.head_bucket(Bucket="second")) == "404")
        check("two gateways at once, isolated", iso and g.port != g2.port,
              f"{g2.start_seconds:.2f} s, ports {g.port} {g2.port}, RSS "
              f"{sum(g2.rss_bytes().values()) / 1e6:.0f} MB")
        pids2 = [p.pid for p in g2._procs.values()]
    check("second gateway's daemons gone after close", not wait_gone(pids2, 5))

    s3.put_object(Bucket=b, Key="persist", Body=b"kept")
    t0 = time.monotonic()
    g.restart_gateway()
    check("restart_gateway keeps objects",
          s3.get_object(Bucket=b, Key="persist")["Body"].read() == b"kept",
          f"{time.monotonic() - t0:.2f} s")
    g.kill_gateway()
    try:
        g.request("GET", f"/{b}/persist", timeout=5)
        refused = None
    except OSError as e:
        refused = type(e).__name__
    check("kill_gateway: connection refused", refused == "ConnectionRefusedError", str(refused))
    t0 = time.monotonic()
    g.stop()
    g.start()
    check("stop + start keeps objects (graceful stop saves memstore)",
          g.client().get_object(Bucket=b, Key="persist")["Body"].read() == b"kept",
          f"{time.monotonic() - t0:.2f} s")


def test_tls():
    """RGW(tls=True): HTTPS with the self-signed certificate, beside plain HTTP."""
    import http.client
    import ssl
    with R.RGW(tls=True) as g:
        g.create_bucket("tls")
        ctx = ssl.create_default_context(cafile=g.ca_file)
        c = http.client.HTTPSConnection(g.host, g.tls_port, context=ctx, timeout=10)
        try:
            c.request("GET", "/")
            anon = b"ListAllMyBucketsResult" in c.getresponse().read()
        finally:
            c.close()
        s3 = g.client(endpoint=g.tls_endpoint, verify=g.ca_file)
        s3.put_object(Bucket="tls", Key="k", Body=b"over tls")
        via_http = get_bytes(g.client(), "tls", "k")
        untrusted = ssl.create_default_context()
        c = http.client.HTTPSConnection(g.host, g.tls_port, context=untrusted, timeout=10)
        try:
            c.request("GET", "/")
            refused = None
        except ssl.SSLCertVerificationError as e:
            refused = type(e).__name__
        finally:
            c.close()
        check("tls=True: HTTPS verifies with ca_file, HTTP still served, unknown CA refused",
              anon and via_http == b"over tls" and refused == "SSLCertVerificationError"
              and g.tls_endpoint == f"https://127.0.0.1:{g.tls_port}"
              and g.tls_port not in (g.port, g.mon_port),
              f"{g.start_seconds:.2f} s, {g.tls_endpoint}, {refused}")


CHILD = textwrap.dedent("""
    import json, os, sys, time
    sys.path.insert(0, {here!r})
    import rgw
    g = rgw.RGW()
    g.start()
    print(json.dumps({{"pids": [p.pid for p in g._procs.values()], "dir": g.workdir,
                      "watchdog": rgw._watchdog.pid}}), flush=True)
    if sys.argv[1] == "fail":
        assert False, "a failing test"
    time.sleep(120)
""")


def test_no_leftovers():
    src = CHILD.format(here=HERE)
    for how in ("fail", "sigint", "sigterm", "sigkill"):
        p = subprocess.Popen([sys.executable, "-c", src, how], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        try:
            started = json.loads(p.stdout.readline())
        except ValueError:
            p.kill()
            check(f"no leftovers after {how}", False, p.communicate()[1][-2000:])
            continue
        if how != "fail":
            p.send_signal({"sigint": signal.SIGINT, "sigterm": signal.SIGTERM,
                           "sigkill": signal.SIGKILL}[how])
        p.communicate(timeout=60)
        left = wait_gone(started["pids"] + [started["watchdog"]], 15)
        check(f"no leftovers after {how}", not left and not os.path.exists(started["dir"]),
              f"exit {p.returncode}, alive {left}, dir "
              f"{'kept' if os.path.exists(started['dir']) else 'removed'}")


def test_cli():
    script = ('test -n "$AWS_ENDPOINT_URL" && test -n "$AWS_ACCESS_KEY_ID" && '
              'test -n "$AWS_SECRET_ACCESS_KEY" && test "$AWS_REGION" = us-east-1 && '
              'test "$LIFEBOAT_TEST_S3_BUCKET" = cli-one && '
              'curl -sf -o /dev/null --aws-sigv4 "aws:amz:$AWS_REGION:s3" '
              '-H "x-amz-content-sha256: UNSIGNED-PAYLOAD" '
              '--user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" '
              '"$AWS_ENDPOINT_URL/cli-two" && '
              'curl -sf -o /dev/null "$LIFEBOAT_TEST_S3_PROXY_CONTROL/stats" && exit 3')
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, os.path.join(HERE, "rgw.py"), "run", "--bucket",
                        "cli-one", "--bucket", "cli-two", "--proxy", "--", "sh", "-c", script],
                       capture_output=True, text=True, timeout=120)
    check("rgw.py run: env set, buckets made, CMD's exit status", r.returncode == 3,
          f"exit {r.returncode} in {time.monotonic() - t0:.1f} s {r.stderr[-1500:]}")

    # serve: prints the exports, runs until SIGINT, leaves nothing behind.
    p = subprocess.Popen([sys.executable, os.path.join(HERE, "rgw.py"), "serve", "--bucket",
                          "served"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    exports, workdir = {}, None
    for line in p.stdout:
        if line.startswith("export "):
            k, _, v = line[len("export "):].strip().partition("=")
            exports[k] = v
        elif line.startswith("# workdir "):
            workdir = line.split()[2].rstrip(";")
            break
    pids = _pids_under(workdir) if workdir else []
    ok = exports.get("LIFEBOAT_TEST_S3_BUCKET") == "served" and R.s3_request(
        exports.get("AWS_ENDPOINT_URL", "http://127.0.0.1:1"), "HEAD", "/served",
        access_key=exports.get("AWS_ACCESS_KEY_ID", ""),
        secret_key=exports.get("AWS_SECRET_ACCESS_KEY", "")).status == 200
    p.send_signal(signal.SIGINT)
    p.communicate(timeout=60)
    left = wait_gone(pids, 15)
    check("rgw.py serve: exports work; SIGINT stops it, nothing left",
          ok and len(pids) == 3 and not left and not os.path.exists(workdir or "/nonexistent"),
          f"exit {p.returncode}, {len(pids)} daemons, alive {left}")

    # run: SIGTERM to rgw.py reaches CMD, then the gateway stops.
    p = subprocess.Popen([sys.executable, os.path.join(HERE, "rgw.py"), "run", "--", "sh",
                          "-c", 'echo "$AWS_ENDPOINT_URL"; exec sleep 60'],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    port = p.stdout.readline().strip().rsplit(":", 1)[-1]
    pids = [pid for pid in _pids_all() if f"127.0.0.1:{port}" in _cmdline_conf(pid)]
    p.send_signal(signal.SIGTERM)
    p.communicate(timeout=60)
    left = wait_gone(pids, 15)
    check("rgw.py run: SIGTERM ends CMD and the gateway",
          p.returncode == 128 + signal.SIGTERM and len(pids) == 3 and not left,
          f"exit {p.returncode}, {len(pids)} daemons, alive {left}")


def _pids_all() -> list:
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def _cmdline_conf(pid: int) -> str:
    """The ceph.conf text of a ceph daemon started with -c PATH, or ''."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().decode().split("\0")
        conf = argv[argv.index("-c") + 1]
        with open(conf if os.path.isabs(conf) else
                  os.path.join(os.readlink(f"/proc/{pid}/cwd"), conf)) as f:
            return f.read()
    except (OSError, ValueError, IndexError):
        return ""


def _pids_under(workdir: str) -> list:
    """Daemons whose -c ceph.conf lies in workdir."""
    out = []
    for pid in _pids_all():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if f"{workdir}/ceph.conf".encode() in f.read():
                    out.append(pid)
        except OSError:
            pass
    return out


def main():
    t_start = time.monotonic()
    try:
        with R.RGW() as g:
            pids = [p.pid for p in g._procs.values()]
            b = test_gateway(g)
            test_proxy_kinds(g, b)
            test_proxy_workload(g, b)
            test_proxy_control(g, b)
            test_two_and_restart(g, b)
            pids += [p.pid for p in g._procs.values()]
            workdir = g.workdir
        check("no daemon left after close, directory removed",
              not wait_gone(pids, 5) and not os.path.exists(workdir))
        test_tls()
        test_cli()
        test_no_leftovers()
    except Exception as e:
        import traceback
        traceback.print_exc()
        check("no unexpected exception", False, repr(e))
    info(f"total {time.monotonic() - t_start:.1f} s")
    passed = sum(1 for _, ok in results if ok)
    failed = len(results) - passed
    print(f"{passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
