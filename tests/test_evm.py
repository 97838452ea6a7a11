"""EVM execution on a real node: Hardhat Network with Uniswap V2's published bytecode and the project's test tokens.

Every test trades from a fresh account (a key made here, funded by the node), so tests do not share nonces.
"""

import asyncio, json, threading, time
from pathlib import Path
from decimal import Decimal
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler

import pytest
from eth_account import Account

from memebot.config import load_settings
from memebot.core import Chain, OrderStatus, Side
from memebot.data.evm import EvmRpc, evm_chain
from memebot.data.store import Store
from memebot.exec.ledger import Ledger
from memebot.exec.evm import EvmBroker, EvmKey, load_evm_key
from memebot.exec.chain import SwapRejected, WalletKeyError
from memebot.risk.evm_safety import EvmTokenSafety, PROBE_CODE
from memebot.testing.evm import HardhatNode, UniswapTestbed, FaultProxy, contract, send_json

NAMES = {1: "ethereum", 56: "bsc", 137: "polygon"}


def _env(bed, chain, **kw):
    n = chain.upper()
    env = {**bed.settings_env(chain), f"MEMEBOT_EVM_{n}_CONFIRMATIONS": "1", "MEMEBOT_EVM_STUCK_AFTER_S": "30"}
    env.update({k if k.startswith("MEMEBOT_") else f"MEMEBOT_{k}": str(v) for k, v in kw.items()})
    return env


@pytest.fixture(scope="module")
def bsc():
    "A BSC-configured node with Uniswap V2, the four test tokens and a 99% sell-tax token; blocks every 100 ms."
    node = HardhatNode(chain_id=56).start()
    node.rpc("evm_setIntervalMining", 100)
    bed = UniswapTestbed(node).deploy()
    bed.add_token("TAX99", "FeeToken", (0, 9900))
    yield node, bed
    node.stop()


async def sent(proxy: FaultProxy, n: int = 1) -> None:
    "Wait until the node behind `proxy` has answered `n` eth_sendRawTransaction calls (fail after 30 s)."
    assert await asyncio.to_thread(proxy.wait_answered, "eth_sendRawTransaction", n), proxy.answered


async def fresh(
    node, bed, chain="bsc", safety=True, store=None, rpc_url=None, acct=None, ack=True, timeout_s=None, fund=True, **env
):
    "A broker for a new funded account, its ledger acknowledged to the chain (100 native coins, nonce 0)."
    s = load_settings(env=_env(bed, chain, **env))
    acct = acct or Account.create()
    if fund:
        node.rpc("hardhat_setBalance", acct.address, hex(100 * 10**18))
    cfg = evm_chain(chain, s)
    if rpc_url:
        from dataclasses import replace

        cfg = replace(cfg, rpc_urls=(rpc_url,))
    rpc = EvmRpc(cfg, max_wait_s=0.05, timeout_s=timeout_s)
    ledger = Ledger(store or Store(":memory:"), "t", Chain.parse(chain), acct.address.lower())
    b = EvmBroker(
        ledger,
        EvmKey(acct, "test"),
        cfg,
        s,
        safety=EvmTokenSafety(rpc, s.risk) if safety else None,
        rpc=rpc,
        poll_s=0.05,
    )
    if ack and not (rep := await b.reconcile()).ok:
        b.acknowledge(rep, "test start")
    return b


def chain_nonce(node, addr):
    return int(node.rpc("eth_getTransactionCount", addr, "latest"), 16)


# -- the path on each chain configuration ------------------------------------------------------------------


@pytest.mark.parametrize("chain_id", [1, 56, 137])
async def test_buy_and_sell_on_each_chain(chain_id):
    name = NAMES[chain_id]
    with HardhatNode(chain_id=chain_id) as node:
        node.rpc("evm_setIntervalMining", 100)
        bed = UniswapTestbed(node).deploy()
        b = await fresh(node, bed, name)
        tok = bed.tokens["MEME"]
        o = await b.buy(tok, 10**18)
        assert o.status is OrderStatus.FILLED and o.filled_qty > 0, o.reason
        held = b.ledger.balances()[tok]
        assert held == await b.token_balance(tok)
        o2 = await b.sell(tok, held)
        assert o2.status is OrderStatus.FILLED, o2.reason
        rep = await b.reconcile()
        assert rep.ok, rep.summary()
        assert b.ledger.balances()[tok] == 0 and b.ledger_view()["nonce"] == 3  # buy, approve, sell
        # the fees offered respect the chain's floor: Polygon's minimum tip
        sent = node.rpc("eth_getTransactionByHash", b.ledger.intents(o.client_id)[0].signature)
        tip = int(sent["maxPriorityFeePerGas"], 16)
        assert tip >= int(b.cfg.min_tip_gwei * 1e9) and int(sent["chainId"], 16) == chain_id
        if name == "polygon":
            assert tip >= 30 * 10**9
        await b.aclose()


