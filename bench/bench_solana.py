"""memebot's own overhead on the live Solana path: from Jupiter quote received to signed transaction sent.

Runs real orders through `SolanaBroker` against memebot's loopback test chain (LiteSVM + stand-in Jupiter) with a
DuckDB ledger on disk, and reports the broker's own time per order with every network wait (Jupiter /swap, balance,
simulateTransaction, sendTransaction) subtracted, once with the default write-ahead (the ledger's journal line in the
OS before the send) and once with `[solana] write_ahead_fsync = true` (synced to disk before the send). Beside it: the
pieces (check+sign; the write-ahead as a journal line, a synced journal line and a DuckDB commit), the floor a bare
solders deserialize+sign costs, and this disk's own fsync.

    .venv/bin/python bench/bench_solana.py [--orders 300]
"""

import argparse, asyncio, base64, os, tempfile, time
from pathlib import Path
import numpy as np
from solders.keypair import Keypair
from solders.message import to_bytes_versioned
from solders.transaction import VersionedTransaction
from memebot.config import load_settings
from memebot.core import SOL_MINT, Order, OrderStatus, Side
from memebot.data.store import Store
from memebot.exec.ledger import Ledger, TxIntent
from memebot.obs import configure_logging
from memebot.exec.solana import SolanaBroker, WalletKey, swap_request
from memebot.testing import LocalChain, LocalJupiter, LocalChainServer


def pct(xs):
    a = np.asarray(xs) * 1000
    return f"p50 {np.percentile(a, 50):.3f} ms | p99 {np.percentile(a, 99):.3f} ms | max {a.max():.3f} ms (n={len(a)})"


async def run_orders(n: int, fsync: bool) -> tuple[float, list, list, "SolanaBroker"]:
    "n alternating buys and sells on a fresh loopback chain; the broker's per-attempt overhead and write-ahead times."
    chain = LocalChain()
    jup = LocalJupiter(chain)
    mint = chain.create_mint(6)
    jup.create_pool(mint, 10**15, 1000 * 10**9)
    me = Keypair()
    chain.airdrop(me.pubkey(), 100 * 10**9)
    tmp = Path(tempfile.mkdtemp(prefix="memebot-bench-"))
    with LocalChainServer(chain, jup) as srv:
        s = load_settings(env={}, overrides={**srv.endpoints(), "solana.write_ahead_fsync": str(fsync).lower()})
        st = Store(tmp / "ledger.duckdb")
        b = SolanaBroker(
            Ledger(st, wallet=str(me.pubkey())),
            WalletKey(me, "bench"),
            s,
            allowed_cosigners=jup.cosigners,
            resend_interval_s=0.02,
        )
        b.acknowledge(await b.start())
        t0 = time.perf_counter()
        for i in range(n):
            o = (
                await b.buy(str(mint), 10**7, slippage_bps=100)
                if i % 2 == 0
                else await b.sell(str(mint), 10**9, slippage_bps=100)
            )
            assert o.status.value == "filled", o.reason
        wall = time.perf_counter() - t0
        q = jup.quote({"inputMint": SOL_MINT, "outputMint": str(mint), "amount": "10000000", "slippageBps": "100"})
        sw = jup.swap_tx(swap_request(q, str(me.pubkey()), 1000))
        await b.aclose()
        st.close()
    return wall, b.overhead_s[5:], b.wal_s[5:], (b, sw, me, tmp)  # skip warm-up


def pieces(b, sw, me, tmp, k: int = 2000) -> dict:
    "Check+sign, the write-ahead per durability mode, the solders floor and the disk's fsync; no network."
    out = {"prep": [], "floor": [], "duckdb commit": [], "journal": [], "journal + fsync": [], "fsync": []}
    st = Store(tmp / "pieces.duckdb")
    leds = {
        "duckdb commit": Ledger(st, run_id="c", wallet="W"),
        "journal": Ledger(st, run_id="j", wallet="W"),
        "journal + fsync": Ledger(st, run_id="f", wallet="W"),
    }
    leds["journal"].open_journal()
    leds["journal + fsync"].open_journal(fsync=True)
    fd = open(tmp / "fsync-probe", "ab")
    for i in range(k):
        t = time.perf_counter()
        tx, b64, sig = b.prepare(sw, 10**6)
        out["prep"].append(time.perf_counter() - t)
        t = time.perf_counter()
        raw = VersionedTransaction.from_bytes(base64.b64decode(sw["swapTransaction"]))
        me.sign_message(to_bytes_versioned(raw.message))
        out["floor"].append(time.perf_counter() - t)
        for name, led in leds.items():
            if name != "journal" and i >= 300:
                continue  # the synced modes: 300 samples are plenty
            o = Order(SOL_MINT, Side.BUY, 1.0, price=0.01, client_id=f"{name}-{i}", ts=i + 1).transition(
                OrderStatus.SUBMITTED
            )
            t = time.perf_counter()
            led.record_submission(o, TxIntent(f"{sig}-{name}-{i}", o.client_id, 1, b64), {"amount": "1"})
            out[name].append(time.perf_counter() - t)
            if i % 50 == 49:
                led.flush()  # the broker commits right after each send
        if i < 300:
            t = time.perf_counter()
            fd.write(b"x" * 1300)
            fd.flush()
            os.fsync(fd.fileno())
            out["fsync"].append(time.perf_counter() - t)
    for led in leds.values():
        led.close_journal()
    st.close()
    return out


async def main(n: int):
    configure_logging("WARNING", "json")
    runs = {}
    for fsync in (False, True):
        runs[fsync] = await run_orders(n, fsync)
    wall, overhead, wal, ctx = runs[False]
    print(
        f"orders: {n} filled in {wall:.1f} s ({n / wall:.0f} orders/s end to end on loopback, network and chain"
        " included)"
    )
    for fsync, label in (
        (False, "default: journal in the OS before send"),
        (True, "write_ahead_fsync=true: journal fsync'd before send"),
    ):
        _, ov, wl, _ = runs[fsync]
        print(f"memebot overhead, quote received -> signed tx sent (network waits excluded), {label}:")
        print(f"    {pct(ov)}")
        print(f"  of which the write-ahead:  {pct(wl)}")
        print(f"  target p99 < 5 ms: {'met' if np.percentile(np.asarray(ov) * 1000, 99) < 5 else 'NOT met'}")
    pc = pieces(*ctx)
    print("pieces (no network):")
    print(f"  check + sign (prepare):                          {pct(pc['prep'])}")
    print(f"  peer floor: bare solders deserialize + sign:     {pct(pc['floor'])}")
    for name in ("journal", "journal + fsync", "duckdb commit"):
        print(f"  write-ahead of order + signed tx, {name + ':':17s}{pct(pc[name])}")
    print(f"  disk floor: one 1.3 kB write + fsync:            {pct(pc['fsync'])}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=300)
    asyncio.run(main(ap.parse_args().orders))
