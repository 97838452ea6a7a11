"""Live detection across two real chains: two Hardhat nodes (as Ethereum and as BSC), each with Uniswap V2 and a pool
of the same token (different contracts, one asset in the registry). The detector reads each pool through the chain's
RPC and follows it through the chain's websocket feed; a trade on one chain opens a gap that it finds, with live gas
and coin prices."""

import asyncio, json
import pytest
from memebot.config import load_settings
from memebot.core import Chain
from memebot.data.evm import EvmRpc, evm_chain
from memebot.data.feeds import EvmFeed
from memebot.live.crosschain import ArbCosts, ArbDetector, scan_feeds, watch_evm
from memebot.testing.evm import HardhatNode, UniswapTestbed


@pytest.fixture(scope="module")
def chains():
    nodes = [HardhatNode(chain_id=1).start(), HardhatNode(chain_id=56).start()]
    try:
        beds = []
        for n in nodes:
            n.rpc("evm_setIntervalMining", 100)
            beds.append(UniswapTestbed(n).deploy())  # MEME: 100 coins against 1,000,000 tokens on each
        yield nodes, beds
    finally:
        for n in nodes:
            n.stop()


async def test_a_trade_on_one_chain_opens_a_gap_the_detector_finds(chains, memebot):
    nodes, (eth_bed, bsc_bed) = chains
    env = {**eth_bed.settings_env("ethereum"), **bsc_bed.settings_env("bsc")}
    s = load_settings(env=env)
    rpcs = {c: EvmRpc(evm_chain(c, s)) for c in ("ethereum", "bsc")}
    det = ArbDetector(ArbCosts(min_profit_usd=1.0), modes=("inventory", "bridge"))
    pairs = {
        "ethereum": await watch_evm(det, rpcs["ethereum"], "MEME", eth_bed.tokens["MEME"]),
        "bsc": await watch_evm(det, rpcs["bsc"], "MEME", bsc_bed.tokens["MEME"]),
    }
    assert det.usd["ETH"] == pytest.approx(det.usd["BNB"], rel=1e-9) == pytest.approx(600.0, rel=0.02)  # router quotes
    assert 0 < det.costs.gas_usd[Chain.ETHEREUM] < 5 and not any(o.profitable for o in det.evaluated)  # same prices
    feeds = [EvmFeed([pairs[c]], url=getattr(s.endpoints, f"{c}_ws")) for c in ("ethereum", "bsc")]
    found = asyncio.Event()
    det.on_opportunity = lambda o: found.set()
    scan = asyncio.create_task(scan_feeds(det, feeds, stop=lambda d: found.is_set()))
    await asyncio.wait_for(asyncio.gather(*(f.subscribed.wait() for f in feeds)), 30)
    await asyncio.to_thread(bsc_bed.trade_external, "MEME", 5.0)  # someone buys 5 BNB of MEME on BSC: its price rises
    n = await asyncio.wait_for(scan, 30)
    taken = [o for o in det.evaluated if o.profitable]
    assert n >= 1 and taken and {(o.buy_chain, o.sell_chain) for o in taken} == {("ethereum", "bsc")}
    o = next(o for o in taken if o.mode == "inventory")
    assert o.sell_price_usd > o.buy_price_usd * 1.05  # 5 BNB into a 100 BNB pool moved it ~10%
    bsc = det.pools[(Chain.BSC, pairs["bsc"].address)]
    assert bsc.quote_reserve == pytest.approx(100 + 5 * 0.997, rel=1e-3)  # the Sync log's reserves reached it
    for r in rpcs.values():
        await r.aclose()
    # `memebot arb scan --feed live`: the gap the trade left is found from the pools' state when the scan starts
    assets = f"MEME@ethereum={eth_bed.tokens['MEME']}:18,MEME@bsc={bsc_bed.tokens['MEME']}:18"
    r = await asyncio.to_thread(
        memebot, "--set", f"crosschain.assets={assets}", "arb", "scan", "--feed", "live", "--asset", "MEME",
        "--idle", "1", "--no-store", "--json", env=env, check=True,
    )  # fmt: skip
    doc = json.loads(r.stdout)
    assert doc["pools"] == 2 and doc["taken"] >= 1 and set(doc["gas_usd"]) == {"ethereum", "bsc"}
    assert all((b["buy_chain"], b["sell_chain"]) == ("ethereum", "bsc") for b in doc["best"])
    bad = memebot("arb", "scan", "--feed", "live", env=env)
    assert bad.returncode == 2 and "--asset" in bad.stderr
