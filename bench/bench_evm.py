"""EVM execution figures against a real Hardhat node with Uniswap V2 (memebot.testing.evm).

1. memebot's own overhead from the router's quote received to the signed swap sent (every network wait subtracted:
   simulation, gas estimate, fee history, nonce, the send itself), p50/p99 over alternating buys and sells, with a
   DuckDB ledger on disk and the write-ahead journal. Beside it, web3.py's bare build-and-sign of the same swap
   (`contract.functions.swapExact...().build_transaction(...)` with every field given, then `sign_transaction`),
   which is the floor any web3.py bot pays.
2. Honeypot/tax check latency per token (`EvmTokenSafety.check`, uncached: code, simulated round trip, owner, LP
   holders), against the local node, for each test token.

    .venv/bin/python bench/bench_evm.py [--orders 200]
"""

import argparse, asyncio, tempfile, time
from pathlib import Path
import numpy as np
from eth_account import Account
from memebot.config import load_settings
from memebot.core import Chain, OrderStatus
from memebot.data.evm import EvmRpc, evm_chain
from memebot.data.store import Store
from memebot.exec.ledger import Ledger
from memebot.exec.evm import EvmBroker, EvmKey, swap_data
from memebot.core import Side
from memebot.obs import configure_logging
from memebot.risk.evm_safety import EvmTokenSafety
from memebot.testing.evm import HardhatNode, UniswapTestbed, uniswap


def pct(xs, unit=1000):
    a = np.asarray(xs) * unit
    return f"p50 {np.percentile(a, 50):7.3f} ms | p99 {np.percentile(a, 99):7.3f} ms | n={len(a)}"


async def main(n: int):
    configure_logging("ERROR")
    with HardhatNode(chain_id=56) as node, tempfile.TemporaryDirectory() as d:
        node.rpc("evm_setIntervalMining", 50)
        bed = UniswapTestbed(node).deploy()
        env = {**bed.settings_env("bsc"), "MEMEBOT_EVM_BSC_CONFIRMATIONS": "0", "MEMEBOT_EVM_BSC_MIN_TIP_GWEI": "1"}
        s = load_settings(env=env)
        acct = Account.create()
        node.rpc("hardhat_setBalance", acct.address, hex(10_000 * 10**18))
        cfg = evm_chain("bsc", s)
        rpc = EvmRpc(cfg)
        ledger = Ledger(Store(str(Path(d) / "ledger.duckdb")), "bench", Chain.BSC, acct.address.lower())
        b = EvmBroker(ledger, EvmKey(acct, "bench"), cfg, s, rpc=rpc, poll_s=0.02)
        tok = bed.tokens["MEME"]
        t0 = time.perf_counter()
        for i in range(n):
            if i % 2 == 0:
                o = await b.buy(tok, 10**17)
            else:
                o = await b.sell(tok, ledger.balances()[tok] // 2)
            assert o.status is OrderStatus.FILLED, o.reason
        wall = time.perf_counter() - t0
        own = b.overhead_s[4:]  # skip warm-up

        # peer: web3.py's bare build-and-sign of the same swap, every field given (no network)
        w3 = bed.w3
        router = w3.eth.contract(address=w3.to_checksum_address(cfg.router), abi=uniswap("UniswapV2Router02")["abi"])
        path = [w3.to_checksum_address(cfg.wrapped), w3.to_checksum_address(tok)]
        peer, bare = [], []
        for i in range(max(n, 200)):
            fields = {
                "value": 10**17,
                "gas": 200_000,
                "nonce": i,
                "maxFeePerGas": 3 * 10**9,
                "maxPriorityFeePerGas": 10**9,
                "chainId": 56,
            }  # the same fields for both, given in full
            a = time.perf_counter()
            tx = router.functions.swapExactETHForTokensSupportingFeeOnTransferTokens(1, path, acct.address, 2**40)
            acct.sign_transaction(tx.build_transaction({"from": acct.address, **fields}))
            peer.append(time.perf_counter() - a)
            a = time.perf_counter()  # the same with memebot's own encoding (eth_abi) and signing
            data = swap_data(Side.BUY, 10**17, 1, [cfg.wrapped, tok], acct.address.lower(), 2**40)
            acct.sign_transaction({"to": router.address, **fields, "data": data, "type": 2})
            bare.append(time.perf_counter() - a)

        # token safety, uncached, per token
        safety = EvmTokenSafety(rpc, s.risk)
        checks = {}
        for sym in ("MEME", "TAX", "RUG", "HONEY"):
            xs = []
            for _ in range(30):
                a = time.perf_counter()
                v = await safety.check(bed.tokens[sym], refresh=True)
                xs.append(time.perf_counter() - a)
            checks[sym] = (xs, v.ok)
        await b.aclose()

    print(
        f"EVM execution on Hardhat Network (chain id 56) with Uniswap V2; {n} swaps in {wall:.1f} s "
        f"({wall / n * 1000:.0f} ms each, mostly waiting for blocks)"
    )
    print(f"memebot overhead, quote received -> signed swap sent (network excluded): {pct(own)}")
    print(f"peer web3.py build_transaction + sign_transaction (no network):        {pct(peer)}")
    print(f"memebot's encode (eth_abi) + sign alone (no network):                   {pct(bare)}")
    for sym, (xs, ok) in checks.items():
        print(f"token safety check {sym:5s} ({'passes' if ok else 'refused'}):{'':14s}{pct(xs)}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=200)
    asyncio.run(main(ap.parse_args().orders))
