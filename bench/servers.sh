# Starting mypay subcommands from a script, sourced by bench/api.sh and .ci/schemathesis.sh.
# The caller sets $mypay (the binary) and $dir (a scratch directory), keeps the array `pids`,
# and calls stop_servers on exit.

# Starts a subcommand in the background, in the calling shell so that stop_servers can stop
# it. Its stdout and stderr go to $log.out and $log.err.
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

# Starts a sandbox bank and a server on $url with admin key $key; sets $bank and $server to
# their base URLs.
start_servers() {
  start "$dir/bank" sandbox-bank --listen 127.0.0.1:0 --data "$dir/bank-data"
  bank=$(ready "sandbox bank listening on " "$dir/bank")
  start "$dir/serve" serve --listen 127.0.0.1:0 --database-url "$url" \
    --bank-url "$bank" --admin-api-key "$key" --account-key-file "$dir/account-keys" \
    --sandbox-psp-data "$dir/psp" --settlement-report-dir "$dir/reports"
  server=$(ready "listening on " "$dir/serve")
}

# Stops what start started and waits for it.
stop_servers() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
