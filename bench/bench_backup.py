"""Backup and restore timings (issue 18): the restore drill's RTO on a realistic data folder.

The market store holds the Binance memecoin 5m bars of ../shared/data (748k rows); one paper node's ledger is made by
a real paper run. Measured: `create_backup` (DuckDB copies, MLflow, manifest with SHA-256 and row counts, tar.gz),
`verify_backup`, `restore_backup` (verify again, then copy back), beside the naive baseline of `tar czf` over the same
files (no consistency, no verification). RTO = restore + the paper run's resume.

`--live N`: the live drill instead, on the loopback Solana chain (LiteSVM): a live account trades, a backup is taken,
it makes N more trades, the data folder is lost and the backup restored; RTO = restore + `memebot live reconcile
--adopt` (the trades after the backup booked back from the chain as orders, the ledger equal to the chain again).

`--evm N`: the same drill for a live BSC account on a Hardhat node with Uniswap V2. The node does not list an
account's transactions: `live reconcile --adopt --chain bsc` finds each one after the backup by a binary search of
the account's nonce over the node's history, then books it.

Usage: PYTHONPATH=. .venv/bin/python bench/bench_backup.py [--live 20 | --evm 20]
"""

import argparse, asyncio, json, os, shutil, subprocess, sys, tempfile, time
from pathlib import Path
import pandas as pd

from memebot.core import shared_dir
from memebot.config import load_settings
from memebot.obs import configure_logging
from memebot.data.store import Store, upsert
from memebot.backup import create_backup, verify_backup, restore_backup

DATA = "data/binance_memecoins/ohlcv_5m_2025-01_2025-04.parquet"
EXE = Path(sys.executable).parent / "memebot"


def _drill_env(d: Path, data: Path) -> dict:
    "A `memebot` environment with its data under `data` (the folder a drill loses) and MLflow under `d`."
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMEBOT_")}
    env |= {"MEMEBOT_STORE_PATH": str(data / "memebot.duckdb"), "MEMEBOT_STORE_LEDGER_DIR": str(data / "runs")}
    return env | {
        "MEMEBOT_LIVE_KILL_FILE": str(data / "KILL"),
        "MEMEBOT_AI_TRACKING_URI": f"sqlite:///{d}/ml/mlflow.db",
    }


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
        env = _drill_env(d, data)
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


