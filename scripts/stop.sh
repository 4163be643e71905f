#!/usr/bin/env bash
# stop.sh stops the sidecar, the emulator and the cluster of an instance; no process is left.
set -euo pipefail
source "$(dirname "$0")/env.sh"
"$HERALD_ROOT/scripts/sidecar.sh" stop
"$HERALD_ROOT/scripts/cluster.sh" stop
echo "Herald stopped (instance \"$HERALD_INSTANCE\")."
