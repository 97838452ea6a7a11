"""Backtesting: event engine vs vectorbt parity, a cross-check against backtesting.py, AMM round trips, the lookahead
check, risk before every broker call, and the `memebot backtest` CLI end to end on real data."""

import json, math, warnings
from pathlib import Path
import numpy as np, pandas as pd
import pytest

from memebot.core import Chain, Side, Swap, PoolUpdate, ListFeed, RiskHook, NS
from memebot.strategy import Strategy, get_strategy
from memebot.backtest import CandleFeed, Engine, OrderValidation, lookahead_check, missing_bars
from memebot.exec import SimulatedBroker, ConstantProductAMM, BarFill

DATA = "data/binance_memecoins/ohlcv_5m_2025-01_2025-04.parquet"


@pytest.fixture(scope="module")
def bars5m(shared):
    df = pd.read_parquet(shared / DATA)
    return df.rename(columns={"date": "ts"})


def _one(df, sym, n=None):
    d = df[df.symbol == sym].sort_values("ts")
    return d.iloc[:n] if n else d


@pytest.mark.parametrize("sym", ["BONK/USDT", "WIF/USDT"])
def test_parity_event_engine_vs_vectorbt(bars5m, sym):
    """Zero fees and slippage: same trade list and final equity from the event engine and vectorbt."""
    from memebot.backtest.vector import from_signals, vbt_trades

    feed = CandleFeed.from_frame(_one(bars5m, sym), "5m")
    s = get_strategy("ema_cross", fast=12, slow=26, size=1.0)
    res = Engine(s, feed, SimulatedBroker(BarFill()), risk=None, cash=10_000.0).run()  # research parity: no risk limits
    pf = from_signals(s, feed.frame(), init_cash=10_000.0)
    et, vt = res.trades, vbt_trades(pf)
    assert len(et) == len(vt) > 500
    assert (et.entry_time.to_numpy() == vt.entry_time.to_numpy()).all()
    closed_e, closed_v = et[et.status == "closed"], vt[vt.status == "closed"]
    assert (closed_e.exit_time.to_numpy() == closed_v.exit_time.to_numpy()).all()
    for c in ("entry_price", "size", "pnl"):
        np.testing.assert_allclose(et[c].to_numpy(), vt[c].to_numpy(), rtol=1e-8, err_msg=c)
    np.testing.assert_allclose(closed_e.exit_price.to_numpy(), closed_v.exit_price.to_numpy(), rtol=1e-12)
    assert math.isclose(res.final_equity, float(pf.final_value().iloc[0]), rel_tol=1e-9)
    eq_v = pf.value().iloc[:, 0] if hasattr(pf.value(), "columns") else pf.value()
    # the engine marks at each bar's close, as vectorbt does: the curves agree bar by bar
    common = res.equity.index.intersection(eq_v.index + pd.Timedelta("5min"))
    np.testing.assert_allclose(
        res.equity.loc[common].to_numpy(), eq_v.loc[common - pd.Timedelta("5min")].to_numpy(), rtol=1e-9
    )


@pytest.mark.parametrize(
    "name,params",
    [
        ("rsi_reversion", {"period": 14, "lower": 25, "upper": 60}),
        ("volume_breakout", {"lookback": 48, "exit_lookback": 24, "vol_mult": 2.0}),
    ],
)
def test_parity_other_builtins(bars5m, name, params):
    """The RSI and volume-breakout strategies trade identically on both paths too (their indicators are twins)."""
    from memebot.backtest.vector import from_signals, vbt_trades

    feed = CandleFeed.from_frame(_one(bars5m, "WIF/USDT", 12_000), "5m")
    s = get_strategy(name, {**params, "size": 1.0})
    res = Engine(s, feed, risk=None, cash=10_000.0).run()
    pf = from_signals(s, feed.frame(), init_cash=10_000.0)
    et, vt = res.trades, vbt_trades(pf)
    assert len(et) == len(vt) > 20
    assert (et.entry_time.to_numpy() == vt.entry_time.to_numpy()).all()
    np.testing.assert_allclose(et.pnl.to_numpy(), vt.pnl.to_numpy(), rtol=1e-8)
    assert math.isclose(res.final_equity, float(pf.final_value().iloc[0]), rel_tol=1e-9)


