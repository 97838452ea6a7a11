"""ML layer: causal features, leak-free splits, every model family on a small real slice, MLflow registry round trip,
the promotion gate both ways, serving hot reload, and the train/models CLI."""

import os, json

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
import numpy as np, pandas as pd
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from memebot.features import (
    build_features,
    check_causal,
    make_dataset,
    make_labels,
    forward_return,
    swap_flow,
    FeatureError,
)
from memebot.splits import walk_forward, purged_kfold, SplitError
from memebot.models.base import make_model, load_model, ModelError, BASELINES


def _candles(shared, symbols=("WIF/USDT", "PEPE/USDT", "BTC/USDT", "SOL/USDT"), tf="1h", n=900, offset=0):
    df = pd.read_parquet(
        shared / f"data/binance_memecoins/ohlcv_{tf}_2025-01_2025-04.parquet", filters=[("symbol", "in", list(symbols))]
    ).rename(columns={"date": "ts"})
    return pd.concat([g.iloc[offset : offset + n] for _, g in df.groupby("symbol")], ignore_index=True)


@pytest.fixture(scope="module")
def small(shared):
    return _candles(shared)


@pytest.fixture(scope="module")
def ds(small):
    return make_dataset(small, h=1, fee_bps=10)


# --- features -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cut", [300, 500, 780])
def test_features_are_causal(shared, cut):
    df = _candles(shared, tf="5m", n=800)
    check_causal(build_features, df, cut=cut, seed=cut)  # raises if any past value changes


def test_causality_check_catches_a_leak(small):
    leaky = lambda d: d.set_index(["symbol", "ts"])[["close"]].groupby(level=0).shift(-1)
    with pytest.raises(FeatureError):
        check_causal(leaky, small, cut=400)


def test_labels_dead_zone_and_horizon(small):
    c = small[small.symbol == "WIF/USDT"].set_index("ts")["close"]
    for h in (1, 3):
        y, f = make_labels(c, h=h, fee_bps=10), forward_return(c, h)
        assert (y.dropna() == (f[y.notna()] > 0)).all()
        assert f[y.isna()].dropna().abs().max() <= 20e-4 + 1e-12
        assert y.iloc[-h:].isna().all()


def test_swap_flow_on_real_pumpfun_swaps(shared):
    sw = pd.read_parquet(shared / "data/pumpfun/swaps_first_300s.parquet")
    fl = swap_flow(sw, "1m")
    assert np.isclose(fl.buy_sol.sum(), sw.loc[sw.side == "buy", "sol"].sum())
    assert np.isclose(fl.sell_sol.sum(), sw.loc[sw.side == "sell", "sol"].sum())
    with pytest.raises(FeatureError):
        swap_flow(sw.assign(side="hold"), "1m")


# --- splits ---------------------------------------------------------------------------------------------------


def test_walk_forward_no_overlap_and_embargo(ds):
    ts = ds.times
    bar = pd.Timedelta("1h")
    sp = walk_forward(ts, n_splits=4, h=3, embargo=5)
    assert len(sp) == 4
    for s in sp:
        tr, te = s.train_mask(ts), s.test_mask(ts)
        assert tr.any() and te.any() and not (tr & te).any()
        assert ts[tr].max() + (3 + 5) * bar < ts[te].min()
    tests = [(s.test[0], s.test[1]) for s in sp]
    assert all(a[1] < b[0] for a, b in zip(tests, tests[1:]))  # test blocks do not overlap


def test_purged_kfold_purge_and_embargo(ds):
    ts = ds.times
    bar = pd.Timedelta("1h")
    for s in purged_kfold(ts, n_splits=5, h=2, embargo=6):
        tr, te = s.train_mask(ts), s.test_mask(ts)
        assert not (tr & te).any()
        before, after = ts[tr & (ts < s.test[0])], ts[tr & (ts > s.test[1])]
        if len(before):
            assert before.max() + 2 * bar < s.test[0]
        if len(after):
            assert after.min() - 6 * bar > s.test[1]
    with pytest.raises(SplitError):
        walk_forward(ts[:3], n_splits=5)


