"""The risk engine as the node meets it: a real flash crash, the daily loss limit, the kill switch from another
process, bad orders, rate limit, stale feed and failed orders."""

import json, math, os, subprocess, sys
import pandas as pd
import pytest
from structlog.testing import capture_logs
from memebot.core import (
    NS,
    OrderType,
    Candle,
    Tick,
    PoolUpdate,
    Order,
    OrderStatus,
    Fill,
    Portfolio,
    Side,
    Chain,
    Quote,
    ts_from,
)
from memebot.config import RiskConfig, load_settings
from memebot.obs import REGISTRY
from memebot.risk import RiskEngine, TradingState, Halted, state_file_for, read_kill_file, resume_marker

T0 = ts_from("2025-01-06T09:00:00Z")


def rejections(reason):
    return REGISTRY.get_sample_value("memebot_risk_rejections_total", {"reason": reason}) or 0.0


def engine(**limits):
    return RiskEngine(RiskConfig(**limits))


def filled(risk, pf, order, price, ts):
    "Let `order` through risk, fill it completely and book the fill (what the engine does)."
    assert risk.check(order, pf, ts) is None
    f = Fill(order.client_id, ts, order.symbol, order.side, order.qty, price)
    pf.apply(f)
    risk.on_fill(f, pf)
    return f


# ---- a real flash crash ---------------------------------------------------------------------------------------


def act_candles(shared):
    df = pd.read_parquet(
        shared / "data/binance_memecoins/ohlcv_5m_2025-01_2025-04.parquet", filters=[("symbol", "==", "ACT/USDT")]
    ).sort_values("date")
    df = df[df.date < "2025-04-01 12:00"]
    return [
        Candle(ts_from(r.date), r.open, r.high, r.low, r.close, r.volume, "ACT/USDT", "5m", "binance")
        for r in df.itertuples()
    ]


def test_flash_crash_halts_within_one_event(shared):
    """ACT/USDT on Binance, 2025-04-01 10:30 UTC: -37% inside one 5-minute bar. Three months of ordinary (memecoin)
    volatility before it trade normally; the crash bar halts trading before the strategy can act on it (global scope).
    """
    events = act_candles(shared)
    crash = next(i for i, e in enumerate(events) if e.ts == ts_from("2025-04-01T10:30:00Z"))
    risk = RiskEngine(
        RiskConfig(
            circuit_price_move_pct=30,
            circuit_price_window_s=300,
            max_order_usd=250,
            max_orders_per_minute=1000,
            max_open_orders=1000,
            circuit_price_move_scope="global",
        )
    )
    halts = []
    risk.add_halt_listener(halts.append)
    pf = Portfolio(cash=10_000.0)
    first_rejected = None
    for i, ev in enumerate(events):
        risk.on_market(ev)  # the engine feeds risk first, then the strategy
        o = Order("ACT/USDT", Side.BUY, 10.0 / ev.close, ts=ev.ts)  # a 10 USD buy on every bar
        r = risk.check(o, pf, ev.ts)  # (not filled here: we only probe the gate)
        if r is not None and first_rejected is None:
            first_rejected = (i, r)
    assert crash > 25_000  # Jan-Mar traded without a false trip
    assert first_rejected is not None and first_rejected[0] == crash, first_rejected
    assert first_rejected[1].startswith("halted: circuit: price_move: ACT/USDT moved 37.2%")
    assert risk.state is TradingState.HALTED and len(halts) == 1 and halts[0].ts == events[crash].ts
    assert [h.new for h in risk.history] == [TradingState.HALTED]
    # resume is explicit; afterwards the next bar trades again
    risk.resume()
    assert risk.check(Order("ACT/USDT", Side.BUY, 10.0), pf, events[-1].ts) is None