async def test_taxed_token_fill_is_what_arrived(bsc):
    node, bed = bsc
    b = await fresh(node, bed)
    tok = bed.tokens["TAX"]
    o = await b.buy(tok, 2 * 10**18)
    assert o.status is OrderStatus.FILLED, o.reason
    arrived = await b.token_balance(tok)
    p = b.ledger.order_params(o.client_id)
    assert b.ledger.balances()[tok] == arrived
    assert int(Decimal(repr(o.filled_qty)) * 10**18) == pytest.approx(arrived, rel=1e-12)
    assert arrived == pytest.approx(int(p["expected_out"]) * 0.97, rel=1e-9)  # the 3% buy tax shows in the fill
    o2 = await b.sell(tok, arrived)
    assert o2.status is OrderStatus.FILLED, o2.reason
    assert (await b.reconcile()).ok


async def test_honeypot_and_99pct_sell_tax_refused_before_any_buy(bsc):
    node, bed = bsc
    b = await fresh(node, bed)
    with pytest.raises(SwapRejected, match="sell reverted"):
        await b.buy(bed.tokens["HONEY"], 10**17)
    with pytest.raises(SwapRejected, match=r"sell tax 99\.00% > 10%"):
        await b.buy(bed.tokens["TAX99"], 10**17)
    with pytest.raises(SwapRejected, match="change the tax"):
        await b.buy(bed.tokens["RUG"], 10**17)
    assert chain_nonce(node, b.me) == 0 and b.ledger.intents() == []  # nothing was signed or sent


async def test_probe_code_is_the_compiled_source():
    assert contract("SwapProbe")["deployedBytecode"] == PROBE_CODE


# -- nonces ------------------------------------------------------------------------------------------------


async def test_nonce_too_low_is_recovered_without_a_second_swap(bsc):
    node, bed = bsc
    acct = Account.create()
    b = await fresh(node, bed, acct=acct)
    tok = bed.tokens["MEME"]
    assert (await b.buy(tok, 10**17)).status is OrderStatus.FILLED  # the manager now expects nonce 1
    # the same key sends a transfer from outside memebot, taking nonce 1
    tx = {
        "to": bed.spare.address,
        "value": 1,
        "gas": 21000,
        "maxFeePerGas": 10**11,
        "maxPriorityFeePerGas": 10**9,
        "nonce": 1,
        "chainId": 56,
    }
    node.rpc("eth_sendRawTransaction", "0x" + bytes(acct.sign_transaction(tx).raw_transaction).hex())  # automined
    assert chain_nonce(node, b.me) == 2
    o = await b.buy(tok, 10**17)
    assert o.status is OrderStatus.FILLED, o.reason
    its = b.ledger.intents(o.client_id)
    assert [i.status for i in its] == ["expired", "confirmed"] and "nonce too low" in its[0].err
    assert len(b.ledger.fills()) == 2 and chain_nonce(node, b.me) == 3
    rep = await b.reconcile()  # the outside transaction shows: the nonce and the native coin differ
    assert {d.asset for d in rep.differences} == {"nonce", "BNB"} and b.halted


async def test_killed_between_send_and_confirm_recovers_on_restart_with_no_second_buy(bsc, tmp_path):
    node, bed = bsc
    acct = Account.create()
    store = Store(str(tmp_path / "ledger.duckdb"))
    tok = bed.tokens["MEME"]
    with FaultProxy(node.url, rate=0.0) as proxy:
        b = await fresh(node, bed, store=store, acct=acct, rpc_url=proxy.url)
        node.rpc("evm_setIntervalMining", 0)
        node.automine(False)
        try:
            task = asyncio.create_task(b.buy(tok, 10**17))
            await sent(proxy)
            task.cancel()  # the process dies: the signed swap is in the ledger and in the mempool
            with pytest.raises(asyncio.CancelledError):
                await task
            b2 = await fresh(node, bed, store=store, acct=acct, ack=False, rpc_url=proxy.url)  # same ledger, key
            rec = asyncio.create_task(b2.recover())  # re-sends the same bytes: the node already knows them
            await sent(proxy, 2)
            assert len(node.pending()) == 1
        finally:
            node.automine(True)
            node.rpc("evm_setIntervalMining", 100)
        done = await rec
        assert [o.status for o in done] == [OrderStatus.FILLED]
        assert len(b2.ledger.fills()) == 1 and chain_nonce(node, b2.me) == 1
        assert b2.ledger.balances()[tok] == await b2.token_balance(tok)


