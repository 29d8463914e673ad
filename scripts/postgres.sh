#!/usr/bin/env bash
# A throwaway PostgreSQL server on 127.0.0.1 for tests and benchmarks.
#   eval "$(bash scripts/postgres.sh start)"   # exports FOREBEAR_TEST_PG_URL and FOREBEAR_TEST_PG_DIR
#   bash scripts/postgres.sh stop "$FOREBEAR_TEST_PG_DIR"
# Needs Debian's postgresql package (installed with apt-get when missing and run as root).
set -euo pipefail

pg_bin() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1
}

case "${1:-}" in
  start)
    if [ -z "$(pg_bin)" ]; then
      if [ "$(id -u)" = 0 ]; then
        apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
      else
        echo "postgres.sh: install PostgreSQL (apt-get install postgresql)" >&2; exit 1
      fi
    fi
    bin=$(pg_bin)
    dir=$(mktemp -d /tmp/forebear-pg.XXXXXX)
    run=()
    if [ "$(id -u)" = 0 ]; then
      chown postgres:postgres "$dir"
      run=(runuser -u postgres --)
    fi
    "${run[@]}" "$bin/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 --no-sync >/dev/null
    # a free port is asked for, released, then bound by the server: another process can
    # take it in between, and the server then fails to start; so try up to three ports
    started=""
    for attempt in 1 2 3; do
      port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
      if "${run[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
        start >/dev/null; then
        started=1
        break
      fi
      echo "postgres.sh: the server did not start on port $port (attempt $attempt)" >&2
    done
    if [ -z "$started" ]; then
      cat "$dir/server.log" >&2
      exit 1
    fi
    echo "export FOREBEAR_TEST_PG_URL=postgresql+psycopg://postgres@127.0.0.1:$port/postgres"
    echo "export FOREBEAR_TEST_PG_DIR=$dir"
    ;;
  stop)
    dir="${2:?usage: postgres.sh stop DIR}"
    bin=$(pg_bin)
    run=()
    [ "$(id -u)" = 0 ] && run=(runuser -u postgres --)
    "${run[@]}" "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
  *)
    echo "usage: postgres.sh start | stop DIR" >&2; exit 2
    ;;
esac
