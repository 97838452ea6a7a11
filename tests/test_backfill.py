"""Backfill against a local GeckoTerminal (real Binance 5m candles served in GeckoTerminal's response shape):
paging, fault injection mid-history, a killed run resuming from its checkpoint, gaps, quarantine, the CLI."""

import json, os, signal, subprocess, sys, time
from pathlib import Path
import numpy as np, pandas as pd
import pytest
from memebot.config import load_settings
from memebot.data import sources as S
from memebot.data.backfill import backfill, checkpoints, missing_ranges, BackfillError
from memebot.data.store import Store, candles
from memebot.data.quality import quarantined

sys.path.insert(0, str(Path(__file__).parent))
from _gtserver import GTServer, gt_series, NS

N, LIMIT = 2500, 500  # 5 pages of 500 bars


@pytest.fixture(scope="module")
def series(shared):
    return gt_series(shared, N)


def span(series):
    return int(series.ts.iloc[0].value), int(series.ts.iloc[-1].value) + 300 * NS


def settings_for(url, **over):
    ov = {
        "endpoints.geckoterminal": url,
        "data.rate_geckoterminal_per_min": "100000",
        "data.http_backoff_base_s": "0.001",
        "data.http_backoff_max_s": "0.01",
        "data.http_timeout_s": "0.3",
        "data.http_max_retries": "3",
    }
    ov.update({k.replace("__", "."): str(v) for k, v in over.items()})
    return load_settings(None, env={}, overrides=ov)


async def run_backfill(store, srv, series, **kw):
    t0, t1 = span(series)
    try:
        return await backfill(
            store, "geckoterminal", "solana", "POOL", "5m", t0, t1, settings=settings_for(srv.url), limit=LIMIT, **kw
        )
    finally:
        await S.close_http()


def assert_exact(store, series):
    got = candles(store, "POOL", "5m", source="geckoterminal")
    assert len(got) == len(series) and got.ts.is_unique
    assert (got.ts.to_numpy() == series.ts.to_numpy()).all()
    assert np.array_equal(
        got[["open", "high", "low", "close", "volume"]].to_numpy(),
        series[["open", "high", "low", "close", "volume"]].to_numpy(),
    )


async def test_full_backfill_pages_newest_first(series):
    srv = GTServer(series)
    try:
        st = Store(":memory:")
        r = await run_backfill(st, srv, series)
        assert r["pages"] == N // LIMIT == srv.requests and r["new"] == N and r["missing_after"] == 0
        assert_exact(st, series)
        befores = [int(q.args["before_timestamp"]) for q, _ in srv.srv.log]
        assert befores == sorted(befores, reverse=True) and all(q.args["aggregate"] == "5" for q, _ in srv.srv.log)
        assert (await run_backfill(st, srv, series))[
            "pages"
        ] == 0 and srv.requests == N // LIMIT  # nothing left to fetch
    finally:
        srv.stop()


@pytest.mark.parametrize("fault", ["429", "500", "timeout", "badjson", "truncated"])
async def test_transient_fault_mid_history_ends_correct(series, fault):
    srv = GTServer(series, faults={3: fault}, timeout_sleep=0.6)
    try:
        st = Store(":memory:")
        r = await run_backfill(st, srv, series)
        assert r["pages"] == N // LIMIT and srv.requests == N // LIMIT + 1  # one retry
        assert_exact(st, series)
    finally:
        srv.stop()


@pytest.mark.parametrize(
    "fault,message",
    [
        ("missing", "data.attributes.ohlcv_list: missing field"),
        ("badrow", r"data.attributes.ohlcv_list\[3\]: expected \[unix_s"),
        ("500", "HTTP 500.*gave up after 4 attempts"),
    ],
)
async def test_persistent_fault_fails_clearly_then_resumes(series, fault, message):
    srv = GTServer(series, faults={3: fault} if fault != "500" else {n: "500" for n in range(3, 7)})
    try:
        st = Store(":memory:")
        with pytest.raises(
            BackfillError, match=f"geckoterminal POOL 5m stopped at .*{message}.*1,000 rows written; rerun to resume"
        ):
            await run_backfill(st, srv, series)
        got = candles(st, "POOL", "5m")
        assert (
            len(got) == 2 * LIMIT
            and got.ts.is_unique
            and (got.ts.to_numpy() == series.ts.to_numpy()[-2 * LIMIT :]).all()
        )
        cp = checkpoints(st)
        assert cp.status.tolist() == ["running"] and cp.pages.iloc[0] == 2
        n_before = srv.requests
        r = await run_backfill(st, srv, series)  # the fault is gone: resume from the checkpoint
        assert r["resumed"] and r["pages"] == 3 and srv.requests - n_before == 3
        assert_exact(st, series)
        assert checkpoints(st).status.eq("done").all()
    finally:
        srv.stop()


