"""Live Solana path on the loopback test chain (LiteSVM): swaps, faults, expiry, crash recovery, safety, keys,
reconciliation.

The chain is real (LiteSVM runs the SPL Token programs); Jupiter's router is a local stand-in (see memebot.testing).
"""

import asyncio, base64, io, json, os, signal, subprocess, sys, threading, time
from pathlib import Path
import pytest
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction
from memebot.core import OrderStatus, SOL_MINT
from memebot.config import load_settings
from memebot.data.store import Store
from memebot.exec.ledger import Ledger
from memebot.exec.solana import SolanaBroker, load_wallet, ata_address
from memebot.exec.chain import SwapRejected, TradingHalted, WalletKeyError
from memebot.testing import LocalChain, LocalJupiter, LocalChainServer, Faults
from memebot.risk.safety import TokenSafetyChecker
from memebot.core import WallClock
from memebot.strategy import Strategy
from memebot.risk import RiskEngine
from memebot.live import TradingNode, VenueBroker
from memebot.data.feeds import JupiterPriceFeed, BarFeed
from _strategies import ROUND_TRIP

ROOT = Path(__file__).resolve().parent.parent
SOL = 10**9


class Env:
    "A funded wallet, a token with a pool, the loopback servers and a store on disk."

    def __init__(self, tmp_path, faults=None, block_time_s=None, **settings):
        self.chain = LocalChain()
        self.jup = LocalJupiter(self.chain)
        self.mint = self.chain.create_mint(6)
        self.jup.create_pool(self.mint, 10**15, 100 * SOL)
        self.me = Keypair()
        self.chain.airdrop(self.me.pubkey(), 20 * SOL)
        self.secret = str(self.me)
        self.srv = LocalChainServer(self.chain, self.jup, faults=faults, block_time_s=block_time_s).start()
        self.store_path = tmp_path / "ledger.duckdb"
        ov = {**self.srv.endpoints(), "data.http_timeout_s": "2", **settings}
        self.settings = load_settings(env={"MEMEBOT_SOLANA_PRIVATE_KEY": self.secret}, overrides=ov)
        self.stores = []

    async def broker(self, ack=True, **kw) -> SolanaBroker:
        st = Store(self.store_path)
        self.stores.append(st)
        w = load_wallet(self.settings)
        b = SolanaBroker(
            Ledger(st, wallet=str(w.pubkey)),
            w,
            self.settings,
            allowed_cosigners=self.jup.cosigners,
            resend_interval_s=kw.pop("resend_interval_s", 0.05),
            **kw,
        )
        rep = await b.start()
        if ack and not rep.ok:
            b.acknowledge(rep)
        return b

    def tokens(self) -> int:
        return self.chain.token_balance(ata_address(self.me.pubkey(), self.mint)) or 0

    def sol(self) -> int:
        return self.chain.svm.get_balance(self.me.pubkey())

    def close(self):
        for s in self.stores:
            s.close()
        self.srv.stop()


@pytest.fixture
def env(tmp_path):
    e = Env(tmp_path)
    yield e
    e.close()


