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


def test_arb_live_trades_both_legs_on_two_chains(chains, memebot, tmp_path):
    "`memebot arb live`: off without its switches; with them, a gap on the chains is traded on both at once, each leg"
    " within the risk limits, booked in the run's ledger, and both ledgers match their chains afterwards."
    from eth_account import Account
    from memebot.testing.evm import contract

    nodes, (eth_bed, bsc_bed) = chains
    me = Account.create()
    for n in nodes:
        n.rpc("hardhat_setBalance", me.address, hex(20 * 10**18))
    meme_bsc = bsc_bed.tokens["MEME"]
    tok = bsc_bed.c(meme_bsc, contract("TestToken"))
    bsc_bed._send(tok.functions.transfer(me.address, 20_000 * 10**18), bsc_bed.deployer)  # inventory on the sell side
    key = tmp_path / "evm.key"
    key.write_text(me.key.hex())
    key.chmod(0o600)
    assets = f"MEME@ethereum={eth_bed.tokens['MEME']}:18,MEME@bsc={meme_bsc}:18"
    env = {**eth_bed.settings_env("ethereum"), **bsc_bed.settings_env("bsc"), "MEMEBOT_EVM_KEYSTORE_PATH": str(key),
           "MEMEBOT_EVM_ETHEREUM_CONFIRMATIONS": "1", "MEMEBOT_EVM_BSC_CONFIRMATIONS": "1",
           "MEMEBOT_LIVE_LIVE_TRADING_ENABLED": "true", "MEMEBOT_LIVE_PAPER_TRADING_MODE": "false",
           "MEMEBOT_CROSSCHAIN_ETHEREUM_ENABLED": "true", "MEMEBOT_CROSSCHAIN_BSC_ENABLED": "true",
           "MEMEBOT_CROSSCHAIN_ASSETS": assets, "MEMEBOT_STORE_LEDGER_DIR": str(tmp_path / "runs")}  # fmt: skip
    args = ["arb", "live", "--asset", "MEME", "--yes-i-mean-live", "--acknowledge", "--max-executions", "1",
            "--seconds", "60", "--json"]  # fmt: skip
    off = memebot(*args, env=env)
    assert off.returncode != 0 and "cross_chain_arbitrage_enabled" in off.stderr and "cross_chain_enabled" in off.stderr
    env |= {
        "MEMEBOT_CROSSCHAIN_CROSS_CHAIN_ENABLED": "true",
        "MEMEBOT_CROSSCHAIN_CROSS_CHAIN_ARBITRAGE_ENABLED": "true",
    }
    bsc_bed.trade_external("MEME", 5.0)  # MEME dearer on BSC: buy on Ethereum, sell on BSC
    r = memebot(*args, env=env, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert len(doc["executions"]) == 1, json.dumps(doc)[:3000]
    (ex,) = doc["executions"]
    assert (ex["buy_chain"], ex["sell_chain"], ex["status"]) == ("ethereum", "bsc", "done"), ex
    assert ex["bought"] == pytest.approx(ex["sold"], rel=0.01) and ex["expected_usd"] > 0
    assert doc["reconcile"] == {"ethereum": "ok", "bsc": "ok"} and doc["halted"] is None
    eth_usd = 600.0  # the testbed's coin price (router quote)
    assert ex["quote_atoms"] / 1e18 * eth_usd <= 250.0 * 1.001  # within [risk] max_order_usd
    again = memebot(*args, env=env, timeout=300)  # a restart resumes the run's ledger (nothing left open)
    assert again.returncode == 0 and json.loads(again.stdout)["recovered"] == []


@pytest.mark.parametrize("kind", ["raydium_amm_v4", "orca_whirlpool", "meteora_dlmm"])
def test_arb_live_between_solana_and_an_evm_chain(chains, memebot, tmp_path, kind):
    "`memebot arb live` with a Solana leg: the pool found through DexScreener and read from its accounts (Raydium AMM"
    " v4, Orca Whirlpool, or a Meteora DLMM pair and its bin array), followed by account subscriptions, bought through"
    " Jupiter on LiteSVM, sold on BSC at once."
    from eth_account import Account
    from solders.keypair import Keypair
    from memebot.testing import LocalChain, LocalChainServer, LocalJupiter
    from memebot.testing.evm import contract

    nodes, (_, bed) = chains
    sol_chain = LocalChain()
    jup = LocalJupiter(sol_chain)
    mint = sol_chain.create_mint(6)
    jup.create_pool(mint, 10**12, 340 * 10**9, kind=kind)  # 1M MEME against 340 SOL: 0.051 USD at 150 USD/SOL
    kp = Keypair()
    sol_chain.airdrop(kp.pubkey(), 1_000 * 10**9)
    sym = f"S{len(bed.tokens)}"
    meme = bed.add_token(sym, "TestToken", (), True)  # a fresh BSC pool: 100 BNB against 1M MEME, 0.06 USD
    me = Account.create()
    nodes[1].rpc("hardhat_setBalance", me.address, hex(20 * 10**18))
    bed._send(bed.c(meme, contract("TestToken")).functions.transfer(me.address, 20_000 * 10**18), bed.deployer)
    key = tmp_path / "evm.key"
    key.write_text(me.key.hex())
    key.chmod(0o600)
    with LocalChainServer(sol_chain, jup, block_time_s=0.4) as srv:
        env = {f"MEMEBOT_{k.upper().replace('.', '_')}": v for k, v in srv.endpoints().items()}
        env |= {**bed.settings_env("bsc"), "MEMEBOT_EVM_KEYSTORE_PATH": str(key), "MEMEBOT_SOLANA_PRIVATE_KEY": str(kp),
                "MEMEBOT_EVM_BSC_CONFIRMATIONS": "1", "MEMEBOT_LIVE_LIVE_TRADING_ENABLED": "true",
                "MEMEBOT_LIVE_PAPER_TRADING_MODE": "false", "MEMEBOT_CROSSCHAIN_BSC_ENABLED": "true",
                "MEMEBOT_CROSSCHAIN_CROSS_CHAIN_ENABLED": "true",
                "MEMEBOT_CROSSCHAIN_CROSS_CHAIN_ARBITRAGE_ENABLED": "true",
                "MEMEBOT_CROSSCHAIN_ASSETS": f"MEME@solana={mint}:6,MEME@bsc={meme}:18",
                "MEMEBOT_STORE_LEDGER_DIR": str(tmp_path / "runs")}  # fmt: skip
        scan = memebot("arb", "scan", "--feed", "live", "--asset", "MEME", "--idle", "1", "--no-store", "--json",
                       env=env, timeout=120)  # fmt: skip
        assert scan.returncode == 0, scan.stdout + scan.stderr
        found = json.loads(scan.stdout)
        assert found["pools"] == 2 and found["taken"] >= 1 and set(found["gas_usd"]) == {"solana", "bsc"}
        assert {(b["buy_chain"], b["sell_chain"]) for b in found["best"]} == {("solana", "bsc")}
        args = ["arb", "live", "--asset", "MEME", "--yes-i-mean-live", "--acknowledge", "--max-executions", "1",
                "--seconds", "60", "--allow-cosigner", jup.cosigners[0], "--json"]  # fmt: skip
        r = memebot(*args, env=env, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        doc = json.loads(r.stdout)
        assert len(doc["executions"]) == 1, json.dumps(doc)[:3000]
        (ex,) = doc["executions"]
        assert (ex["buy_chain"], ex["sell_chain"], ex["status"]) == ("solana", "bsc", "done"), ex
        assert ex["bought"] == pytest.approx(ex["sold"], rel=0.01) and ex["expected_usd"] > 0
        assert ex["quote_atoms"] / 1e9 * 150.0 <= 250.0 * 1.001  # the SOL leg within [risk] max_order_usd
        assert doc["reconcile"] == {"solana": "ok", "bsc": "ok"} and doc["halted"] is None
        assert srv.calls.get("dexscreener.token_pairs", 0) >= 1 and srv.calls.get("jupiter.swap", 0) >= 1
        bal = sol_chain.token_balance(sol_chain.ata(kp.pubkey(), mint))
        assert bal == pytest.approx(ex["bought"] * 1e6, rel=1e-6)  # the tokens bought on Solana are in the wallet


def test_arb_rebalance_sends_a_bridge_transfer_and_books_both_chains(chains, memebot, tmp_path):
    "`memebot arb rebalance --execute`: off without its switch; a quote calling a contract not allowed is refused with"
    " nothing sent; a transfer is deposited on Ethereum through LI.FI's API (a loopback bridge), left in flight, and"
    " booked on BSC when a restart finds it arrived, with both ledgers equal to their chains."
    from eth_account import Account
    from memebot.testing.evm import LocalLifi, contract

    nodes, (eth_bed, bsc_bed) = chains
    me = Account.create()
    for n in nodes:
        n.rpc("hardhat_setBalance", me.address, hex(20 * 10**18))
    meme_eth, meme_bsc = eth_bed.tokens["MEME"], bsc_bed.tokens["MEME"]
    tok_eth, tok_bsc = eth_bed.c(meme_eth, contract("TestToken")), bsc_bed.c(meme_bsc, contract("TestToken"))
    eth_bed._send(tok_eth.functions.transfer(me.address, 20_000 * 10**18), eth_bed.deployer)  # all on Ethereum
    key = tmp_path / "evm.key"
    key.write_text(me.key.hex())
    key.chmod(0o600)
    with LocalLifi({1: eth_bed, 56: bsc_bed}, pending_polls=3) as lifi:
        env = {**eth_bed.settings_env("ethereum"), **bsc_bed.settings_env("bsc"), "MEMEBOT_EVM_KEYSTORE_PATH": str(key),
               "MEMEBOT_EVM_ETHEREUM_CONFIRMATIONS": "1", "MEMEBOT_EVM_BSC_CONFIRMATIONS": "1",
               "MEMEBOT_LIVE_LIVE_TRADING_ENABLED": "true", "MEMEBOT_LIVE_PAPER_TRADING_MODE": "false",
               "MEMEBOT_CROSSCHAIN_ETHEREUM_ENABLED": "true", "MEMEBOT_CROSSCHAIN_BSC_ENABLED": "true",
               "MEMEBOT_CROSSCHAIN_CROSS_CHAIN_ENABLED": "true", "MEMEBOT_ENDPOINTS_LIFI": lifi.url,
               "MEMEBOT_DATA_RATE_LIFI_PER_MIN": "6000", "MEMEBOT_CROSSCHAIN_BRIDGE_CONTRACTS": "0x" + "1" * 40,
               "MEMEBOT_CROSSCHAIN_ASSETS": f"MEME@ethereum={meme_eth}:18,MEME@bsc={meme_bsc}:18",
               "MEMEBOT_STORE_LEDGER_DIR": str(tmp_path / "runs")}  # fmt: skip
        args = ["arb", "rebalance", "--target", "MEME@bsc=5000", "--price", "MEME=0.06", "--no-fetch", "--execute",
                "--yes-i-mean-live", "--json"]  # fmt: skip
        off = memebot(*args, env=env)
        assert off.returncode != 0 and "[crosschain] rebalance_enabled=true" in off.stderr, off.stderr
        env["MEMEBOT_CROSSCHAIN_REBALANCE_ENABLED"] = "true"
        r = memebot(*args, "--acknowledge", env=env, timeout=300)  # the wallet's Ethereum tokens adopted at start
        assert r.returncode == 0, r.stdout + r.stderr
        (t,) = json.loads(r.stdout)["transfers"]
        assert (t["status"], t["tx_hash"], t["amount_in"]) == ("refused", "", 5_000 * 10**18), t
        assert "bridge_contracts" in t["detail"] and lifi.calls.get("/v1/quote") == 1
        env["MEMEBOT_CROSSCHAIN_BRIDGE_CONTRACTS"] = f"{lifi.bridges[1]},{lifi.bridges[56]}"
        r = memebot(*args, "--wait", "0", env=env, timeout=300)  # sent, then left in flight
        assert r.returncode == 0, r.stdout + r.stderr
        doc = json.loads(r.stdout)
        (t,) = doc["transfers"]
        assert (t["status"], t["from_chain"], t["to_chain"], t["amount_out_min"]) == (
            "pending", "ethereum", "bsc", 4_995 * 10**18), t  # fmt: skip
        assert doc["reconcile"] == {"ethereum": "ok", "bsc": "ok"}  # the deposit booked; nothing arrived yet
        assert tok_eth.functions.balanceOf(me.address).call() == 15_000 * 10**18
        port = memebot("portfolio", "--price", "MEME=0.06", "--no-fetch", "--json", env=env)
        (moving,) = json.loads(port.stdout)["in_transit"]  # on neither ledger: counted on its way
        assert (moving["units"], moving["tx_hash"]) == (5_000.0, t["tx_hash"]), port.stdout
        held = memebot(*[a for a in args if a != "--json"], "--wait", "0", env=env, timeout=300)  # as a user reads it
        assert held.returncode == 0 and "MEME ethereum -> bsc: pending" in held.stdout, held.stdout + held.stderr
        assert "not sent, a transfer of MEME is still in flight" in held.stdout  # on its way: not sent again
        assert "ethereum: ledger matches the chain" in held.stdout and "bsc: ledger matches the chain" in held.stdout
        trader = ["arb", "live", "--asset", "MEME", "--yes-i-mean-live", "--max-executions", "1", "--seconds", "2",
                  "--json"]  # fmt: skip
        arb_env = env | {
            "MEMEBOT_CROSSCHAIN_CROSS_CHAIN_ARBITRAGE_ENABLED": "true",
            "MEMEBOT_CROSSCHAIN_ARB_MIN_PROFIT_USD": "1000000",
        }  # it watches, never trades here
        live = memebot(*trader, env=arb_env, timeout=300)  # the arbitrage trader on the same run: it arrived meanwhile
        assert live.returncode == 0, live.stdout + live.stderr
        doc = json.loads(live.stdout)
        (rec,) = doc["bridge_transfers"]  # booked before its start reconciled BSC: no difference, nothing to accept
        assert (rec["id"], rec["status"], rec["received"]) == (t["id"], "done", 4_995 * 10**18), rec
        assert doc["reconcile"] == {"ethereum": "ok", "bsc": "ok"} and doc["executions"] == []
        again = memebot(*args, "--wait", "30", env=env, timeout=300)  # nothing left in flight, BSC near its target
        assert again.returncode == 0, again.stdout + again.stderr
        doc = json.loads(again.stdout)
        assert doc["recovered"] == [] and doc["transfers"] == [] and doc["reconcile"] == {"ethereum": "ok", "bsc": "ok"}
        assert tok_bsc.functions.balanceOf(me.address).call() == 4_995 * 10**18
        assert lifi.calls["/v1/status"] == 4  # PENDING three times, then DONE: the arrival booked once
        (tmp_path / "KILL").write_text("operator stop")  # the kill switch stops transfers not sent yet
        more = [a if a != "MEME@bsc=5000" else "MEME@bsc=10000" for a in args]
        killed = memebot(*more, env=env | {"MEMEBOT_LIVE_KILL_FILE": str(tmp_path / "KILL")}, timeout=300)
        doc = json.loads(killed.stdout)
        assert killed.returncode == 0 and doc["transfers"] == [] and doc["halted"] == "operator stop", killed.stdout
        assert len(doc["plan"]) == 1 and lifi.calls["/v1/quote"] == 2  # planned, never quoted


def test_arb_route_prices_each_chain_and_buys_on_the_cheapest(chains, memebot, tmp_path):
    "`memebot arb route`: the all-in cost of a buy on each chain the asset trades on, cheapest first; with --buy and"
    " the live switches it is bought on the cheapest chain through the live commands' path, and that ledger matches."
    from eth_account import Account

    nodes, (eth_bed, bsc_bed) = chains
    me = Account.create()
    for n in nodes:
        n.rpc("hardhat_setBalance", me.address, hex(20 * 10**18))
    key = tmp_path / "evm.key"
    key.write_text(me.key.hex())
    key.chmod(0o600)
    assets = f"MEME@ethereum={eth_bed.tokens['MEME']}:18,MEME@bsc={bsc_bed.tokens['MEME']}:18"
    env = {**eth_bed.settings_env("ethereum"), **bsc_bed.settings_env("bsc"), "MEMEBOT_EVM_KEYSTORE_PATH": str(key),
           "MEMEBOT_EVM_ETHEREUM_CONFIRMATIONS": "1", "MEMEBOT_EVM_BSC_CONFIRMATIONS": "1",
           "MEMEBOT_CROSSCHAIN_ASSETS": assets, "MEMEBOT_STORE_LEDGER_DIR": str(tmp_path / "runs"),
           "MEMEBOT_LIVE_KILL_FILE": str(tmp_path / "KILL")}  # fmt: skip
    r = memebot("arb", "route", "--asset", "meme", "--usd", "50", "--json", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    costs = [x["cost_usd"] for x in doc["routes"]]
    assert {x["chain"] for x in doc["routes"]} == {"ethereum", "bsc"} and costs == sorted(costs) and costs[0] > 0
    best = doc["best"]
    assert best == doc["routes"][0]["chain"] and doc["coin"] == {"ethereum": "ETH", "bsc": "BNB"}[best]
    off = memebot("arb", "route", "--asset", "MEME", "--usd", "50", "--buy", "--yes-i-mean-live", env=env)
    assert off.returncode == 2 and "live_trading_enabled" in off.stderr, off.stderr  # routed, never bought
    assert f"cheapest: {best}, spending" in off.stdout and "all-in cost" in off.stdout
    env |= {"MEMEBOT_LIVE_LIVE_TRADING_ENABLED": "true", "MEMEBOT_LIVE_PAPER_TRADING_MODE": "false",
            f"MEMEBOT_CROSSCHAIN_{best.upper()}_ENABLED": "true"}  # fmt: skip
    live = ["--chain", best, "--yes-i-mean-live", "--json"]
    assert memebot("live", "reconcile", "--acknowledge", *live, env=env).returncode == 0  # the opening balance
    b = memebot("arb", "route", "--asset", "MEME", "--usd", "50", "--buy", "--yes-i-mean-live", "--json", env=env)
    assert b.returncode == 0, b.stdout + b.stderr
    route, order = (json.loads(x) for x in b.stdout.strip().splitlines()[-2:])
    assert route["best"] == best and order["status"] == "filled" and order["filled_qty"] > 0, order
    coin = route["coin"].lower()
    assert order["filled_qty"] * order[f"avg_price_{coin}"] == pytest.approx(route["spend"], rel=1e-6)
    rec = memebot("live", "reconcile", *live, env=env)
    assert rec.returncode == 0 and json.loads(rec.stdout)["ok"], rec.stdout


def test_arb_rebalance_between_solana_and_an_evm_chain(chains, memebot, tmp_path):
    "`memebot arb rebalance --execute` with Solana on one side (LiteSVM): a transfer from Solana signed from LI.FI's"
    " Solana transaction (the loopback bridge's escrow, its program listed in bridge_programs), booked on arrival on"
    " BSC; then one back, deposited on BSC and minted to the Solana wallet; both ledgers equal to their chains."
    from eth_account import Account
    from solders.keypair import Keypair
    from memebot.testing import LocalChain, LocalChainServer, LocalJupiter
    from memebot.testing.evm import LocalLifi, contract

    nodes, (_, bed) = chains
    sol_chain = LocalChain()
    LocalJupiter(sol_chain)  # its server answers the RPC; no swap here
    mint = sol_chain.create_mint(6)
    kp = Keypair()
    sol_chain.airdrop(kp.pubkey(), 10 * 10**9)
    sol_chain.mint_to(mint, kp.pubkey(), 20_000 * 10**6)  # all on Solana
    sym = f"S{len(bed.tokens)}"
    meme = bed.add_token(sym, "TestToken", (), True)
    tok = bed.c(meme, contract("TestToken"))
    me = Account.create()
    nodes[1].rpc("hardhat_setBalance", me.address, hex(20 * 10**18))
    key = tmp_path / "evm.key"
    key.write_text(me.key.hex())
    key.chmod(0o600)
    with (
        LocalChainServer(sol_chain, LocalJupiter(sol_chain), block_time_s=0.2) as srv,
        LocalLifi({56: bed}, solana=sol_chain, pending_polls=1) as lifi,
    ):
        env = {f"MEMEBOT_{k.upper().replace('.', '_')}": v for k, v in srv.endpoints().items()}
        env |= {**bed.settings_env("bsc"), "MEMEBOT_EVM_KEYSTORE_PATH": str(key), "MEMEBOT_SOLANA_PRIVATE_KEY": str(kp),
                "MEMEBOT_EVM_BSC_CONFIRMATIONS": "1", "MEMEBOT_LIVE_LIVE_TRADING_ENABLED": "true",
                "MEMEBOT_LIVE_PAPER_TRADING_MODE": "false", "MEMEBOT_CROSSCHAIN_BSC_ENABLED": "true",
                "MEMEBOT_CROSSCHAIN_CROSS_CHAIN_ENABLED": "true", "MEMEBOT_CROSSCHAIN_REBALANCE_ENABLED": "true",
                "MEMEBOT_ENDPOINTS_LIFI": lifi.url, "MEMEBOT_DATA_RATE_LIFI_PER_MIN": "6000",
                "MEMEBOT_CROSSCHAIN_BRIDGE_CONTRACTS": lifi.bridges[56],
                "MEMEBOT_CROSSCHAIN_ASSETS": f"MEME@solana={mint}:6,MEME@bsc={meme}:18",
                "MEMEBOT_STORE_LEDGER_DIR": str(tmp_path / "runs")}  # fmt: skip
        args = ["arb", "rebalance", "--price", "MEME=0.06", "--no-fetch", "--execute", "--yes-i-mean-live", "--json"]
        r = memebot(*args, "--target", "MEME@bsc=5000", "--acknowledge", env=env, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        (t,) = json.loads(r.stdout)["transfers"]  # no Solana bridge program allowed yet: refused, nothing signed
        assert t["status"] == "refused" and "bridge_programs" in t["detail"], t
        env["MEMEBOT_CROSSCHAIN_BRIDGE_PROGRAMS"] = "MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr"  # the loopback's
        r = memebot(*args, "--target", "MEME@bsc=5000", "--wait", "30", env=env, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        doc = json.loads(r.stdout)
        (t,) = doc["transfers"]
        assert (t["status"], t["from_chain"], t["to_chain"], t["amount_in"], t["received"]) == (
            "done", "solana", "bsc", 5_000 * 10**6, 4_995 * 10**18), t  # fmt: skip
        assert t["tx_hash"] in sol_chain.history and doc["reconcile"] == {"solana": "ok", "bsc": "ok"}, doc
        assert sol_chain.token_balance(sol_chain.ata(kp.pubkey(), mint)) == 15_000 * 10**6
        assert tok.functions.balanceOf(me.address).call() == 4_995 * 10**18
        # and back: deposited on BSC (approved to the bridge contract), minted to the Solana wallet
        r = memebot(*args, "--target", "MEME@solana=18000", "--wait", "30", env=env, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        doc = json.loads(r.stdout)
        (t,) = doc["transfers"]
        assert (t["status"], t["from_chain"], t["to_chain"]) == ("done", "bsc", "solana"), t
        assert doc["reconcile"] == {"solana": "ok", "bsc": "ok"}, doc
        got = sol_chain.token_balance(sol_chain.ata(kp.pubkey(), mint))
        assert got == 15_000 * 10**6 + t["received"] and t["received"] == t["amount_in"] // 10**12 * 999 // 1000