def test_flash_crash_pauses_only_that_token_by_default(shared):
    """The same crash with the default symbol scope: ACT/USDT takes no entries from the crash bar until the move has
    left the window, the stop-loss (a sell of the held ACT) passes on the crash bar, BONK trades on, nothing halts."""
    events = act_candles(shared)
    crash = next(i for i, e in enumerate(events) if e.ts == ts_from("2025-04-01T10:30:00Z"))
    risk = RiskEngine(RiskConfig(circuit_price_move_pct=30, circuit_price_window_s=300, max_orders_per_minute=1000))
    assert risk.cfg.circuit_price_move_scope == "symbol"
    halts = []
    risk.add_halt_listener(halts.append)
    pf = Portfolio(cash=10_000.0)
    pf.apply(Fill("held", events[0].ts, "ACT/USDT", Side.BUY, 10.0, events[0].close))
    first = None
    for i, ev in enumerate(events[: crash + 3]):
        risk.on_market(ev)
        risk.on_market(Tick(ev.ts, "BONK", 2e-5))
        r = risk.check(Order("ACT/USDT", Side.BUY, 10.0 / ev.close), pf, ev.ts)
        if r is not None and first is None:
            first = (i, r)
            assert risk.check(Order("ACT/USDT", Side.SELL, 10.0), pf, ev.ts) is None  # the exit passes
            assert risk.check(Order("BONK", Side.BUY, 1e6), pf, ev.ts) is None  # other tokens trade
            assert risk.buying_power("ACT/USDT", pf, ev.ts) == 0.0
    assert (
        first is not None and first[0] == crash and first[1].startswith("price_move: ACT/USDT takes no entries for now")
    )
    assert risk.state is TradingState.ACTIVE and halts == [] and risk.history == type(risk.history)(maxlen=1000)
    later = events[crash + 2].ts + 301 * NS  # the crash bars have left the 300 s window
    c = events[crash + 2].close
    risk.on_market(Candle(later, c, c, c, c, 1.0, "ACT/USDT", "5m"))
    assert risk.check(Order("ACT/USDT", Side.BUY, 10.0), pf, later) is None


def test_pumpfun_rug_halts_on_the_rug_candle(shared):
    """A pump.fun token's hourly GeckoTerminal candles: the breaker trips on the first candle whose range reaches the
    threshold, never earlier, and with the window shorter than the bar only closes count."""
    g = pd.read_parquet(shared / "data/pumpfun/geckoterminal_ohlcv_1h.parquet")
    mint, rows = next((m, x) for m, x in g.sort_values("ts").groupby("mint") if len(x) > 48)
    evs = [
        Candle(ts_from(int(r.ts)), r.open, r.high, r.low, r.close, r.volume_usd, mint, "1h", "geckoterminal")
        for r in rows.itertuples()
    ]
    rng = [(e.high - e.low) / e.high for e in evs]
    expect = next(i for i, x in enumerate(rng) if x >= 0.5)
    risk = engine(circuit_price_move_pct=50, circuit_price_window_s=3600, circuit_price_move_scope="global")
    got = None
    for i, e in enumerate(evs):
        risk.on_market(e)
        if risk.state is TradingState.HALTED:
            got = i
            break
    assert got == expect
    paused = engine(circuit_price_move_pct=50, circuit_price_window_s=3600)  # symbol scope: the same candle pauses
    first = next(i for i, e in enumerate(evs) if (paused.on_market(e), mint in paused.paused)[1])
    assert first == expect and paused.state is TradingState.ACTIVE
    # window shorter than the bar: only closes count, and closes an hour apart are outside a 60 s window
    risk = engine(circuit_price_move_pct=50, circuit_price_window_s=60, circuit_price_move_scope="global")
    for e in evs:
        risk.on_market(e)
    assert risk.state is TradingState.ACTIVE


# ---- daily loss limit ----------------------------------------------------------------------------------------


