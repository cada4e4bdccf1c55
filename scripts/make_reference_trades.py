#!/usr/bin/env python3
"""Generate reference SMA-crossover trades with backtesting.py for the Sextant backtester.

For every case below this script runs backtesting.py (``Backtest``, long-only,
no costs, fills at the next bar's open) with the classic ``SmaCross`` strategy
over real market data and writes the closed trades it makes. The Rust test
``crates/backtest/tests/reference_engine.rs`` runs Sextant's ``ma_cross``
strategy with ``costs = "none"`` and ``fill = "next_open"`` over the same data
and requires the very same trades (times and prices).

The committed files were made with backtesting.py 0.6.6, TA-Lib 0.8.2 (PyPI
``ta-lib``; its bundled C library reports 0.8.1), pandas 3.1.1 and numpy 2.4.6
under CPython 3.11 (the pins in ``scripts/requirements.txt``); the versions in
use are printed on every run.

Strategy (backtesting.py)
-------------------------
``sma1 = self.I(talib.SMA, self.data.Close, n1)``, ``sma2 = ... n2`` and, on
every bar, ``if crossover(sma1, sma2) and not self.position: self.buy()`` /
``elif crossover(sma2, sma1) and self.position: self.position.close()``, with
``crossover(a, b) == a[-2] < b[-2] and a[-1] > b[-1]`` (strict on both bars, so
touching or equal averages are no cross). ``Backtest(cash=1_000_000,
commission=0, spread=0, trade_on_close=False, exclusive_orders=False,
hedging=False, finalize_trades=True)``: orders placed on bar t fill at the open
of bar t+1. backtesting.py calls ``next()`` for the first time on bar
``1 + (leading NaNs of the slowest indicator)`` = ``n2``, the first bar whose
previous bar already has both averages, so no cross is read from the NaN
warm-up. The cash is large enough that every buy fills (``buy()`` buys whole
units with 99.99 % of the equity); the script fails if the broker cancels one.

End of data (backtesting.py 0.6.6, ``Backtest.run``)
---------------------------------------------------
After ``next()`` has run on the last bar, ``finalize_trades=True`` calls
``trade.close()`` on every open trade and then re-runs the broker once more
*on the last bar*. Close orders are market orders, and with
``trade_on_close=False`` a market order fills at the current bar's **open**:
a position still open after the last bar is therefore closed at the **last
bar's open**, stamped with the last bar's time (not at its close). The same
happens to a sell signalled on the last bar. A buy signalled on the last bar
opens a trade at the last bar's open in that extra broker pass, but that
trade is never closed and is not in the results, so it is not written here.
Without ``finalize_trades`` the open trade is simply left out (with a warning).

File format
-----------
* name: ``{dataset}_sma_cross_{n1}_{n2}.csv`` with dataset ``goog``
  (``tests/data/GOOG.csv``, daily) or ``eurusd`` (``tests/data/EURUSD.csv``,
  hourly), e.g. ``goog_sma_cross_10_20.csv``;
* header ``entry_time,exit_time,entry_price,exit_price``, one closed trade per
  line in the order backtesting.py reports them;
* times are the data file's own text for that bar (``2004-09-01``,
  ``2017-04-20 17:00:00``); prices are written with ``repr()`` (shortest text
  that round-trips the float64) and are checked to equal the data file's
  open/close of that bar exactly;
* ``\\n`` line endings, no trailing blank line.

Usage
-----
    .venv-probe/bin/python scripts/make_reference_trades.py          # (re)write
    .venv-probe/bin/python scripts/make_reference_trades.py --check  # verify

``--check`` regenerates into a temporary directory and exits with status 1 if
any committed file differs byte-for-byte (or is missing / unexpected),
printing which files and the first differing lines.
"""

from __future__ import annotations

import csv
import sys
import warnings
from pathlib import Path

import reference_data

import backtesting
import numpy as np
import pandas as pd
import talib
from backtesting import Backtest, Strategy
from backtesting.lib import crossover

VERSIONS = (
    f"backtesting.py {backtesting.__version__}, ta-lib {talib.__version__} "
    f"(C library {talib.__ta_version__.decode(errors='replace').split()[0]}), "
    f"pandas {pd.__version__}, numpy {np.__version__}"
)

REPO_ROOT = reference_data.REPO_ROOT
DEFAULT_OUT = REPO_ROOT / "tests" / "reference"

