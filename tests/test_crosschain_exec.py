"""Both loopback chains at once: LiteSVM (Solana, the Jupiter stand-in) and Hardhat Network (BSC, Uniswap V2), each
with a pool of the same token at a different price. The detector finds the gap from the pools' real reserves, the
executor trades both legs through the real brokers, a failed leg is unwound, and a process stopped between the legs
settles on restart; the portfolio across both ledgers shows each result."""

import asyncio, json
import pytest
from eth_account import Account
from solders.keypair import Keypair
from memebot.config import RiskConfig, load_settings
from memebot.core import Chain, OrderStatus, PoolUpdate, new_client_id
from memebot.data.evm import EvmRpc, evm_chain
from memebot.data.store import Store
from memebot.exec.evm import EvmBroker, EvmKey
from memebot.exec.ledger import Ledger
from memebot.exec.solana import SolanaBroker, load_wallet
from memebot.live.crosschain import (
    ArbCosts,
    ArbDetector,
    ArbExecution,
    ArbExecutor,
    AssetRegistry,
    ChainToken,
    portfolio_usd,
)
from memebot.risk import RiskEngine
from memebot.testing import LocalChain, LocalChainServer, LocalJupiter
from memebot.testing.evm import HardhatNode, UniswapTestbed, contract, uniswap

SOL, BNB = 10**9, 10**18
USD = {"SOL": 150.0, "BNB": 600.0}


@pytest.fixture(scope="module")
def node():
    n = HardhatNode(chain_id=56).start()
    n.rpc("evm_setIntervalMining", 100)
    bed = UniswapTestbed(n).deploy()  # each token's pool: 100 BNB against 1,000,000 tokens (0.06 USD at 600 USD/BNB)
    yield n, bed
    n.stop()


class TwoChains:
    "A Solana wallet with 1,000 SOL and a BSC account with 100 BNB and 50,000 MEME; MEME is 5% cheaper on Solana."

    def __init__(self, tmp_path, node):
        self.node, self.bed = node
        self.sol_chain = LocalChain()
        self.jup = LocalJupiter(self.sol_chain)
        self.mint = self.sol_chain.create_mint(6)
        self.pool = self.jup.create_pool(self.mint, 10**12, 380 * SOL)  # 1M tokens, 0.057 USD each at 150 USD/SOL
        kp = Keypair()
        self.sol_chain.airdrop(kp.pubkey(), 1_000 * SOL)
        self.srv = LocalChainServer(self.sol_chain, self.jup).start()
        self.sol_settings = load_settings(
            env={"MEMEBOT_SOLANA_PRIVATE_KEY": str(kp)}, overrides={**self.srv.endpoints(), "data.http_timeout_s": "2"}
        )
        self.acct = Account.create()
        self.node.rpc("hardhat_setBalance", self.acct.address, hex(100 * BNB))
        self.sym = f"M{len(self.bed.tokens)}"  # a fresh token and pool for each test: 100 BNB against 1M tokens
        self.meme = self.bed.add_token(self.sym, "TestToken", (), True)
        tok = self.bed.c(self.meme, contract("TestToken"))
        self.bed._send(tok.functions.transfer(self.acct.address, 50_000 * 10**18), self.bed.deployer)
        n = "BSC"
        self.evm_env = {**self.bed.settings_env("bsc"), f"MEMEBOT_EVM_{n}_CONFIRMATIONS": "1"}
        self.registry = AssetRegistry()
        self.registry.add("MEME", ChainToken(Chain.SOLANA, str(self.mint), 6))
        self.registry.add("MEME", ChainToken(Chain.BSC, self.meme, 18, "bridged"))
        self.sol_store, self.bsc_store = Store(tmp_path / "sol.duckdb"), Store(tmp_path / "bsc.duckdb")
        self.arb_store = Store(tmp_path / "arb.duckdb")
        self.risk = RiskEngine(RiskConfig())

    async def brokers(self):
        "The two brokers (a restart makes new ones on the same ledgers), each reconciled with its chain."
        w = load_wallet(self.sol_settings)
        sb = SolanaBroker(Ledger(self.sol_store, "arb", Chain.SOLANA, str(w.pubkey)), w, self.sol_settings,
                          allowed_cosigners=self.jup.cosigners, resend_interval_s=0.05)  # fmt: skip
        if not (rep := await sb.start()).ok:
            sb.acknowledge(rep, "test start")
        s = load_settings(env=self.evm_env)
        cfg = evm_chain("bsc", s)
        led = Ledger(self.bsc_store, "arb", Chain.BSC, self.acct.address.lower())
        eb = EvmBroker(led, EvmKey(self.acct, "test"), cfg, s, rpc=EvmRpc(cfg, max_wait_s=0.05), poll_s=0.05)
        if not led.balances():  # first start: the operator books the tokens deposited before memebot ran
            led.record_move("deposit:meme", self.meme, 50_000 * 10**18, kind="deposit")
        if not (rep := await eb.start()).ok:
            eb.acknowledge(rep, "test start")
        return sb, eb

    def updates(self):
        "Each pool's reserves, read from its chain, as PoolUpdates."
        rt, rs = self.jup.reserves(self.pool)
        pair = self.bed.c(self.bed.pairs[self.sym], uniswap("UniswapV2Pair"))
        r0, r1, _ = pair.functions.getReserves().call()
        t0 = pair.functions.token0().call().lower()
        tok, bnb = (r0, r1) if t0 == self.meme else (r1, r0)
        return [
            PoolUpdate(1, Chain.SOLANA, str(self.pool.address), rt / 1e6, rs / 1e9, fee_bps=25),
            PoolUpdate(2, Chain.BSC, self.bed.pairs[self.sym], tok / 1e18, bnb / 1e18, fee_bps=30),
        ]

    def detector(self, sb, eb):
        d = ArbDetector(
            ArbCosts(min_profit_usd=1.0, gas_usd={Chain.SOLANA: 0.001, Chain.BSC: 0.1}), modes=("inventory",)
        )
        d.watch("solana", str(self.pool.address), "MEME", "SOL", 25)
        d.watch("bsc", self.bed.pairs[self.sym], "MEME", "BNB", 30)
        d.usd |= USD
        d.inventory[(Chain.SOLANA, "SOL")] = sb.ledger.balances()["SOL"] / SOL
        d.inventory[(Chain.BSC, "MEME")] = eb.ledger.balances()[self.meme] / 1e18
        return d

    def value(self, sb, eb, meme_usd):
        df = portfolio_usd([sb.ledger, eb.ledger], self.registry, USD | {"MEME": meme_usd})
        return df, df.usd.sum(), df[df.asset == "MEME"].units.sum()

    def close(self):
        self.srv.stop()
        for s in (self.sol_store, self.bsc_store, self.arb_store):
            s.close()


