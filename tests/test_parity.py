"""Trustworthy results on real bars, with the settings a new user has (the [risk] limits of settings.ini apply).

1. Backtest and paper agree under the default fill (volume participation, partial fills): for every built-in
   strategy, on BONK alone and on five symbols, the event-driven backtest and a paper node replaying the same stored
   bars make the same fills and end with the same equity, to the cent.
2. With `--fill bar`, the backtest equals an independent pandas recomputation of each strategy's rules: the same
   entries and exits at the next bar's open, and the same total return.
"""

import asyncio, math
import numpy as np, pandas as pd, pytest
from memebot.config import load_settings
from memebot.core import Side
from memebot.data.store import Store, upsert
from memebot.data.replay import ReplayFeed
from memebot.backtest import CandleFeed, Engine
from memebot.exec import SimulatedBroker, BarFill, FeeSchedule
from memebot.exec.ledger import Ledger
from memebot.live import TradingNode, BarSlices
from memebot.exec.paper import PaperBroker
from memebot.risk import RiskEngine
from memebot.strategy import get_strategy

DATA = "data/binance_memecoins/ohlcv_5m_2025-01_2025-04.parquet"
START, END = "2025-03-01", "2025-03-22"  # three weeks the parity runs cover
UNIVERSES = {"bonk": ["BONK/USDT"], "five": ["BONK/USDT", "WIF/USDT", "PEPE/USDT", "DOGE/USDT", "TRUMP/USDT"]}
STRATEGIES = ["ema_cross", "rsi_reversion", "volume_breakout", "pump_launch"]
CASH, FEE = 10_000.0, 0.001  # [live] starting_cash_usd = [backtest] initial_cash_usd; cex_fee_bps


@pytest.fixture(scope="module")
def bars(shared):
    df = pd.read_parquet(shared / DATA).rename(columns={"date": "ts"})
    df = df[(df.ts >= START) & (df.ts < END) & df.symbol.isin(UNIVERSES["five"])]
    return df.sort_values(["ts", "symbol"]).assign(tf="5m", source="binance", chain="cex").reset_index(drop=True)


@pytest.fixture(scope="module")
def user_settings(tmp_path_factory):
    "settings.ini as shipped (what a new user runs with), its kill file moved into a temp folder."
    from pathlib import Path

    ini = Path(__file__).resolve().parent.parent / "settings.ini"
    return load_settings(ini, env={"MEMEBOT_LIVE_KILL_FILE": str(tmp_path_factory.mktemp("kill") / "KILL")})


def _key(f):
    return (f.ts, f.symbol, f.side.value, round(f.qty, 6), round(f.price, 12), round(f.fee, 9))


# ---- 1. backtest == paper under the default fill ----------------------------------------------------------------
@pytest.mark.parametrize("universe", list(UNIVERSES))
@pytest.mark.parametrize("name", STRATEGIES)
def test_backtest_equals_paper_with_default_fill(bars, user_settings, name, universe):
    from memebot.exec import make_broker

    syms = UNIVERSES[universe]
    st = Store(":memory:")
    upsert(st, "candles", bars[bars.symbol.isin(syms)])
    sb = make_broker("auto", "cex")  # what `memebot backtest` and `memebot paper` use
    bt = Engine(
        get_strategy(name),
        CandleFeed.from_store(st, syms, "5m"),
        SimulatedBroker(sb.model, sb.fees),
        risk=RiskEngine.from_settings(user_settings, watch_kill_file=False),
        cash=CASH,
    ).run()
    led = Ledger(st, f"parity-{name}", "cex", "paper")
    node = TradingNode(
        get_strategy(name),
        BarSlices.from_replay(ReplayFeed(st, "candles", syms, "5m")),
        PaperBroker(sb.model, sb.fees, ledger=led),
        led,
        run_id=f"parity-{name}",
        settings=user_settings,
        cash=CASH,
    )
    pr = asyncio.run(node.run(handle_signals=False))
    assert len(bt.fills) >= (2 if name == "pump_launch" else 40), len(bt.fills)
    assert [_key(f) for f in pr.fills] == [_key(f) for f in bt.fills]
    assert round(pr.final_equity, 2) == round(bt.final_equity, 2)
    assert pr.order_stats() == bt.order_stats() and bt.order_stats()["rejected"] == 0
    assert node.consistency() == []


# ---- 2. --fill bar == an independent pandas recomputation ---------------------------------------------------------
def _ema(c, span):
    return c.ewm(span=span, adjust=False).mean()


