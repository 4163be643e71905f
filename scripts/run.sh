#!/usr/bin/env bash
# run.sh: like start.sh, but the sidecar stays in the foreground; Ctrl-C stops everything.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$HERALD_ROOT"
scripts/start.sh
scripts/sidecar.sh stop
cleanup() { trap - INT TERM EXIT; [ -n "${SIDECAR_PID:-}" ] && kill -TERM "$SIDECAR_PID" 2>/dev/null; wait 2>/dev/null || true; scripts/stop.sh; }
trap cleanup INT TERM EXIT
scripts/sidecar.sh start-emulator
echo "Press Ctrl-C to stop."
"$HERALD_SIDECAR_BIN" &
SIDECAR_PID=$!
wait "$SIDECAR_PID" || true
