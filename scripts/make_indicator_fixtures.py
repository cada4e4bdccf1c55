#!/usr/bin/env python3
"""Generate TA-Lib reference fixtures for the `sextant-indicators` crate.

For every (dataset, indicator, parameter set) this script runs the real TA-Lib
(PyPI `ta-lib`, which bundles the C library) over real market data
(`tests/data/GOOG.csv` daily equities, `tests/data/EURUSD.csv` hourly FX) and
over a small deterministic synthetic series of edge cases, and writes one CSV
holding the inputs the indicator needs and TA-Lib's outputs. The Rust
integration test `crates/indicators/tests/talib_fixtures.rs` replays the
inputs through the streaming indicators and compares against those outputs.

File format
-----------
* name: ``{dataset}_{indicator}_{param}[_{param}...].csv`` with dataset one of
  ``goog``, ``eurusd``, ``synth``, e.g.
  ``goog_bbands_20_2.0.csv`` or ``eurusd_macd_12_26_9.csv``;
* first line: header; inputs first (``close``, or ``high,low,close`` for ATR),
  then the outputs (``sma`` / ``ema`` / ``rsi`` / ``atr`` /
  ``upper,middle,lower`` / ``macd,signal,hist``);
* floats are written with ``repr()`` (shortest string that round-trips the
  float64 exactly); TA-Lib's NaN (warm-up rows) is written as an empty field;
* ``\\n`` line endings, no index column, no trailing blank line.

Usage
-----
    .venv-probe/bin/python scripts/make_indicator_fixtures.py          # (re)write
    .venv-probe/bin/python scripts/make_indicator_fixtures.py --check  # verify

``--check`` regenerates into a temporary directory and exits with status 1 if
any committed fixture differs byte-for-byte (or is missing / unexpected),
printing which files.
"""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

import reference_data

import numpy as np
import talib

TALIB_VERSION = f"ta-lib {talib.__version__}, C library {talib.__ta_version__.decode(errors='replace')}"

REPO_ROOT = reference_data.REPO_ROOT
DEFAULT_OUT = REPO_ROOT / "crates" / "indicators" / "tests" / "fixtures"

# Real market data: dataset name -> (CSV path, number of leading rows kept).
# The row caps keep the fixture directory well under 3 MB while still spanning
# several BBANDS variance re-seeds (every 32 * period bars) and long EMA/Wilder
# recursions.
MARKET_DATA: dict[str, tuple[Path, int]] = {
    "goog": (REPO_ROOT / "tests" / "data" / "GOOG.csv", 1500),
    "eurusd": (REPO_ROOT / "tests" / "data" / "EURUSD.csv", 1500),
}

# (indicator, parameters). Defaults first, then extra sets that stress the
# edges (shortest periods, nbdev == 1.0, a wide fast/slow MACD gap, ATR 1).
CASES: list[tuple[str, tuple]] = [
    ("sma", (20,)),
    ("sma", (5,)),
    ("ema", (20,)),
    ("ema", (50,)),
    ("rsi", (14,)),
    ("rsi", (2,)),
    ("rsi", (30,)),
    ("bbands", (20, 2.0)),
    ("bbands", (10, 1.0)),
    ("bbands", (20, 2.5)),
    ("macd", (12, 26, 9)),
    ("macd", (5, 35, 5)),
    ("atr", (14,)),
    ("atr", (1,)),
    ("atr", (7,)),
]

# Extra cases for the synthetic series only (it is short, so these are cheap):
# the shortest periods, where BBANDS' outlier re-seed fires, and MACD with a
# signal period of 1.
SYNTH_EXTRA_CASES: list[tuple[str, tuple]] = [
    ("bbands", (2, 2.0)),
    ("bbands", (3, 1.5)),
    ("rsi", (3,)),
    ("macd", (2, 3, 1)),
    ("atr", (2,)),
]


def load_ohlc(path: Path, max_rows: int) -> dict[str, np.ndarray]:
    """Read `,Open,High,Low,Close,Volume` into float64 arrays (first `max_rows` rows)."""
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        wanted = {name: header.index(name) for name in ("High", "Low", "Close")}
        rows = [row for _, row in zip(range(max_rows), reader)]
    return {name.lower(): np.array([float(r[i]) for r in rows], dtype=np.float64) for name, i in wanted.items()}


