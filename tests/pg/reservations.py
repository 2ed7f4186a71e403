#!/usr/bin/env python3
"""The "reservations" application: schema, sample data, a write workload that logs what it
committed, and the expected database state at a point in time (for PITR checks).

Library:
    create_schema(conn)
    load_sample(conn, n_reservations, seed=1, start=0) -> dict of row counts
    w = Workload(cluster_or_dsn, rate=200).start(); ...; log = w.stop()
    exp = expected_state(log, target_time)                 # state after PITR to target_time
    diffs = compare_state(conn, exp)                       # [] when the restore is right

CLI (benchmarks; connects with libpq's PG* variables or --dsn):
    python3 tests/pg/reservations.py load --size-mib 2048 [--seed 1] [--dsn '...']
    python3 tests/pg/reservations.py schema | state-digest
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import datetime as _dt
import hashlib
import os
import random
import sys
import threading
import time
import uuid
from decimal import Decimal

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgharness  # noqa: E402  (also re-executes under /usr/bin/python3 if psycopg2 is missing)
import psycopg2  # noqa: E402
import psycopg2.extensions  # noqa: E402

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS guests (
    id          uuid PRIMARY KEY,
    full_name   text NOT NULL,
    email       text NOT NULL,
    phone       text,
    address     text,
    preferences text,
    country     char(2) NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE IF NOT EXISTS reservations (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    guest_id    uuid NOT NULL REFERENCES guests(id),
    hotel       text NOT NULL,
    room        integer NOT NULL,
    check_in    date NOT NULL,
    check_out   date NOT NULL,
    status      text NOT NULL,
    notes       text,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    CHECK (check_out > check_in),
    CHECK (status IN ('booked', 'confirmed', 'checked_in', 'checked_out', 'cancelled', 'no_show'))
);
CREATE TABLE IF NOT EXISTS payments (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    reservation_id  uuid NOT NULL REFERENCES reservations(id),
    amount          numeric(12,2) NOT NULL,
    currency        char(3) NOT NULL,
    card_last4      char(4),
    paid_at         timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS guests_email_idx ON guests (email);
CREATE INDEX IF NOT EXISTS reservations_guest_idx ON reservations (guest_id);
CREATE INDEX IF NOT EXISTS reservations_hotel_checkin_idx ON reservations (hotel, check_in);
CREATE INDEX IF NOT EXISTS reservations_status_idx ON reservations (status) WHERE status IN ('booked', 'confirmed');
CREATE INDEX IF NOT EXISTS payments_reservation_idx ON payments (reservation_id);
"""

TABLES = ("guests", "reservations", "payments")
# The columns compared after a restore, besides the id.
KEY_COLUMNS = {"reservations": ("status",), "payments": ("amount",)}
STATUSES = ("booked", "confirmed", "checked_in", "checked_out", "cancelled", "no_show")

FIRST = ("Anna Ben Chloe David Emma Felix Grace Hugo Ines Jonas Katarina Luca Maria Noah Olivia "
         "Pablo Quentin Rosa Samuel Tanja Ugo Valentina William Xenia Yusuf Zoe Ahmed Beatriz "
         "Carlos Daniela Erik Fatima Giorgio Hannah Igor Julia Kenji Lena Mateo Nina Oskar Priya "
         "Rafael Sofia Tomas Ursula Victor Wen Yara Zeynep Aiko Bjorn Camille Dmitri Elif Farid").split()
LAST = ("Smith Mueller Rossi Garcia Dubois Novak Jansen Kowalski Silva Nielsen Papadopoulos Ivanova "
        "Tanaka Kim Nguyen Okafor Haddad Schmidt Bianchi Fernandez Laurent Horvat Bakker Nowak Costa "
        "Larsen Georgiou Petrova Suzuki Park Tran Mensah Khalil Weber Romano Lopez Martin Kovac "
        "Visser Wojcik Pereira Berg Demir Sokolov Yamamoto Choi Pham Adeyemi Nasser Fischer").split()
DOMAINS = ("gmail.com mail.com outlook.com yahoo.com proton.me web.de gmx.net orange.fr libero.it "
           "icloud.com posteo.de example.org hotmail.co.uk t-online.de free.fr").split()
