#!/usr/bin/env python3
"""Helpers for bench/s3_vs_tools.sh (stdlib only; S3 signing from tests/s3/rgw.py).

  s3_bench_helper.py bucket-bytes --endpoint http://127.0.0.1:P --bucket B [--prefix P]
      prints "BYTES OBJECTS" under the prefix (ListObjectsV2, every page); keys from
      AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, region AWS_REGION (default us-east-1).
  s3_bench_helper.py rgw-req --asok PATH
      prints the gateway's request counter (perf dump: rgw.req): every request it served,
      HTTP and HTTPS alike.
  s3_bench_helper.py access-log --log FILE --from OFFSET [--to OFFSET]
      counts the beast access-log lines ("METHOD /path HTTP/1.1" STATUS) between two byte
      offsets of radosgw's log, by kind, and prints one line
      "total N; PUT n; PUT part n; POST n; GET n; HEAD n; LIST n; DELETE n; errors n".
  s3_bench_helper.py log-size --log FILE
      the log's size in bytes (a starting offset for access-log).
"""

import argparse
import json
import os
import re
import subprocess
import sys
import urllib.parse
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "s3"))
import rgw as R  # noqa: E402

NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def bucket_bytes(endpoint: str, bucket: str, prefix: str) -> tuple:
    total = objects = 0
    token = None
    while True:
        query = {"list-type": "2", "prefix": prefix, "max-keys": "1000"}
        if token:
            query["continuation-token"] = token
        r = R.s3_request(endpoint, "GET", f"/{bucket}", query=query,
                         access_key=os.environ["AWS_ACCESS_KEY_ID"],
                         secret_key=os.environ["AWS_SECRET_ACCESS_KEY"],
                         region=os.environ.get("AWS_REGION", R.DEFAULT_REGION))
        if r.status != 200:
            raise SystemExit(f"list {bucket}/{prefix}: {r}")
        root = ET.fromstring(r.body)
        for c in root.iter(NS + "Contents"):
            total += int(c.find(NS + "Size").text)
            objects += 1
        if (root.findtext(NS + "IsTruncated") or "false") != "true":
            return total, objects
        token = root.findtext(NS + "NextContinuationToken")


def rgw_req(asok: str) -> int:
    out = subprocess.run(["ceph", "--admin-daemon", asok, "perf", "dump"], check=True,
                         capture_output=True, text=True, timeout=60).stdout
    return int(json.loads(out)["rgw"]["req"])


LINE = re.compile(r' beast: \S+ \S+ - \S+ \[[^\]]*\] "(\S+) (\S+) HTTP/[\d.]+" (\d+) ')


def access_log(path: str, start: int, end: int | None) -> str:
    kinds = {k: 0 for k in ("PUT", "PUT part", "POST", "GET", "HEAD", "LIST", "DELETE",
                            "other")}
    errors = 0
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read() if end is None else f.read(max(0, end - start))
    for raw in data.decode("utf-8", "replace").splitlines():
        m = LINE.search(raw)
        if not m:
            continue
        method, target, status = m.group(1), m.group(2), int(m.group(3))
        path_, _, query = target.partition("?")
        q = urllib.parse.parse_qs(query, keep_blank_values=True)
        if status >= 400:
            errors += 1
        if method == "PUT":
            kinds["PUT part" if "partNumber" in q else "PUT"] += 1
        elif method == "GET":
            # path style: "/bucket" or "/bucket/" is a bucket request (a listing)
            is_bucket = path_.strip("/").count("/") == 0
            kinds["LIST" if is_bucket or "list-type" in q or "uploads" in q else "GET"] += 1
        elif method in kinds:
            kinds[method] += 1
        else:
            kinds["other"] += 1
    total = sum(kinds.values())
    parts = [f"total {total}"] + [f"{k} {v}" for k, v in kinds.items() if v or k != "other"]
    return "; ".join(parts + [f"errors {errors}"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("bucket-bytes")
    p.add_argument("--endpoint", required=True)
    p.add_argument("--bucket", required=True)
    p.add_argument("--prefix", default="")
    p = sub.add_parser("rgw-req")
    p.add_argument("--asok", required=True)
    p = sub.add_parser("access-log")
    p.add_argument("--log", required=True)
    p.add_argument("--from", dest="start", type=int, required=True)
    p.add_argument("--to", dest="end", type=int, default=None)
    p = sub.add_parser("log-size")
    p.add_argument("--log", required=True)
    a = ap.parse_args()
    if a.cmd == "bucket-bytes":
        b, n = bucket_bytes(a.endpoint, a.bucket, a.prefix)
        print(b, n)
    elif a.cmd == "rgw-req":
        print(rgw_req(a.asok))
    elif a.cmd == "access-log":
        print(access_log(a.log, a.start, a.end))
    elif a.cmd == "log-size":
        print(os.path.getsize(a.log) if os.path.exists(a.log) else 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
