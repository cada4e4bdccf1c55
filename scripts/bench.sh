#!/usr/bin/env bash
# Speed benchmark: Sextant against backtesting.py on the same RSI backtest.
#
# What it does
#   1. builds the release binary (`cargo build --release -p sextant`), unless SEXTANT_BIN names a binary to use;
#   2. writes BARS seeded synthetic 1-minute bars: `sextant data synth --seed 1 --bars BARS --interval 1m`
#      (not timed);
#   3. writes an RSI(14) config (buy below 30, sell above 70, `costs = "none"`, `fill = "next_open"`) that trades
#      that file, and times the whole process `sextant backtest CONFIG`: start-up, CSV parsing, backtest, report;
#   4. times the whole process `python scripts/bench_backtesting_py.py BARS.csv`: interpreter start-up, imports,
#      pandas CSV parsing and backtesting.py running the same rules (TA-Lib RSI, fills at the next open);
#   5. prints a markdown table (engine, wall s, bars/s, peak RSS MiB, trades), the speed ratio against the
#      target (Sextant at least 50x faster), and warns if the two engines made a different number of trades.
#
# Wall time is measured around each process with `date +%s%N`; peak memory is the maximum resident set size
# reported by GNU `/usr/bin/time -v` (or, where that is not installed, by getrusage(RUSAGE_CHILDREN) in a small
# Python wrapper). Each engine runs RUNS times (the fastest wall time is reported, so a busy moment on a shared
# machine does not count against either engine); the bars file is in the page cache for both.
#
# Usage
#   scripts/bench.sh                                   # 1,000,000 bars, release build
#   BARS=20000 SEXTANT_BIN=target/debug/sextant scripts/bench.sh   # quick smoke run
#
# Environment
#   BARS         number of 1-minute bars (default 1000000)
#   SEED         synthetic market seed (default 1)
#   RUNS         runs per engine; the table shows the fastest wall time and the largest peak RSS (default 3)
#   SEXTANT_BIN  sextant binary to run; when set, nothing is built (default: build and use target/release/sextant)
#   PYTHON       python with backtesting.py and TA-Lib (default: .venv-probe/bin/python, else .cache/venv/bin/python
#                as scripts/test installs it from scripts/requirements.txt)
#   BENCH_DIR    where to write the bars, config and logs (default: a temp dir, removed at exit)
#   TIME_BIN     GNU time (default /usr/bin/time); if it is not executable, the Python getrusage wrapper is used
#
# Run it on an otherwise idle machine: the numbers are only as good as the quiet around them.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

BARS=${BARS:-1000000}
SEED=${SEED:-1}
RUNS=${RUNS:-3}
TARGET_RATIO=50
time_bin=${TIME_BIN:-/usr/bin/time}

if [ -n "${PYTHON:-}" ]; then
    python=$PYTHON
elif [ -x .venv-probe/bin/python ]; then
    python=$root/.venv-probe/bin/python
elif [ -x .cache/venv/bin/python ]; then
    python=$root/.cache/venv/bin/python
else
    echo "bench.sh: no python with backtesting.py found; set PYTHON or run scripts/test once" >&2
    exit 1
fi
"$python" -c 'import backtesting, talib, pandas' || {
    echo "bench.sh: $python cannot import backtesting, talib and pandas (pip install -r scripts/requirements.txt)" >&2
    exit 1
}

# shellcheck source=scripts/measure.sh
source "$root/scripts/measure.sh"
pick_sextant
bench_dir sextant-bench

echo "==> $BARS synthetic 1m bars (seed $SEED) -> $dir/bars.csv" >&2
"$sextant" data synth --seed "$SEED" --bars "$BARS" --interval 1m --out "$dir/bars.csv" >&2

cat >"$dir/rsi.toml" <<EOF
# RSI mean reversion on $BARS synthetic 1-minute bars: the benchmark config written by scripts/bench.sh.
[strategy]
kind = "rsi"
period = 14
oversold = 30
overbought = 70

[market]
data = "$dir/bars.csv"

[risk]
position_size = 1.0

[execution]
costs = "none"
fill = "next_open"

[portfolio]
initial_cash = 1000000
EOF

echo "==> sextant backtest ($build), $RUNS run(s)" >&2
best_of sextant "$sextant" backtest "$dir/rsi.toml"
sx_wall=$best_wall
sx_rss=$best_rss
sx_bars=$(sed -n 's/^ *\([0-9][0-9]*\) bars, \([0-9][0-9]*\) trades.*/\1/p' "$dir/sextant.out" | head -n 1)
sx_trades=$(sed -n 's/^ *\([0-9][0-9]*\) bars, \([0-9][0-9]*\) trades.*/\2/p' "$dir/sextant.out" | head -n 1)
if [ -z "$sx_trades" ]; then
    sx_trades=$(awk '$1 == "n_trades" { print $2 }' "$dir/sextant.out")
fi

echo "==> backtesting.py, $RUNS run(s)" >&2
best_of python "$python" "$root/scripts/bench_backtesting_py.py" "$dir/bars.csv"
py_wall=$best_wall
py_rss=$best_rss
py_json=$(tail -n 1 "$dir/python.out")
py_field() { "$python" -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$py_json" "$1"; }
py_bars=$(py_field bars)
py_trades=$(py_field trades)
py_inner=$(py_field seconds)

row() { # engine wall_s rss_kib trades
    awk -v e="$1" -v w="$2" -v r="$3" -v t="$4" -v n="$BARS" \
        'BEGIN { printf "| %s | %.3f | %.0f | %.1f | %s |\n", e, w, n / w, r / 1024, t }'
}

echo
echo "RSI(14) 30/70 backtest, $BARS synthetic 1m bars (seed $SEED), whole process incl. CSV parsing, best of $RUNS"
echo "machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
echo "sextant: $("$sextant" --version) ($build: $sextant)"
echo "python:  $(py_field versions | tr -d "{}'")"
echo
echo "| engine | wall s | bars/s | peak RSS MiB | trades |"
echo "|---|---:|---:|---:|---:|"
row "sextant" "$sx_wall" "$sx_rss" "$sx_trades"
row "backtesting.py" "$py_wall" "$py_rss" "$py_trades"
echo
ratio=$(awk -v a="$py_wall" -v b="$sx_wall" 'BEGIN { printf "%.1f", a / b }')
verdict=$(awk -v r="$ratio" -v t="$TARGET_RATIO" 'BEGIN { print (r >= t) ? "met" : "NOT met" }')
echo "speed ratio: sextant is ${ratio}x faster than backtesting.py (target ${TARGET_RATIO}x: $verdict)"
echo "(backtesting.py's own timer in its last run, from its first import to the end of the backtest: ${py_inner} s)"
if [ "$BARS" != 1000000 ] || [ "$build" != release ]; then
    echo "note: the target is defined for 1,000,000 bars and the release build; this run is $BARS bars, $build binary"
fi

status_ok=1
if [ "$sx_bars" != "$BARS" ] || [ "$py_bars" != "$BARS" ]; then
    echo "WARNING: bar counts differ: asked $BARS, sextant read ${sx_bars:-?}, backtesting.py read $py_bars" >&2
    status_ok=0
fi
if [ "$sx_trades" != "$py_trades" ]; then
    echo "WARNING: trade counts differ: sextant $sx_trades, backtesting.py $py_trades (same rules expected)" >&2
    status_ok=0
fi
if [ "$status_ok" = 1 ]; then
    echo "check: both engines read $BARS bars and made $sx_trades trades"
fi
