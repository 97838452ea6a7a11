"""Backfill the watchlist (`[flows] watchlist`): one task per source/pool with retries on I/O and a per-provider
concurrency limit, then data-quality checks. Threads by default (resumable backfills straight into the store); on a
Dask task runner each task backfills a shard and the flow upserts the shards.

    python flows/backfill.py                      # threads, the settings' watchlist
    python flows/backfill.py --dask               # a LocalCluster of [flows] dask_workers processes (or dask_address)
"""

from __future__ import annotations
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: F401  (Prefect env before prefect)
from prefect import flow, task, get_run_logger
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from memebot import ops

ops.pickle_by_value(__name__)
IO_RETRY = dict(retries=3, retry_delay_seconds=[2, 10, 60], retry_jitter_factor=0.5, cache_policy=NO_CACHE)


@task(task_run_name="backfill {item}", **IO_RETRY)
def backfill_series(item: str, store: str | None = None, since: str | None = None, until: str | None = None) -> dict:
    "Backfill one watchlist entry into the store (resumable; only missing ranges are fetched)."
    return ops.backfill_item(item, store, since, until)


@task(task_run_name="fetch {item}", **IO_RETRY)
def backfill_shard(item: str, since: str | None = None, until: str | None = None):
    "Backfill one entry into a shard on a worker process; returns its candles."
    return ops.backfill_shard(item, since, until)


@task(cache_policy=NO_CACHE)
def merge_shards(frames: list, store: str | None = None) -> dict:
    "Upsert the shards' candles into the store."
    return ops.merge_candles(frames, store)


@task(cache_policy=NO_CACHE)
def check_quality(store: str | None, items: list[str]) -> list[dict]:
    "Data-quality report of the backfilled series (findings go to quarantine)."
    q = ops.quality_check(store, items)
    return [{k: (str(v) if hasattr(v, "isoformat") else v) for k, v in r.items()} for r in q.to_dict("records")]


def _on_dask() -> bool:
    ctx = FlowRunContext.get()
    return ctx is not None and type(ctx.task_runner).__name__ == "DaskTaskRunner"


@flow(name="backfill", log_prints=True)
def backfill_flow(
    watchlist: list[str] | None = None, store: str | None = None, since: str | None = None, until: str | None = None
) -> dict:
    "Backfill every watchlist entry, then check data quality."
    items = ops.parse_watchlist(watchlist)
    logger = get_run_logger()
    if _on_dask():
        futs = [
            backfill_shard.with_options(tags={f"provider:{it.source}"}).submit(str(it), since, until) for it in items
        ]
        counts = {"merged": merge_shards(futs, store)}
    else:
        futs = [
            backfill_series.with_options(tags={f"provider:{it.source}"}).submit(str(it), store, since, until)
            for it in items
        ]
        counts = {str(it): f.result() for it, f in zip(items, futs)}
    quality = check_quality(store, [str(i) for i in items])
    bad = sum(r["invalid"] + r["flagged"] for r in quality)
    logger.info(f"backfilled {len(items)} series; quality: {bad} invalid or flagged bars")
    return {"series": counts, "quality": quality}


if __name__ == "__main__":
    runner = ops.task_runner("dask") if "--dask" in sys.argv else None
    f = backfill_flow.with_options(task_runner=runner) if runner else backfill_flow
    print(f())