@pytest.fixture
def two(tmp_path, node):
    t = TwoChains(tmp_path, node)
    yield t
    t.close()


async def test_detect_size_and_trade_both_legs(two, memebot, tmp_path):
    sb, eb = await two.brokers()
    det = two.detector(sb, eb)
    opps = [o for u in two.updates() for o in det.on_pool_update(u) if o.profitable]
    assert len(opps) == 1 and (opps[0].buy_chain, opps[0].sell_chain) == ("solana", "bsc"), opps
    opp = opps[0]
    _, usd0, meme0 = two.value(sb, eb, 0.058)
    ex = await ArbExecutor({"solana": sb, "bsc": eb}, two.registry, two.arb_store, two.risk).execute(opp)
    assert ex.status == "done" and ex.residual == 0, ex
    assert ex.bought == pytest.approx(opp.token_qty, rel=1e-6)  # the closed form's size, as the pool executed it
    assert ex.sold == pytest.approx(opp.token_qty, rel=1e-9)
    sell = eb.ledger.order(ex.sell_client_id)
    bnb_in = sell.filled_qty * sell.avg_fill_price
    predicted_sol = opp.size_quote + opp.gross_usd / USD["SOL"]  # what B returns, in A's quote units
    assert bnb_in == pytest.approx(predicted_sol * USD["SOL"] / USD["BNB"], rel=1e-4)
    df, usd1, meme1 = two.value(sb, eb, 0.058)
    assert meme1 == pytest.approx(meme0, rel=1e-6)  # the token moved from BSC to Solana, none lost
    assert usd1 - usd0 == pytest.approx(opp.gross_usd, abs=1.0)  # gross less the chains' real fees (cents)
    assert set(df.chain) == {"solana", "bsc"} and (await sb.reconcile()).ok and (await eb.reconcile()).ok
    await sb.aclose(), await eb.aclose()
    for st in (two.sol_store, two.bsc_store, two.arb_store):  # the nodes stop; `memebot portfolio` reads their ledgers
        st.close()
    assets = f"MEME@solana={two.mint}:6,MEME@bsc={two.meme}:18"
    r = memebot("--set", f"store.ledger_dir={tmp_path}", "--set", f"crosschain.assets={assets}", "portfolio",
                "--no-fetch", "--price", "SOL=150", "--price", "BNB=600", "--price", "MEME=0.058", "--json",
                check=True)  # fmt: skip
    doc = json.loads(r.stdout)
    assert doc["total_usd"] == pytest.approx(usd1, rel=1e-9) and doc["busy"] == []
    meme_rows = [b for b in doc["balances"] if b["asset"] == "MEME"]
    assert {b["chain"] for b in meme_rows} == {"solana", "bsc"} and sum(b["units"] for b in meme_rows) == pytest.approx(
        meme1
    )
    text = memebot("--set", f"store.ledger_dir={tmp_path}", "--set", f"crosschain.assets={assets}", "portfolio",
                   "--no-fetch", "--price", "SOL=150", check=True).stdout  # fmt: skip
    assert "no price for BNB, MEME" in text and max(map(len, text.splitlines())) <= 80
    r = memebot("--set", f"store.ledger_dir={tmp_path}", "--set", f"crosschain.assets={assets}", "arb", "rebalance",
                "--target", "MEME@bsc=50000", "--price", "MEME=0.058", "--no-fetch", "--json", check=True)  # fmt: skip
    (p,) = json.loads(r.stdout)["proposals"]  # the tokens the trade moved to Solana go back to BSC's inventory
    assert (p["from_chain"], p["to_chain"]) == ("solana", "bsc") and p["units"] == pytest.approx(ex.bought, rel=1e-6)