async def _trades(s, jup, mint: str, n: int) -> list:
    "`n` live trades through the `live` ledger (buys, then sells of half the tokens), as `memebot live buy/sell` do."
    from memebot.exec.ledger import Ledger, ledger_store
    from memebot.exec.solana import SolanaBroker, load_wallet
    from memebot.core import OrderStatus

    w = load_wallet(s)
    st = ledger_store("live", s)
    b = SolanaBroker(Ledger(st, run_id="live", wallet=str(w.pubkey)), w, s, allowed_cosigners=jup.cosigners,
                     resend_interval_s=0.05)  # fmt: skip
    rep = await b.start()
    if not rep.ok:
        b.acknowledge(rep)  # the opening balance
    out = []
    for i in range(n):
        o = await (b.buy(mint, 10**8) if i % 2 == 0 else b.sell(mint, b.ledger.balances()[mint] // 2))
        assert o.status is OrderStatus.FILLED, o.reason
        out.append(o)
    await b.aclose()
    st.close()
    return out


def live_drill(after: int):
    "The restore drill of a live Solana account on LiteSVM; RTO = restore + `live reconcile --adopt`."
    from solders.keypair import Keypair
    from memebot.testing import LocalChain, LocalChainServer, LocalJupiter

    configure_logging("WARNING", "json")
    chain = LocalChain()
    jup = LocalJupiter(chain)
    mint = chain.create_mint(6)
    jup.create_pool(mint, 10**15, 1_000 * 10**9)
    kp = Keypair()
    chain.airdrop(kp.pubkey(), 100 * 10**9)
    with tempfile.TemporaryDirectory() as d, LocalChainServer(chain, jup) as srv:
        d = Path(d)
        data = d / "data"
        env = _drill_env(d, data)
        env |= {"MEMEBOT_SOLANA_PRIVATE_KEY": str(kp), "MEMEBOT_LIVE_LIVE_TRADING_ENABLED": "true",
                "MEMEBOT_LIVE_PAPER_TRADING_MODE": "false"}  # fmt: skip
        env |= {f"MEMEBOT_{k.replace('.', '_').upper()}": v for k, v in srv.endpoints().items()}
        s = load_settings(None, env=env)
        asyncio.run(_trades(s, jup, str(mint), 4))
        arch, t_create = timed(lambda: create_backup(d / "bk", s, postgres=False))
        asyncio.run(_trades(s, jup, str(mint), after))  # what the backup will not know
        shutil.rmtree(data)
        _, t_restore = timed(lambda: restore_backup(arch, s, postgres=False))
        cmd = [EXE, "live", "reconcile", "--yes-i-mean-live", "--allow-cosigner", jup.cosigners[0], "--json"]
        r, t_adopt = timed(lambda: subprocess.run([*cmd, "--adopt"], env=env, capture_output=True, text=True))
        doc = json.loads(r.stdout)
        assert r.returncode == 0 and doc["ok_now"] and len(doc["adopted"]) == after, r.stdout[-500:] + r.stderr[-500:]
        r2, t_check = timed(lambda: subprocess.run(cmd, env=env, capture_output=True, text=True))
        assert r2.returncode == 0
        rows = [
            ("live account: trades before / after the backup", f"4 / {after}", ""),
            ("backup create", f"{t_create:.2f} s", f"{arch.stat().st_size / 1e3:.0f} kB"),
            ("backup restore (verify + copy back)", f"{t_restore:.2f} s", ""),
            (f"live reconcile --adopt ({after} transactions booked back)", f"{t_adopt:.2f} s", ""),
            ("RTO (restore + reconcile --adopt)", f"{t_restore + t_adopt:.2f} s", ""),
            ("a plain live reconcile afterwards (the floor)", f"{t_check:.2f} s", ""),
        ]
        print(f"{'what':<58}{'time':>10}{'size':>10}")
        for a, b, c in rows:
            print(f"{a:<58}{b:>10}{c:>10}")


async def _evm_trades(s, bed, n: int) -> int:
    "`n` live swaps on BSC through the `live` ledger (buys, then sells of half the tokens); transactions sent."
    from memebot.commands.live import evm_broker
    from memebot.core import Chain, OrderStatus

    b, st, rep = await evm_broker(s, Chain.BSC, risk=False)
    if not rep.ok:
        b.acknowledge(rep)  # the opening balance
    meme = bed.tokens["MEME"].lower()
    for i in range(n):
        o = await (b.buy(meme, 10**16) if i % 2 == 0 else b.sell(meme, b.ledger.balances()[meme] // 2))
        assert o.status is OrderStatus.FILLED, o.reason
    sent = sum(1 for i in b.ledger.intents() if i.status == "confirmed")
    await b.aclose()
    st.close()
    return sent


def evm_drill(after: int):
    "The restore drill of a live BSC account on a Hardhat node; RTO = restore + `live reconcile --adopt --chain bsc`."
    from eth_account import Account
    from memebot.testing.evm import HardhatNode, UniswapTestbed

    configure_logging("WARNING", "json")
    with tempfile.TemporaryDirectory() as d, HardhatNode(chain_id=56) as node:
        node.rpc("evm_setIntervalMining", 100)
        bed = UniswapTestbed(node).deploy()
        me = Account.create()
        node.rpc("hardhat_setBalance", me.address, hex(100 * 10**18))
        d = Path(d)
        data, key = d / "data", d / "evm.key"
        key.write_text(me.key.hex())
        key.chmod(0o600)
        env = _drill_env(d, data)
        env |= {**bed.settings_env("bsc"), "MEMEBOT_EVM_KEYSTORE_PATH": str(key), "MEMEBOT_EVM_BSC_CONFIRMATIONS": "1",
                "MEMEBOT_LIVE_LIVE_TRADING_ENABLED": "true", "MEMEBOT_LIVE_PAPER_TRADING_MODE": "false",
                "MEMEBOT_CROSSCHAIN_BSC_ENABLED": "true"}  # fmt: skip
        s = load_settings(None, env=env)
        first = asyncio.run(_evm_trades(s, bed, 4))
        arch, t_create = timed(lambda: create_backup(d / "bk", s, postgres=False))
        sent = asyncio.run(_evm_trades(s, bed, after)) - first  # swaps and approvals the backup will not know
        shutil.rmtree(data)
        _, t_restore = timed(lambda: restore_backup(arch, s, postgres=False))
        cmd = [EXE, "live", "reconcile", "--chain", "bsc", "--yes-i-mean-live", "--json"]
        r, t_adopt = timed(lambda: subprocess.run([*cmd, "--adopt"], env=env, capture_output=True, text=True))
        doc = json.loads(r.stdout)
        assert r.returncode == 0 and doc["ok_now"] and len(doc["unknown_signatures"]) >= after, r.stdout[-500:]
        r2, t_check = timed(lambda: subprocess.run(cmd, env=env, capture_output=True, text=True))
        assert r2.returncode == 0
        head = int(node.rpc("eth_blockNumber"), 16)
        rows = [
            ("live BSC account: swaps before / after the backup", f"4 / {after}", ""),
            ("transactions after the backup (swaps and approvals)", f"{len(doc['unknown_signatures'])}", ""),
            ("blocks on the node (the history searched)", f"{head:,}", ""),
            ("backup create", f"{t_create:.2f} s", f"{arch.stat().st_size / 1e3:.0f} kB"),
            ("backup restore (verify + copy back)", f"{t_restore:.2f} s", ""),
            (f"live reconcile --adopt ({len(doc['adopted'])} swaps booked back)", f"{t_adopt:.2f} s", ""),
            ("RTO (restore + reconcile --adopt)", f"{t_restore + t_adopt:.2f} s", ""),
            ("a plain live reconcile afterwards (the floor)", f"{t_check:.2f} s", ""),
        ]
        assert len(doc["unknown_signatures"]) == sent, (doc["unknown_signatures"], sent)
        print(f"{'what':<58}{'time':>10}{'size':>10}")
        for a, b, c in rows:
            print(f"{a:<58}{b:>10}{c:>10}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--live", type=int, default=0, help="the live drill with this many trades after the backup")
    ap.add_argument("--evm", type=int, default=0, help="the EVM live drill with this many swaps after the backup")
    a = ap.parse_args()
    evm_drill(a.evm) if a.evm else live_drill(a.live) if a.live else main()
