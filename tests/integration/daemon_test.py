#!/usr/bin/env python3
"""`lifeboat daemon` running a plan against a real PostgreSQL 15 (tests/pg/pgharness.py):
second-scale schedules (`@every`) for a full base backup, a files backup with retention and
a forget job, WAL archived by archive_command = lifeboat pg wal-push. Checks that jobs run
and land in the history, that the history survives a restart and a missed job runs once,
that `status` turns VIOLATED (exit 2) when archiving is broken on purpose and OK again
when repaired, that /metrics parses with prometheus_client's parser, that SIGHUP with a
broken plan keeps the old one, and that SIGTERM stops cleanly (exit 0, no child left).

LIFEBOAT: the binary to test. Ends with "N passed, N failed".
"""
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import traceback
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "pg"))
import pgharness as ph  # noqa: E402

LIFEBOAT_SRC = os.environ.get("LIFEBOAT") or os.path.join(HERE, "..", "..", "build", "lifeboat")
results = []


def check(name, cond, detail=""):
    results.append((name, bool(cond)))
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else f": {detail}"), flush=True)
    return cond


def wait_for(what, fn, timeout, interval=0.5):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 (the daemon may be restarting)
            last = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last})")


class Setup:
    def __init__(self):
        self.work = ph.make_tempdir("lifeboat-daemon-")
        # Two copies of the binary: archive_command runs one, the daemon the other, so the
        # processes the daemon leaves behind (none, we hope) are told apart.
        self.lb = os.path.join(self.work, "lifeboat")
        self.lbd = os.path.join(self.work, "lifeboat-daemon")
        for p in (self.lb, self.lbd):
            shutil.copy(LIFEBOAT_SRC, p)
            os.chmod(p, 0o755)
        self.repo = os.path.join(self.work, "repo")
        self.key = os.path.join(self.work, "key")
        self.pw = os.path.join(self.work, "password")
        self.files = os.path.join(self.work, "files")
        self.history = os.path.join(self.work, "state", "history.db")
        self.plan = os.path.join(self.work, "plan.yaml")
        self.log = os.path.join(self.work, "daemon.log")
        self.port = ph.free_port()
        os.makedirs(self.files)
        for i in range(20):
            with open(os.path.join(self.files, f"f{i}.txt"), "w") as f:
                f.write(f"file {i}\n" * 100)
        with open(self.pw, "w") as f:
            f.write("daemon test password\n")
        os.chmod(self.pw, 0o600)
        ph._chown_postgres(self.work, recursive=True)
        self.lbrun(["--repo", self.repo, "--password-file", self.pw, "init"])
        self.lbrun(["--repo", self.repo, "--password-file", self.pw, "key", "add",
                    "--generate-key-file", self.key])
        self.audit_log = os.path.join(self.work, "audit.log")
        self.archive_command = (f"LIFEBOAT_AUDIT_LOG={self.audit_log} {self.lb} --repo {self.repo} "
                                f"--key-file {self.key} pg wal-push --source main %p")
        self.pg = ph.Cluster(archive_command=self.archive_command, archive_timeout=2,
                             name="daemon", conf={"autovacuum": "off"})
        self.pg.init()
        self.pg.start()
        self.pg.psql("CREATE TABLE payments (id serial PRIMARY KEY, at timestamptz DEFAULT now())")
        self.write_plan()
        self.daemon = None
        self.stop_writer = threading.Event()
        self.writer = threading.Thread(target=self.write_payments, daemon=True)
        self.writer.start()

    def write_payments(self):
        """A payment a second, so archive_timeout closes a segment every few seconds."""
        while not self.stop_writer.is_set():
            try:
                self.pg.psql("INSERT INTO payments DEFAULT VALUES", check=False)
            except Exception:  # noqa: BLE001
                pass
            self.stop_writer.wait(1)

    def plan_text(self):
        return f"""version: 1
encryption:
  key_file: {self.key}
repositories:
  local:
    url: {self.repo}
sources:
  db:
    kind: postgres
    env: {{PGHOST: 127.0.0.1, PGPORT: "{self.pg.port}", PGUSER: postgres, PGDATABASE: postgres}}
    pgdata: {self.pg.data_dir}
    wal_source: main
  docs:
    kind: files
    paths: [{self.files}]
wal:
  retention: 7d
  archive_timeout: 2s
jobs:
  pg-full:
    kind: full
    source: db
    schedule: "@every 30s"
    retention: {{keep_last: 2}}
  docs:
    kind: files
    source: docs
    schedule: "@every 4s"
    retention: {{keep_last: 3}}
  docs-forget:
    kind: forget
    source: docs
    schedule: "@every 10s"
    retention: {{keep_last: 4}}
objectives:
  payment-data:
    sources: [db]
    rpo: 25s
  documents:
    sources: [docs]
    rpo: 60s
audit:
  log: {self.audit_log}
daemon:
  listen: 127.0.0.1:{self.port}
  history: {self.history}
  retries: 1
  retry_delay: 1s
  job_timeout: 60s
  stop_grace: 20s
"""

    def write_plan(self, text=None):
        with open(self.plan, "w") as f:
            f.write(text if text is not None else self.plan_text())
        ph._chown_postgres(self.plan)

    def as_pg(self, cmd):
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--"] + cmd
        return cmd

    def env(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "LIFEBOAT"))}
        env["LIFEBOAT_TEST_FAST_KDF"] = "1"
        env["HOME"] = self.work  # the repository cache of the postgres user
        return env

    def lbrun(self, args, check=True, timeout=300):
        p = subprocess.run(self.as_pg([self.lb] + args), env=self.env(), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=timeout, cwd="/")
        if check and p.returncode != 0:
            raise AssertionError(f"lifeboat {' '.join(args)} exited {p.returncode}\n{p.stdout}\n{p.stderr}")
        return p

    def status(self):
        p = self.lbrun(["--json", "status", "--plan", self.plan], check=False, timeout=120)
        return p.returncode, (json.loads(p.stdout) if p.stdout.strip() else None), p.stderr

    def start_daemon(self):
        self.log_file = open(self.log, "a")
        # Started as postgres directly (not through runuser), so signals reach the daemon.
        drop = {}
        if os.geteuid() == 0:
            drop = {"user": "postgres", "group": "postgres", "extra_groups": []}
        self.daemon = subprocess.Popen([self.lbd, "daemon", "--plan", self.plan,
                                        "--observe-interval", "1"],
                                       env=self.env(), stdout=self.log_file, stderr=self.log_file,
                                       cwd="/", **drop)
        wait_for("the daemon's HTTP port", lambda: self.http("/healthz") == "ok\n", 30)

    def stop_daemon(self, timeout=60):
        self.daemon.send_signal(signal.SIGTERM)
        rc = self.daemon.wait(timeout=timeout)
        self.log_file.close()
        return rc

    def http(self, path):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as r:
            return r.read().decode()

    def runs(self):
        db = sqlite3.connect(f"file:{self.history}?mode=ro", uri=True, timeout=10)
        try:
            return db.execute("SELECT job, scheduled, started, ended, result, attempt, bytes, snapshot "
                              "FROM runs ORDER BY id").fetchall()
        finally:
            db.close()

    def daemon_children(self):
        """Processes still running our daemon copy of the binary (the daemon's jobs)."""
        out = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                exe = os.readlink(f"/proc/{pid}/exe")
            except OSError:
                continue
            if exe == self.lbd:
                out.append(int(pid))
        return out

    def cleanup(self):
        self.stop_writer.set()
        if self.daemon and self.daemon.poll() is None:
            self.daemon.kill()
            self.daemon.wait()
        for pid in self.daemon_children():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        self.pg.cleanup()
        ph.remove_tempdir(self.work)