async def test_stopped_after_n_pages_resumes_exactly(series):
    srv = GTServer(series)
    try:
        st = Store(":memory:")
        a = await run_backfill(st, srv, series, max_pages=2)
        assert not a["complete"] and len(candles(st, "POOL", "5m")) == 2 * LIMIT
        b = await run_backfill(st, srv, series)
        assert b["resumed"] and b["pages"] == 3 and srv.requests == 5
        assert_exact(st, series)
    finally:
        srv.stop()


async def test_gap_refetches_only_missing_range(series):
    srv = GTServer(series)
    try:
        st = Store(":memory:")
        await run_backfill(st, srv, series)
        lo, hi = series.ts.iloc[1200], series.ts.iloc[1259]
        st.con.execute(
            "DELETE FROM candles WHERE ts BETWEEN ? AND ?",
            [lo.tz_localize(None).to_pydatetime(), hi.tz_localize(None).to_pydatetime()],
        )
        st.con.execute("DELETE FROM backfill_ranges")  # a store filled some other way: gaps come from the candles
        t0, t1 = span(series)
        assert missing_ranges(st, "geckoterminal", "solana", "POOL", "5m", t0, t1) == [(lo.value, hi.value + 300 * NS)]
        n = srv.requests
        r = await run_backfill(st, srv, series)
        assert r["ranges"] == 1 and r["pages"] == 1 and r["new"] == 60 and srv.requests == n + 1
        assert int(srv.srv.log[-1][0].args["before_timestamp"]) == (hi.value + 300 * NS) // NS
        assert_exact(st, series)
    finally:
        srv.stop()


async def test_source_holes_are_not_refetched(series):
    holey = series.drop(index=range(700, 720)).reset_index(drop=True)  # 20 bars the source never had
    srv = GTServer(holey)
    try:
        st = Store(":memory:")
        t0, t1 = span(series)
        r = await backfill(
            st, "geckoterminal", "solana", "POOL", "5m", t0, t1, settings=settings_for(srv.url), limit=LIMIT
        )
        assert r["missing_after"] == 20
        n = srv.requests
        r2 = await backfill(
            st, "geckoterminal", "solana", "POOL", "5m", t0, t1, settings=settings_for(srv.url), limit=LIMIT
        )
        assert r2["pages"] == 0 and srv.requests == n
        await S.close_http()
    finally:
        srv.stop()


async def test_invalid_bar_goes_to_quarantine(series):
    bad = series.copy()
    bad.loc[100, "high"] = bad.loc[100, "low"] / 2
    srv = GTServer(bad)
    try:
        st = Store(":memory:")
        r = await run_backfill(st, srv, bad)
        assert r["quarantined"] == 1 and len(candles(st, "POOL", "5m")) == N - 1
        q = quarantined(st, "POOL")
        assert (
            q.reason.tolist() == ["high_below_low"]
            and bool(q.removed.iloc[0])
            and q.ts.iloc[0] == bad.ts[100].tz_localize(None)
        )
    finally:
        srv.stop()


