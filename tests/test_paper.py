"""Paper node: parity with the backtest on real bars, crash safety under kill -9, risk behaviour on the node."""

import asyncio, json, math, os, random, re, signal, subprocess, sys
from pathlib import Path
import numpy as np, pandas as pd, pytest
from memebot.core import Candle, Feed, ListFeed, SimClock, Side, OrderStatus, OrderType, NS
from memebot.config import load_settings
from memebot.data.store import Store, upsert
from memebot.data.replay import ReplayFeed
from memebot.backtest import CandleFeed, Engine
from memebot.exec import SimulatedBroker, VolumeParticipation, FeeSchedule, BarFill
from memebot.exec.ledger import Ledger
from memebot.live import TradingNode, BarSlices, load_run
from memebot.exec.paper import PaperBroker
from memebot.risk import RiskEngine, TradingState, write_kill_file
from memebot.strategy import Strategy, get_strategy

DATA = "data/binance_memecoins/ohlcv_5m_2025-01_2025-04.parquet"
EXE = Path(sys.executable).parent / "memebot"


def _settings(tmp_path, **risk):
    ov = {
        "risk.max_order_usd": 1e9,
        "risk.max_position_usd": 1e9,
        "risk.max_gross_exposure_usd": 1e9,
        "risk.max_orders_per_minute": 100_000,
        "risk.max_open_orders": 1000,
    }
    ov.update({f"risk.{k}": v for k, v in risk.items()})
    return load_settings(None, env={"MEMEBOT_LIVE_KILL_FILE": str(tmp_path / "KILL")}, overrides=ov)


def _real(shared, symbols, n=None):
    df = pd.read_parquet(shared / DATA).rename(columns={"date": "ts"})
    df = df[df.symbol.isin(symbols)].sort_values(["ts", "symbol"])
    if n:
        df = df[df.ts < df.ts.min() + pd.Timedelta(minutes=5 * n)]
    return df.assign(tf="5m", source="binance", chain="cex")


def _run(node):
    return asyncio.run(node.run(handle_signals=False))


def _key(f):
    return (f.ts, f.symbol, f.side.value, round(f.qty, 9), round(f.price, 12), round(f.fee, 12))


# ---- parity ----------------------------------------------------------------------------------------------------------
def test_parity_backtest_vs_paper_replay(shared, tmp_path):
    "Backtest over stored bars == paper node over a ReplayFeed of them: identical fills (3 symbols, real data)."
    syms = ["1000CAT/USDT", "BONK/USDT", "ACT/USDT"]
    st = Store(":memory:")
    upsert(st, "candles", _real(shared, syms, n=6000))
    model = lambda: VolumeParticipation(10.0, 0.1, 10.0)
    strat = lambda: get_strategy("ema_cross", {"fast": 8, "slow": 21, "size": 0.02})
    bt = Engine(
        strat(),
        CandleFeed.from_store(st, syms, "5m"),
        SimulatedBroker(model(), FeeSchedule(0.01)),
        cash=10_000,
        risk=RiskEngine.from_settings(_settings(tmp_path), watch_kill_file=False),
    ).run()
    led = Ledger(st, "parity", "cex", "paper")
    feed = BarSlices.from_replay(ReplayFeed(st, "candles", syms, "5m"))
    node = TradingNode(
        strat(),
        feed,
        PaperBroker(model(), FeeSchedule(0.01), ledger=led),
        led,
        run_id="parity",
        settings=_settings(tmp_path),
        cash=10_000,
    )
    pr = _run(node)
    assert len(bt.fills) > 100 and node.status()["rejected"] == 0
    assert [_key(f) for f in pr.fills] == [_key(f) for f in bt.fills]
    assert [_key(f) for f in led.fills()] == sorted(_key(f) for f in bt.fills)  # the ledger holds the same fills
    assert abs(pr.final_equity - bt.final_equity) < 1e-6 and node.consistency() == []


