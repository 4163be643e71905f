#!/usr/bin/env bash
# run.sh: like start.sh, but the sidecar stays in the foreground; Ctrl-C stops everything.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$HERALD_ROOT"
scripts/start.sh
scripts/sidecar.sh stop
cleanup() { trap - INT TERM EXIT; [ -z "${SIDECAR_PID:-}" ] || kill -TERM "$SIDECAR_PID" 2>/dev/null || true; wait 2>/dev/null || true; scripts/stop.sh; exit 0; }
trap cleanup INT TERM EXIT
scripts/sidecar.sh start-emulator
echo "Press Ctrl-C to stop."
"$HERALD_SIDECAR_BIN" &
SIDECAR_PID=$!
# so that `make stop` from another terminal stops this sidecar too (it stops the pidfile's)
echo "$SIDECAR_PID" >"$HERALD_INSTANCE_DIR/sidecar.pid"
wait "$SIDECAR_PID" || true
