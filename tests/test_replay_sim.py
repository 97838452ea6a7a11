"""ReplayFeed reproduces stored bars exactly (real Binance candles); the simulator is deterministic per seed,
sync and async."""

import asyncio
import numpy as np, pandas as pd, pytest
from memebot.core import NS, SimClock, Swap, Candle, TokenLaunched, PoolUpdate
from memebot.data.store import Store, upsert, candles
from memebot.data.replay import ReplayFeed
from memebot.data.sim import MarketSim
from memebot.data.feeds import BarAggregator, BarFeed


def test_replay_reproduces_real_stored_bars_exactly(shared, tmp_path):
    df = pd.read_parquet(shared / "data/binance_memecoins/ohlcv_5m_2025-01_2025-04.parquet")
    df = df[df.symbol.isin(["BONK/USDT", "WIF/USDT", "PEPE/USDT"])].rename(columns={"date": "ts"})
    st = Store(tmp_path / "s.duckdb")
    upsert(st, "candles", df.assign(source="binance", chain="cex", tf="5m"))
    want = candles(st, tf="5m")
    clock = SimClock(0)
    feed = ReplayFeed(st, tf="5m", clock=clock, batch_size=10_000)
    seen_ts, rows = [], []
    for c in feed:
        assert clock.now_ns() == c.ts
        seen_ts.append(c.ts)
        rows.append((c.symbol, c.ts, c.open, c.high, c.low, c.close, c.volume))
    assert seen_ts == sorted(seen_ts) and len(rows) == len(want) == len(df)
    got = pd.DataFrame(rows, columns=["symbol", "ts", "open", "high", "low", "close", "volume"]).sort_values(
        ["symbol", "ts"], ignore_index=True
    )
    want_ts = want.ts.dt.tz_localize(None).astype("datetime64[ns]").astype("int64").to_numpy()
    assert (got.symbol.to_numpy() == want.symbol.to_numpy()).all() and (got.ts.to_numpy() == want_ts).all()
    for c in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(got[c].to_numpy(), want[c].to_numpy())  # bit-for-bit

    # a window and one symbol, async, at a real-time multiple
    async def window():
        f = ReplayFeed(st, tf="5m", symbols="WIF/USDT", start="2025-02-01", end="2025-02-01 01:00", speed=1e6)
        return [c async for c in f]

    w = asyncio.run(window())
    assert [c.ts for c in w] == [int(t.value) for t in pd.date_range("2025-02-01", periods=12, freq="5min", tz="UTC")]


def test_simulator_is_deterministic_per_seed_sync_and_async():
    key = lambda evs: [
        (
            type(e).__name__,
            e.ts,
            getattr(e, "pool", getattr(e, "mint", "")),
            getattr(e, "base_amount", 0),
            getattr(e, "quote_amount", 0),
        )
        for e in evs
    ]
    a = list(MarketSim(seed=21, minutes=20, launches=3))
    b = list(MarketSim(seed=21, minutes=20, launches=3))

    async def run():
        return [e async for e in MarketSim(seed=21, minutes=20, launches=3)]

    c = asyncio.run(run())
    assert key(a) == key(b) == key(c) and len(a) > 500
    d = list(MarketSim(seed=22, minutes=20, launches=3))
    assert key(d) != key(a)
    assert sum(isinstance(e, TokenLaunched) for e in a) == 3


def test_sim_store_round_trip_bars_from_replayed_swaps(tmp_path):
    st = Store(tmp_path / "sim.duckdb")
    sim = MarketSim(seed=9, minutes=15, launches=2)
    res = sim.write(st, tfs=("1s", "1m"))
    mint_of = dict(st.con.execute("SELECT address, base_address FROM pools").fetchall())
    bars = list(BarFeed(ReplayFeed(st, kind="swaps"), ("1s", "1m"), key=lambda e: mint_of[e.pool], source="sim"))
    for tf in ("1s", "1m"):
        stored = candles(st, tf=tf, source="sim")
        mine = pd.DataFrame(
            [(b.symbol, b.ts, b.open, b.high, b.low, b.close, b.volume) for b in bars if b.tf == tf],
            columns=stored.columns,
        ).sort_values(["symbol", "ts"], ignore_index=True)
        assert len(mine) == len(stored) > 0
        assert (
            mine.ts.to_numpy() == stored.ts.dt.tz_localize(None).astype("datetime64[ns]").astype("int64").to_numpy()
        ).all()
        for c in ("open", "high", "low", "close", "volume"):
            np.testing.assert_array_equal(mine[c].to_numpy(), stored[c].to_numpy())
    # 1s bars are contiguous per mint from the first trade to the last
    one = candles(st, tf="1s", source="sim")
    for _, g in one.groupby("symbol"):
        assert (np.diff(g.ts.to_numpy()).astype("timedelta64[ns]").astype("int64") == NS).all()