async def test_buy_then_sell_changes_balances_and_ledger_agrees(env):
    b = await env.broker()
    sol0 = env.sol()
    buy = await b.buy(str(env.mint), 2 * SOL, slippage_bps=100)
    assert buy.status is OrderStatus.FILLED, buy.reason
    got = env.tokens()
    assert got > 0 and b.ledger.balances()[str(env.mint)] == got
    assert b.ledger.portfolio.qty(str(env.mint)) == pytest.approx(got / 1e6)
    sell = await b.sell(str(env.mint), got // 2, slippage_bps=100)
    assert sell.status is OrderStatus.FILLED, sell.reason
    assert env.tokens() == got - got // 2 == b.ledger.balances()[str(env.mint)]
    assert b.ledger.balances()["SOL"] == env.sol() < sol0
    fills = b.ledger.fills()
    assert [f.fill_id for f in fills] == [i.signature for i in b.ledger.intents() if i.status == "confirmed"]
    assert (await b.reconcile()).ok
    await b.aclose()


async def test_submit_engine_orders(env):
    from memebot.core import Order, Side, OrderType
    from memebot.core import ValidationError

    b = await env.broker()
    o = await b.submit(
        Order(str(env.mint), Side.BUY, 1_000_000.0, price=1e-7, client_id="eng-1", max_slippage_bps=100)
    )  # 0.1 SOL at the pool price
    assert (
        o.status is OrderStatus.FILLED
        and o.client_id == "eng-1"
        and o.filled_qty == pytest.approx(1_000_000.0, rel=0.02)
    )
    s = await b.submit(Order(str(env.mint), Side.SELL, 400.0, client_id="eng-2"))
    assert (
        s.status is OrderStatus.FILLED
        and s.filled_qty == 400.0
        and b.ledger.portfolio.qty(str(env.mint)) == pytest.approx(o.filled_qty - 400)
    )
    with pytest.raises(ValidationError, match="client_id"):
        await b.submit(Order(str(env.mint), Side.SELL, 1.0, client_id="eng-2"))
    with pytest.raises(ValidationError, match="market"):
        await b.submit(Order(str(env.mint), Side.SELL, 1.0, type=OrderType.LIMIT, price=1.0))
    with pytest.raises(ValidationError, match="price"):
        await b.submit(Order(str(env.mint), Side.BUY, 1.0))
    assert env.srv.calls.get("sendTransaction", 0) == 2
    await b.aclose()


async def test_simulation_failure_rejects_before_sending(env):
    b = await env.broker()
    sol0 = env.sol()
    o = await b.sell(str(env.mint), 10**6)  # we hold none of it: the token program fails
    assert o.status is OrderStatus.REJECTED and "simulation failed" in o.reason
    assert env.srv.calls.get("sendTransaction", 0) == 0 and not b.ledger.intents()
    assert env.sol() == sol0 and b.ledger.order(o.client_id).status is OrderStatus.REJECTED
    await b.aclose()


@pytest.mark.parametrize("attempts", [1, 3])
async def test_simulation_without_the_blockhash_signs_again(env, attempts):
    "A simulation that no longer knows the swap's blockhash refuses nothing: nothing was sent, a fresh one is signed."
    b = await env.broker(max_attempts=attempts)
    sims = []

    def expire_first(params):  # the swap's blockhash expires between Jupiter's answer and the simulation
        sims.append(params)
        if len(sims) == 1:
            env.chain.advance(200)

    env.srv.hooks["simulateTransaction"] = expire_first
    o = await b.buy(str(env.mint), SOL)
    if attempts == 1:  # no attempt left: refused, with the simulation's reason
        assert o.status is OrderStatus.REJECTED and o.reason.endswith("BlockhashNotFound") and env.tokens() == 0
    else:
        assert o.status is OrderStatus.FILLED and env.srv.calls["jupiter.swap"] == 2 and len(sims) == 2
        assert env.tokens() == b.ledger.balances()[str(env.mint)] > 0
    assert env.srv.calls.get("sendTransaction", 0) == (attempts > 1) and (await b.reconcile()).ok
    await b.aclose()


async def test_worse_than_quote_is_rejected(env):
    b = await env.broker()
    moved = []

    def front_run(body):  # another trader buys between our quote and swap
        if not moved:
            moved.append(env.jup.trade_external(env.mint, 10 * SOL))

    env.srv.hooks["jupiter.swap"] = front_run
    o = await b.buy(str(env.mint), SOL, slippage_bps=50)
    assert moved and o.status is OrderStatus.REJECTED and "worse than quote" in o.reason
    assert env.srv.calls.get("sendTransaction", 0) == 0 and env.tokens() == 0
    await b.aclose()


def _sig(params) -> str:
    return str(VersionedTransaction.from_bytes(base64.b64decode(params[0])).signatures[0])


@pytest.mark.parametrize("attempts", [1, 3])
async def test_blockhash_expiry(env, attempts):
    b = await env.broker(max_attempts=attempts)
    first = []

    def drop_first(params):  # the first signed tx never lands; time passes
        s = _sig(params)
        first.append(s) if not first else None
        if s == first[0]:
            env.chain.advance(200)
            return "drop"

    env.srv.hooks["sendTransaction"] = drop_first
    sol0 = env.sol()
    o = await b.buy(str(env.mint), SOL)
    intents = b.ledger.intents(o.client_id)
    assert intents[0].signature == first[0] and intents[0].status == "expired"
    if attempts == 1:
        assert o.status is OrderStatus.EXPIRED and env.tokens() == 0 and env.sol() == sol0
        assert env.srv.calls["jupiter.swap"] == 1
    else:  # a new quote is signed only after the first signature could no longer land
        assert o.status is OrderStatus.FILLED and [i.status for i in intents] == ["expired", "confirmed"]
        assert env.srv.calls["jupiter.swap"] == 2 and len(b.ledger.fills(o.client_id)) == 1
        assert env.tokens() == b.ledger.balances()[str(env.mint)] > 0
    assert (await b.reconcile()).ok
    await b.aclose()


async def test_rpc_429s_and_timeouts_every_order_terminal(tmp_path):
    faults = Faults(rate_429=0.1, rate_timeout=0.1, delay_s=0.6, seed=7)  # 20% of requests fail one way or the other
    e = Env(tmp_path, faults=Faults(), **{"data.http_timeout_s": "0.3"})
    try:
        b = await e.broker()
        e.srv.faults = faults
        orders = []
        for i in range(6):
            if i % 2 == 0:
                orders.append(await b.buy(str(e.mint), SOL // 4, slippage_bps=100))
            else:
                orders.append(await b.sell(str(e.mint), max(e.tokens() // 2, 1), slippage_bps=100))
        assert all(o.status.is_terminal for o in orders), [(o.status, o.reason) for o in orders]
        assert sum(o.status is OrderStatus.FILLED for o in orders) >= 3
        assert faults.injected["429"] >= 3 and faults.injected["timeout"] >= 3, faults.injected
        for o in orders:  # never two landed transactions for one order
            assert sum(i.status == "confirmed" for i in b.ledger.intents(o.client_id)) <= 1
            assert len(b.ledger.fills(o.client_id)) == (1 if o.status is OrderStatus.FILLED else 0)
        e.srv.faults = Faults()
        assert (await b.reconcile()).ok
        await b.aclose()
    finally:
        e.close()


async def test_dropped_confirmation_and_dropped_sends(tmp_path):
    e = Env(tmp_path, faults=Faults(drop_notifications=True))
    try:
        b = await e.broker()
        e.srv.faults.drop_sends = 2  # the leader drops our first two sends
        o = await b.buy(str(e.mint), SOL)
        assert o.status is OrderStatus.FILLED, o.reason
        assert (
            e.srv.calls["sendTransaction"] >= 3 and len(b.ledger.intents(o.client_id)) == 1
        )  # re-sent, same signature
        assert e.srv.calls["getSignatureStatuses"] >= 1 and len(b.ledger.fills()) == 1
        assert (await b.reconcile()).ok
        await b.aclose()
    finally:
        e.close()


async def test_jito_bundle_with_tip(tmp_path):
    e = Env(tmp_path, **{"solana.jito_enabled": "true", "solana.jito_tip_lamports": "20000"})
    try:
        b = await e.broker()
        o = await b.buy(str(e.mint), SOL)
        assert o.status is OrderStatus.FILLED, o.reason
        assert e.srv.calls["sendBundle"] >= 1 and e.srv.calls.get("sendTransaction", 0) == 0
        tip = [i for i in b.ledger.intents() if i.client_id.startswith("tip:")]
        assert len(tip) == 1 and tip[0].status == "confirmed"
        assert (await b.reconcile()).ok  # the tip and its fee are in the ledger
        await b.aclose()
    finally:
        e.close()


CHILD = """
import asyncio, os
from memebot.config import get_settings
from memebot.data.store import Store
from memebot.exec.ledger import Ledger
from memebot.exec.solana import SolanaBroker, load_wallet
async def main():
    s = get_settings(); w = load_wallet(s)
    b = SolanaBroker(Ledger(Store(s.store.path), wallet=str(w.pubkey)), w, s,
        allowed_cosigners=[os.environ["COSIGNER"]],
                     resend_interval_s=0.05)
    rep = await b.start()
    if not rep.ok: b.acknowledge(rep)
    print("buying", w, flush=True)
    await b.buy(os.environ["MINT"], 10**9, client_id="crash-1")
    print("done", flush=True)
asyncio.run(main())
"""


@pytest.mark.parametrize("landed", [True, False])
@pytest.mark.parametrize("where", ["after_send", "inside_send"])
async def test_killed_between_send_and_confirm_recovers_without_second_buy(env, landed, where):
    """after_send: the RPC accepted the tx (held,
    not yet included). inside_send: killed while the RPC has the tx but has
    not answered, so only the ledger's write-ahead journal knows it (no DuckDB commit happened yet)."""
    got, release = [], threading.Event()
    if where == "after_send":
        env.srv.faults.hold_sends = True  # the tx is accepted but not yet included
    else:

        def stall(params):  # the RPC got the tx; its answer never reaches the child
            got.append(VersionedTransaction.from_bytes(base64.b64decode(params[0])))
            env.srv.held.append(got[-1])
            release.wait(30)
            return "drop"

        env.srv.hooks["sendTransaction"] = stall
    penv = {k: v for k, v in os.environ.items() if not k.startswith("MEMEBOT_")}
    penv.update(
        {
            "PYTHONPATH": str(ROOT),
            "MEMEBOT_SETTINGS": str(ROOT / "settings.ini"),
            "MEMEBOT_STORE_PATH": str(env.store_path),
            "MEMEBOT_SOLANA_PRIVATE_KEY": env.secret,
            "COSIGNER": env.jup.cosigners[0],
            "MINT": str(env.mint),
            "MEMEBOT_MONITORING_LOGGING_LEVEL": "DEBUG",
            **{f"MEMEBOT_{k.replace('.', '_').upper()}": v for k, v in env.srv.endpoints().items()},
        }
    )
    p = subprocess.Popen(
        [sys.executable, "-c", CHILD], env=penv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        t0 = time.time()
        while not env.srv.held and time.time() - t0 < 60 and p.poll() is None:
            time.sleep(0.02)
        assert env.srv.held, "child never sent its transaction"
        os.kill(p.pid, signal.SIGKILL)
    finally:
        out = p.communicate(timeout=30)[0]
    assert p.returncode == -signal.SIGKILL and "buying" in out and "done" not in out
    assert env.secret not in out and str(list(bytes(env.me))) not in out  # the key never reaches output
    env.srv.faults.hold_sends = False
    env.srv.hooks.pop("sendTransaction", None)
    release.set()
    if where == "inside_send":  # nothing was committed to DuckDB: the journal has it
        st = Store(env.store_path)
        led = Ledger(st, wallet=str(env.me.pubkey()))
        assert led.order("crash-1") is None and not led.intents()
        st.close()
    if landed:
        env.srv.release_held()  # it lands while we are down
    else:
        env.srv.held.clear()
        env.chain.advance(200)  # it never lands; its blockhash expires
    quotes, swaps = env.srv.calls["jupiter.quote"], env.srv.calls["jupiter.swap"]
    b = await env.broker(ack=False)  # restart: recover, then reconcile
    o = b.ledger.order("crash-1")
    assert env.srv.calls["jupiter.quote"] == quotes and env.srv.calls["jupiter.swap"] == swaps  # nothing re-bought
    if landed:
        assert o.status is OrderStatus.FILLED and len(b.ledger.fills("crash-1")) == 1
        assert env.tokens() == b.ledger.balances()[str(env.mint)] > 0
    else:
        assert o.status is OrderStatus.EXPIRED and env.tokens() == 0 and not b.ledger.fills()
    assert (await b.reconcile()).ok and b.halted is None
    await b.aclose()


@pytest.mark.parametrize("kind", ["freeze_authority", "transfer_hook"])
async def test_unsafe_token_is_refused(env, kind):
    bad = (
        env.chain.create_mint(6, freeze_authority=env.chain.faucet.pubkey())
        if kind == "freeze_authority"
        else env.chain.create_mint(6, transfer_hook_program=Keypair().pubkey())
    )
    if kind == "freeze_authority":
        env.jup.create_pool(bad, 10**15, 100 * SOL)
    b = await env.broker()
    risk = load_settings(
        env={}, overrides={"risk.safety_allow_mint_authority": "true", "risk.safety_max_top10_holder_pct": "100"}
    ).risk
    b.safety = TokenSafetyChecker(b.rpc, risk)
    with pytest.raises(SwapRejected, match="freeze authority" if kind == "freeze_authority" else "transfer hook"):
        await b.buy(str(bad), SOL)
    assert not b.ledger.orders and env.srv.calls.get("jupiter.quote", 0) == 0
    assert (await b.buy(str(env.mint), SOL // 10)).status is OrderStatus.FILLED  # a clean token still trades
    await b.aclose()


async def test_reconciliation_reports_differences_and_halts_until_acknowledged(env):
    b = await env.broker()
    assert (await b.buy(str(env.mint), SOL)).status is OrderStatus.FILLED
    env.chain.mint_to(env.mint, env.me.pubkey(), 12_345)  # tokens arrive outside memebot
    rep = await b.reconcile()
    assert not rep.ok and [(d.asset, d.diff) for d in rep.differences] == [(str(env.mint), 12_345)]
    assert b.halted and "diff +12345" in b.halted
    with pytest.raises(TradingHalted):
        await b.buy(str(env.mint), SOL)
    b.acknowledge(rep)
    assert (await b.reconcile()).ok and b.halted is None
    assert b.ledger.balances()[str(env.mint)] == env.tokens()
    task = asyncio.create_task(b.reconcile_forever(0.05))  # periodic: a later outside change halts again
    env.chain.airdrop(env.me.pubkey(), 777)
    for _ in range(200):
        if b.halted:
            break
        await asyncio.sleep(0.05)
    task.cancel()
    assert b.halted and "SOL" in b.halted and "+777" in b.halted
    await b.aclose()


def test_key_file_readable_by_others_is_refused(tmp_path):
    kp = Keypair()
    f = tmp_path / "id.json"
    f.write_text(json.dumps(list(bytes(kp))))
    f.chmod(0o644)
    with pytest.raises(WalletKeyError, match="0644") as e:
        load_wallet(load_settings(env={"MEMEBOT_SOLANA_KEYPAIR_PATH": str(f)}))
    assert str(kp) not in str(e.value) and str(list(bytes(kp))[:8])[1:-1] not in str(e.value)


async def test_key_never_in_logs(env):
    import logging, structlog
    from memebot.obs import configure_logging

    rl = logging.getLogger()
    before, root, handlers = structlog.get_config(), rl.level, rl.handlers[:]
    buf = io.StringIO()
    configure_logging("DEBUG", "json", stream=buf)
    try:
        b = await env.broker()
        await b.buy(str(env.mint), SOL)
        await b.sell(str(env.mint), 10**6)
        b.log.info("debug_dump", broker=repr(b.wallet), settings=b.settings.solana.model_dump())
        await b.aclose()
    finally:
        structlog.configure(**before)
        rl.setLevel(root)
        rl.handlers[:] = handlers  # as the other tests found it
    text = buf.getvalue()
    assert "order_filled" in text and env.secret not in text and str(list(bytes(env.me))) not in text


def test_cli_guard_dry_run_wallet_balance_and_key_file(tmp_path, memebot, market, shared):
    from _marketdata import ds_token_pairs

    r = memebot("live", "buy", "So11111111111111111111111111111111111111112", "--sol", "0.1")
    assert (
        r.returncode == 2
        and r.stderr.strip().startswith("error: live trading is off")
        and len(r.stderr.strip().splitlines()) == 1
    )
    e = Env(tmp_path)
    try:
        key = tmp_path / "id.json"
        key.write_text(json.dumps(list(bytes(e.me))))
        key.chmod(0o600)
        env = {
            f"MEMEBOT_{k.replace('.', '_').upper()}": v for k, v in {**e.srv.endpoints(), **market.settings()}.items()
        }
        env.update(
            {
                "MEMEBOT_SOLANA_KEYPAIR_PATH": str(key),
                "MEMEBOT_RISK_SAFETY_ALLOW_MINT_AUTHORITY": "true",
                "MEMEBOT_MONITORING_LOGGING_LEVEL": "DEBUG",
            }
        )
        r = memebot("live", "buy", str(e.mint), "--sol", "0.5", "--yes-i-mean-live", env=env)
        assert r.returncode == 2 and "live_trading_enabled" in r.stderr  # settings still off
        env.update({"MEMEBOT_LIVE_LIVE_TRADING_ENABLED": "true", "MEMEBOT_LIVE_PAPER_TRADING_MODE": "false"})
        buy = [
            "live",
            "buy",
            str(e.mint),
            "--sol",
            "0.5",
            "--yes-i-mean-live",
            "--allow-cosigner",
            e.jup.cosigners[0],
            "--json",
        ]
        outs = [memebot(*buy, env=env)]
        assert outs[0].returncode == 2 and "trading halted" in outs[0].stderr  # opening balance not acknowledged
        outs.append(memebot("live", "reconcile", "--acknowledge", "--yes-i-mean-live", env=env, check=True))
        outs.append(memebot(*buy, env=env))  # no market source knows the pool
        err = outs[-1].stderr.strip().splitlines()[-1]
        assert outs[-1].returncode != 0 and err.startswith(
            f"error: token safety: {e.mint}: pool liquidity and age unknown ("
        )
        assert "unknown liquidity is not safe" in err and e.srv.calls.get("jupiter.quote", 0) == 0 and e.tokens() == 0
        market.answers[("dexscreener", str(e.mint))] = ds_token_pairs(shared, str(e.mint))  # a deep pool, months old
        outs.append(memebot(*buy, env=env, check=True))
        got = json.loads(outs[-1].stdout.strip().splitlines()[-1])
        assert got["status"] == "filled" and got["signature"] and e.tokens() > 0

        # every order passes the risk engine: USD limits on SOL amounts (SOL at 150 USD), the kill switch, no SOL price
        def refused(*args):
            r = memebot(*args, env=env)
            outs.append(r)
            assert r.returncode == 1, (r.stdout, r.stderr)
            return json.loads(r.stdout.strip().splitlines()[-1])

        big = refused(*buy[:3], "--sol", "2", *buy[5:])  # 2 SOL = 300 USD > max_order_usd 250
        assert big["status"] == "rejected" and "max_order" in big["reason"] and "300.00" in big["reason"]
        memebot("kill", "--reason", "test kill", "--no-flatten", env=env, check=True)
        assert "halted" in refused(*buy)["reason"]
        memebot("resume", "--confirm", env=env, check=True)
        e.srv.unpriced = True  # the price API knows no SOL price
        assert "unknown_price" in refused(*buy)["reason"]
        tokens = e.tokens()
        sell = memebot("live", "sell", str(e.mint), "--amount", "all", *buy[5:], env=env, check=True)
        outs.append(sell)
        assert (
            json.loads(sell.stdout.strip().splitlines()[-1])["status"] == "filled" and e.tokens() == 0 < tokens
        )  # exits pass
        e.srv.unpriced = False
        outs.append(memebot(*buy, env=env, check=True))
        outs.append(memebot("wallet", "balance", "--json", env=env, check=True))
        bal = json.loads(outs[-1].stdout)
        assert bal["sol_lamports"] == e.sol() and [
            int(t["amount"]) for t in bal["tokens"] if t["mint"] == str(e.mint)
        ] == [e.tokens()]
        outs.append(memebot("live", "reconcile", "--yes-i-mean-live", "--json", env=env, check=True))
        assert json.loads(outs[-1].stdout)["ok"]
        for o in outs:
            assert e.secret not in o.stdout + o.stderr and str(list(bytes(e.me)))[1:40] not in o.stdout + o.stderr
        key.chmod(0o644)
        r = memebot("wallet", "balance", env=env)
        assert (
            r.returncode == 2
            and "0644" in r.stderr
            and "chmod 600" in r.stderr
            and len(r.stderr.strip().splitlines()) == 1
        )
    finally:
        e.close()


async def test_transaction_failing_on_chain_books_its_fee(env):
    from solders.system_program import transfer, TransferParams

    b = await env.broker()
    sink, drained = Keypair().pubkey(), []

    def drain(params):  # after simulation, the wallet's SOL leaves (outside memebot)
        if not drained:
            drained.append(env.sol() - SOL // 100)
            env.chain._send_now(
                [transfer(TransferParams(from_pubkey=env.me.pubkey(), to_pubkey=sink, lamports=drained[0]))],
                [env.chain.faucet, env.me],
            )

    env.srv.hooks["sendTransaction"] = drain
    o = await b.buy(str(env.mint), SOL // 2)
    assert o.status is OrderStatus.FAILED and "failed on chain" in o.reason and env.tokens() == 0
    fee = env.chain.history[b.ledger.intents(o.client_id)[0].signature].meta["fee"]
    moves = b.ledger._q("SELECT delta FROM ledger_moves WHERE kind='fee'")
    assert [int(m[0]) for m in moves] == [-fee] and fee > 0 and not b.ledger.fills()
    rep = await b.reconcile()  # only the outside transfer differs
    assert [(d.asset, d.diff) for d in rep.differences] == [("SOL", -drained[0])] and b.halted
    await b.aclose()


# ---------------------------------------------------------------- pool liquidity and age from the market-data sources


@pytest.fixture
def market():
    from _marketdata import MarketServer

    m = MarketServer()
    yield m
    m.stop()


def _market_checker(b, env, market, **risk):
    from memebot.risk.safety import market_pool_info

    s = load_settings(
        env={},
        overrides={
            **market.settings(),
            "risk.safety_allow_mint_authority": "true",
            **{f"risk.{k}": str(v) for k, v in risk.items()},
        },
    )
    return TokenSafetyChecker(b.rpc, s.risk, pool_info=market_pool_info(s), exclude_owners=env.jup.cosigners)


@pytest.mark.parametrize("case", ["deep_old", "thin", "young", "dexscreener_down", "all_down"])
async def test_pool_liquidity_and_age_gate_buys(env, market, shared, case):
    from _marketdata import ds_token_pairs, gt_token_pools
    from memebot.data.sources import close_http

    mint = str(env.mint)
    now_ms = int(time.time() * 1000)
    market.answers[("dexscreener", mint)] = {
        "deep_old": ds_token_pairs(shared, mint),
        "thin": ds_token_pairs(shared, mint, liquidity_usd=1500.0),
        "young": ds_token_pairs(shared, mint, created_ms=now_ms - 60_000),
        "dexscreener_down": 503,
        "all_down": 503,
    }[case]
    market.answers[("geckoterminal", mint)] = (
        500
        if case == "all_down"
        else gt_token_pools(shared, mint, [("GtPool", SOL_MINT, "75000.25", "2024-08-23T00:00:00Z")])
    )
    b = await env.broker()
    b.safety = _market_checker(b, env, market)
    try:
        if case in ("deep_old", "dexscreener_down"):
            o = await b.buy(mint, SOL // 10)
            assert o.status is OrderStatus.FILLED, o.reason
            v = b.safety.verdict(mint)
            assert v.ok and v.facts["pool_age_s"] > 86_400 * 365
            if case == "deep_old":
                assert v.facts["liquidity_usd"] == 98992.13 and v.facts["pool_source"] == "dexscreener"
            else:  # DexScreener 5xx: retried, then GeckoTerminal serves
                assert (
                    v.facts["liquidity_usd"] == 75000.25
                    and v.facts["pool"] == "GtPool"
                    and v.facts["pool_source"] == "geckoterminal"
                )
                assert market.hits["dexscreener"] == 3 and market.hits["geckoterminal"] == 1
        else:
            want = {
                "thin": r"pool liquidity \$1,500 < \$10,000",
                "young": r"pool is \d+ s old < 300 s",
                "all_down": (
                    r"pool liquidity and age unknown \(dexscreener: .*HTTP 503.*geckoterminal: .*HTTP 500.*unknown"
                    r" liquidity is not safe"
                ),
            }[case]
            with pytest.raises(SwapRejected, match=want):
                await b.buy(mint, SOL // 10)
            assert not b.ledger.orders and env.srv.calls.get("jupiter.quote", 0) == 0 and env.tokens() == 0
            if case == "all_down":
                assert market.hits == {"dexscreener": 3, "geckoterminal": 3}
    finally:
        await close_http()
        await b.aclose()


async def test_pool_thresholds_come_from_risk_settings(env, market, shared):
    from _marketdata import ds_token_pairs
    from memebot.data.sources import close_http

    mint = str(env.mint)
    market.answers[("dexscreener", mint)] = ds_token_pairs(shared, mint)  # $98,992, created Aug 2024
    b = await env.broker()
    try:
        strict = _market_checker(b, env, market, min_pool_liquidity_usd=250_000, safety_min_pool_age_s=10**10)
        v = await strict.check(mint)
        pool = [r for r in v.reasons if "pool" in r]
        assert not v.ok and len(pool) == 2 and pool[0] == "pool liquidity $98,992 < $250,000"
        assert (
            __import__("re").fullmatch(r"pool is \d+ s old < 10000000000 s", pool[1])
            and v.facts["pool_age_s"] > 86_400 * 365
        )
        assert (await _market_checker(b, env, market).check(mint)).ok
    finally:
        await close_http()
        await b.aclose()


async def test_testchain_lists_its_pools_for_dry_runs(env):
    from memebot.risk.safety import market_pool_info
    from memebot.data.sources import close_http

    b = await env.broker()
    try:

        def checker(**over):
            s = load_settings(
                env={}, overrides={**env.srv.endpoints(), "risk.safety_allow_mint_authority": "true", **over}
            )
            return TokenSafetyChecker(b.rpc, s.risk, pool_info=market_pool_info(s), exclude_owners=env.jup.cosigners)

        young = await checker().check(str(env.mint))  # the stand-in pool was seeded a moment ago
        assert not young.ok and len(young.reasons) == 1 and " s old < 300 s" in young.reasons[0]
        assert young.facts["liquidity_usd"] == 2 * 100 * 150.0 and young.facts["pool_dex"] == "memebot-testchain"
        assert (await checker(**{"risk.safety_min_pool_age_s": "0"}).check(str(env.mint))).ok
        assert env.srv.calls["dexscreener.token_pairs"] == 2
    finally:
        await close_http()
        await b.aclose()


class RoundTrip(Strategy):
    "Test strategy: spend 0.5 SOL on the token at the 2nd bar, sell it all at the 5th."

    name = "test_live_round_trip"

    def on_start(self, ctx):
        self.n = 0

    def on_bar(self, ctx, bars):
        self.n += 1
        for sym in bars.symbols:
            if self.n == 2:
                ctx.buy(sym, notional=0.5, tag="entry")
            if self.n == 5:
                ctx.close(sym, tag="exit")


async def test_strategy_trades_live_on_the_trading_node(tmp_path):
    """The paper node's engine, strategy and risk chain with the Solana broker as venue: Jupiter prices (SOL per token)
    -> 1s bars -> strategy -> risk -> swap on the test chain -> fill booked from the chain -> ledger."""
    e = Env(tmp_path, block_time_s=0.1)
    try:
        b = await e.broker()
        risk = RiskEngine(e.settings.risk, account_usd=150.0)
        feed = BarFeed(
            JupiterPriceFeed(
                [str(e.mint)], poll_s=0.1, quote_mint=SOL_MINT, url=e.srv.endpoints()["endpoints.jupiter"]
            ),
            ["1s"],
        )
        vb = VenueBroker(b)
        sol0, reserve = e.sol() / SOL, 0.05
        node = TradingNode(
            RoundTrip(),
            feed,
            vb,
            b.ledger,
            risk=risk,
            clock=WallClock(),
            cash=sol0 - reserve,
            run_id="live",
            settings=e.settings,
            heartbeat_s=0.5,
        )
        vb.marks = node.engine.portfolio.marks

        async def stop_when_flat():
            while not (len(node.engine.fills) >= 2 and not node.engine.portfolio.orders):
                await asyncio.sleep(0.05)
            node.stop("round trip done")

        watcher = asyncio.create_task(stop_when_flat())
        res = await asyncio.wait_for(node.run(handle_signals=False), 60)
        watcher.cancel()
        assert [f.side.value for f in res.fills] == ["buy", "sell"]
        assert e.tokens() == 0 and all(f.tx_sig for f in res.fills)  # real swaps, round trip closed
        assert [f.fill_id for f in b.ledger.fills()] == [f.fill_id for f in res.fills] and node.consistency() == []
        buy = res.fills[0]
        assert abs(buy.qty * buy.price - 0.5) < 0.5 * 0.01  # 0.5 SOL spent (the notional)
        assert abs(node.engine.portfolio.cash - (e.sol() / SOL - reserve)) < 0.01  # the node's cash is the wallet's SOL
        assert len(res.orders) == 2 and risk.open_orders() == 0
        assert (await b.reconcile()).ok
        await b.aclose()
    finally:
        e.close()


def _live_cli_env(e: Env, tmp_path) -> dict:
    "Environment for `memebot live ...` on the test chain: its endpoints, a 0600 key file, the round-trip strategy."
    (tmp_path / "strats").mkdir()
    (tmp_path / "strats" / "rt.py").write_text(ROUND_TRIP)
    key = tmp_path / "id.json"
    key.write_text(json.dumps(list(bytes(e.me))))
    key.chmod(0o600)
    env = {f"MEMEBOT_{k.replace('.', '_').upper()}": v for k, v in e.srv.endpoints().items()}
    env.update(
        {
            "MEMEBOT_SOLANA_KEYPAIR_PATH": str(key),
            "MEMEBOT_RISK_SAFETY_ALLOW_MINT_AUTHORITY": "true",
            "MEMEBOT_RISK_SAFETY_MIN_POOL_AGE_S": "0",
            "MEMEBOT_BACKTEST_STRATEGY_DIR": str(tmp_path / "strats"),
            "MEMEBOT_LIVE_LIVE_TRADING_ENABLED": "true",
            "MEMEBOT_LIVE_PAPER_TRADING_MODE": "false",
        }
    )
    return env


def test_cli_live_run_trades_a_strategy_and_reconciles(tmp_path, memebot, cli_env):
    e = Env(tmp_path, block_time_s=0.1)
    try:
        env = _live_cli_env(e, tmp_path)
        memebot("live", "reconcile", "--acknowledge", "--yes-i-mean-live", env=env, check=True)  # the opening balance
        run = [
            "live",
            "run",
            "--strategy",
            "cli_round_trip",
            "--mint",
            str(e.mint),
            "--tf",
            "1s",
            "--poll",
            "0.1",
            "--yes-i-mean-live",
            "--allow-cosigner",
            e.jup.cosigners[0],
            "--json",
            "-",
        ]
        r = memebot(*run, "--seconds", "9", env=env, check=True)
        doc = json.loads(r.stdout[r.stdout.index("{") :])
        assert [f["side"] for f in doc["fills"]] == ["buy", "sell"] and all(f["signature"] for f in doc["fills"])
        assert doc["consistency"] == [] and doc["reconcile"] == "ledger matches the chain" and e.tokens() == 0
        assert doc["status"]["risk"]["state"] == "active" and doc["status"]["open_orders"] == 0
        memebot("kill", "--reason", "stop the bot", "--no-flatten", env=env, check=True)  # a killed node sends nothing
        r = memebot(*run, "--seconds", "5", env=env, check=True)
        doc = json.loads(r.stdout[r.stdout.index("{") :])
        assert doc["fills"][2:] == [] and doc["status"]["risk"]["state"] == "halted" and doc["status"]["rejected"] >= 1
        assert e.secret not in r.stdout + r.stderr
        # periodic reconciliation: SOL arriving from outside while the node runs halts it before its next entry
        memebot("resume", "--confirm", env=env, check=True)
        full = {**cli_env, **env, "MEMEBOT_LIVE_RECONCILE_EVERY_S": "0.2"}
        p = subprocess.Popen(
            [str(Path(sys.executable).parent / "memebot"), *run, "--seconds", "6"],
            env=full,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            first = p.stdout.readline()  # printed once the node is up
            assert "Ctrl-C stops" in first, first + p.stderr.read()
            e.chain.airdrop(e.me.pubkey(), SOL)
            out, err = p.communicate(timeout=60)
        finally:
            p.kill()
        assert p.returncode == 0, err
        doc = json.loads(out[out.index("{") :])
        assert doc["status"]["risk"]["state"] == "halted" and "reconciliation" in doc["status"]["risk"]["reason"]
        assert doc["fills"][2:] == [] and "SOL: ledger" in doc["reconcile"]
    finally:
        e.close()


def test_cli_live_run_bad_inputs(tmp_path, memebot):
    on = {"MEMEBOT_LIVE_LIVE_TRADING_ENABLED": "true", "MEMEBOT_LIVE_PAPER_TRADING_MODE": "false"}
    base = ["live", "run", "--yes-i-mean-live"]
    for args, says in [
        (["--strategy", "ema_cross", "--mint", "not-a-mint"], "--mint"),
        (["--strategy", "ema_cross", "--mint", SOL_MINT], "--mint"),
        (["--strategy", "no_such", "--mint", str(Keypair().pubkey())], "unknown strategy"),
        (["--strategy", "ema_cross", "--mint", str(Keypair().pubkey()), "--tf", "7x"], "7x"),
        (["--strategy", "ema_cross", "--mint", str(Keypair().pubkey()), "--reserve-sol", "-1"], "--reserve-sol"),
        (["--strategy", "ema_cross", "--param", "fast=abc", "--mint", str(Keypair().pubkey())], "fast"),
    ]:
        r = memebot(*base, *args, env=on)
        err = r.stderr.strip()
        assert r.returncode == 2 and err.startswith("error:") and says in err and len(err.splitlines()) == 1, (
            args,
            r.stderr,
        )
    r = memebot("live", "run", "--strategy", "ema_cross", "--mint", str(Keypair().pubkey()))  # the guard comes first
    assert r.returncode == 2 and "live trading is off" in r.stderr


def test_restore_drill_on_the_test_chain(tmp_path, memebot, cli_env):
    """Disaster recovery on the chain: a backup after a first round trip, a second round trip, the ledger folder lost,
    the backup restored. Reconciliation names exactly the second round trip's transactions as unknown (none lost in
    silence), the operator acknowledges, and the node trades on without resending a restored order."""
    import shutil

    e = Env(tmp_path, block_time_s=0.1)
    try:
        env = _live_cli_env(e, tmp_path)
        run = ["live", "run", "--strategy", "cli_round_trip", "--mint", str(e.mint), "--tf", "1s", "--poll", "0.1",
               "--yes-i-mean-live", "--allow-cosigner", e.jup.cosigners[0], "--json", "-"]  # fmt: skip
        run += ["--seconds", "9"]

        def round_trip():
            r = memebot(*run, env=env, check=True)
            return json.loads(r.stdout[r.stdout.index("{") :])

        memebot("live", "reconcile", "--acknowledge", "--yes-i-mean-live", env=env, check=True)
        first = [f["signature"] for f in round_trip()["fills"]]
        assert len(first) == 2
        made = memebot("backup", "create", "--no-postgres", "--json", env=env, check=True)
        archive = json.loads(made.stdout)["path"]
        d2 = round_trip()
        second = [f["signature"] for f in d2["fills"]][2:]
        assert len(second) == 2 and e.tokens() == 0, json.dumps(d2)[:3000]

        shutil.rmtree(cli_env["MEMEBOT_STORE_LEDGER_DIR"])  # the disaster
        memebot("backup", "restore", archive, "--yes", "--no-postgres", env=env, check=True)
        r = memebot("live", "reconcile", "--yes-i-mean-live", "--json", env=env)
        rep = json.loads(r.stdout)
        assert r.returncode == 1 and not rep["ok"]  # the restored ledger is behind the chain, and says so
        assert set(second) <= set(rep["unknown_signatures"]) and not set(first) & set(rep["unknown_signatures"])
        memebot("live", "reconcile", "--acknowledge", "--yes-i-mean-live", env=env, check=True)
        doc = round_trip()
        sigs = [f["signature"] for f in doc["fills"]]
        assert sigs[:2] == first and len(sigs) == 4 and not set(sigs[2:]) & set(first + second)  # nothing resent
        assert doc["reconcile"] == "ledger matches the chain" and e.tokens() == 0
    finally:
        e.close()


async def test_a_bridge_deposit_that_landed_during_a_crash_is_booked_at_restart(env):
    "A bridge deposit written ahead and landed, the process gone before it was booked: the next start books what left"
    " the wallet from the transaction itself, and the ledger matches the chain without an acknowledgement."
    import base64
    from solders.message import MessageV0
    from memebot.exec.ledger import TxIntent
    from memebot.testing import _leg

    b = await env.broker()
    await b.buy(str(env.mint), SOL)
    held = env.tokens()
    assert held > 0 and (await b.reconcile()).ok
    c, escrow = env.chain, Keypair().pubkey()
    prog = c.token_program_of(env.mint)
    move = _leg(prog, ata_address(env.me.pubkey(), env.mint), env.mint, c.ata(escrow, env.mint), env.me.pubkey(),
                held // 4, c.decimals(env.mint))  # fmt: skip
    bh, lvbh = c.blockhash()
    tx = VersionedTransaction(MessageV0.try_compile(env.me.pubkey(), [move], [], bh), [env.me])
    intent = TxIntent(str(tx.signatures[0]), "bridge-crash-1", lvbh, base64.b64encode(bytes(tx)).decode(), "signed", 0,
                      wallet=b.ledger.wallet)  # fmt: skip
    b.ledger.record_intent(intent)  # what bridge_out writes ahead
    await b._send(intent)
    assert await b.land(intent) == "confirmed"  # ... and the process ends here, before booking
    await b.aclose()
    again = await env.broker(ack=False)  # start(): recovery, then reconciliation
    assert env.tokens() == held - held // 4
    assert again.ledger.balances()[str(env.mint)] == env.tokens() and (await again.reconcile()).ok
    await again.aclose()