# --- every model family, a few steps on a real slice ----------------------------------------------------------

FAMS = [
    ("persistence", {}),
    ("momentum", {}),
    ("majority", {}),
    ("logreg", {}),
    ("gbm", {"max_iter": 20}),
    ("lstm", {"window": 8, "max_steps": 5, "batch_size": 128}),
    ("transformer", {"window": 8, "max_steps": 5, "batch_size": 128}),
    ("cnn", {"window": 8, "max_steps": 5, "batch_size": 128}),
    ("ensemble", {"members": ["logreg", ["lstm", {"window": 8, "max_steps": 3}], "momentum"]}),
]


@pytest.mark.parametrize("fam,params", FAMS, ids=[f for f, _ in FAMS])
def test_family_fits_predicts_and_round_trips(ds, tmp_path, fam, params):
    t = ds.times
    cut = t.sort_values()[int(len(t) * 0.75)]
    tr, te = ds.subset(t < cut), ds.subset(t >= cut)
    m = make_model(fam, **params).fit(tr.X, tr.y)
    p = m.predict_proba(te.X)
    assert p.shape == (len(te.X), 2) and np.allclose(p.sum(1), 1) and ((p > 0) & (p < 1)).all()
    if fam in ("lstm", "transformer", "cnn"):
        assert m.steps_ == 5
    m2 = load_model(m.save(tmp_path / fam))
    assert np.allclose(m2.predict_proba(te.X), p, atol=1e-6)
    hist = te.X.loc["WIF/USDT"].to_numpy(np.float32)
    assert abs(m.predict_one(hist) - p[te.X.index.get_loc(te.X.loc[["WIF/USDT"]].index[-1]), 1]) < 1e-5
    if fam == "ensemble":
        pc = m.predict_confidence(te.X)
        assert pc.confidence.between(0, 1).all() and pc.agreement.between(0, 1).all()


def test_model_errors(ds):
    with pytest.raises(ModelError):
        make_model("bogus")
    with pytest.raises(ModelError):
        make_model("gbm").predict_proba(ds.X)
    with pytest.raises(ModelError):
        make_model("logreg").fit(ds.X, ds.y * 0 + 1)
    m = make_model("logreg").fit(ds.X, ds.y)
    with pytest.raises(ModelError):
        m.predict_proba(ds.X.drop(columns=["rsi_14"]))


# --- registry, gate, serving ----------------------------------------------------------------------------------


@pytest.fixture
def uri(tmp_path):
    return f"sqlite:///{tmp_path}/mlruns/mlflow.db"


def test_registry_round_trip(ds, uri):
    import mlflow
    from memebot.models.registry import log_and_register, load_registered, list_models, promote, client

    m = make_model("gbm", max_iter=20).fit(ds.X, ds.y)
    v = log_and_register(
        m,
        "rt",
        uri,
        {"family": "gbm", "params": {"max_iter": 20}, "api_key": "SECRET123"},
        ds.fingerprint,
        metrics_={"x": 1.0},
        reference_X=ds.X,
    )
    promote("rt", v, uri)
    m2, ref, v2 = load_registered("rt", "champion", uri)
    assert v2 == v and np.allclose(m2.predict_proba(ds.X), m.predict_proba(ds.X)) and set(ref) == set(ds.X.columns)
    # the plain MLflow path works too
    pf = mlflow.pyfunc.load_model(f"models:/rt@champion")
    assert np.allclose(np.asarray(pf.predict(ds.X.iloc[:50])), m.predict_proba(ds.X.iloc[:50])[:, 1])
    rows = list_models(uri)
    assert rows[0]["name"] == "rt" and rows[0]["aliases"] == ["champion"] and rows[0]["fingerprint"] == ds.fingerprint
    run = client(uri).get_run(client(uri).get_model_version("rt", v).run_id)
    assert "SECRET123" not in json.dumps(run.data.params) and run.data.tags["data_fingerprint"] == ds.fingerprint


