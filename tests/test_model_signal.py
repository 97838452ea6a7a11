"""ModelSignal: the strategy that trades on the registry's @champion, in the same engine as every other strategy.
Its event-driven decisions must equal what the champion says on the same bars, computed independently."""

import os

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
import numpy as np, pandas as pd
import pytest

SYMS = ("WIF/USDT", "PEPE/USDT", "BTC/USDT", "SOL/USDT")


def _candles(shared, start, n):
    df = pd.read_parquet(
        shared / "data/binance_memecoins/ohlcv_1h_2025-01_2025-04.parquet", filters=[("symbol", "in", list(SYMS))]
    ).rename(columns={"date": "ts"})
    return pd.concat([g.iloc[start : start + n] for _, g in df.groupby("symbol")], ignore_index=True)


def _long_flat(p: pd.Series, warmup: int, enter: float, exit: float) -> list:
    "The orders model_signal's rule gives on P(up) by (symbol, bar), worked out independently: (symbol, side, bar)."
    out = []
    for sym in ("PEPE/USDT", "WIF/USDT"):
        held = False
        for ts, pu in p.loc[sym].iloc[warmup - 1 :].items():  # scored once it has `warmup` bars
            if not held and pu >= enter:
                out.append((sym, "buy", ts))
                held = True
            elif held and pu < exit:
                out.append((sym, "sell", ts))
                held = False
    return out


@pytest.fixture
def champion(shared, tmp_path, monkeypatch):
    from memebot.config import reset_settings
    from memebot.features import make_dataset
    from memebot.models.base import make_model
    from memebot.models.registry import log_and_register, promote

    uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    monkeypatch.setenv("MEMEBOT_AI_TRACKING_URI", uri)
    reset_settings()
    ds = make_dataset(_candles(shared, 0, 900), h=1, fee_bps=10)
    m = make_model("logreg").fit(ds.X, ds.y)
    v = log_and_register(m, "ms-test", uri, {"family": "logreg"}, ds.fingerprint, metrics_={}, reference_X=ds.X)
    promote("ms-test", v, uri)
    yield m, v
    reset_settings()


def test_model_signal_trades_what_the_champion_says(shared, champion):
    from memebot.strategy import ModelSignal
    from memebot.backtest import Engine, CandleFeed
    from memebot.features import build_features

    model, version = champion

    test = _candles(shared, 900, 160)
    strat = ModelSignal(model="ms-test", enter=0.52, exit=0.5, refresh_s=0, warmup=64)
    res = Engine(strat, CandleFeed.from_frame(test, tf="1h")).run()
    orders = [o for o in res.orders if o.tag.startswith("model_signal")]
    assert orders and all(o.tag == f"model_signal v{version}" for o in orders)

    # independent: the champion's P(up) on the batch builder's features of the same bars, the same long/flat rule
    X = build_features(test).fillna(0.0)
    p = pd.Series(model.predict_proba(X[model.features_])[:, 1], index=X.index)
    expected = _long_flat(p, strat.p.warmup, 0.52, 0.5)
    bar = pd.Timedelta("1h")
    got = sorted((o.symbol, o.side.value, pd.Timestamp(o.ts, tz="UTC") - bar) for o in orders)
    # the engine decides at bar close (open + 1h); a still-open position at the end is not closed by either side
    assert got == sorted(expected), (got[:6], sorted(expected)[:6])


def test_model_signal_missing_model_is_a_clear_error(shared, tmp_path, monkeypatch):
    from memebot.config import reset_settings
    from memebot.strategy import get_strategy
    from memebot.backtest import Engine, CandleFeed
    from memebot.core import MemebotError

    monkeypatch.setenv("MEMEBOT_AI_TRACKING_URI", f"sqlite:///{tmp_path}/empty.db")
    reset_settings()
    try:
        with pytest.raises(MemebotError, match="no-such-model"):
            Engine(
                get_strategy("model_signal", model="no-such-model"),
                CandleFeed.from_frame(_candles(shared, 0, 50), tf="1h"),
            ).run()
    finally:
        reset_settings()


