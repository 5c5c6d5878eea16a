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
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
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

# Starts a subcommand in the background, in this shell so that cleanup can stop it.
start() {
  local log="$1"
  shift
  RUST_LOG="${MYPAY_BENCH_RUST_LOG:-warn}" "$mypay" "$@" >"$log.out" 2>"$log.err" &
  pids+=("$!")
}

# Waits for a started subcommand's ready line and prints what follows its prefix.
ready() {
  local prefix="$1" log="$2"
  for _ in $(seq 1 600); do
    if grep -q "^$prefix" "$log.out" 2>/dev/null; then
      grep "^$prefix" "$log.out" | head -1 | sed "s|^$prefix||"
      return
    fi
    sleep 0.1
  done
  echo "$log did not start:" >&2
  cat "$log.err" >&2
  exit 1
}

start "$dir/bank" sandbox-bank --listen 127.0.0.1:0 --data "$dir/bank-data"
bank=$(ready "sandbox bank listening on " "$dir/bank")
start "$dir/serve" serve --listen 127.0.0.1:0 --database-url "$url" \
  --bank-url "$bank" --admin-api-key "$key" --account-key-file "$dir/account-keys" \
  --sandbox-psp-data "$dir/psp" --settlement-report-dir "$dir/reports"
server=$(ready "listening on " "$dir/serve")
echo "backend $backend: server $server, sandbox bank $bank" >&2
MYPAY_ADMIN_API_KEY="$key" "$mypay" bench api --url "$server" --bank-url "$bank" "$@"