COUNTRIES = "DE FR IT ES NL PL PT DK GR CZ AT CH GB US JP KR VN NG SE NO FI BE IE HU RO TR".split()
HOTELS = ("Grand Hotel Central", "Seaside Resort", "Alpine Lodge", "City Inn Airport", "Harbour View",
          "Old Town Boutique", "Lakeside Retreat", "Business Tower", "Garden Suites", "Royal Palace",
          "Riverside Hostel", "Mountain Spa", "Station Hotel", "Vineyard Manor", "Dune Beach Club",
          "Castle Keep Inn", "Forest Cabins", "Skyline Suites", "Marina Bay", "Countryside B&B")
CURRENCIES = ("EUR", "EUR", "EUR", "USD", "USD", "GBP", "CHF", "SEK", "JPY", "PLN")
PHRASES = ("late arrival after 22:00", "early check-in requested", "needs a baby cot", "quiet room please",
           "allergic to feathers", "vegetarian breakfast", "celebrating anniversary", "travelling with a dog",
           "parking space for one car", "airport transfer booked", "extra towels", "room with sea view",
           "ground floor, knee surgery", "business trip, invoice to company", "honeymoon package",
           "late checkout until 14:00", "needs wheelchair access", "twin beds instead of double",
           "gluten free meals", "will pay at reception", "repeat guest, VIP", "group booking with friends",
           "conference attendee", "bringing bicycles", "non-smoking room", "connecting rooms for family",
           "arrives by train", "wants a room away from the elevator", "birthday cake on arrival",
           "deposit paid by bank transfer", "corporate rate applied", "children aged 4 and 7",
           "upgrade if available", "guest called to confirm", "lost luggage, send to room",
           "high floor preferred", "hypoallergenic pillows", "needs fridge for medication",
           "spa appointment at 10:30", "dinner reservation for two", "taxi at 06:15 to the airport")
STREETS = ("Main Street", "Hauptstrasse", "Rue de la Paix", "Via Roma", "Calle Mayor", "Kerkstraat",
           "Ulica Dluga", "Rua Augusta", "Strandvejen", "Odos Ermou", "Bahnhofstrasse", "High Street",
           "Elm Avenue", "Sakura-dori", "Gangnam-daero", "Le Loi", "Broad Street", "Storgatan", "Karl Johans gate",
           "Mannerheimintie", "Rue Neuve", "Grafton Street", "Andrassy ut", "Calea Victoriei", "Istiklal Caddesi")
CITIES = ("Berlin", "Paris", "Rome", "Madrid", "Amsterdam", "Warsaw", "Lisbon", "Copenhagen", "Athens", "Prague",
          "Vienna", "Zurich", "London", "New York", "Tokyo", "Seoul", "Hanoi", "Lagos", "Stockholm", "Oslo",
          "Helsinki", "Brussels", "Dublin", "Budapest", "Bucharest", "Istanbul", "Munich", "Lyon", "Milan")
AIRLINES = "LH AF KL BA IB AZ SK LX OS TP FR U2 W6 DY TK EK QR UA DL AA".split()


def _sql_array(items) -> str:
    return "ARRAY[" + ",".join("'" + s.replace("'", "''") + "'" for s in items) + "]::text[]"


def create_schema(conn):
    with conn.cursor() as cur:
        cur.execute(SCHEMA_SQL)
    if not conn.autocommit:
        conn.commit()


# --------------------------------------------------------------------------------------
# Sample data
# --------------------------------------------------------------------------------------

def _guest_id_sql(seed_expr, idx_expr):
    return f"md5({seed_expr} || ':g:' || ({idx_expr}))::uuid"


