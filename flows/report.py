"""Reports: papermill runs the parameterized report notebooks in nbs/reports/ (daily PnL/risk from the ledger, data
quality, model performance) and nbconvert renders each to HTML under `[flows] report_dir`/<date>/.

    python flows/report.py
"""

from __future__ import annotations
import sys
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: F401
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from memebot.data.store import store_path
from memebot import ops


@task(cache_policy=NO_CACHE, retries=1, task_run_name="report {name}")
def render(name: str, out_dir: str, parameters: dict) -> str:
    "Execute one report template and render it to HTML."
    return str(ops.run_report(name, out_dir, parameters))


@flow(name="reports", log_prints=True)
def report_flow(
    reports: list[str] | None = None,
    out_dir: str | None = None,
    store: str | None = None,
    tracking_uri: str | None = None,
    day: str = "",
) -> dict:
    "Render the report notebooks to HTML; returns {report: html path}."
    from memebot.config import get_settings
    from memebot.models.registry import tracking_uri as default_uri

    s = get_settings()
    names = list(reports or ops.REPORTS)
    bad = [n for n in names if n not in ops.REPORTS]
    if bad:
        raise ops.OpsError(f"unknown report {bad[0]!r} (one of {', '.join(ops.REPORTS)})")
    out = out_dir or str(s.resolve(s.flows.report_dir) / (day or datetime.now(timezone.utc).strftime("%Y-%m-%d")))
    sp = str(store_path(store, s))
    params = {
        "daily": {"store_path": sp, "day": day, "kill_file": str(s.resolve(s.live.kill_file))},
        "quality": {"store_path": sp},
        "models": {"tracking_uri": tracking_uri or default_uri(s)},
    }
    futs = {n: render.submit(n, out, params[n]) for n in names}
    return {n: f.result() for n, f in futs.items()}


if __name__ == "__main__":
    print(report_flow())
