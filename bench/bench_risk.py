"""Risk engine benchmark (issue 6): cost of RiskEngine.check per order and of on_market per event, p50/p99/p99.9 over
>= 100k calls, with the kill-file watch as the node runs it (stat at most every 10 ms), with a stat on every check,
and without a kill file — beside the peers in the same run: the bare os.stat of the kill file, and a naive two-line
check (size > 0 and notional <= limit). Usage: .venv/bin/python bench/bench_risk.py [--n 200000] [--json OUT]"""

import argparse, json, os, statistics, sys, tempfile, time
from pathlib import Path
import numpy as np
from memebot.core import NS, Tick, Candle, Order, Fill, Portfolio, Side
from memebot.config import RiskConfig
from memebot.obs import configure_logging
from memebot.risk import RiskEngine

T0 = 1_735_689_600 * NS
SYMS = [f"TOK{i}" for i in range(10)]


def pct(ns):
    a = np.asarray(ns, dtype=np.float64) / 1000.0  # microseconds
    return {
        "p50_us": float(np.percentile(a, 50)),
        "p99_us": float(np.percentile(a, 99)),
        "p999_us": float(np.percentile(a, 99.9)),
        "mean_us": float(a.mean()),
        "n": len(a),
    }


def setup(kill_file, interval):
    cfg = RiskConfig(max_orders_per_minute=30, max_open_orders=10, max_daily_loss_limit=1000)
    risk = RiskEngine(cfg, kill_file=kill_file, kill_check_interval_s=interval, safety=lambda s: (True, []))
    pf = Portfolio(cash=10_000.0)
    for i, s in enumerate(SYMS):  # 10 open positions, 40 USD each
        risk.on_market(Tick(T0, s, 1.0 + i / 10, source="jupiter"))
        o = Order(s, Side.BUY, 40 / (1.0 + i / 10))
        assert risk.check(o, pf, T0) is None
        f = Fill(o.client_id, T0, s, Side.BUY, o.qty, 1.0 + i / 10)
        pf.apply(f)
        risk.on_fill(f, pf)
    return risk, pf


def run_checks(risk, pf, n):
    "Tick -> check -> fill per order, clock 3 s apart (under the 30/min rate limit): every check passes all rules."
    pc = time.perf_counter_ns
    out = np.empty(n, dtype=np.int64)
    ev_out = np.empty(n, dtype=np.int64)
    ticks = [
        Tick(T0 + (k + 1) * 3 * NS, SYMS[k % 10], 1.0 + (k % 10) / 10 + ((k * 7919) % 100) / 10_000, source="jupiter")
        for k in range(n)
    ]
    orders = [Order(SYMS[k % 10], Side.BUY if (k // 10) % 2 == 0 else Side.SELL, 5.0) for k in range(n)]
    for k in range(n):
        t = ticks[k]
        ts = t.ts
        a = pc()
        risk.on_market(t)
        b = pc()
        o = orders[k]
        r = risk.check(o, pf, ts)
        c = pc()
        assert r is None, r
        f = Fill(o.client_id, ts, o.symbol, o.side, o.qty, t.price)
        pf.apply(f)
        risk.on_fill(f, pf)
        out[k] = c - b
        ev_out[k] = b - a
    return out, ev_out


def run_rejects(risk, pf, n):
    "Orders over max_order_usd: the rejection path (log line + counter)."
    pc = time.perf_counter_ns
    out = np.empty(n, dtype=np.int64)
    ts = risk.now_ns
    for k in range(n):
        o = Order(SYMS[k % 10], Side.BUY, 1e6)
        a = pc()
        r = risk.check(o, pf, ts)
        out[k] = pc() - a
        assert r.startswith("max_order")
    return out


def run_candles(n):
    risk = RiskEngine(RiskConfig(circuit_price_window_s=300, circuit_price_move_pct=30))
    pc = time.perf_counter_ns
    out = np.empty(n, dtype=np.int64)
    cs = [
        Candle(T0 + k * 300 * NS, 1.0, 1.02, 0.99, 1.0 + (k % 7) / 1000, 1e6, SYMS[k % 10], "5m", "binance")
        for k in range(n)
    ]
    for k in range(n):
        a = pc()
        risk.on_market(cs[k])
        out[k] = pc() - a
    return out


def naive(n, pf):
    "Peer: the smallest useful check (positive size, notional under a limit) as a plain function."
    lim = 250.0

    def check(o, px):
        if not (o.qty > 0) or o.qty * px > lim:
            return "reject"
        return None

    pc = time.perf_counter_ns
    out = np.empty(n, dtype=np.int64)
    orders = [Order(SYMS[k % 10], Side.BUY, 5.0) for k in range(n)]
    for k in range(n):
        a = pc()
        check(orders[k], 1.0)
        out[k] = pc() - a
    return out


def bare_stat(n, p):
    pc = time.perf_counter_ns
    out = np.empty(n, dtype=np.int64)
    for k in range(n):
        a = pc()
        try:
            os.stat(p)
        except OSError:
            pass
        out[k] = pc() - a
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--json")
    a = ap.parse_args()
    n = a.n
    configure_logging("INFO", "json", stream=open(os.devnull, "w"))
    res = {}
    with tempfile.TemporaryDirectory() as d:
        kf = Path(d) / "KILL"
        for name, kill, interval in (
            ("kill file, stat <= every 10 ms (node default)", kf, 0.01),
            ("kill file, stat on every call", kf, 0.0),
            ("no kill file (backtest)", None, 0.0),
        ):
            risk, pf = setup(kill, interval)
            chk, ev = run_checks(risk, pf, n)
            res[name] = {
                "check (all)": pct(chk),
                "check (entries: every rule)": pct(chk.reshape(-1, 10)[0::2].ravel()),
                "check (exits)": pct(chk.reshape(-1, 10)[1::2].ravel()),
                "on_market tick": pct(ev),
            }
        risk, pf = setup(kf, 0.01)
        res["rejection path (max_order; log + counter)"] = {"check (all)": pct(run_rejects(risk, pf, min(n, 100_000)))}
        res["on_market 5m candle"] = pct(run_candles(n))
        res["peer: naive 2-rule check"] = pct(naive(n, pf))
        res["peer: os.stat(kill file) absent"] = pct(bare_stat(n, kf))
        kf.touch()
        res["peer: os.stat(kill file) present"] = pct(bare_stat(n, kf))
        pc = time.perf_counter_ns
        e = np.empty(n, dtype=np.int64)
        for k in range(n):
            x = pc()
            e[k] = pc() - x
        res["timer overhead (empty perf_counter_ns pair)"] = pct(e)
    print(json.dumps(res, indent=1))
    print(f"\n| figure ({n:,} calls each) | p50 µs | p99 µs | p99.9 µs | mean µs |\n|---|---|---|---|---|")
    for k, v in res.items():
        for sub, m in (v.items()) if "check (all)" in v else [("", v)]:
            label = f"{k}: {sub}" if sub else k
            print(f"| {label} | {m['p50_us']:.2f} | {m['p99_us']:.2f} | {m['p999_us']:.2f} | {m['mean_us']:.2f} |")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    sys.exit(main())
