#!/usr/bin/env python3
"""Hold one Uniswap v3 LP position over a minute file with demeter and report its fees.

The Python side of a side-by-side check against demeter (PyPI package
``zelos-demeter``). Reads one minute CSV in the format demeter's fetch tool
writes (header ``timestamp,netAmount0,netAmount1,closeTick,openTick,lowestTick,
highestTick,inAmount0,inAmount1,currentLiquidity``; amounts and liquidity in
base units, ticks as the pool's ticks), then:

* builds a demeter ``UniLpMarket`` for the pool: token0 and token1 with the
  given decimals, token1 as the quote token (so prices are token1 per token0,
  e.g. USDC per WETH) and the fee tier from ``--fee-pips``;
* gives the broker exactly ``--amount0`` token0 and ``--amount1`` token1 (human
  units) and, at the first minute, opens one position with
  ``add_liquidity_by_tick(tick_lower, tick_upper, ...)``: demeter takes as much
  of both amounts as fits the range at the first minute's price;
* runs demeter's ``Actuator`` over every minute, never touching the position
  again, and reads the position at the end: its liquidity, the fees demeter
  credited to it (uncollected fees, ``pending_amount0/1``) and its value.

Data loading. demeter's own loader (``UniLpMarket.load_data``) reads daily files
``{chain}-{pool}-{YYYY-MM-DD}.minute.csv``, pads them to whole days and caches
the result under ``~/.demeter``. By default (``--loader frame``) this script does
the same steps itself on the one file, with demeter's own functions and without
the cache or the padding: read the CSV with amounts and liquidity as Decimal,
index by timestamp, reindex to every minute from the first to the last row,
``demeter.uniswap.data.fillna`` (missing minutes: no volume, ticks and liquidity
carried forward) and ``UniLpMarket.add_statistic_column`` (the ``price`` column:
each minute's price is the previous minute's close, the first minute's comes
from its openTick). ``--loader files`` instead writes the daily files into a
temporary folder and calls ``load_data`` (cache switched off for the run); that
pads the first and last day to midnight, so the minute count can grow. Either way
the four tick columns are then stored as float64 (see the comment in ``main``).

Timing. ``import_seconds`` is importing pandas and demeter; ``load_seconds`` is
reading and preparing the data; ``setup_seconds`` is building the market,
broker and actuator; ``run_seconds`` is ``Actuator.run`` alone (the backtest
proper: per-minute fee updates and account snapshots, then demeter's final
account table); ``total_seconds`` runs from the start of this script to the end
of the backtest (interpreter start-up not included). demeter's progress bar is
switched off unless ``--progress`` is given.

Output: a short text report, or with ``--json`` one JSON object on stdout.
Exact demeter values (Python ``Decimal``) are written as strings; ``*_raw``
fields are in base units (human amount times 10**decimals, not rounded).

Usage
-----
    .cache/demeter-venv/bin/python scripts/bench_demeter.py \\
        --minutes POOL.minute.csv --decimals0 18 --decimals1 6 --fee-pips 500 \\
        --tick-lower -200600 --tick-upper -200200 --amount0 1 --amount1 2000 --json
"""

import time

T0 = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from decimal import Decimal  # noqa: E402

