#!/usr/bin/env python3
"""lifeboat against a real PostgreSQL 15: base backups (full and incremental) taken while a
reservations workload writes, WAL archived by `lifeboat pg wal-push`, point-in-time restores
to random targets checked row by row, a tablespace outside the data directory, a second
timeline, a copy into a repository of the secondary region restored with the primary's
out of reach, and the bad-input paths (missing WAL, another cluster's WAL, full disk, server
gone, the restored server stopped during recovery, kill -9 of backup and wal-push).

Usage: pg_lifeboat_test.py [CASE ...]   (default: all). LIFEBOAT: the binary to test.
Ends with "N passed, N failed" and exits non-zero on any failure.
"""
import datetime as dt
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgharness as ph  # noqa: E402  (re-executes under /usr/bin/python3 if psycopg2 is missing)
import reservations as rv  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
LIFEBOAT_SRC = os.environ.get("LIFEBOAT") or os.path.join(HERE, "..", "..", "build", "lifeboat")
SEED = int(os.environ.get("PG_TEST_SEED", str(int(time.time()) % 100000)))
rng = random.Random(SEED)


class Env:
    """A repository (password + key file), a lifeboat binary reachable by postgres, and an
    archiving primary with sample data and a tablespace."""

    def __init__(self):
        self.work = ph.make_tempdir("lifeboat-pgtest-")
        self.lb = os.path.join(self.work, "lifeboat")
        shutil.copy(LIFEBOAT_SRC, self.lb)
        os.chmod(self.lb, 0o755)
        self.repo = os.path.join(self.work, "repo")
        self.cache = os.path.join(self.work, "cache")
        self.pw = os.path.join(self.work, "password")
        self.key = os.path.join(self.work, "key")
        with open(self.pw, "w") as f:
            f.write("pg test password\n")
        os.chmod(self.pw, 0o600)
        ph._chown_postgres(self.pw)
        # Written by root (restores) and postgres (the rest, and restore_command's wal-get).
        self.audit_log = os.path.join(self.work, "audit.log")
        open(self.audit_log, "a").close()
        os.chmod(self.audit_log, 0o600)
        ph._chown_postgres(self.audit_log)
        self.run(["init"])
        self.run(["key", "add", "--generate-key-file", self.key])
        ph._chown_postgres(self.repo, recursive=True)
        self.primary = None

    def base_env(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "LIFEBOAT"))}
        env.update({"LIFEBOAT_REPO": self.repo, "LIFEBOAT_CACHE_DIR": self.cache,
                    "LIFEBOAT_KEY_FILE": self.key, "LIFEBOAT_TEST_FAST_KDF": "1",
                    "LIFEBOAT_AUDIT_LOG": self.audit_log})
        if not os.path.exists(self.key):
            env.pop("LIFEBOAT_KEY_FILE")
            env["LIFEBOAT_PASSWORD_FILE"] = self.pw
        return env

    def run(self, args, cluster=None, check=True, timeout=600, as_pg=True, env_extra=None):
        """Runs lifeboat (as postgres when root) and returns CompletedProcess."""
        env = self.base_env()
        if cluster is not None:
            env.update({k: v for k, v in cluster.env().items() if k.startswith("PG")})
        env.update(env_extra or {})
        cmd = [self.lb] + args
        if as_pg and os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", "env"] + [f"{k}={v}" for k, v in env.items()] + cmd
            env = None
        p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=timeout, cwd="/")
        if check and p.returncode != 0:
            raise AssertionError(f"lifeboat {' '.join(args)} exited {p.returncode}\n{p.stdout}\n{p.stderr}")
        return p

    def archive_command(self, source="main"):
        return (f"LIFEBOAT_CACHE_DIR={self.cache} LIFEBOAT_AUDIT_LOG={self.audit_log} "
                f"{self.lb} --repo {self.repo} "
                f"--key-file {self.key} pg wal-push --source {source} %p")

    def start_primary(self):
        c = ph.Cluster(archive_command=self.archive_command(), name="primary",
                       conf={"autovacuum": "off", "track_commit_timestamp": "on"})
        c.init()
        c.start()
        self.primary = c
        self.tblspc = ph.make_tempdir("lifeboat-tblspc-")
        conn = c.connect(autocommit=True)
        with conn.cursor() as cur:
            cur.execute(f"CREATE TABLESPACE extra LOCATION '{self.tblspc}'")
            cur.execute("CREATE TABLE invoices (id int PRIMARY KEY, pdf text) TABLESPACE extra")
            cur.execute("INSERT INTO invoices SELECT g, repeat(md5(g::text), 20) FROM generate_series(1, 5000) g")
        rv.create_schema(conn)
        rv.load_sample(conn, 20000, seed=SEED)
        conn.close()
        return c

    def backup(self, kind):
        p = self.run(["--json", "pg", "backup", "--type", kind], cluster=self.primary)
        return json.loads(p.stdout)

    def restore(self, target=None, extra=(), check=True, port=None, repos=(), env_extra=None):
        """pg restore --start into a fresh directory; returns (proc, pgdata, port, tblspc).
        `repos`: --repo options, in priority order (default: LIFEBOAT_REPO)."""
        parent = ph.make_tempdir("lifeboat-restore-")
        pgdata = os.path.join(parent, "data")
        new_tbl = os.path.join(parent, "tblspc")
        port = port or ph.free_port()
        args = [a for r in repos for a in ("--repo", r)]
        args += ["--json", "pg", "restore", "--pgdata", pgdata, "--start", "--port", str(port),
                "--tablespace-map", f"{self.tblspc}={new_tbl}"]
        if target is not None:
            args += ["--target-time", ph.format_pg_timestamp(target)]
        args += list(extra)
        # Restores run as root: lifeboat starts the server as the data directory's owner.
        p = self.run(args, check=check, as_pg=False, timeout=900, env_extra=env_extra)
        self.started.append(pgdata)
        return p, pgdata, port, new_tbl

    started = []

    def connect_restored(self, port):
        import psycopg2
        return psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres",
                                connect_timeout=10)

    def stop_restored(self, pgdata):
        if os.path.exists(os.path.join(pgdata, "postmaster.pid")):
            ph.run_as_postgres([ph.pg_prog("pg_ctl"), "-D", pgdata, "stop", "-m", "immediate", "-w"],
                               check=False)

    def cleanup(self):
        for d in self.started:
            self.stop_restored(d)
        if self.primary:
            self.primary.cleanup()