def load_sample(conn, n_reservations: int, seed: int = 1, start: int = 0, analyze: bool = True) -> dict:
    """Inserts reservations number start .. start+n_reservations-1 (with their guests, one per
    three reservations, and payments: none for ~12%, a deposit and a balance for ~25%) by
    INSERT ... SELECT over generate_series, deterministically from seed (ids are md5 of the
    seed and the row number, so batches with distinct ranges never collide; the other
    columns come from setseed()/random()). Creates the schema if needed. Commits.
    Returns {'guests': n, 'reservations': n, 'payments': n} inserted."""
    create_schema(conn)
    lo, hi = start, start + n_reservations - 1
    if hi < lo:
        return {"guests": 0, "reservations": 0, "payments": 0}
    s = f"'{int(seed)}'"
    first, last, domains, countries = (_sql_array(x) for x in (FIRST, LAST, DOMAINS, COUNTRIES))
    streets, cities = _sql_array(STREETS), _sql_array(CITIES)
    hotels, currencies, phrases, airlines = (_sql_array(x) for x in (HOTELS, CURRENCIES, PHRASES, AIRLINES))
    statuses = _sql_array(STATUSES)
    counts = {}
    # (The statements below take no parameters: their '%' are SQL's modulo.)
    with conn.cursor() as cur:
        # A different random stream for every batch, reproducible for a given (seed, start).
        cur.execute("SELECT setseed(%s)", (((seed * 1000003 + start) % 2000003) / 2000003.0 * 2 - 1,))
        cur.execute(f"""
            INSERT INTO guests (id, full_name, email, phone, address, preferences, country, created_at)
            SELECT {_guest_id_sql(s, 'g')},
                   fn || ' ' || ln,
                   lower(fn) || CASE WHEN r1 < 0.5 THEN '.' ELSE '_' END || lower(ln)
                       || CASE WHEN r1 < 0.7 THEN (g % 997)::text ELSE '' END
                       || '@' || ({domains})[1 + (r2 * 1000)::int % {len(DOMAINS)}],
                   '+' || (30 + (r3 * 60)::int) || ' ' || lpad((r4 * 999999999)::bigint::text, 9, '0'),
                   (1 + (r5 * 180)::int) || ' ' || ({streets})[1 + (r6 * 1000)::int % {len(STREETS)}] || ', '
                       || lpad((r7 * 99999)::int || '', 5, '0') || ' ' || ({cities})[1 + (r8 * 1000)::int % {len(CITIES)}],
                   CASE WHEN r9 < 0.3 THEN NULL ELSE
                       'Prefers ' || ({phrases})[1 + (r10 * 1000)::int % {len(PHRASES)}]
                       || CASE WHEN r5 < 0.6 THEN '; ' || ({phrases})[1 + (r11 * 1000)::int % {len(PHRASES)}] ELSE '' END
                       || CASE WHEN r6 < 0.5 THEN '. Newsletter: ' || CASE WHEN r7 < 0.5 THEN 'yes' ELSE 'no' END ELSE '' END
                       || CASE WHEN r8 < 0.3 THEN '. Loyalty member since ' || (2005 + (r9 * 19)::int) ELSE '' END
                   END,
                   ({countries})[1 + (r3 * 1000)::int % {len(COUNTRIES)}],
                   timestamptz '2019-01-01 00:00:00+00' + g * interval '2 minutes' + r4 * interval '100 seconds'
            FROM (SELECT g, ({first})[1 + (random() * 1000)::int % {len(FIRST)}] AS fn,
                         ({last})[1 + (random() * 1000)::int % {len(LAST)}] AS ln,
                         random() r1, random() r2, random() r3, random() r4, random() r5, random() r6,
                         random() r7, random() r8, random() r9, random() r10, random() r11
                  FROM generate_series({lo // 3}::bigint, {hi // 3}::bigint) g) x
            ON CONFLICT (id) DO NOTHING""")
        counts["guests"] = cur.rowcount
        cur.execute(f"""
            INSERT INTO reservations (id, guest_id, hotel, room, check_in, check_out, status, notes, created_at)
            SELECT md5({s} || ':r:' || i)::uuid,
                   {_guest_id_sql(s, 'i / 3')},
                   ({hotels})[1 + (r1 * 1000)::int % {len(HOTELS)}],
                   100 * (1 + (r2 * 12)::int) + (r3 * 40)::int,
                   d, d + (1 + (r4 * r4 * 14)::int),
                   ({statuses})[1 + (r5 * r5 * {len(STATUSES)})::int % {len(STATUSES)}],
                   CASE WHEN r6 < 0.1 THEN NULL
                        ELSE initcap(({phrases})[1 + (r7 * 1000)::int % {len(PHRASES)}])
                             || CASE WHEN r8 < 0.9 THEN '; ' || ({phrases})[1 + (r10 * 1000)::int % {len(PHRASES)}] ELSE '' END
                             || CASE WHEN r11 < 0.7 THEN '. ' || initcap(({phrases})[1 + (r12 * 1000)::int % {len(PHRASES)}]) ELSE '' END
                             || CASE WHEN r13 < 0.5 THEN ', ' || ({phrases})[1 + (r14 * 1000)::int % {len(PHRASES)}] ELSE '' END
                             || CASE WHEN r15 < 0.75 THEN '. Front desk: ' || ({phrases})[1 + (r16 * 1000)::int % {len(PHRASES)}]
                                     || ', ' || ({phrases})[1 + (r17 * 1000)::int % {len(PHRASES)}] ELSE '' END
                             || CASE WHEN r20 < 0.8 THEN '. Rate plan: ' || (ARRAY['flexible','non-refundable','advance purchase',
                                     'corporate','package with breakfast','long stay','member rate'])[1 + (r20 * 1000)::int % 7]
                                     || ', ' || CASE WHEN r4 < 0.5 THEN 'breakfast included' ELSE 'room only' END
                                     || ', ' || (ARRAY['1 adult','2 adults','2 adults, 1 child','2 adults, 2 children','3 adults'])[1 + (r21 * 1000)::int % 5]
                                     ELSE '' END
                             || CASE WHEN r18 < 0.6 THEN '. Housekeeping: ' || ({phrases})[1 + (r19 * 1000)::int % {len(PHRASES)}] ELSE '' END
                             || CASE WHEN r9 < 0.35 THEN '. Flight ' || ({airlines})[1 + (r9 * 1000)::int % {len(AIRLINES)}]
                                     || ' ' || (100 + (r1 * 8900)::int) || ' lands '
                                     || lpad((r2 * 24)::int % 24 || '', 2, '0') || ':' || lpad((r3 * 60)::int % 60 || '', 2, '0')
                                     ELSE '' END
                             || CASE WHEN r6 < 0.45 THEN '. Booked via ' || (ARRAY['phone','website','travel agent','walk-in','partner portal'])[1 + (r6 * 100)::int % 5]
                                     || ', ref ' || upper(substr(md5(i::text || {s}), 1, 8)) ELSE '' END
                             || CASE WHEN r5 < 0.4 THEN '. Guest: "' || ({phrases})[1 + (r5 * 777)::int % {len(PHRASES)}] || '"' ELSE '' END
                   END,
                   t
            FROM (SELECT i, t, t::date + 1 + (random() * random() * 300)::int AS d,
                         random() r1, random() r2, random() r3, random() r4, random() r5,
                         random() r6, random() r7, random() r8, random() r9, random() r10,
                         random() r11, random() r12, random() r13, random() r14, random() r15,
                         random() r16, random() r17, random() r18, random() r19, random() r20, random() r21
                  FROM (SELECT i, timestamptz '2020-01-01 00:00:00+00' + i * interval '40 seconds'
                                  + random() * interval '39 seconds' AS t
                        FROM generate_series({lo}::bigint, {hi}::bigint) i) ii) x""")
        counts["reservations"] = cur.rowcount
        cur.execute(f"""
            INSERT INTO payments (id, reservation_id, amount, currency, card_last4, paid_at)
            SELECT md5({s} || ':p:' || i || ':' || k)::uuid,
                   md5({s} || ':r:' || i)::uuid,
                   round((40 + r1 * 460)::numeric * (1 + (r2 * 5)::int) * CASE WHEN k = 1 AND n = 2 THEN 0.3 ELSE 1 END, 2),
                   ({currencies})[1 + (r3 * 1000)::int % {len(CURRENCIES)}],
                   CASE WHEN r4 < 0.1 THEN NULL ELSE lpad((r4 * 10000)::int % 10000 || '', 4, '0') END,
                   timestamptz '2020-01-01 00:00:00+00' + i * interval '40 seconds' + (k - 1) * interval '20 days'
                       + r3 * interval '2 days'
            FROM (SELECT i, CASE WHEN r < 0.12 THEN 0 WHEN r < 0.75 THEN 1 ELSE 2 END AS n
                  FROM (SELECT i, random() r FROM generate_series({lo}::bigint, {hi}::bigint) i) a) x,
                 LATERAL (SELECT k, random() r1, random() r2, random() r3, random() r4
                          FROM generate_series(1, x.n) k) y""")
        counts["payments"] = cur.rowcount
    if not conn.autocommit:
        conn.commit()
    if analyze:
        old = conn.autocommit
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("ANALYZE guests, reservations, payments")
        conn.autocommit = old
    return counts