def test_daily_loss_blocks_entries_allows_exits_resets_at_configured_time():
    risk = engine(
        max_daily_loss_limit=100,
        daily_reset_utc="13:30",
        max_order_usd=1000,
        max_position_usd=2000,
        circuit_stale_feed_s=600,
    )
    pf = Portfolio(cash=5_000.0)
    risk.on_market(Tick(T0, "WIF", 2.0, source="jupiter"))
    filled(risk, pf, Order("WIF", Side.BUY, 400), 2.0, T0)  # 800 USD long
    sold = filled(risk, pf, Order("WIF", Side.SELL, 100), 1.9, T0 + 60 * NS)  # realized -10
    assert pf.realized_pnl() == pytest.approx(-10)
    risk.on_market(Tick(T0 + 120 * NS, "WIF", 1.75, source="jupiter"))  # unrealized -75: -85 in all
    assert risk.state is TradingState.ACTIVE and risk.daily_pnl == pytest.approx(-85)
    risk.on_market(Tick(T0 + 180 * NS, "WIF", 1.70, source="jupiter"))  # -10 - 90 = -100: limit
    assert risk.state is TradingState.REDUCING and "daily_loss" in risk.reason()
    before = rejections("reducing")
    r = risk.check(Order("WIF", Side.BUY, 10), pf, T0 + 200 * NS)
    assert r.startswith("reducing: exits only") and rejections("reducing") == before + 1
    assert risk.check(Order("BONK", Side.BUY, 10, price=1.0), pf, T0 + 200 * NS).startswith("reducing")
    assert risk.check(Order("WIF", Side.SELL, 301), pf, T0 + 200 * NS).startswith(
        "reducing"
    )  # more than held: not an exit
    filled(risk, pf, Order("WIF", Side.SELL, 150), 1.70, T0 + 210 * NS)  # exits pass
    assert risk.state is TradingState.REDUCING
    # 09:00 -> 13:29 UTC same day: still reducing; 13:30 UTC: reset
    risk.on_market(Tick(ts_from("2025-01-06T13:29:59Z"), "WIF", 1.70, source="jupiter"))
    assert risk.state is TradingState.REDUCING
    risk.on_market(Tick(ts_from("2025-01-06T13:30:00Z"), "WIF", 1.70, source="jupiter"))
    assert risk.state is TradingState.ACTIVE and risk.daily_pnl == 0
    assert risk.check(Order("WIF", Side.BUY, 10), pf, ts_from("2025-01-06T13:30:01Z")) is None
    assert [(h.new, h.kind) for h in risk.history] == [
        (TradingState.REDUCING, "daily_loss"),
        (TradingState.ACTIVE, "daily_loss"),
    ]


# ---- kill switch across processes ------------------------------------------------------------------------------


class PendingOrders:
    "A minimal order book of submitted orders; as a halt listener it cancels them (as the node's OMS does)."

    def __init__(self, risk):
        self.risk, self.orders, self.halts, self.flattened = risk, {}, [], []
        risk.add_halt_listener(self.on_halt)

    def submit(self, order, pf, now_ns):
        r = self.risk.check(order, pf, now_ns)
        if r:
            order.transition(OrderStatus.REJECTED, r)
            return r
        order.transition(OrderStatus.SUBMITTED)
        self.orders[order.client_id] = order
        pf.accept(order)
        self.pf = pf

    def on_halt(self, h: Halted):
        self.halts.append(h)
        for o in list(self.orders.values()):
            o.transition(OrderStatus.CANCELLED, f"risk halt: {h.reason}")
            self.pf.finish(o)
            self.risk.on_order_closed(o)
            del self.orders[o.client_id]


