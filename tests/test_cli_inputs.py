"""The command line as a new user meets it: bad input is one `error:` line naming the option, exit 2, and nothing stored
is lost; output reads at 80 columns; a running paper node does not lock anyone out of research."""

import json, os, signal, subprocess, sys, time
from pathlib import Path
import pandas as pd, pytest

DATA = "data/binance_memecoins/ohlcv_5m_2025-01_2025-04.parquet"
EXE = Path(sys.executable).parent / "memebot"


def _one_error(r, *needles):
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), (r.returncode, r.stderr)
    assert "internal error" not in r.stderr and all(n in lines[0] for n in needles), (needles, lines[0])


@pytest.fixture
def stored(shared, memebot, tmp_path):
    "A store with two weeks of BONK and WIF 5m bars (a user's `data import`)."
    df = pd.read_parquet(shared / DATA, filters=[("symbol", "in", ["BONK/USDT", "WIF/USDT"])])
    f = tmp_path / "binance_5m.parquet"
    df[(df.date >= "2025-03-01") & (df.date < "2025-03-15")].to_parquet(f)
    memebot("data", "import", f, "--tf", "5m", check=True)
    return memebot


@pytest.mark.parametrize(
    "args, needles",
    [
        (["--cash", "0"], ["--cash", "not a positive number"]),
        (["--cash", "-5"], ["--cash", "not a positive number"]),
        (["--cash", "nan"], ["--cash", "not a positive number"]),
        (["--from", "abc"], ["--from", "'abc' is not a date"]),
        (["--to", "31/02/2025"], ["--to", "is not a date"]),
        (["--from", "2025-03-10", "--to", "2025-03-02"], ["--from", "is not before --to"]),
        (["--bogus", "1"], ["No such option", "--bogus"]),
    ],
)
def test_backtest_bad_options(stored, args, needles):
    _one_error(
        stored("backtest", "--strategy", "ema_cross", "--symbols", "BONK/USDT", "--no-tearsheet", *args), *needles
    )


def test_usage_errors_and_a_store_that_is_not_duckdb(memebot, tmp_path):
    _one_error(memebot("nosuchcommand"), "No such command")
    _one_error(memebot("data", "ls", "--bogus"), "No such option")
    bad = tmp_path / "notes.txt"
    bad.write_text("not a database")
    r = memebot("data", "ls", env={"MEMEBOT_STORE_PATH": str(bad)})
    _one_error(r, "[store] path", "not a DuckDB database file")
    assert bad.read_text() == "not a database"  # untouched


def test_read_commands_on_a_missing_store_say_it_is_empty(memebot, tmp_path):
    env = {"MEMEBOT_STORE_PATH": str(tmp_path / "none.duckdb")}
    for cmd in (["data", "ls"], ["data", "check"]):
        r = memebot(*cmd, env=env)
        assert r.returncode == 0 and "is empty: import data with `memebot data import PATH`" in r.stdout, r.stdout
        j = memebot(*cmd, "--json", env=env)
        assert j.returncode == 0 and json.loads(j.stdout) == [], j.stdout
    assert not (tmp_path / "none.duckdb").exists()  # reading creates nothing


def test_paper_bad_options_leave_nothing_behind(stored, tmp_path):
    _one_error(stored("paper", "--strategy", "ema_cross", "--cash", "0", "--run-id", "c0"), "--cash")
    _one_error(
        stored("--set", "monitoring.metrics_enabled=false", "paper", "--strategy", "ema_cross", "--metrics"),
        "metrics are off",
    )
    _one_error(
        stored("paper", "--strategy", "ema_cross", "--from", "2025-03-10", "--to", "2025-03-01", "--run-id", "r0"),
        "is not before --to",
    )
    _one_error(
        stored("paper", "--strategy", "ema_cross", "--symbols", "NOPE/USDT", "--run-id", "n0"),
        "unknown symbol 'NOPE/USDT'",
    )
    assert not (tmp_path / "runs").exists() or not list(
        (tmp_path / "runs").glob("*.duckdb")
    )  # no ledger for a refused run