# ---- crash safety ----------------------------------------------------------------------------------------------------
def _ledger_rows(path, run_id):
    "Orders, fills, positions and the run record of `run_id`, from its own ledger file beside the market store."
    path = Path(path).parent / "runs" / f"{run_id}.duckdb"
    if not path.exists():
        return [], [], {}, None
    st = Store(path)
    try:
        orders = (
            st.cursor()
            .execute(
                "SELECT client_id, symbol, side, qty, status FROM orders WHERE run_id=? ORDER BY client_id", [run_id]
            )
            .fetchall()
        )
        fills = (
            st.cursor()
            .execute(
                "SELECT fill_id, client_id, epoch_ns(ts), symbol, side, qty, price, fee FROM fills WHERE run_id=? ORDER"
                " BY fill_id",
                [run_id],
            )
            .fetchall()
        )
        pos = dict(st.cursor().execute("SELECT symbol, qty FROM positions WHERE run_id=?", [run_id]).fetchall())
        run = load_run(st, run_id)
    finally:
        st.close()
    return orders, fills, pos, run


def _strip(rows, run_id, idx):
    "Rows with the run-id prefix removed from the id columns."
    n = len(run_id) + 1
    return [tuple(v[n:] if k in idx else v for k, v in enumerate(r)) for r in rows]


def _same(f, r):
    return f[:5] == r[:5] and f[5:] == pytest.approx(r[5:], rel=1e-12)


