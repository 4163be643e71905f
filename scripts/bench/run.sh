#!/usr/bin/env bash
# bench/run.sh runs every benchmark (scripts/bench/*.sh, in name order), or those named:
#   make bench                   all of them
#   scripts/bench/run.sh fanout  only bench/fanout.sh
# Benchmarks print ratios against a baseline measured in the same invocation.
set -uo pipefail
cd "$(dirname "$0")"
export HERALD_INSTANCE="${HERALD_INSTANCE:-bench}"
# The benchmarks' own dependencies (nginx + nchan for the fan-out comparison), then a build.
HERALD_BENCH_DEPS=1 ../bootstrap.sh || exit 1
make -s -C ../.. build install >/dev/null || { echo "bench: build failed" >&2; exit 1; }
rc=0
names=("$@")
[ ${#names[@]} -gt 0 ] || names=($(ls *.sh | grep -v -e '^run\.sh$' -e '_lib\.sh$' | sed 's/\.sh$//'))
for n in "${names[@]}"; do
	echo "=== bench: $n"
	bash "./$n.sh" || { echo "bench $n failed"; rc=1; }
done
exit $rc