def check_state(env, port, log, target, label):
    conn = env.connect_restored(port)
    try:
        diffs = rv.compare_state(conn, rv.expected_state(log, target))
    finally:
        conn.close()
    assert not diffs, f"{label}: restored state differs at {target}:\n{rv.format_summary(diffs)}"


# ------------------------------------------------------------------------------------------

def case_pitr(env):
    """Full and incremental backups mid-workload; PITR to 5 random targets, row by row;
    the tablespace survives (mapped elsewhere)."""
    c = env.primary
    wl = rv.Workload(c, rate=300, seed=SEED).start()
    time.sleep(1.0)
    full = env.backup("full")
    assert full["extra"]["type"] == "full"
    assert full["extra"]["bad_pages"] == 0, full["extra"]
    assert full["extra"]["pages_checked"] > 100, "page checksums were not verified"
    full_stop = dt.datetime.fromisoformat(full["extra"]["stop_time"].replace("Z", "+00:00")[:26] + "+00:00")
    time.sleep(1.5)
    incr = env.backup("incr")
    assert incr["extra"]["type"] == "incr"
    s = incr["summary"]
    assert s["files_unchanged"] > 0, s
    assert s["bytes_read"] < s["bytes_total"], s
    incr_stop = dt.datetime.fromisoformat(incr["extra"]["stop_time"].replace("Z", "+00:00")[:26] + "+00:00")
    time.sleep(1.5)
    log = wl.stop()
    c.switch_wal_and_wait_archived()
    assert len(log.txns) > 300, len(log.txns)
    # Five targets after the full backup ended; at least two after the incremental one.
    targets = []
    before_incr = rv.WorkloadLog(base=log.base, txns=[t for t in log.txns if t.commit_ts < incr_stop])
    for frac in sorted(rng.random() for _ in range(3)):
        targets.append(rv.choose_target(before_incr, not_before=full_stop, fraction=frac)[0])
    for frac in sorted(rng.random() for _ in range(2)):
        targets.append(rv.choose_target(log, not_before=incr_stop, fraction=frac)[0])
    used = set()
    for i, t in enumerate(targets):
        p, pgdata, port, tbl = env.restore(t, extra=["--no-archive"])
        out = json.loads(p.stdout)
        used.add(out["backup"])
        assert out["started"] and out["total_seconds"] > 0, out
        assert "recovery stopping" in out["recovery_point"], out
        check_state(env, port, log, t, f"target {i + 1}")
        with open(os.path.join(pgdata, "postgresql.auto.conf")) as f:
            conf = f.read()
        assert "--audit-log" in conf and env.audit_log in conf, "restore_command lacks the audit log"
        assert os.path.exists(os.path.join(pgdata, "lifeboat-spool", ".lock")), "no WAL prefetch ran"
        conn = env.connect_restored(port)
        with conn.cursor() as cur:
            cur.execute("SELECT count(*), sum(length(pdf)) FROM invoices")
            assert cur.fetchone() == (5000, 5000 * 640), "tablespace table lost"
            cur.execute("SELECT pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname = 'extra'")
            assert cur.fetchone()[0] == tbl
        conn.close()
        env.stop_restored(pgdata)
    assert full["id"] in used and incr["id"] in used, (used, full["id"], incr["id"])
    # The restores and the wal-get calls of their recoveries (restore_command, run by the
    # restored servers) are on the audit trail, and its chain verifies.
    recs = [json.loads(line) for line in open(env.audit_log)]
    ops = [r["operation"] for r in recs]
    assert ops.count("pg restore") >= len(targets), ops
    gets = [r for r in recs if r["operation"] == "pg wal-get"]
    assert gets and all(r["exit_code"] == 0 for r in gets), gets[:3]
    assert not any(r["operation"] == "pg wal-push" and r["exit_code"] == 0 for r in recs), ops
    p = env.run(["audit", "verify"], as_pg=False)
    assert "no problems were found" in p.stdout, p.stdout
    env.pitr_log = log
    env.full_id = full["id"]


