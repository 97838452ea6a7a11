"""Cross-chain arbitrage detection benchmark (issue 16): latency from a pool update to the opportunities it opens
(p50/p99/p99.9) and updates per second on one core, with 1,000 pools over 4 chains (250 tokens, each with a pool on
Solana, Ethereum, BSC and Polygon), both modes (inventory and bridge) evaluated on every update. Beside it in the same
run, the same detector sizing each trade by a numeric search (scipy's bounded minimize_scalar, as a detector without
the closed form would) instead of `two_pool_optimum`.

    PYTHONPATH=. .venv/bin/python bench/bench_crosschain.py [--updates 100000] [--json OUT]
"""

import argparse, json, math, sys, time
from pathlib import Path
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import memebot.live.crosschain as cc
from memebot.live.crosschain import ArbCosts, ArbDetector, CrossChainSim, cp_out

GAS = {"solana": 0.01, "ethereum": 6.0, "bsc": 0.15, "polygon": 0.02}


def numeric_optimum(xa, ya, ga, xb, yb, gb):
    "The profit-maximizing input found by search (what a detector without the closed form does)."
    from scipy.optimize import minimize_scalar

    if not ga * gb * xa * yb > ya * xb:
        return 0.0, 0.0
    f = lambda q: -(cp_out(cp_out(q, ya, xa, ga), xb, yb, gb) - q)
    r = minimize_scalar(f, bounds=(0.0, ya), method="bounded", options={"xatol": 1e-9 * ya})
    return r.x, cp_out(cp_out(r.x, ya, xa, ga), xb, yb, gb)


def run(updates, label, tokens=250, seed=7):
    sim = CrossChainSim(tokens=tokens, seed=seed)
    det = ArbDetector(ArbCosts(), keep=1_000)
    for p in sim.pools():
        det.watch(*p)
    for c, usd in GAS.items():
        det.set_gas(c, usd)
    evs = list(sim.updates(updates))
    lat = np.empty(len(evs), np.int64)
    found = evaluated = 0
    pc = time.perf_counter_ns
    t0 = time.perf_counter()
    for i, ev in enumerate(evs):
        a = pc()
        out = det.on_pool_update(ev)
        lat[i] = pc() - a
        evaluated += len(out)
        found += sum(o.profitable for o in out)
    wall = time.perf_counter() - t0
    us = lat / 1000.0
    return {
        "detector": label,
        "pools": len(det.pools),
        "updates": len(evs),
        "evaluated": evaluated,
        "opportunities": found,
        "p50_us": float(np.percentile(us, 50)),
        "p99_us": float(np.percentile(us, 99)),
        "p999_us": float(np.percentile(us, 99.9)),
        "updates_per_s": len(evs) / wall,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--updates", type=int, default=100_000)
    ap.add_argument("--search-updates", type=int, default=10_000, help="updates for the slower numeric-search run")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    rows = [run(a.updates, "memebot ArbDetector (closed form)")]
    closed = cc.two_pool_optimum
    cc.two_pool_optimum = numeric_optimum
    try:
        rows.append(run(a.search_updates, "same detector, numeric search"))
    finally:
        cc.two_pool_optimum = closed
    print("| detector | pools | updates | opportunities | p50 µs | p99 µs | p99.9 µs | updates/s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['detector']} | {r['pools']:,} | {r['updates']:,} | {r['opportunities']:,} | {r['p50_us']:.1f} | "
            f"{r['p99_us']:.1f} | {r['p999_us']:.1f} | {r['updates_per_s']:,.0f} |"
        )
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