def relation_bytes(conn) -> int:
    """Size of the three tables with their indexes and TOAST, in bytes."""
    with conn.cursor() as cur:
        cur.execute("SELECT sum(pg_total_relation_size(c)) FROM unnest(%s::regclass[]) c", (list(TABLES),))
        return int(cur.fetchone()[0] or 0)


# --------------------------------------------------------------------------------------
# State snapshots and comparison
# --------------------------------------------------------------------------------------

def snapshot_state(conn) -> dict:
    """{'reservations': {id: (status,)}, 'payments': {id: (amount,)}} of the database now,
    read in one REPEATABLE READ snapshot. ids are lower-case uuid strings."""
    state = {}
    old_auto, old_iso = conn.autocommit, conn.isolation_level
    if not old_auto:
        conn.rollback()
    conn.autocommit = False
    conn.set_session(isolation_level=psycopg2.extensions.ISOLATION_LEVEL_REPEATABLE_READ, readonly=True)
    try:
        with conn.cursor() as cur:
            for table, cols in KEY_COLUMNS.items():
                cur.execute(f"SELECT id::text, {', '.join(cols)} FROM {table}")
                state[table] = {r[0]: tuple(r[1:]) for r in cur}
        conn.rollback()
    finally:
        conn.set_session(isolation_level=old_iso, readonly=False)
        conn.autocommit = old_auto
    return state


