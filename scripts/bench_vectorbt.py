#!/usr/bin/env python3
"""Run an SMA-crossover parameter grid with vectorbt: the Python side of the grid benchmark.

The benchmark: a 10,000-point ``ma_cross`` grid (fast x slow SMA windows) over
100,000 synthetic 1-minute bars, Sextant (``sextant optimize``) side by side
with vectorbt (PyPI ``vectorbt``) doing the same grid on the same CSV, each
timed as a whole process.

Input is an OHLCV CSV as ``sextant data synth`` writes it (header
``timestamp,open,high,low,close,volume``, RFC 3339 times), e.g.::

    sextant data synth --seed 1 --bars 100000 --interval 1m --out bars.csv

Rules (the same as Sextant's ``ma_cross`` with ``ma = "sma"``, ``costs = "none"``,
``fill = "next_open"``, default ``[risk]``, ``initial_cash = 10000``)
------------------------------------------------------------------------------
* SMAs of the close: ``vbt.MA.run(close, window=[...])`` once for all fast
  windows and once for all slow windows (each window computed once, not once
  per grid point). A w-bar SMA first exists at bar w-1 (0-based).
* Cross at bar t (decided on t's close): BUY when ``fast[t] > slow[t]`` and
  ``fast[t-1] < slow[t-1]``; SELL when ``fast[t] < slow[t]`` and
  ``fast[t-1] > slow[t-1]``. Both comparisons are strict, so a bar where the two
  averages are exactly equal is neither below nor above (below -> equal -> above
  is *not* a cross), and both averages must exist at t-1: the first possible
  signal is at bar ``slow`` (0-based). This is Sextant's rule
  (crates/strategies/src/indicator.rs), written with numpy on the vbt MA output.
  vectorbt's own ``ma_crossed_above`` is not used: it counts below -> equal ->
  above as a cross and also re-fires on above -> equal -> above, which Sextant
  does not (see ``--cross vbt`` to use it anyway).
* Long only, one position at a time: a buy while holding and a sell while flat
  are ignored (``direction="longonly"``, ``accumulate=False``).
* Fill at the NEXT bar's open: the signal arrays are shifted one bar later and
  ``price=open``; a signal on the last bar never fills (Sextant drops it as
  expired).
* Size: all cash (``size=np.inf``), fractional units, no fees, no slippage,
  ``init_cash=10000``. With costs off Sextant's ``position_size = 1.0`` buy is
  "spend all the cash" (qty = cash / open, cash -> 0) and the sell returns
  qty * open.
* End of data: vectorbt marks a still-open position at the last close; Sextant
  closes it at the last close (a forced close-out trade). Final equity is the
  same; ``n_trades`` counts vectorbt's closed + open trades, which equals
  Sextant's ``n_trades`` (closed round trips including the close-out).

Grid
----
Default ``--fast 2..101 --slow 105..204``: 100 x 100 = 10,000 points, every
point with fast < slow (Sextant refuses fast >= slow). Ranges are inclusive
``lo..hi[:step]`` or comma lists, as in ``sextant optimize --grid``; the
equivalent Sextant run is::

    sextant optimize CONFIG --grid "fast=2..101;slow=105..204" --json out.json

Memory
------
The whole grid at once would hold several (100,000 x 10,000) arrays: 8 GB per
float64 array (close broadcast, and vectorbt's per-column outputs), 1 GB per
bool signal array. So the grid is run in column chunks of whole fast-window
rows (``--chunk`` points, default 1,000 = 10 fast windows x 100 slow windows),
one ``Portfolio.from_signals`` per chunk; that is how a vectorbt user fits such
a grid in RAM. Per chunk of 1,000 columns x 100,000 bars the bool signals
are 0.1 GB each, but vectorbt broadcasts close (and the price) to the full
chunk shape, wraps them in DataFrames (pandas 3 copies them) and builds a
filled-close copy for ``final_value``: measured peak RSS of the whole
10,000 x 100,000 run is ~6.2 GiB with ``--chunk 1000``.

Timing notes: ``simulate_from_signals_nb`` is JIT-compiled in every new
process (it takes functions as arguments, so numba's on-disk cache does not
apply): the first ``from_signals`` call carries ~15-20 s of compilation,
which is part of the whole-process time. vectorbt runs on one core here (the
numba simulation is single-threaded); the optional ``vectorbt[rust]`` engine
(package ``vectorbt-rust``) is not installed or used.

Output
------
A CSV (``--out``, default stdout) with one row per point:
``fast,slow,n_trades,final_equity,total_return``. Timings of each section
(imports, CSV read, SMAs, signals, portfolio simulation, metrics, output) and
the peak RSS (getrusage) go to stderr, plus one JSON summary line on stderr.

Usage
-----
    .cache/venv-vbt/bin/python scripts/bench_vectorbt.py bars.csv --out vbt.csv
    .cache/venv-vbt/bin/python scripts/bench_vectorbt.py bars.csv --fast 2,10,50 --slow 105,150,204
    /usr/bin/time -v .cache/venv-vbt/bin/python scripts/bench_vectorbt.py bars.csv --out vbt.csv

The venv: ``python3 -m venv .cache/venv-vbt && .cache/venv-vbt/bin/pip install vectorbt``.
"""

