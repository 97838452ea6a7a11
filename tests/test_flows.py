"""Prefect flows: backfill (from a local GeckoTerminal) -> train -> promote under `prefect_test_harness`; multi-pool
backfill and a chunked sweep on a Dask LocalCluster; a deployment served by `memebot flows serve` against a real local
`prefect server` runs to Completed; the live flow's guard rails."""

import json, os, signal, socket, subprocess, sys, time, urllib.request
from pathlib import Path
import numpy as np, pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(ROOT / "flows"))
from _gtserver import GTServer, gt_series, NS

N = 1500  # 5m bars per pool (~5 days): enough for the feature warm-up and a held-out window


@pytest.fixture(scope="module")
def gt(shared):
    """A local GeckoTerminal serving real BONK and WIF 5m candles as pools POOL1 and POOL2."""
    a, b = gt_series(shared, N, "BONK/USDT"), gt_series(shared, N, "WIF/USDT")
    srv = GTServer(a, pool="POOL1")
    srv2 = GTServer(b, pool="POOL2")  # its handler is mounted on the first server (one base URL)
    srv.srv.expect_request(srv2.path).respond_with_handler(srv2.handle)
    srv.since, srv.until = str(a.ts.iloc[0]), str(a.ts.iloc[-1] + pd.Timedelta(minutes=5))
    yield srv
    srv.stop()
    srv2.stop()


@pytest.fixture
def env(tmp_path, monkeypatch, gt):
    from memebot.config import reset_settings

    vals = {
        "MEMEBOT_STORE_PATH": str(tmp_path / "store.duckdb"),
        "MEMEBOT_ENDPOINTS_GECKOTERMINAL": gt.url,
        "MEMEBOT_DATA_RATE_GECKOTERMINAL_PER_MIN": "100000",
        "MEMEBOT_DATA_HTTP_BACKOFF_BASE_S": "0.001",
        "MEMEBOT_AI_TRACKING_URI": f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}",
        "MEMEBOT_LIVE_KILL_FILE": str(tmp_path / "KILL"),
        "MEMEBOT_FLOWS_REPORT_DIR": str(tmp_path / "reports"),
        "MEMEBOT_STORE_LEDGER_DIR": str(tmp_path / "runs"),
    }
    (tmp_path / "mlruns").mkdir()
    for k, v in vals.items():
        monkeypatch.setenv(k, v)
    reset_settings()
    yield vals
    reset_settings()


@pytest.fixture(scope="module")
def harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


WATCH = ["geckoterminal:solana:POOL1:5m", "geckoterminal:solana:POOL2:5m"]