async def test_stuck_swap_replaced_with_bumped_fees_exactly_one_lands(bsc):
    node, bed = bsc
    with FaultProxy(node.url, rate=0.0) as proxy:
        b = await fresh(node, bed, rpc_url=proxy.url, MEMEBOT_EVM_STUCK_AFTER_S="0.3")
        tok = bed.tokens["MEME"]
        node.rpc("evm_setIntervalMining", 0)
        node.automine(False)
        try:
            task = asyncio.create_task(b.buy(tok, 10**17))
            await sent(proxy, 2)  # the swap, then its replacement (written to the ledger before it was sent)
            assert len(b.ledger.intents()) >= 2
            assert len(node.pending()) == 1  # the replacement took the original's place in the mempool
        finally:
            node.automine(True)
            node.rpc("evm_setIntervalMining", 100)
            node.mine(1)
        o = await task
        assert o.status is OrderStatus.FILLED, o.reason
        its = b.ledger.intents(o.client_id)
        assert sorted(i.status for i in its).count("confirmed") == 1
        assert all(i.status in ("confirmed", "expired") for i in its)
        assert len({i.last_valid_block_height for i in its}) == 1  # one nonce for all of them
        first, last = b._txs[its[0].signature], b._txs[its[-1].signature]
        assert (
            last["maxFeePerGas"] >= first["maxFeePerGas"] * 1.15
            and last["maxPriorityFeePerGas"] > first["maxPriorityFeePerGas"]
        )
        assert len(b.ledger.fills()) == 1 and chain_nonce(node, b.me) == 1
        assert (await b.reconcile()).ok


async def test_reverted_swap_books_a_failed_order_and_its_gas(bsc):
    node, bed = bsc
    tok = bed.tokens["RUG"]
    with FaultProxy(node.url, rate=0.0) as proxy:
        b = await fresh(node, bed, safety=False, rpc_url=proxy.url)
        node.rpc("evm_setIntervalMining", 0)
        node.automine(False)
        try:
            task = asyncio.create_task(b.buy(tok, 10**17, slippage_bps=100))
            await sent(proxy)
            # the owner raises the buy tax to 100% with a higher tip: mined first, in the same block
            w3, dep = bed.w3, bed.deployer
            fn = bed.c(tok, contract("TaxToken")).functions.setTaxes(10_000, 100)
            tx = fn.build_transaction(
                {
                    "from": dep.address,
                    "nonce": w3.eth.get_transaction_count(dep.address, "pending"),
                    "maxFeePerGas": 500 * 10**9,
                    "maxPriorityFeePerGas": 100 * 10**9,
                    "gas": 100_000,
                    "chainId": 56,
                }
            )
            node.rpc("eth_sendRawTransaction", "0x" + bytes(dep.sign_transaction(tx).raw_transaction).hex())
            node.mine(1)
        finally:
            node.automine(True)
            node.rpc("evm_setIntervalMining", 100)
        o = await task
        bed.set_taxes("RUG", 100, 100)
        assert o.status is OrderStatus.FAILED and "status 0" in o.reason
        assert b.ledger.fills() == [] and tok not in b.ledger.portfolio.positions
        assert b.ledger.balances()["BNB"] < 100 * 10**18  # the gas was paid and booked
        assert (await b.reconcile()).ok


async def test_reorg_unbooks_the_orphaned_fill_and_books_it_again(bsc):
    node, bed = bsc
    b = await fresh(node, bed)
    tok = bed.tokens["MEME"]
    snap = node.snapshot()
    o = await b.buy(tok, 10**17)
    assert o.status is OrderStatus.FILLED
    h = b.ledger.fills()[0].fill_id
    node.revert(snap)  # the blocks holding the swap are orphaned...
    bed.trade_external("MEME", 0.5)  # ...and others mined in their place
    assert node.rpc("eth_getTransactionReceipt", h) is None
    again = await b.check_reorgs()
    assert [x.status for x in again] == [OrderStatus.FILLED]
    fills = b.ledger.fills()
    assert [f.fill_id for f in fills] == [h]  # the same transaction, booked once, from its new receipt
    assert b.ledger.balances()[tok] == await b.token_balance(tok)
    kinds = b.ledger._q("SELECT kind FROM ledger_moves WHERE kind='unbook'")
    assert len(kinds) == 1 and (await b.reconcile()).ok


# -- faults ------------------------------------------------------------------------------------------------


