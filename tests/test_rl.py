"""Reinforcement learning in the event engine: the environment is the backtest (the same fills, fees and equity as a
strategy taking the same actions, under every fill model that trades candles), a trained policy survives pickling,
registers in MLflow and trades through model_signal like any model."""

import math
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings as hsettings, strategies as hs
from memebot.backtest import CandleFeed, Engine
from memebot.backtest.rl import TradingEnv, fit_scaler, train_ppo, train_q
from memebot.exec import make_broker
from memebot.strategy import Param, Strategy

WARMUP = 60


def walk(symbols=("AAA/USDT",), n=220, seed=0):
    "Random-walk hourly candles (a fixture)."
    rng, out = np.random.default_rng(seed), []
    ts = pd.date_range("2025-01-01", periods=n, freq="1h", tz="UTC")
    for s in symbols:
        c = np.exp(np.cumsum(rng.normal(0, 0.02, n)))
        o = np.r_[c[0], c[:-1]]
        hi, lo = np.maximum(o, c) * 1.003, np.minimum(o, c) * 0.997
        out.append(pd.DataFrame({"symbol": s, "ts": ts, "open": o, "high": hi, "low": lo, "close": c,
                                 "volume": rng.uniform(5e2, 5e3, n)}))  # fmt: skip
    return pd.concat(out, ignore_index=True)


class Scripted(Strategy):
    "Takes the given actions bar by bar after the warm-up, as the environment does."

    name, version, history = "_test_scripted", "1", 0
    params = {"size": Param(float, 0.25, 0.0, 1.0)}

    def __init__(self, actions, **kw):
        super().__init__(**kw)
        self.actions = list(actions)

    def on_start(self, ctx):
        self.n = 0

    def on_bar(self, ctx, bars):
        self.n += 1
        i = self.n - WARMUP
        if i < 0 or i >= len(self.actions):
            return
        s = bars.symbols[0]
        if self.actions[i] == 1 and ctx.position(s) <= 0 and not ctx.open_orders(s):
            ctx.buy(s, notional=min(self.p.size * ctx.equity(), ctx.max_buy(s)), tag="rl")
        elif self.actions[i] == 0 and ctx.position(s) > 0:
            ctx.close(s, tag="rl")


@pytest.mark.parametrize("fill", ["bar", "volume", "amm"])
@hsettings(max_examples=6, deadline=None)
@given(actions=hs.lists(hs.integers(0, 1), min_size=100, max_size=100))
def test_the_environment_is_the_backtest_under_every_fill_model(fill, actions):
    c = walk(n=WARMUP + 100)  # 100 steps after the warm-up
    env = TradingEnv(c, "1h", fit_scaler(c, WARMUP), fill=fill, warmup=WARMUP)
    env.reset(seed=0)
    rewards, done, i = [], False, 0
    while not done:
        _, r, done, _, _ = env.step(actions[i])
        rewards.append(r)
        i += 1
    res = env.engine.finish()
    ref = Engine(Scripted(actions), CandleFeed.from_frame(c, tf="1h"), make_broker(fill, "cex"), cash=10_000.0).run()
    assert [(f.side, f.qty, f.price, f.fee) for f in res.fills] == [(f.side, f.qty, f.price, f.fee) for f in ref.fills]
    assert res.equity.iloc[-1] == pytest.approx(ref.equity.iloc[-1], rel=1e-12)
    assert sum(rewards) == pytest.approx(math.log(res.equity.iloc[-1] / res.equity.iloc[WARMUP - 1]), abs=1e-9)
    assert env.rejected == 0 and len(ref.orders) == len(res.orders)  # the default [risk] limits let these through


def test_a_policy_registers_and_trades_through_model_signal(tmp_path):
    from memebot.features import OnlineFeatures
    from memebot.models.base import load_model
    from memebot.models.registry import log_and_register, promote
    from memebot.models.rl import RL_FEATURES
    from memebot.strategy import get_strategy

    c = walk(("AAA/USDT", "BBB/USDT"), n=400, seed=1)
    sc = fit_scaler(c, WARMUP)
    envs = [TradingEnv(g, "1h", sc, warmup=WARMUP) for _, g in c.groupby("symbol")]
    q, ppo = train_q(envs, episodes=6, seed=1), train_ppo(envs, timesteps=256, n_steps=64, seed=1)
    X = OnlineFeatures(()).frame(c)[list(RL_FEATURES)]
    for pol in (q, ppo):  # saved and loaded, a policy answers the same
        back = load_model(pol.save(tmp_path / pol.family))
        np.testing.assert_allclose(back.predict_proba(X), pol.predict_proba(X), rtol=1e-6)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    v = log_and_register(q, "rl-test-q", uri, {"family": q.family}, "fp")
    promote("rl-test-q", v, uri)
    strat = get_strategy("model_signal", model="rl-test-q", tracking_uri=uri, enter=0.5, exit=0.5, warmup=WARMUP,
                         refresh_s=0)  # fmt: skip
    r = Engine(strat, CandleFeed.from_frame(c, tf="1h"), make_broker("bar", "cex"), cash=10_000.0, risk=None).run()
    p = q.predict_proba(X)[:, 1]
    after = X.groupby(level="symbol").cumcount().to_numpy() >= WARMUP
    assert (p[after] > 0.5).any() and len(r.fills) > 0  # it wants to be long somewhere, and model_signal acts on it
    assert strat.pred.model.family == "rl_q"


def test_rl_train_command_judges_registers_and_gates(memebot, cli_env, tmp_path):
    "`memebot rl train`: off by default; on, it judges the policy out of sample, registers it and says why it is"
    " or is not @champion; the registered policy is what model_signal serves."
    c = walk(("AAA/USDT", "BBB/USDT"), n=420, seed=2).rename(columns={"ts": "date"})
    c.to_csv(tmp_path / "c.csv", index=False)
    memebot("data", "import", tmp_path / "c.csv", "--tf", "1h", check=True)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    args = ["rl", "train", "--algo", "q", "--tf", "1h", "--folds", "1", "--episodes", "2", "--warmup", "60", "--json"]
    off = memebot("--set", f"ai.tracking_uri={uri}", *args)
    assert off.returncode != 0 and "reinforcement_learning_enabled" in off.stderr
    ppo = memebot("--set", "ai.reinforcement_learning_enabled=true", *args[:2], "--algo", "ppo", "--tf", "1h")
    assert ppo.returncode != 0 and "deep_learning_enabled" in ppo.stderr
    on = ["--set", "ai.reinforcement_learning_enabled=true", "--set", f"ai.tracking_uri={uri}"]
    import json

    doc = json.loads(memebot(*on, *args, check=True).stdout)
    assert doc["name"] == "memebot-rl-q-1h" and doc["version"] == "1"
    kinds = {r["contender"].split(":")[0] for r in doc["folds"]}
    assert kinds == {"buy & hold", "rl q-learning", "rule", "supervised"}
    iv = doc["vs_buy_and_hold"]["rl q-learning"]
    assert doc["promoted"] == (iv["lo"] > 0) and ("not promoted" in doc["reason"]) != doc["promoted"]
    from memebot.models.registry import load_registered

    m, _, v = load_registered("memebot-rl-q-1h", "1", uri)
    assert m.family == "rl_q" and v == "1"
