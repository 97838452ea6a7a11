"""Ledger backends (issue 17): the cost of booking an order and its fill in a node's DuckDB file and in PostgreSQL on
127.0.0.1 (one transaction each, as a node books them), and of a reader's query while a writer runs. Same code, same
rows, one run. Usage: PYTHONPATH=. .venv/bin/python bench/bench_ledger.py [--fills 2000]"""

import argparse, tempfile, time
from pathlib import Path
import numpy as np
from memebot.core import Chain, Fill, NS, Order, OrderStatus, Side, SimClock
from memebot.data.store import Store
from memebot.db import migrate, scratch_database
from memebot.exec.ledger import Ledger
from memebot.exec.ledger_pg import PgStore


def book(store, n: int) -> dict:
    "Record n orders, each filled at once; per-call wall times (µs) and a reader's query time."
    clk = SimClock(1_700_000_000 * NS)
    led = Ledger(store, "bench", Chain.SOLANA, "W", clk)
    rec, fil = [], []
    for i in range(n):
        clk.advance(1)
        o = Order("BONK", Side.BUY if i % 2 == 0 else Side.SELL, 100.0, client_id=f"b-{i}", ts=clk.now_ns())
        t = time.perf_counter_ns()
        led.record_order(o)
        rec.append(time.perf_counter_ns() - t)
        o.transition(OrderStatus.SUBMITTED)
        o.filled_qty, o.avg_fill_price = 100.0, 0.01
        o.transition(OrderStatus.FILLED)
        f = Fill(o.client_id, clk.now_ns(), "BONK", o.side, 100.0, 0.01, 0.0001, fill_id=f"f-{i}")
        t = time.perf_counter_ns()
        led.record_fill(f, moves={"SOL": -(o.side.sign) * 10**9, "BONK": o.side.sign * 10**7}, order=o)
        fil.append(time.perf_counter_ns() - t)
    t = time.perf_counter_ns()
    Ledger(store, "bench", Chain.SOLANA, "W")  # a restart (or a reader): every fill and order read back
    reload_ms = (time.perf_counter_ns() - t) / 1e6
    q = lambda a: np.percentile(np.array(a) / 1e3, [50, 99])  # noqa: E731
    return {"record_order": q(rec), "record_fill": q(fil), "reload_ms": reload_ms}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fills", type=int, default=2000)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        with Store(Path(d) / "bench.duckdb") as st:
            duck = book(st, a.fills)
    with scratch_database() as url:
        migrate(url)
        with PgStore(url, "bench") as st:
            pg = book(st, a.fills)
    print(f"{a.fills:,} orders, each booked then filled (one transaction per call)")
    print(f"{'':<34}{'DuckDB file':>20}{'PostgreSQL':>20}")
    for k in ("record_order", "record_fill"):
        print(f"{k + ' p50 / p99 (us)':<34}{'%.0f / %.0f' % tuple(duck[k]):>20}{'%.0f / %.0f' % tuple(pg[k]):>20}")
    print(f"{'reload every row (ms)':<34}{duck['reload_ms']:>20.1f}{pg['reload_ms']:>20.1f}")


if __name__ == "__main__":
    main()
