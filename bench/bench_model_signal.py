"""model_signal speed (issue 20): bar-decisions per second in the event-driven backtest and the latency of one bar's
decisions (features included), this version beside an older one, in one run on the same machine.

    PYTHONPATH=. .venv/bin/python bench/bench_model_signal.py --ref 2626985 --days 14 --before-bars 150 [--paper]

One logistic-regression champion is trained on January–February 2025 5m bars of the 25 Binance symbols and registered
in a temporary MLflow store. Both versions then run `model_signal` (enter 0.55, exit 0.5) in `Engine` over the same
March bars: 23 memecoins traded, BTC and SOL as context, after a 300-bar warm-up. The older version (`--ref`, checked
out into a git worktree) rebuilt the features from its bar window at every bar, so it runs over `--before-bars` bars
only. A decision is one symbol scored on one bar; the latency is one call of `on_bar` (every symbol of the bar), timed
inside the engine. "Whole event loop" is every decision over the engine's loop time (all bars, warm-up included, with
the risk engine, fills and the portfolio), after the champion is loaded from MLflow (timed apart).

With `--paper` this version also runs on the paper trading node (`memebot.live.TradingNode`, as `memebot paper --feed
replay` runs it): the same bars replayed from a DuckDB store through `ReplayFeed`, paper fills, the node's risk chain
and its deferred ledger writes, and the same `on_bar` timing, plus the node's own tick-to-order latency.
"""

import argparse, json, os, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WARMUP = 300


def timed(base, lat: list, name: str):
    "`model_signal` (the `base` class of the version under test) timing each `on_bar` into `lat`."

    class Timed(base):
        def on_bar(self, ctx, b):
            t0 = time.perf_counter()
            super().on_bar(ctx, b)
            lat.append(time.perf_counter() - t0)

    Timed.name = name
    return Timed(model="bench-ms", enter=0.55, exit=0.5, refresh_s=0, warmup=WARMUP)


def child(a) -> dict:
    "Run model_signal over the bars and time it (runs inside the version under test)."
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import numpy as np, pandas as pd
    from memebot.strategy import ModelSignal
    from memebot.backtest import Engine, CandleFeed
    from memebot.obs import configure_logging

    configure_logging("WARNING")
    bars = pd.read_parquet(a.bars)
    lat = []
    strat = timed(ModelSignal, lat, "_bench_model_signal")
    try:  # load the compiled feature kernel before timing (a one-off 0.3 s per process)
        from memebot.features import OnlineFeatures

        OnlineFeatures().update(0, ("X",), np.ones((5, 1)))
    except ImportError:  # the older version has none
        pass
    eng = Engine(strat, CandleFeed.from_frame(bars, tf="5m"), cash=10_000.0)
    t0 = time.perf_counter()
    eng.start()  # on_start: the champion is loaded from MLflow
    load = time.perf_counter() - t0
    res = eng.run()
    wall = res.elapsed_s
    scored = [x for x in lat[WARMUP:]]  # bars on which every symbol was scored
    n_dec = strat.scored
    ms = np.asarray(scored) * 1e3
    return {
        "bars": int(bars.ts.nunique()),
        "decisions": int(n_dec),
        "run_s": wall,
        "model_load_s": load,
        "decision_bars_s": float(np.sum(scored)),
        "decisions_per_s": n_dec / float(np.sum(scored)) if n_dec else 0.0,
        "run_decisions_per_s": n_dec / wall,
        "bar_p50_ms": float(np.percentile(ms, 50)),
        "bar_p99_ms": float(np.percentile(ms, 99)),
        "symbols": int(bars.symbol.nunique()),
        "orders": len(res.orders),
    }