def test_crosscheck_backtesting_py(bars5m):
    """backtesting.py, same bars, same EMAs, fills at the next bar's open: same entry/exit times and prices."""
    from backtesting import Backtest, Strategy as BStrategy
    from memebot.strategy import ema_frame

    d = _one(bars5m, "PEPE/USDT", 8000)
    bdf = d.set_index(pd.DatetimeIndex(d.ts).tz_convert(None))[["open", "high", "low", "close", "volume"]]
    bdf.columns = ["Open", "High", "Low", "Close", "Volume"]
    fast, slow = 12, 26

    def _ema(x, n):
        return ema_frame(pd.DataFrame({"c": np.asarray(x, float)}), n)["c"].to_numpy()

    class Cross(BStrategy):
        def init(self):
            self.f, self.s = self.I(_ema, self.data.Close, fast), self.I(_ema, self.data.Close, slow)

        def next(self):
            want = self.f[-1] > self.s[-1] and len(self.data) >= slow
            if want and not self.position:
                self.buy()
            elif not want and self.position:
                self.position.close()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        st = Backtest(bdf, Cross, cash=1e6, commission=0.0, trade_on_close=False, finalize_trades=False).run()
    bt = st._trades
    res = Engine(
        get_strategy("ema_cross", fast=fast, slow=slow, size=1.0), CandleFeed.from_frame(d, "5m"), risk=None, cash=1e6
    ).run()
    et = res.trades[res.trades.status == "closed"]
    assert len(bt) == len(et) > 100
    assert (pd.DatetimeIndex(bt.EntryTime).tz_localize("UTC") == pd.DatetimeIndex(et.entry_time)).all()
    assert (pd.DatetimeIndex(bt.ExitTime).tz_localize("UTC") == pd.DatetimeIndex(et.exit_time)).all()
    np.testing.assert_allclose(bt.EntryPrice.to_numpy(), et.entry_price.to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(bt.ExitPrice.to_numpy(), et.exit_price.to_numpy(), rtol=1e-12)
    # backtesting.py buys whole units, so returns agree to within rounding, not exactly
    np.testing.assert_allclose(bt.ReturnPct.to_numpy(), et["return"].to_numpy(), atol=1e-6)


class _BuyThenSell(Strategy):
    """Spend `spend` quote on the first event, sell everything once filled."""

    def __init__(self, sym, spend):
        super().__init__()
        self.sym, self.spend = sym, spend

    def on_event(self, ctx, ev):
        if ctx.position(self.sym) == 0 and not ctx.open_orders():
            ctx.buy(self.sym, notional=self.spend)

    def on_tick(self, ctx, ev):
        pass

    def on_fill(self, ctx, fill):
        if fill.side is Side.BUY:
            ctx.sell(self.sym, ctx.position(self.sym))


def test_amm_round_trip_loses_fees_plus_xyk_impact():
    """Buy with 1 SOL then sell the tokens back in a 1,000,000 token / 100 SOL pool at 0.3%: hand-computed."""
    x, y, f, N = 1_000_000.0, 100.0, 0.003, 1.0
    evs = [PoolUpdate(1 * NS, Chain.SOLANA, "POOL", x, y)] + [
        Swap(k * NS, Chain.SOLANA, "POOL", Side.BUY, 1.0, y / x) for k in (2, 3, 4)
    ]
    broker = SimulatedBroker(ConstantProductAMM(fee_bps=30))
    res = Engine(
        _BuyThenSell("POOL", N), ListFeed(evs), broker, risk=None, cash=10.0
    ).run()  # a 200-SOL pool: under min liquidity
    buy, sell = res.fills
    a = N * (1 - f)
    q = x * a / (y + a)  # tokens out for 0.997 SOL into the curve
    x1, y1 = x - q, y + N  # the pool after our buy (the fee stays in it)
    out = y1 * q * (1 - f) / (x1 + q * (1 - f))  # SOL back for the same tokens
    gross = y1 * q / (x1 + q)  # ... had there been no fee
    assert buy.qty == pytest.approx(q, rel=1e-14) and sell.qty == buy.qty
    assert res.portfolio.cash == pytest.approx(10.0 - N + out, rel=1e-14)
    fees = (N - a) + (gross - out)
    assert res.portfolio.fees_paid == pytest.approx(fees, rel=1e-12)
    loss = N - out
    impact = a - gross  # what x*y=k takes on the round trip
    assert loss == pytest.approx(fees + impact, rel=1e-12)
    # with no fee, x*y=k gives everything back
    res0 = Engine(
        _BuyThenSell("POOL", N), ListFeed(evs), SimulatedBroker(ConstantProductAMM(fee_bps=0)), risk=None, cash=10.0
    ).run()
    assert res0.portfolio.cash == pytest.approx(10.0, rel=1e-13)


class _Peek(Strategy):
    def signals(self, frame):
        c = frame["close"]
        up = c.shift(-1) > c
        return up, ~up


def test_lookahead_check_catches_peeking(bars5m):
    fr = CandleFeed.from_frame(_one(bars5m, "DOGE/USDT", 3000), "5m").frame()
    bad = lookahead_check(_Peek(), fr, points=20)
    assert len(bad) > 0 and set(bad.signal) <= {"entries", "exits"}
    assert len(lookahead_check(get_strategy("ema_cross", fast=12, slow=26), fr, points=20)) == 0
    assert len(lookahead_check(get_strategy("volume_breakout", lookback=20, exit_lookback=10), fr, points=20)) == 0
    assert len(missing_bars(fr, "5m")) == 0 and missing_bars(fr.drop(fr.index[500:510]), "5m").bars.tolist() == [10]


class _Recorder(RiskHook):
    """Approves every other order and records what it saw."""

    def __init__(self):
        self.seen = []

    def check(self, order, portfolio, now_ns):
        self.seen.append(order.client_id)
        return None if len(self.seen) % 2 else "every other order is rejected"


class _RecBroker(SimulatedBroker):
    def __init__(self):
        super().__init__(BarFill())
        self.got = []

    def submit(self, order, now_ns):
        self.got.append(order.client_id)
        super().submit(order, now_ns)


def test_risk_sees_every_order_before_the_broker(bars5m):
    risk, broker = _Recorder(), _RecBroker()
    d = bars5m[bars5m.symbol.isin(["BONK/USDT", "WIF/USDT", "PEPE/USDT"])]
    d = d[d.ts < d.ts.min() + pd.Timedelta("3D")]
    res = Engine(
        get_strategy("ema_cross", fast=5, slow=20), CandleFeed.from_frame(d, "5m"), broker, risk=risk, cash=1000.0
    ).run()
    assert len(risk.seen) > 20 and broker.got == risk.seen[::2]
    assert {o.client_id for o in res.orders if o.status.value == "rejected"} == set(risk.seen[1::2])


def test_multi_asset_engine_is_deterministic_and_uses_every_symbol(bars5m):
    d = bars5m[bars5m.ts < bars5m.ts.min() + pd.Timedelta("5D")]
    feed = CandleFeed.from_frame(d, "5m")
    r1 = Engine(get_strategy("ema_cross", fast=12, slow=48), feed, cash=10_000.0).run()
    r2 = Engine(get_strategy("ema_cross", fast=12, slow=48), feed, cash=10_000.0).run()
    assert (
        r1.bars == len(d)
        and r1.final_equity == r2.final_equity
        and [f.fill_id for f in r1.fills] == [f.fill_id for f in r2.fills]
    )
    assert set(r1.trades.symbol) == set(d.symbol)
    assert math.isclose(r1.trades.pnl.sum(), r1.final_equity - 10_000.0, rel_tol=1e-9)


def test_cli_backtest_json_end_to_end(shared, memebot, tmp_path):
    r = memebot("backtest", "--strategy", "ema_cross", "--symbols", "BONK/USDT")
    assert r.returncode == 2 and "no data" in r.stderr and "memebot data import" in r.stderr
    memebot("data", "import", shared / DATA, check=True)
    out = tmp_path / "bt.json"
    r = memebot(
        "backtest",
        "--strategy",
        "ema_cross",
        "--param",
        "fast=12",
        "--param",
        "slow=48",
        "--symbols",
        "BONK/USDT,WIF/USDT",
        "--tf",
        "5m",
        "--from",
        "2025-03-01",
        "--to",
        "2025-03-08",
        "--json",
        out,
        "--out",
        tmp_path / "ts",
        check=True,
    )
    assert (
        "sharpe" in r.stdout
        and (tmp_path / "ts" / "tearsheet.png").exists()
        and (tmp_path / "ts" / "tearsheet.html").exists()
    )
    doc = json.loads(out.read_text())
    m, trades = doc["metrics"], doc["trades"]
    assert {
        "total_return",
        "cagr",
        "sharpe",
        "sortino",
        "calmar",
        "max_drawdown",
        "var_95",
        "cvar_95",
        "win_rate",
        "profit_factor",
        "exposure",
        "turnover",
        "fees_paid",
        "attribution",
    } <= set(m)
    assert len(trades) > 10 and {
        "symbol",
        "side",
        "entry_time",
        "exit_time",
        "entry_price",
        "exit_price",
        "size",
        "fees",
        "pnl",
    } <= set(trades[0])
    assert {t["symbol"] for t in trades} == {"BONK/USDT", "WIF/USDT"} and all(t["fees"] > 0 for t in trades)
    assert all("2025-03-01" <= t["entry_time"][:10] <= "2025-03-08" for t in trades)
    assert sum(t["pnl"] for t in trades) == pytest.approx(m["final_equity"] - 10_000.0, rel=1e-6)
    # set against benchmarks on the same bars: buy & hold in equal parts, computed here from the data itself
    b = doc["benchmarks"]
    assert set(b) == {"strategy", "buy & hold (equal parts)", "equal-weight index"}
    assert b["strategy"]["total_return"] == pytest.approx(m["total_return"], abs=1e-9)
    px = pd.read_parquet(shared / DATA, filters=[("symbol", "in", ["BONK/USDT", "WIF/USDT"])])
    px = px[(px.date >= "2025-03-01") & (px.date < "2025-03-08")].pivot(index="date", columns="symbol", values="close")
    assert b["buy & hold (equal parts)"]["total_return"] == pytest.approx(
        (px.iloc[-1] / px.iloc[0]).mean() - 1, rel=1e-6
    )
    one = ("--symbols", "BONK/USDT", "--tf", "5m", "--from", "2025-03-01", "--to", "2025-03-02", "--no-tearsheet")
    assert "against benchmarks" in memebot("backtest", "--strategy", "ema_cross", *one).stdout
    for args, msg in (
        (["--strategy", "nope"], "unknown strategy 'nope'"),
        (["--strategy", "ema_cross", "--param", "fast=abc"], "fast"),
        (["--strategy", "ema_cross", "--param", "speed=3"], "speed"),
        (["--strategy", "ema_cross", "--symbols", "NOPE/USDT"], "unknown symbol 'NOPE/USDT'"),
        (["--strategy", "ema_cross", "--symbols", "BONK/USDT", "--from", "2030-01-01"], "no 5m candles"),
    ):
        r = memebot("backtest", *args)
        assert r.returncode == 2 and msg in r.stderr and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)


