#!/usr/bin/env bash
# start.sh: dependencies, build, cluster, sidecar — in the background. Returns once both answer.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$HERALD_ROOT"
scripts/bootstrap.sh
make -s build install >/dev/null
scripts/cluster.sh setup
scripts/sidecar.sh start
cat <<MSG
Herald is up (instance "$HERALD_INSTANCE"):
  PostgreSQL   $DATABASE_URL
  Web page     http://$HOST:$PORT/
  Health       http://$HOST:$PORT/healthcheck     Metrics http://$HOST:$PORT/metrics
  SSE          http://$HOST:$PORT/v1/sse?username=demo   /v2/sse /v3/sse /v4/sse /events /database_events
  WebSocket    ws://$HOST:$PORT/ws?sessionId=<uuid>
  Follower maze  events tcp://$HOST:$eventListenerPort   clients tcp://$HOST:$clientListenerPort
  Tweet relay  telnet $HOST $HERALD_RELAY_PORT  (type: twitter)   emulator http://$HOST:$HERALD_EMULATOR_PORT/tweets/1
  Logs         $HERALD_INSTANCE_DIR/{postgresql,sidecar,emulator}.log
MSG
