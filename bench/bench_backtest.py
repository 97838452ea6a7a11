"""Backtesting benchmarks (issue 5): event-engine throughput beside NautilusTrader and backtesting.py,
and a vectorbt sweep.

    PYTHONPATH=. .venv/bin/python bench/bench_backtest.py [--nautilus-python /path/to/venv/bin/python] [--runs 3]

Same bars for every engine: ../shared/data/binance_memecoins 5m, 25 symbols, 748,422 bars; same strategy: EMA cross
(fast/slow per --configs, default 12/26 and 50/200 bars; long when fast > slow after `slow` bars, flat otherwise),
    market orders filled at the next bar,
no fees. NautilusTrader pins pandas<3, so it runs in its own venv (NAUTILUS_PYTHON or --nautilus-python); see README.
"""

import argparse, json, os, subprocess, sys, time, warnings
from pathlib import Path
import numpy as np, pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from memebot.core import shared_dir
from memebot.strategy import get_strategy, ema_frame
from memebot.backtest import CandleFeed, Engine
from memebot.exec import SimulatedBroker, BarFill


def bench_memebot(df, runs, FAST, SLOW, risk=None, label="memebot Engine"):
    "Best of `runs`; `risk=None`: the account checks only (what the peers do), 'settings': the [risk] limits too."
    t0 = time.perf_counter()
    feed = CandleFeed.from_frame(df, "5m")
    t_feed = time.perf_counter() - t0
    best, res = float("inf"), None
    for _ in range(runs):
        e = Engine(
            get_strategy("ema_cross", fast=FAST, slow=SLOW), feed, SimulatedBroker(BarFill()), cash=10_000.0, risk=risk
        )
        t0 = time.perf_counter()
        res = e.run()
        dt = time.perf_counter() - t0
        best = min(best, dt)
    return {
        "engine": label,
        "bars": res.bars,
        "run_s": best,
        "prep_s": t_feed,
        "fills": len(res.fills),
        "final_equity": res.final_equity,
    }