@dataclasses.dataclass
class Change:
    table: str          # 'reservations' | 'payments'
    op: str             # 'insert' | 'update' | 'delete'
    id: str
    values: tuple | None  # the KEY_COLUMNS values after the change (None for delete)


@dataclasses.dataclass
class Txn:
    seq: int                    # order of commit in this workload (one session: WAL order)
    xid: int                    # txid_current() (64-bit, with epoch)
    commit_ts: _dt.datetime     # pg_xact_commit_timestamp(xid), = the commit record's time
    changes: list


@dataclasses.dataclass
class WorkloadLog:
    base: dict | None           # snapshot_state() just before the first transaction
    txns: list                  # committed transactions, in commit order
    started_at: _dt.datetime | None = None
    error: str | None = None    # why the workload ended early, if it did
    uncertain: list = dataclasses.field(default_factory=list)  # xids whose COMMIT failed midway

    def counts(self) -> dict:
        c = collections.Counter((ch.table, ch.op) for t in self.txns for ch in t.changes)
        return {f"{t}.{o}": n for (t, o), n in sorted(c.items())}


def expected_state(log: WorkloadLog, target_time, inclusive: bool = True, base: dict | None = None) -> dict:
    """The rows that must exist after a PITR with recovery_target_time=target_time (and
    recovery_target_inclusive=inclusive): the base snapshot plus every transaction whose
    commit timestamp is <= target_time (< when not inclusive), none after. Same shape as
    snapshot_state(). Exact for one writing session (see Workload). target_time: an aware
    datetime or a string such as '2026-11-24 20:40:01.123456+00'."""
    if base is None:
        base = log.base
    if base is None:
        raise ValueError("no base state: run the Workload with snapshot_base=True or pass base=")
    if isinstance(target_time, str):
        target_time = _dt.datetime.fromisoformat(target_time)  # '2026-11-24 20:40:01.123456+00
    if target_time.tzinfo is None:
        raise ValueError("target_time needs a time zone")
    state = {t: dict(rows) for t, rows in base.items()}
    # Recovery replays commits in WAL order (= seq for one session) and stops before the
    # first one whose timestamp is past the target; with a monotonic clock that is the same
    # as taking every commit with timestamp <= target.
    for txn in sorted(log.txns, key=lambda t: t.seq):
        if txn.commit_ts > target_time or (not inclusive and txn.commit_ts == target_time):
            break
        for ch in txn.changes:
            rows = state[ch.table]
            if ch.op == "delete":
                rows.pop(ch.id, None)
            else:
                rows[ch.id] = ch.values
    return state


@dataclasses.dataclass
class Diff:
    table: str
    kind: str           # 'missing' | 'extra' | 'changed'
    id: str
    expected: tuple | None
    actual: tuple | None

    def __str__(self):
        return f"{self.table} {self.id}: {self.kind} (expected {self.expected}, actual {self.actual})"


def compare_state(conn, expected: dict) -> list:
    """Row-by-row differences between the database and expected (from expected_state):
    missing rows, extra rows, rows whose key columns differ ((id, status) for reservations,
    (id, amount) for payments). Empty when equal."""
    actual = snapshot_state(conn)
    diffs = []
    for table in KEY_COLUMNS:
        exp, act = expected.get(table, {}), actual.get(table, {})
        for i in sorted(exp.keys() - act.keys()):
            diffs.append(Diff(table, "missing", i, exp[i], None))
        for i in sorted(act.keys() - exp.keys()):
            diffs.append(Diff(table, "extra", i, None, act[i]))
        for i in sorted(exp.keys() & act.keys()):
            if exp[i] != act[i]:
                diffs.append(Diff(table, "changed", i, exp[i], act[i]))
    return diffs


