#!/usr/bin/env bash
# lateness.sh: how late the background worker publishes scheduled events (issue 4).
# 10 000 events spread over 3 s and 10 000 due at one instant; prints p50/p99/max lateness
# (published_at - publish_at, and as delivered to a LISTEN client) and the publish rate,
# against the outbox's own send rate as a baseline. Targets: spread p99 < 5 ms; the
# simultaneous ones all published within 500 ms.
#   scripts/bench/run.sh lateness      (BENCH_EVENTS, BENCH_SPREAD_MS to change the load)
set -euo pipefail
source "$(dirname "$0")/../env.sh"
cd "$HERALD_ROOT"
make -s -C extension install >/dev/null
scripts/cluster.sh setup >/dev/null
scripts/cluster.sh wait-worker
node scripts/bench/lateness.mjs