def case_timeline(env):
    """Restore and promote (timeline 2), keep writing and archiving there, then PITR to a
    time on timeline 2 from the timeline-1 base backup."""
    c = env.primary
    wl = rv.Workload(c, rate=200, seed=SEED + 1).start()
    time.sleep(0.5)
    wl.stop()
    c.switch_wal_and_wait_archived()
    p, pgdata, port, _ = env.restore(None)  # latest: replay everything, promote, keep archiving
    conn = env.connect_restored(port)
    with conn.cursor() as cur:
        cur.execute("SELECT timeline_id FROM pg_control_checkpoint()")
        tli = cur.fetchone()[0]
    conn.close()
    assert tli >= 2, f"not on a new timeline: {tli}"
    restored = f"host=127.0.0.1 port={port} user=postgres dbname=postgres"
    wl2 = rv.Workload(restored, rate=200, seed=SEED + 2).start()
    time.sleep(1.5)
    log2 = wl2.stop()
    conn = env.connect_restored(port)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT pg_walfile_name(pg_switch_wal())")
        seg = cur.fetchone()[0]
    conn.close()
    deadline = time.time() + 60
    while os.path.exists(os.path.join(pgdata, "pg_wal", "archive_status", seg + ".ready")):
        assert time.time() < deadline, "timeline 2 WAL not archived"
        time.sleep(0.1)
    env.stop_restored(pgdata)
    target, _ = rv.choose_target(log2, fraction=0.5)
    p, pgdata2, port2, _ = env.restore(target, extra=["--no-archive", "--target-timeline", str(tli)])
    check_state(env, port2, log2, target, "timeline 2 target")
    env.stop_restored(pgdata2)
    v = env.run(["--json", "pg", "wal-verify"])
    tls = [t["timeline"] for t in json.loads(v.stdout)["timelines"]]
    assert tli in tls, tls


