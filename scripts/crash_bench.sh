#!/usr/bin/env bash
# The long crash-safety run: kills `sextant run` N times (default 100) at random moments and at exact points of
# the send path, restarting it each time, and checks after every trial that no intent was executed twice, none was
# lost, and the journal matches the chain's nonces and balances. CI runs the same test with 20 trials.
#   scripts/crash_bench.sh [TRIALS] [SEED]
set -euo pipefail
cd "$(dirname "$0")/.."
trials="${1:-100}"
[ -d node_modules/@foundry-rs ] || npm ci --no-audit --no-fund --loglevel=error
start=$(date +%s)
SEXTANT_CRASH_TRIALS="$trials" ${2:+SEXTANT_CRASH_SEED="$2"} \
    cargo test --locked -p sextant --test live_faults killed_at_any_moment -- --nocapture 2>&1 |
    grep -E '^(crash trials|trial [0-9]+:|test |thread )' | tee /tmp/sextant-crash-bench.log | tail -n 5
echo "trials: $trials, crash points: $(grep -cE 'after_sign|after_broadcast|after_receipt' /tmp/sextant-crash-bench.log), kill -9: $(grep -c ': kill:' /tmp/sextant-crash-bench.log), seconds: $(( $(date +%s) - start ))"
