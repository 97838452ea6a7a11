"""Backup and restore timings (issue 18): the restore drill's RTO on a realistic data folder.

The market store holds the Binance memecoin 5m bars of ../shared/data (748k rows); one paper node's ledger is made by
a real paper run. Measured: `create_backup` (DuckDB copies, MLflow, manifest with SHA-256 and row counts, tar.gz),
`verify_backup`, `restore_backup` (verify again, then copy back), beside the naive baseline of `tar czf` over the same
files (no consistency, no verification). RTO = restore + the paper run's resume.

Usage: PYTHONPATH=. .venv/bin/python bench/bench_backup.py
"""

import os, subprocess, sys, tempfile, time
from pathlib import Path
import pandas as pd

from memebot.core import shared_dir
from memebot.config import load_settings
from memebot.obs import configure_logging
from memebot.data.store import Store, upsert
from memebot.backup import create_backup, verify_backup, restore_backup

DATA = "data/binance_memecoins/ohlcv_5m_2025-01_2025-04.parquet"
EXE = Path(sys.executable).parent / "memebot"


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main():
    configure_logging("WARNING", "json")
    df = pd.read_parquet(shared_dir() / DATA).rename(columns={"date": "ts"})
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        data = d / "data"
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEMEBOT_")}
        env |= {"MEMEBOT_STORE_PATH": str(data / "memebot.duckdb"), "MEMEBOT_STORE_LEDGER_DIR": str(data / "runs")}
        env |= {"MEMEBOT_LIVE_KILL_FILE": str(data / "KILL"), "MEMEBOT_AI_TRACKING_URI": f"sqlite:///{d}/ml/mlflow.db"}
        s = load_settings(None, env=env)
        with Store(data / "memebot.duckdb") as st:
            upsert(st, "candles", df.assign(tf="5m", source="binance", chain="cex"))
        run = [EXE, "paper", "--strategy", "ema_cross", "--feed", "sim", "--minutes", "1440", "--tf", "1m", "--param",
               "fast=3", "--param", "slow=8", "--speed", "0", "--no-dashboard", "--run-id", "bench"]  # fmt: skip
        subprocess.run(run, env=env, check=True, capture_output=True)
        src_bytes = sum(p.stat().st_size for p in data.rglob("*") if p.is_file())
        arch, t_create = timed(lambda: create_backup(d / "bk", s, postgres=False))
        checks, t_verify = timed(lambda: verify_backup(arch))
        assert all(ok for _, ok, _ in checks), checks
        _, t_tar = timed(
            lambda: subprocess.run(["tar", "czf", str(d / "naive.tar.gz"), "-C", str(d), "data"], check=True)
        )
        import shutil

        shutil.rmtree(data)
        _, t_restore = timed(lambda: restore_backup(arch, s, postgres=False))
        resume = [EXE, "paper", "--run-id", "bench", "--resume", "--speed", "0", "--no-dashboard"]
        _, t_resume = timed(lambda: subprocess.run(resume, env=env, check=True, capture_output=True))
        rows = [
            ("data folder (store 748k bars + ledger)", f"{src_bytes / 1e6:,.1f} MB", ""),
            ("backup create (consistent, manifest, tgz)", f"{t_create:.2f} s", f"{arch.stat().st_size / 1e6:.1f} MB"),
            ("backup verify (unpack, SHA-256, row counts)", f"{t_verify:.2f} s", ""),
            ("naive `tar czf` of the same folder (baseline)", f"{t_tar:.2f} s",
             f"{(d / 'naive.tar.gz').stat().st_size / 1e6:,.1f} MB"),
            ("backup restore (verify + copy back)", f"{t_restore:.2f} s", ""),
            ("paper run resume after the restore", f"{t_resume:.2f} s", ""),
            ("RTO (restore + resume)", f"{t_restore + t_resume:.2f} s", ""),
        ]  # fmt: skip
        print(f"{'what':<48}{'time':>12}{'size':>14}")
        for a, b, c in rows:
            print(f"{a:<48}{b:>12}{c:>14}")


if __name__ == "__main__":
    main()
