#!/bin/sh
# A throwaway PostgreSQL 15 for tests (unit tests call it; tests/system/pgutil.py runs the same
# steps). Everything lives under DIR, which the caller created and removes:
#   pg-test-server.sh start DIR PORT [ADDR]
#                                      first call: initdb, role guard (SCRAM password in
#                                      DIR/passfile, any host), database rampart; then pg_ctl
#                                      start. Prints the conninfo a client uses. ADDR: the
#                                      listen address, 127.0.0.1 by default (a test's veth
#                                      address for clients in network namespaces).
#   pg-test-server.sh stop DIR         fast shutdown (clients are disconnected)
#   pg-test-server.sh destroy DIR      stop if running, remove DIR
# The server listens on ADDR:PORT and on a socket in DIR/run (trust, for the postgres user). initdb refuses root, so as
# root the server runs as the postgres user.
set -eu

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
cmd=${1:?usage: pg-test-server.sh start|stop|destroy DIR [PORT]}
dir=${2:?DIR}

as_pg() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

init() {
	port=$1
	addr=$2
	[ -x "$PGBIN/initdb" ] || { echo "pg-test-server: no $PGBIN/initdb (postgresql-15)" >&2; exit 1; }
	chmod 755 "$dir"
	mkdir -p "$dir/run"
	[ "$(id -u)" = 0 ] && chown postgres: "$dir/run"
	pw=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
	as_pg "$PGBIN/initdb" -D "$dir/run/data" -U postgres --auth-local=trust \
		--auth-host=scram-sha-256 --no-sync -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 ||
		{ cat "$dir/initdb.log" >&2; exit 1; }
	# clients in a test's namespaces come from its own addresses; the password still counts
	printf 'host all all 0.0.0.0/0 scram-sha-256\nhost all all ::/0 scram-sha-256\n' |
		as_pg tee -a "$dir/run/data/pg_hba.conf" >/dev/null
	printf '*:%s:rampart:guard:%s\n' "$port" "$pw" >"$dir/passfile"
	chmod 600 "$dir/passfile"
	echo "$port" >"$dir/port"
	echo "$addr" >"$dir/addr"
	start_server
	as_pg "$PGBIN/psql" -X -q -h "$dir/run" -p "$port" -U postgres -d postgres \
		-v ON_ERROR_STOP=1 -c "CREATE ROLE guard LOGIN PASSWORD '$pw'" \
		-c "CREATE DATABASE rampart OWNER guard" >/dev/null
}

start_server() {
	port=$(cat "$dir/port")
	addr=$(cat "$dir/addr")
	as_pg "$PGBIN/pg_ctl" -D "$dir/run/data" -l "$dir/run/log" -w -t 60 -s \
		-o "-c listen_addresses=$addr -p $port -k $dir/run -c fsync=off" start ||
		{ cat "$dir/run/log" >&2; exit 1; }
}

case $cmd in
start)
	if [ -d "$dir/run/data" ]; then
		start_server
	else
		init "${3:?PORT}" "${4:-127.0.0.1}"
	fi
	echo "host=$(cat "$dir/addr") port=$(cat "$dir/port") dbname=rampart user=guard passfile=$dir/passfile"
	;;
stop)
	as_pg "$PGBIN/pg_ctl" -D "$dir/run/data" -m fast -w -t 60 -s stop
	;;
destroy)
	if [ -f "$dir/run/data/postmaster.pid" ]; then
		as_pg "$PGBIN/pg_ctl" -D "$dir/run/data" -m immediate -w -t 60 -s stop || true
	fi
	rm -rf "$dir"
	;;
*)
	echo "pg-test-server: unknown command $cmd" >&2
	exit 2
	;;
esac
