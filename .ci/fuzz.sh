#!/usr/bin/env bash
# Runs each cargo-fuzz target (fuzz/fuzz_targets/) for the given number of seconds; any crash,
# panic or failed assertion fails the run and leaves the input in fuzz/artifacts/<target>/.
# CI: `.ci/fuzz.sh 30`. The long run: `.ci/fuzz.sh 3600`. Usage: .ci/fuzz.sh [seconds] [target…]
# Installs cargo-fuzz from crates.io when it is missing. The instrumentation flags are unstable
# ones: they are allowed on the machine's one toolchain with RUSTC_BOOTSTRAP=1, so the targets
# build with the same compiler as mypay.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${1:-30}"
shift || true
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(amount api_request)

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "cargo-fuzz is missing; installing it"
  cargo install cargo-fuzz --locked
fi
fuzz() { RUSTC_BOOTSTRAP=1 cargo fuzz "$@"; }

# Safe Rust throughout (SQLite's C is not instrumented either way), so no sanitizer: the
# fuzzer looks for panics, failed assertions and 5xx answers, with debug assertions and
# overflow checks on.
fuzz build --sanitizer none --debug-assertions 2>&1 | tail -n 3
for target in "${targets[@]}"; do
  echo "=== fuzz $target for ${seconds}s ==="
  mkdir -p "corpus/$target"
  fuzz run --sanitizer none --debug-assertions "$target" "corpus/$target" -- \
    -max_total_time="$seconds" -print_final_stats=1 -rss_limit_mb=4096 2>&1 |
    grep -Ev '^#[0-9]+.*(NEW|REDUCE|pulse)' || { echo "fuzz $target failed"; exit 1; }
done
