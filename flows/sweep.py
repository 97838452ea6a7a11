"""A parameter sweep split into chunks, scaled out on prefect-dask's DaskTaskRunner (a LocalCluster of
`[flows] dask_workers` processes by default, or the scheduler at `[flows] dask_address`).

    python flows/sweep.py --strategy ema_cross --grid fast=3:30:1 --grid slow=20:120:5 --tf 5m --workers 2
"""

from __future__ import annotations
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: F401
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from memebot import ops

ops.pickle_by_value(__name__)


@task(cache_policy=NO_CACHE, task_run_name="sweep chunk {i}")
def sweep_chunk(i: int, strategy: str, frame, grid: dict, fees_bps: float):
    "One chunk of the grid over every symbol."
    return ops.sweep_chunk(strategy, frame, grid, fees_bps=fees_bps)


@flow(name="sweep", log_prints=True)
def sweep_flow(
    strategy: str,
    grid: dict,
    tf: str = "5m",
    symbols: list[str] | None = None,
    source: str | None = None,
    store: str | None = None,
    chunks: int = 4,
    fees_bps: float = 10.0,
    frame=None,
):
    "Sweep `grid` over the stored candles in `chunks` parallel tasks; one row per (combination, symbol)."
    import pandas as pd

    frame = frame if frame is not None else ops.sweep_frame(store, tf, symbols, source)
    futs = [sweep_chunk.submit(i, strategy, frame, g, fees_bps) for i, g in enumerate(ops.split_grid(grid, chunks))]
    return pd.concat([f.result() for f in futs], ignore_index=True)


def run_sweep(*args, workers: int | None = None, address: str | None = None, **kw):
    "Run `sweep_flow` on Dask (LocalCluster of `workers` processes, or `address`)."
    return sweep_flow.with_options(task_runner=ops.task_runner("dask", workers, address))(*args, **kw)


if __name__ == "__main__":
    import argparse
    from memebot.backtest.vector import parse_grid

    ap = argparse.ArgumentParser()
    ap.add_argument("--strategy", default="ema_cross")
    ap.add_argument("--grid", action="append", required=True)
    ap.add_argument("--tf", default="5m")
    ap.add_argument("--workers", type=int)
    ap.add_argument("--chunks", type=int, default=8)
    a = ap.parse_args()
    res = run_sweep(a.strategy, parse_grid(a.grid), a.tf, chunks=a.chunks, workers=a.workers)
    print(
        res.groupby(
            [c for c in res.columns if c not in ("symbol", "total_return", "sharpe", "max_drawdown", "trades")]
        )["sharpe"]
        .mean()
        .sort_values()
        .tail(10)
    )
