#!/usr/bin/env bash
# The reference figure for BENCHMARKS.md: how many single-row UPDATEs per second PostgreSQL
# itself commits on this machine, with durable commits, 10,000 rows, at a given concurrency,
# random rows and then one hot row. Usage: bench/pgbench-single-row-update.sh [CLIENTS] [SECONDS]
set -euo pipefail
clients="${1:-32}"
seconds="${2:-10}"
host="${PGHOST:-127.0.0.1}"
db="mypay_pgbench_$$"
psql -h "$host" -U postgres -d postgres -qc "CREATE DATABASE $db"
trap 'psql -h "$host" -U postgres -d postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"' EXIT
psql -h "$host" -U postgres -d "$db" -q <<'SQL'
CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance BIGINT NOT NULL);
INSERT INTO accounts SELECT g, 0 FROM generate_series(1, 10000) g;
SQL
dir="$(mktemp -d)"
printf '\\set id random(1, 10000)\nUPDATE accounts SET balance = balance + 1 WHERE id = :id;\n' > "$dir/random.sql"
printf 'UPDATE accounts SET balance = balance + 1 WHERE id = 1;\n' > "$dir/hot.sql"
for mode in random hot; do
  tps=$(pgbench -h "$host" -U postgres -n -c "$clients" -j 2 -T "$seconds" -f "$dir/$mode.sql" "$db" \
        | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
  echo "pgbench single-row UPDATE $mode: clients=$clients tps=$tps"
done
rm -rf "$dir"
