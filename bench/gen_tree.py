#!/usr/bin/env python3
"""Deterministic generator of a benchmark file tree (python3 stdlib only).

The tree imitates an application's "uploaded files and generated PDFs":

  uploads/YYYY/MM/<uuid>.jpg|.png   many small incompressible files (1 KiB-256 KiB)
  pdfs/<kind>/<NNN>/<kind>-<id>.pdf many small PDF-like text files with shared
                                    boilerplate (compress ~3-5x)
  large/...                         5 large files (50-150 MiB at the default 1 GiB):
                                    2 incompressible (tar/mp4-like), 3 compressible
                                    (application log, access log, SQL dump)

About half of the bytes are compressible. The total size is exactly --size-mib MiB.
The output depends only on --seed and --size-mib: the file list is planned up
front with one seeded PRNG, and every file's content comes from its own seed, so
files can be written in parallel without affecting determinism. Compressible
text is built from a seeded phrase pool (no two large chunks repeat, so
deduplication does not trivially shrink it).

--mutate PCT modifies, deletes and adds about PCT% of the files of an existing
tree. The mutation PRNG is seeded from --seed, PCT and the tree's current
listing, so the same tree + arguments always give the same result while
successive mutations differ.

Examples:
  bench/gen_tree.py --out /tmp/tree                   # 1 GiB, seed 1
  bench/gen_tree.py --out /tmp/tree --size-mib 256 --seed 7
  bench/gen_tree.py --out /tmp/tree --mutate 5        # incremental change
"""

import argparse
import calendar
import hashlib
import math
import os
import random
import shutil
import sys
import time
import uuid
from concurrent.futures import ProcessPoolExecutor

KiB = 1024
MiB = 1024 * KiB

SMALL_MIN = 1 * KiB
SMALL_MAX = 256 * KiB
LARGE_FRACTION = 0.55  # share of total bytes in the large files
UPLOAD_FRACTION = 0.62  # share of small-file bytes that are (random) uploads
# name, kind, relative weight of the large-file budget
LARGE_FILES = [
    ("large/media/archive-2023.tar", "random", 1.3),
    ("large/media/promo-video.mp4", "random", 0.9),
    ("large/logs/app-2024.log", "log", 1.1),
    ("large/logs/access-2024.log", "log", 0.7),
    ("large/db/dump-2024.sql", "sql", 1.0),
]
PDF_KINDS = ["invoice", "report", "contract", "statement"]
BASE_MTIME = 1717200000  # 2024-06-01, for files without a date in their path

KIND_BY_EXT = {".jpg": "random", ".png": "random", ".tar": "random",
               ".mp4": "random", ".pdf": "pdf", ".log": "log", ".sql": "sql"}


# ---------------------------------------------------------------- text pool
_PHRASES = None  # list[bytes], built once per process from the global seed
_WORDS = None


def init_text(seed):
    """Build the deterministic vocabulary and phrase pool (about 0.1 s)."""
    global _PHRASES, _WORDS
    r = random.Random(f"text-pool:{seed}")
    cons, vow = "bcdfghjklmnprstvwz", "aeiou"
    words = set()
    while len(words) < 4000:
        words.add("".join(r.choice(cons) + r.choice(vow)
                          for _ in range(r.randint(1, 4))))
    vocab = sorted(words)
    r.shuffle(vocab)
    # Zipf-like word frequencies, like natural text.
    cum, acc = [], 0.0
    for i in range(len(vocab)):
        acc += 1.0 / (i + 1) ** 0.9
        cum.append(acc)
    phrases = []
    for _ in range(50000):
        p = " ".join(r.choices(vocab, cum_weights=cum, k=r.randint(2, 7)))
        phrases.append((p + (".\n" if r.random() < 0.12 else " ")).encode())
    _PHRASES, _WORDS = phrases, vocab[:500]


