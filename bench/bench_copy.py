"""Copy trading by entry delay (issue 19 item 3), event-driven: the `copy_trade` strategy in the backtest Engine on the
shared pump.fun tape, following the 25 wallets with the highest PnL on the earlier half of the launches on the later
half (out of time; the leaders of `nbs/38_models.wallets.ipynb`), at delays of 0, 1, 2, 5 and 10 slots (0.4 s each),
beside the vectorized `models.wallets.copy_trades` on the same wallets and launches. Fills: the bar model (the next
swap's price) with 100 bps a side, as the vectorized measure, and the pump.fun curve model (its price impact too).
Exits: the wallet's sell, else the end of the tape.
Usage: PYTHONPATH=. .venv/bin/python bench/bench_copy.py [--top 25 --min-sol 0.01]"""

import argparse, logging, time
import numpy as np, pandas as pd
from memebot.backtest import Engine, round_trips
from memebot.core import NS, Chain, ListFeed, Side, Swap, shared_dir
from memebot.data.wallets import wallet_positions
from memebot.exec import make_broker
from memebot.models.wallets import _trade_times, copy_trades, naive_rankings, split_launches
from memebot.strategy import get_strategy

SLOT_S = 0.4
CURVE_START = 30 / 1.073e9  # SOL per token at a pump.fun launch: the lowest price on the curve


def events(tape: pd.DataFrame, min_sol: float) -> list[Swap]:
    "The tape as Swap events, trades within one second spread over it in tape order (as `copy_trades`). The tape rounds"
    " SOL to 4 decimals, so a swap under `min_sol` has a noise price: it keeps who, when and which side (a watched"
    " wallet's small buy is still a signal) but is priced at the mint's last reliable swap, or left out; so is a price"
    " below the pump.fun curve's first price (30 SOL / 1.073e9 tokens), which no trade on the curve can have."
    t, last, out = _trade_times(tape), {}, []
    for ts, m, sd, tok, sol, w in zip(t, tape.mint, tape.side, tape.tokens, tape.sol, tape.trader):
        if not tok > 0:
            continue
        if sol >= min_sol and sol / tok >= CURVE_START:
            last[m] = sol / tok
        elif m in last:
            tok = sol / last[m] if sol > 0 else 1.0
            sol = tok * last[m]
        else:
            continue
        out.append(Swap(int(ts * NS), Chain.SOLANA, m, Side(sd), tok, sol, w))
    return out


def run(evs, wallets, delay_slots, fill):
    strat = get_strategy("copy_trade", wallets=",".join(wallets), size=0.01, delay_s=delay_slots * SLOT_S,
                         take_profit=999.0, stop_loss=0.99, max_hold_s=30 * 86400.0, max_open=1000)  # fmt: skip
    r = Engine(strat, ListFeed(evs), make_broker(fill, "solana", fee_bps=100.0), cash=1_000.0, risk=None).run()
    rt = round_trips(r.fills, r.portfolio)
    ret = rt["return"] if len(rt) else pd.Series(dtype=float)  # net of both sides' fees
    return len(rt), float(ret.mean()) if len(rt) else float("nan"), r.equity.iloc[-1] - 1_000.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--min-sol", type=float, default=0.01)
    a = ap.parse_args()
    logging.disable(logging.INFO)
    tape = pd.read_parquet(shared_dir() / "data/pumpfun/swaps_first_300s.parquet")
    early, late = split_launches(tape)
    past = naive_rankings(wallet_positions(tape[tape.mint.isin(early)]))["highest past PnL"]
    wallets = list(past.nlargest(a.top).index)
    test = tape[tape.mint.isin(late)].sort_values("ts", kind="stable").reset_index(drop=True)
    evs = events(test, a.min_sol)
    print(f"{len(evs):,} swaps of {len(late)} later launches; following the {len(wallets)} wallets with the highest "
          f"PnL on the {len(early)} earlier ones")  # fmt: skip
    vec = copy_trades(test, wallets, delays=(0, 1, 2, 5, 10), fee_bps=100.0, min_sol=a.min_sol)
    rows = []
    for d in (0, 1, 2, 5, 10):
        t0 = time.perf_counter()
        n_bar, r_bar, pnl_bar = run(evs, wallets, d, "bar")
        dt = time.perf_counter() - t0
        n_amm, r_amm, _ = run(evs, wallets, d, "pumpfun")
        v = vec[vec.delay == d]
        rows.append({"delay_slots": d, "vector_copies": len(v), "vector_mean_ret": v.ret.mean(),
                     "engine_copies": n_bar, "engine_mean_ret": r_bar, "engine_pnl_sol": pnl_bar,
                     "curve_mean_ret": r_amm, "engine_s": dt})  # fmt: skip
    df = pd.DataFrame(rows).set_index("delay_slots")
    with pd.option_context("display.width", 120):
        print(df.round(4).to_string())
    print("\nvector: one copy per (wallet, launch); engine: one per launch (its first watched buyer), 1% of equity")


if __name__ == "__main__":
    main()