def test_kill_from_cli_halts_running_engine_and_cancels_pending(memebot, cli_env, tmp_path):
    kill_file = tmp_path / "KILL"
    assert cli_env["MEMEBOT_LIVE_KILL_FILE"] == str(kill_file)
    s = load_settings(cli_env["MEMEBOT_SETTINGS"], env={"MEMEBOT_LIVE_KILL_FILE": str(kill_file)})
    risk = RiskEngine.from_settings(s)
    assert risk.kill_file == kill_file and risk.state_file == state_file_for(kill_file)
    oms = PendingOrders(risk)
    pf = Portfolio(cash=10_000.0)
    risk.on_market(Tick(T0, "BONK", 2e-5, source="jupiter"))
    filled(risk, pf, Order("BONK", Side.BUY, 5_000_000), 2e-5, T0)  # 100 USD held
    pending = [Order("BONK", Side.BUY, 1_000_000, type=OrderType.LIMIT, price=1.9e-5) for _ in range(3)]
    for o in pending:
        assert oms.submit(o, pf, T0) is None
    assert risk.open_orders() == 3 and all(o.status is OrderStatus.SUBMITTED for o in pending)

    r = memebot("kill", "--reason", "rug on BONK", "--flatten", check=True)
    assert "killed: rug on BONK" in r.stdout and read_kill_file(kill_file)["flatten"] is True

    rej = oms.submit(Order("BONK", Side.BUY, 1_000_000), pf, T0 + NS)  # the very next check
    assert rej == "halted: kill: kill file: rug on BONK"
    assert [h.kind for h in oms.halts] == ["kill"] and oms.halts[0].flatten
    assert all(o.status is OrderStatus.CANCELLED and "rug on BONK" in o.reason for o in pending)
    assert risk.open_orders() == 0 and not oms.orders
    exits = risk.flatten_orders(pf, T0 + NS)  # flatten: exits still pass
    assert [(o.side, o.qty) for o in exits] == [(Side.SELL, 5_000_000)] and risk.check(exits[0], pf, T0 + NS) is None

    st = json.loads(memebot("risk", "status", "--json", check=True).stdout)
    assert st["killed"] and st["node"]["state"] == "halted" and st["node"]["pid"] == os.getpid()
    # a new process starts halted: the kill persists
    code = "from memebot.risk import RiskEngine; r = RiskEngine.from_settings(); print(r.state.value, '|', r.reason())"
    out = subprocess.run([sys.executable, "-c", code], env=cli_env, capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "halted | kill: kill file: rug on BONK"

    r = memebot("resume")  # needs --confirm
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "--confirm" in r.stderr
    assert kill_file.exists() and risk.check(Order("BONK", Side.BUY, 1_000), pf, T0 + 2 * NS).startswith("halted")
    memebot("resume", "--confirm", check=True)
    assert not kill_file.exists() and resume_marker(kill_file).exists()
    assert risk.check(Order("BONK", Side.BUY, 1_000_000), pf, T0 + 3 * NS) is None
    assert risk.state is TradingState.ACTIVE
    assert [h.new for h in risk.history] == [TradingState.HALTED, TradingState.ACTIVE]
    assert json.loads(state_file_for(kill_file).read_text())["state"] == "active"


def test_cli_resume_clears_circuit_halt_in_running_engine(memebot, cli_env, tmp_path):
    risk = RiskEngine(RiskConfig(circuit_max_failed_orders=2), kill_file=tmp_path / "KILL", kill_check_interval_s=0)
    for _ in range(2):
        risk.on_order_failed(Order("WIF", Side.BUY, 1))
    assert risk.state is TradingState.HALTED and "failed_orders" in risk.reason()
    memebot("resume", "--confirm", check=True)
    risk.heartbeat(T0)
    assert risk.state is TradingState.ACTIVE and risk.failed_in_row == 0


def test_kill_in_process_and_file_touch(tmp_path):
    kf = tmp_path / "KILL"
    a = RiskEngine(RiskConfig(), kill_file=kf, kill_check_interval_s=0)
    b = RiskEngine(RiskConfig(), kill_file=kf, kill_check_interval_s=0)
    got = []
    b.add_halt_listener(got.append)
    a.kill("operator", flatten=False)
    assert a.state is TradingState.HALTED and kf.exists()
    b.heartbeat(T0)  # another engine on the same file halts on its next call
    assert b.state is TradingState.HALTED and got[0].reason == "kill file: operator" and not got[0].flatten
    a.resume()
    b.heartbeat(T0 + NS)
    assert a.state is b.state is TradingState.ACTIVE
    kf.touch()  # a bare `touch KILL` halts too
    b.heartbeat(T0 + 2 * NS)
    assert b.state is TradingState.HALTED
    # a listener that raises does not stop the halt or the other listeners
    c = RiskEngine(RiskConfig())
    seen = []
    c.add_halt_listener(lambda h: 1 / 0)
    c.add_halt_listener(seen.append)
    c.kill("x")
    assert c.state is TradingState.HALTED and len(seen) == 1


# ---- bad orders and limits ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "order, code",
    [
        (Order("WIF", Side.BUY, -1.0), "bad_qty"),
        (Order("WIF", Side.BUY, 0.0), "bad_qty"),
        (Order("WIF", Side.BUY, float("nan")), "bad_qty"),
        (Order("WIF", Side.BUY, float("inf")), "bad_qty"),
        (Order("WIF", Side.BUY, 10, type=OrderType.LIMIT, price=float("nan")), "bad_price"),
        (Order("WIF", Side.BUY, 10, type=OrderType.LIMIT, price=-2.0), "bad_price"),
        (Order("NOSUCHTOKEN", Side.BUY, 10), "unknown_token"),
        (Order("", Side.BUY, 10), "unknown_token"),
        (Order("WIF", Side.BUY, 200), "max_order"),  # 400 USD > 250
        (Order("WIF", Side.BUY, 10, max_slippage_bps=5_000), "max_slippage"),
    ],
)
def test_bad_orders_rejected_with_reason(order, code):
    risk = engine()
    risk.on_market(Tick(T0, "WIF", 2.0))
    before = rejections(code)
    with capture_logs() as logs:
        r = risk.check(order, Portfolio(cash=1_000.0), T0)
    assert r is not None and r.startswith(code + ":"), r
    assert rejections(code) == before + 1
    assert [l["reason"] for l in logs if l["event"] == "risk_rejected"] == [r]
    assert risk.open_orders() == 0