def paper(a) -> dict:
    "The same strategy and bars on the paper trading node (replayed from a store), timed the same way."
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import asyncio
    import numpy as np, pandas as pd
    from memebot.data.replay import ReplayFeed
    from memebot.data.store import Store, upsert
    from memebot.live import TradingNode
    from memebot.obs import configure_logging
    from memebot.strategy import ModelSignal

    configure_logging("WARNING")
    bars = pd.read_parquet(a.bars)
    path = Path(a.out).with_suffix(".duckdb")
    with Store(path) as st:
        upsert(st, "candles", bars.assign(source="binance", chain="cex", tf="5m")[
            ["source", "chain", "symbol", "tf", "ts", "open", "high", "low", "close", "volume"]])  # fmt: skip
    lat = []
    from memebot.features import OnlineFeatures

    OnlineFeatures().update(0, ("X",), np.ones((5, 1)))
    strat = timed(ModelSignal, lat, "_bench_model_signal_paper")
    node = TradingNode(strat, ReplayFeed(path, "candles", tf="5m"), cash=10_000.0, run_id="bench-paper")
    t0 = time.perf_counter()
    res = asyncio.run(node.run(handle_signals=False))
    wall = time.perf_counter() - t0
    ms = np.asarray(lat[WARMUP:]) * 1e3
    tto = np.asarray(node.latencies_ns, dtype=float) / 1e6
    return {"bars": len(lat), "decisions": int(strat.scored), "run_s": wall,
            "decisions_per_s": strat.scored / (ms.sum() / 1e3), "run_decisions_per_s": strat.scored / wall,
            "bar_p50_ms": float(np.percentile(ms, 50)), "bar_p99_ms": float(np.percentile(ms, 99)),
            "tick_to_order_p50_ms": float(np.percentile(tto, 50)) if len(tto) else None,
            "tick_to_order_p99_ms": float(np.percentile(tto, 99)) if len(tto) else None,
            "orders": len(res.orders), "symbols": int(bars.symbol.nunique())}  # fmt: skip


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref", default=None, help="older revision to compare with (its model_signal)")
    ap.add_argument("--days", type=float, default=14, help="days of March 2025 5m bars for this version")
    ap.add_argument("--before-bars", type=int, default=150, help="bars after warm-up for the older version")
    ap.add_argument("--json", default="bench/out/model_signal.json")
    ap.add_argument("--paper", action="store_true", help="also run this version on the paper trading node")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--child-paper", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--bars", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        Path(a.out).write_text(json.dumps(paper(a) if a.child_paper else child(a)))
        return
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import pandas as pd
    from memebot.core import shared_dir
    from memebot.features import make_dataset
    from memebot.models.base import make_model
    from memebot.models.registry import log_and_register, promote

    sh = shared_dir(required=True)
    raw = pd.read_parquet(sh / "data/binance_memecoins/ohlcv_5m_2025-01_2025-04.parquet").rename(columns={"date": "ts"})
    tmp = Path(tempfile.mkdtemp(prefix="memebot-bench-ms-"))
    uri = f"sqlite:///{tmp}/mlflow.db"
    t0 = time.perf_counter()
    ds = make_dataset(raw[raw.ts < "2025-03-01"], h=1, fee_bps=10)
    m = make_model("logreg").fit(ds.X, ds.y)
    v = log_and_register(m, "bench-ms", uri, {"family": "logreg"}, ds.fingerprint, metrics_={}, reference_X=ds.X)
    promote("bench-ms", v, uri)
    print(f"champion: logreg v{v} on {len(ds.X):,} rows ({time.perf_counter() - t0:.0f} s)", flush=True)
    step = pd.Timedelta("5min")
    start = pd.Timestamp("2025-03-01", tz="UTC") - WARMUP * step
    env = dict(os.environ, MEMEBOT_AI_TRACKING_URI=uri, MEMEBOT_SHARED=str(sh))
    runs = [("after", ROOT, start + WARMUP * step + pd.Timedelta(days=a.days))]
    if a.paper:
        runs.append(("paper", ROOT, runs[0][2]))
    if a.ref:
        wt = tmp / "before"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(wt), a.ref], cwd=ROOT, check=True, capture_output=True
        )
        runs.insert(0, ("before", wt, start + (WARMUP + a.before_bars) * step))
    out = {"ref": a.ref, "cpu": os.cpu_count()}
    try:
        for name, repo, end in runs:
            f = tmp / f"bars-{name}.parquet"
            raw[(raw.ts >= start) & (raw.ts < end)].to_parquet(f)
            o = tmp / f"{name}.json"
            cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--bars", str(f), "--out", str(o)]
            cmd += ["--child-paper"] if name == "paper" else []
            subprocess.run(cmd, check=True, env=dict(env, PYTHONPATH=str(repo)), cwd=repo)
            out[name] = json.loads(o.read_text())
            r = out[name]
            print(
                f"{name:6s} {r['bars']:>6,} bars x {r['symbols']} symbols: {r['decisions']:>8,} decisions, "
                f"{r['decisions_per_s']:>9,.0f} decisions/s in on_bar, "
                f"{r['run_decisions_per_s']:,.0f}/s whole event loop "
                + (f"(model load {r['model_load_s']:.1f} s before), " if "model_load_s" in r else "")
                + f"bar p50 {r['bar_p50_ms']:.2f} ms, p99 {r['bar_p99_ms']:.2f} ms"
                + (f", tick-to-order p50 {r['tick_to_order_p50_ms']:.2f} ms, p99 {r['tick_to_order_p99_ms']:.2f} ms"
                   if r.get("tick_to_order_p99_ms") is not None else ""),
                flush=True,
            )  # fmt: skip
    finally:
        if a.ref:
            subprocess.run(["git", "worktree", "remove", "--force", str(tmp / "before")], cwd=ROOT, capture_output=True)
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