async def test_a_failed_leg_is_unwound_not_left_open(two):
    sb, eb = await two.brokers()
    det = two.detector(sb, eb)
    opp = next(o for u in two.updates() for o in det.on_pool_update(u) if o.profitable)
    _, _, meme0 = two.value(sb, eb, 0.058)
    eb.halt("test: the BSC leg cannot trade")  # the sell leg is refused
    ex = await ArbExecutor({"solana": sb, "bsc": eb}, two.registry, two.arb_store, two.risk).execute(opp)
    assert ex.sold == 0 and ex.bought > 0 and ex.status == "unwound", ex
    unwind = sb.ledger.order(ex.unwind_client_id)
    assert unwind.status is OrderStatus.FILLED and unwind.filled_qty == pytest.approx(ex.bought, rel=1e-6)
    _, _, meme1 = two.value(sb, eb, 0.058)
    assert meme1 == pytest.approx(meme0, rel=1e-6)  # no hidden position on either chain
    assert two.risk.state.value == "active"  # closed: nothing to halt for
    await sb.aclose(), await eb.aclose()


async def test_unwind_that_fails_halts_the_risk_engine(two):
    sb, eb = await two.brokers()
    det = two.detector(sb, eb)
    opp = next(o for u in two.updates() for o in det.on_pool_update(u) if o.profitable)
    eb.halt("test: BSC down")
    x = ArbExecutor({"solana": sb, "bsc": eb}, two.registry, two.arb_store, two.risk)
    buy = sb.buy

    async def buy_then_halted(*a, **kw):  # Solana is halted (say, by its own reconciliation) right after the buy
        o = await buy(*a, **kw)
        sb.halt("test: halted after the buy")
        return o

    sb.buy = buy_then_halted
    ex = await x.execute(opp)
    assert ex.status == "exposed" and ex.residual == pytest.approx(ex.bought), ex
    assert two.risk.state.value == "halted" and "unhedged on solana" in two.risk.reason()
    await sb.aclose(), await eb.aclose()


async def test_a_stop_between_the_legs_settles_on_restart(two):
    sb, eb = await two.brokers()
    det = two.detector(sb, eb)
    opp = next(o for u in two.updates() for o in det.on_pool_update(u) if o.profitable)
    _, _, meme0 = two.value(sb, eb, 0.058)
    x = ArbExecutor({"solana": sb, "bsc": eb}, two.registry, two.arb_store, two.risk)
    # What a process killed between the legs leaves: the execution recorded, the buy leg sent, the sell never sent.
    ex = ArbExecution(new_client_id("arb"), 1, "MEME", "solana", "bsc", new_client_id("arbbuy"),
                      new_client_id("arbsell"), int(opp.size_quote * SOL), opp.token_qty)  # fmt: skip
    x._save(ex)
    await sb.buy(str(two.mint), ex.quote_atoms, client_id=ex.buy_client_id)
    await sb.aclose(), await eb.aclose()
    sb2, eb2 = await two.brokers()  # the restart: new brokers on the same ledgers, recovered and reconciled
    done = await ArbExecutor({"solana": sb2, "bsc": eb2}, two.registry, two.arb_store, two.risk).recover()
    assert [e.id for e in done] == [ex.id] and done[0].status == "unwound" and done[0].sold == 0
    assert await ArbExecutor({"solana": sb2, "bsc": eb2}, two.registry, two.arb_store).recover() == []  # once
    _, _, meme1 = two.value(sb2, eb2, 0.058)
    assert meme1 == pytest.approx(meme0, rel=1e-6)
    await sb2.aclose(), await eb2.aclose()