def test_model_signal_vectorized_signals_match_the_champion(shared, champion):
    from memebot.strategy import get_strategy
    from memebot.features import build_features

    model, _ = champion
    test = _candles(shared, 900, 160)
    frame = test.pivot(index="ts", columns="symbol", values=["open", "high", "low", "close", "volume"])
    entries, exits = get_strategy("model_signal", model="ms-test", enter=0.52, exit=0.5, warmup=64).signals(frame)
    X = build_features(test).fillna(0.0)
    p = pd.Series(model.predict_proba(X[model.features_])[:, 1], index=X.index).unstack("symbol")
    p.iloc[:63] = float("nan")  # as the event path: scored from each symbol's 64th bar
    p[["BTC/USDT", "SOL/USDT"]] = float("nan")  # context symbols are read, never traded
    assert entries.shape == frame["close"].shape
    assert (entries == (p >= 0.52)).all().all() and (exits == (p < 0.5)).all().all()
    assert entries[["WIF/USDT", "PEPE/USDT"]].values.any() and exits.values.any()
    assert not entries[["BTC/USDT", "SOL/USDT"]].values.any() and not entries.iloc[:63].values.any()


def test_model_signal_context_is_read_not_traded_and_its_absence_is_named(shared, champion):
    "BTC and SOL feed the features and are never traded; a model that needs them without their bars is refused."
    from memebot.strategy import ModelSignal, StrategyError
    from memebot.backtest import Engine, CandleFeed

    test = _candles(shared, 900, 160)
    res = Engine(
        ModelSignal(model="ms-test", enter=0.5, exit=0.5, refresh_s=0, warmup=64), CandleFeed.from_frame(test, tf="1h")
    ).run()
    traded = {o.symbol for o in res.orders}
    assert traded and traded <= {"WIF/USDT", "PEPE/USDT"}
    memes = test[~test.symbol.isin(["BTC/USDT", "SOL/USDT"])]
    with pytest.raises(StrategyError, match=r"needs context bars of BTC/USDT \(features btc_ret_1"):
        Engine(ModelSignal(model="ms-test", refresh_s=0, warmup=64), CandleFeed.from_frame(memes, tf="1h")).run()


def test_model_signal_has_no_lookahead_on_the_event_path(shared, champion):
    "Cut the bars after a sampled bar: every order model_signal decided up to there is the same as in the full run."
    from memebot.strategy import ModelSignal, Strategy
    from memebot.backtest import lookahead_events

    test = _candles(shared, 900, 160)
    strat = ModelSignal(model="ms-test", enter=0.52, exit=0.5, refresh_s=0, warmup=64)
    assert lookahead_events(strat, test, "1h", points=6, min_bars=70).empty

    class _Peeks(Strategy):  # reads the feed's stored bars through the engine's private handle: the next close
        name = "_peeks_test"
        history = 0

        def on_bar(self, ctx, bars):
            close = ctx._e.feed.frame()["close"]
            for j, s in enumerate(bars.symbols):
                i = close.index.get_loc(pd.Timestamp(bars.open_ts, tz="UTC"))
                nxt = close[s].iloc[i + 1] if i + 1 < len(close) else np.nan
                if ctx.position(s) == 0 and nxt > bars.close[j]:
                    ctx.buy(s, notional=100.0)
                elif ctx.position(s) > 0 and nxt < bars.close[j]:
                    ctx.close(s)

    bad = lookahead_events(_Peeks(), test, "1h", points=6, min_bars=70)
    assert len(bad) > 0 and bad.signal.str.startswith("order").all()


