#!/usr/bin/env bash
# doorbell_latency.sh: send commit → doorbell receipt at a LISTEN client, with the doorbells
# handed to the background worker (herald.doorbell_via_worker = on) and sent by the committing
# transaction itself (off), one writer and eight (issue 3; see doorbell_latency.mjs).
#   scripts/bench/run.sh doorbell_latency      (SENDS to change the count, default 3000)
set -euo pipefail
source "$(dirname "$0")/../env.sh"
cd "$HERALD_ROOT"
make -s -C extension install >/dev/null
scripts/cluster.sh setup >/dev/null
scripts/cluster.sh wait-worker
DATABASE_URL="$DATABASE_URL" node scripts/bench/doorbell_latency.mjs