# Tick spacing of the standard Uniswap v3 fee tiers. demeter derives it as
# int(fee_percent * 200), which is right for 500, 3000 and 10000 pips but gives
# 2 instead of 1 for the 100-pip tier, so it is set explicitly here.
TICK_SPACING = {100: 1, 500: 10, 3000: 60, 10000: 200}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--minutes", required=True, help="minute CSV in demeter's fetch format")
    p.add_argument("--decimals0", type=int, default=18, help="token0 decimals (default 18)")
    p.add_argument("--decimals1", type=int, default=6, help="token1 decimals (default 6)")
    p.add_argument("--symbol0", default="WETH", help="token0 name in demeter (default WETH)")
    p.add_argument("--symbol1", default="USDC", help="token1 name in demeter (default USDC)")
    p.add_argument("--fee-pips", type=int, default=500, help="pool fee in hundredths of a basis point (default 500)")
    p.add_argument("--tick-spacing", type=int, default=None,
                   help="override the tick spacing (default: the standard one for the fee tier)")
    p.add_argument("--tick-lower", type=int, required=True)
    p.add_argument("--tick-upper", type=int, required=True)
    p.add_argument("--amount0", type=Decimal, required=True, help="token0 to deposit, human units")
    p.add_argument("--amount1", type=Decimal, required=True, help="token1 to deposit, human units")
    p.add_argument("--loader", choices=["frame", "files"], default="frame",
                   help="frame: build the DataFrame here (default); files: write daily files and use demeter's loader")
    p.add_argument("--chain", default="ethereum", help="chain name in the daily file names (--loader files)")
    p.add_argument("--pool", default="0x0000000000000000000000000000000000000001",
                   help="pool address in the daily file names (--loader files)")
    p.add_argument("--progress", action="store_true", help="show demeter's progress bar (on stderr)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    return p.parse_args(argv)


ARGS = parse_args()

# demeter's main loop uses tqdm; tqdm reads TQDM_* defaults when it is imported.
if not ARGS.progress:
    os.environ.setdefault("TQDM_DISABLE", "1")

import pandas as pd  # noqa: E402

import demeter  # noqa: E402
from demeter import Actuator, MarketInfo, Strategy, TokenInfo  # noqa: E402
from demeter.data import CacheManager  # noqa: E402
from demeter.uniswap import UniLpMarket, UniV3Pool  # noqa: E402
from demeter.uniswap.data import fillna  # noqa: E402
from demeter.utils import to_decimal  # noqa: E402

T_IMPORTED = time.perf_counter()

# demeter configures INFO logging on import; keep stdout/stderr for the report.
logging.disable(logging.INFO)

COLUMNS = [
    "timestamp", "netAmount0", "netAmount1", "closeTick", "openTick", "lowestTick",
    "highestTick", "inAmount0", "inAmount1", "currentLiquidity",
]
# demeter's loader reads these columns as Decimal (they can exceed 64 bits).
DECIMAL_COLUMNS = ["inAmount0", "inAmount1", "netAmount0", "netAmount1", "currentLiquidity"]
TICK_COLUMNS = ["closeTick", "openTick", "lowestTick", "highestTick"]


def demeter_version() -> str:
    try:
        from importlib.metadata import version

        return version("zelos-demeter")
    except Exception:
        return getattr(demeter, "__version__", "unknown")


def read_minutes(path: str) -> pd.DataFrame:
    """Read the minute CSV and index it by naive UTC timestamps, as demeter's loader does."""
    frame = pd.read_csv(path, converters={c: to_decimal for c in DECIMAL_COLUMNS})
    if list(frame.columns) != COLUMNS:
        raise SystemExit(f"{path}: expected header {','.join(COLUMNS)}, got {','.join(frame.columns)}")
    if frame.empty:
        raise SystemExit(f"{path}: no rows")
    stamps = pd.to_datetime(frame.pop("timestamp"), utc=True).dt.tz_convert(None)
    frame.index = pd.DatetimeIndex(stamps, name="timestamp")
    if not frame.index.is_monotonic_increasing or frame.index.has_duplicates:
        raise SystemExit(f"{path}: timestamps must be strictly increasing")
    return frame


def prepare_frame(raw: pd.DataFrame, market: UniLpMarket) -> pd.DataFrame:
    """The steps of demeter's load_uni_v3_data, on one frame, without padding to whole days or caching."""
    full = pd.date_range(start=raw.index[0], end=raw.index[-1], freq="1min")
    df = fillna(raw.reindex(full))
    if pd.isna(df.iloc[0]["closeTick"]):
        df = df.bfill()
    market.add_statistic_column(df)
    return df


def load_with_daily_files(raw: pd.DataFrame, market: UniLpMarket, chain: str, pool: str) -> None:
    """Write one file per UTC day as demeter's fetch tool names them and load them with demeter's loader."""
    # The loader caches by (chain, pool, dates) under ~/.demeter; a stale entry would
    # silently replace this file's data, so the cache is off for this run.
    CacheManager.load = staticmethod(lambda key: None)
    CacheManager.save = staticmethod(lambda key, df: None)
    out = raw.copy()
    out.insert(0, "timestamp", out.index.strftime("%Y-%m-%d %H:%M:%S"))
    with tempfile.TemporaryDirectory(prefix="demeter-days-") as folder:
        days = out.groupby(out.index.date)
        for day, rows in days:
            rows.to_csv(os.path.join(folder, f"{chain.lower()}-{pool}-{day:%Y-%m-%d}.minute.csv"), index=False)
        market.data_path = folder
        market.load_data(chain, pool, raw.index[0].date(), raw.index[-1].date())


class HoldOnePosition(Strategy):
    """Open one position at the first minute (in initialize, when the first minute's
    pool status is already set) and never touch it again."""

    def __init__(self, market_info, tick_lower, tick_upper, amount0, amount1):
        super().__init__()
        self.market_info = market_info
        self.tick_lower = tick_lower
        self.tick_upper = tick_upper
        self.amount0 = amount0
        self.amount1 = amount1
        self.opened = None  # (position key, base used, quote used, liquidity)

    def initialize(self):
        market: UniLpMarket = self.markets[self.market_info]
        # add_liquidity_by_tick takes (base, quote) amounts; token1 is the quote here,
        # so base = token0 and quote = token1. trim_tick=False: the ticks were checked
        # against the tick spacing before the run.
        self.opened = market.add_liquidity_by_tick(
            self.tick_lower,
            self.tick_upper,
            base_max_amount=self.amount0,
            quote_max_amount=self.amount1,
            trim_tick=False,
        )


def to_raw(amount: Decimal, decimals: int) -> Decimal:
    return amount * (Decimal(10) ** decimals)


def main() -> int:
    args = ARGS
    if args.tick_lower >= args.tick_upper:
        raise SystemExit("--tick-lower must be below --tick-upper")

    # Pool: token1 is the quote token, so demeter's is_token0_quote is False and every
    # price is token1 per token0 in human units (tick t -> 1.0001**t * 10**(d0 - d1)).
    token0 = TokenInfo(name=args.symbol0, decimal=args.decimals0)
    token1 = TokenInfo(name=args.symbol1, decimal=args.decimals1)
    # UniV3Pool takes the fee as a percentage (0.05 for 500 pips).
    pool = UniV3Pool(token0, token1, Decimal(args.fee_pips) / Decimal(10000), token1)
    spacing = args.tick_spacing or TICK_SPACING.get(args.fee_pips, pool.tick_spacing)
    pool.tick_spacing = spacing
    for name, tick in (("--tick-lower", args.tick_lower), ("--tick-upper", args.tick_upper)):
        if tick % spacing != 0:
            raise SystemExit(f"{name} {tick} is not a multiple of the tick spacing {spacing}")
    market_info = MarketInfo("uni")
    market = UniLpMarket(market_info, pool)

    t_load = time.perf_counter()
    raw = read_minutes(args.minutes)
    if args.loader == "frame":
        market.data = prepare_frame(raw, market)
    else:
        load_with_daily_files(raw, market, args.chain, args.pool)
    # Tick columns as float64. demeter's fee update divides tick distances with
    # Decimal(...), which accepts Python/NumPy floats but not numpy.int64: with integer
    # tick columns the run stops with a TypeError the first minute the price crosses a
    # range bound (demeter/uniswap/core.py, update_fee). demeter's own loader usually
    # ends up with float64 ticks because padding to whole days leaves missing minutes
    # (NaN) before fillna; a file with no gaps keeps int64. Every tick fits a float exactly.
    market.data[TICK_COLUMNS] = market.data[TICK_COLUMNS].astype("float64")
    t_loaded = time.perf_counter()

    actuator = Actuator()
    actuator.broker.add_market(market)
    actuator.broker.set_balance(token0, args.amount0)
    actuator.broker.set_balance(token1, args.amount1)
    strategy = HoldOnePosition(market_info, args.tick_lower, args.tick_upper, args.amount0, args.amount1)
    actuator.strategy = strategy
    # Token prices for valuing the account, in token1: demeter's own helper takes them
    # from the pool's price column (token0 at the pool price, token1 at 1).
    actuator.set_price(market.get_price_from_data())
    t_setup = time.perf_counter()

    actuator.run(print_result=False)
    t_run = time.perf_counter()

    position_key, used0, used1, liquidity = strategy.opened
    position = market.positions[position_key]
    status = market.get_position_status(position_key)  # at the last minute's price
    fee0, fee1 = position.pending_amount0, position.pending_amount1
    last_price = market.market_status.data.price
    first = market.data.iloc[0]

    result = {
        "engine": "demeter",
        "demeter_version": demeter_version(),
        "python": sys.version.split()[0],
        "loader": args.loader,
        "minutes": int(len(market.data.index)),
        "rows_in_file": int(len(raw.index)),
        "first_minute": str(market.data.index[0]),
        "last_minute": str(market.data.index[-1]),
        "fee_pips": args.fee_pips,
        "tick_spacing": spacing,
        "tick_lower": position_key.lower_tick,
        "tick_upper": position_key.upper_tick,
        "open_price": str(first["price"]),
        "deposited0": str(used0),
        "deposited1": str(used1),
        "liquidity": int(position.liquidity),
        "fees0": str(fee0),
        "fees1": str(fee1),
        "fees0_raw": str(to_raw(fee0, args.decimals0)),
        "fees1_raw": str(to_raw(fee1, args.decimals1)),
        "final_price": str(last_price),
        "final_amount0": str(status.liquidity_amount0),
        "final_amount1": str(status.liquidity_amount1),
        "final_liquidity_value": str(status.liquidity_value),
        "final_fee_value": str(status.pending_value),
        "final_position_value": str(status.value),
        "import_seconds": round(T_IMPORTED - T0, 6),
        "load_seconds": round(t_loaded - t_load, 6),
        "setup_seconds": round(t_setup - t_loaded, 6),
        "run_seconds": round(t_run - t_setup, 6),
        "total_seconds": round(t_run - T0, 6),
    }
    if args.json:
        print(json.dumps(result))
        return 0

    s0, s1 = args.symbol0.upper(), args.symbol1.upper()
    print(f"demeter {result['demeter_version']} (python {result['python']}), loader: {args.loader}")
    print(f"minutes:   {result['minutes']} ({result['first_minute']} .. {result['last_minute']}),"
          f" {result['rows_in_file']} rows in the file")
    print(f"position:  ticks [{result['tick_lower']}, {result['tick_upper']}), fee {args.fee_pips} pips,"
          f" spacing {spacing}")
    print(f"opened at: {result['open_price']} {s1}/{s0};"
          f" deposited {used0} {s0} + {used1} {s1}")
    print(f"liquidity: {result['liquidity']}")
    print(f"fees:      {fee0} {s0} ({result['fees0_raw']} raw)")
    print(f"           {fee1} {s1} ({result['fees1_raw']} raw)")
    print(f"at end:    price {last_price} {s1}/{s0}; position {status.liquidity_amount0} {s0}"
          f" + {status.liquidity_amount1} {s1}")
    print(f"value:     liquidity {status.liquidity_value} + fees {status.pending_value}"
          f" = {status.value} {s1}")
    print(f"seconds:   import {result['import_seconds']:.3f}, load {result['load_seconds']:.3f},"
          f" setup {result['setup_seconds']:.3f}, run {result['run_seconds']:.3f},"
          f" total {result['total_seconds']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