def test_backfill_train_promote(harness, env, gt):
    from backfill import backfill_flow
    from train import train_flow
    from memebot.data.store import Store, candles
    from memebot.models.registry import aliases

    out = backfill_flow(watchlist=WATCH, since=gt.since, until=gt.until)
    assert {k: v["new"] for k, v in out["series"].items()} == {w: N for w in WATCH}
    assert len(out["quality"]) == 2 and all(r["rows"] == N and r["missing_bars"] == 0 for r in out["quality"])
    again = backfill_flow(
        watchlist=WATCH, since=gt.since, until=gt.until
    )  # idempotent: nothing missing, nothing fetched
    assert all(v["pages"] == 0 and v["new"] == 0 for v in again["series"].values())
    with Store(env["MEMEBOT_STORE_PATH"], read_only=True) as st:
        df = candles(st, ["POOL1", "POOL2"], "5m", source="geckoterminal")
    assert len(df) == 2 * N
    res = train_flow(families=["logreg"], tf="5m", source="geckoterminal", name="flowtest", splits=2)
    # on these two pools logistic regression does not beat the naive baselines: refused even with no champion yet
    assert res[0]["version"] == "1" and res[0]["decision"] == "challenger" and res[0]["aliases"] == {"challenger": "1"}
    assert res[0]["champion_version"] is None and "does not beat best baseline" in res[0]["reason"]
    assert res[0]["candidate_score"] > res[0]["baseline_score"] - 0.005
    from memebot.models.registry import promote

    promote("flowtest", "1", env["MEMEBOT_AI_TRACKING_URI"])  # the operator's override
    res2 = train_flow(families=["majority"], tf="5m", source="geckoterminal", name="flowtest", splits=2)
    al = aliases("flowtest", env["MEMEBOT_AI_TRACKING_URI"])
    assert (
        res2[0]["version"] == "2" and res2[0]["decision"] == "challenger" and al == {"champion": "1", "challenger": "2"}
    )
    assert (
        res2[0]["champion_version"] == "1" and res2[0]["champion_score"] is not None
    )  # compared with the champion too
    # ... and a paper run (the live flow, paper mode) trades with the champion
    from live import live_flow
    from memebot.obs import REGISTRY

    key = {"model": "flowtest", "role": "champion"}
    before = REGISTRY.get_sample_value("memebot_model_predictions_total", key) or 0.0
    out = live_flow.with_options(retries=0)(
        model="flowtest", params={"size": "0.02", "refresh_s": "0"}, tf="5m", run_id="e2e"
    )
    served = REGISTRY.get_sample_value("memebot_model_serving_version", {"model": "flowtest", "alias": "champion"})
    assert out["status"] == "finished" and out["consistency"] == [] and out["events"] >= N
    assert (REGISTRY.get_sample_value("memebot_model_predictions_total", key) or 0.0) - before >= N - 100
    assert served == float(al["champion"])  # the champion was served


def test_backfill_flow_bad_watchlist(harness, env):
    from backfill import backfill_flow
    from memebot.core import ValidationError

    with pytest.raises(ValidationError, match="watchlist"):
        backfill_flow(watchlist=["geckoterminal:solana:POOL1"])


def test_backfill_and_sweep_on_dask(harness, env, gt, tmp_path):
    """Multi-pool backfill and a chunked sweep on a 2-process LocalCluster give what the threaded/plain paths give."""
    from backfill import backfill_flow
    from sweep import sweep_flow
    from memebot import ops
    from memebot.backtest.vector import sweep
    from memebot.data.store import Store, candles
    from distributed import LocalCluster

    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )  # one cluster, both flows
    try:
        _dask_flows(env, gt, cluster.scheduler_address)
    finally:
        cluster.close()


def _dask_flows(env, gt, address):
    from backfill import backfill_flow
    from sweep import sweep_flow
    from memebot import ops
    from memebot.backtest.vector import sweep
    from memebot.data.store import Store, candles

    assert ops.task_runner("dask", workers=2).cluster_kwargs["n_workers"] == 2  # the default: a LocalCluster
    runner = ops.task_runner("dask", address=address)
    out = backfill_flow.with_options(task_runner=runner)(watchlist=WATCH, since=gt.since, until=gt.until)
    assert out["series"]["merged"]["new"] == 2 * N and out["series"]["merged"]["quarantined"] == 0
    with Store(env["MEMEBOT_STORE_PATH"], read_only=True) as st:
        assert len(candles(st, ["POOL1", "POOL2"], "5m")) == 2 * N
    grid = {"fast": [5, 8, 12], "slow": [30, 50]}
    frame = ops.sweep_frame(None, "5m")
    res = sweep_flow.with_options(task_runner=ops.task_runner("dask", address=address))(
        "ema_cross", grid, frame=frame, chunks=3, fees_bps=10.0
    )
    ref = sweep("ema_cross", frame, grid, fees_bps=10.0)
    key = ["fast", "slow", "symbol"]
    pd.testing.assert_frame_equal(
        res.sort_values(key).reset_index(drop=True)[ref.columns], ref.sort_values(key).reset_index(drop=True)
    )