def test_model_signal_serves_the_social_features_it_was_trained_on(shared, tmp_path, monkeypatch):
    """A model trained with posts from the market store (`make_dataset(social=)`, as `memebot train --social` does)
    trades on the same numbers in the event engine: posts mention $PEPE and $WIF on bars that go up next, so the model
    leans on them, and one bar of misalignment in serving would change its orders. Without posts it is refused."""
    from memebot.backtest import CandleFeed, Engine
    from memebot.config import reset_settings
    from memebot.data.social import Post, social_features, store_posts
    from memebot.data.store import Store
    from memebot.features import build_features, make_dataset, social_panel
    from memebot.models.base import make_model
    from memebot.models.registry import log_and_register, promote
    from memebot.strategy import ModelSignal, StrategyError

    c = _candles(shared, 0, 1060)
    posts, rng = [], np.random.default_rng(7)
    for sym in ("PEPE/USDT", "WIF/USDT"):
        g = c[c.symbol == sym].sort_values("ts")
        up = (g.close.shift(-1) > g.close * 1.002).to_numpy()
        for ts, u in zip(g.ts, up):
            for k in range(int(rng.integers(2, 6)) if u and rng.random() < 0.8 else int(rng.random() < 0.2)):
                t = pd.Timestamp(ts) + pd.Timedelta(minutes=int(rng.integers(0, 60)))
                posts.append(Post("x", f"{sym}-{ts}-{k}", "memes", t.value, f"a{rng.integers(50)}", "1",
                                  f"${sym.split('/')[0]} looks {'great' if u else 'weak'}"))  # fmt: skip
    path = tmp_path / "market.duckdb"
    with Store(path) as st:
        store_posts(st, posts, score=lambda texts: [0.6 if "great" in x else -0.4 for x in texts])
        sf = social_features(st, "3600s")
    uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    monkeypatch.setenv("MEMEBOT_AI_TRACKING_URI", uri)
    monkeypatch.setenv("MEMEBOT_STORE_PATH", str(path))
    reset_settings()
    try:
        ds = make_dataset(c.groupby("symbol").head(900), h=1, fee_bps=10, social=sf)
        model = make_model("logreg").fit(ds.X, ds.y)
        assert {"social_mentions", "social_sentiment"} <= set(model.features_)
        v = log_and_register(model, "ms-social", uri, {"family": "logreg"}, ds.fingerprint, metrics_={},
                             reference_X=ds.X)  # fmt: skip
        promote("ms-social", v, uri)
        test = c.groupby("symbol").tail(160)
        strat = ModelSignal(model="ms-social", enter=0.52, exit=0.5, refresh_s=0, warmup=64)
        orders = [o for o in Engine(strat, CandleFeed.from_frame(test, tf="1h")).run().orders]
        X = build_features(test)
        X = X.join(social_panel(sf, X.index).astype("float32")).fillna(0.0)
        p = pd.Series(model.predict_proba(X[model.features_])[:, 1], index=X.index)
        expected = _long_flat(p, strat.p.warmup, 0.52, 0.5)
        got = sorted((o.symbol, o.side.value, pd.Timestamp(o.ts, tz="UTC") - pd.Timedelta("1h")) for o in orders)
        assert len(got) > 10 and got == sorted(expected), (got[:6], sorted(expected)[:6])
        frame = test.pivot(index="ts", columns="symbol", values=["open", "high", "low", "close", "volume"])
        entries, _ = ModelSignal(model="ms-social", enter=0.52, exit=0.5, warmup=64).signals(frame)
        want = (p.unstack("symbol") >= 0.52).iloc[63:][["PEPE/USDT", "WIF/USDT"]]
        assert (entries.iloc[63:][["PEPE/USDT", "WIF/USDT"]] == want).all().all()  # the vectorized path agrees
        with Store(path) as st:  # the posts gone: the model is refused, not fed zeros
            st.con.execute("DELETE FROM social_mentions; DELETE FROM social_posts")
        with pytest.raises(StrategyError, match="no social posts"):
            Engine(ModelSignal(model="ms-social", refresh_s=0, warmup=64), CandleFeed.from_frame(test, tf="1h")).run()
    finally:
        reset_settings()