import time

T0 = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402

import numba  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import vectorbt as vbt  # noqa: E402

T_IMPORTED = time.perf_counter()

INIT_CASH = 10_000.0


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def parse_windows(spec: str) -> list:
    """``2..101`` / ``2..101:3`` (inclusive, as sextant's --grid) and/or comma lists ``5,10,20``."""
    out = []
    for item in spec.split(","):
        item = item.strip()
        if ".." in item:
            lo, rest = item.split("..", 1)
            hi, _, step = rest.partition(":")
            out.extend(range(int(lo), int(hi) + 1, int(step or 1)))
        elif item:
            out.append(int(item))
    if not out or len(set(out)) != len(out) or min(out) < 2:
        raise SystemExit(f"bad window list {spec!r}: need distinct windows >= 2")
    return out


def load(path: str) -> pd.DataFrame:
    frame = pd.read_csv(path)
    expected = ["timestamp", "open", "high", "low", "close", "volume"]
    if list(frame.columns) != expected:
        raise SystemExit(f"{path}: expected header {','.join(expected)}, got {','.join(frame.columns)}")
    frame.index = pd.DatetimeIndex(pd.to_datetime(frame.pop("timestamp"), utc=True))
    return frame


def cross_signals(fast: np.ndarray, slow: np.ndarray, cross: str):
    """Entry/exit arrays (bars x k*m) for k fast columns against m slow columns, already shifted to the fill bar."""
    n, k = fast.shape
    m = slow.shape[1]
    f = fast[:, :, None]
    s = slow[:, None, :]
    if cross == "strict":
        above = (f > s).reshape(n, k * m)
        below = (f < s).reshape(n, k * m)
        # signal at t: above[t] & below[t-1]; it fills at t+1.
        entries = np.zeros((n, k * m), dtype=np.bool_)
        exits = np.zeros((n, k * m), dtype=np.bool_)
        np.logical_and(above[1:-1], below[:-2], out=entries[2:])
        np.logical_and(below[1:-1], above[:-2], out=exits[2:])
    else:  # vectorbt's own crossed_above / crossed_below, shifted one bar
        fb = np.ascontiguousarray(np.broadcast_to(f, (n, k, m)).reshape(n, k * m))
        sb = np.ascontiguousarray(np.broadcast_to(s, (n, k, m)).reshape(n, k * m))
        up = vbt.generic.nb.crossed_above_nb(fb, sb)
        down = vbt.generic.nb.crossed_above_nb(sb, fb)
        entries = np.zeros_like(up)
        exits = np.zeros_like(down)
        entries[1:] = up[:-1]
        exits[1:] = down[:-1]
    return entries, exits


@numba.njit(cache=True)
def running_sma_nb(close, window):
    """Sextant's SMA summation order (running total: add the new value, divide, subtract the oldest)."""
    n = close.shape[0]
    out = np.full(n, np.nan)
    total = 0.0
    for i in range(n):
        total += close[i]
        if i >= window - 1:
            out[i] = total / window
            total -= close[i - window + 1]
    return out


