"""Train and promote: candles from the store -> features -> train (walk-forward evaluation against baselines) ->
register in MLflow -> promotion gate (@champion moves only when the candidate beats the best naive baseline and the
current champion on the same held-out window by [ai] promotion_margin; otherwise it is tagged @challenger).

    python flows/train.py --family logreg --tf 5m
"""

from __future__ import annotations
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: F401
from prefect import flow, task, get_run_logger
from prefect.cache_policies import NO_CACHE
from memebot import ops

ops.pickle_by_value(__name__)


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5)
def load_candles(store: str | None, tf: str, symbols: list[str] | None, source: str | None):
    "Long candles for training from the store."
    return ops.training_candles(store, tf, symbols, source)


@task(cache_policy=NO_CACHE)
def build_features(candles, horizon: int) -> dict:
    "Features and labels once, to fail early on too little data."
    return ops.feature_summary(candles, horizon)


@task(cache_policy=NO_CACHE, task_run_name="train {family}")
def train_register(
    candles, family: str, params: dict, name: str | None, tf: str, horizon: int, splits: int, tracking_uri: str | None
) -> dict:
    "Walk-forward evaluate, fit, log and register one family; the promotion gate decides its alias."
    from memebot.models.registry import train_and_register

    r = train_and_register(
        candles, family, params, name=name, tf=tf, h=horizon, n_splits=splits, uri=tracking_uri, progress=False
    )
    get_run_logger().info(f"{r.name} v{r.version} -> @{r.gate.decision}: {r.gate.reason}")
    return {
        "family": family,
        "name": r.name,
        "version": r.version,
        "decision": r.gate.decision,
        "reason": r.gate.reason,
        "metric": r.gate.metric,
        "candidate_score": r.gate.candidate_score,
        "baseline": r.gate.baseline,
        "baseline_score": r.gate.baseline_score,
        "champion_version": r.gate.champion_version,
        "champion_score": r.gate.champion_score,
        "holdout": r.holdout[family],
    }


@task(cache_policy=NO_CACHE)
def promotion(name: str, tracking_uri: str | None) -> dict:
    "Where the aliases point after the gate."
    from memebot.models.registry import aliases, tracking_uri as default_uri

    return aliases(name, tracking_uri or default_uri())


@flow(name="train", log_prints=True)
def train_flow(
    families: list[str] | None = None,
    tf: str = "5m",
    symbols: list[str] | None = None,
    source: str | None = None,
    store: str | None = None,
    name: str | None = None,
    params: dict | None = None,
    horizon: int = 1,
    splits: int = 3,
    tracking_uri: str | None = None,
) -> list[dict]:
    "features -> train -> evaluate -> register -> promotion gate, per family."
    from memebot.config import get_settings
    from memebot.commands.ml import default_families, check_family

    ai = get_settings().ai
    fams = list(families or default_families(ai))
    if not fams:
        raise ops.OpsError("nothing to train: [ai] model_training_enabled = false")
    for f in fams:
        check_family(ai, f)
    candles = load_candles(store, tf, symbols, source)
    summary = build_features(candles, horizon)
    get_run_logger().info(f"dataset: {summary}")
    out = []
    for f in fams:
        r = train_register(
            candles, f, dict(params or {}), name if len(fams) == 1 else None, tf, horizon, splits, tracking_uri
        )
        r["aliases"] = promotion(r["name"], tracking_uri)
        if "champion" not in r["aliases"]:
            get_run_logger().warning(
                f"{r['name']} has no @champion: no version beat the naive baselines "
                f"(an operator can choose one: memebot models promote {r['name']} VERSION)"
            )
        out.append(r)
    return out


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--family", action="append")
    ap.add_argument("--tf", default="5m")
    a = ap.parse_args()
    print(train_flow(families=a.family, tf=a.tf))
