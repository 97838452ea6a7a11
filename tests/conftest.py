"""Shared pytest fixtures: ../shared location, an isolated environment for CLI runs, local services."""

import os, sys, subprocess, tempfile
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
# Keep tools that write under $HOME (matplotlib, jupyter, prefect, mlflow) inside a temp dir.
_TMP_HOME = Path(tempfile.mkdtemp(prefix="memebot-test-home-"))
for var, sub in (("MPLCONFIGDIR", "mpl"), ("PREFECT_HOME", "prefect"), ("JUPYTER_CONFIG_DIR", "jupyter")):
    os.environ.setdefault(var, str(_TMP_HOME / sub))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _shared():
    from memebot.core import shared_dir

    return shared_dir(required=False)


@pytest.fixture(scope="session")
def shared() -> Path:
    """../shared (real data and recorded payloads): skip when absent, fail when MEMEBOT_REQUIRE_SHARED=1."""
    d = _shared()
    if d is None:
        if os.environ.get("MEMEBOT_REQUIRE_SHARED") == "1":
            pytest.fail("../shared is required (MEMEBOT_REQUIRE_SHARED=1) but was not found beside the project")
        pytest.skip("../shared (real data and fixtures) not found beside the project; set MEMEBOT_SHARED to run this")
    return d


@pytest.fixture
def cli_env(tmp_path):
    """Environment for running `memebot` in a subprocess against a temp store, with the project's settings.ini."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("MEMEBOT_") or k in ("MEMEBOT_SHARED", "MEMEBOT_REQUIRE_SHARED")
    }
    env["MEMEBOT_SETTINGS"] = str(ROOT / "settings.ini")
    env["MEMEBOT_STORE_PATH"] = str(tmp_path / "store.duckdb")
    env["MEMEBOT_LIVE_KILL_FILE"] = str(tmp_path / "KILL")
    env["MEMEBOT_STORE_LEDGER_DIR"] = str(tmp_path / "runs")
    env["COLUMNS"] = "200"
    return env


@pytest.fixture
def memebot(cli_env):
    """Run the installed `memebot` command; returns CompletedProcess (text)."""
    exe = Path(sys.executable).parent / "memebot"

    def run(*args, env=None, check=False, timeout=600):
        e = dict(cli_env, **(env or {}))
        r = subprocess.run(
            [str(exe), *map(str, args)], capture_output=True, text=True, env=e, timeout=timeout, cwd=ROOT
        )
        if check and r.returncode != 0:
            raise AssertionError(f"memebot {' '.join(map(str, args))} exited {r.returncode}:\n{r.stdout}\n{r.stderr}")
        return r

    return run