def state_digest(state: dict) -> str:
    """A short hash of a state (for logs and for comparing big states cheaply)."""
    h = hashlib.sha256()
    for table in sorted(state):
        for i in sorted(state[table]):
            h.update(f"{table}|{i}|{state[table][i]!r}\n".encode())
    return h.hexdigest()[:16]


def format_summary(diffs: list, limit: int = 20) -> str:
    c = collections.Counter((d.table, d.kind) for d in diffs)
    lines = [", ".join(f"{t} {k}: {n}" for (t, k), n in sorted(c.items()))]
    lines += [str(d) for d in diffs[:limit]]
    if len(diffs) > limit:
        lines.append(f"... and {len(diffs) - limit} more")
    return "\n".join(lines)


def choose_target(log: WorkloadLog, not_before=None, fraction: float = 0.5, exact: bool = False):
    """A recovery target time inside the workload: at `fraction` of the transactions
    committed after not_before. exact=False: halfway between two consecutive commit
    timestamps (at least 2 us apart); exact=True: equal to a commit timestamp (that
    transaction is inside with recovery_target_inclusive=true, outside with false).
    Returns (target datetime, index into the ordered transactions of the last one in)."""
    txns = sorted(log.txns, key=lambda t: t.seq)
    cand = [k for k in range(len(txns) - 1)
            if (not_before is None or txns[k].commit_ts > not_before)
            and txns[k + 1].commit_ts - txns[k].commit_ts >= _dt.timedelta(microseconds=2)]
    if not cand:
        raise ValueError("no transaction to put a target between (workload too short?)")
    k = cand[min(len(cand) - 1, int(len(cand) * fraction))]
    if exact:
        return txns[k].commit_ts, k
    a, b = txns[k].commit_ts, txns[k + 1].commit_ts
    return a + (b - a) // 2, k


# --------------------------------------------------------------------------------------
# Workload
# --------------------------------------------------------------------------------------