def _rsi(c, period):
    d = c.diff()
    up = d.clip(lower=0).ewm(alpha=1 / period, adjust=False).mean()
    dn = (-d).clip(lower=0).ewm(alpha=1 / period, adjust=False).mean()
    r = 100 - 100 / (1 + up / dn)
    return r.mask(dn == 0, np.where(up > 0, 100.0, 50.0))


def _long_flat(enter, leave):
    "Decision bars of a long/flat rule: enter when flat and `enter`, leave when long and `leave`: [(entry, exit|None)]."
    out, cur = [], None
    for t, (e, x) in enumerate(zip(enter, leave)):
        if cur is None and e:
            cur = t
        elif cur is not None and x:
            out.append((cur, t))
            cur = None
    if cur is not None:
        out.append((cur, None))
    return out


def _decisions(name, g):
    "Per-symbol (decision bar of the entry, decision bar of the exit or None) from the strategy's published rules."
    c, h, l, v = (
        g.close.reset_index(drop=True),
        g.high.reset_index(drop=True),
        g.low.reset_index(drop=True),
        g.volume.reset_index(drop=True),
    )
    n = np.arange(1, len(c) + 1)  # bars seen so far
    if name == "ema_cross":
        want = ((_ema(c, 12) > _ema(c, 26)) & (n >= 26)).to_numpy()
        return _long_flat(want, ~want)
    if name == "rsi_reversion":
        r, ok = _rsi(c, 14), n > 14
        return _long_flat(((r < 30) & ok).to_numpy(), ((r > 70) & ok).to_numpy())
    if name == "volume_breakout":
        hi = h.shift(1).rolling(48, min_periods=48).max()
        vm = v.shift(1).rolling(48, min_periods=48).mean()
        lo = l.shift(1).rolling(24, min_periods=24).min()
        return _long_flat(((c > hi) & (v > 2.0 * vm)).to_numpy(), (c < lo).to_numpy())
    raise AssertionError(name)


def _pump_launch(g):
    "pump_launch on candles: enter at the first bar; exit at the first of the 1 h timer, +100% and -30% (highs/lows)."
    o, h, l = g.open.to_numpy(), g.high.to_numpy(), g.low.to_numpy()
    close_ts = list(g.ts + pd.Timedelta("5min"))  # a bar is seen when it closes
    fill_bar = 1
    tp, sl = o[fill_bar] * 2.0, o[fill_bar] * 0.7
    timer = g.ts.iloc[fill_bar] + pd.Timedelta("1h")  # set when the entry fills, at that bar's open
    for k in range(fill_bar, len(g)):
        if close_ts[k] >= timer or h[k] >= tp or l[k] <= sl:
            return [(0, k)]
    return [(0, None)]


def _recompute(name, g, notional):
    "Fills at the next bar's open with a 10 bps fee on notional: (entries, exits, pnl of closed + open trades)."
    dec = _pump_launch(g) if name == "pump_launch" else _decisions(name, g)
    o, last = g.open.to_numpy(), g.close.iloc[-1]
    entries, exits, pnl = [], [], 0.0
    for e, x in dec:
        if e + 1 >= len(g):
            continue  # decided on the last bar: never filled
        q = notional / (o[e + 1] * (1 + FEE))  # exact-in: the fee comes out of the notional
        entries.append(g.ts.iloc[e + 1])
        if x is not None and x + 1 < len(g):
            exits.append(g.ts.iloc[x + 1])
            pnl += q * o[x + 1] * (1 - FEE) - notional
        else:
            pnl += q * last - notional  # still open: marked at the last close
    return entries, exits, pnl