def test_killed_cli_run_resumes_from_checkpoint(series, cli_env, tmp_path):
    srv = GTServer(series, delay=0.25)
    try:
        t0, t1 = span(series)
        env = dict(
            cli_env,
            MEMEBOT_ENDPOINTS_GECKOTERMINAL=srv.url,
            MEMEBOT_DATA_RATE_GECKOTERMINAL_PER_MIN="100000",
            PYTHONPATH=str(Path(__file__).resolve().parent.parent),
        )
        args = [
            str(Path(sys.executable).parent / "memebot"),
            "backfill",
            "--source",
            "geckoterminal",
            "--chain",
            "solana",
            "--pool",
            "POOL",
            "--tf",
            "5m",
            "--since",
            str(t0 // NS),
            "--until",
            str(t1 // NS),
            "--limit",
            str(LIMIT),
            "--json",
        ]
        p = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while srv.requests < 4 and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.02)
        p.send_signal(signal.SIGKILL)
        p.wait()
        assert p.returncode == -signal.SIGKILL and srv.requests < N // LIMIT
        with Store(cli_env["MEMEBOT_STORE_PATH"], read_only=True) as st:
            cp = checkpoints(st)
            done_rows = len(candles(st, "POOL", "5m"))
        assert cp.status.tolist() == ["running"] and 1 <= cp.pages.iloc[0] <= 4
        # rows of checkpointed pages are stored; a kill between a page's write and its checkpoint leaves one page more
        assert done_rows in (cp.pages.iloc[0] * LIMIT, (cp.pages.iloc[0] + 1) * LIMIT)
        n_killed = srv.requests
        r = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        assert out["resumed"] and out["pages"] == N // LIMIT - done_rows // LIMIT and out["missing_after"] == 0
        assert srv.requests - n_killed == out["pages"]
        with Store(cli_env["MEMEBOT_STORE_PATH"], read_only=True) as st:
            assert_exact(st, series)
            assert checkpoints(st).status.eq("done").all()
        chk = subprocess.run(
            [str(Path(sys.executable).parent / "memebot"), "data", "check", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert chk.returncode == 0, chk.stderr
        rep = json.loads(chk.stdout)
        assert (
            rep[0]["symbol"] == "POOL"
            and rep[0]["rows"] == N
            and rep[0]["missing_bars"] == 0
            and rep[0]["invalid"] == 0
        )
    finally:
        srv.stop()


@pytest.mark.parametrize(
    "args,msg",
    [
        (["--source", "kraken"], "unknown candle source 'kraken'"),
        (["--chain", "mars"], "unknown chain 'mars'"),
        (["--tf", "7m"], "'7m' is not served"),
        (["--since", "31/01/2025"], "--since: '31/01/2025' is not a date"),
        (["--since", "2025-02-01", "--until", "2025-01-01"], "must be before until"),
    ],
)
def test_cli_bad_args_are_one_line_errors(memebot, args, msg):
    base = {"--source": "geckoterminal", "--chain": "solana", "--pool": "P", "--tf": "1h"}
    for k, v in zip(args[::2], args[1::2]):
        base[k] = v
    r = memebot("backfill", *[x for kv in base.items() for x in kv])
    assert r.returncode == 2 and msg in r.stderr and len(r.stderr.strip().splitlines()) == 1


async def test_backfill_from_binance_via_ccxt(shared):
    from pytest_httpserver import HTTPServer
    from test_sources import binance_server

    real = (
        pd.read_parquet(
            shared / "data/binance_memecoins/ohlcv_5m_2025-01_2025-04.parquet", filters=[("symbol", "==", "BONK/USDT")]
        )
        .sort_values("date")
        .head(1000)
    )
    srv = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    srv.start()
    try:
        ms = binance_server(srv, real)
        st_ = load_settings(
            None,
            env={},
            overrides={"endpoints.binance": srv.url_for("").rstrip("/"), "data.rate_binance_per_min": "100000"},
        )
        st = Store(":memory:")
        t0, t1 = int(ms[0]) * 10**6, (int(ms[-1]) + 300_000) * 10**6
        r = await backfill(st, "binance", "cex", "BONK/USDT", "5m", t0, t1, settings=st_, limit=300)
        got = candles(st, "BONK/USDT", "5m", source="binance")
        assert r["new"] == 1000 and r["missing_after"] == 0 and len(got) == 1000 and got.ts.is_unique
        assert np.allclose(got.close.to_numpy(), real.close.to_numpy(), rtol=1e-9)
        assert (await backfill(st, "binance", "cex", "BONK/USDT", "5m", t0, t1, settings=st_, limit=300))["pages"] == 0
    finally:
        srv.clear()
        srv.stop()


async def test_repeated_bar_in_a_page_is_quarantined_not_duplicated(series):
    srv = GTServer(series, faults={2: "dupbar"})
    try:
        st = Store(":memory:")
        r = await run_backfill(st, srv, series)
        assert r["quarantined"] == 1
        assert_exact(st, series)  # the source's last version of the bar is stored, once
        q = quarantined(st, "POOL", "duplicate")
        assert len(q) == 1 and bool(q.removed.iloc[0])
    finally:
        srv.stop()


async def test_fetch_candles_pages_and_short_ranges(series):
    srv = GTServer(series)
    try:
        st_ = settings_for(srv.url)
        t0, t1 = span(series)
        try:
            full = await S.fetch_candles("geckoterminal", "solana", "POOL", "5m", t0, t1, settings=st_)
            tail = await S.fetch_candles("geckoterminal", "solana", "POOL", "5m", t1 - 12 * 300 * NS, t1, settings=st_)
        finally:
            await S.close_http()
        assert (
            len(full) == N and (full.ts.to_numpy() == series.ts.to_numpy()).all() and srv.requests - 1 == -(-N // 1000)
        )
        assert (
            len(tail) == 12 and srv.srv.log[-1][0].args["limit"] == "12"
        )  # a gap fill asks for just the bars it needs
    finally:
        srv.stop()
