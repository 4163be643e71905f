# env.sh is sourced by the other scripts: one place for every default.
# HERALD_INSTANCE selects a private set of data, ports and logs: "run" (make run / start)
# or "test" (make test), so tests never touch a running instance.
HERALD_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HERALD_INSTANCE="${HERALD_INSTANCE:-run}"
HERALD_DATA_DIR="${HERALD_DATA_DIR:-$HERALD_ROOT/.data}"
HERALD_INSTANCE_DIR="$HERALD_DATA_DIR/$HERALD_INSTANCE"
PG_BINDIR="${PG_BINDIR:-/usr/lib/postgresql/15/bin}"

case "$HERALD_INSTANCE" in test*) HERALD_IS_TEST=1 ;; *) HERALD_IS_TEST=0 ;; esac
if [ "$HERALD_IS_TEST" = 1 ]; then
	: "${HERALD_PGPORT:=5434}" "${PORT:=3100}" "${eventListenerPort:=19090}" "${clientListenerPort:=19099}"
	: "${HERALD_RELAY_PORT:=18080}" "${HERALD_EMULATOR_PORT:=14000}"
elif [ "${HERALD_INSTANCE#bench}" != "$HERALD_INSTANCE" ]; then
	: "${HERALD_PGPORT:=5437}" "${PORT:=3200}" "${eventListenerPort:=29090}" "${clientListenerPort:=29099}"
	: "${HERALD_RELAY_PORT:=28080}" "${HERALD_EMULATOR_PORT:=24000}"
else
	: "${HERALD_PGPORT:=5433}" "${PORT:=3000}" "${eventListenerPort:=9090}" "${clientListenerPort:=9099}"
	: "${HERALD_RELAY_PORT:=8080}" "${HERALD_EMULATOR_PORT:=4000}"
fi
: "${HERALD_PGHOST:=127.0.0.1}" "${HERALD_DB:=herald}" "${HOST:=127.0.0.1}"
: "${DATABASE_URL:=postgresql://postgres@$HERALD_PGHOST:$HERALD_PGPORT/$HERALD_DB}"
: "${HERALD_RELAY_UPSTREAMS:=http://127.0.0.1:$HERALD_EMULATOR_PORT/tweets/1,http://localhost:$HERALD_EMULATOR_PORT/tweets/2}"
: "${HERALD_REGRESS_PORT:=5435}"                      # pg_regress; isolation uses the next port
: "${HERALD_SIDECAR_BUILD:=build}"                     # sidecar/<dir> holding the binaries
: "${HERALD_SIDECAR_BIN:=$HERALD_ROOT/sidecar/$HERALD_SIDECAR_BUILD/herald-sidecar}"
: "${HERALD_EMULATOR_BIN:=$HERALD_ROOT/sidecar/$HERALD_SIDECAR_BUILD/herald-tweet-emulator}"
export HERALD_ROOT HERALD_INSTANCE HERALD_DATA_DIR HERALD_INSTANCE_DIR PG_BINDIR HERALD_PGPORT \
	HERALD_PGHOST HERALD_DB HOST PORT DATABASE_URL eventListenerPort clientListenerPort \
	HERALD_RELAY_PORT HERALD_EMULATOR_PORT HERALD_RELAY_UPSTREAMS HERALD_SIDECAR_BIN HERALD_EMULATOR_BIN \
	HERALD_REGRESS_PORT HERALD_SIDECAR_BUILD HERALD_IS_TEST

# as_pg runs a command as the unprivileged "postgres" user when we are root
# (PostgreSQL refuses to run as root), as ourselves otherwise.
as_pg() {
	if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# ensure_pg_can_reach makes the checkout traversable by the postgres user: a fresh clone
# under a private home directory would otherwise hide the data folder from it.
ensure_pg_can_reach() {
	[ "$(id -u)" = 0 ] || return 0
	local d="$1"
	while [ "$d" != / ]; do
		if ! runuser -u postgres -- test -x "$d" 2>/dev/null; then chmod o+x "$d"; fi
		d="$(dirname "$d")"
	done
}

psql_herald() {
	"$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 "$DATABASE_URL" "$@"
}
