"""Reinforcement learning (issue 20 item 9): tabular Q-learning and PPO trained in the event engine on the Binance
memecoins, walk-forward, judged out of sample net of fees beside buy & hold, the best rule strategy and the best
supervised model, each traded through the same engine at 1/N of equity; day-block bootstrap intervals of each
contender's daily return less buy & hold's; training times. Needs ../shared.
Usage: PYTHONPATH=. .venv/bin/python bench/bench_rl.py [--tf 1h --folds 2 --episodes 40 --timesteps 50000]"""

import argparse, contextlib, io, logging, time
import pandas as pd
from memebot.core import shared_dir
from memebot.backtest.rl import walk_forward_rl


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tf", default="1h", choices=["1h", "5m"])
    ap.add_argument("--folds", type=int, default=2)
    ap.add_argument("--episodes", type=int, default=40)
    ap.add_argument("--timesteps", type=int, default=50_000)
    ap.add_argument("--symbols", type=int, default=0, help="first N symbols (0: all)")
    ap.add_argument("--fee-bps", type=float, default=10.0)
    a = ap.parse_args()
    raw = pd.read_parquet(shared_dir() / f"data/binance_memecoins/ohlcv_{a.tf}_2025-01_2025-04.parquet")
    c = raw.rename(columns={"date": "ts"})
    c = c[~c.symbol.isin(["BTC/USDT", "SOL/USDT"])]  # context series: not traded
    if a.symbols:
        c = c[c.symbol.isin(sorted(c.symbol.unique())[: a.symbols])]
    logging.disable(logging.INFO)
    span = f"{c.ts.min():%Y-%m-%d} to {c.ts.max():%Y-%m-%d}"
    print(f"{c.symbol.nunique()} symbols, {span}, {a.tf} bars, {a.folds} folds, fee {a.fee_bps:g} bps a side, "
          f"Q {a.episodes} episodes, PPO {a.timesteps} steps")  # fmt: skip
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # MLflow's registration lines
        wf = walk_forward_rl(c, a.tf, folds=a.folds, fee_bps=a.fee_bps, q_episodes=a.episodes,
                             ppo_timesteps=a.timesteps)  # fmt: skip
    print(f"walk-forward in {time.perf_counter() - t0:,.0f} s\n")
    f = wf["folds"].pivot(index="contender", columns="fold", values="net_return")
    f.columns = [f"fold {k} ({d})" for k, d in zip(f.columns, wf["folds"].groupby("fold").test_start.first())]
    print("net return out of sample, per test block:")
    print((f * 100).round(2).to_string(), "\n")
    iv = wf["vs_buy_and_hold"]
    print("daily return less buy & hold's, mean and 95% day-block bootstrap interval (percent a day):")
    print((iv[["mean_daily_diff", "lo", "hi"]] * 100).round(3).assign(days=iv.days.astype(int)).to_string(), "\n")
    print("training seconds per fold:")
    print(wf["train_s"].round(1).to_string(index=False))


if __name__ == "__main__":
    main()
