"""Launch scoring served to strategies: the tape features a node computes equal the training data's, the model is
judged, registered and promoted only through its gate, and `pump_launch` / `copy_trade` enter only what it passes."""

import json

import numpy as np
import pandas as pd
import pytest


def test_tape_features_from_the_shared_swaps_equal_cohort_c(shared):
    from memebot.models.launch import TAPE_FEATURES, tape_features

    mine = tape_features(pd.read_parquet(shared / "data/pumpfun/swaps_first_300s.parquet"))
    c = pd.DataFrame(json.loads((shared / "data/pumpfun/launch_cohorts.json").read_text())["C"]).set_index("mint")
    assert len(mine) == 18 and set(mine.index) <= set(c.index)
    np.testing.assert_allclose(mine.to_numpy(float), c.loc[mine.index, TAPE_FEATURES].to_numpy(float), atol=1e-3)


def _sim_launches(seed: int, minutes: int) -> int:
    "How many of the simulator's launches have their first minute closed before its last event."
    from memebot.core import NS, Swap, TokenLaunched
    from memebot.data.sim import MarketSim

    evs = list(MarketSim(seed=seed, minutes=minutes))
    launched = {e.pool for e in evs if isinstance(e, TokenLaunched)}
    first = {}
    for e in evs:
        if isinstance(e, Swap) and e.pool in launched:
            first.setdefault(e.pool, e.ts)
    return sum(t + 60 * NS <= evs[-1].ts for t in first.values())


def test_launch_model_trained_promoted_and_served_on_paper(memebot, tmp_path, shared):
    "The user's path: `launches train --promote`, then `paper --strategy pump_launch --param launch_model=...`."
    env = {"MEMEBOT_AI_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db", "MLFLOW_DISABLE_TELEMETRY": "true"}
    out = tmp_path / "train.json"
    memebot("launches", "train", "--promote", "--boot", "200", "--json", out, env=env, check=True)
    doc = json.loads(out.read_text())
    assert doc["gate"]["passed"] and doc["promoted"] and doc["version"] == "1", doc
    n = _sim_launches(3, 30)
    assert n >= 3
    stats = {}
    for floor in (0.0, 1.0):  # every scored launch passes a floor of 0, none passes 1
        rep = tmp_path / f"paper{floor}.json"
        memebot("paper", "--feed", "sim", "--minutes", "30", "--seed", "3", "--strategy", "pump_launch",
                "--param", "launch_model=memebot-launch-score", "--param", f"min_launch_score={floor}",
                "--json", rep, env=env, check=True)  # fmt: skip
        stats[floor] = json.loads(rep.read_text())["status"]["order_stats"]
    # passed launches wait for the price circuit to let entries in, then are sent (and the risk engine judges them)
    assert stats[0.0]["submitted"] >= 1 and "launch_score_low" not in stats[0.0]["skipped"], stats
    assert stats[1.0]["submitted"] == 0 and stats[1.0]["skipped"] == {"launch_score_low": n}, stats
    # the same model as token safety ([risk] safety_launch_model): whatever the strategy, no entry before a score
    risk = dict(env, MEMEBOT_RISK_SAFETY_LAUNCH_MODEL="memebot-launch-score", MEMEBOT_RISK_SAFETY_MIN_LAUNCH_SCORE="0")
    both, own = {}, ["--param", "launch_model=memebot-launch-score", "--param", "min_launch_score=0"]
    for gated in ("plain", "gated"):
        rep = tmp_path / f"risk-{gated}.json"
        memebot("paper", "--feed", "sim", "--minutes", "30", "--seed", "3", "--strategy", "pump_launch",
                *(own if gated == "gated" else []),
                "--json", rep, env=risk, check=True)  # fmt: skip
        both[gated] = json.loads(rep.read_text())["status"]["order_stats"]
    assert both["plain"]["submitted"] == 0 and both["plain"]["skipped"]["risk limits leave no room"] >= n, both
    assert both["gated"]["submitted"] == stats[0.0]["submitted"], both  # scored launches pass a floor of 0


def test_a_launch_model_that_fails_its_gate_is_registered_but_not_promoted(memebot, tmp_path):
    from memebot.models.launch import TAPE_FEATURES
    from memebot.models.registry import aliases

    rng = np.random.default_rng(1)
    rows = [{**dict(zip(TAPE_FEATURES, rng.poisson(20, len(TAPE_FEATURES)).tolist())), "mint": f"m{i}",
             "detect_ts": 1_780_000_000 + 600 * i, "day": f"2026-06-{1 + i // 40:02d}", "detect_mc": 5e4,
             "t_ath_ge_300k": int(rng.random() < 0.3)} for i in range(200)]  # fmt: skip
    path = tmp_path / "cohorts.json"
    path.write_text(json.dumps({"C": rows, "meta": {}}))
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    r = memebot("launches", "train", "--cohorts", path, "--promote", "--boot", "200", "--json", "-",
                env={"MEMEBOT_AI_TRACKING_URI": uri, "MLFLOW_DISABLE_TELEMETRY": "true"}, check=True)  # fmt: skip
    doc = json.loads(r.stdout[r.stdout.index("{") :])
    assert not doc["gate"]["passed"] and not doc["promoted"] and "base rate" in doc["gate"]["why"]
    assert "champion" not in aliases("memebot-launch-score", uri)
    bad = memebot("launches", "eval", "--cohorts", path, "--cohort", "A")
    assert bad.returncode == 2 and "cohort 'A'" in bad.stderr
