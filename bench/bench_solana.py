"""memebot's own overhead on the live Solana path: from Jupiter quote received to signed transaction sent.

Runs real orders through `SolanaBroker` against memebot's loopback test chain (LiteSVM + stand-in Jupiter) with a
DuckDB ledger on disk, and reports the broker's own time per order with every network wait (Jupiter /swap, balance,
simulateTransaction, sendTransaction) subtracted. Beside it: the pieces (check+sign, ledger write-ahead) and the
floor a bare solders deserialize+sign costs.

    .venv/bin/python bench/bench_solana.py [--orders 300]
"""
import argparse, asyncio, base64, os, tempfile, time
from pathlib import Path
import numpy as np
from solders.keypair import Keypair
from solders.message import to_bytes_versioned
from solders.transaction import VersionedTransaction
from memebot.config import load_settings
from memebot.core import SOL_MINT
from memebot.data.store import Store
from memebot.ledger import Ledger, TxIntent
from memebot.obs import configure_logging
from memebot.solana import SolanaBroker, WalletKey, swap_request
from memebot.testchain import LocalChain, LocalJupiter, LocalChainServer


def pct(xs):
    a = np.asarray(xs) * 1000
    return f"p50 {np.percentile(a, 50):.3f} ms | p99 {np.percentile(a, 99):.3f} ms | max {a.max():.3f} ms (n={len(a)})"


async def main(n:int):
    configure_logging("WARNING", "json")
    chain = LocalChain(); jup = LocalJupiter(chain)
    mint = chain.create_mint(6); jup.create_pool(mint, 10**15, 1000 * 10**9)
    me = Keypair(); chain.airdrop(me.pubkey(), 100 * 10**9)
    tmp = Path(tempfile.mkdtemp(prefix="memebot-bench-"))
    with LocalChainServer(chain, jup) as srv:
        s = load_settings(env={}, overrides=srv.endpoints())
        st = Store(tmp / "ledger.duckdb")
        w = WalletKey(me, "bench")
        b = SolanaBroker(Ledger(st, wallet=str(me.pubkey())), w, s, allowed_cosigners=jup.cosigners, resend_interval_s=0.02)
        b.acknowledge(await b.start())
        t0 = time.perf_counter()
        for i in range(n):
            o = await b.buy(str(mint), 10**7, slippage_bps=100) if i % 2 == 0 else await b.sell(str(mint), 10**9, slippage_bps=100)
            assert o.status.value == "filled", o.reason
        wall = time.perf_counter() - t0
        overhead = b.overhead_s[5:]                                    # skip warm-up
        cpu = [o - w for o, w in zip(b.overhead_s[5:], b.wal_s[5:])]
        # the pieces, on a fixed swap response (no network at all)
        q = jup.quote({"inputMint": SOL_MINT, "outputMint": str(mint), "amount": "10000000", "slippageBps": "100"})
        sw = jup.swap_tx(swap_request(q, str(me.pubkey()), 1000))
        prep, wal, floor, sync = [], [], [], []
        fd = open(tmp / "fsync-probe", "ab")
        for i in range(2000):
            t = time.perf_counter(); tx, b64, sig = b.prepare(sw, 10**6); prep.append(time.perf_counter() - t)
            t = time.perf_counter(); b.ledger.record_intent(TxIntent(f"{sig}-{i}", "bench", 1, b64, "signed")); wal.append(time.perf_counter() - t)
            t = time.perf_counter()
            raw = VersionedTransaction.from_bytes(base64.b64decode(sw["swapTransaction"]))
            me.sign_message(to_bytes_versioned(raw.message)); floor.append(time.perf_counter() - t)
            if i < 300:
                t = time.perf_counter(); fd.write(b"x" * 1300); fd.flush(); os.fsync(fd.fileno()); sync.append(time.perf_counter() - t)
        await b.aclose(); st.close()
    print(f"orders: {n} filled in {wall:.1f} s ({n / wall:.0f} orders/s end to end on loopback, network and chain included)")
    print(f"memebot overhead, quote received -> signed tx sent (network waits excluded): {pct(overhead)}")
    print(f"  of which memebot's CPU (without the durable commit):  {pct(cpu)}")
    print(f"  check + sign (prepare):                                {pct(prep)}")
    print(f"  ledger write-ahead of the signed tx (DuckDB on disk):  {pct(wal)}")
    print(f"peer floor: bare solders deserialize + sign:             {pct(floor)}")
    print(f"disk floor: one 1.3 kB write + fsync on this disk:       {pct(sync)}")
    for name, xs in (("total", overhead), ("CPU", cpu)):
        print(f"target p99 < 5 ms, {name}: {'met' if np.percentile(np.asarray(xs) * 1000, 99) < 5 else 'NOT met'}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(); ap.add_argument("--orders", type=int, default=300)
    asyncio.run(main(ap.parse_args().orders))