def case_missing_wal(env):
    """A segment deleted from the archive: wal-verify names the gap; a restore past it fails
    with a clear message."""
    backup_repo = env.repo + ".saved"
    subprocess.run(["cp", "-a", env.repo, backup_repo], check=True)  # keeps owners
    try:
        info = json.loads(env.run(["--json", "pg", "info"]).stdout)
        b = info["backups"][0]
        start = b["extra"]["stop_segment"]
        # The segment after the backup's stop: needed by any target later than it.
        segs = sorted(os.listdir(os.path.join(env.repo, "wal", "main", start[:16])))
        later = [s for s in segs if s > start]
        assert len(later) >= 2, segs
        victim = later[0]
        os.unlink(os.path.join(env.repo, "wal", "main", victim[:16], victim))
        v = env.run(["pg", "wal-verify"], check=False)
        assert v.returncode == 6, (v.returncode, v.stdout, v.stderr)
        assert victim in v.stdout and "GAP" in v.stdout, v.stdout
        target = env.pitr_log.txns[-1].commit_ts
        p, pgdata, port, _ = env.restore(target, extra=["--no-archive", "--backup", b["id"],
                                                        "--target-timeline", "1"], check=False)
        assert p.returncode != 0, p.stdout
        assert "recovery ended before configured recovery target was reached" in p.stderr, p.stderr
    finally:
        shutil.rmtree(env.repo)
        os.rename(backup_repo, env.repo)


def case_foreign_cluster(env):
    """WAL of another cluster (another system identifier) is refused."""
    other = ph.Cluster(name="other")
    other.init()
    try:
        seg = sorted(f for f in os.listdir(os.path.join(other.data_dir, "pg_wal")) if len(f) == 24)[0]
        p = env.run(["pg", "wal-push", os.path.join(other.data_dir, "pg_wal", seg)], check=False)
        assert p.returncode == 7, (p.returncode, p.stderr)
        assert "belongs to cluster" in p.stderr, p.stderr
    finally:
        other.cleanup()


def case_server_gone(env):
    """PostgreSQL unreachable: pg backup fails in bounded time, writes no snapshot."""
    before = len(json.loads(env.run(["--json", "snapshots"]).stdout))
    t0 = time.time()
    p = env.run(["pg", "backup"], check=False,
                env_extra={"PGHOST": "127.0.0.1", "PGPORT": str(ph.free_port()), "PGUSER": "postgres"})
    assert p.returncode == 11, (p.returncode, p.stderr)
    assert "connect to PostgreSQL" in p.stderr, p.stderr
    assert time.time() - t0 < 30
    assert len(json.loads(env.run(["--json", "snapshots"]).stdout)) == before


def case_full_disk(env):
    """A restore into a too-small file system fails clearly and says what failed."""
    mnt = ph.make_tempdir("lifeboat-small-")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0755", "tmpfs", mnt],
                       stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        print(f"SKIP full_disk: cannot mount a tmpfs here ({r.stderr.strip()})")
        return
    try:
        p = env.run(["pg", "restore", "--pgdata", os.path.join(mnt, "data"), "--no-archive",
                     "--tablespace-map", f"{env.tblspc}={mnt}/t"], check=False, as_pg=False)
        assert p.returncode != 0, p.stdout
        assert "No space left on device" in p.stderr or "disk is full" in p.stderr, p.stderr
    finally:
        subprocess.run(["umount", "-l", mnt])