def synthetic_ohlc() -> dict[str, np.ndarray]:
    """Deterministic edge-case series that real prices never reach.

    Flat runs (zero variance, RSI 0/0, zero true range), steady one-way runs
    (RSI 0 and 100), a jump to 1e6 with milli-ticks on top and flat runs at
    values that are not exact binary fractions: these drive TA-Lib's BBANDS
    variance re-seed by cancellation and by outlier, and its variance floor,
    which the market data above never trigger.
    """
    close: list[float] = []
    close += [100.0] * 40
    close += [100.0 + 0.5 * i for i in range(30)]
    close += [115.0 - 0.25 * i for i in range(30)]
    close += [1.0e6] * 5
    close += [1.0e6 + 1e-3 * math.sin(i) for i in range(120)]
    for level in (0.1, 1.1, 2.675, 1.0e6 + 0.1, 1.0 / 3.0, 7.77):
        close += [level] * 45
    close += [2.5 + 1e-9 * ((i * 7) % 5) for i in range(60)]
    close += [50.0 + 10.0 * math.sin(i / 3.0) for i in range(90)]
    c = np.array(close, dtype=np.float64)
    spread = np.abs(c) * 0.001 * (np.arange(len(c)) * 5 % 4)
    return {"high": c + spread, "low": c - spread, "close": c}


def datasets() -> dict[str, dict[str, np.ndarray]]:
    """All fixture datasets, in a fixed order."""
    out = {name: load_ohlc(path, max_rows) for name, (path, max_rows) in MARKET_DATA.items()}
    out["synth"] = synthetic_ohlc()
    return out


def fmt(value: float) -> str:
    """Shortest round-trip text for a float64; empty for NaN."""
    value = float(value)
    if math.isnan(value):
        return ""
    return repr(value)


def compute(indicator: str, params: tuple, data: dict[str, np.ndarray]) -> tuple[list[str], list[np.ndarray]]:
    """Return (header, columns) for one fixture: inputs first, then TA-Lib outputs."""
    close = data["close"]
    if indicator == "sma":
        return ["close", "sma"], [close, talib.SMA(close, timeperiod=params[0])]
    if indicator == "ema":
        return ["close", "ema"], [close, talib.EMA(close, timeperiod=params[0])]
    if indicator == "rsi":
        return ["close", "rsi"], [close, talib.RSI(close, timeperiod=params[0])]
    if indicator == "bbands":
        period, nbdev = params
        upper, middle, lower = talib.BBANDS(close, timeperiod=period, nbdevup=nbdev, nbdevdn=nbdev, matype=0)
        return ["close", "upper", "middle", "lower"], [close, upper, middle, lower]
    if indicator == "macd":
        fast, slow, signal = params
        macd, sig, hist = talib.MACD(close, fastperiod=fast, slowperiod=slow, signalperiod=signal)
        return ["close", "macd", "signal", "hist"], [close, macd, sig, hist]
    if indicator == "atr":
        high, low = data["high"], data["low"]
        return ["high", "low", "close", "atr"], [high, low, close, talib.ATR(high, low, close, timeperiod=params[0])]
    raise ValueError(f"unknown indicator {indicator!r}")


def file_name(dataset: str, indicator: str, params: tuple) -> str:
    return "_".join([dataset, indicator, *(repr(p) for p in params)]) + ".csv"


def write_all(out_dir: Path) -> list[str]:
    """Write every fixture into `out_dir`; return the file names written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    names = []
    for dataset, data in datasets().items():
        cases = CASES + SYNTH_EXTRA_CASES if dataset == "synth" else CASES
        for indicator, params in cases:
            header, columns = compute(indicator, params, data)
            lines = [",".join(header)]
            lines.extend(",".join(fmt(col[i]) for col in columns) for i in range(len(columns[0])))
            name = file_name(dataset, indicator, params)
            (out_dir / name).write_text("\n".join(lines) + "\n", encoding="ascii", newline="\n")
            names.append(name)
    return names


def main() -> int:
    return reference_data.main(__doc__, DEFAULT_OUT, write_all, "*.csv", "fixtures", TALIB_VERSION)


if __name__ == "__main__":
    sys.exit(main())