OVERFIT = {
    "max_iter": 150,
    "learning_rate": 0.5,
    "max_leaf_nodes": 63,
    "min_samples_leaf": 5,
    "l2_regularization": 0.0,
    "early_stopping": False,
}


def test_gate_refuses_a_candidate_no_better_than_the_baselines(small, uri):
    from memebot.config import load_settings
    from memebot.models.registry import train_and_register, aliases, promote, client

    s = load_settings(overrides={"ai.tracking_uri": uri})
    kw = dict(name="g", tf="1h", settings=s, progress=False, n_splits=2, cv_baselines=False)
    r1 = train_and_register(small, "gbm", OVERFIT, **kw)
    # no champion yet, and still refused: worse than the best naive baseline on the same window
    assert (
        r1.gate.decision == "challenger"
        and r1.gate.champion_version is None
        and aliases("g", uri) == {"challenger": r1.version}
    )
    assert r1.gate.baseline in BASELINES and r1.gate.candidate_score > r1.gate.baseline_score
    assert r1.gate.baseline_score == pytest.approx(
        min(r1.holdout[b]["log_loss"] for b in BASELINES)
    )  # same window, same metric
    assert f"best baseline {r1.gate.baseline}" in r1.gate.reason and "champion" not in r1.gate.reason
    tags = client(uri).get_model_version("g", r1.version).tags
    assert (
        tags["gate_decision"] == "challenger"
        and tags["gate_vs_baseline"] == r1.gate.baseline
        and tags["gate_reason"] == r1.gate.reason
    )
    r2 = train_and_register(small, "majority", **kw)  # a baseline cannot beat itself by the margin
    assert r2.gate.decision == "challenger" and "champion" not in aliases("g", uri)
    promote("g", r2.version, uri)  # the operator's explicit override
    r3 = train_and_register(small, "gbm", OVERFIT, **kw)  # worse than the champion too: refused
    assert (
        r3.gate.decision == "challenger"
        and r3.gate.champion_version == r2.version
        and r3.gate.candidate_score > r3.gate.champion_score
    )
    assert f"champion v{r2.version}" in r3.gate.reason and "baseline" in r3.gate.reason
    assert aliases("g", uri) == {"champion": r2.version, "challenger": r3.version}


def test_gate_promotes_only_a_candidate_better_than_baselines_and_champion(ds, uri):
    """Candidates with a real edge: an extra feature that tells the next bar's direction right 70% / 85% of the time."""
    from memebot.models.registry import log_and_register, gate, aliases, load_registered, RegistryError

    rng = np.random.default_rng(0)
    yl = ds.y.fillna(0.5).to_numpy()
    hint = lambda acc: np.where(rng.random(len(yl)) < acc, yl, 1 - yl)
    X = ds.X.assign(hint_a=hint(0.70), hint_b=hint(0.85))
    t = ds.times
    cut = np.sort(t.unique())[int(t.nunique() * 0.8)]
    tr, keep = np.asarray(t < cut), np.asarray(t >= cut)
    base = {b: make_model(b).fit(ds.X[tr], ds.y[tr]) for b in BASELINES}

    def candidate(cols, margin=0.005, family="logreg", **p):
        m = make_model(family, **p).fit(X[tr][cols], ds.y[tr])
        return gate(
            "h",
            log_and_register(m, "h", uri, {"family": family}, ds.fingerprint),
            X,
            ds.y,
            keep,
            uri=uri,
            margin=margin,
            baselines=base,
        )

    feats = list(ds.X.columns)
    g1 = candidate(feats + ["hint_a"])  # beats the baselines, no champion yet: promoted
    assert g1.decision == "champion" and g1.champion_version is None and g1.candidate_score + 0.005 <= g1.baseline_score
    g2 = candidate(feats, family="gbm", **OVERFIT)  # worse than both: refused
    assert g2.decision == "challenger" and g2.champion_version == g1.version and g2.candidate_score > g2.champion_score
    g3 = candidate(feats + ["hint_a", "hint_b"])  # better than the champion by the margin: promoted
    assert (
        g3.decision == "champion"
        and g3.champion_version == g1.version
        and g3.candidate_score + 0.005 <= g3.champion_score
    )
    g4 = candidate(feats + ["hint_a"])  # beats the baselines but not the champion: refused
    assert (
        g4.decision == "challenger"
        and g4.candidate_score < g4.baseline_score
        and g4.reason.startswith("log_loss")
        and "baseline" not in g4.reason
    )
    g5 = candidate(feats + ["hint_a", "hint_b"], margin=0.5)  # a margin larger than any improvement keeps the champion
    assert g5.decision == "challenger" and aliases("h", uri) == {"champion": g3.version, "challenger": g5.version}
    assert load_registered("h", "champion", uri)[2] == g3.version
    with pytest.raises(RegistryError, match="baselines"):
        gate("h", g5.version, X, ds.y, keep, uri=uri, baselines={})