def text_bytes(r, n):
    """About n bytes (at least n) of prose made of pool phrases."""
    parts, total = [], 0
    while total < n:
        k = max(16, min(8192, (n - total) // 24))
        s = b"".join(r.choices(_PHRASES, k=k))
        parts.append(s)
        total += len(s)
    return b"".join(parts)


# ---------------------------------------------------------------- content
def random_content(r, size, ext):
    """Incompressible bytes with a plausible file header."""
    header = {".jpg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00",
              ".png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
              ".mp4": b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41",
              }.get(ext, b"")
    header = header[:size]
    return [header] + [r.randbytes(min(MiB, size - len(header) - off))
                       for off in range(0, size - len(header), MiB)]


PDF_HEAD = (
    b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"
    b"1 0 obj\n<< /Type /Catalog /Pages 2 0 R /Metadata 9 0 R >>\nendobj\n"
    b"2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n"
    b"3 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595.28 841.89]"
    b" /Resources << /Font << /F1 5 0 R /F2 6 0 R >> >> /Contents 4 0 R >>\nendobj\n"
    b"5 0 obj\n<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica"
    b" /Encoding /WinAnsiEncoding >>\nendobj\n"
    b"6 0 obj\n<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold"
    b" /Encoding /WinAnsiEncoding >>\nendobj\n"
    b"7 0 obj\n<< /Producer (Acme Billing PDF Engine 4.2.1)"
    b" /Creator (acme-app worker) >>\nendobj\n"
)
PDF_LEGAL = (
    b"BT /F2 8 Tf 40 60 Td (Acme Corporation Ltd, 221B Example Street, Springfield."
    b" Registered in England and Wales No. 01234567. VAT GB 123 4567 89.) Tj ET\n"
    b"BT /F1 7 Tf 40 50 Td (This document was generated automatically and is valid"
    b" without a signature. Payment terms: 30 days net. Late payments are subject to"
    b" interest at the statutory rate. Please quote the document number with every"
    b" payment. Questions? support@acme.example or +44 20 7946 0000.) Tj ET\n"
) * 3


def pdf_content(r, size, name):
    head = PDF_HEAD + b"8 0 obj\n<< /Title (" + name.encode() + b") >>\nendobj\n"
    head += b"4 0 obj\n<< /Length 0 >>\nstream\n" + PDF_LEGAL
    tail = (b"\nendstream\nendobj\nxref\n0 10\n0000000000 65535 f \n"
            b"trailer\n<< /Size 10 /Root 1 0 R /Info 7 0 R >>\nstartxref\n1234\n%%EOF\n")
    body_len = max(0, size - len(head) - len(tail))
    text = text_bytes(r, body_len).replace(b"\n", b" ")
    lines, total, y, pos = [], 0, 780, 0
    while total < body_len:
        line = b"BT /F1 10 Tf 50 %d Td (%s) Tj ET\n" % (y, text[pos:pos + 90])
        pos += 90
        y = 780 if y < 80 else y - 12
        lines.append(line)
        total += len(line)
    data = (head + b"".join(lines))[:size - len(tail)] + tail
    return [data[:size]]


LEVELS = [b"INFO ", b"INFO ", b"INFO ", b"INFO ", b"DEBUG", b"DEBUG", b"WARN ", b"ERROR"]
METHODS = [b"GET", b"GET", b"GET", b"POST", b"PUT", b"DELETE"]


def log_content(r, size, access):
    """Log-like lines with monotonically increasing timestamps."""
    parts, total = [], 0
    ts = 1704067200 + r.randrange(86400)
    paths = [b"/api/v1/" + w.encode() for w in _WORDS[:200]]
    comps = [w.encode() for w in _WORDS[200:240]]
    while total < size:
        batch = []
        for _ in range(2000):
            ts += r.random() * 0.5
            t = time.gmtime(ts)
            stamp = b"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (
                t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec,
                int(ts * 1000) % 1000)
            if access:
                batch.append(b'10.%d.%d.%d - - [%s] "%s %s/%d HTTP/1.1" %d %d "-" "Mozilla/5.0"\n' % (
                    r.randrange(4), r.randrange(256), r.randrange(256), stamp,
                    r.choice(METHODS), r.choice(paths), r.randrange(100000),
                    r.choice((200, 200, 200, 201, 304, 404, 500)), r.randrange(50000)))
            else:
                batch.append(b"%s %s [%s-%d] req=%08x %s\n" % (
                    stamp, r.choice(LEVELS), r.choice(comps), r.randrange(8),
                    r.getrandbits(32), b"".join(r.choices(_PHRASES, k=3)).replace(b"\n", b" ")))
        s = b"".join(batch)
        parts.append(s)
        total += len(s)
    return parts


def sql_content(r, size):
    parts = [b"-- PostgreSQL database dump\nSET statement_timeout = 0;\n"
             b"CREATE TABLE invoices (id bigint, customer text, issued date,"
             b" amount numeric(12,2), status text, note text);\n"
             b"COPY invoices (id, customer, issued, amount, status, note) FROM stdin;\n"]
    total, i = len(parts[0]), 0
    status = [b"paid", b"paid", b"open", b"overdue", b"void"]
    while total < size:
        batch = []
        for _ in range(2000):
            i += 1
            batch.append(b"%d\t%s\t2024-%02d-%02d\t%d.%02d\t%s\t%s\n" % (
                i, r.choice(_WORDS).encode(), r.randint(1, 12), r.randint(1, 28),
                r.randrange(10000), r.randrange(100), r.choice(status),
                b"".join(r.choices(_PHRASES, k=2)).replace(b"\n", b" ")))
        s = b"".join(batch)
        parts.append(s)
        total += len(s)
    return parts


def content(relpath, kind, size, fseed):
    """List of byte strings whose concatenation is at least `size` bytes."""
    r = random.Random(fseed)
    ext = os.path.splitext(relpath)[1]
    if kind == "random":
        return random_content(r, size, ext)
    if kind == "pdf":
        return pdf_content(r, size, os.path.basename(relpath))
    if kind == "log":
        return log_content(r, size, access="access" in relpath)
    if kind == "sql":
        return sql_content(r, size)
    raise ValueError(kind)


def write_file(task):
    """Worker: write one planned file. task = (root, relpath, kind, size, fseed, mtime)."""
    root, relpath, kind, size, fseed, mtime = task
    path = os.path.join(root, relpath)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    remaining = size
    with open(path, "wb") as f:
        for part in content(relpath, kind, size, fseed):
            if remaining <= 0:
                break
            f.write(part[:remaining])
            remaining -= min(len(part), remaining)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return size


# ---------------------------------------------------------------- planning
def log_uniform(r, lo, hi):
    return int(math.exp(r.uniform(math.log(lo), math.log(hi))))


def plan_small(r, budget, make_name):
    """Split `budget` bytes into small files; the last one takes the remainder."""
    files = []
    while budget > 0:
        size = log_uniform(r, SMALL_MIN, SMALL_MAX)
        if budget - size < SMALL_MIN:
            size = budget
        files.append((make_name(), size))
        budget -= size
    return files


def upload_name_factory(r):
    def make():
        year, month = r.randint(2019, 2024), r.randint(1, 12)
        u = uuid.UUID(int=r.getrandbits(128), version=4)
        ext = ".png" if r.random() < 0.15 else ".jpg"
        mtime = calendar.timegm((year, month, r.randint(1, 28), r.randrange(24),
                                 r.randrange(60), r.randrange(60), 0, 0, 0))
        return (f"uploads/{year:04d}/{month:02d}/{u}{ext}", mtime)
    return make


def pdf_name_factory(r, start_id=100000):
    state = {"id": start_id}

    def make():
        state["id"] += r.randint(1, 3)
        i = state["id"]
        kind = PDF_KINDS[r.randrange(len(PDF_KINDS))]
        return (f"pdfs/{kind}s/{i // 1000:04d}/{kind}-{i:07d}.pdf",
                BASE_MTIME + i * 60)
    return make


def plan_tree(seed, total):
    """Deterministic list of (relpath, kind, size, fseed, mtime)."""
    r = random.Random(f"plan:{seed}")
    large_budget = int(total * LARGE_FRACTION)
    small_budget = total - large_budget
    upload_budget = int(small_budget * UPLOAD_FRACTION)
    pdf_budget = small_budget - upload_budget

    tasks = []
    wsum = sum(w for _, _, w in LARGE_FILES)
    left = large_budget
    for i, (name, kind, w) in enumerate(LARGE_FILES):
        size = left if i == len(LARGE_FILES) - 1 else int(large_budget * w / wsum)
        left -= size
        tasks.append((name, kind, size, r.getrandbits(64), BASE_MTIME))
    for (name, mtime), size in plan_small(r, upload_budget, upload_name_factory(r)):
        tasks.append((name, "random", size, r.getrandbits(64), mtime))
    for (name, mtime), size in plan_small(r, pdf_budget, pdf_name_factory(r)):
        tasks.append((name, "pdf", size, r.getrandbits(64), mtime))
    # uuid names could in theory collide; keep the first occurrence's slot.
    seen = set()
    out = []
    for t in tasks:
        if t[0] in seen:
            continue
        seen.add(t[0])
        out.append(t)
    return out


def run_tasks(root, tasks, jobs):
    """Write tasks (large ones first, for better parallel packing)."""
    order = sorted(tasks, key=lambda t: -t[2])
    work = [(root,) + tuple(t) for t in order]
    if jobs <= 1:
        return sum(map(write_file, work))
    with ProcessPoolExecutor(max_workers=jobs) as ex:
        return sum(ex.map(write_file, work, chunksize=16))


# ---------------------------------------------------------------- modes
def generate(args):
    root = os.path.abspath(args.out)
    if os.path.exists(root) and os.listdir(root):
        if not args.force:
            sys.exit(f"gen_tree: {root} exists and is not empty (use --force to replace it)")
        shutil.rmtree(root)
    os.makedirs(root, exist_ok=True)
    t0 = time.time()
    tasks = plan_tree(args.seed, args.size_mib * MiB)
    written = run_tasks(root, tasks, args.jobs)
    print(f"gen_tree: wrote {len(tasks)} files, {written} bytes ({written / MiB:.1f} MiB)"
          f" to {root} in {time.time() - t0:.1f}s (seed {args.seed})")


def listing(root):
    """Sorted [(relpath, size)] of all regular files under root."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for fn in filenames:
            p = os.path.join(dirpath, fn)
            out.append((os.path.relpath(p, root), os.path.getsize(p)))
    out.sort()
    return out


def mutate(args):
    root = os.path.abspath(args.out)
    files = listing(root)
    if not files:
        sys.exit(f"gen_tree: nothing to mutate in {root}")
    h = hashlib.sha256(f"mutate:{args.seed}:{args.mutate}\n".encode())
    for name, size in files:
        h.update(f"{name}\0{size}\n".encode())
    r = random.Random(h.digest())
    n = max(1, round(len(files) * args.mutate / 100.0))
    # ~80% of the touched files are existing ones (modified or deleted), ~20% new.
    chosen = sorted(r.sample(files, min(max(1, round(n * 0.8)), len(files))))
    modified = deleted = 0
    new_tasks = []
    for name, size in chosen:
        path = os.path.join(root, name)
        kind = KIND_BY_EXT.get(os.path.splitext(name)[1], "random")
        op = r.random()
        if op < 0.25 and not name.startswith("large/"):
            os.unlink(path)
            deleted += 1
            continue
        # Modify: overwrite 1-3 regions in place; logs also grow at the end.
        with open(path, "r+b") as f:
            for _ in range(r.randint(1, 3)):
                length = min(max(size // 4, 1), 64 * KiB)
                off = r.randrange(max(1, size - length + 1))
                data = b"".join(content(name, kind, length, r.getrandbits(64)))[:length]
                f.seek(off)
                f.write(data)
            if kind == "log":
                f.seek(0, os.SEEK_END)
                grow = max(size // 100, 4 * KiB)
                f.write(b"".join(content(name, kind, grow, r.getrandbits(64)))[:grow])
        modified += 1
    # New files make up the rest (about as many as were deleted).
    n_add = max(1, n - len(chosen))
    uploads = upload_name_factory(r)
    pdfs = pdf_name_factory(r, start_id=9000000 + r.randrange(900000))
    existing = {name for name, _ in files}
    for _ in range(n_add):
        if r.random() < 0.6:
            (name, _mt), kind = uploads(), "random"
        else:
            (name, _mt), kind = pdfs(), "pdf"
        if name in existing:
            continue
        existing.add(name)
        new_tasks.append((name, kind, log_uniform(r, SMALL_MIN, SMALL_MAX),
                          r.getrandbits(64), None))
    run_tasks(root, new_tasks, 1)
    print(f"gen_tree: mutated {root}: {modified} modified, {deleted} deleted,"
          f" {len(new_tasks)} added (of {len(files)} files)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="tree directory")
    ap.add_argument("--size-mib", type=int, default=1024, help="total size in MiB (default 1024)")
    ap.add_argument("--seed", type=int, default=1, help="PRNG seed (default 1)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                    help="parallel writer processes (default: CPU count)")
    ap.add_argument("--force", action="store_true", help="replace a non-empty --out")
    ap.add_argument("--mutate", type=float, metavar="PCT",
                    help="instead of generating, change about PCT%% of the files in --out")
    args = ap.parse_args()
    if args.size_mib <= 0:
        ap.error("--size-mib must be positive")
    init_text(args.seed)  # before forking workers, so they inherit the pool
    if args.mutate is not None:
        if not 0 < args.mutate <= 100:
            ap.error("--mutate must be in (0, 100]")
        mutate(args)
    else:
        generate(args)


if __name__ == "__main__":
    main()
