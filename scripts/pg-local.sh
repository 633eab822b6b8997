#!/usr/bin/env bash
# A private PostgreSQL cluster on loopback for tests, the torture script and benches:
#   bash scripts/pg-local.sh start|stop|restart|status|url
# It lives in $AUTOPRUNE_PG_DIR (default /tmp/autoprune-pg-$PORT), listens on 127.0.0.1 only, on
# $AUTOPRUNE_PG_PORT (default 54329), and trusts local connections (user `postgres`, no password):
# a throw-away test server, never a production set-up. PostgreSQL refuses to run as root, so as
# root the server runs as the `postgres` user that Debian's package creates.
# Needs Debian's `postgresql` package (scripts/setup.sh installs it).
set -euo pipefail

PORT="${AUTOPRUNE_PG_PORT:-54329}"
DIR="${AUTOPRUNE_PG_DIR:-/tmp/autoprune-pg-$PORT}"

bindir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  command -v pg_config >/dev/null && { pg_config --bindir; return 0; }
  echo "pg-local: no PostgreSQL server binaries found; run: apt-get install -y postgresql" >&2
  return 1
}

BIN="$(bindir)"

# Run a server binary as the cluster's owner.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

init() {
  [ -f "$DIR/PG_VERSION" ] && return 0
  mkdir -p "$DIR"
  [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$DIR"
  chmod 700 "$DIR"
  as_owner "$BIN/initdb" -D "$DIR" -U postgres --auth=trust -E UTF8 --locale=C >"$DIR.initdb.log" 2>&1 \
    || { cat "$DIR.initdb.log" >&2; exit 1; }
  # 32 workers + drivers + tests, each with a small pool.
  as_owner sh -c "cat >> '$DIR/postgresql.conf'" <<EOF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$DIR'
max_connections = 300
shared_buffers = 64MB
EOF
}

running() {
  as_owner "$BIN/pg_ctl" -D "$DIR" status >/dev/null 2>&1
}

start() {
  init
  running && return 0
  as_owner "$BIN/pg_ctl" -D "$DIR" -l "$DIR/server.log" -w -t 60 start >/dev/null \
    || { tail -20 "$DIR/server.log" >&2; exit 1; }
}

stop() {
  [ -f "$DIR/PG_VERSION" ] || return 0
  running || return 0
  as_owner "$BIN/pg_ctl" -D "$DIR" -m fast -w -t 60 stop >/dev/null
}

case "${1:-}" in
  start) start; echo "postgres://postgres@127.0.0.1:$PORT/postgres" ;;
  stop) stop ;;
  restart) stop; start ;;
  status) running && echo "running on 127.0.0.1:$PORT ($DIR)" || { echo "not running ($DIR)"; exit 3; } ;;
  url) echo "postgres://postgres@127.0.0.1:$PORT/postgres" ;;
  destroy) stop; rm -rf "$DIR" "$DIR.initdb.log" ;;
  *) echo "usage: $0 start|stop|restart|status|url|destroy" >&2; exit 2 ;;
esac
