"""The trading flow: runs the TradingNode (paper by default) as a long-running flow. It refuses to start while the
kill switch is engaged, resumes after a crash from the ledger (a stable run id: the node reloads its orders, fills and
positions from its own ledger file, <[store] ledger_dir>/<run_id>.duckdb, before trading),
    and stops when the kill switch trips. Prefect retries the flow after a crash.

    python flows/live.py --strategy ema_cross --feed replay
"""

from __future__ import annotations
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: F401
from prefect import flow, get_run_logger
from memebot.data.store import store_path
from memebot import ops


@flow(name="live", log_prints=True, retries=3, retry_delay_seconds=30)
def live_flow(
    strategy: str = "ema_cross",
    feed: str = "replay",
    params: dict | None = None,
    model: str | None = None,
    mode: str = "paper",
    run_id: str | None = None,
    store: str | None = None,
    max_minutes: float | None = None,
    tf: str = "5m",
) -> dict:
    "Run the TradingNode until stopped (kill switch, max_minutes or the feed ends); resumes from the ledger."
    pre = ops.live_preflight(mode)
    run_id = run_id or f"{mode}-{strategy}"  # stable: a restarted flow resumes the same ledger run
    get_run_logger().info(f"{mode} node: strategy={strategy} feed={feed} run_id={run_id} kill_file={pre['kill_file']}")
    if mode == "live":  # real swaps need the operator's explicit flag: `memebot live run`, not a scheduler
        raise ops.OpsError(
            "the live flow runs the paper node only: real swaps run under `memebot live run --strategy NAME "
            "--mint MINT --yes-i-mean-live`, started by an operator"
        )
    import asyncio
    from memebot.exec.ledger import Ledger, ledger_store
    from memebot.strategy import get_strategy
    from memebot import live
    from memebot.live import build_feed

    strat = get_strategy(
        "model_signal" if model else strategy, {**(params or {}), **({"model": model} if model else {})}
    )
    fd, ch = build_feed({"feed": feed, "tf": tf}, store_path(store))  # replay | sim | live
    st = ledger_store(run_id)  # the run's own ledger: <ledger_dir>/<run_id>.duckdb
    try:
        node = live.TradingNode(
            strat, fd, ledger=Ledger(st, run_id=run_id, chain=ch, wallet="paper"), run_id=run_id, store=st
        )

        async def run():
            if max_minutes:
                asyncio.get_running_loop().call_later(max_minutes * 60, node.stop, "max_minutes reached")
            return await node.run(handle_signals=False)  # reloads the ledger first; halts on the kill switch

        asyncio.run(run())
        out = node.status()
        out["consistency"] = node.consistency()
        return out
    finally:
        st.close()


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--strategy", default="ema_cross")
    ap.add_argument("--feed", default="replay")
    ap.add_argument("--max-minutes", type=float)
    ap.add_argument("--tf", default="5m")
    ap.add_argument("--model")
    a = ap.parse_args()
    print(live_flow(strategy=a.strategy, feed=a.feed, max_minutes=a.max_minutes, tf=a.tf, model=a.model))