@pytest.mark.parametrize("universe", list(UNIVERSES))
@pytest.mark.parametrize("name", STRATEGIES)
def test_fill_bar_equals_pandas_recomputation(bars, user_settings, name, universe, memebot, tmp_path):
    """`memebot backtest --fill bar` with the shipped settings. Every entry is the risk limit `max_order_usd` (250):
    below both equal weight (2,000 or 10,000) and pump_launch's 5% of equity (500), and the limits on position (500)
    and gross exposure (2,000 for at most five 250 positions) never bind; 5m bars never trip the 60 s price-move
    breaker. So each symbol trades independently with 250 per entry, and pandas can recompute the run."""
    import json

    syms = UNIVERSES[universe]
    f = tmp_path / "binance_5m.parquet"
    bars[bars.symbol.isin(syms)].drop(columns=["tf", "source", "chain"]).rename(columns={"ts": "date"}).to_parquet(f)
    memebot("data", "import", f, "--tf", "5m", check=True)
    out = tmp_path / "bt.json"
    memebot(
        "backtest",
        "--strategy",
        name,
        "--symbols",
        ",".join(syms),
        "--tf",
        "5m",
        "--fill",
        "bar",
        "--json",
        out,
        "--no-tearsheet",
        check=True,
    )
    doc = json.loads(out.read_text())
    assert doc["risk"] == "risk engine ([risk] limits)" and doc["orders"]["rejected"] == 0 and not doc["warnings"]
    assert doc["rejections"] == [] and doc["orders"]["submitted"] == doc["orders"]["filled"] + doc["orders"]["open"]
    notional = user_settings.risk.max_order_usd * (1 - 1e-9)
    want_in, want_out, want_pnl = [], [], 0.0
    for s in syms:
        e, x, p = _recompute(name, bars[bars.symbol == s].reset_index(drop=True), notional)
        want_in += [(s, t) for t in e]
        want_out += [(s, t) for t in x]
        want_pnl += p
    tr = doc["trades"]
    got_in = sorted((t["symbol"], pd.Timestamp(t["entry_time"])) for t in tr)
    got_out = sorted((t["symbol"], pd.Timestamp(t["exit_time"])) for t in tr if t["exit_time"])
    assert len(got_in) >= (1 if name == "pump_launch" else 20)
    assert got_in == sorted(want_in) and got_out == sorted(want_out)
    assert doc["metrics"]["total_return"] == pytest.approx(want_pnl / CASH, rel=1e-9, abs=1e-12)


# ---- the model-driven strategy: backtest == paper too ---------------------------------------------------------------
def test_model_signal_backtest_equals_paper(shared, user_settings, tmp_path, monkeypatch):
    """model_signal with a registered champion (logistic regression on 1h bars of two memecoins,
    BTC and SOL as context):
    the same decisions, fills and equity in the backtest and in a paper node replaying the bars (default fill)."""
    from memebot.config import reset_settings
    from memebot.features import make_dataset
    from memebot.models.base import make_model
    from memebot.models.registry import log_and_register, promote
    from memebot.exec import make_broker

    uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    monkeypatch.setenv("MEMEBOT_AI_TRACKING_URI", uri)
    reset_settings()
    syms = ["WIF/USDT", "PEPE/USDT", "BTC/USDT", "SOL/USDT"]
    df = pd.read_parquet(
        shared / "data/binance_memecoins/ohlcv_1h_2025-01_2025-04.parquet", filters=[("symbol", "in", syms)]
    ).rename(columns={"date": "ts"})
    train = pd.concat([g.iloc[:900] for _, g in df.groupby("symbol")], ignore_index=True)
    test = pd.concat([g.iloc[900:1060] for _, g in df.groupby("symbol")], ignore_index=True)
    ds = make_dataset(train, h=1, fee_bps=10)
    v = log_and_register(
        make_model("logreg").fit(ds.X, ds.y),
        "parity-ms",
        uri,
        {"family": "logreg"},
        ds.fingerprint,
        metrics_={},
        reference_X=ds.X,
    )
    promote("parity-ms", v, uri)
    try:
        st = Store(":memory:")
        upsert(st, "candles", test.assign(tf="1h", source="binance", chain="cex"))
        mk = lambda: get_strategy(
            "model_signal", model="parity-ms", enter=0.52, exit=0.5, refresh_s=0, tracking_uri=uri, warmup=64
        )
        sb = make_broker("auto", "cex")
        bt = Engine(
            mk(),
            CandleFeed.from_store(st, syms, "1h"),
            SimulatedBroker(sb.model, sb.fees),
            risk=RiskEngine.from_settings(user_settings, watch_kill_file=False),
            cash=CASH,
        ).run()
        led = Ledger(st, "parity-ms", "cex", "paper")
        node = TradingNode(
            mk(),
            BarSlices.from_replay(ReplayFeed(st, "candles", syms, "1h")),
            PaperBroker(sb.model, sb.fees, ledger=led),
            led,
            run_id="parity-ms",
            settings=user_settings,
            cash=CASH,
        )
        pr = asyncio.run(node.run(handle_signals=False))
    finally:
        reset_settings()
    assert len(bt.fills) >= 4 and bt.order_stats()["rejected"] == 0
    assert [_key(f) for f in pr.fills] == [_key(f) for f in bt.fills]
    assert round(pr.final_equity, 2) == round(bt.final_equity, 2) and node.consistency() == []