def bench_backtesting_py(df, FAST, SLOW):
    from backtesting import Backtest, Strategy as BStrategy

    def _ema(x, n):
        return ema_frame(pd.DataFrame({"c": np.asarray(x, float)}), n)["c"].to_numpy()

    class Cross(BStrategy):
        def init(self):
            self.f, self.s = self.I(_ema, self.data.Close, FAST), self.I(_ema, self.data.Close, SLOW)

        def next(self):
            want = self.f[-1] > self.s[-1] and len(self.data) >= SLOW
            if want and not self.position:
                self.buy()
            elif not want and self.position:
                self.position.close()

    total, bars, fills = 0.0, 0, 0
    for sym, g in df.groupby("symbol"):
        b = g.set_index(pd.DatetimeIndex(g.date).tz_convert(None))[["open", "high", "low", "close", "volume"]]
        b.columns = ["Open", "High", "Low", "Close", "Volume"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bt = Backtest(
                b, Cross, cash=10_000.0 / 25 * 1e6, commission=0.0, trade_on_close=False, finalize_trades=True
            )
            t0 = time.perf_counter()
            st = bt.run()
            total += time.perf_counter() - t0
        bars += len(b)
        fills += 2 * len(st._trades)
    return {
        "engine": "backtesting.py 0.6 (one run per symbol)",
        "bars": bars,
        "run_s": total,
        "prep_s": 0.0,
        "fills": fills,
    }


def bench_nautilus(py, path, FAST, SLOW):
    r = subprocess.run(
        [py, str(ROOT / "bench" / "_nautilus_ema.py"), str(path), str(FAST), str(SLOW)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if r.returncode != 0:
        return {"engine": "NautilusTrader BacktestEngine", "error": r.stderr.strip().splitlines()[-1]}
    d = json.loads(r.stdout.strip().splitlines()[-1])
    ver = subprocess.run(
        [py, "-c", "import nautilus_trader; print(nautilus_trader.__version__)"], capture_output=True, text=True
    ).stdout.strip()
    if d["delivered"] != d["bars"]:  # e.g. the engine stopped early (AccountBalanceNegative): not comparable
        return {
            "engine": f"NautilusTrader {ver} BacktestEngine",
            "error": f"only {d['delivered']:,} of {d['bars']:,} bars reached the strategy",
        }
    return {
        "engine": f"NautilusTrader {ver} BacktestEngine",
        "bars": d["delivered"],
        "run_s": d["run_s"],
        "prep_s": d["wrangle_s"],
        "fills": d["fills"],
    }


def bench_sweep(df, sym="BONK/USDT"):
    from memebot.backtest.vector import sweep

    fr = CandleFeed.from_frame(df[df.symbol == sym], "5m").frame()
    t0 = time.perf_counter()
    sweep("ema_cross", fr, {"fast": [5, 10], "slow": [20, 40]})
    t_first = time.perf_counter() - t0
    grid = {"fast": list(range(2, 102)), "slow": list(range(105, 305, 2))}  # 100 x 100 = 10,000 valid combinations
    t0 = time.perf_counter()
    res = sweep("ema_cross", fr, grid, fees_bps=10.0)
    dt = time.perf_counter() - t0
    best = res.sort_values("sharpe").iloc[-1]
    return {
        "symbol": sym,
        "bars": len(fr),
        "combinations": len(res),
        "seconds": dt,
        "first_call_s_incl_numba_compile": t_first,
        "best": {
            k: float(best[k]) if k != "symbol" else best[k]
            for k in ("fast", "slow", "sharpe", "total_return", "trades")
        },
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nautilus-python", default=os.environ.get("NAUTILUS_PYTHON"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--skip-backtesting-py", action="store_true")
    ap.add_argument("--skip-sweep", action="store_true")
    ap.add_argument("--json", default=None)
    ap.add_argument("--configs", default="12:26,50:200", help="EMA fast:slow pairs, comma-separated")
    ap.add_argument("--engine-only", action="store_true", help="only memebot's rows (no peers)")
    a = ap.parse_args()
    path = shared_dir(required=True) / "data/binance_memecoins/ohlcv_5m_2025-01_2025-04.parquet"
    df = pd.read_parquet(path)
    out = {"load_average_at_start": os.getloadavg(), "configs": {}}
    for cfg in a.configs.split(","):
        FAST, SLOW = map(int, cfg.split(":"))
        rows = [bench_memebot(df, a.runs, FAST, SLOW, None, "memebot Engine (account checks, no risk limits)")]
        rows.append(bench_memebot(df, a.runs, FAST, SLOW, "settings", "memebot Engine + RiskEngine ([risk] limits)"))
        if a.nautilus_python:
            rows.append(bench_nautilus(a.nautilus_python, path, FAST, SLOW))
        elif not a.engine_only:
            rows.append(
                {
                    "engine": "NautilusTrader BacktestEngine",
                    "error": "not run: pass --nautilus-python (needs its own venv, pandas<3)",
                }
            )
        if not a.skip_backtesting_py and not a.engine_only:
            rows.append(bench_backtesting_py(df, FAST, SLOW))
        base = rows[0]["bars"] / rows[0]["run_s"]
        print(f"\nEMA cross {FAST}/{SLOW}, 25 symbols, 5m bars (loop time; data preparation separate)\n")
        print("| engine | bars | fills | run s | bars/s | memebot speed-up | prep s |")
        print("|---|---|---|---|---|---|---|")
        for r in rows:
            if "error" in r:
                print(f"| {r['engine']} | - | - | - | - | - | {r['error']} |")
                continue
            bps = r["bars"] / r["run_s"]
            print(
                f"| {r['engine']} | {r['bars']:,} | {r['fills']:,} | {r['run_s']:.2f} | {bps:,.0f} | {base / bps:.1f}x"
                f" | {r['prep_s']:.2f} |"
            )
        out["configs"][cfg] = rows
    if not a.skip_sweep:
        s = bench_sweep(df)
        out["sweep"] = s
        print(
            f"\nvectorbt sweep: {s['combinations']:,} EMA-cross combinations x {s['bars']:,} bars of {s['symbol']} 5m,"
            f" fees 10 bps: {s['seconds']:.1f} s (first small call incl. numba compile"
            f" {s['first_call_s_incl_numba_compile']:.1f} s); best {s['best']}"
        )
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
