#!/usr/bin/env python3
"""Self test of the PostgreSQL test harness (pgharness.py, reservations.py).

A primary with WAL archiving (cp into <workdir>/archive) gets sample data and a running
Workload; pg_basebackup -X none (stand-in for a lifeboat backup) is taken while it runs.
Then real point-in-time recoveries of copies of that backup, each on a port of its own:
  - target halfway between two commits                  (inclusive, the default)
  - target equal to a commit timestamp                  (inclusive: that commit is in)
  - target equal to a commit timestamp, inclusive=false (that commit is out)
each compared row by row with expected_state(log, target). Also checks that the log
replayed in full equals the primary's final state, that recovery stopped before exactly
the transaction the log says comes first after the target, and that nothing is left
behind. Exits non-zero on any failure; the last line is 'N passed, N failed'.
"""

import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgharness as H  # noqa: E402
import reservations as R  # noqa: E402

results = []
used_dirs = []      # data directories of every cluster started here


def check(name, ok, detail=""):
    results.append((name, bool(ok)))
    print(f"{'PASS' if ok else 'FAIL'} {name}" + (f": {detail}" if detail else ""), flush=True)
    return ok


def pitr(name, backup_dir, archive_dir, log, target, txns, k, inclusive=True):
    """Restores a copy of backup_dir to target, checks it against the log. txns[k] is the
    last transaction expected in (inclusive) / txns[k] the first expected out (exclusive)."""
    t0 = time.monotonic()
    work = H.make_tempdir("lifeboat-pg-pitr-")
    data = os.path.join(work, "data")
    shutil.copytree(backup_dir, data, symlinks=True)     # as root: start_cluster_from_datadir chowns
    target_s = H.format_pg_timestamp(target)
    H.write_recovery_config(data, f"cp {archive_dir}/%f %p", recovery_target_time=target_s,
                            target_action="promote", target_inclusive=None if inclusive else False)
    c = None
    try:
        c = H.start_cluster_from_datadir(data, name=name)
        c.wait_promoted(timeout=120)
        used_dirs.append(data)
        conn = c.connect()
        try:
            diffs = R.compare_state(conn, R.expected_state(log, target, inclusive=inclusive))
        finally:
            conn.close()
        check(f"{name}: state at {target_s} (inclusive={inclusive})", not diffs,
              R.format_summary(diffs) if diffs else f"{time.monotonic() - t0:.1f} s")
        # The server logs "recovery stopping before commit of transaction X, time T".
        first_out = txns[k + 1] if inclusive else txns[k]
        xid32 = first_out.xid % (1 << 32)
        logtext = open(c.log_path, errors="replace").read()
        want = f"recovery stopping before commit of transaction {xid32},"
        check(f"{name}: recovery stopped before transaction {xid32}", want in logtext,
              "" if want in logtext else "server log:\n" + c.tail_log(15))
    except Exception as e:
        check(f"{name}: restore", False, f"{e}\n" + (c.tail_log(30) if c else ""))
    finally:
        if c is not None:
            c.cleanup()
        H.remove_tempdir(work)


def main():
    t_start = time.monotonic()
    # autovacuum off: an autoanalyze commit racing with a workload commit can reach the WAL
    # in the other order than their timestamps (the timestamp is taken just before the
    # commit record is inserted), which moves a target equal to a commit timestamp by one
    # transaction. Rare, but this test must not be flaky.
    with H.running_cluster(archive_command=True, name="primary", conf={"autovacuum": False}) as pg:
        check("primary: archive_mode on, checksums, commit timestamps",
              pg.psql("SHOW archive_mode") == "on" and pg.psql("SHOW data_checksums") == "on"
              and pg.psql("SHOW track_commit_timestamp") == "on")
        conn = pg.connect()
        counts = R.load_sample(conn, 3000, seed=7)
        conn.close()
        print(f"loaded {counts}", flush=True)

        wl = R.Workload(pg, seed=11).start()
        wl.wait_for(20)
        backup_root = H.make_tempdir("lifeboat-pg-basebackup-")
        backup_dir = os.path.join(backup_root, "data")
        t0 = time.monotonic()
        p = subprocess.run([H.pg_prog("pg_basebackup"), "-D", backup_dir, "-X", "none", "-c", "fast",
                            "--no-sync"], env=pg.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=300)
        if not check("pg_basebackup -X none while the workload runs", p.returncode == 0, p.stdout.strip()):
            wl.stop(check=False)
            return
        backup_done = pg.query_one("SELECT clock_timestamp()")
        print(f"base backup in {time.monotonic() - t0:.1f} s", flush=True)
        time.sleep(3)
        log = wl.stop()
        pg.switch_wal_and_wait_archived()
        print(f"workload: {len(log.txns)} transactions, {log.counts()}", flush=True)
        check("workload covers inserts, updates and deletes of both tables",
              all(log.counts().get(k, 0) > 0 for k in ("reservations.insert", "reservations.update",
                                                          "reservations.delete", "payments.insert",
                                                          "payments.update", "payments.delete")),
              str(log.counts()))

        # The log replayed completely must be exactly what the primary has now.
        conn = pg.connect()
        diffs = R.compare_state(conn, R.expected_state(log, log.txns[-1].commit_ts))
        conn.close()
        check("expected_state(log, end) == primary's state", not diffs, R.format_summary(diffs) if diffs else "")

        txns = sorted(log.txns, key=lambda t: t.seq)
        check("commit timestamps increase with commit order",
              all(a.commit_ts < b.commit_ts for a, b in zip(txns, txns[1:])) and
              [t.seq for t in txns] == list(range(len(txns))))

        cases = [("pitr-between", R.choose_target(log, not_before=backup_done, fraction=0.5), True),
                 ("pitr-exact-inclusive", R.choose_target(log, not_before=backup_done, fraction=0.3, exact=True), True),
                 ("pitr-exact-exclusive", R.choose_target(log, not_before=backup_done, fraction=0.7, exact=True), False)]
        for name, (target, k), inclusive in cases:
            exp = R.expected_state(log, target, inclusive=inclusive)
            # A target in the middle must differ from both ends, or the check proves little.
            meaningful = exp != log.base and exp != R.expected_state(log, txns[-1].commit_ts)
            check(f"{name}: target splits the workload ({k + 1}/{len(txns)} txns)", meaningful)
            pitr(name, backup_dir, pg.archive_dir, log, target, txns, k, inclusive)
        H.remove_tempdir(backup_root)
        used_dirs.append(pg.data_dir)
        dirs = [pg.workdir, backup_root]
    H.cleanup_all()
    # Other clusters (other tests) may run on this machine: look for ours only.
    left = subprocess.run(["ps", "-u", H.PG_USER, "-o", "pid=,args="], stdout=subprocess.PIPE, text=True).stdout
    mine = [line for line in left.splitlines() if any(d in line for d in used_dirs)]
    check("no server left running", not mine, "\n".join(mine))
    dirs += [os.path.dirname(d) for d in used_dirs]
    check("no directory left behind", not any(os.path.exists(d) for d in dirs),
          " ".join(d for d in dirs if os.path.exists(d)))
    print(f"self test took {time.monotonic() - t_start:.1f} s")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # a crash is a failure like any other, with cleanup (atexit)
        import traceback
        traceback.print_exc()
        check("self test ran to the end", False, repr(e))
    passed = sum(1 for _, ok in results if ok)
    failed = len(results) - passed
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed or not results else 0)
