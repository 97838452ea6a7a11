"""NautilusTrader side of bench_backtest.py: EMA cross over the same 25-symbol 5m bars in BacktestEngine.

Runs under a separate interpreter (nautilus-trader pins pandas<3, so it cannot live in memebot's venv):
    NAUTILUS_PYTHON=/path/to/venv/bin/python python bench/bench_backtest.py
Prints one JSON line: bars, fills, seconds for engine.run() (data wrangling timed separately).
"""

import sys, json, time
from decimal import Decimal
import pandas as pd

from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
from nautilus_trader.config import LoggingConfig, StrategyConfig
from nautilus_trader.indicators import ExponentialMovingAverage
from nautilus_trader.model.currencies import USDT
from nautilus_trader.model.data import Bar, BarType
from nautilus_trader.model.enums import AccountType, OmsType, OrderSide, CurrencyType
from nautilus_trader.model.identifiers import InstrumentId, Symbol, Venue, TraderId
from nautilus_trader.model.instruments import CurrencyPair
from nautilus_trader.model.objects import Money, Price, Quantity, Currency
from nautilus_trader.persistence.wranglers import BarDataWrangler
from nautilus_trader.trading.strategy import Strategy

path, fast, slow = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
CASH = 10_000.0


class EmaCrossAll(Strategy):
    """Long when the fast EMA is above the slow EMA after `slow` bars, flat otherwise; equal weight per symbol."""

    def __init__(self, bar_types, instruments):
        super().__init__(StrategyConfig(strategy_id="EMA-001"))
        self.bar_types, self.inst = bar_types, instruments
        self.ema = {
            bt.instrument_id: (ExponentialMovingAverage(fast), ExponentialMovingAverage(slow)) for bt in bar_types
        }
        self.n = {bt.instrument_id: 0 for bt in bar_types}
        self.long = {bt.instrument_id: False for bt in bar_types}
        self.delivered, self.ts, self.reserved = 0, 0, 0.0

    def on_start(self):
        for bt in self.bar_types:
            self.subscribe_bars(bt)

    def on_bar(self, bar: Bar):
        iid = bar.bar_type.instrument_id
        f, s = self.ema[iid]
        c = bar.close.as_double()
        f.update_raw(c)
        s.update_raw(c)
        self.n[iid] += 1
        self.delivered += 1
        want = self.n[iid] >= slow and f.value > s.value
        if want == self.long[iid]:
            return
        inst = self.inst[iid]
        if want:
            # 1/25 of the starting cash, at most 90% of what is free and not reserved this bar (a negative balance stops
            # the backtest)
            if bar.ts_event != self.ts:
                self.ts, self.reserved = bar.ts_event, 0.0
            free = self.portfolio.account(iid.venue).balance_free(USDT).as_double() - self.reserved
            notional = min(CASH / len(self.inst), 0.9 * free)
            self.reserved += max(notional, 0.0)
            qty = inst.make_qty(notional / c) if notional / c >= 1e-6 else None
            if qty is not None and qty.as_double() > 0:
                self.submit_order(self.order_factory.market(iid, OrderSide.BUY, qty))
        else:
            self.close_all_positions(iid)
        self.long[iid] = want


def main():
    df = pd.read_parquet(path)
    venue = Venue("BINANCE")
    eng = BacktestEngine(
        BacktestEngineConfig(
            trader_id=TraderId("BENCH-001"), logging=LoggingConfig(log_level="ERROR", bypass_logging=True)
        )
    )
    eng.add_venue(
        venue=venue,
        oms_type=OmsType.NETTING,
        account_type=AccountType.CASH,
        base_currency=None,
        starting_balances=[Money(CASH, USDT)],
    )
    t0 = time.perf_counter()
    bar_types, insts, nbars = [], {}, 0
    for sym, g in df.groupby("symbol"):
        base = sym.split("/")[0]
        cur = Currency(base[:16], 8, 0, base, CurrencyType.CRYPTO)
        pp = 10
        inst = CurrencyPair(
            instrument_id=InstrumentId(Symbol(base + "USDT"), venue),
            raw_symbol=Symbol(base + "USDT"),
            base_currency=cur,
            quote_currency=USDT,
            price_precision=pp,
            size_precision=6,
            price_increment=Price(10**-pp, pp),
            size_increment=Quantity(1e-06, 6),
            lot_size=None,
            max_quantity=None,
            min_quantity=None,
            max_notional=None,
            min_notional=None,
            max_price=None,
            min_price=None,
            margin_init=Decimal(0),
            margin_maint=Decimal(0),
            maker_fee=Decimal(0),
            taker_fee=Decimal(0),
            ts_event=0,
            ts_init=0,
        )
        eng.add_instrument(inst)
        bt = BarType.from_str(f"{inst.id}-5-MINUTE-LAST-EXTERNAL")
        data = g.set_index("date")[["open", "high", "low", "close", "volume"]]
        bars = BarDataWrangler(bt, inst).process(data, ts_init_delta=300_000_000_000)
        eng.add_data(bars)
        bar_types.append(bt)
        insts[inst.id] = inst
        nbars += len(bars)
    t_wrangle = time.perf_counter() - t0
    eng.add_strategy(EmaCrossAll(bar_types, insts))
    t0 = time.perf_counter()
    eng.run()
    t_run = time.perf_counter() - t0
    fills = len(eng.trader.generate_fills_report()) if hasattr(eng.trader, "generate_fills_report") else -1
    orders = eng.trader.generate_orders_report()
    if "status" in orders:
        print(orders["status"].value_counts().to_dict(), file=sys.stderr)
    strat = eng.trader.strategies()[0]
    print(
        json.dumps(
            {"bars": nbars, "delivered": strat.delivered, "run_s": t_run, "wrangle_s": t_wrangle, "fills": fills}
        )
    )


if __name__ == "__main__":
    main()