def test_position_exposure_liquidity_quote_and_safety_limits():
    risk = engine(
        max_order_usd=250,
        max_position_usd=500,
        max_gross_exposure_usd=700,
        min_pool_liquidity_usd=10_000,
        max_slippage_bps=300,
    )
    pf = Portfolio(cash=10_000.0)
    for s, p in (("A", 1.0), ("B", 1.0)):
        risk.on_market(Tick(T0, s, p))
    for _ in range(2):
        filled(risk, pf, Order("A", Side.BUY, 200), 1.0, T0)  # 400 USD of A
    assert risk.check(Order("A", Side.BUY, 150), pf, T0).startswith("max_position")  # 550 > 500
    assert risk.check(o := Order("A", Side.BUY, 100), pf, T0) is None
    pf.accept(o)  # open: it counts toward the position
    assert risk.check(Order("A", Side.BUY, 50), pf, T0).startswith("max_position")
    assert risk.buying_power("A", pf, T0) == 0.0 and risk.buying_power("B", pf, T0) == 200.0
    assert risk.check(Order("B", Side.BUY, 250), pf, T0).startswith("max_gross_exposure")  # 400 + 100 + 250 > 700
    assert risk.check(Order("B", Side.BUY, 150), pf, T0) is None
    # pool liquidity from PoolUpdate: 2 x 4,000 USDC = 8,000 < 10,000
    risk.symbol_of = {"PoolC": "C"}.get
    risk.on_market(PoolUpdate(T0, Chain.SOLANA, "PoolC", base_reserve=1_000_000, quote_reserve=4_000))
    assert risk.check(Order("C", Side.BUY, 1000), pf, T0).startswith("min_liquidity: C pool liquidity 8,000")
    risk.on_market(
        PoolUpdate(T0 + NS, Chain.SOLANA, "PoolC", base_reserve=1_500_000, quote_reserve=6_000)
    )  # 12,000 USD, price 0.004
    # slippage against the quote and the expected price
    q = Quote(T0, "jupiter", Chain.SOLANA, "USDC", "C", 100_000_000, 10, price_impact_bps=450)
    assert risk.check(Order("C", Side.BUY, 10), pf, T0 + NS, quote=q).startswith("max_slippage: quote price impact 450")
    assert risk.check(Order("C", Side.BUY, 10), pf, T0 + NS, expected_price=0.0042).startswith("max_slippage: expected")
    assert risk.check(Order("C", Side.BUY, 10), pf, T0 + NS, expected_price=float("nan")).startswith("bad_price")
    assert risk.check(Order("C", Side.BUY, 10), pf, T0 + NS, expected_price=0.00401) is None
    # token safety: the verdict hook, cached, failing closed
    calls = []

    def verdict(sym):
        calls.append(sym)
        if sym == "BAD":
            raise ConnectionError("rpc down")
        return sym != "RUG", ["freeze authority set"]

    risk2 = RiskEngine(RiskConfig(), safety=verdict)
    for s in ("RUG", "BAD", "OK"):
        risk2.on_market(Tick(T0, s, 1.0))
    assert risk2.check(Order("RUG", Side.BUY, 1), pf, T0) == "token_safety: RUG: freeze authority set"
    assert risk2.check(Order("RUG", Side.BUY, 1), pf, T0).startswith("token_safety") and calls.count("RUG") == 1
    assert risk2.check(Order("BAD", Side.BUY, 1), pf, T0).startswith(
        "token_safety: BAD: safety check failed: ConnectionError"
    )
    assert risk2.check(Order("OK", Side.BUY, 1), pf, T0) is None


def test_max_open_orders_and_order_closed():
    "Open orders are the portfolio's: the engine accepts them there and finishes them; the risk engine counts them."
    risk = engine(max_open_orders=2)
    risk.on_market(Tick(T0, "A", 1.0))
    pf = Portfolio(cash=1_000.0)
    o1, o2 = Order("A", Side.BUY, 1), Order("A", Side.BUY, 1)
    for o in (o1, o2):
        assert risk.check(o, pf, T0) is None
        pf.accept(o)
    assert risk.check(Order("A", Side.BUY, 1), pf, T0).startswith("max_open_orders: 2 open")
    assert risk.buying_power("A", pf, T0) == 0.0
    pf.finish(o1)
    risk.on_order_closed(o1)  # cancelled
    half = Fill(o2.client_id, T0, "A", Side.BUY, 0.5, 1.0)
    pf.apply(half)
    risk.on_fill(half, pf)
    assert risk.open_orders() == 1  # partially filled: still open
    assert risk.check(o3 := Order("A", Side.BUY, 1), pf, T0) is None
    pf.accept(o3)
    assert risk.check(Order("A", Side.BUY, 1), pf, T0).startswith("max_open_orders")