def smas(close: pd.Series, windows: list, how: str, name: str) -> np.ndarray:
    if how == "vbt":
        # A single window comes back as a Series: keep it a (bars, 1) column.
        return vbt.MA.run(close, window=windows, ewm=False, short_name=name).ma.to_numpy().reshape(len(close), -1)
    c = close.to_numpy()
    return np.column_stack([running_sma_nb(c, w) for w in windows])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("csv", help="OHLCV CSV (timestamp,open,high,low,close,volume)")
    parser.add_argument("--fast", default="2..101", help="fast SMA windows (default 2..101)")
    parser.add_argument("--slow", default="105..204", help="slow SMA windows (default 105..204)")
    parser.add_argument("--chunk", type=int, default=1000, help="grid points per from_signals call (default 1000)")
    parser.add_argument("--out", help="per-point results CSV (default: stdout)")
    parser.add_argument(
        "--cross",
        choices=["strict", "vbt"],
        default="strict",
        help="strict: Sextant's rule (default); vbt: vectorbt's crossed_above/crossed_below (differs on ties)",
    )
    parser.add_argument(
        "--sma",
        choices=["vbt", "running"],
        default="vbt",
        help="vbt: vbt.MA.run (default); running: Sextant's running-total summation order (diagnostic)",
    )
    args = parser.parse_args()

    fast_w = parse_windows(args.fast)
    slow_w = parse_windows(args.slow)
    bad = [(f, s) for f in fast_w for s in slow_w if f >= s]
    if bad:
        raise SystemExit(f"every point needs fast < slow (Sextant refuses the others); e.g. {bad[0]}")
    n_points = len(fast_w) * len(slow_w)
    rows_per_chunk = max(1, args.chunk // len(slow_w))  # whole fast-window rows per chunk

    frame = load(args.csv)
    t_loaded = time.perf_counter()
    n_bars = len(frame)
    log(f"imports {T_IMPORTED - T0:.3f} s, CSV read {t_loaded - T_IMPORTED:.3f} s ({n_bars} bars)")

    close = frame["close"]
    open_ = frame["open"].to_numpy()[:, None]  # (bars, 1): one column, broadcast to every point
    fast_ma = smas(close, fast_w, args.sma, "fast")
    slow_ma = smas(close, slow_w, args.sma, "slow")
    t_ma = time.perf_counter()
    log(f"SMAs ({len(fast_w)} + {len(slow_w)} windows, {args.sma}) {t_ma - t_loaded:.3f} s")

    res_fast, res_slow, res_trades, res_final, res_ret = [], [], [], [], []
    t_sig = t_sim = t_met = 0.0
    for start in range(0, len(fast_w), rows_per_chunk):
        block = fast_w[start : start + rows_per_chunk]
        a = time.perf_counter()
        entries, exits = cross_signals(fast_ma[:, start : start + len(block)], slow_ma, args.cross)
        b = time.perf_counter()
        pf = vbt.Portfolio.from_signals(
            close,
            entries,
            exits,
            price=open_,
            size=np.inf,
            init_cash=INIT_CASH,
            fees=0.0,
            fixed_fees=0.0,
            slippage=0.0,
            direction="longonly",
            accumulate=False,
            freq="1min",
        )
        c = time.perf_counter()
        res_trades.append(pf.trades.count().to_numpy())
        res_final.append(pf.final_value().to_numpy())
        res_ret.append(pf.total_return().to_numpy())
        res_fast.append(np.repeat(block, len(slow_w)))
        res_slow.append(np.tile(slow_w, len(block)))
        del pf, entries, exits
        d = time.perf_counter()
        t_sig += b - a
        t_sim += c - b
        t_met += d - c
        done = sum(len(x) for x in res_fast)
        log(f"  points {done}/{n_points}: signals {b - a:.2f} s, from_signals {c - b:.2f} s, metrics {d - c:.2f} s")
    t_run = time.perf_counter()

    out = pd.DataFrame(
        {
            "fast": np.concatenate(res_fast),
            "slow": np.concatenate(res_slow),
            "n_trades": np.concatenate(res_trades),
            "final_equity": np.concatenate(res_final),
            "total_return": np.concatenate(res_ret),
        }
    )
    out.to_csv(args.out if args.out else sys.stdout, index=False, float_format="%.17g")
    t_done = time.perf_counter()

    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    log(
        f"signals {t_sig:.3f} s, from_signals {t_sim:.3f} s, metrics {t_met:.3f} s, output {t_done - t_run:.3f} s; "
        f"total in-script {t_done - T0:.3f} s, peak RSS {rss_mib:.0f} MiB"
    )
    log(
        json.dumps(
            {
                "engine": "vectorbt",
                "bars": n_bars,
                "points": n_points,
                "chunk_points": rows_per_chunk * len(slow_w),
                "cross": args.cross,
                "sma": args.sma,
                "seconds": round(t_done - T0, 3),
                "import_seconds": round(T_IMPORTED - T0, 3),
                "load_seconds": round(t_loaded - T_IMPORTED, 3),
                "ma_seconds": round(t_ma - t_loaded, 3),
                "signal_seconds": round(t_sig, 3),
                "simulate_seconds": round(t_sim, 3),
                "metrics_seconds": round(t_met, 3),
                "output_seconds": round(t_done - t_run, 3),
                "peak_rss_mib": round(rss_mib, 1),
                "versions": {
                    "python": sys.version.split()[0],
                    "vectorbt": vbt.__version__,
                    "numba": numba.__version__,
                    "numpy": np.__version__,
                    "pandas": pd.__version__,
                },
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
