"""Live copy-trading latency (issue 19): how long after a watched wallet's swap lands does memebot's copy land?

On the loopback Solana chain (LiteSVM, the Jupiter stand-in, blocks every 0.4 s), `memebot wallets watch
--yes-i-mean-live` follows one wallet; the wallet buys N different tokens one after another, and each copy is timed from
the wallet's transaction landing to the copy's transaction landing, split into: hearing it (the logs notification and
`getTransaction`, until the node submits the order) and sending it (quote, swap transaction, checks, signing, sending,
confirmation). The peer is the floor the chain sets: a copy cannot land before the next block after the leader's.
A real RPC adds its network round trips (about 4: notification, getTransaction, quote, send) and the leader's slot.

Usage: PYTHONPATH=. .venv/bin/python bench/bench_copy_live.py [--copies 20]
"""

import argparse, base64, json, os, re, subprocess, sys, tempfile, threading, time
from pathlib import Path

import numpy as np
from solders.keypair import Keypair
from solders.message import to_bytes_versioned
from solders.transaction import VersionedTransaction

from memebot.core import SOL_MINT
from memebot.testing import LocalChain, LocalChainServer, LocalJupiter

EXE = Path(sys.executable).parent / "memebot"
BLOCK_S = 0.4


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--copies", type=int, default=20)
    a = ap.parse_args()
    chain = LocalChain()
    jup = LocalJupiter(chain)
    mints = [chain.create_mint(6) for _ in range(a.copies)]
    for m in mints:
        jup.create_pool(m, 10**15, 1_000 * 10**9)
    me, leader = Keypair(), Keypair()
    chain.airdrop(me.pubkey(), 100 * 10**9)
    chain.airdrop(leader.pubkey(), 100 * 10**9)
    landed: dict[str, float] = {}  # our copies: mint -> wall time landed
    ours = threading.Event()

    def on_landed(l):
        tx = VersionedTransaction.from_bytes(base64.b64decode(l.tx_b64))
        if tx.message.account_keys[0] == me.pubkey() and l.err is None:
            for b in l.meta["postTokenBalances"]:
                if b.get("owner") == str(me.pubkey()) and b["mint"] != SOL_MINT:
                    landed.setdefault(b["mint"], time.time())
            ours.set()

    chain.listeners.append(on_landed)

    def buy(m):
        q = jup.quote({"inputMint": SOL_MINT, "outputMint": str(m), "amount": str(10**9), "slippageBps": "100"})
        raw = jup.swap_tx({"quoteResponse": q, "userPublicKey": str(leader.pubkey())})["swapTransaction"]
        tx = VersionedTransaction.from_bytes(base64.b64decode(raw))
        tx = VersionedTransaction.populate(tx.message, [leader.sign_message(to_bytes_versioned(tx.message)),
                                                        *tx.signatures[1:]])  # fmt: skip
        assert chain.process(tx).err is None
        return time.time()

    with tempfile.TemporaryDirectory() as d, LocalChainServer(chain, jup, block_time_s=BLOCK_S) as srv:
        d = Path(d)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEMEBOT_")}
        env |= {"MEMEBOT_STORE_PATH": str(d / "m.duckdb"), "MEMEBOT_STORE_LEDGER_DIR": str(d / "runs"),
                "MEMEBOT_LIVE_KILL_FILE": str(d / "KILL"), "MEMEBOT_SOLANA_PRIVATE_KEY": str(me),
                "MEMEBOT_LIVE_LIVE_TRADING_ENABLED": "true", "MEMEBOT_LIVE_PAPER_TRADING_MODE": "false",
                "MEMEBOT_RISK_SAFETY_ALLOW_MINT_AUTHORITY": "true", "MEMEBOT_RISK_SAFETY_MIN_POOL_AGE_S": "0",
                "MEMEBOT_RISK_SAFETY_MAX_TOP10_HOLDER_PCT": "100",
                "MEMEBOT_MONITORING_LOGGING_LEVEL": "DEBUG"}  # fmt: skip
        env |= {f"MEMEBOT_{k.replace('.', '_').upper()}": v for k, v in srv.endpoints().items()}
        live = ["--yes-i-mean-live", "--allow-cosigner", jup.cosigners[0]]
        subprocess.run([EXE, "live", "reconcile", "--acknowledge", *live], env=env, check=True, capture_output=True)
        log = open(d / "node.log", "w")
        cmd = [EXE, "wallets", "watch", "--wallet", str(leader.pubkey()), "--size", "0.01", "--seconds", "600", *live]
        node = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log)
        try:
            while not any(w[2] == "logs" for w in list(srv._watch.values())):
                assert node.poll() is None, (d / "node.log").read_text()[-2000:]
                time.sleep(0.05)
            t_leader = {}
            for m in mints:
                ours.clear()
                t_leader[str(m)] = buy(m)
                if not ours.wait(60):
                    raise SystemExit(f"no copy of {m}: {(d / 'node.log').read_text()[-3000:]}")
        finally:
            node.send_signal(2)
            node.wait(120)
            log.close()
        sub = {}  # mint -> wall time the node submitted its order
        for line in (d / "node.log").read_text().splitlines():
            if '"order_submitted"' in line:
                r = json.loads(line)
                t = time.mktime(time.strptime(r["timestamp"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
                sub[r["symbol"]] = t + float("0" + re.search(r"(\.\d+)Z$", r["timestamp"]).group(1))
    ms = lambda xs: np.array(xs) * 1e3  # noqa: E731
    total = ms([landed[k] - t_leader[k] for k in t_leader])
    hear = ms([sub[k] - t_leader[k] for k in t_leader])
    send = ms([landed[k] - sub[k] for k in t_leader])
    print(f"live copy latency on the loopback chain, {len(total)} copies (blocks every {BLOCK_S} s)")
    print(f"{'':<44}{'p50 ms':>10}{'p90 ms':>10}{'max ms':>10}")
    for name, x in (("leader landed -> copy submitted (hearing it)", hear), ("copy submitted -> copy landed (sending)",
                    send), ("leader landed -> copy landed (total)", total)):  # fmt: skip
        print(f"{name:<44}{np.percentile(x, 50):>10.0f}{np.percentile(x, 90):>10.0f}{x.max():>10.0f}")
    print(f"total in slots of {BLOCK_S * 1e3:.0f} ms: p50 {np.percentile(total, 50) / BLOCK_S / 1e3:.1f}")


if __name__ == "__main__":
    main()
