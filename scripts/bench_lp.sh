#!/usr/bin/env bash
# LP benchmarks (docs/BENCHMARKS.md):
#   (a) the blue-chip Dynamic LP strategy over one year of minute data (525,600 steps), whole process;
#   (c) one LP position held over 30 days of minutes, by Sextant and by demeter (PyPI zelos-demeter), side by side.
# The minute files are Sextant's synthetic WETH/USDC 0.05 % pool written in demeter's format, so both tools read the
# same bytes. demeter goes into .cache/demeter-venv (Python >= 3.11) on first use.
#
# Usage: scripts/bench_lp.sh [OUT_DIR]   (default: target/bench-lp)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/bench-lp}
mkdir -p "$out"

cargo build --release --locked -p sextant -p sextant-bench --bin sextant --bin lp_vs_demeter
bin=target/release

[ -f "$out/year.minute.csv" ] || "$bin/sextant" data pool-minutes --bars 525600 --out "$out/year.minute.csv"
[ -f "$out/month.minute.csv" ] || "$bin/sextant" data pool-minutes --bars 43200 --out "$out/month.minute.csv"

cat > "$out/blue-chip-year.toml" <<TOML
# The blue-chip profile on minute steps: volatility over 3 days, horizon a week.
[strategy]
kind = "dynamic_lp"
profile = "blue_chip"
vol_window = 4320
horizon_bars = 10080

[market]
symbol = "WETH"
quote = "USDC"

[pool]
data = "year.minute.csv"
fee = 500
tick_spacing = 10

[execution]
gas_price_gwei = 10.0
native_price_usd = 2000.0

[portfolio]
initial_cash = 100000.0
TOML

echo "== (a) blue-chip Dynamic LP, 525,600 minute steps (three runs, whole process)"
for _ in 1 2 3; do
    /usr/bin/time -f "%e s wall, %M KiB peak" "$bin/sextant" backtest "$out/blue-chip-year.toml" >"$out/year.txt"
done
cat "$out/year.txt"

echo "== (c) one position over 30 days of minutes: Sextant and demeter"
venv=.cache/demeter-venv
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check zelos-demeter
fi
"$bin/lp_vs_demeter" "$out/month.minute.csv" --python "$venv/bin/python"
