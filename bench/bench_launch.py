"""Launch scoring (issue 19 item 4): the models judged out of time on the shared launch cohorts against naive
baselines, with intervals; what a node pays to score launches live (tape counting and the served model); and the
launch-score gate in the `pump_launch` sniper on the later launches of the shared swap tape, with a model trained only
on launches before them.
Usage: PYTHONPATH=. .venv/bin/python bench/bench_launch.py [--boot 2000 --swaps 1000000]"""

import argparse, logging, os, sys, tempfile, time
import numpy as np, pandas as pd
from memebot.backtest import Engine, round_trips
from memebot.core import NS, Chain, ListFeed, Side, Swap, TokenLaunched, shared_dir
from memebot.exec import make_broker
from memebot.obs import configure_logging
from memebot.models.launch import (LaunchScorer, LaunchTape, evaluate_launch_models, launch_dataset,
                                   register_launch_model)  # fmt: skip
from memebot.models.registry import promote
from memebot.models.serving import Predictor
from memebot.models.wallets import split_launches
from memebot.strategy import get_strategy

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_copy import events  # noqa: E402


def judged(path, boot: int):
    "One table: each cohort's models and baselines out of time."
    rows = []
    for cohort, feats, naive in (
        ("A", "all", None),
        ("B", "all", None),
        ("C", "tape", ("SOL, 1st min", "f60_buy_sol")),
    ):
        X, y, meta = launch_dataset(path, cohort, features=feats)
        t, _ = evaluate_launch_models(X, y, meta["day"], n_boot=boot, **({"naive": naive} if naive else {}))
        for k, r in t.iterrows():
            rows.append({"cohort": f"{cohort} ({feats})", "model": k, "test": t.attrs["test"],
                         "pos": t.attrs["test_positives"],
                         "AUC": f"{r.auc:.3f} [{r.auc_lo:.2f}, {r.auc_hi:.2f}]",
                         "vs naive": f"{r.auc_vs_naive:+.3f} [{r.vs_naive_lo:+.2f}, {r.vs_naive_hi:+.2f}]",
                         "Brier": round(r.brier, 3)})  # fmt: skip
    return pd.DataFrame(rows)


def outcomes(path, boot: int):
    "The tape model on the 1 h to 24 h outcomes (a survivors' sample: launches with candles only)."
    rows = []
    for tgt in ("up_1h", "up_4h", "up_24h", "x2_1h", "x2_4h", "x2_24h"):
        X, y, meta = launch_dataset(path, "C", tgt, "tape", outcomes=path.parent / "launch_outcomes.parquet")
        t, _ = evaluate_launch_models(X, y, meta["day"], n_boot=boot, naive=("SOL, 1st min", "f60_buy_sol"))
        r = t.loc["logreg"]
        rows.append({"target": tgt, "launches": len(X), "test": t.attrs["test"], "pos": t.attrs["test_positives"],
                     "naive AUC": round(t.iloc[1].auc, 3),
                     "logreg AUC": f"{r.auc:.3f} [{r.auc_lo:.2f}, {r.auc_hi:.2f}]"})  # fmt: skip
    return pd.DataFrame(rows)