def test_rate_limit_uses_clock_time():
    risk = engine(max_orders_per_minute=5)
    risk.on_market(Tick(T0, "A", 1.0))
    pf = Portfolio(cash=1_000.0)
    for i in range(5):
        filled(risk, pf, Order("A", Side.BUY, 1), 1.0, T0 + i * NS)
    assert risk.check(Order("A", Side.BUY, 1), pf, T0 + 30 * NS).startswith("rate_limit: 5 orders in the last minute")
    risk.on_market(Tick(T0 + 59 * NS, "A", 1.0))
    assert risk.check(Order("A", Side.BUY, 1), pf, T0 + 59 * NS).startswith("rate_limit")
    risk.on_market(Tick(T0 + 61 * NS, "A", 1.0))
    assert risk.check(Order("A", Side.BUY, 1), pf, T0 + 61 * NS) is None  # the first two have aged out
    assert risk.check(Order("A", Side.BUY, 1), pf, T0 + 61 * NS) is None
    assert risk.check(Order("A", Side.BUY, 1), pf, T0 + 61 * NS).startswith("rate_limit")


def test_stale_feed_halts_then_recovers():
    risk = RiskEngine(RiskConfig(circuit_stale_feed_s=30), stale_on_check=True)
    pf = Portfolio(cash=1_000.0)
    halts = []
    risk.add_halt_listener(halts.append)
    risk.on_market(Tick(T0, "A", 1.0))
    assert risk.heartbeat(T0 + 30 * NS) is TradingState.ACTIVE
    assert risk.heartbeat(T0 + 31 * NS) is TradingState.HALTED and halts[0].kind == "stale_feed"
    assert risk.check(Order("A", Side.BUY, 1), pf, T0 + 32 * NS).startswith(
        "halted: stale_feed: no market event for 31.0s"
    )
    risk.on_market(Tick(T0 + 33 * NS, "A", 1.0))
    assert risk.state is TradingState.ACTIVE and risk.check(Order("A", Side.BUY, 1), pf, T0 + 33 * NS) is None
    # a check long after the last event trips it too (no heartbeat needed) -- only where asked for (the node)
    bt = engine(circuit_stale_feed_s=30)
    bt.on_market(Tick(T0, "A", 1.0))
    assert bt.check(Order("A", Side.BUY, 1), pf, T0 + 100 * NS) is None and bt.state is TradingState.ACTIVE
    assert risk.check(Order("A", Side.BUY, 1), pf, T0 + 100 * NS).startswith("halted: stale_feed")


def test_consecutive_failures_trip_and_fill_resets():
    risk = engine(circuit_max_failed_orders=3)
    risk.on_market(Tick(T0, "A", 1.0))
    pf = Portfolio(cash=1_000.0)
    orders = [Order("A", Side.BUY, 1) for _ in range(6)]
    for o in orders[:2]:
        assert risk.check(o, pf, T0) is None
        risk.on_order_failed(o)
    filled(risk, pf, orders[2], 1.0, T0)  # a success resets the streak
    for o in orders[3:5]:
        assert risk.check(o, pf, T0) is None
        risk.on_order_failed(o)
    assert risk.state is TradingState.ACTIVE and risk.failed_in_row == 2
    assert risk.check(orders[5], pf, T0) is None
    orders[5].reason = "blockhash expired"
    risk.on_order_failed(orders[5])
    assert (
        risk.state is TradingState.HALTED
        and "3 consecutive failed orders" in risk.reason()
        and "blockhash expired" in risk.reason()
    )
    assert risk.open_orders() == 0
    assert REGISTRY.get_sample_value("memebot_risk_state", {"engine": "risk"}) == 2


