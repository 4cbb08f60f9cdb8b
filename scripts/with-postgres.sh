#!/usr/bin/env bash
# scripts/with-postgres.sh CMD...
#
# Runs CMD against a throwaway PostgreSQL cluster: initdb into a temp dir, a free loopback port,
# trust authentication (the server listens on 127.0.0.1 and a socket in the temp dir only),
# started as an unprivileged user when run as root (PostgreSQL refuses to run as root). CMD sees
# TOLLGATE_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:PORT/postgres; the cluster is stopped
# and removed on exit, and the script exits with CMD's status.
#
# Uses initdb/pg_ctl from PATH, else Debian's /usr/lib/postgresql/<version>/bin (the newest).
# Without them it still runs CMD, with no URL: the Postgres tests then skip, or fail when CI is set.
set -euo pipefail

if [ "$#" -eq 0 ]; then
  echo "usage: $0 CMD..." >&2
  exit 64
fi

# tells the tests that this run is the Postgres one: with CI set, they fail rather than skip
# when no URL could be provided
export TOLLGATE_TEST_POSTGRES_EXPECTED=1

find_bindir() {
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(command -v initdb)"
    return 0
  fi
  local d
  # newest version first
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -n -r); do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
      echo "$d"
      return 0
    fi
  done
  return 1
}

if ! bindir=$(find_bindir); then
  echo "with-postgres: no PostgreSQL server binaries (initdb, pg_ctl) found; running without TOLLGATE_TEST_POSTGRES_URL" >&2
  unset TOLLGATE_TEST_POSTGRES_URL
  exec "$@"
fi

# PostgreSQL will not run as root: pick an unprivileged user and hand it the cluster directory.
run_as=()
if [ "$(id -u)" -eq 0 ]; then
  if id postgres >/dev/null 2>&1; then user=postgres; else user=nobody; fi
  if command -v setpriv >/dev/null 2>&1; then
    run_as=(setpriv --reuid="$user" --regid="$(id -g "$user")" --clear-groups --)
  elif command -v runuser >/dev/null 2>&1; then
    run_as=(runuser -u "$user" --)
  else
    echo "with-postgres: running as root and neither setpriv nor runuser is available" >&2
    exit 1
  fi
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tollgate-pg.XXXXXX")
data="$tmp/data"
sock="$tmp/sock"
mkdir -p "$sock"
if [ "${#run_as[@]}" -gt 0 ]; then chown -R "$user" "$tmp"; fi

started=0
cleanup() {
  if [ "$started" -eq 1 ]; then
    (cd "$tmp" && "${run_as[@]}" "$bindir/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1) || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# runs a cluster command from inside the temp dir (the unprivileged user may not read the cwd)
pg() { (cd "$tmp" && "${run_as[@]}" "$@"); }

pg "$bindir/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 --no-locale --no-sync >"$tmp/initdb.log" 2>&1 || {
  cat "$tmp/initdb.log" >&2
  echo "with-postgres: initdb failed" >&2
  exit 1
}

free_port() {
  node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{process.stdout.write(String(s.address().port));s.close()})"
}

# a throwaway cluster: durability off, enough connections for parallel test files (each app has a pool)
for attempt in 1 2 3 4 5; do
  port=$(free_port)
  opts="-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$sock -c max_connections=300"
  opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=64MB"
  if pg "$bindir/pg_ctl" -D "$data" -l "$tmp/server.log" -o "$opts" -w -t 30 start >/dev/null 2>&1; then
    started=1
    break
  fi
  # the port may have been taken between the probe and the start: try another
  echo "with-postgres: start on port $port failed (attempt $attempt)" >&2
done
if [ "$started" -ne 1 ]; then
  cat "$tmp/server.log" >&2 || true
  echo "with-postgres: could not start PostgreSQL" >&2
  exit 1
fi

export TOLLGATE_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
echo "with-postgres: PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') at $TOLLGATE_TEST_POSTGRES_URL" >&2

status=0
"$@" || status=$?
exit "$status"