def ok_runs(s, job):
    return [r for r in s.runs() if r[0] == job and r[4] == "ok"]


def main():
    s = Setup()
    try:
        p = s.lbrun(["plan", "check", s.plan], check=False)
        check("plan check accepts the @every plan", p.returncode == 0, p.stdout + p.stderr)

        s.start_daemon()
        wait_for("ok runs of every job", lambda: all(ok_runs(s, j) for j in
                                                     ("pg-full", "docs", "docs-forget")), 120)
        runs = s.runs()
        full = ok_runs(s, "pg-full")[0]
        check("pg-full recorded a snapshot id and bytes", len(full[7]) == 64 and full[6] > 0, full)
        wait_for("docs retention (keep_last 3 after each backup)", lambda: len(ok_runs(s, "docs")) >= 5, 60)
        snaps = json.loads(s.lbrun(["--repo", s.repo, "--key-file", s.key, "--json", "snapshots",
                                    "--tag", "job:docs"]).stdout)
        check("the docs job's retention kept at most 3 of its snapshots", 1 <= len(snaps) <= 3,
              len(snaps))
        check("snapshots carry job and source tags",
              all("source:docs" in x.get("tags", []) for x in snaps), snaps[:1])

        st = json.loads(s.http("/status"))
        check("/status lists both objectives", {o["name"] for o in st["objectives"]} ==
              {"payment-data", "documents"}, st["objectives"])
        rc, js, err = wait_for("status OK", lambda: (lambda r: r if r[0] == 0 else None)(s.status()), 60)
        check("status exit 0 while archiving works", rc == 0, err)
        check("payment-data OK", [o["state"] for o in js["objectives"] if o["name"] == "payment-data"] == ["OK"],
              js["objectives"])

        from prometheus_client.parser import text_string_to_metric_families
        fams = {f.name: f for f in text_string_to_metric_families(s.http("/metrics"))}
        for name in ("lifeboat_job_last_success_timestamp_seconds", "lifeboat_job_last_duration_seconds",
                     "lifeboat_job_last_bytes", "lifeboat_job_failures", "lifeboat_objective_rpo_exposure_seconds",
                     "lifeboat_objective_rpo_seconds", "lifeboat_wal_archive_lag_seconds"):
            check(f"/metrics has {name}", name in fams, sorted(fams))
        bytes_full = [x.value for x in fams["lifeboat_job_last_bytes"].samples if x.labels.get("job") == "pg-full"]
        check("/metrics: pg-full bytes > 0", bytes_full and bytes_full[0] > 0, bytes_full)

        # SIGHUP with a broken plan: the old plan stays.
        good = s.plan_text()
        s.write_plan(good.replace("schedule: \"@every 4s\"", "schedule: \"@every 4x\""))
        s.daemon.send_signal(signal.SIGHUP)
        wait_for("the refused reload in the log", lambda: "reload refused" in open(s.log).read(), 20)
        n = len(ok_runs(s, "docs"))
        wait_for("docs still running after a refused reload", lambda: len(ok_runs(s, "docs")) > n, 30)
        check("a broken plan on SIGHUP keeps the old one", s.daemon.poll() is None)
        s.write_plan(good)
        s.daemon.send_signal(signal.SIGHUP)
        wait_for("the reload in the log", lambda: "reloaded" in open(s.log).read(), 20)

        # Restart: the history persists, and a missed job runs once.
        before = len(s.runs())
        rc = s.stop_daemon()
        check("SIGTERM: exit 0", rc == 0, rc)
        check("SIGTERM: no job process left", s.daemon_children() == [], s.daemon_children())
        interrupted = [r for r in s.runs() if r[4] in ("running",)]
        check("no run left marked running", interrupted == [], interrupted)
        time.sleep(13)  # three slots of docs pass
        restart = time.time()
        s.start_daemon()
        wait_for("the missed docs run", lambda: [r for r in s.runs() if r[0] == "docs" and r[2] >= restart
                                                 and r[3] > 0], 60)
        runs = s.runs()
        check("the history persists across the restart", len(runs) >= before, (len(runs), before))
        missed = [r for r in runs if r[0] == "docs" and r[2] >= restart and r[1] < restart]
        check("a missed job runs once after downtime", len(missed) == 1, missed)

        # Archiving broken on purpose: RPO violated; repaired: OK again.
        s.pg.psql("ALTER SYSTEM SET archive_command = 'false'")
        s.pg.psql("SELECT pg_reload_conf()")
        s.pg.psql("SELECT pg_switch_wal()")
        rc, js, err = wait_for("status VIOLATED", lambda: (lambda r: r if r[0] == 2 else None)(s.status()), 90)
        check("status exit 2 when WAL archiving is broken", rc == 2, err)
        check("payment-data VIOLATED", [o["state"] for o in js["objectives"] if o["name"] == "payment-data"]
              == ["VIOLATED"], js["objectives"])
        fams = {f.name: f for f in text_string_to_metric_families(s.http("/metrics"))}
        violated = [x.value for x in fams["lifeboat_objective_rpo_violated"].samples
                    if x.labels.get("objective") == "payment-data"]
        check("/metrics shows the violation", violated == [1.0], violated)
        s.pg.psql(f"ALTER SYSTEM SET archive_command = '{s.archive_command}'")
        s.pg.psql("SELECT pg_reload_conf()")
        rc, js, err = wait_for("status OK again", lambda: (lambda r: r if r[0] == 0 else None)(s.status()), 120)
        check("status exit 0 once archiving is repaired", rc == 0, err)

        rc = s.stop_daemon(timeout=90)
        check("SIGTERM again: exit 0", rc == 0, rc)
        check("no job process left after the second stop", s.daemon_children() == [], s.daemon_children())
        fails = [r for r in s.runs() if r[4] == "running"]
        check("every run has an end", fails == [], fails)

        # The audit trail: the daemon's starts and stops and every job step, chained.
        v = s.lbrun(["audit", "verify", "--log", s.audit_log], check=False)
        check("audit verify passes on the daemon's log", v.returncode == 0, v.stdout + v.stderr)
        ops = [json.loads(line)["operation"] for line in open(s.audit_log) if line.strip()]
        check("audit: two daemon starts and two stops", ops.count("daemon start") == 2
              and ops.count("daemon") == 2, ops[:20])
        check("audit: the job steps are recorded",
              {"pg backup", "backup files", "forget"} <= set(ops), sorted(set(ops)))
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        results.append(("unexpected error", False))
        try:
            print("---- daemon log (tail) ----")
            print("".join(open(s.log).readlines()[-60:]))
        except OSError:
            pass
    finally:
        s.cleanup()
    passed = sum(1 for _, ok in results if ok)
    failed = len(results) - passed
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