def case_stopped_during_recovery(env):
    """The server pg restore --start started is killed before recovery finished: pg restore
    says so at once (it used to wait for the hour its timeout allows)."""
    if not json.loads(env.run(["--json", "pg", "info"]).stdout)["backups"]:
        env.backup("full")
    parent = ph.make_tempdir("lifeboat-restore-")
    pgdata = os.path.join(parent, "data")
    env.started.append(pgdata)
    env_vars = env.base_env()
    # A restore_command that keeps recovery waiting long enough to stop the server under it.
    cmd = [env.lb, "pg", "restore", "--pgdata", pgdata, "--start", "--port", str(ph.free_port()),
           "--no-archive", "--tablespace-map", f"{env.tblspc}={parent}/tblspc",
           "--restore-command", "sleep 30; false"]
    proc = subprocess.Popen(cmd, env=env_vars, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd="/")
    try:
        deadline = time.time() + 120
        while not os.path.exists(os.path.join(pgdata, "postmaster.pid")):
            assert proc.poll() is None, proc.communicate()
            assert time.time() < deadline, "the server did not start"
            time.sleep(0.1)
        time.sleep(1.0)
        # As the OOM killer would: no line in the server log says what happened.
        with open(os.path.join(pgdata, "postmaster.pid")) as f:
            os.kill(int(f.readline()), signal.SIGKILL)
        t0 = time.time()
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 7, (proc.returncode, err)
    assert "the server stopped before recovery finished" in err, err
    assert time.time() - t0 < 10, f"{time.time() - t0:.1f} s to notice"


def case_kill_backup(env):
    """kill -9 of a running pg backup: nothing half-done is listed, check passes, the next
    backup works and the cluster is not left in backup mode."""
    c = env.primary
    before = len(json.loads(env.run(["--json", "pg", "info"]).stdout)["backups"])
    for delay in (0.05, 0.15, 0.3):
        env_vars = env.base_env()
        env_vars.update({k: v for k, v in c.env().items() if k.startswith("PG")})
        cmd = ["runuser", "-u", "postgres", "--", "env"] + [f"{k}={v}" for k, v in env_vars.items()] + \
              [env.lb, "pg", "backup", "--type", "full"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/",
                                start_new_session=True)
        time.sleep(delay)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    p = env.run(["check", "--read-data"], check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    env.run(["unlock"])
    after = json.loads(env.run(["--json", "pg", "info"]).stdout)["backups"]
    for b in after:
        assert b["extra"].get("stop_lsn"), b  # only complete backups are listed
    assert c.query_one("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
                       "AND application_name = 'lifeboat'") == 0
    res = env.backup("incr")
    assert res["extra"]["stop_lsn"]
    assert len(json.loads(env.run(["--json", "pg", "info"]).stdout)["backups"]) >= before + 1


def case_kill_wal_push(env):
    """kill -9 of wal-push at random moments: PostgreSQL retries; the retry succeeds and the
    archive holds the segment whole."""
    c = env.primary
    seg_dir = ph.make_tempdir("lifeboat-segs-")
    for i in range(12):
        # New rows every round, so the current segment is a new one after each switch
        # (pg_walfile_name of an LSN on a segment boundary names the previous segment).
        c.psql(f"INSERT INTO invoices SELECT {100000 + 1000 * i} + g, md5(g::text) "
               "FROM generate_series(1, 500) g")
        name = c.query_one("SELECT pg_walfile_name(pg_current_wal_lsn())")
        src = os.path.join(c.data_dir, "pg_wal", name)
        dst = os.path.join(seg_dir, name)
        shutil.copy(src, dst)
        ph._chown_postgres(dst)
        env_vars = env.base_env()
        cmd = ["runuser", "-u", "postgres", "--", "env"] + [f"{k}={v}" for k, v in env_vars.items()] + \
              [env.lb, "pg", "wal-push", "--source", "killtest", dst]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/",
                                start_new_session=True)
        time.sleep(rng.uniform(0.0, 0.03))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        # The retry PostgreSQL would make: must succeed (stored now, or stored whole before).
        env.run(["pg", "wal-push", "--source", "killtest", dst])
        out = os.path.join(seg_dir, "fetched")
        env.run(["pg", "wal-get", "--source", "killtest", "--prefetch", "0", name, out])
        with open(out, "rb") as a, open(dst, "rb") as b:
            assert a.read() == b.read(), f"archived {name} differs from the original"
        os.unlink(out)
        c.psql("SELECT pg_switch_wal()")
    p = env.run(["check"], check=False)
    assert p.returncode == 0, p.stdout + p.stderr