class Workload:
    """Small write transactions in a background thread, each logged after its commit.

    Every transaction inserts one reservation (for a new guest ~30% of the time), usually
    (p_payment) a payment for it, sometimes (p_update) updates the status of a random
    existing reservation, sometimes (p_refund) changes the amount of a random payment, and
    sometimes (p_delete) deletes a random reservation with its payments. After COMMIT it
    reads pg_xact_commit_timestamp(xid) (needs track_commit_timestamp=on) and logs
    Txn(seq, xid, commit_ts, changes).

    Only one session writes, so commit-timestamp order is WAL order and expected_state() is
    exact. (With several concurrent writers it is not: the commit timestamp is taken just
    before the commit record is inserted, so two commits can reach the WAL in the other
    order than their timestamps.) Nothing else may write these tables while it runs.

    target: a Cluster (connects to it) or a libpq DSN string.
    rate: transactions per second at most (None: as fast as it goes).
    max_txns: stop by itself after that many transactions.
    """

    def __init__(self, target, dbname="postgres", rate=None, seed=None, p_payment=0.85, p_update=0.3,
                 p_refund=0.1, p_delete=0.12, max_txns=None, snapshot_base=True):
        self._target, self.dbname = target, dbname
        self.rate, self.max_txns = rate, max_txns
        self.p_payment, self.p_update, self.p_refund, self.p_delete = p_payment, p_update, p_refund, p_delete
        self.snapshot_base = snapshot_base
        self.rng = random.Random(seed)
        self.log = WorkloadLog(base=None, txns=[])
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = None
        self._exc = None

    def _connect(self):
        if isinstance(self._target, str):
            conn = psycopg2.connect(self._target, application_name="reservations-workload")
        else:
            conn = self._target.connect(self.dbname, application_name="reservations-workload")
        return conn

    def start(self, timeout=60):
        """Starts the thread; returns once the base snapshot is taken (so everything the
        caller does afterwards happens after the workload's start)."""
        self._thread = threading.Thread(target=self._run, name="reservations-workload", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("workload did not start")
        if self._exc:
            raise RuntimeError(f"workload failed to start: {self._exc!r}") from self._exc
        return self

    def wait_for(self, n_txns, timeout=60):
        """Blocks until at least n_txns transactions are logged."""
        deadline = time.monotonic() + timeout
        while len(self.log.txns) < n_txns:
            if self._exc or not self._thread.is_alive():
                raise RuntimeError(f"workload ended: {self._exc!r}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {len(self.log.txns)} of {n_txns} transactions")
            time.sleep(0.01)

    def stop(self, timeout=60, check=True) -> WorkloadLog:
        """Stops after the current transaction and returns the log. check: raise if the
        workload failed (else the error is in log.error)."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise RuntimeError("workload thread does not stop")
        if check and self._exc:
            raise RuntimeError(f"workload failed: {self._exc!r}") from self._exc
        return self.log

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop(check=exc[0] is None)
        return False

    def _run(self):
        conn = None
        try:
            conn = self._connect()
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SELECT clock_timestamp()")
                self.log.started_at = cur.fetchone()[0]
            if self.snapshot_base:
                self.log.base = snapshot_state(conn)
            conn.autocommit = True
            self._ready.set()
            interval = 1.0 / self.rate if self.rate else 0.0
            next_at = time.monotonic()
            seq = 0
            while not self._stop.is_set():
                if self.max_txns is not None and seq >= self.max_txns:
                    break
                if interval:
                    now = time.monotonic()
                    if now < next_at:
                        time.sleep(next_at - now)
                    next_at = max(next_at + interval, time.monotonic() - 1.0)
                self._one(conn, seq)
                seq += 1
        except Exception as e:  # reported by stop()
            self._exc = e
            self.log.error = repr(e)
        finally:
            self._ready.set()
            if conn is not None:
                try:
                    conn.close()
                except Exception:
                    pass

    def _note(self):
        r = self.rng
        parts = [r.choice(PHRASES).capitalize()]
        if r.random() < 0.5:
            parts.append(r.choice(PHRASES))
        if r.random() < 0.3:
            parts.append(f"flight {r.choice(AIRLINES)} {r.randint(100, 9999)} lands {r.randint(0, 23):02d}:{r.randint(0, 59):02d}")
        return "; ".join(parts) if r.random() > 0.15 else None

    def _one(self, conn, seq):
        r = self.rng
        changes = []
        with conn.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute("SELECT txid_current()")
            xid = cur.fetchone()[0]
            if r.random() < 0.3:
                fn, ln = r.choice(FIRST), r.choice(LAST)
                cur.execute("""INSERT INTO guests (id, full_name, email, phone, country)
                               VALUES (gen_random_uuid(), %s, %s, %s, %s) RETURNING id""",
                            (f"{fn} {ln}", f"{fn.lower()}.{ln.lower()}{r.randint(1, 999)}@{r.choice(DOMAINS)}",
                             f"+{r.randint(30, 90)} {r.randint(0, 999999999):09d}", r.choice(COUNTRIES)))
                guest = cur.fetchone()[0]
            else:
                cur.execute("""SELECT coalesce((SELECT id FROM guests WHERE id >= gen_random_uuid() ORDER BY id LIMIT 1),
                                               (SELECT id FROM guests ORDER BY id LIMIT 1))""")
                guest = cur.fetchone()[0]
                if guest is None:
                    cur.execute("""INSERT INTO guests (id, full_name, email, country)
                                   VALUES (gen_random_uuid(), 'Walk In', 'walkin@example.org', 'DE') RETURNING id""")
                    guest = cur.fetchone()[0]
            check_in = _dt.date(2026, 1, 1) + _dt.timedelta(days=r.randint(0, 700))
            cur.execute("""INSERT INTO reservations (guest_id, hotel, room, check_in, check_out, status, notes)
                           VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id::text, status""",
                        (guest, r.choice(HOTELS), 100 * r.randint(1, 12) + r.randint(0, 39), check_in,
                         check_in + _dt.timedelta(days=r.randint(1, 14)), r.choice(("booked", "confirmed")),
                         self._note()))
            rid, status = cur.fetchone()
            changes.append(Change("reservations", "insert", rid, (status,)))
            if r.random() < self.p_payment:
                cur.execute("""INSERT INTO payments (reservation_id, amount, currency, card_last4)
                               VALUES (%s, round(%s::numeric, 2), %s, %s) RETURNING id::text, amount""",
                            (rid, r.uniform(40, 3000), r.choice(CURRENCIES), f"{r.randint(0, 9999):04d}"))
                pid, amount = cur.fetchone()
                changes.append(Change("payments", "insert", pid, (amount,)))
            if r.random() < self.p_update:
                cur.execute("""UPDATE reservations SET status = %s
                               WHERE id = (SELECT id FROM reservations WHERE id >= gen_random_uuid() AND id <> %s
                                           ORDER BY id LIMIT 1)
                               RETURNING id::text, status""", (r.choice(STATUSES), rid))
                for uid, st in cur.fetchall():
                    changes.append(Change("reservations", "update", uid, (st,)))
            if r.random() < self.p_refund:
                cur.execute("""UPDATE payments SET amount = round(amount * %s, 2)
                               WHERE id = (SELECT id FROM payments WHERE id >= gen_random_uuid() ORDER BY id LIMIT 1)
                               RETURNING id::text, amount""", (r.choice((0.5, 0.8, 0.9, -1)),))
                for pid, amount in cur.fetchall():
                    changes.append(Change("payments", "update", pid, (amount,)))
            if r.random() < self.p_delete:
                cur.execute("""SELECT id FROM reservations WHERE id >= gen_random_uuid() AND id <> %s
                               ORDER BY id LIMIT 1""", (rid,))
                row = cur.fetchone()
                if row:
                    cur.execute("DELETE FROM payments WHERE reservation_id = %s RETURNING id::text", (row[0],))
                    for (pid,) in cur.fetchall():
                        changes.append(Change("payments", "delete", pid, None))
                    cur.execute("DELETE FROM reservations WHERE id = %s RETURNING id::text", (row[0],))
                    for (did,) in cur.fetchall():
                        changes.append(Change("reservations", "delete", did, None))
            try:
                cur.execute("COMMIT")
            except psycopg2.Error:
                self.log.uncertain.append(xid)
                raise
            cur.execute("SELECT pg_xact_commit_timestamp((%s %% 4294967296)::text::xid)", (xid,))
            ts = cur.fetchone()[0]
            if ts is None:
                raise RuntimeError("no commit timestamp: is track_commit_timestamp on?")
        self.log.txns.append(Txn(seq, xid, ts, changes))


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------

def _connect_cli(args):
    conn = psycopg2.connect(args.dsn or "", application_name="reservations-cli")
    return conn


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dsn", help="libpq connection string (default: the PG* environment variables)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    lp = sub.add_parser("load", help="load sample data up to about --size-mib of relations")
    g = lp.add_mutually_exclusive_group(required=True)
    g.add_argument("--size-mib", type=float, help="target size of the tables and indexes, MiB")
    g.add_argument("--reservations", type=int, help="exact number of reservations instead")
    lp.add_argument("--seed", type=int, default=1)
    lp.add_argument("--batch", type=int, default=200000, help="reservations per transaction")
    lp.add_argument("--quiet", action="store_true")
    sub.add_parser("schema", help="create the schema only")
    sub.add_parser("state-digest", help="print row counts and a digest of the key columns")
    args = ap.parse_args(argv)

    conn = _connect_cli(args)
    conn.autocommit = False
    try:
        if args.cmd == "schema":
            create_schema(conn)
        elif args.cmd == "state-digest":
            st = snapshot_state(conn)
            print(" ".join(f"{t}={len(v)}" for t, v in st.items()), state_digest(st))
        elif args.cmd == "load":
            create_schema(conn)
            with conn.cursor() as cur:
                cur.execute("SELECT count(*) FROM reservations")
                start = cur.fetchone()[0]  # continue numbering after earlier loads (same seed)
            conn.commit()
            t0 = time.monotonic()
            total = collections.Counter()
            target = int(args.size_mib * 1048576) if args.size_mib else None
            remaining = args.reservations
            batch = args.batch
            while True:
                size = relation_bytes(conn)
                conn.commit()
                if target is not None:
                    if size >= target:
                        break
                    if total["reservations"]:  # estimate from what was loaded so far
                        per_row = max(1.0, (size - size0) / total["reservations"])
                        n = int(min(batch, max(1000, (target - size) / per_row)))
                    else:
                        size0 = size
                        n = min(batch, 20000)
                else:
                    if remaining <= 0:
                        break
                    n = min(batch, remaining)
                    remaining -= n
                c = load_sample(conn, n, seed=args.seed, start=start, analyze=False)
                start += n
                total.update(c)
                if not args.quiet:
                    print(f"  {total['reservations']} reservations, {relation_bytes(conn) / 1048576:.0f} MiB, "
                          f"{time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)
                conn.commit()
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("VACUUM ANALYZE guests, reservations, payments")
            size = relation_bytes(conn)
            print(f"loaded guests={total['guests']} reservations={total['reservations']} "
                  f"payments={total['payments']} size_mib={size / 1048576:.1f} seconds={time.monotonic() - t0:.1f}")
    finally:
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
