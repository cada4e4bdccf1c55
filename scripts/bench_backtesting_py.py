#!/usr/bin/env python3
"""Run the RSI benchmark strategy with backtesting.py: the Python side of scripts/bench.sh.

Loads an OHLCV CSV as ``sextant data synth`` writes it (header
``timestamp,open,high,low,close,volume``, RFC 3339 times) with pandas, renames
the columns to backtesting.py's ``Open/High/Low/Close/Volume`` on a
``DatetimeIndex`` and runs the same rules as Sextant's ``rsi`` strategy with
``costs = "none"`` and ``fill = "next_open"``:

* ``rsi = self.I(talib.RSI, self.data.Close, 14)`` (TA-Lib's RSI);
* buy when flat and ``rsi[-1] < 30``, close the position when holding and
  ``rsi[-1] > 70``; orders fill at the next bar's open (``trade_on_close=False``);
* no commission or spread, cash large enough that every buy fills,
  ``finalize_trades=True`` so a position still open at the end is closed (by
  backtesting.py 0.6.6 at the last bar's *open*; Sextant closes at the last
  close; the trade count is the same either way).

Nothing is plotted: ``Backtest.plot()`` is never called, so no HTML file is
written and no browser is opened.

Prints one JSON line on stdout::

    {"engine": "backtesting.py", "bars": ..., "trades": ..., "seconds": ...,
     "import_seconds": ..., "load_seconds": ..., "run_seconds": ...,
     "versions": {...}}

``seconds`` is the wall time from the start of this script (before pandas,
numpy, TA-Lib and backtesting.py are imported) to the end of the backtest;
interpreter start-up is not in it (scripts/bench.sh times the whole process
from outside). ``trades`` counts backtesting.py's closed trades, including the
one closed by ``finalize_trades``.

Usage
-----
    .venv-probe/bin/python scripts/bench_backtesting_py.py BARS.csv [--cash 1e12]
"""

import time

T0 = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402

import backtesting  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import talib  # noqa: E402
from backtesting import Backtest, Strategy  # noqa: E402

T_IMPORTED = time.perf_counter()

PERIOD = 14
OVERSOLD = 30.0
OVERBOUGHT = 70.0


class RsiReversion(Strategy):
    """Sextant's `rsi` strategy: long when RSI(14) < 30, flat again when RSI(14) > 70."""

    def init(self):
        self.rsi = self.I(talib.RSI, self.data.Close, PERIOD)

    def next(self):
        if not self.position:
            if self.rsi[-1] < OVERSOLD:
                self.buy()
        elif self.rsi[-1] > OVERBOUGHT:
            self.position.close()


def load(path: str) -> pd.DataFrame:
    frame = pd.read_csv(path)
    expected = ["timestamp", "open", "high", "low", "close", "volume"]
    if list(frame.columns) != expected:
        raise SystemExit(f"{path}: expected header {','.join(expected)}, got {','.join(frame.columns)}")
    frame.index = pd.DatetimeIndex(pd.to_datetime(frame.pop("timestamp"), utc=True))
    return frame.rename(columns=str.capitalize)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("csv", help="OHLCV CSV (timestamp,open,high,low,close,volume)")
    parser.add_argument(
        "--cash",
        type=float,
        default=1e12,
        help="starting cash; large so that every buy fills whatever the price path (default: 1e12)",
    )
    args = parser.parse_args()

    frame = load(args.csv)
    t_loaded = time.perf_counter()

    bt = Backtest(
        frame,
        RsiReversion,
        cash=args.cash,
        commission=0.0,
        spread=0.0,
        trade_on_close=False,
        hedging=False,
        exclusive_orders=False,
        finalize_trades=True,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stats = bt.run()
    t_done = time.perf_counter()
    for w in caught:
        if "canceled" in str(w.message):
            print(f"warning: backtesting.py: {w.message}", file=sys.stderr)

    print(
        json.dumps(
            {
                "engine": "backtesting.py",
                "bars": len(frame),
                "trades": int(stats["# Trades"]),
                "seconds": round(t_done - T0, 3),
                "import_seconds": round(T_IMPORTED - T0, 3),
                "load_seconds": round(t_loaded - T_IMPORTED, 3),
                "run_seconds": round(t_done - t_loaded, 3),
                "versions": {
                    "python": sys.version.split()[0],
                    "backtesting": backtesting.__version__,
                    "talib": talib.__version__,
                    "pandas": pd.__version__,
                    "numpy": np.__version__,
                },
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
