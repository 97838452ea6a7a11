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
sys.path.insert(0, str(Path(__file__).parent))
from soak_live import live_env  # noqa: E402

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
    landed: dict[tuple, float] = {}  # our copies: (mint, side) -> wall time landed
    ours = threading.Event()

    def on_landed(l):
        tx = VersionedTransaction.from_bytes(base64.b64decode(l.tx_b64))
        if tx.message.account_keys[0] != me.pubkey() or l.err is not None:
            return
        amt = {}
        for sign, bals in ((-1, l.meta["preTokenBalances"]), (1, l.meta["postTokenBalances"])):
            for b in bals:
                if b.get("owner") == str(me.pubkey()) and b["mint"] != SOL_MINT:
                    amt[b["mint"]] = amt.get(b["mint"], 0) + sign * int(b["uiTokenAmount"]["amount"])
        for m, d in amt.items():
            landed.setdefault((m, "buy" if d > 0 else "sell"), time.time())
        ours.set()

    chain.listeners.append(on_landed)

    def swap(a, b, amount):
        q = jup.quote({"inputMint": a, "outputMint": b, "amount": str(amount), "slippageBps": "100"})
        raw = jup.swap_tx({"quoteResponse": q, "userPublicKey": str(leader.pubkey())})["swapTransaction"]
        tx = VersionedTransaction.from_bytes(base64.b64decode(raw))
        tx = VersionedTransaction.populate(tx.message, [leader.sign_message(to_bytes_versioned(tx.message)),
                                                        *tx.signatures[1:]])  # fmt: skip
        assert chain.process(tx).err is None
        return time.time()

    with tempfile.TemporaryDirectory() as d, LocalChainServer(chain, jup, block_time_s=BLOCK_S) as srv:
        d = Path(d)
        env = live_env(d, me, srv, MEMEBOT_RISK_MAX_ORDERS_PER_MINUTE="1000", MEMEBOT_DATA_RATE_JUPITER_PER_MIN="600",
                       MEMEBOT_MONITORING_LOGGING_LEVEL="DEBUG")  # fmt: skip
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
            for m in mints:  # the leader buys, we copy; it sells, we sell: one token at a time
                for side in ("buy", "sell"):
                    held = chain.token_balance(chain.ata(leader.pubkey(), m)) or 0
                    a_, b_, amt = (SOL_MINT, str(m), 10**9) if side == "buy" else (str(m), SOL_MINT, held)
                    t_leader[(str(m), side)] = swap(a_, b_, amt)
                    end = time.time() + 60
                    while (str(m), side) not in landed:
                        ours.wait(1)
                        ours.clear()
                        if time.time() > end:
                            raise SystemExit(f"no {side} copy of {m}: {(d / 'node.log').read_text()[-3000:]}")
        finally:
            node.send_signal(2)
            node.wait(120)
            log.close()
        sub = {}  # (mint, side) -> wall time the node submitted its market order
        for line in (d / "node.log").read_text().splitlines():
            if '"order_submitted"' in line and '"type": "market"' in line:
                r = json.loads(line)
                t = time.mktime(time.strptime(r["timestamp"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
                frac = float("0" + re.search(r"(\.\d+)Z$", r["timestamp"]).group(1))
                sub.setdefault((r["symbol"], r["side"]), t + frac)
    ms = lambda xs: np.array(xs) * 1e3  # noqa: E731
    print(f"live copy latency on the loopback chain, {a.copies} buys and {a.copies} sells (blocks every {BLOCK_S} s)")
    print(f"{'':<50}{'p50 ms':>9}{'p90 ms':>9}{'max ms':>9}")
    for side in ("buy", "sell"):
        ks = [k for k in t_leader if k[1] == side]
        total = ms([landed[k] - t_leader[k] for k in ks])
        hear = ms([sub[k] - t_leader[k] for k in ks])
        send = ms([landed[k] - sub[k] for k in ks])
        for name, x in ((f"{side}: leader landed -> copy submitted (hearing)", hear),
                        (f"{side}: copy submitted -> copy landed (sending)", send),
                        (f"{side}: leader landed -> copy landed (total)", total)):  # fmt: skip
            print(f"{name:<50}{np.percentile(x, 50):>9.0f}{np.percentile(x, 90):>9.0f}{x.max():>9.0f}")


if __name__ == "__main__":
    main()