def test_paper_run_failing_at_start_is_not_left_running(stored, tmp_path):
    "A strategy that cannot start (no such model) fails the run: its record says failed, never running."
    r = stored(
        "paper",
        "--strategy",
        "model_signal",
        "--param",
        "model=no-such-model",
        "--symbols",
        "BONK/USDT",
        "--run-id",
        "nomodel",
        "--no-dashboard",
        env={"MEMEBOT_AI_TRACKING_URI": f"sqlite:///{tmp_path}/empty.db"},
    )
    assert r.returncode == 2 and "no-such-model" in r.stderr.strip().splitlines()[-1]
    from memebot.data.store import Store
    from memebot.live import load_run

    with Store(tmp_path / "runs" / "nomodel.duckdb", read_only=True) as st:
        rec = load_run(st, "nomodel")
    assert rec["status"] == "failed"


def test_data_import_csv_and_all_or_nothing(memebot, shared, tmp_path):
    df = pd.read_parquet(shared / DATA, filters=[("symbol", "==", "PEPE/USDT")]).iloc[:500]
    good = tmp_path / "PEPE_USDT-5m.csv"
    df.drop(columns="symbol").to_csv(good, index=False)
    bad = tmp_path / "WIF_USDT-5m.csv"
    df.assign(high=df.low * 0.5).drop(columns="symbol").to_csv(bad, index=False)
    for files in ([good, bad], [bad, good]):  # any order: nothing is written
        _one_error(memebot("data", "import", *files), "WIF_USDT-5m.csv", "high")
        assert json.loads(memebot("data", "ls", "--json", check=True).stdout) == []
    r = memebot("data", "import", good, check=True)
    assert "500 candles rows" in r.stdout
    inv = json.loads(memebot("data", "ls", "--json", check=True).stdout)
    assert [(x["symbol"], x["tf"], x["rows"]) for x in inv] == [("PEPE/USDT", "5m", 500)]
    (tmp_path / "sheet.xlsx").write_text("x")
    _one_error(memebot("data", "import", tmp_path / "sheet.xlsx"), "imports .parquet, .feather, .csv")


def _wide(text):
    "Lines over 80 columns that are not a path printed on its own, and any line cut with an ellipsis."
    return [l for l in text.splitlines() if (len(l) > 80 and " /" not in f" {l}") or "…" in l]


def test_outputs_read_at_80_columns(stored, shared, tmp_path):
    env = {"COLUMNS": "80"}
    pools = tmp_path / "pools.parquet"  # 44-character pool addresses as symbols
    pd.read_parquet(shared / "data/pumpfun/geckoterminal_ohlcv_1h.parquet").head(300).to_parquet(pools)
    stored("data", "import", pools, "--tf", "1h", check=True)
    for args in (
        ["data", "ls"],
        ["config", "show"],
        ["data", "check", "--no-quarantine"],
        ["risk", "status"],
        ["backtest", "--strategy", "ema_cross", "--symbols", "BONK/USDT", "--no-tearsheet"],
    ):
        r = stored(*args, env=env, check=True)
        assert _wide(r.stdout) == [], (args, _wide(r.stdout))
    ls = stored("data", "ls", env=env, check=True).stdout
    addr = pd.read_parquet(pools).pool.iloc[0]
    assert any(l.strip() == addr for l in ls.splitlines()) and "2025-03-14 23:55" in ls  # on its own line, never cut


def test_a_running_paper_node_does_not_lock_out_research(stored, tmp_path, cli_env):
    "While a paper node runs: data ls and a backtest work, and a second run of the same id is refused clearly."
    env = dict(cli_env, MEMEBOT_LIVE_HEARTBEAT_SECONDS="0.2")
    p = subprocess.Popen(
        [
            EXE,
            "paper",
            "--strategy",
            "ema_cross",
            "--symbols",
            "BONK/USDT",
            "--run-id",
            "busy",
            "--speed",
            "600",
            "--no-dashboard",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        for line in p.stdout:
            if "paper busy:" in line:
                break
        assert p.poll() is None
        ls = stored("data", "ls", "--json", check=True)
        assert {x["symbol"] for x in json.loads(ls.stdout)} == {"BONK/USDT", "WIF/USDT"}
        bt = stored("backtest", "--strategy", "ema_cross", "--symbols", "WIF/USDT", "--no-tearsheet", check=True)
        assert "submitted" in bt.stdout
        _one_error(stored("paper", "--run-id", "busy", "--resume"), "running in another process")
        st = json.loads(stored("risk", "status", "--json", check=True).stdout)
        assert st["node_status"] == "running" and st["node"]["pid"] == p.pid
    finally:
        p.send_signal(signal.SIGINT)
        p.communicate(timeout=120)
    assert p.returncode == 0
    st = json.loads(stored("risk", "status", "--json", check=True).stdout)
    assert st["node_status"] == "stopped"
