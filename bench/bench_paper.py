"""Paper node benchmark (issue 6).

1. Tick-to-order latency: market event in -> order handed to the broker, through the node's whole per-event path
   (Engine.step: broker fills, timers, risk.on_market, strategy, account checks, RiskChain(RiskEngine).check),
   p50/p99/p99.9 over >= 100k orders (one order per event, real 5m bars of the Binance memecoin set). Measured with
   no ledger (the bare path) and, on a shorter run, with the DuckDB ledger on disk (orders written ahead after the
   hand-off, fills right after each event): the same figure plus the write-ahead cost per order.
2. Throughput of the paper node over a ReplayFeed of the 25-symbol 5m data (748k bars, DuckDB file store) with EMA
   cross and the full risk chain, beside the backtest Engine over CandleFeed on the same bars and strategy (same run,
   same machine). The ledger is left out of this row: its DuckDB transactions (one per order, one per fill) cost
   milliseconds each and would measure the ledger, not the node; the ledger-on-disk latency row shows that cost.

Usage: .venv/bin/python bench/bench_paper.py [--events 120000] [--ledger-events 3000] [--json OUT]
"""

import argparse, asyncio, json, os, sys, tempfile, time
from pathlib import Path
import numpy as np, pandas as pd
from memebot.core import Candle, ListFeed, SimClock, NS, shared_dir
from memebot.config import load_settings
from memebot.obs import configure_logging
from memebot.data.store import Store, upsert
from memebot.data.replay import ReplayFeed
from memebot.backtest import CandleFeed, Engine
from memebot.exec import SimulatedBroker, VolumeParticipation, FeeSchedule
from memebot.exec.ledger import Ledger
from memebot.live import TradingNode, BarSlices
from memebot.exec.paper import PaperBroker
from memebot.strategy import Strategy, get_strategy

DATA = "data/binance_memecoins/ohlcv_5m_2025-01_2025-04.parquet"


class PingPong(Strategy):
    "One order per event: buy a small notional when flat, sell the position when long."

    name = "ping_pong_bench"
    version = "1"

    def on_bar(self, ctx, bars):
        s = bars.symbols[0]
        if ctx.position(s) > 0:
            ctx.close(s)
        elif not ctx.open_orders(s):
            ctx.buy(s, notional=20.0)


def settings(tmp):
    return load_settings(
        None,
        env={"MEMEBOT_LIVE_KILL_FILE": str(Path(tmp) / "KILL")},
        overrides={
            "risk.max_order_usd": 1e9,
            "risk.max_position_usd": 1e9,
            "risk.max_gross_exposure_usd": 1e9,
            "risk.max_orders_per_minute": 10**9,
            "risk.max_open_orders": 10**6,
            "risk.circuit_price_move_pct": 99.0,
            "risk.max_daily_loss_limit": 0.0,
        },
    )


def pct(ns):
    a = np.asarray(ns, np.float64) / 1e3
    return {
        "n": len(a),
        "p50_us": float(np.percentile(a, 50)),
        "p99_us": float(np.percentile(a, 99)),
        "p999_us": float(np.percentile(a, 99.9)),
        "max_us": float(a.max()),
    }


def candles(df, n):
    "The first `n` bars (time order across symbols) as single-symbol Candle events."
    d = df.sort_values(["ts", "symbol"]).iloc[:n]
    ts = d.ts.values.astype("datetime64[ns]").view("int64")
    return [
        Candle(int(t), o, h, l, c, v, s, "5m", "binance")
        for t, o, h, l, c, v, s in zip(
            ts, d.open.values, d.high.values, d.low.values, d.close.values, d.volume.values, d.symbol.values
        )
    ]


def latency(df, n, tmp, ledger_path=None):
    evs = candles(df, n)
    led = Ledger(Store(ledger_path), "bench", "cex", "paper") if ledger_path else None
    node = TradingNode(
        PingPong(),
        ListFeed(evs, SimClock()),
        PaperBroker(VolumeParticipation(10.0, 1.0, 10.0), ledger=led),
        led,
        run_id="bench",
        settings=settings(tmp),
        cash=1e9,
        heartbeat_s=1.0,
    )
    t = time.perf_counter()
    res = asyncio.run(node.run(handle_signals=False))
    el = time.perf_counter() - t
    out = pct(node.latencies_ns)
    out.update(
        events=node.events,
        orders=len(node.latencies_ns),
        fills=len(res.fills),
        rejected=node.risk_chain.rejected,
        elapsed_s=el,
        events_per_s=node.events / el,
    )
    return out


def throughput(df, tmp):
    "Paper node over a ReplayFeed (DuckDB file store, 25 symbols) vs the backtest Engine over CandleFeed, EMA cross."
    path = Path(tmp) / "bars.duckdb"
    with Store(path) as st:
        upsert(st, "candles", df.assign(tf="5m", source="binance", chain="cex"))
    st = Store(path)
    syms = sorted(df.symbol.unique())
    strat = lambda: get_strategy("ema_cross", {"fast": 12, "slow": 26, "size": 0.01})
    model = lambda: VolumeParticipation(10.0, 0.1, 10.0)
    t = time.perf_counter()
    cf = CandleFeed.from_store(st, syms, "5m")
    load_bt = time.perf_counter() - t
    from memebot.risk import RiskEngine

    t = time.perf_counter()
    bt = Engine(
        strat(),
        cf,
        SimulatedBroker(model()),
        cash=1e6,
        risk=RiskEngine.from_settings(settings(tmp), watch_kill_file=False),
    ).run()
    el_bt = time.perf_counter() - t
    feed = BarSlices.from_replay(ReplayFeed(st, "candles", syms, "5m"))
    node = TradingNode(
        strat(), feed, PaperBroker(model()), None, run_id="tp", settings=settings(tmp), cash=1e6, heartbeat_s=1.0
    )
    t = time.perf_counter()
    pr = asyncio.run(node.run(handle_signals=False))
    el_p = time.perf_counter() - t
    same = [(f.ts, f.symbol, f.qty, f.price) for f in pr.fills] == [(f.ts, f.symbol, f.qty, f.price) for f in bt.fills]
    return {
        "bars": bt.bars,
        "slices": node.events,
        "orders": len(pr.orders),
        "fills": len(pr.fills),
        "fills_identical": same,
        "paper_s": el_p,
        "paper_bars_per_s": bt.bars / el_p,
        "paper_slices_per_s": node.events / el_p,
        "backtest_s": el_bt + load_bt,
        "backtest_bars_per_s": bt.bars / (el_bt + load_bt),
        "ratio_backtest_over_paper": (bt.bars / (el_bt + load_bt)) / (bt.bars / el_p),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=120_000)
    ap.add_argument("--ledger-events", type=int, default=3000)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    configure_logging("WARNING")
    sd = shared_dir(required=True)
    df = pd.read_parquet(sd / DATA).rename(columns={"date": "ts"})
    out = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}}
    with tempfile.TemporaryDirectory() as tmp:
        out["tick_to_order_no_ledger"] = latency(df, a.events, tmp)
        print("tick-to-order, no ledger:", json.dumps(out["tick_to_order_no_ledger"]), flush=True)
        out["tick_to_order_ledger_disk"] = latency(df, a.ledger_events, tmp, Path(tmp) / "ledger.duckdb")
        print("tick-to-order, DuckDB ledger on disk:", json.dumps(out["tick_to_order_ledger_disk"]), flush=True)
        out["throughput"] = throughput(df, tmp)
        print("throughput:", json.dumps(out["throughput"]), flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
