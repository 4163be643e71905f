#!/usr/bin/env bash
# bench/run.sh runs every benchmark (scripts/bench/*.sh, in name order), or those named:
#   make bench                   all of them
#   scripts/bench/run.sh fanout  only bench/fanout.sh
# Benchmarks print ratios against a baseline measured in the same invocation.
set -uo pipefail
cd "$(dirname "$0")"
export HERALD_INSTANCE="${HERALD_INSTANCE:-bench}"
rc=0
names=("$@")
[ ${#names[@]} -gt 0 ] || names=($(ls *.sh | grep -v '^run\.sh$' | sed 's/\.sh$//'))
for n in "${names[@]}"; do
	echo "=== bench: $n"
	bash "./$n.sh" || { echo "bench $n failed"; rc=1; }
done
exit $rc
