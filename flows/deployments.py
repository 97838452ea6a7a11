"""Deployments of the flows, served against a Prefect server (`PREFECT_API_URL`) by `memebot flows serve`.
Schedules (the `[flows] *_cron` strings) are attached only when `[flows] schedules_enabled = true`.

    prefect server start --host 127.0.0.1 &
    PREFECT_API_URL=http://127.0.0.1:4200/api memebot flows serve
"""

from __future__ import annotations
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: F401
from backfill import backfill_flow
from train import train_flow
from report import report_flow
from live import live_flow
from social import social_flow

NAMES = ("backfill", "train", "reports", "paper", "social")


def deployments(names: list[str] | None = None, settings=None) -> list:
    "RunnerDeployments for the flows (schedules only when enabled in settings)."
    from memebot.config import get_settings

    s = settings or get_settings()
    f = s.flows
    cron = (lambda c: {"cron": c}) if f.schedules_enabled else (lambda c: {})
    spec = {
        "backfill": lambda: backfill_flow.to_deployment("backfill", tags=["memebot", "data"], **cron(f.backfill_cron)),
        "train": lambda: train_flow.to_deployment("train", tags=["memebot", "ml"], **cron(f.train_cron)),
        "reports": lambda: report_flow.to_deployment("reports", tags=["memebot", "reports"], **cron(f.report_cron)),
        "paper": lambda: live_flow.to_deployment("paper", tags=["memebot", "trading"], parameters={"mode": "paper"}),
        "social": lambda: social_flow.to_deployment("social", tags=["memebot", "data"], **cron(f.social_cron)),
    }
    bad = [n for n in names or [] if n not in spec]
    if bad:
        from memebot.ops import OpsError

        raise OpsError(f"unknown deployment {bad[0]!r} (one of {', '.join(spec)})")
    return [spec[n]() for n in (names or NAMES)]


def serve(names: list[str] | None = None, limit: int | None = None):
    "Serve the deployments until interrupted (Ctrl-C)."
    from prefect import serve as _serve

    _serve(*deployments(names), limit=limit, print_starting_message=True)


if __name__ == "__main__":
    serve(sys.argv[1:] or None)