def test_cross_source_deviation():
    risk = engine(circuit_source_deviation_pct=5, circuit_price_window_s=60)
    risk.on_market(Tick(T0, "WIF", 2.00, source="jupiter"))
    risk.on_market(Tick(T0 + 10 * NS, "WIF", 2.08, source="dexscreener"))  # 4%: fine
    assert risk.state is TradingState.ACTIVE
    risk.on_market(Tick(T0 + 200 * NS, "WIF", 2.30, source="dexscreener"))  # jupiter's price is too old to compare
    assert risk.state is TradingState.ACTIVE
    risk.on_market(Tick(T0 + 210 * NS, "WIF", 2.10, source="jupiter"))  # 9.5% apart, seen from jupiter's side
    assert risk.state is TradingState.ACTIVE
    risk.on_market(Tick(T0 + 215 * NS, "WIF", 2.31, source="dexscreener"))  # and from dexscreener's: both live
    assert risk.state is TradingState.HALTED and "source_deviation: WIF" in risk.reason()


def test_a_venue_that_stopped_does_not_trip_the_source_breaker():
    "A pump.fun token graduating: the curve's last price, then only the new pool's, 7.6% lower by design."
    risk = engine(circuit_source_deviation_pct=5, circuit_price_window_s=60)
    risk.on_market(Tick(T0, "FROG", 4.109e-7, source="sim"))  # the curve's last trade
    for i in range(1, 20):
        risk.on_market(Tick(T0 + i * NS, "FROG", 3.818e-7 * (1 + 0.001 * i), source="sim:graduated"))
    assert risk.state is TradingState.ACTIVE


def test_price_move_breaker_matches_pandas_on_real_swaps(shared):
    """Real pump.fun swaps (first 300 s after launch, 18 tokens) as Swap events: the engine halts on exactly the swap
    where pandas' 60-second rolling high/low first spans 30 % — the O(1) window agrees with a brute-force reference."""
    from memebot.core import Swap

    sw = pd.read_parquet(shared / "data/pumpfun/swaps_first_300s.parquet")
    sw = sw[(sw.tokens > 0) & (sw.sol > 0)].sort_values(["mint", "ts"], kind="stable")
    checked = 0
    for mint, g in sw.groupby("mint"):
        g = g.reset_index(drop=True)
        px = g.sol / g.tokens
        s = pd.Series(px.values, index=pd.to_datetime(g.ts, unit="s"))
        hi, lo = s.rolling("60s", closed="both").max(), s.rolling("60s", closed="both").min()
        hit = ((hi - lo) >= 0.30 * hi).to_numpy()
        expect = int(hit.argmax()) if hit.any() else None
        risk = engine(circuit_price_move_pct=30, circuit_price_window_s=60, circuit_price_move_scope="global")
        paused = engine(circuit_price_move_pct=30, circuit_price_window_s=60)  # the default: symbol scope
        got = first_pause = None
        for i, r in enumerate(g.itertuples()):
            ev = Swap(
                ts_from(int(r.ts)), Chain.SOLANA, r.pool, Side(r.side), r.tokens, r.sol, r.trader, r.sig, source="chain"
            )
            risk.on_market(ev)
            paused.on_market(ev)
            if first_pause is None and r.pool in paused.paused:
                first_pause = i
            if risk.state is TradingState.HALTED:
                got = i
                break
        assert got == expect == first_pause, (mint, got, expect, first_pause)
        assert got is None or risk.reason().startswith("circuit: price_move")
        assert paused.state is TradingState.ACTIVE
        checked += expect is not None
    assert checked >= 10


def test_cli_kill_status_human_and_bad_args(memebot, tmp_path):
    r = memebot("kill", "--reason", "  ")
    assert (
        r.returncode == 2
        and r.stderr.strip() == "error: --reason: must not be empty"
        and not (tmp_path / "KILL").exists()
    )
    r = memebot("risk", "status", check=True)
    assert (
        "kill switch: off" in r.stdout
        and "no node has published a state yet" in r.stdout
        and "max_daily_loss_limit" in r.stdout
    )
    memebot("kill", check=True)  # defaults: reason and [risk] flatten_on_kill
    k = read_kill_file(tmp_path / "KILL")
    assert k["reason"] == "manual kill (memebot kill)" and k["flatten"] is False and k["by"] == "cli"
    r = memebot("risk", "status", check=True)
    assert "kill switch: ENGAGED: manual kill (memebot kill)" in r.stdout
    r = memebot("resume", "--confirm", check=True)
    assert "kill file removed" in r.stdout
    r = memebot("resume", "--confirm", check=True)
    assert "no kill file was present" in r.stdout