def case_delta(env):
    """--delta over an earlier restore of the same cluster: unchanged files are kept, stray
    files removed, and the result recovers to its own target."""
    log = env.pitr_log
    t1, _ = rv.choose_target(log, fraction=0.6)
    p, pgdata, port, tbl = env.restore(t1, extra=["--no-archive"])
    env.stop_restored(pgdata)
    stray = os.path.join(pgdata, "base", "stray-file")
    with open(stray, "w") as f:
        f.write("not in the backup")
    t2, _ = rv.choose_target(log, fraction=0.9)
    args = ["--json", "pg", "restore", "--pgdata", pgdata, "--delta", "--start", "--port", str(port),
            "--no-archive", "--tablespace-map", f"{env.tblspc}={tbl}",
            "--target-time", ph.format_pg_timestamp(t2)]
    out = json.loads(env.run(args, as_pg=False).stdout)
    assert out["files_kept"] > 100, out
    assert out["files_removed"] >= 1 and not os.path.exists(stray), out
    check_state(env, port, log, t2, "delta restore")
    env.stop_restored(pgdata)


def case_bad_page(env):
    """A relation page damaged on disk: the backup names the file and block, exits 6."""
    c = ph.Cluster(archive_command=env.archive_command("badpage"), name="badpage")
    c.init()
    c.start()
    try:
        c.psql("CREATE TABLE victim AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 20000) g")
        rel = c.psql("SELECT pg_relation_filepath('victim')")
        c.psql("CHECKPOINT")
        c.stop()
        path = os.path.join(c.data_dir, rel)
        with open(path, "r+b") as f:
            f.seek(3 * 8192 + 4000)  # block 3, inside the tuples, not the header
            b = f.read(1)
            f.seek(3 * 8192 + 4000)
            f.write(bytes([b[0] ^ 0xFF]))
        c.start()
        p = env.run(["pg", "backup", "--source", "badpage"], cluster=c, check=False)
        assert p.returncode == 6, (p.returncode, p.stderr)
        assert f"{rel} block 3" in p.stderr, p.stderr
    finally:
        c.cleanup()


def case_archive_broken(env):
    """archive_command failing: the backup waits for its WAL, then fails with a clear error
    and records no snapshot."""
    c = ph.Cluster(archive_command="false", name="noarchive")
    c.init()
    c.start()
    try:
        before = len(json.loads(env.run(["--json", "snapshots"]).stdout))
        t0 = time.time()
        p = env.run(["pg", "backup", "--source", "noarchive", "--wal-timeout", "3"], cluster=c,
                    check=False)
        assert p.returncode == 11, (p.returncode, p.stderr)
        assert "did not reach the archive" in p.stderr and "archive_command" in p.stderr, p.stderr
        assert time.time() - t0 < 30
        assert len(json.loads(env.run(["--json", "snapshots"]).stdout)) == before
    finally:
        c.cleanup()