def test_live_flow_guard_rails(harness, env):
    from live import live_flow
    from memebot.ops import OpsError
    from memebot.risk import write_kill_file

    write_kill_file(env["MEMEBOT_LIVE_KILL_FILE"], "test kill")
    with pytest.raises(OpsError, match="kill switch engaged"):
        live_flow.with_options(retries=0)(strategy="ema_cross")
    os.remove(env["MEMEBOT_LIVE_KILL_FILE"])
    with pytest.raises(OpsError, match="live trading is off"):
        live_flow.with_options(retries=0)(mode="live")
    with pytest.raises(OpsError, match="paper node only"):
        from memebot.config import reset_settings

        os.environ.update(MEMEBOT_LIVE_LIVE_TRADING_ENABLED="true", MEMEBOT_LIVE_PAPER_TRADING_MODE="false")
        reset_settings()
        try:
            live_flow.with_options(retries=0)(mode="live")
        finally:
            for k in ("MEMEBOT_LIVE_LIVE_TRADING_ENABLED", "MEMEBOT_LIVE_PAPER_TRADING_MODE"):
                os.environ.pop(k, None)
            reset_settings()


def test_live_flow_runs_the_paper_node_and_resumes(harness, env, shared):
    """The flow runs the paper node over stored bars; run again (a restarted flow) it resumes the same ledger run."""
    import pandas as pd
    from live import live_flow
    from memebot.config import reset_settings
    from memebot.data.store import Store, upsert

    reset_settings()
    df = pd.read_parquet(
        shared / "data/binance_memecoins/ohlcv_5m_2025-01_2025-04.parquet",
        filters=[("symbol", "in", ["BONK/USDT", "WIF/USDT"])],
    ).rename(columns={"date": "ts"})
    df = df.groupby("symbol").head(600).assign(source="binance", chain="cex", tf="5m")
    with Store(env["MEMEBOT_STORE_PATH"]) as st:
        upsert(st, "candles", df)
    first = live_flow.with_options(retries=0)(strategy="ema_cross", params={"fast": "5", "slow": "20", "size": "0.02"})
    assert first["status"] == "finished" and first["fills"] >= 4 and first["consistency"] == []
    again = live_flow.with_options(retries=0)(strategy="ema_cross", params={"fast": "5", "slow": "20", "size": "0.02"})
    assert again["fills"] == first["fills"] and again["consistency"] == []  # resumed from the ledger: nothing doubled
    with Store(
        Path(env["MEMEBOT_STORE_LEDGER_DIR"]) / "paper-ema_cross.duckdb", read_only=True
    ) as st:  # the run's own ledger
        n = st.cursor().execute("SELECT count(*) FROM fills WHERE run_id = 'paper-ema_cross'").fetchone()[0]
    assert n == first["fills"]


def test_deployments_schedules_off_unless_enabled(env, monkeypatch):
    from memebot.config import reset_settings
    import deployments as dep

    ds = dep.deployments()
    assert [d.name for d in ds] == ["backfill", "train", "reports", "paper", "social"]
    assert all(not d.schedules for d in ds)
    monkeypatch.setenv("MEMEBOT_FLOWS_SCHEDULES_ENABLED", "true")
    reset_settings()
    ds = dep.deployments(["backfill", "train"])
    assert [s.schedule.cron for d in ds for s in d.schedules] == ["*/30 * * * *", "0 3 * * *"]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url, timeout):
    import httpx

    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return False


