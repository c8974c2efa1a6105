#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL cluster of its own: initdb in a temporary folder,
# the server on a free loopback port, run as an unprivileged user (never a system service),
# stopped and removed when the command ends. The command sees the cluster as
#   KAIFANG_TEST_POSTGRES=postgres://kaifang:PASSWORD@127.0.0.1:PORT/kaifang
# (a superuser with a password over TCP; tests make one schema or database each).
#
#   scripts/with-postgres.sh swift test
#
# Without PostgreSQL's binaries (Debian: postgresql-15) the command runs without the cluster
# and says so, unless KAIFANG_REQUIRE_POSTGRES=1, which makes that an error (CI sets it).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
if [ -z "$BIN" ] || [ ! -x "$BIN/initdb" ]; then
  if [ "${KAIFANG_REQUIRE_POSTGRES:-0}" = 1 ]; then
    echo "with-postgres: PostgreSQL is not installed (apt-get install postgresql): the shared-store tests cannot run" >&2
    exit 1
  fi
  echo "with-postgres: PostgreSQL is not installed: running against the embedded store only" >&2
  exec "$@"
fi

DIR=$(mktemp -d -t kaifang-pg.XXXXXX)
PORT=$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
PASSWORD=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
# initdb refuses to run as root: the cluster belongs to an unprivileged user.
if [ "$(id -u)" -eq 0 ]; then
  RUNAS=${PG_USER:-postgres}
  id "$RUNAS" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$RUNAS"
  chown "$RUNAS" "$DIR"
  as() { runuser -u "$RUNAS" -- "$@"; }
else
  as() { "$@"; }
fi
printf '%s\n' "$PASSWORD" > "$DIR/pw"
[ "$(id -u)" -eq 0 ] && chown "$RUNAS" "$DIR/pw"
stop() {
  as "$BIN/pg_ctl" -D "$DIR/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap stop EXIT
as "$BIN/initdb" -D "$DIR/data" -U kaifang --pwfile="$DIR/pw" --auth-local=trust --auth-host=scram-sha-256 \
   -E UTF8 --locale=C.UTF-8 >"$DIR/initdb.log" 2>&1 || { cat "$DIR/initdb.log" >&2; exit 1; }
# A test cluster: durability off (the data is thrown away), enough connections for replicas.
# PG_DURABLE=1 (benchmarks) keeps fsync and full-page writes on; commits still do not wait
# for the disk (synchronous_commit=off), like the embedded store's WAL at synchronous=NORMAL.
DURABILITY="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
[ "${PG_DURABLE:-0}" = 1 ] && DURABILITY="-c synchronous_commit=off -c shared_buffers=512MB"
as "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 \
   -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 $DURABILITY -c max_connections=300 ${PG_OPTIONS:-}" \
   start >/dev/null || { cat "$DIR/server.log" >&2; exit 1; }
as "$BIN/createdb" -h "$DIR" -p "$PORT" -U kaifang kaifang
export KAIFANG_TEST_POSTGRES="postgres://kaifang:$PASSWORD@127.0.0.1:$PORT/kaifang"
export KAIFANG_TEST_POSTGRES_BIN="$BIN"
echo "with-postgres: a cluster on 127.0.0.1:$PORT ($("$BIN/postgres" --version))" >&2
"$@"