def test_cli_sweep(shared, memebot, tmp_path):
    memebot("data", "import", shared / DATA, check=True)
    r = memebot(
        "sweep",
        "--strategy",
        "ema_cross",
        "--grid",
        "fast=4:16:4",
        "--grid",
        "slow=20,40",
        "--symbols",
        "DOGE/USDT",
        "--from",
        "2025-04-01",
        "--out",
        tmp_path / "sw",
        check=True,
    )
    res = pd.read_csv(tmp_path / "sw" / "results.csv")
    assert len(res) == 6 and (tmp_path / "sw" / "heatmap.png").read_bytes()[:4] == b"\x89PNG" and "sharpe" in r.stdout


def test_pump_launch_on_real_pumpfun_swaps(shared):
    """The launch strategy over 11,324 real pump.fun swaps: enters on TokenLaunched,
    fills on the curve at the next swap."""
    from memebot.core import TokenLaunched, ts_from
    from memebot.config import load_settings
    from memebot.exec import PumpFunCurve, FeeSchedule

    sw = pd.read_parquet(shared / "data/pumpfun/swaps_first_300s.parquet").reset_index(drop=True)
    launches = sw.groupby(["mint", "pool"]).created.min().reset_index()
    evs = [
        (
            ts_from(int(r.created)),
            0,
            i,
            TokenLaunched(ts_from(int(r.created)), Chain.SOLANA, r.mint, r.pool, source="pumpfun"),
        )
        for i, r in enumerate(launches.itertuples())
    ]
    evs += [
        (
            ts_from(int(r.ts)),
            1,
            i,
            Swap(ts_from(int(r.ts)), Chain.SOLANA, r.pool, Side(r.side), r.tokens, r.sol, sig=r.sig),
        )
        for i, r in enumerate(sw.itertuples())
        if r.tokens > 0 and r.sol > 0
    ]
    evs = [e for *_, e in sorted(evs, key=lambda x: x[:3])]
    fees = FeeSchedule.for_chain("solana", load_settings(None), native_price=1.0)
    strat = get_strategy("pump_launch", size=0.05, take_profit=0.5, stop_loss=0.3, max_hold_s=120, first_bars=False)
    res = Engine(strat, ListFeed(evs), SimulatedBroker(PumpFunCurve(), fees), cash=10.0).run()
    buys = [f for f in res.fills if f.side is Side.BUY]
    created = dict(zip(launches.pool, launches.created))
    assert 10 <= len(buys) <= len(launches) and len({f.symbol for f in buys}) == len(buys)
    assert all(f.ts >= ts_from(int(created[f.symbol])) for f in buys)
    for f in buys:  # 1% curve fee on the SOL spent plus the Solana base + priority fee
        assert f.fee == pytest.approx(0.01 * f.qty * f.price + fees.fixed, rel=1e-9)
    tr = res.trades
    assert (tr.status == "closed").sum() >= 5 and set(tr.symbol) == {f.symbol for f in buys}
    assert tr.pnl.sum() == pytest.approx(res.final_equity - 10.0, rel=1e-6, abs=1e-9)


def test_user_strategy_folder_from_env(memebot, tmp_path):
    d = tmp_path / "strats"
    d.mkdir()
    (d / "mine.py").write_text(
        "from memebot.strategy import Strategy, Param\n"
        "class Mine(Strategy):\n    name = 'mine_test'\n    params = {'k': Param(int, 3, 1, 9)}\n"
    )
    r = memebot("strategies", "--json", env={"MEMEBOT_BACKTEST_STRATEGY_DIR": str(d)}, check=True)
    doc = json.loads(r.stdout)
    assert doc["mine_test"]["params"]["k"]["default"] == 3 and "ema_cross" in doc