@pytest.mark.slow
def test_deployment_served_against_local_server_runs_to_completed(env, gt, tmp_path, cli_env):
    """`prefect server start` on 127.0.0.1 (temp PREFECT_HOME), `memebot flows serve --only backfill`,
    one run -> Completed."""
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    penv = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")},
        **cli_env,
        **env,
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
        "PREFECT_SERVER_API_PORT": str(port),
    }
    bin_ = Path(sys.executable).parent
    server = subprocess.Popen(
        [str(bin_ / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-ui"],
        env=penv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        start_new_session=True,
    )
    serve = None
    try:
        assert _wait_http(f"{api}/health", 90), "prefect server did not start"
        senv = {**penv, "PREFECT_API_URL": api}
        mport = _free_port()
        serve = subprocess.Popen(
            [str(bin_ / "memebot"), "flows", "serve", "--only", "backfill", "--metrics-port", str(mport)],
            env=senv,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        code = f"""
import json, time
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound
for i in range(90):
    try:
        fr = run_deployment("backfill/backfill", parameters={{"watchlist": {WATCH!r}, "since": {gt.since!r},
            "until": {gt.until!r}}},
                            timeout=90, poll_interval=1)
        break
    except ObjectNotFound:       # `flows serve` registers the deployment once it is up
        time.sleep(1)
print(json.dumps({{"state": fr.state.type.value, "name": fr.state.name}}))
"""
        r = subprocess.run(
            [sys.executable, "-c", code], env=senv, capture_output=True, text=True, timeout=150, cwd=ROOT
        )
        assert r.returncode == 0, r.stderr[-2000:]
        st = json.loads(r.stdout.strip().splitlines()[-1])
        assert st["state"] == "COMPLETED", st
        from memebot.data.store import Store, candles

        with Store(env["MEMEBOT_STORE_PATH"], read_only=True) as s:
            assert len(candles(s, ["POOL1", "POOL2"], "5m")) == 2 * N
        # the run was a child process of `flows serve`: its metrics are in the server's /metrics all the same
        from prometheus_client.parser import text_string_to_metric_families

        text = urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=10).read().decode()
        got = {(x.name, tuple(sorted(x.labels.items()))): x.value
               for f in text_string_to_metric_families(text) for x in f.samples}  # fmt: skip
        rows = sum(v for (n, _), v in got.items() if n == "memebot_backfill_rows_total")
        assert rows == 2 * N, [k for k in got if "backfill" in k[0]]
        assert sum(v for (n, _), v in got.items() if n == "memebot_http_requests_total") >= 2
    finally:
        for p in (serve, server):  # SIGINT the serving process before the server
            if p is None:
                continue
            try:
                os.killpg(p.pid, signal.SIGINT)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def test_social_flow_collects_new_posts_into_the_store(harness, env, shared, monkeypatch):
    "The social flow collects each `[flows] social_channels` entry from where the last run stopped."
    from pytest_httpserver import HTTPServer
    from memebot.config import reset_settings
    from memebot.core import ValidationError
    from memebot.data.store import Store
    from social import parse_channels, social_flow

    x = json.loads(
        (shared / "fixtures/social/x_api_v2_tweets_search_recent_tweepy_cassette.THIRDPARTY.json").read_text()
    )
    x["meta"].pop("next_token")
    srv = HTTPServer(host="127.0.0.1", port=0)
    srv.start()
    try:
        srv.expect_request("/tweets/search/recent").respond_with_json(x)
        for k, v in {"MEMEBOT_ENDPOINTS_X": srv.url_for("").rstrip("/"), "MEMEBOT_KEYS_X_BEARER_TOKEN": "t0ken",
                     "MEMEBOT_FLOWS_SOCIAL_CHANNELS": "x:$WIF"}.items():  # fmt: skip
            monkeypatch.setenv(k, v)
        reset_settings()
        assert social_flow() == [{"source": "x", "channel": "$WIF", "read": 10, "new": 10}]
        assert social_flow()[0]["new"] == 0  # stored once
        sent = [dict(r.args) for r, _ in srv.log]
        assert sent[1]["since_id"] == x["meta"]["newest_id"]
        with Store(env["MEMEBOT_STORE_PATH"], read_only=True) as st:
            assert st.cursor().execute("SELECT count(*) FROM social_posts").fetchone()[0] == 10
    finally:
        srv.stop()
        reset_settings()
    assert parse_channels("x:$WIF, reddit:solana,telegram:") == [("x", "$WIF"), ("reddit", "solana"), ("telegram", "")]
    with pytest.raises(ValidationError, match="social_channels"):
        parse_channels("myspace:tom")