def case_two_repos(env):
    """wal-push and pg backup with --repo given twice write every segment and the base backup
    to both repositories; with the first one gone, a PITR falls back to the second for the
    base backup and for every WAL file, and matches row by row."""
    c = env.primary
    second = os.path.join(env.work, "repo2")
    env.run(["--repo", second, "init"])
    both = (f"LIFEBOAT_CACHE_DIR={env.cache} LIFEBOAT_AUDIT_LOG={env.audit_log} "
            f"{env.lb} --repo {env.repo} --repo {second} "
            f"--key-file {env.key} pg wal-push --source main %p")
    c.psql(f"ALTER SYSTEM SET archive_command = '{both}'")
    c.psql("SELECT pg_reload_conf()")
    try:
        wl = rv.Workload(c, rate=200, seed=SEED + 6).start()
        time.sleep(0.5)
        # Written to the first repository and copied (with its WAL) into the second.
        b = json.loads(env.run(["--repo", env.repo, "--repo", second, "--json", "pg", "backup",
                                "--type", "full"], cluster=c).stdout)
        time.sleep(1.0)
        log = wl.stop()
        c.switch_wal_and_wait_archived()
        # The newest segment is in both archives.
        newest = json.loads(env.run(["--json", "pg", "wal-verify"]).stdout)
        newest2 = json.loads(env.run(["--repo", second, "--json", "pg", "wal-verify"]).stdout)
        last = max(t["last"] for t in newest["timelines"] if t["timeline"] == 1)
        last2 = max(t["last"] for t in newest2["timelines"] if t["timeline"] == 1)
        assert last == last2, (last, last2)
        stop = dt.datetime.fromisoformat(b["extra"]["stop_time"].replace("Z", "+00:00")[:26] + "+00:00")
        target, _ = rv.choose_target(log, not_before=stop, fraction=0.6)
        away = env.repo + ".away"
        os.rename(env.repo, away)
        try:
            p, pgdata, port, _ = env.restore(target, extra=["--no-archive", "--target-timeline", "1"],
                                             repos=[env.repo, second])
            assert "trying the next repository" in p.stderr, p.stderr
            check_state(env, port, log, target, "from the second repository")
            env.stop_restored(pgdata)
        finally:
            os.rename(away, env.repo)
    finally:
        c.psql(f"ALTER SYSTEM SET archive_command = '{env.archive_command()}'")
        c.psql("SELECT pg_reload_conf()")


def case_copy(env):
    """The secondary region: `copy` base backups and WAL into a repository with a password of
    its own; with the primary repository out of reach, the copy passes check and wal-verify
    and restores to a random target, row by row; a second copy copies nothing."""
    c = env.primary
    wl = rv.Workload(c, rate=200, seed=SEED + 7).start()
    time.sleep(0.5)
    backup = env.backup("full")
    time.sleep(1.0)
    log = wl.stop()
    c.switch_wal_and_wait_archived()
    repo = os.path.join(env.work, "copy-repo")
    pw = os.path.join(env.work, "copy-password")
    with open(pw, "w") as f:
        f.write("the copy's own password\n")
    os.chmod(pw, 0o600)
    ph._chown_postgres(pw)
    # The copy opens with its password; the primary with its key file, as the source.
    copy_env = {"LIFEBOAT_REPO": repo, "LIFEBOAT_KEY_FILE": "", "LIFEBOAT_PASSWORD_FILE": pw,
                "LIFEBOAT_FROM_REPO": env.repo, "LIFEBOAT_FROM_KEY_FILE": env.key}
    env.run(["init", "--copy-params-from", env.repo], env_extra=copy_env)
    out = json.loads(env.run(["--json", "copy"], env_extra=copy_env).stdout)
    assert out["same_id_key"], out
    assert out["snapshots_copied"] >= 1 and out["wal_files_copied"] > 0, out
    assert backup["id"] in [s["id"] for s in out["snapshots"]], out
    again = json.loads(env.run(["--json", "copy"], env_extra=copy_env).stdout)
    assert again["snapshots_copied"] == 0 and again["wal_files_copied"] == 0, again
    assert again["bytes_read"] == 0, again
    hidden = env.repo + ".out-of-reach"
    os.rename(env.repo, hidden)
    try:
        env.run(["check", "--read-data"], env_extra=copy_env)
        verify = json.loads(env.run(["--json", "pg", "wal-verify"], env_extra=copy_env).stdout)
        assert verify["ok"], verify
        stop = dt.datetime.fromisoformat(backup["extra"]["stop_time"].replace("Z", "+00:00")[:26] + "+00:00")
        target, _ = rv.choose_target(log, not_before=stop, fraction=0.5)
        p, pgdata, port, _ = env.restore(target, extra=["--no-archive"], env_extra=copy_env)
        check_state(env, port, log, target, "restored from the copy")
        env.stop_restored(pgdata)
    finally:
        os.rename(hidden, env.repo)


