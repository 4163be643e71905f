#!/usr/bin/env bash
# cluster.sh manages Herald's private PostgreSQL cluster under .data/<instance>/pg.
# usage: cluster.sh start|stop|restart|status|setup|wait-worker
#   setup: start, then create database $HERALD_DB and the extension (recreated when the
#          installed extension script changed; a message says so).
set -euo pipefail
source "$(dirname "$0")/env.sh"

PGDATA="$HERALD_INSTANCE_DIR/pg"
LOG="$HERALD_INSTANCE_DIR/postgresql.log"
SOCKDIR="$HERALD_INSTANCE_DIR/sock"

init_cluster() {
	[ -f "$PGDATA/PG_VERSION" ] && return 0
	mkdir -p "$HERALD_INSTANCE_DIR" "$SOCKDIR"
	ensure_pg_can_reach "$HERALD_ROOT"
	[ "$(id -u)" = 0 ] && chown -R postgres: "$HERALD_INSTANCE_DIR"
	as_pg "$PG_BINDIR/initdb" -D "$PGDATA" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
}

# default_shared_buffers: a quarter of the machine's memory (PostgreSQL's own advice for a
# dedicated server), between 128MB and 1GB. The outbox and the report history are written at
# random index positions (one page per stream or report); with PostgreSQL's 128MB default
# their indexes soon outgrow the buffers and every write also evicts a dirty page.
default_shared_buffers() {
	local kb
	kb="$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo 2>/dev/null || echo 0)"
	awk -v kb="${kb:-0}" 'BEGIN { mb = int(kb / 4 / 1024); if (mb < 128) mb = 128; if (mb > 1024) mb = 1024; print mb "MB" }'
}

# write_config (re)writes herald.conf, Herald's settings, included at the end of
# postgresql.conf; run at every start, so a changed setting reaches an existing cluster.
write_config() {
	grep -qx "include_if_exists = 'herald.conf'" "$PGDATA/postgresql.conf" ||
		echo "include_if_exists = 'herald.conf'" | as_pg tee -a "$PGDATA/postgresql.conf" >/dev/null
	as_pg tee "$PGDATA/herald.conf" >/dev/null <<CONF
# Written by scripts/cluster.sh at every start: edit the environment (scripts/env.sh), not this.
listen_addresses = '$HERALD_PGHOST'
port = $HERALD_PGPORT
unix_socket_directories = '$SOCKDIR'
shared_preload_libraries = 'herald'
herald.database = '$HERALD_DB'
max_connections = 200
shared_buffers = ${HERALD_PG_SHARED_BUFFERS:-$(default_shared_buffers)}
fsync = ${HERALD_PG_FSYNC:-on}
log_line_prefix = '%m [%p] %q%a '
CONF
}

is_running() { as_pg "$PG_BINDIR/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; }

LIBSTAMP="$HERALD_INSTANCE_DIR/herald.so.sha256"
library_sum() { sha256sum "$("$PG_BINDIR/pg_config" --pkglibdir)/herald.so" 2>/dev/null | cut -d' ' -f1; }

start() {
	init_cluster
	if is_running; then
		# The postmaster keeps the herald.so it preloaded: restart when a new one was installed.
		if [ -f "$LIBSTAMP" ] && [ "$(cat "$LIBSTAMP")" = "$(library_sum)" ]; then return 0; fi
		echo "cluster: herald.so changed since the server started; restarting it" >&2
		stop
	fi
	[ "$(id -u)" = 0 ] && chown -R postgres: "$HERALD_INSTANCE_DIR"
	write_config
	library_sum >"$LIBSTAMP"
	as_pg "$PG_BINDIR/pg_ctl" -D "$PGDATA" -l "$LOG" -w -t 60 start >/dev/null
}

stop() {
	[ -f "$PGDATA/PG_VERSION" ] || return 0
	if is_running; then as_pg "$PG_BINDIR/pg_ctl" -D "$PGDATA" -m fast -w -t 60 stop >/dev/null; fi
}

setup() {
	start
	local admin="postgresql://postgres@$HERALD_PGHOST:$HERALD_PGPORT/postgres"
	if [ "$("$PG_BINDIR/psql" -X -tA "$admin" -c "select 1 from pg_database where datname = '$HERALD_DB'")" != 1 ]; then
		"$PG_BINDIR/psql" -X -q "$admin" -c "CREATE DATABASE \"$HERALD_DB\""
	fi
	local script sum stamp="$HERALD_INSTANCE_DIR/extension.sha256"
	script="$("$PG_BINDIR/pg_config" --sharedir)/extension/herald--0.1.0.sql"
	sum="$(sha256sum "$script" | cut -d' ' -f1)"
	if [ -f "$stamp" ] && [ "$(cat "$stamp")" != "$sum" ]; then
		echo "cluster: the extension's install script changed since this database was made; recreating extension herald (its data is dropped)" >&2
		psql_herald -c "DROP EXTENSION IF EXISTS herald CASCADE"
	fi
	psql_herald -c "CREATE EXTENSION IF NOT EXISTS herald"
	echo "$sum" >"$stamp"
}

# wait_worker waits (up to 10 s) until the herald scheduler serves the database: after a
# (re)start it may still be starting, or retrying because the database was just created.
wait_worker() {
	for _ in $(seq 1 100); do
		[ "$("$PG_BINDIR/psql" -X -tA "$DATABASE_URL" -c "select count(*) from pg_stat_activity where backend_type = 'herald scheduler'" 2>/dev/null)" = 1 ] && return 0
		sleep 0.1
	done
	echo "cluster: the herald scheduler is not running in $HERALD_DB" >&2
	return 1
}

case "${1:-}" in
	start) start ;;
	stop) stop ;;
	restart) stop; start ;;
	status) is_running && echo "running ($DATABASE_URL)" || { echo stopped; exit 3; } ;;
	setup) setup ;;
	wait-worker) wait_worker ;;
	*) echo "usage: $0 start|stop|restart|status|setup|wait-worker" >&2; exit 2 ;;
esac
