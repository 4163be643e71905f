#!/usr/bin/env bash
# bootstrap.sh installs the Debian packages Herald needs, only those missing.
# Idempotent: a second run with everything present takes well under 2 s.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
	build-essential pkg-config
	postgresql-15 postgresql-server-dev-15 postgresql-contrib libpq-dev
	libh2o-evloop-dev libwslay-dev libsodium-dev libssl-dev zlib1g-dev libjansson-dev
	nodejs npm curl netcat-openbsd procps
	chromium
)
[ "${HERALD_BENCH_DEPS:-0}" = 1 ] && PACKAGES+=(nginx libnginx-mod-nchan)

missing=()
for p in "${PACKAGES[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[ "$status" = "install ok installed" ] || missing+=("$p")
done
# node and npm may come from outside Debian (a preinstalled toolchain): accept them.
if command -v node >/dev/null && command -v npm >/dev/null; then
	filtered=()
	for p in "${missing[@]}"; do
		case "$p" in nodejs|npm) ;; *) filtered+=("$p");; esac
	done
	missing=("${filtered[@]+"${filtered[@]}"}")
fi

if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "bootstrap: missing packages: ${missing[*]} (run as root to install)" >&2
		exit 1
	fi
	echo "bootstrap: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	apt-get install -y -q --no-install-recommends "${missing[@]}"
	# Debian creates and may start a default cluster on 5432; Herald uses its own.
fi

# Node packages for the tests (playwright-core, ws, eventsource, pg), from package-lock.
if [ -f regress/package-lock.json ] && { [ ! -f regress/node_modules/.package-lock.json ] || \
   [ regress/package-lock.json -nt regress/node_modules/.package-lock.json ]; }; then
	(cd regress && npm ci --no-audit --no-fund --loglevel=error)
fi