def scoring_cost(n_swaps: int, pred: Predictor):
    "(swaps/s counted on tapes, p50 and p99 ms to score one launch) on a synthetic stream of `n_swaps`."
    rng = np.random.default_rng(0)
    n_launch = max(n_swaps // 250, 1)
    launch = rng.integers(0, n_launch, n_swaps)
    ts = np.sort(rng.integers(0, 3600 * NS, n_swaps))
    buy, sol, who = rng.random(n_swaps) < 0.55, rng.exponential(0.5, n_swaps), rng.integers(0, 200_000, n_swaps)
    tapes = [LaunchTape() for _ in range(n_launch)]
    t0 = time.perf_counter()
    for i in range(n_swaps):
        tapes[launch[i]].add(int(ts[i]), bool(buy[i]), float(sol[i]), int(who[i]))
    rate = n_swaps / (time.perf_counter() - t0)
    sc = LaunchScorer(pred)
    lat = []
    for k, t in enumerate(tapes[:2000]):
        sc.tapes[f"L{k}"] = t
        t1 = time.perf_counter()
        sc.score(f"L{k}", 2**62)
        lat.append(time.perf_counter() - t1)
    return rate, 1e3 * np.percentile(lat, 50), 1e3 * np.percentile(lat, 99)


def sniper(path, tape: pd.DataFrame, uri: str):
    "The sniper on the later tape launches at 60 s: every launch, and only those the gate passes."
    early, late = split_launches(tape)
    test = tape[tape.mint.isin(late)].sort_values("ts", kind="stable").reset_index(drop=True)
    start = int(test.created.min())
    X, y, meta = launch_dataset(path, "C", features="tape")
    before = (meta.detect_ts < start).to_numpy()
    Xb, yb = X[before], y[before]
    t, _ = evaluate_launch_models(Xb, yb, meta.day[before], n_boot=200, naive=("SOL, 1st min", "f60_buy_sol"))
    v = register_launch_model(Xb, yb, t, uri, name="bench-launch")
    promote("bench-launch", v, uri)
    created = test.groupby("mint").created.min()
    evs = [TokenLaunched(int(c) * NS, Chain.SOLANA, m, m) for m, c in created.items()] + events(test, 0.01)
    evs.sort(key=lambda e: e.ts)
    rows = []
    for name, kw in (("at 60 s, every launch", {"launch_model": "bench-launch", "min_launch_score": 0.0}),
                     ("at 60 s, score >= 0.3", {"launch_model": "bench-launch", "min_launch_score": 0.3})):  # fmt: skip
        strat = get_strategy("pump_launch", size=0.01, take_profit=999.0, stop_loss=0.99, max_hold_s=86400.0,
                             max_open=1000, first_bars=False, launch_uri=uri, **kw)  # fmt: skip
        r = Engine(strat, ListFeed(evs), make_broker("pumpfun", "solana", fee_bps=100.0), cash=1_000.0, risk=None).run()
        rt = round_trips(r.fills, r.portfolio)
        rows.append({"entry": name, "launches": len(created), "entered": len(rt),
                     "mean return": float(rt["return"].mean()) if len(rt) else float("nan"),
                     "pnl (SOL)": r.equity.iloc[-1] - 1_000.0, "skipped": dict(r.skipped)})  # fmt: skip
    return pd.DataFrame(rows), int(before.sum())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--boot", type=int, default=2000)
    ap.add_argument("--swaps", type=int, default=1_000_000)
    a = ap.parse_args()
    logging.disable(logging.INFO)
    configure_logging("WARNING", "json")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    path = shared_dir() / "data/pumpfun/launch_cohorts.json"
    with pd.option_context("display.width", 120, "display.max_columns", 20):
        print(judged(path, a.boot).to_string(index=False))
        print("\nthe tape model on the 1 h to 24 h outcomes (launches with candles only):")
        print(outcomes(path, a.boot).to_string(index=False))
        uri = f"sqlite:///{tempfile.mkdtemp()}/mlflow.db"
        tape = pd.read_parquet(shared_dir() / "data/pumpfun/swaps_first_300s.parquet")
        df, n_train = sniper(path, tape, uri)
        print(f"\nsniper on the later half of the shared tape (model trained on the {n_train} cohort-C launches before"
              " them; pump.fun curve fill, 100 bps a side, held to the end of the tape's 300 s):")  # fmt: skip
        print(df.round(4).to_string(index=False))
        rate, p50, p99 = scoring_cost(a.swaps, Predictor("bench-launch", uri, refresh_s=None, shadow=False))
        print(f"\nscoring: {rate:,.0f} swaps/s counted on launch tapes ({a.swaps:,} synthetic swaps); scoring one"
              f" launch p50 {p50:.2f} ms, p99 {p99:.2f} ms (features + the served logistic model)")  # fmt: skip


if __name__ == "__main__":
    main()
