#!/usr/bin/env bash
# sidecar.sh starts and stops herald-sidecar (and the tweet-stream emulator its relay reads)
# in the background for an instance. usage: sidecar.sh start|stop|restart
#   start returns once /healthcheck answers; stop leaves no process behind.
set -euo pipefail
source "$(dirname "$0")/env.sh"

PIDFILE="$HERALD_INSTANCE_DIR/sidecar.pid"
LOG="$HERALD_INSTANCE_DIR/sidecar.log"
EMU_PIDFILE="$HERALD_INSTANCE_DIR/emulator.pid"
EMU_LOG="$HERALD_INSTANCE_DIR/emulator.log"

stop_pid() {
	local f="$1" pid
	[ -f "$f" ] || return 0
	pid="$(cat "$f")"
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$f"
}

start_emulator() {
	[ "${HERALD_EMULATOR:-1}" = 1 ] && [ -x "$HERALD_EMULATOR_BIN" ] || return 0
	if [ -f "$EMU_PIDFILE" ] && kill -0 "$(cat "$EMU_PIDFILE")" 2>/dev/null; then return 0; fi
	mkdir -p "$HERALD_INSTANCE_DIR"
	PORT="$HERALD_EMULATOR_PORT" nohup "$HERALD_EMULATOR_BIN" >>"$EMU_LOG" 2>&1 &
	echo $! >"$EMU_PIDFILE"
}

start() {
	mkdir -p "$HERALD_INSTANCE_DIR"
	start_emulator
	if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then return 0; fi
	nohup "$HERALD_SIDECAR_BIN" >>"$LOG" 2>&1 &
	echo $! >"$PIDFILE"
	for _ in $(seq 200); do
		if curl -fsS "http://$HOST:$PORT/healthcheck" >/dev/null 2>&1; then return 0; fi
		if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
			echo "sidecar: exited at start; last log lines:" >&2; tail -20 "$LOG" >&2; exit 1
		fi
		sleep 0.05
	done
	echo "sidecar: no answer on http://$HOST:$PORT/healthcheck after 10 s" >&2
	exit 1
}


case "${1:-}" in
	start) start ;;
	stop) stop_pid "$PIDFILE"; stop_pid "$EMU_PIDFILE" ;;
	stop-sidecar) stop_pid "$PIDFILE" ;;
	restart) stop_pid "$PIDFILE"; start ;;
	start-emulator) start_emulator ;;
	*) echo "usage: $0 start|stop|restart|start-emulator" >&2; exit 2 ;;
esac
