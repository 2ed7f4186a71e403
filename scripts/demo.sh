#!/usr/bin/env bash
# lifeboat's main job on a built-in default. Installs what it needs, builds lifeboat, starts a
# throwaway PostgreSQL 15 with sample reservations data (archiving its WAL into a local,
# encrypted lifeboat repository), takes a base backup, keeps writing, restores to a point in
# time between two batches of writes, and proves that exactly the right rows are there. It
# also backs up and restores a sample of the application's uploaded files and PDFs, then
# verifies every blob of the repository.
#
#   bash scripts/demo.sh                        # work dir under /tmp, removed at the end
#   LIFEBOAT_DEMO_KEEP=1 bash scripts/demo.sh   # keep it to look around
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

bash scripts/install-deps.sh >/dev/null
if [ ! -x build/lifeboat ] || [ -n "$(find src CMakeLists.txt -newer build/lifeboat -print -quit)" ]; then
  echo "== building lifeboat =="
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build -j"$(nproc)" >/dev/null
fi

pgbin=/usr/lib/postgresql/15/bin
work=$(mktemp -d /tmp/lifeboat-demo.XXXXXX)
chmod 755 "$work"
# PostgreSQL refuses to run as root: the clusters run as the postgres system user.
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  for d in "$work/data" "$work/restored"; do
    [ -f "$d/postmaster.pid" ] && as_pg "$pgbin/pg_ctl" -D "$d" stop -m immediate >/dev/null 2>&1 || true
  done
  if [ "${LIFEBOAT_DEMO_KEEP:-0}" = 1 ]; then echo "work dir kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
[ "$(id -u)" = 0 ] && chown postgres "$work"

lb="$work/lifeboat"
install -m 755 build/lifeboat "$lb"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
port2=$(free_port)

export LIFEBOAT_REPO="$work/repo" LIFEBOAT_CACHE_DIR="$work/cache"
export LIFEBOAT_PASSWORD_FILE="$work/password" LIFEBOAT_KEY_FILE="$work/key"
( umask 077; head -c 24 /dev/urandom | base64 > "$LIFEBOAT_PASSWORD_FILE" )
[ "$(id -u)" = 0 ] && chown postgres "$LIFEBOAT_PASSWORD_FILE"

echo "== lifeboat init: an encrypted repository, and a key file for archive_command =="
as_pg env LIFEBOAT_KEY_FILE= "$lb" init
as_pg env LIFEBOAT_KEY_FILE= "$lb" key add --generate-key-file "$LIFEBOAT_KEY_FILE"

echo "== a throwaway PostgreSQL 15 (port $port) archiving WAL with lifeboat =="
as_pg "$pgbin/initdb" -D "$work/data" --data-checksums -A trust -U postgres >/dev/null
cat >> "$work/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$work'
archive_mode = on
archive_command = 'LIFEBOAT_CACHE_DIR=$work/cache $lb --repo $work/repo --key-file $work/key pg wal-push %p'
CONF
as_pg "$pgbin/pg_ctl" -D "$work/data" -l "$work/server.log" -w start >/dev/null
export PGHOST="$work" PGPORT=$port PGUSER=postgres PGDATABASE=postgres
sql() { as_pg env PGHOST="$PGHOST" PGPORT="${2:-$PGPORT}" psql -X -q -At -v ON_ERROR_STOP=1 -c "$1"; }

echo "== sample reservations data =="
sql "CREATE TABLE guests (id bigint PRIMARY KEY, name text, email text);
     CREATE TABLE reservations (id uuid PRIMARY KEY, guest_id bigint REFERENCES guests,
       hotel text, room int, check_in date, nights int, batch text, notes text,
       created_at timestamptz DEFAULT clock_timestamp());
     CREATE TABLE payments (id uuid PRIMARY KEY, reservation_id uuid REFERENCES reservations,
       amount numeric(10,2), currency text, card_last4 text,
       paid_at timestamptz DEFAULT clock_timestamp());
     INSERT INTO guests SELECT g, 'guest ' || md5(g::text), md5(g::text) || '@example.com'
       FROM generate_series(1, 20000) g;
     INSERT INTO reservations (id, guest_id, hotel, room, check_in, nights, batch, notes)
       SELECT gen_random_uuid(), 1 + g % 20000, 'hotel-' || (g % 40), 100 + g % 300,
              date '2026-01-01' + g % 365, 1 + g % 9, 'base', repeat(md5(g::text), 3)
       FROM generate_series(1, 100000) g;
     INSERT INTO payments SELECT gen_random_uuid(), id, 50 + room, 'EUR', lpad((room*7)::text, 4, '0')
       FROM reservations;"
sql "SELECT 'reservations: ' || count(*) FROM reservations"

echo "== lifeboat pg backup =="
as_pg "$lb" pg backup --type full

echo "== the application keeps writing: batch A, then the recovery target, then batch B =="
batch() {
  for i in $(seq 1 50); do
    sql "WITH r AS (INSERT INTO reservations (id, guest_id, hotel, room, check_in, nights, batch, notes)
           VALUES (gen_random_uuid(), $i, 'hotel-1', $i, date '2026-12-01', 2, '$1', 'demo') RETURNING id, room)
         INSERT INTO payments SELECT gen_random_uuid(), id, room, 'EUR', '4242' FROM r"
  done
}
batch A
sleep 1
target=$(sql "SELECT clock_timestamp()")
sleep 1
batch B
expected=$(sql "SELECT count(*) || ' ' || md5(string_agg(id::text, ',' ORDER BY id)) FROM reservations WHERE batch IN ('base', 'A')")
sql "SELECT pg_switch_wal()" >/dev/null
for _ in $(seq 1 100); do
  [ "$(sql "SELECT count(*) FROM pg_ls_dir('pg_wal/archive_status') f WHERE f LIKE '%.ready'")" = 0 ] && break
  sleep 0.1
done
as_pg "$lb" pg info

echo "== lifeboat pg restore --target-time '$target' --start =="
as_pg "$lb" pg restore --pgdata "$work/restored" --target-time "$target" --start --port "$port2"
got=$(sql "SELECT count(*) || ' ' || md5(string_agg(id::text, ',' ORDER BY id)) FROM reservations" "$port2")
b_rows=$(sql "SELECT count(*) FROM reservations WHERE batch = 'B'" "$port2")
pay=$(sql "SELECT count(*) FROM payments p JOIN reservations r ON r.id = p.reservation_id WHERE r.batch = 'A'" "$port2")
echo "expected rows at the target: $expected"
echo "restored rows:               $got"
if [ "$expected" != "$got" ] || [ "$b_rows" != 0 ] || [ "$pay" != 50 ]; then
  echo "demo: FAILED: the restored database does not hold exactly the rows committed before the target" >&2
  exit 1
fi
echo "point-in-time restore: exactly the rows committed before the target (batch A in, batch B out)"

echo "== uploaded files and generated PDFs: file snapshots =="
python3 bench/gen_tree.py --out "$work/app" --size-mib 32 --seed 7 >/dev/null
"$lb" backup files "$work/app" --tag uploads
"$lb" restore latest --target "$work/app-restored"
diff -r "$work/app" "$work/app-restored$work/app" && echo "file restore: identical"

echo "== verify: the WAL archive and every blob of the repository =="
as_pg "$lb" pg wal-verify
"$lb" check --read-data
echo "demo: OK"
