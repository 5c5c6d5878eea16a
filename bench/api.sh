#!/usr/bin/env bash
# `mypay bench api` against a real `mypay serve` and `mypay sandbox-bank`, each its own process,
# on a fresh database of the given backend. Usage:
#   bench/api.sh sqlite|postgres [bench api flags, e.g. --rates 1000,2000,4000 --seconds 10]
# Uses target/release/mypay (cargo build --release -p mypay), or $MYPAY_BIN. PostgreSQL is
# expected on 127.0.0.1:5432 (trust auth); the script creates and drops a database of its own.
set -euo pipefail
keep="${MYPAY_BENCH_KEEP_LOGS:-}"
backend="${1:?usage: bench/api.sh sqlite|postgres [bench api flags]}"
shift
here="$(cd "$(dirname "$0")" && pwd)"
mypay="${MYPAY_BIN:-$here/../target/release/mypay}"
host="${PGHOST:-127.0.0.1}"
dir="$(mktemp -d)"
db="mypay_bench_api_$$"
key="mpk_bench_api_admin_key_$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
pids=()
# shellcheck source=bench/servers.sh
. "$here/servers.sh"
cleanup() {
  stop_servers
  if [ -n "$keep" ]; then cp "$dir"/*.err "$keep"/ 2>/dev/null || true; fi
  rm -rf "$dir"
  if [ "$backend" = postgres ]; then
    psql -h "$host" -U postgres -d postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
  fi
}
trap cleanup EXIT
case "$backend" in
  sqlite) url="sqlite://$dir/mypay.db" ;;
  postgres)
    psql -h "$host" -U postgres -d postgres -qc "CREATE DATABASE $db"
    url="postgres://postgres@$host:5432/$db" ;;
  *) echo "backend must be sqlite or postgres" >&2; exit 64 ;;
esac

start_servers
echo "backend $backend: server $server, sandbox bank $bank" >&2
MYPAY_ADMIN_API_KEY="$key" "$mypay" bench api --url "$server" --bank-url "$bank" "$@"