async def test_rpc_faults_at_20pct_end_every_order_in_a_terminal_state(bsc):
    node, bed = bsc
    tok = bed.tokens["MEME"]
    with FaultProxy(node.url, rate=0.2, seed=11, stall_s=1.0) as proxy:  # stalls outlast the 0.5 s timeout
        b = await fresh(node, bed, rpc_url=proxy.url, timeout_s=0.5)
        orders = []
        for i in range(6):
            if i % 2 == 0:
                orders.append(await b.buy(tok, 10**17))
            else:
                held = b.ledger.balances().get(tok, 0)
                orders.append(await b.sell(tok, held // 2))
        assert sum(proxy.faults.values()) > 10 and {"stall", "lost", "429", "drop"} <= set(proxy.faults), proxy.faults
    assert all(o.status.is_terminal for o in orders), [(o.status, o.reason) for o in orders]
    assert sum(o.status is OrderStatus.FILLED for o in orders) >= 4
    clean = await fresh(node, bed, acct=None)  # a clean connection to compare the ledger with the chain
    b.rpc = clean.rpc
    assert (await b.reconcile()).ok


async def test_health_drops_a_stale_node(bsc):
    node, bed = bsc
    with FaultProxy(node.url, rate=0.0, lag_blocks=10) as stale:
        s = load_settings(env=_env(bed, "bsc", MEMEBOT_ENDPOINTS_BSC_RPC=f"{stale.url},{node.url}"))
        rpc = EvmRpc(evm_chain("bsc", s), max_lag_blocks=3)
        eps = await rpc.check_health()
        assert [e.healthy for e in eps] == [False, True] and "lagging" in eps[0].why
        assert rpc.ranked()[0].url == node.url
        await rpc.aclose()


async def test_private_endpoint_gets_the_signed_swap_and_the_public_rpc_never_does(bsc):
    node, bed = bsc
    with FaultProxy(node.url, rate=0.0) as public, FaultProxy(node.url, rate=0.0) as private:
        b = await fresh(node, bed, rpc_url=public.url, MEMEBOT_EVM_BSC_PRIVATE_RPC=private.url)
        assert b.cfg.private_rpc == private.url
        o = await b.buy(bed.tokens["MEME"], 10**17)
        assert o.status is OrderStatus.FILLED, o.reason
        assert private.calls == {"eth_sendRawTransaction": 1} and "eth_sendRawTransaction" not in public.calls


async def test_failover_and_health_drop_a_failing_node(bsc):
    node, bed = bsc
    with FaultProxy(node.url, rate=1.0, seed=1) as bad:
        s = load_settings(env=_env(bed, "bsc", MEMEBOT_ENDPOINTS_BSC_RPC=f"{bad.url},{node.url}"))
        rpc = EvmRpc(evm_chain("bsc", s), max_wait_s=0.01)
        assert await rpc.block_number() > 0  # failed over to the second endpoint
        eps = await rpc.check_health()
        assert [e.healthy for e in eps] == [False, True] and rpc.ranked()[0].url == node.url
        await rpc.aclose()


# -- token safety's second opinion, keys -------------------------------------------------------------------


async def test_goplus_second_opinion_refuses_on_its_fields(bsc, shared):
    node, bed = bsc
    rec = json.loads(
        (
            shared / "fixtures/token-security/recorded_goplus_token_security_KOKO_is_honeypot_1.THIRDPARTY.json"
        ).read_text()
    )
    item = next(iter(rec["result"].values()))
    seen = []

    class H(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.path)
            addr = self.path.split("contract_addresses=")[1]
            send_json(self, 200, {**rec, "result": {addr: item}})  # the recorded answer, for the asked address

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        s = load_settings(env=_env(bed, "bsc"))
        rpc = EvmRpc(evm_chain("bsc", s))
        v = await EvmTokenSafety(rpc, s.risk, goplus_url=f"http://127.0.0.1:{srv.server_address[1]}").check(
            bed.tokens["MEME"]
        )
        assert not v.ok and "GoPlus: honeypot" in v.reasons and seen[0].startswith("/token_security/56?")
        await rpc.aclose()
    finally:
        srv.shutdown()


def test_key_file_readable_by_others_is_refused(tmp_path):
    kf = tmp_path / "evm.key"
    acct = Account.create()
    kf.write_text(acct.key.hex())
    kf.chmod(0o640)
    s = load_settings(env={}, overrides={"evm.keystore_path": str(kf)})
    with pytest.raises(WalletKeyError, match="readable by group/others"):
        load_evm_key(s)
    kf.chmod(0o600)
    k = load_evm_key(s)
    assert k.address == acct.address and acct.key.hex()[2:] not in repr(k)


@pytest.mark.parametrize("hair", [1 + 1e-15, 1 - 1e-15])
async def test_engine_sell_of_the_whole_position_in_floats_sells_what_is_held(bsc, hair):
    "A float position is a hair over or under the atoms held: closing it sells them all, no more and no dust left."
    from memebot.core import Order, Side, from_atoms

    node, bed = bsc
    b = await fresh(node, bed)
    tok = bed.tokens["MEME"]
    assert (await b.buy(tok, 10**17)).status is OrderStatus.FILLED
    held = b.ledger.balances()[tok]
    qty = float(from_atoms(held, 18)) * hair  # what a float position can look like
    o = await b.submit(Order(tok, Side.SELL, qty, chain=Chain.BSC))
    assert o.status is OrderStatus.FILLED, o.reason
    assert b.ledger.balances()[tok] == 0 == await b.token_balance(tok)


async def test_a_sent_transaction_whose_answer_was_lost_is_booked_not_refused(bsc):
    "The node took the approval but its answer was lost: the resend hears 'nonce too low', and the receipt says ours."
    node, bed = bsc
    tok = bed.tokens["MEME"]
    with FaultProxy(node.url, rate=0.0, script={"eth_sendRawTransaction": ["lost"]}) as proxy:
        b = await fresh(node, bed, rpc_url=proxy.url)
        assert (await b.buy(tok, 10**17)).status is OrderStatus.FILLED  # its send was the lost one, and resent
        held = b.ledger.balances()[tok]
        proxy.script["eth_sendRawTransaction"] = ["lost"]  # now the sell's approval
        o = await b.sell(tok, held)
        assert o.status is OrderStatus.FILLED, o.reason
        assert proxy.faults == {"lost": 2}
        assert (await b.reconcile()).ok  # both approvals' and swaps' gas booked, nonce as expected


async def test_a_ledger_restored_from_before_trades_adopts_them_from_the_chain(bsc, tmp_path):
    "A ledger restored from a backup taken before a buy and a sell: reconciliation names the account's three"
    " transactions since (found by nonce in the node's history), `adopt` books the swaps as filled orders and the"
    " approval as its gas, and the ledger equals the chain again; adopting twice books nothing."
    import shutil

    node, bed = bsc
    acct, path, meme = Account.create(), tmp_path / "ledger.duckdb", bed.tokens["MEME"]
    st = Store(str(path))
    b = await fresh(node, bed, store=st, acct=acct, safety=False)  # the start, acknowledged
    await b.aclose()
    st.close()
    journal = Path(f"{path}.journal")  # the ledger's write-ahead journal lives beside the store: backed up with it
    shutil.copytree(tmp_path, tmp_path.parent / f"{tmp_path.name}-backup")
    st = Store(str(path))
    b = await fresh(node, bed, store=st, acct=acct, safety=False, ack=False, fund=False)
    buy = await b.buy(meme, 10**18)
    sell = await b.sell(meme, b.ledger.balances()[meme.lower()] // 2)  # approves the router first
    assert (buy.status, sell.status) == (OrderStatus.FILLED, OrderStatus.FILLED)
    want = b.ledger.balances()
    await b.aclose()
    st.close()
    shutil.rmtree(journal, ignore_errors=True)  # the restore: store and journal as they were before the trades
    shutil.copytree(tmp_path.parent / f"{tmp_path.name}-backup", tmp_path, dirs_exist_ok=True)
    st = Store(str(path))
    b = await fresh(node, bed, store=st, acct=acct, safety=False, ack=False, fund=False)
    rep = await b.reconcile()
    assert not rep.ok and len(rep.unknown_signatures) == 3 and b.halted
    assert {d.asset for d in rep.differences} == {"nonce", "BNB"}  # the token: unknown to this ledger until adopted
    orders = await b.adopt(rep)
    assert [(o.side, o.status, o.client_id) for o in orders] == [
        (Side.BUY, OrderStatus.FILLED, f"chain:{rep.unknown_signatures[0]}"),
        (Side.SELL, OrderStatus.FILLED, f"chain:{rep.unknown_signatures[2]}"),
    ]
    assert orders[0].filled_qty == buy.filled_qty and orders[1].filled_qty == sell.filled_qty
    after = await b.reconcile()
    assert after.ok, after.summary()
    assert {k: v for k, v in b.ledger.balances().items() if k != "nonce"} == {
        k: v for k, v in want.items() if k != "nonce"}  # fmt: skip
    assert await b.adopt(rep) == [] and (await b.reconcile()).ok  # adopting again books nothing
    await b.aclose()
    st.close()