def test_serving_picks_up_moved_alias_without_restart(ds, uri):
    from memebot.core import SimClock
    from memebot.models.registry import log_and_register, promote
    from memebot.models.serving import Predictor

    v1 = log_and_register(
        make_model("logreg").fit(ds.X, ds.y), "s", uri, {"family": "logreg"}, ds.fingerprint, reference_X=ds.X
    )
    v2 = log_and_register(
        make_model("lstm", window=8, max_steps=3).fit(ds.X, ds.y),
        "s",
        uri,
        {"family": "lstm"},
        ds.fingerprint,
        reference_X=ds.X,
    )
    promote("s", v1, uri)
    clock = SimClock(0)
    pr = Predictor("s", uri, refresh_s=5, clock=clock)
    hist = ds.X.loc["WIF/USDT"]
    a = pr.predict("WIF/USDT", hist)
    assert a.version == v1
    promote("s", v2, uri)
    promote("s", v1, uri, alias="challenger")
    clock.advance(6)
    b = pr.predict("WIF/USDT", hist)
    assert b.version == v2 and b.shadow_version == v1 and abs(b.shadow_p_up - a.p_up) < 1e-9
    assert pr.model.family == "lstm" and len(pr.shadow_report()) == 1
    d = pr.update_drift()
    assert set(d) == set(ds.X.columns) and all(np.isfinite(v) for v in d.values())


def test_fine_tune_goes_through_the_gate(shared, uri):
    from memebot.config import load_settings
    from memebot.models.registry import train_and_register, fine_tune, aliases, promote

    s = load_settings(overrides={"ai.tracking_uri": uri})
    r1 = train_and_register(
        _candles(shared, n=700),
        "logreg",
        name="ft",
        tf="1h",
        settings=s,
        progress=False,
        n_splits=2,
        cv_baselines=False,
    )
    if r1.gate.decision != "champion":
        promote("ft", r1.version, uri)  # fine-tuning starts from a champion (here: the operator's choice)
    r2 = fine_tune(
        "ft", _candles(shared, n=700, offset=300), uri=uri, settings=s, progress=False, n_splits=2, cv_baselines=False
    )
    assert (
        r2.version != r1.version
        and r2.family == "logreg"
        and r2.gate.decision in ("champion", "challenger")
        and r2.gate.reason
    )
    assert aliases("ft", uri)[r2.gate.decision] == r2.version


# --- CLI ------------------------------------------------------------------------------------------------------


