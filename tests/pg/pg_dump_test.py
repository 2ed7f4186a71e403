#!/usr/bin/env python3
"""Stream snapshots against a real PostgreSQL 15: `lifeboat pg dump` (pg_dump -Fc and
pg_dumpall --globals-only streamed into the repository) restored with `lifeboat pg
restore-dump` into a second, fresh cluster (roles first, then the database, streamed and
with --jobs), `pg dump --all`, `lifeboat backup command` with kubectl/helm stand-ins (success
round-trips through `lifeboat dump`, failure exits 7 and records nothing), and a pg_dump
killed with SIGKILL mid-stream, which must record no snapshot.

Usage: pg_dump_test.py [CASE ...]   (default: all). LIFEBOAT: the binary to test.
Ends with "N passed, N failed" and exits non-zero on any failure.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgharness as ph  # noqa: E402  (re-executes under /usr/bin/python3 if psycopg2 is missing)
import reservations as rv  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
LIFEBOAT = os.environ.get("LIFEBOAT") or os.path.join(HERE, "..", "..", "build", "lifeboat")
DB = "hotel"


class Env:
    """A repository, a source cluster with the reservations database `hotel` (plus a role
    with a password owning a table) and a fresh target cluster. lifeboat runs as root; the
    PostgreSQL clients it starts connect over TCP as the postgres user (trust)."""

    def __init__(self):
        self.work = ph.make_tempdir("lifeboat-dumptest-")
        self.repo = os.path.join(self.work, "repo")
        self.cache = os.path.join(self.work, "cache")
        self.pw = os.path.join(self.work, "password")
        with open(self.pw, "w") as f:
            f.write("dump test password\n")
        os.chmod(self.pw, 0o600)
        self.src = self.dst = None
        self.run(["init"])

    def run(self, args, cluster=None, check=True, timeout=600, popen=False):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "LIFEBOAT"))}
        env.update({"LIFEBOAT_REPO": self.repo, "LIFEBOAT_CACHE_DIR": self.cache,
                    "LIFEBOAT_PASSWORD_FILE": self.pw, "LIFEBOAT_TEST_FAST_KDF": "1",
                    "LIFEBOAT_AUDIT_LOG": os.path.join(self.work, "audit.log")})
        if cluster is not None:
            env.update({k: v for k, v in cluster.env().items() if k.startswith("PG")})
        cmd = [LIFEBOAT] + args
        if popen:
            return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True, cwd="/")
        p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=timeout, cwd="/")
        if check and p.returncode != 0:
            raise AssertionError(f"lifeboat {' '.join(args)} exited {p.returncode}\n{p.stdout}\n{p.stderr}")
        return p

    def snapshots(self, kind=None):
        snaps = json.loads(self.run(["--json", "snapshots"]).stdout)
        return [s for s in snaps if kind is None or s["kind"] == kind]

    def start(self):
        self.src = ph.Cluster(name="dumpsrc", conf={"autovacuum": "off"})
        self.src.init()
        self.src.start()
        self.src.psql(f"CREATE DATABASE {DB}")
        self.src.psql("CREATE ROLE app LOGIN PASSWORD 'x'")
        conn = self.src.connect(DB, autocommit=True)
        try:
            rv.create_schema(conn)
            rv.load_sample(conn, 3000, seed=7)
            with conn.cursor() as cur:
                cur.execute("CREATE TABLE app_notes (id int PRIMARY KEY, note text)")
                cur.execute("INSERT INTO app_notes SELECT g, 'note ' || g FROM generate_series(1, 500) g")
                cur.execute("ALTER TABLE app_notes OWNER TO app")
            self.state = rv.snapshot_state(conn)
        finally:
            conn.close()
        self.digest = rv.state_digest(self.state)
        self.dst = ph.Cluster(name="dumpdst")
        self.dst.init()
        self.dst.start()

    def cleanup(self):
        for c in (self.src, self.dst):
            if c is not None:
                c.cleanup()


def db_facts(cluster, db):
    """(reservations count, payments count, state digest, owner of app_notes, app_notes rows)."""
    conn = cluster.connect(db, autocommit=True)
    try:
        state = rv.snapshot_state(conn)
        with conn.cursor() as cur:
            cur.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'app_notes'")
            owner = cur.fetchone()[0]
            cur.execute("SELECT count(*) FROM app_notes")
            notes = cur.fetchone()[0]
    finally:
        conn.close()
    return len(state["reservations"]), len(state["payments"]), rv.state_digest(state), owner, notes


# ------------------------------------------------------------------------------------------

def case_dump_restore(env):
    """pg dump of one database, then into a fresh cluster: globals (role app with its
    password) and the database (pg_restore --create through the pass-through), streamed;
    then once more with --jobs into another database."""
    before = len(env.snapshots())
    p = env.run(["--json", "pg", "dump", "--database", DB, "--tag", "nightly"], cluster=env.src)
    snap = json.loads(p.stdout)
    assert snap["kind"] == "pg-dump" and snap["source"] == "main", snap
    assert snap["tags"] == ["nightly"], snap
    names = sorted(s["name"] for s in snap["extra"]["streams"])
    assert names == ["globals.sql", f"{DB}.dump"], names
    assert snap["extra"]["databases"] == [{"name": DB, "file": f"{DB}.dump"}], snap["extra"]
    assert "password" not in p.stdout.lower() and "PGPASSWORD" not in p.stderr
    assert len(env.snapshots()) == before + 1
    env.dump_id = snap["id"]

    # The custom-format archive round-trips byte for byte through `lifeboat dump`.
    out = os.path.join(env.work, "hotel.dump")
    env.run(["dump", snap["id"][:12], f"{DB}.dump", "--output", out])
    with open(out, "rb") as f:
        assert f.read(5) == b"PGDMP", "not a custom-format archive"
    listing = subprocess.run([ph.pg_prog("pg_restore"), "--list", out], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, check=True).stdout
    assert "TABLE DATA public reservations" in listing, listing[:2000]
    globals_sql = env.run(["dump", snap["id"], "globals.sql"]).stdout
    assert "CREATE ROLE app" in globals_sql, globals_sql[:2000]

    # Fresh cluster: the role does not exist yet, the database neither.
    assert env.dst.query_one("SELECT count(*) FROM pg_roles WHERE rolname = 'app'") == 0
    p = env.run(["--json", "pg", "restore-dump", snap["id"], "--dbname", "postgres", "--globals",
                 "--", "--create", "--exit-on-error"], cluster=env.dst)
    res = json.loads(p.stdout)
    assert res["globals"]["already_existed"] >= 1, res  # the postgres role
    assert res["file"] == f"{DB}.dump", res
    assert env.dst.query_one("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'app'") is True
    assert env.dst.query_one("SELECT rolpassword IS NOT NULL FROM pg_authid WHERE rolname = 'app'") is True
    got = db_facts(env.dst, DB)
    want = (len(env.state["reservations"]), len(env.state["payments"]), env.digest, "app", 500)
    assert got == want, (got, want)

    # Globals a second time: every role exists now; reported, not fatal.
    p = env.run(["pg", "restore-dump", snap["id"], "--dbname", "postgres", "--globals-only"],
                cluster=env.dst)
    assert "already existed" in p.stdout, p.stdout

    # --jobs: through a temporary file in --tmpdir, removed afterwards.
    tmp = ph.make_tempdir("lifeboat-dumptmp-", for_postgres=False)
    env.dst.psql("CREATE DATABASE hotel_copy")
    env.run(["pg", "restore-dump", snap["id"], "--dbname", "hotel_copy", "--jobs", "2",
             "--tmpdir", tmp], cluster=env.dst)
    assert os.listdir(tmp) == [], os.listdir(tmp)
    assert db_facts(env.dst, "hotel_copy") == want

    # A pg_restore that fails (objects exist, --exit-on-error) fails the command with its stderr.
    p = env.run(["pg", "restore-dump", snap["id"], "--dbname", "hotel_copy", "--", "--exit-on-error"],
                cluster=env.dst, check=False)
    assert p.returncode == 7, (p.returncode, p.stderr)
    assert "pg_restore --exit-on-error' exited with status 1" in p.stderr, p.stderr
    assert "already exists" in p.stderr, p.stderr


def case_dump_all(env):
    """--all: one dump per connectable database plus globals; restore-dump then needs
    --database."""
    env.src.psql("CREATE DATABASE \"odd/name\"")
    p = env.run(["--json", "pg", "dump", "--all", "--source", "everything"], cluster=env.src)
    snap = json.loads(p.stdout)
    names = sorted(s["name"] for s in snap["extra"]["streams"])
    assert names == ["globals.sql", f"{DB}.dump", "odd%2Fname.dump", "postgres.dump"], names
    assert snap["source"] == "everything"
    p = env.run(["pg", "restore-dump", snap["id"], "--dbname", "postgres"], cluster=env.dst,
                check=False)
    assert p.returncode == 2 and "--database" in p.stderr, (p.returncode, p.stderr)
    env.dst.psql("CREATE DATABASE odd_copy")
    env.src.psql("CREATE TABLE t (x int); INSERT INTO t VALUES (42)", dbname="odd/name")
    # The table was made after the dump: the copy must be empty of it.
    env.run(["pg", "restore-dump", snap["id"], "--dbname", "odd_copy", "--database", "odd/name"],
            cluster=env.dst)
    assert env.dst.query_one("SELECT count(*) FROM pg_tables WHERE tablename = 't'",
                             dbname="odd_copy") == 0
    # A database that does not exist: nothing recorded.
    before = len(env.snapshots())
    p = env.run(["pg", "dump", "--database", "no_such_db"], cluster=env.src, check=False)
    assert p.returncode != 0 and "no_such_db" in p.stderr, (p.returncode, p.stderr)
    assert len(env.snapshots()) == before


def case_command(env):
    """kubectl / helm stand-ins: YAML on stdout round-trips through `lifeboat dump`; a
    failing one exits 7 and records nothing; a second identical run adds almost nothing."""
    bin_dir = os.path.join(env.work, "bin")
    os.makedirs(bin_dir, exist_ok=True)
    kubectl = os.path.join(bin_dir, "kubectl")
    with open(kubectl, "w") as f:
        f.write(textwrap.dedent("""\
            #!/bin/sh
            # prints the cluster's objects as YAML, like `kubectl get all -A -o yaml`
            echo "apiVersion: v1"
            echo "kind: List"
            echo "items:"
            i=0
            while [ $i -lt 20000 ]; do
              echo "- apiVersion: apps/v1"
              echo "  kind: Deployment"
              echo "  metadata: {name: web-$i, namespace: prod}"
              echo "  spec: {replicas: $((i % 5 + 1))}"
              i=$((i + 1))
            done
            echo "Warning: v1 ComponentStatus is deprecated" >&2
            """))
    helm = os.path.join(bin_dir, "helm")
    with open(helm, "w") as f:
        f.write("#!/bin/sh\necho 'releases:'\necho 'Error: Kubernetes cluster unreachable' >&2\nexit 1\n")
    os.chmod(kubectl, 0o755)
    os.chmod(helm, 0o755)
    expected = subprocess.run([kubectl, "get", "all"], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, check=True).stdout

    before = len(env.snapshots())
    p = env.run(["backup", "command", "--name", "helm-releases", "--", helm, "list", "-A"],
                check=False)
    assert p.returncode == 7, (p.returncode, p.stderr)
    assert "exited with status 1; no snapshot was written" in p.stderr, p.stderr
    assert "Kubernetes cluster unreachable" in p.stderr, p.stderr
    assert len(env.snapshots()) == before

    p = env.run(["--json", "backup", "command", "--name", "k8s-config", "--tag", "k8s", "--",
                 kubectl, "get", "all", "-A", "-o", "yaml"])
    first = json.loads(p.stdout)
    assert first["kind"] == "command" and first["source"] == "k8s-config", first
    assert first["paths"] == ["/k8s-config.out"], first
    assert "ComponentStatus is deprecated" in p.stderr, p.stderr
    assert len(env.snapshots()) == before + 1
    out = env.run(["dump", first["id"]], timeout=120)
    assert out.stdout.encode() == expected, "dump differs from the command's output"
    # `restore` treats it as any tree.
    target = os.path.join(env.work, "restored-k8s")
    env.run(["restore", first["id"], "--target", target])
    with open(os.path.join(target, "k8s-config.out"), "rb") as f:
        assert f.read() == expected

    p = env.run(["--json", "backup", "command", "--name", "k8s-config", "--filename", "all.yaml",
                 "--", kubectl, "get", "all"])
    second = json.loads(p.stdout)
    assert second["paths"] == ["/all.yaml"], second
    assert second["summary"]["bytes_new"] < 4096, second["summary"]  # only the root tree
    assert first["summary"]["bytes_new"] > len(expected) // 2, first["summary"]


def _children(pid):
    """Pids whose parent is pid, with their command lines."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            if ppid != pid:
                continue
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            out.append((int(d), cmd))
        except (OSError, ValueError, IndexError):
            pass
    return out


