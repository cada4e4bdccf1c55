#!/usr/bin/env bash
# Sweep benchmark: a 10,000-point MA-crossover grid over 100,000 bars, Sextant against vectorbt.
#
# What it does
#   1. builds the release binary (`cargo build --release -p sextant`), unless SEXTANT_BIN names a binary to use;
#   2. writes BARS seeded synthetic 1-minute bars (`sextant data synth --seed SEED --bars BARS --interval 1m`);
#   3. times the whole process `sextant optimize CONFIG --grid "fast=2..101;slow=105..204"` (SMA crossover, costs
#      off, fills at the next open: 100 x 100 = 10,000 points) on all cores;
#   4. times the whole process `python scripts/bench_vectorbt.py BARS.csv` (vectorbt doing the same grid on the
#      same file, 1,000 points per `Portfolio.from_signals` call so it fits in memory);
#   5. compares every point (trades and final equity) and prints a markdown table and the speed ratio against the
#      target (Sextant faster than vectorbt).
#
# vectorbt lives in its own venv, .cache/venv-vbt (created here from scripts/requirements-bench.txt on first use;
# about 900 MB). Points where the two averages are exactly equal at a bar can cross differently: vectorbt's SMA sums
# in another order, so about 2 % of the points differ by a trade; VBT_ARGS="--sma running" makes vectorbt's SMA sum
# as Sextant's does and every point agree (same run time).
#
# Usage
#   scripts/bench_sweep.sh                                         # 100,000 bars, release build, 1 run each
#   RUNS=2 scripts/bench_sweep.sh                                  # as measured in docs/BENCHMARKS.md
#   BARS=5000 FAST=2..11 SLOW=105..114 SEXTANT_BIN=target/debug/sextant scripts/bench_sweep.sh   # smoke run
#
# Environment: BARS (100000), SEED (1), RUNS (1), FAST (2..101), SLOW (105..204), SEXTANT_BIN, BENCH_DIR (default a
# temp dir, removed at exit), TIME_BIN (/usr/bin/time), VBT_PYTHON (default .cache/venv-vbt/bin/python), VBT_ARGS.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

BARS=${BARS:-100000}
SEED=${SEED:-1}
RUNS=${RUNS:-1}
FAST=${FAST:-2..101}
SLOW=${SLOW:-105..204}
time_bin=${TIME_BIN:-/usr/bin/time}

python=${VBT_PYTHON:-$root/.cache/venv-vbt/bin/python}
if [ ! -x "$python" ]; then
    echo "==> vectorbt venv (.cache/venv-vbt)" >&2
    python3 -m venv .cache/venv-vbt
    .cache/venv-vbt/bin/pip install --quiet --disable-pip-version-check -r scripts/requirements-bench.txt
    python=$root/.cache/venv-vbt/bin/python
fi

# shellcheck source=scripts/measure.sh
source "$root/scripts/measure.sh"
pick_sextant
bench_dir sextant-bench-sweep

echo "==> $BARS synthetic 1m bars (seed $SEED) -> $dir/bars.csv" >&2
"$sextant" data synth --seed "$SEED" --bars "$BARS" --interval 1m --out "$dir/bars.csv" >&2

cat >"$dir/ma.toml" <<TOML
# SMA crossover on $BARS synthetic 1-minute bars: the sweep benchmark's config (scripts/bench_sweep.sh).
[strategy]
kind = "ma_cross"
ma = "sma"

[market]
data = "$dir/bars.csv"

[execution]
costs = "none"
fill = "next_open"

[portfolio]
initial_cash = 10000
TOML

points=$(awk -v f="$FAST" -v s="$SLOW" 'BEGIN {
    split(f, a, /\.\./); split(s, b, /\.\./); print (a[2] - a[1] + 1) * (b[2] - b[1] + 1) }')

echo "==> sextant optimize ($build), $points points, $RUNS run(s)" >&2
best_of sextant "$sextant" optimize "$dir/ma.toml" --grid "fast=$FAST;slow=$SLOW" --metric total_return --top 1 \
    --out "$dir/sextant.jsonl" --fresh
sx_wall=$best_wall
sx_rss=$best_rss

echo "==> vectorbt, $points points, $RUNS run(s)" >&2
# shellcheck disable=SC2086
best_of vectorbt "$python" "$root/scripts/bench_vectorbt.py" "$dir/bars.csv" --fast "$FAST" --slow "$SLOW" \
    --out "$dir/vbt.csv" ${VBT_ARGS:-}
vb_wall=$best_wall
vb_rss=$best_rss

agree=$("$python" - "$dir/sextant.jsonl" "$dir/vbt.csv" <<'PY'
import csv, json, sys
sx = {}
with open(sys.argv[1]) as f:
    next(f)
    for line in f:
        p = json.loads(line)
        kv = dict(x.split("=") for x in p["params"].split())
        sx[(int(kv["fast"]), int(kv["slow"]))] = (p["metrics"]["n_trades"], p["metrics"]["final_equity"])
same = 0
with open(sys.argv[2]) as f:
    rows = list(csv.DictReader(f))
for r in rows:
    t, e = sx[(int(r["fast"]), int(r["slow"]))]
    same += int(t == int(r["n_trades"]) and abs(e - float(r["final_equity"])) <= 1e-9 * abs(e))
print(f"{same} of {len(rows)}")
PY
)

echo
echo "SMA crossover grid, $points points (fast $FAST x slow $SLOW), $BARS synthetic 1m bars (seed $SEED), whole process, best of $RUNS"
echo "machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
echo "sextant: $("$sextant" --version) ($build), all cores"
echo "vectorbt: $("$python" -c 'import vectorbt, numba, numpy, pandas; print(f"vectorbt {vectorbt.__version__}, numba {numba.__version__}, numpy {numpy.__version__}, pandas {pandas.__version__}")')"
echo
echo "| engine | wall s | points/s | peak RSS MiB |"
echo "|---|---:|---:|---:|"
awk -v w="$sx_wall" -v r="$sx_rss" -v n="$points" 'BEGIN { printf "| sextant | %.2f | %.0f | %.0f |\n", w, n / w, r / 1024 }'
awk -v w="$vb_wall" -v r="$vb_rss" -v n="$points" 'BEGIN { printf "| vectorbt | %.2f | %.0f | %.0f |\n", w, n / w, r / 1024 }'
echo
ratio=$(awk -v a="$vb_wall" -v b="$sx_wall" 'BEGIN { printf "%.1f", a / b }')
verdict=$(awk -v r="$ratio" 'BEGIN { print (r > 1) ? "met" : "NOT met" }')
echo "speed ratio: sextant is ${ratio}x faster than vectorbt (target: faster; $verdict)"
echo "points with the same trades and final equity in both: $agree"
