#!/usr/bin/env bash
# The figures of BENCHMARKS.md in one run: `mypay bench ledger` on SQLite and PostgreSQL at
# concurrency 8 and 32, random and hot, each on a fresh database, then the pgbench
# single-row-update reference on the same machine. Usage: bench/ledger-matrix.sh [SECONDS]
# Needs a release build (cargo build --release) and PostgreSQL on 127.0.0.1:5432.
set -euo pipefail
seconds="${1:-10}"
here="$(cd "$(dirname "$0")" && pwd)"
mypay="$here/../target/release/mypay"
host="${PGHOST:-127.0.0.1}"
db="mypay_bench_$$"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"; psql -h "$host" -U postgres -d postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"' EXIT
for backend in sqlite postgres; do
  for clients in 8 32; do
    for mode in random hot; do
      flag=()
      [ "$mode" = hot ] && flag=(--hot)
      if [ "$backend" = sqlite ]; then
        rm -f "$dir"/bench.db*
        url="sqlite://$dir/bench.db"
      else
        psql -h "$host" -U postgres -d postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"
        psql -h "$host" -U postgres -d postgres -qc "CREATE DATABASE $db"
        url="postgres://postgres@$host:5432/$db"
      fi
      "$mypay" bench ledger --database-url "$url" --accounts 10000 --concurrency "$clients" \
        --seconds "$seconds" "${flag[@]}" 2>/dev/null | tail -1
    done
  done
done
for clients in 8 32; do
  "$here/pgbench-single-row-update.sh" "$clients" "$seconds"
done