def case_kill_pg_dump(env):
    """pg_dump killed with SIGKILL while it streams a big table: the command fails (exit 7,
    'killed by signal 9') and no snapshot is recorded; the repository stays consistent."""
    env.src.psql("CREATE DATABASE big")
    env.src.psql("CREATE TABLE filler (id int, a text, b text); "
                 "INSERT INTO filler SELECT g, md5(g::text) || md5((g * 7)::text), md5((g * 13)::text) "
                 "FROM generate_series(1, 1500000) g", dbname="big")
    before = len(env.snapshots())
    proc = env.run(["pg", "dump", "--database", "big", "--no-globals"], cluster=env.src, popen=True)
    try:
        victim = None
        deadline = time.monotonic() + 60
        while victim is None and time.monotonic() < deadline and proc.poll() is None:
            for pid, cmd in _children(proc.pid):
                if "pg_dump -Fc" in cmd:
                    victim = pid
            time.sleep(0.02)
        assert victim is not None, "pg_dump never started"
        time.sleep(0.3)
        assert proc.poll() is None, "lifeboat ended before pg_dump could be killed"
        os.kill(victim, signal.SIGKILL)  # the pg_dump our lifeboat started, by pid
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 7, (proc.returncode, err)
    assert "'pg_dump -Fc big' was killed by signal 9" in err, err
    assert "no snapshot was written" in err, err
    assert len(env.snapshots()) == before
    p = env.run(["check"], check=False)
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)


CASES = [case_dump_restore, case_dump_all, case_command, case_kill_pg_dump]


def main():
    wanted = sys.argv[1:]
    print(f"lifeboat {LIFEBOAT}; PostgreSQL programs in {ph.PG_BIN}")
    env = Env()
    passed = failed = 0
    try:
        env.start()
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
    finally:
        env.cleanup()
        if failed == 0 and os.environ.get("LIFEBOAT_PG_KEEP") != "1":
            ph.remove_tempdir(env.work)
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