DATASETS: dict[str, Path] = {
    "goog": REPO_ROOT / "tests" / "data" / "GOOG.csv",
    "eurusd": REPO_ROOT / "tests" / "data" / "EURUSD.csv",
}

# (dataset, n1, n2): the default 10/20 on daily equities, a wide 5/30 gap, and hourly FX.
CASES: list[tuple[str, int, int]] = [
    ("goog", 10, 20),
    ("goog", 5, 30),
    ("eurusd", 10, 30),
]

CASH = 1_000_000


class SmaCross(Strategy):
    """Long-only SMA crossover, as in backtesting.py's own tutorial (with TA-Lib's SMA)."""

    n1 = 10
    n2 = 20

    def init(self):
        self.sma1 = self.I(talib.SMA, self.data.Close, self.n1)
        self.sma2 = self.I(talib.SMA, self.data.Close, self.n2)

    def next(self):
        if crossover(self.sma1, self.sma2) and not self.position:
            self.buy()
        elif crossover(self.sma2, self.sma1) and self.position:
            self.position.close()


def load(path: Path) -> tuple[pd.DataFrame, list[list[str]]]:
    """Return (frame for backtesting.py, raw text rows `[time, open, high, low, close, volume]`)."""
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        if header != ["", "Open", "High", "Low", "Close", "Volume"]:
            raise SystemExit(f"{path}: unexpected header {header}")
        rows = list(reader)
    # Prices go through Python's correctly rounded float() (the nearest float64 to the text, as Sextant's parser
    # gives) rather than relying on pandas' fast float parser.
    frame = pd.DataFrame(
        {name: [float(r[i]) for r in rows] for i, name in enumerate(header[1:], start=1)},
        index=pd.DatetimeIndex(pd.to_datetime([r[0] for r in rows])),
    )
    if not frame.index.is_monotonic_increasing or frame.index.has_duplicates:
        raise SystemExit(f"{path}: times are not strictly increasing")
    return frame, rows


def backtest(frame: pd.DataFrame, n1: int, n2: int) -> pd.DataFrame:
    """Run SmaCross(n1, n2) and return backtesting.py's closed trades."""
    bt = Backtest(
        frame,
        SmaCross,
        cash=CASH,
        commission=0.0,
        spread=0.0,
        trade_on_close=False,
        hedging=False,
        exclusive_orders=False,
        finalize_trades=True,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stats = bt.run(n1=n1, n2=n2)
    for w in caught:
        text = str(w.message)
        if "canceled" in text or "remain open" in text:
            raise SystemExit(f"backtesting.py: {text}")
    return stats._trades


def trade_lines(dataset: str, n1: int, n2: int) -> list[str]:
    frame, rows = load(DATASETS[dataset])
    trades = backtest(frame, n1, n2)
    lines = ["entry_time,exit_time,entry_price,exit_price"]
    for t in trades.itertuples():
        if t.Size <= 0:
            raise SystemExit(f"{dataset} {n1}/{n2}: unexpected trade size {t.Size}")
        entry_row, exit_row = rows[t.EntryBar], rows[t.ExitBar]
        entry_price, exit_price = float(t.EntryPrice), float(t.ExitPrice)
        # Every fill is at some bar's open (next-open fills, and the final close on the last bar's open).
        if entry_price != float(entry_row[1]) or exit_price != float(exit_row[1]):
            raise SystemExit(f"{dataset} {n1}/{n2}: trade {t.Index} is not filled at bar opens: {t}")
        lines.append(f"{entry_row[0]},{exit_row[0]},{entry_price!r},{exit_price!r}")
    return lines


def file_name(dataset: str, n1: int, n2: int) -> str:
    return f"{dataset}_sma_cross_{n1}_{n2}.csv"


def write_all(out_dir: Path) -> list[str]:
    """Write every case into `out_dir`; return the file names written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    names = []
    for dataset, n1, n2 in CASES:
        name = file_name(dataset, n1, n2)
        lines = trade_lines(dataset, n1, n2)
        (out_dir / name).write_text("\n".join(lines) + "\n", encoding="ascii", newline="\n")
        names.append(name)
    return names


def main() -> int:
    return reference_data.main(__doc__, DEFAULT_OUT, write_all, "*_sma_cross_*.csv", "reference trade files", VERSIONS)


if __name__ == "__main__":
    sys.exit(main())
