"""Social collection: every `[flows] social_channels` entry (source:channel, e.g. `x:$WIF`, `reddit:solana`,
`discord:123456789012345678`, `telegram:` for every chat the bot sees) collected into the market store — the new
posts only, from where the last run stopped, with their token mentions (and sentiment when [ai] enables it).

    python flows/social.py
"""

from __future__ import annotations
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: F401
from prefect import flow, task
from prefect.cache_policies import NO_CACHE


def parse_channels(items) -> list[tuple[str, str]]:
    "`source:channel` items (a list, or one comma-separated string) as pairs; a ValidationError names a bad one."
    from memebot.core import ValidationError
    from memebot.data.social import SOCIAL_SOURCES

    if isinstance(items, str):
        items = [x for x in items.split(",") if x.strip()]
    out = []
    for it in items:
        src, sep, ch = it.strip().partition(":")
        if not sep or src not in SOCIAL_SOURCES or (not ch and src != "telegram"):
            raise ValidationError("flows", "social_channels", f"{it!r}: expected source:channel, source one of "
                                  f"{', '.join(SOCIAL_SOURCES)} (telegram: may omit the channel)")  # fmt: skip
        out.append((src, ch))
    return out


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=10, task_run_name="collect {source}:{channel}")
def collect_channel(source: str, channel: str, store: str | None = None) -> dict:
    "One channel's new posts into the store."
    import asyncio
    from memebot.commands.social import mention_names, sentiment_scorer
    from memebot.config import get_settings
    from memebot.data.social import collect
    from memebot.data.sources import close_http
    from memebot.data.store import open_store

    s = get_settings()

    async def go():
        try:
            with open_store(store, s) as st:
                return await collect(st, source, channel, s, mention_names(s), sentiment_scorer(s))
        finally:
            await close_http()

    read, new = asyncio.run(go())
    return {"source": source, "channel": channel or "*", "read": read, "new": new}


@flow(name="social", log_prints=True)
def social_flow(channels: list[str] | None = None, store: str | None = None) -> list[dict]:
    "Collect every channel (default `[flows] social_channels`), one after another (each provider's rate limit holds)."
    from memebot.config import get_settings

    items = parse_channels(channels if channels is not None else get_settings().flows.social_channels)
    if not items:
        print("no channels to collect: set [flows] social_channels (e.g. x:$WIF,reddit:solana)")
        return []
    out = [collect_channel(src, ch, store) for src, ch in items]
    for r in out:
        print(f"{r['source']} {r['channel']!r}: {r['read']} read, {r['new']} new")
    return out


if __name__ == "__main__":
    social_flow()
