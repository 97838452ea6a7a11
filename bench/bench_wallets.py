"""Wallet analytics throughput (issue 19): `wallet_positions` + `wallet_summary` on a synthetic tape of one million
swaps (2,000 mints, 100,000 wallets, 55% buys), and on the shared pump.fun tape (11,324 real swaps).

    PYTHONPATH=. .venv/bin/python bench/bench_wallets.py --swaps 1000000 --runs 3
"""

import argparse, time
import numpy as np, pandas as pd


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--swaps", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    from memebot.data.wallets import wallet_positions, wallet_summary
    from memebot.core import shared_dir

    rng = np.random.default_rng(0)
    n = a.swaps
    tape = pd.DataFrame(
        {
            "mint": rng.integers(0, 2000, n).astype(str),
            "ts": np.sort(rng.integers(0, 10**7, n)),
            "side": np.where(rng.random(n) < 0.55, "buy", "sell"),
            "sol": rng.exponential(0.5, n),
            "tokens": rng.exponential(1e6, n),
            "trader": rng.integers(0, 100_000, n).astype(str),
        }
    )
    best = min(_time(lambda: wallet_summary(wallet_positions(tape))) for _ in range(a.runs))
    print(f"synthetic: {n:,} swaps in {best:.2f} s (best of {a.runs}) = {n / best:,.0f} swaps/s")
    sh = shared_dir(required=False)
    if sh is not None:
        sw = pd.read_parquet(sh / "data/pumpfun/swaps_first_300s.parquet")
        b = min(_time(lambda: wallet_summary(wallet_positions(sw))) for _ in range(a.runs))
        print(f"pump.fun tape: {len(sw):,} swaps in {b * 1e3:.0f} ms = {len(sw) / b:,.0f} swaps/s")


def _time(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