def case_wal_expire(env):
    """Forget the older base backups and expire WAL: only WAL before the oldest kept backup
    goes; PITR inside the window pg info reports still works; a target before it is refused
    clearly. (Runs last: it removes backups.)"""
    c = env.primary
    wl = rv.Workload(c, rate=200, seed=SEED + 5).start()
    time.sleep(0.5)
    kept = env.backup("full")
    time.sleep(1.0)
    log = wl.stop()
    c.switch_wal_and_wait_archived()
    env.run(["forget", "--kind", "pg-base", "--keep-last", "1"])
    env.run(["prune"])
    before = json.loads(env.run(["--json", "pg", "wal-verify"]).stdout)
    out = json.loads(env.run(["--json", "pg", "wal-expire", "--retention", "0h"]).stdout)
    assert out["segments_removed"] > 0, out
    assert out["oldest_backup"] == kept["id"], out
    after = json.loads(env.run(["--json", "pg", "wal-verify"]).stdout)
    window = [b for b in after["backups"] if b["backup"] == kept["id"]][0]
    assert window["wal_complete"], window
    first = min(t["first"] for t in after["timelines"] if t["timeline"] == 1)
    assert first <= kept["extra"]["start_segment"], (first, kept["extra"])
    assert sum(t["segments"] for t in after["timelines"]) < sum(t["segments"] for t in before["timelines"])
    # Inside the window: works, row by row.
    stop = dt.datetime.fromisoformat(kept["extra"]["stop_time"].replace("Z", "+00:00")[:26] + "+00:00")
    target, _ = rv.choose_target(log, not_before=stop, fraction=0.5)
    p, pgdata, port, _ = env.restore(target, extra=["--no-archive", "--target-timeline", "1"])
    check_state(env, port, log, target, "after wal-expire")
    env.stop_restored(pgdata)
    # Before the window: no base backup can reach it; said plainly, nothing restored.
    early = stop - dt.timedelta(seconds=30)
    p, pgdata, port, _ = env.restore(early, extra=["--no-archive"], check=False)
    assert p.returncode == 5 and "no base backup ended before" in p.stderr, (p.returncode, p.stderr)
    env.run(["check", "--read-data"])


CASES = [case_pitr, case_copy, case_delta, case_bad_page, case_archive_broken, case_timeline, case_missing_wal, case_foreign_cluster, case_server_gone,
         case_full_disk, case_stopped_during_recovery, case_kill_backup, case_kill_wal_push, case_two_repos, case_wal_expire]


def main():
    wanted = sys.argv[1:]
    print(f"seed {SEED} (PG_TEST_SEED to repeat); lifeboat {LIFEBOAT_SRC}")
    env = Env()
    passed = failed = 0
    try:
        env.start_primary()
        for case in CASES:
            name = case.__name__[5:]
            if wanted and name not in wanted:
                continue
            t0 = time.time()
            try:
                case(env)
                passed += 1
                print(f"PASS {name} ({time.time() - t0:.1f} s)", flush=True)
            except Exception:
                failed += 1
                print(f"FAIL {name} ({time.time() - t0:.1f} s)\n{traceback.format_exc()}", flush=True)
                if env.primary:
                    print(env.primary.tail_log(15))
    finally:
        env.cleanup()
        if failed == 0 and os.environ.get("LIFEBOAT_PG_KEEP") != "1":
            ph.remove_tempdir(env.work)
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