def test_cli_train_ls_promote(memebot, shared, tmp_path):
    env = {"MEMEBOT_AI_TRACKING_URI": f"sqlite:///{tmp_path}/ml/mlflow.db", "MLFLOW_DISABLE_TELEMETRY": "true"}
    memebot("data", "import", shared / "data/binance_memecoins/ohlcv_1h_2025-01_2025-04.parquet", env=env, check=True)
    r = memebot(
        "train",
        "-f",
        "logreg",
        "--symbols",
        "WIF/USDT,PEPE/USDT",
        "--tf",
        "1h",
        "--from",
        "2025-01-01",
        "--to",
        "2025-02-20",
        "--splits",
        "2",
        "--json",
        env=env,
        check=True,
    )
    out = json.loads(r.stdout)
    assert out[0]["name"] == "memebot-logreg-1h" and {"logreg", "persistence", "momentum", "majority"} <= set(
        out[0]["holdout"]
    )
    # on these 7 weeks of two memecoins logistic regression does not beat the naive baselines: no champion, and it says
    # why
    assert (
        out[0]["decision"] == "challenger"
        and out[0]["champion_version"] is None
        and out[0]["baseline"] in {"persistence", "momentum", "majority"}
    )
    assert (
        out[0]["candidate_score"] > out[0]["baseline_score"] - 0.005
        and "does not beat best baseline" in out[0]["reason"]
    )
    assert out[0]["baseline_score"] == pytest.approx(
        min(out[0]["holdout"][b]["log_loss"] for b in ("persistence", "momentum", "majority")), abs=1e-5
    )
    r = memebot(
        "train",
        "-f",
        "logreg",
        "--symbols",
        "WIF/USDT,PEPE/USDT",
        "--tf",
        "1h",
        "--from",
        "2025-01-01",
        "--to",
        "2025-02-20",
        "--splits",
        "2",
        env=env,
        check=True,
    )  # the human-readable output carries the decision and reason
    assert "memebot-logreg-1h v2 -> @challenger: log_loss" in r.stdout and "does not beat best baseline" in r.stdout
    # its first lines say the honest result: the edge with its interval, the net trading result beside buy & hold
    lines = r.stdout.splitlines()
    sm = out[0]["summary"]
    assert lines[1].startswith(f"  edge over {sm['baseline']} (held-out log-loss): {sm['edge_log_loss']:+.4f}, 95% CI")
    assert "net of 10 bps" in lines[2] and f"vs buy & hold {sm['buy_hold_return']:+.1%}" in lines[2]
    assert sm["edge_lo"] <= sm["edge_log_loss"] <= sm["edge_hi"]
    assert "has no @champion" in r.stdout and "memebot models promote memebot-logreg-1h VERSION" in r.stdout
    ls = json.loads(memebot("models", "ls", "--json", env=env, check=True).stdout)
    assert (
        [x["aliases"] for x in ls] == [[], ["challenger"]]
        and ls[0]["family"] == "logreg"
        and ls[0]["gate_decision"] == "challenger"
    )
    assert ls[0]["gate_reason"] == out[0]["reason"]
    memebot("models", "promote", "memebot-logreg-1h", "1", env=env, check=True)  # the operator's override
    ls = json.loads(memebot("models", "ls", "--json", env=env, check=True).stdout)
    assert [x["aliases"] for x in ls] == [["champion"], ["challenger"]]
    # bad input: one line, exit 2, nothing lost
    for args, needle in [
        (("train", "-f", "nope", "--tf", "1h"), "unknown model family"),
        (("train", "-f", "lstm", "--tf", "1h"), "deep_learning_enabled"),
        (("train", "-f", "gbm", "--tf", "9q"), "--tf"),
        (("train", "-f", "gbm", "--tf", "1h", "--from", "yesterdayish"), "--from"),
        (("train", "-f", "gbm", "--tf", "1h", "--symbols", "NOPE/USDT"), "NOPE/USDT"),
        (("train", "-f", "logreg", "--tf", "1h", "--social"), "no social posts stored"),
        (("models", "promote", "memebot-logreg-1h", "7"), "no version 7"),
        (("models", "promote", "memebot-logreg-1h", "x"), "VERSION"),
    ]:
        r = memebot(*args, env=env)
        assert r.returncode == 2 and needle in r.stderr and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)
    assert json.loads(memebot("models", "ls", "--json", env=env, check=True).stdout) == ls
