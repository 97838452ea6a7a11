"""Reading a bot's ledger in the service (issue 17): `GET /bots/{id}/ledger`'s data path with the ledger in
PostgreSQL, before and after it became one owner-filtered query set in the request's own pooled session
(`db.owned_ledger`), against the earlier path (`api.bots.read_ledger` in a thread: a read-only PgStore connection to
check the run, another to read it, and the Ledger rebuilt from every row). A bot with N orders, each filled.

    PYTHONPATH=. .venv/bin/python bench/bench_bot_ledger.py [--orders 200] [--reads 200]
"""

import argparse, asyncio, time
import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session
from memebot.api.bots import read_ledger
from memebot.config import load_settings
from memebot.core import Chain, Fill, NS, Order, OrderStatus, Side, SimClock
from memebot.db import Bot, Principal, User, async_engine, db_url, migrate, owned_ledger, scratch_database, sessions
from memebot.exec.ledger import Ledger
from memebot.exec.ledger_pg import PgStore


def seed(url: str, n: int) -> int:
    "A trader with one bot whose ledger holds `n` filled orders; the bot's id."
    eng = sa.create_engine(db_url(url), poolclass=sa.pool.NullPool)
    with Session(eng) as s:
        u = User(username="bench", password_hash="x", role="trader")
        s.add(u)
        s.flush()
        b = Bot(owner_id=u.id, name="b", mode="paper", strategy="ema_cross")
        s.add(b)
        s.commit()
        bid, uid = b.id, u.id
    eng.dispose()
    clk = SimClock(1_700_000_000 * NS)
    with PgStore(url, f"bot-{bid}") as st:
        led = Ledger(st, f"bot-{bid}", Chain.SOLANA, "paper", clk)
        for i in range(n):
            clk.advance(1)
            o = Order("BONK", Side.BUY if i % 2 == 0 else Side.SELL, 100.0, client_id=f"c-{i}", ts=clk.now_ns())
            led.record_order(o)
            o.transition(OrderStatus.SUBMITTED)
            o.filled_qty, o.avg_fill_price = 100.0, 0.01
            o.transition(OrderStatus.FILLED)
            led.record_fill(Fill(o.client_id, clk.now_ns(), "BONK", o.side, 100.0, 0.01, 0.0001, fill_id=f"f-{i}"),
                            order=o)  # fmt: skip
    return bid, uid


async def owned_reads(url: str, bid: int, uid: int, reads: int) -> list[float]:
    eng = async_engine(url)
    mk = sessions(eng)
    out = []
    try:
        for _ in range(reads):
            t = time.perf_counter()
            async with mk() as s:
                doc = await owned_ledger(s, Principal(uid, "bench", "trader"), bid)
            out.append(time.perf_counter() - t)
        assert len(doc["fills"]) > 0
    finally:
        await eng.dispose()
    return out


async def thread_reads(s, bid: int, reads: int) -> list[float]:
    out = []
    for _ in range(reads):
        t = time.perf_counter()
        doc = await asyncio.to_thread(read_ledger, s, f"bot-{bid}")
        out.append(time.perf_counter() - t)
    assert len(doc["fills"]) > 0
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=200)
    ap.add_argument("--reads", type=int, default=200)
    a = ap.parse_args()
    with scratch_database() as url:
        migrate(url)
        bid, uid = seed(url, a.orders)
        s = load_settings(env={}, overrides={"enterprise.database_enabled": True, "enterprise.database_url": url})
        old = asyncio.run(thread_reads(s, bid, a.reads))
        new = asyncio.run(owned_reads(url, bid, uid, a.reads))
    q = lambda v: np.percentile(np.array(v) * 1e3, [50, 99])  # noqa: E731
    print(f"a bot with {a.orders} filled orders, {a.reads} reads each (ms)")
    print(f"{'':<46}{'p50':>10}{'p99':>10}")
    rows = (("read_ledger in a thread (two PgStore connections)", old), ("owned_ledger (request's session)", new))
    for name, v in rows:
        print(f"{name:<46}{q(v)[0]:>10.2f}{q(v)[1]:>10.2f}")


if __name__ == "__main__":
    main()
