#!/usr/bin/env bash
# relay.sh: throughput of the tweet relay (issue 10, seed 003). The emulator serves two
# streams of BENCH_RELAY_EVENTS events each at BENCH_RELAY_RATE events/s per stream, with
# panics mixed in (BENCH_RELAY_PANIC_RATIO); prints the time for one telnet client to get
# every non-panic tweet through the worker processes, against reading the same two streams
# straight from the emulator as the baseline.
#   scripts/bench/run.sh relay
set -euo pipefail
source "$(dirname "$0")/../env.sh"
cd "$HERALD_ROOT"
make -s -C sidecar B="$HERALD_SIDECAR_BUILD" >/dev/null
scripts/cluster.sh setup >/dev/null
scripts/sidecar.sh restart >/dev/null
node scripts/bench/relay.mjs
