#!/usr/bin/env python3
"""Compares two directory trees entry by entry, as a restore must reproduce them.

Usage: compare_trees.py [--skip REL]... [--no-owner] SOURCE RESTORED

Walks both trees with os.lstat (never following symlinks) and compares, for every path:
type, permission bits, size (not for directories), mtime_ns (directories too), nlink,
uid/gid, sha256 of regular files, symlink targets, and that paths sharing an inode in
SOURCE share one in RESTORED (hard links). Names are handled as bytes, so newlines and
invalid UTF-8 work. --skip REL leaves out one path (relative to the roots, as given on
the command line) and what lies below it. Exit 0 (silently) when equal, 1 with one line
per difference on stderr otherwise.
"""

import argparse
import hashlib
import os
import stat
import sys


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            block = f.read(1 << 20)
            if not block:
                return h.hexdigest()
            h.update(block)


def listing(root, skips):
    """Maps relative path (bytes, b"." for the root) to (lstat, absolute path)."""
    out = {b".": (os.lstat(root), root)}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            if any(rel == s or rel.startswith(s + b"/") for s in skips):
                continue
            out[rel] = (os.lstat(full), full)
    return out


def show(rel):
    return rel.decode("utf-8", "backslashreplace").encode("unicode_escape").decode("ascii")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip", action="append", default=[])
    ap.add_argument("--no-owner", action="store_true")
    ap.add_argument("source")
    ap.add_argument("restored")
    args = ap.parse_args()
    skips = [os.fsencode(s).rstrip(b"/") for s in args.skip]
    src = listing(os.fsencode(args.source), skips)
    dst = listing(os.fsencode(args.restored), skips)
    diffs = []
    for rel in sorted(set(src) - set(dst)):
        diffs.append(f"{show(rel)}: missing in restored tree")
    for rel in sorted(set(dst) - set(src)):
        diffs.append(f"{show(rel)}: not in source tree")
    inode_map = {}
    for rel in sorted(set(src) & set(dst)):
        (a, pa), (b, pb) = src[rel], dst[rel]
        what = []
        if stat.S_IFMT(a.st_mode) != stat.S_IFMT(b.st_mode):
            diffs.append(f"{show(rel)}: type {stat.filemode(a.st_mode)[0]} != "
                         f"{stat.filemode(b.st_mode)[0]}")
            continue
        if stat.S_IMODE(a.st_mode) != stat.S_IMODE(b.st_mode) and not stat.S_ISLNK(a.st_mode):
            what.append(f"mode {stat.S_IMODE(a.st_mode):04o} != {stat.S_IMODE(b.st_mode):04o}")
        if not stat.S_ISDIR(a.st_mode) and a.st_size != b.st_size:
            what.append(f"size {a.st_size} != {b.st_size}")
        if a.st_mtime_ns != b.st_mtime_ns:
            what.append(f"mtime_ns {a.st_mtime_ns} != {b.st_mtime_ns}")
        if a.st_nlink != b.st_nlink:
            what.append(f"nlink {a.st_nlink} != {b.st_nlink}")
        if not args.no_owner and (a.st_uid, a.st_gid) != (b.st_uid, b.st_gid):
            what.append(f"owner {a.st_uid}:{a.st_gid} != {b.st_uid}:{b.st_gid}")
        if stat.S_ISREG(a.st_mode):
            if a.st_size == b.st_size and sha256(pa) != sha256(pb):
                what.append("content differs")
            if a.st_nlink > 1:
                key = (a.st_dev, a.st_ino)
                if key in inode_map and inode_map[key][1] != (b.st_dev, b.st_ino):
                    what.append(f"not hard-linked to {show(inode_map[key][0])}")
                inode_map.setdefault(key, (rel, (b.st_dev, b.st_ino)))
        if stat.S_ISLNK(a.st_mode) and os.readlink(pa) != os.readlink(pb):
            what.append(f"link target {os.readlink(pa)!r} != {os.readlink(pb)!r}")
        if what:
            diffs.append(f"{show(rel)}: " + "; ".join(what))
    for d in diffs:
        print(d, file=sys.stderr)
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