def test_crash_safety_kill9(shared, cli_env, tmp_path):
    "kill -9 the paper node at random moments (20 trials): no duplicate order, no lost fill, positions == sum of fills."
    store = tmp_path / "store.duckdb"
    with Store(store) as st:
        upsert(st, "candles", _real(shared, ["1000CAT/USDT"], n=800))
    env = dict(
        cli_env,
        MEMEBOT_RISK_MAX_ORDER_USD="1e9",
        MEMEBOT_RISK_MAX_POSITION_USD="1e9",
        MEMEBOT_RISK_MAX_GROSS_EXPOSURE_USD="1e9",
        MEMEBOT_LIVE_HEARTBEAT_SECONDS="0.2",
    )
    args = [
        "paper",
        "--strategy",
        "ema_cross",
        "--param",
        "fast=3",
        "--param",
        "slow=8",
        "--param",
        "size=0.02",
        "--symbols",
        "1000CAT/USDT",
        "--tf",
        "5m",
        "--no-dashboard",
    ]
    ref = subprocess.run([EXE, *args, "--run-id", "ref"], env=env, capture_output=True, text=True, timeout=300)
    assert ref.returncode == 0, ref.stderr[-2000:]
    r_orders, r_fills, r_pos, _ = _ledger_rows(store, "ref")
    assert len(r_fills) >= 25
    r_orders = {o[0]: o for o in _strip(r_orders, "ref", (0,))}
    r_fills = {f[0]: f for f in _strip(r_fills, "ref", (0, 1))}
    rng = random.Random(6)
    kills, seen = 0, []
    for trial in range(40):
        if kills >= 20:
            break
        _, _, _, run = _ledger_rows(store, "crash")
        assert run is None or run["status"] != "finished", f"the run finished after only {kills} kills"
        # kill once the node reports a random number of further events (its status lines): 20 trials of at most 30
        # events each stay short of the 800 bars, so the run cannot finish before the last kill
        target = (run["events"] or 0 if run is not None else 0) + rng.randint(5, 30)
        cmd = [EXE, *args, "--run-id", "crash", "--speed", "3000"] + (["--resume"] if run is not None else [])
        p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        for line in p.stdout:
            m = re.search(r" events=(\d+) ", line)
            if m and int(m.group(1)) >= target:
                p.send_signal(signal.SIGKILL)
                kills += 1
                break
        p.wait()
        p.stdout.close()
        orders, fills, pos, run = _ledger_rows(store, "crash")
        orders = _strip(orders, "crash", (0,))
        fills = _strip(fills, "crash", (0, 1))
        assert len({o[0] for o in orders}) == len(orders)
        for o in orders:  # no order the uncrashed run did not make (no duplicates, no strays)
            assert o[0] in r_orders and o[1:3] == r_orders[o[0]][1:3], o
        for f in fills:  # every fill is one the uncrashed run made, booked once
            assert f[0] in r_fills and _same(f, r_fills[f[0]]), (f, r_fills.get(f[0]))
        seen.append((len(orders), len(fills)))
        sums = {}
        for f in fills:
            sums[f[3]] = sums.get(f[3], 0.0) + (f[5] if f[4] == "buy" else -f[5])
        for s in set(sums) | set(pos):
            assert abs(sums.get(s, 0.0) - pos.get(s, 0.0)) < 1e-6, (s, sums, pos)
    assert kills >= 20
    mid = {x for x in seen if 0 < x[1] < len(r_fills)}
    assert len(mid) >= 3, seen  # the kills landed at many different points of the run
    fin = subprocess.run(
        [EXE, *args, "--run-id", "crash", "--resume", "--speed", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert fin.returncode == 0, fin.stderr[-2000:]
    orders, fills, pos, run = _ledger_rows(store, "crash")
    assert run["status"] == "finished"
    fills = _strip(fills, "crash", (0, 1))
    assert sorted(f[0] for f in fills) == sorted(r_fills)  # no fill lost, none extra
    assert all(_same(f, r_fills[f[0]]) for f in fills)
    assert len(orders) == len(r_orders)
    assert pos == pytest.approx(r_pos)
    print(
        f"kills: {kills}, (orders, fills) after each: {seen}, reference: {len(r_orders)} orders, {len(r_fills)} fills"
    )


# ---- risk on the node ------------------------------------------------------------------------------------------------
class BuyEveryBar(Strategy):
    "Test strategy: buy `qty` on every bar."

    name = "buy_every_bar_t"
    version = "1"

    def on_bar(self, ctx, bars):
        for s in bars.symbols:
            ctx.buy(s, 1.0)


def _candles(closes, sym="AAA", tf="1m", lows=None, t0=1_735_689_600 * NS):
    step = 60 * NS if tf == "1m" else 300 * NS
    out = []
    for i, c in enumerate(closes):
        o = closes[i - 1] if i else c
        lo = lows[i] if lows is not None and lows[i] is not None else min(o, c) * 0.999
        out.append(Candle(t0 + i * step, o, max(o, c) * 1.001, lo, c, 1e6, sym, tf, "test", "cex"))
    return out


def test_flash_crash_halts_within_one_event(tmp_path):
    "A replayed flash crash (one 1m bar whose low is 45% under its open) halts the node at that very bar."
    closes = [100.0] * 30 + [60.0] + [61.0] * 10
    lows = [None] * 30 + [55.0] + [None] * 10
    st = Store(":memory:")
    df = pd.DataFrame(
        [
            dict(
                ts=pd.Timestamp(c.ts, tz="UTC"),
                symbol=c.symbol,
                tf=c.tf,
                source=c.source,
                chain="cex",
                open=c.open,
                high=c.high,
                low=c.low,
                close=c.close,
                volume=c.volume,
            )
            for c in _candles(closes, lows=lows)
        ]
    )
    upsert(st, "candles", df)
    led = Ledger(st, "crash", "cex", "paper")
    feed = BarSlices.from_replay(ReplayFeed(st, "candles", ["AAA"], "1m"))
    node = TradingNode(
        BuyEveryBar(),
        feed,
        ledger=led,
        run_id="crash",
        settings=_settings(tmp_path, circuit_price_move_scope="global"),
        cash=100_000,
    )
    res = _run(node)
    crash_close = int(df.ts.iloc[30].value) + 60 * NS
    assert node.risk.state is TradingState.HALTED and "price_move" in node.risk.reason()
    before = [o for o in res.orders if o.ts < crash_close]
    after = [o for o in res.orders if o.ts >= crash_close]
    assert len(before) == 30 and all(o.status is OrderStatus.FILLED for o in before)
    assert len(after) == 11 and all(
        o.status is OrderStatus.REJECTED and o.reason.startswith("halted: circuit") for o in after
    )
    assert not led.open_orders()
    # the default scope pauses entries in the token that moved, for the breaker's window, and never halts the node
    led = Ledger(st, "crash2", "cex", "paper")
    node = TradingNode(
        BuyEveryBar(),
        BarSlices.from_replay(ReplayFeed(st, "candles", ["AAA"], "1m")),
        ledger=led,
        run_id="crash2",
        settings=_settings(tmp_path, max_daily_loss_limit=0),
        cash=100_000,
    )
    res = _run(node)
    after = [o for o in res.orders if o.ts >= crash_close]
    assert node.risk.state is TradingState.ACTIVE and len(after) == 11
    assert after[0].status is OrderStatus.REJECTED and after[0].reason.startswith("price_move: AAA takes no entries")
    assert after[-2].status is OrderStatus.FILLED  # a minute later the move has left the window


class EntryThenExit(Strategy):
    "Test strategy: buy 10 at bar 0, try to add 1 on every later bar, and sell 5 at bar `exit_at`."

    name = "entry_exit_t"
    version = "1"
    exit_at = 8

    def on_start(self, ctx):
        self.n = 0

    def on_bar(self, ctx, bars):
        if self.n == 0:
            ctx.buy("AAA", 10.0)
        elif self.n == self.exit_at:
            ctx.sell("AAA", 5.0, tag="exit")
        else:
            ctx.buy("AAA", 1.0, tag="add")
        self.n += 1


def test_daily_loss_blocks_entries_allows_exits(tmp_path):
    "After the daily loss limit is hit (REDUCING), new entries are rejected and exits still fill."
    closes = [100.0, 100.0, 95.0, 90.0, 85.0, 80.0, 80.0, 80.0, 80.0, 80.0, 80.0]
    s = _settings(tmp_path, max_daily_loss_limit=150.0, circuit_price_move_pct=90.0)
    led = Ledger(Store(":memory:"), "dl", "cex", "paper")
    node = TradingNode(
        EntryThenExit(), ListFeed(_candles(closes), SimClock()), ledger=led, run_id="dl", settings=s, cash=10_000
    )
    res = _run(node)
    assert node.risk.state is TradingState.REDUCING and "daily loss" in node.risk.reason()
    adds = [o for o in res.orders if o.tag == "add"]
    assert any(o.status is OrderStatus.FILLED for o in adds)  # before the limit: entries pass
    blocked = [o for o in adds if o.status is OrderStatus.REJECTED]
    assert blocked and all(o.reason.startswith("reducing") for o in blocked)
    ex = [o for o in res.orders if o.tag == "exit"]
    assert len(ex) == 1 and ex[0].status is OrderStatus.FILLED and ex[0].ts > blocked[0].ts
    assert led.portfolio.qty("AAA") == node.engine.portfolio.qty("AAA")


class Pending(Strategy):
    "Test strategy: a market buy of BBB (which never trades again) and a far limit buy of AAA at the start."

    name = "pending_t"
    version = "1"

    def on_bar(self, ctx, bars):
        if bars.symbols[0] == "BBB":
            ctx.buy("BBB", 1.0)
            ctx.limit("AAA", "buy", 1.0, 1.0)
        else:
            ctx.buy("AAA", 1.0)


def test_kill_switch_cancels_pending_orders(tmp_path, cli_env):
    "`memebot kill` from another process: the node halts, cancels its pending and held orders, and sends nothing more."
    s = _settings(tmp_path)
    kill = Path(s.resolve(s.live.kill_file))
    env = dict(cli_env, MEMEBOT_LIVE_KILL_FILE=str(kill))
    evs = sorted(_candles([100.0] * 12) + _candles([5.0], "BBB"), key=lambda c: c.ts)

    class KillAt(ListFeed):
        def __iter__(self):
            for i, ev in enumerate(super().__iter__()):
                if i == 6:
                    subprocess.run([EXE, "kill", "--reason", "test"], env=env, check=True, capture_output=True)
                yield ev

    led = Ledger(Store(":memory:"), "k", "cex", "paper")
    node = TradingNode(Pending(), KillAt(evs, SimClock()), ledger=led, run_id="k", settings=s, cash=10_000)
    node.risk.kill_interval_ns = 0
    res = _run(node)
    assert node.risk.state is TradingState.HALTED and "test" in node.risk.reason()
    om = node.engine.om.orders.values()
    bbb = [o for o in om if o.symbol == "BBB"]
    lim = [o for o in om if o.type.value == "limit"]
    assert bbb[0].status is OrderStatus.CANCELLED and lim[0].status is OrderStatus.CANCELLED
    assert led.order(bbb[0].client_id).status is OrderStatus.CANCELLED and not led.open_orders()
    late = [o for o in res.orders if o.ts > evs[6].ts]
    assert late and all(o.status is OrderStatus.REJECTED and "halted: kill" in o.reason for o in late)


class BadOrders(Strategy):
    "Test strategy: one of each bad order on the first bar."

    name = "bad_orders_t"
    version = "1"

    def on_start(self, ctx):
        self.done = False

    def on_bar(self, ctx, bars):
        if self.done:
            return
        self.done = True
        ctx.market("AAA", "buy", -1.0, tag="negative")
        ctx.market("AAA", "buy", 0.0, tag="zero")
        ctx._e.submit(ctx._new("AAA", Side.BUY, 1.0, price=float("nan"), tag="nan_price"))
        ctx.market("AAA", "buy", float("nan"), tag="nan_qty")
        ctx.market("NOPE", "buy", 1.0, tag="unknown")
        ctx.market("AAA", "buy", 50.0, tag="too_big")  # 5,000 notional > max_order_usd 250
        ctx.market("AAA", "buy", 1.0, tag="good")


def test_bad_orders_rejected_never_sent(tmp_path):
    "Negative/zero size, NaN price, unknown token, size above limits: rejected with a reason, never sent to the broker."
    s = load_settings(
        None, env={"MEMEBOT_LIVE_KILL_FILE": str(tmp_path / "KILL")}, overrides={"risk.max_order_usd": 250.0}
    )
    led = Ledger(Store(":memory:"), "bad", "cex", "paper")
    node = TradingNode(
        BadOrders(), ListFeed(_candles([100.0] * 3), SimClock()), ledger=led, run_id="bad", settings=s, cash=10_000
    )
    res = _run(node)
    by = {o.tag: o for o in res.orders}
    want = {
        "negative": "not a positive number",
        "zero": "not a positive number",
        "nan_price": "price nan",
        "nan_qty": "not a positive number",
        "unknown": "unknown_symbol: 'NOPE'",
        "too_big": "max_order",
    }
    stored = Ledger(led.store, "bad", "cex", "paper")  # what a user querying the ledger finds
    for tag, why in want.items():
        o = by[tag]
        assert o.status is OrderStatus.REJECTED and why in o.reason, (tag, o.reason)
        assert o.client_id not in node.broker.orders  # never sent
        assert stored.order(o.client_id).status is OrderStatus.REJECTED and stored.order(o.client_id).reason == o.reason
    assert by["good"].status is OrderStatus.FILLED and led.order(by["good"].client_id).status is OrderStatus.FILLED
    assert node.status()["rejected"] == 6 and node.status()["order_stats"]["rejected_by_reason"] == {
        "invalid": 4,
        "unknown_symbol": 1,
        "max_order": 1,
    }


def test_ctrl_c_leaves_consistent_ledger(shared, cli_env, tmp_path):
    "SIGINT stops the CLI between two events (exit 0, run 'stopped', ledger consistent); --resume finishes it."
    store = tmp_path / "store.duckdb"
    with Store(store) as st:
        upsert(st, "candles", _real(shared, ["1000CAT/USDT"], n=600))
    env = dict(
        cli_env,
        MEMEBOT_RISK_MAX_ORDER_USD="1e9",
        MEMEBOT_RISK_MAX_POSITION_USD="1e9",
        MEMEBOT_RISK_MAX_GROSS_EXPOSURE_USD="1e9",
    )
    args = [
        "paper",
        "--strategy",
        "ema_cross",
        "--param",
        "fast=3",
        "--param",
        "slow=8",
        "--param",
        "size=0.02",
        "--symbols",
        "1000CAT/USDT",
        "--no-dashboard",
        "--run-id",
        "int",
    ]
    env["MEMEBOT_LIVE_HEARTBEAT_SECONDS"] = "0.2"  # a status line every second
    p = subprocess.Popen(
        [EXE, *args, "--speed", "10000"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    for line in p.stdout:  # wait until it has traded (a status line with fills), then Ctrl-C
        m = re.search(r" fills=(\d+) ", line)
        if m and int(m.group(1)) > 0:
            break
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=60)
    assert p.returncode == 0 and "stopped: continue with" in out, out[-2000:]
    orders, fills, pos, run = _ledger_rows(store, "int")
    assert run["status"] == "stopped" and 0 < run["events"] < 600
    sums = {}
    for f in fills:
        sums[f[3]] = sums.get(f[3], 0.0) + (f[5] if f[4] == "buy" else -f[5])
    assert sums == pytest.approx(pos)
    r = subprocess.run(
        [EXE, "paper", "--run-id", "int", "--resume", "--speed", "0", "--no-dashboard"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert _ledger_rows(store, "int")[3]["status"] == "finished"


class AsyncOnly(ListFeed):
    "A live-like feed: async iteration only (cannot be replayed from its start)."

    __iter__ = Feed.__iter__

    async def _aiter(self):
        for ev in self.events:
            self.clock.advance_to(ev.ts)
            yield ev


def test_restart_on_live_feed_restores_ledger(tmp_path):
    "A live feed cannot be replayed: a restart takes positions and open orders from the ledger, continues client ids."
    s = _settings(tmp_path)
    st = Store(tmp_path / "l.duckdb")
    first = sorted(_candles([100.0] * 6) + _candles([5.0], "BBB"), key=lambda c: c.ts)
    led = Ledger(st, "live1", "cex", "paper")
    n1 = TradingNode(Pending(), AsyncOnly(first, SimClock()), ledger=led, run_id="live1", settings=s, cash=10_000)
    r1 = _run(n1)
    assert n1.mode == "fresh" and len(led.open_orders()) == 2  # the BBB buy and AAA's last buy wait for a price
    later = _candles([101.0] * 3, t0=first[-1].ts + 60 * NS) + _candles([6.0], "BBB", t0=first[-1].ts + 400 * NS)
    led2 = Ledger(st, "live1", "cex", "paper")
    n2 = TradingNode(Pending(), AsyncOnly(later, SimClock()), ledger=led2, run_id="live1", settings=s, cash=10_000)
    assert n2.mode == "restore" and n2.engine.portfolio.qty("AAA") == led.portfolio.qty("AAA")
    assert abs(n2.engine.portfolio.cash - (10_000 + led.portfolio.cash)) < 1e-9
    r2 = _run(n2)
    ids = [o.client_id for o in r2.orders]
    assert min(ids) > max(o.client_id for o in r1.orders)  # client ids continue, none reused
    bbb1 = next(o for o in r1.orders if o.symbol == "BBB")
    assert (
        led2.reload().order(bbb1.client_id).status is OrderStatus.FILLED and led2.portfolio.qty("BBB") == 1.0
    )  # restored, then filled
    assert {o.client_id for o in led2.open_orders()} <= set(ids)  # what is still open was sent by the second run
    assert n2.consistency() == []
    fills = led2.fills()
    assert len({f.fill_id for f in fills}) == len(fills)


class Protected(Strategy):
    "Test strategy: buy AAA once, then protect it with a stop-loss 5% under the fill."

    name = "protected_t"
    version = "1"

    def on_start(self, ctx):
        self.bought = False

    def on_fill(self, ctx, fill):
        if fill.side is Side.BUY:
            ctx.stop_loss("AAA", fill.qty, fill.price * 0.95, tag="stop")

    def on_bar(self, ctx, bars):
        if not self.bought and ctx.position("AAA") == 0:
            ctx.buy("AAA", 1.0)
            self.bought = True


def test_held_stop_loss_survives_a_restart(tmp_path):
    "A stop-loss is held by the node, not a venue: the ledger keeps it, and a restarted node still fires it."
    s = _settings(tmp_path)
    st = Store(tmp_path / "h.duckdb")
    first = _candles([100.0] * 4)
    led = Ledger(st, "held1", "cex", "paper")
    r1 = _run(
        TradingNode(Protected(), AsyncOnly(first, SimClock()), ledger=led, run_id="held1", settings=s, cash=10_000)
    )
    ((stop, _),) = led.held()
    assert stop.type is OrderType.STOP and stop.price == pytest.approx(95.0) and led.portfolio.qty("AAA") == 1.0
    later = _candles([99.0, 90.0, 90.0], t0=first[-1].ts + 60 * NS)  # the price falls through the stop while
    led2 = Ledger(st, "held1", "cex", "paper")  # ... a new process runs the node
    n2 = TradingNode(Protected(), AsyncOnly(later, SimClock()), ledger=led2, run_id="held1", settings=s, cash=10_000)
    assert n2.mode == "restore" and [o.client_id for o in n2.engine.om.held()] == [stop.client_id]
    r2 = _run(n2)
    sells = [f for f in r2.fills if f.side is Side.SELL]
    assert len(sells) == 1 and sells[0].client_id == stop.client_id and led2.reload().portfolio.qty("AAA") == 0.0
    assert led2.held() == [] and n2.consistency() == []
    assert min(o.client_id for o in r2.orders if o.client_id != stop.client_id) > stop.client_id  # ids continue past it


def test_paper_on_the_simulator_trades_with_default_settings(memebot):
    """`memebot paper --strategy pump_launch --feed sim`, exactly as a user first runs it: it must trade. Two defects
    once stopped it: a launch's first buy has no price yet (a notional buy with quantity 0, which the ledger refused,
    ending the run), and the source breaker halted at the first graduation (the new pool opens 7.6% below the curve's
    last price by design)."""
    r = memebot("paper", "--strategy", "pump_launch", "--feed", "sim", "--run-id", "defaults", "--no-dashboard",
                "--json", "-", check=True)  # fmt: skip
    doc = json.loads(r.stdout)
    assert len(doc["fills"]) >= 4 and doc["status"]["orders"] >= 4
    assert "source_deviation" not in (doc["status"]["risk"]["reason"] or "")
    assert doc["consistency"] == []


def test_a_paper_replay_reports_the_backtests_benchmarks(shared, memebot, cli_env, tmp_path):
    """`memebot paper` replaying stored bars is set against the same benchmarks as `memebot backtest` on them (buy &
    hold, the equal-weight index), with the same numbers: the runs are the same, so are their comparisons."""
    store = tmp_path / "store.duckdb"
    with Store(store) as st:
        upsert(st, "candles", _real(shared, ["1000CAT/USDT", "1000SATS/USDT"], n=400))
    args = ["--strategy", "ema_cross", "--param", "fast=3", "--param", "slow=8", "--symbols",
            "1000CAT/USDT,1000SATS/USDT", "--tf", "5m"]  # fmt: skip
    env = {"MEMEBOT_STORE_PATH": str(store)}
    bt = json.loads(memebot("backtest", *args, "--json", "-", "--no-tearsheet", env=env, check=True).stdout)
    pr = json.loads(
        memebot("paper", *args, "--speed", "0", "--no-dashboard", "--json", "-", env=env, check=True).stdout
    )
    assert set(pr["benchmarks"]) == set(bt["benchmarks"]) >= {"buy & hold (equal parts)", "equal-weight index"}
    for k, row in bt["benchmarks"].items():
        assert pr["benchmarks"][k]["total_return"] == pytest.approx(row["total_return"], rel=1e-9)
        assert pr["benchmarks"][k]["vs_strategy"] == pytest.approx(row["vs_strategy"], rel=1e-6, abs=1e-9)
    text = memebot("paper", *args, "--speed", "0", "--no-dashboard", "--run-id", "bench-text", env=env, check=True)
    assert "against benchmarks" in text.stdout and "buy & hold" in text.stdout
