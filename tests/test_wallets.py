"""Wallet analytics (issue 19): a wallet's swaps from real RPC transactions, and PnL on a small hand-computed tape."""

import json
import numpy as np, pandas as pd
import pytest
from hypothesis import given, settings, strategies as st
from memebot.data.wallets import parse_rpc_transaction, swap_rows, wallet_positions, wallet_summary, WalletParseError


def _tape(rows):
    return pd.DataFrame(rows, columns=["mint", "ts", "side", "sol", "tokens", "trader"])


def test_pnl_on_a_hand_computed_tape():
    # A: w buys 10 @ 0.1 and 30 @ 0.2 (cost 7, avg 0.175), sells 20 for 5 -> realized 5 - 3.5 = 1.5;
    #    holds 20, last price 0.3 (x's trade) -> unrealized 20 * (0.3 - 0.175) = 2.5
    # B: w buys 100 for 1, sells 100 for 0.5 -> realized -0.5, nothing held; a loss
    t = _tape(
        [
            ("A", 1, "buy", 1.0, 10, "w"),
            ("A", 2, "buy", 6.0, 30, "w"),
            ("A", 3, "sell", 5.0, 20, "w"),
            ("A", 4, "buy", 3.0, 10, "x"),
            ("B", 5, "buy", 1.0, 100, "w"),
            ("B", 9, "sell", 0.5, 100, "w"),
        ]
    )
    p = wallet_positions(t)
    a, b = p.loc[("w", "A")], p.loc[("w", "B")]
    assert a.realized == pytest.approx(1.5) and a.unrealized == pytest.approx(2.5) and a.held == 20
    assert b.pnl == pytest.approx(-0.5) and b.hold_s == 4 and b.held == 0
    s = wallet_summary(p).loc["w"]
    assert s.pnl == pytest.approx(3.5) and s.win_rate == 0.5 and s.launches == 2 and s.deployed == pytest.approx(8.0)
    assert p.loc[("x", "A"), "entry_rank"] == 2 and a.entry_rank == 1


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from("AB"), st.sampled_from("buy sell".split()), st.floats(0.01, 10), st.floats(1, 1e3),
                  st.sampled_from(["u", "v", "w"])),
        min_size=1, max_size=40,
    )
)  # fmt: skip
def test_pnl_plus_unknown_cost_proceeds_equals_cash_flow_plus_holdings(rows):
    "Whatever the tape, counted PnL + proceeds of tokens of unknown cost = SOL received − spent + holdings at the mark."
    t = _tape([(m, i, side, sol, tok, w) for i, (m, side, sol, tok, w) in enumerate(rows)])
    p = wallet_positions(t)
    lhs = (p.pnl + p.unknown_cost_sol).to_numpy()
    rhs = (p.received + p.held_value - p.spent).to_numpy()
    assert np.allclose(lhs, rhs, atol=1e-9 * (1 + np.abs(rhs)))
    assert (p.unknown_cost_sol >= -1e-12).all() and (p.held >= 0).all()
    assert p.spent.sum() == pytest.approx(t.loc[t.side == "buy", "sol"].sum())


def test_rpc_transactions_become_a_swap_tape(shared):
    fx = shared / "fixtures/solana-wallets"
    buy = parse_rpc_transaction(
        json.loads((fx / "getTransaction_json_swap_SOL_to_SAHUR_result.THIRDPARTY.json").read_text())
    )
    full = json.loads((fx / "getTransaction_json_swap_TRUMP_to_JUP_jupiter_response.THIRDPARTY.json").read_text())
    route = parse_rpc_transaction(full)  # the whole JSON-RPC envelope is accepted too
    # the signer's SOL: lamports after - before (fee and rent included), as the transaction records
    r = json.loads((fx / "getTransaction_json_swap_SOL_to_SAHUR_result.THIRDPARTY.json").read_text())["meta"]
    assert buy["sol"] == pytest.approx((r["postBalances"][0] - r["preBalances"][0]) / 1e9)
    tape = swap_rows([buy, route])
    assert len(tape) == 1 and tape.side[0] == "buy" and tape.tokens[0] == pytest.approx(4036.960523)
    assert tape.sol[0] == pytest.approx(-buy["sol"]) and tape.trader[0] == buy["wallet"]
    assert wallet_positions(tape).spent.sum() == pytest.approx(-buy["sol"])
    bad = json.loads(json.dumps(full))
    bad["result"]["meta"]["err"] = {"InstructionError": [0, "Custom"]}
    with pytest.raises(WalletParseError, match="failed on chain"):
        parse_rpc_transaction(bad)


def test_cli_wallets_rank_show_eval(memebot, shared, cli_env):
    "The commands over the shared pump.fun tape imported into a fresh store; numbers equal the library's."
    from memebot.config import load_settings
    from memebot.commands.wallets import stored_tape
    from memebot.data.wallets import wallet_positions
    from memebot.models.wallets import wallet_score

    tape = shared / "data/pumpfun/swaps_first_300s.parquet"
    assert memebot("wallets", "rank").returncode != 0  # nothing stored yet: a clear error, not a traceback
    memebot("data", "import", tape, check=True)
    rank = json.loads(memebot("wallets", "rank", "--top", "5", "--json", check=True).stdout)
    stored = stored_tape(load_settings(overrides={"store.path": cli_env["MEMEBOT_STORE_PATH"]}))
    assert len(stored) == len(pd.read_parquet(tape))  # every swap of the tape is in the store
    sc = wallet_score(wallet_positions(stored))
    assert [r["trader"] for r in rank] == list(sc.index[:5])
    assert [r["score"] for r in rank] == pytest.approx(list(sc.iloc[:5]))
    w = rank[0]["trader"]
    show = json.loads(memebot("wallets", "show", w, "--json", check=True).stdout)
    assert sum(r["pnl"] for r in show) == pytest.approx(rank[0]["pnl"])
    ev = json.loads(memebot("wallets", "eval", "--k", "10,25", "--json", check=True).stdout)
    assert ev["early"] == 9 and ev["late"] == 9 and {r["k"] for r in ev["rows"]} == {10, 25}
    assert all(r["lo"] <= r["hi"] for r in ev["rows"])
    out = memebot("wallets", "eval", "--k", "10", check=True).stdout
    assert "precision@k out of time" in out and "highest past PnL" in out
    bad = memebot("wallets", "eval", "--k", "ten")
    assert bad.returncode == 2 and "--k" in bad.stderr
    nobody = memebot("wallets", "show", "NotAWallet111")
    assert nobody.returncode != 0 and "no stored swaps" in (nobody.stderr + nobody.stdout)


def test_copy_trading_applies_the_delay_and_out_of_time_split_never_leaks():
    from memebot.models.wallets import copy_trades, split_launches, evaluate_rankings, wallet_score

    # prices rise by one every second; the leader buys at t=0 and sells at t=10
    rows = [("M", s, "buy", 0.1 * (1 + s), 0.1, "x") for s in range(1, 20)]
    rows += [("M", 0, "buy", 0.1, 0.1, "lead"), ("M", 10, "sell", 1.1, 0.1, "lead")]
    t = pd.DataFrame(rows, columns=["mint", "ts", "side", "sol", "tokens", "trader"]).sort_values("ts", kind="stable")
    cp = copy_trades(t, ["lead"], delays=(0, 5, 10), fee_bps=0).set_index("delay")
    # a trade in second s sits at s + 0.5 (the leader's sell at 10.75, after x's 10.25); the copier takes the first
    # price strictly after the leader's time + d x 0.4 s: d=0 -> second 1 (2.0), d=5 -> 3 (4.0), d=10 -> 5 (6.0);
    # it leaves after 10.75 + d x 0.4 s: second 11 (12.0), 13 (14.0), 15 (16.0)
    assert cp["entry_px"].tolist() == pytest.approx([2.0, 4.0, 6.0]) and cp["exit_px"].tolist() == pytest.approx(
        [12, 14, 16]
    )
    assert cp["ret"].tolist() == pytest.approx([5.0, 2.5, 16 / 6 - 1])
    # the out-of-time split: every launch ranked is created before every launch judged
    launches = pd.DataFrame(
        [(m, 100 * i + k, 100 * i, "buy" if k % 2 == 0 else "sell", 1.0, 1.0, f"w{k % 3}")
         for i, m in enumerate("PQRSTU") for k in range(6)],
        columns=["mint", "ts", "created", "side", "sol", "tokens", "trader"],
    )  # fmt: skip
    early, late = split_launches(launches.sample(frac=1, random_state=0))
    created = launches.groupby("mint").created.min()
    assert created[early].max() < created[late].min() and set(early) | set(late) == set("PQRSTU")
    ev = evaluate_rankings(launches, {"score": wallet_score}, ks=(1,), n_boot=50)
    assert ev.attrs["early"] == 3 and ev.attrs["late"] == 3


def test_launch_score_is_judged_only_on_later_launches(shared):
    from memebot.models.launch import launch_dataset, evaluate_launch_models

    X, y, meta = launch_dataset(shared / "data/pumpfun/launch_cohorts.json", "B")
    assert meta.detect_ts.is_monotonic_increasing and not any(c.startswith(("o_", "t_")) for c in X.columns)
    table, preds = evaluate_launch_models(X, y, meta["day"], n_boot=200)
    n = table.attrs["train"]
    assert preds.index.min() == n and meta.detect_ts.iloc[:n].max() <= meta.detect_ts.iloc[n:].min()
    assert table.loc["base rate", "auc"] == 0.5 and (table.auc_lo <= table.auc + 1e-12).all()
    assert set(preds.columns) == {"base rate", "market cap only", "logreg", "gbm", "y"}


def test_wallets_watch_copies_a_simulated_wallet_on_paper(memebot, cli_env, tmp_path):
    "`wallets watch` runs copy_trade on a paper node: the watched wallet's buys are copied (through the risk engine)."
    from collections import Counter
    from memebot.core import Swap
    from memebot.data.sim import MarketSim

    sim = MarketSim(7, 10, 5, pool_updates=True)
    buys = Counter(ev.trader for ev in sim if isinstance(ev, Swap) and ev.side.value == "buy")
    lead = [w for w, _ in buys.most_common(3)]
    out = tmp_path / "watch.json"
    r = memebot("wallets", "watch", "--feed", "sim", "--minutes", "10", "--seed", "7", "--wallet", ",".join(lead),
                "--json", out, check=True)  # fmt: skip
    doc = json.loads(out.read_text())
    orders = doc["status"]["order_stats"]
    assert orders["submitted"] > 0 and doc["status"]["fills"] > 0, r.stdout
    assert {f["side"] for f in doc["fills"]} <= {"buy", "sell"} and doc["consistency"] == []
    bad = memebot("wallets", "watch", "--feed", "replay", "--wallet", lead[0])
    assert bad.returncode == 2 and "--feed" in bad.stderr


class _Loopback:
    "The loopback chain of the live copy tests: LiteSVM with a Jupiter stand-in, one pool, our key and two others."

    def __init__(self, tmp_path):
        import threading
        from solders.keypair import Keypair
        from memebot.testing import LocalChain, LocalJupiter

        self.chain = chain = LocalChain()
        self.jup = LocalJupiter(chain)
        self.mint = chain.create_mint(6)
        self.jup.create_pool(self.mint, 10**15, 1_000 * 10**9)
        self.me, self.smart, self.other = Keypair(), Keypair(), Keypair()
        for k in (self.me, self.smart, self.other):
            chain.airdrop(k.pubkey(), 10 * 10**9)
        self.changed = threading.Event()
        chain.on_change.append(self.changed.set)
        self.log_path, self.node = tmp_path / "node.log", None

    def swap(self, kp, a, b, amount):
        import base64
        from solders.message import to_bytes_versioned
        from solders.transaction import VersionedTransaction

        q = self.jup.quote({"inputMint": a, "outputMint": b, "amount": str(amount), "slippageBps": "100"})
        raw = self.jup.swap_tx({"quoteResponse": q, "userPublicKey": str(kp.pubkey())})["swapTransaction"]
        tx = VersionedTransaction.from_bytes(base64.b64decode(raw))
        signed = VersionedTransaction.populate(tx.message, [kp.sign_message(to_bytes_versioned(tx.message)),
                                                            *tx.signatures[1:]])  # fmt: skip
        assert self.chain.process(signed).err is None

    def held(self, kp) -> int:
        return self.chain.token_balance(self.chain.ata(kp.pubkey(), self.mint)) or 0

    def env(self, srv, cli_env, **extra) -> dict:
        return dict(cli_env, MEMEBOT_SOLANA_PRIVATE_KEY=str(self.me), MEMEBOT_LIVE_LIVE_TRADING_ENABLED="true",
                    MEMEBOT_LIVE_PAPER_TRADING_MODE="false", MEMEBOT_RISK_SAFETY_ALLOW_MINT_AUTHORITY="true",
                    MEMEBOT_RISK_SAFETY_MIN_POOL_AGE_S="0", MEMEBOT_RISK_SAFETY_MAX_TOP10_HOLDER_PCT="100",
                    **{f"MEMEBOT_{k.replace('.', '_').upper()}": v for k, v in srv.endpoints().items()},
                    **extra)  # fmt: skip

    def start(self, env, *args):
        "Start `memebot wallets watch ARGS` as the node; its log goes to node.log."
        import subprocess, sys
        from pathlib import Path

        self.log = open(self.log_path, "w")
        self.node = subprocess.Popen([Path(sys.executable).parent / "memebot", "wallets", "watch", *args], env=env,
                                     stdout=subprocess.DEVNULL, stderr=self.log, text=True)  # fmt: skip

    def until(self, cond, what, timeout=60.0):
        "Wait for a condition the node brings about (its subscription, its swap landing), checked as it changes."
        import time

        end = time.monotonic() + timeout
        while not cond():
            assert self.node.poll() is None, self.log_path.read_text()[-3000:]
            if time.monotonic() > end:
                self.node.kill()
                self.node.wait()
                pytest.fail(f"timed out waiting for {what}: {self.log_path.read_text()[-6000:]}")
            self.changed.wait(0.05)
            self.changed.clear()

    def stop(self) -> str:
        "Ctrl-C: the node stops, reconciles and writes its report; its log."
        try:
            self.node.send_signal(2)
            self.node.wait(timeout=120)
        finally:
            if self.node.poll() is None:
                self.node.kill()
            self.log.close()
        err = self.log_path.read_text()
        assert self.node.returncode == 0, err[-3000:]
        return err


def test_live_copy_trading_on_the_test_chain(tmp_path, cli_env):
    """`memebot wallets watch --yes-i-mean-live`: a watched wallet buys and then sells a token on the loopback chain
    (LiteSVM, Jupiter stand-in); the live node hears each of its transactions, reads the swap back from the chain and
    copies it with a real swap of its own (risk engine and token safety on the buy), and its ledger ends equal to the
    chain. Another wallet's trade is not copied."""
    import subprocess, sys
    from pathlib import Path
    from memebot.core import SOL_MINT
    from memebot.testing import LocalChainServer

    lb = _Loopback(tmp_path)
    me, smart, other, mint = lb.me, lb.smart, lb.other, lb.mint
    exe = Path(sys.executable).parent / "memebot"
    with LocalChainServer(lb.chain, lb.jup, block_time_s=0.2) as srv:
        env = lb.env(srv, cli_env)
        live = ["--yes-i-mean-live", "--allow-cosigner", lb.jup.cosigners[0]]
        off_env = {**env, "MEMEBOT_LIVE_LIVE_TRADING_ENABLED": "false"}
        off = subprocess.run([exe, "wallets", "watch", "--wallet", str(smart.pubkey()), "--yes-i-mean-live"],
                             env=off_env, capture_output=True, text=True)  # fmt: skip
        assert off.returncode == 2 and "live_trading_enabled" in off.stderr
        r = subprocess.run([exe, "live", "reconcile", "--acknowledge", *live], env=env, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr  # the opening balance
        out = tmp_path / "copy.json"
        lb.start(env, "--wallet", str(smart.pubkey()), "--size", "0.1", "--seconds", "120", "--json", out, *live)
        lb.until(lambda: any(w[2] == "logs" for w in list(srv._watch.values())), "the node's subscription")
        lb.swap(other, SOL_MINT, str(mint), 10**9)  # not watched: not copied
        lb.swap(smart, SOL_MINT, str(mint), 2 * 10**9)  # the smart wallet buys: copied
        lb.until(lambda: lb.held(me) > 0, "the copied buy")
        lb.swap(smart, str(mint), SOL_MINT, lb.held(smart))  # and sells: the copy is sold too
        lb.until(lambda: lb.held(me) == 0, "the copied sell")
        err = lb.stop()
        doc = json.loads(out.read_text())
        assert [f["side"] for f in doc["fills"]] == ["buy", "sell"] and all(f["signature"] for f in doc["fills"])
        assert doc["fills"][0]["qty"] == pytest.approx(doc["fills"][1]["qty"], rel=1e-9)
        assert doc["reconcile"] == "ledger matches the chain", doc["reconcile"]
        assert str(me) not in json.dumps(doc) + err  # the key never printed


def test_live_copy_with_a_launch_score_gate_hears_pump_fun_and_refuses_an_unheard_launch(tmp_path, cli_env):
    """`wallets watch --launch-model` live: the node loads the model, subscribes to pump.fun's logs beside the wallet's
    (to hear launches and their first minute), and does not copy a buy of a token whose launch it never heard: the
    copy is counted as `launch_score_unknown` and nothing is signed."""
    import subprocess, sys
    from pathlib import Path
    from memebot.core import SOL_MINT
    from memebot.data.onchain import PROGRAMS
    from memebot.testing import LocalChainServer, register_toy_launch_model

    lb = _Loopback(tmp_path)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    register_toy_launch_model(uri, "toy-launch")
    with LocalChainServer(lb.chain, lb.jup, block_time_s=0.2) as srv:
        env = lb.env(srv, cli_env, MEMEBOT_AI_TRACKING_URI=uri, MLFLOW_DISABLE_TELEMETRY="true")
        live = ["--yes-i-mean-live", "--allow-cosigner", lb.jup.cosigners[0]]
        exe = Path(sys.executable).parent / "memebot"
        r = subprocess.run([exe, "live", "reconcile", "--acknowledge", *live], env=env, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        out = tmp_path / "copy.json"
        lb.start(env, "--wallet", str(lb.smart.pubkey()), "--launch-model", "toy-launch", "--seconds", "120",
                 "--json", out, *live)  # fmt: skip
        heard = lambda: {str(w[1]) for w in list(srv._watch.values()) if w[2] == "logs"}  # noqa: E731
        lb.until(lambda: {str(lb.smart.pubkey()), PROGRAMS["pumpfun"]} <= heard(), "the wallet and pump.fun logs")
        lb.swap(lb.smart, SOL_MINT, str(lb.mint), 2 * 10**9)
        lb.until(lambda: "launch_score_unknown" in lb.log_path.read_text(), "the gate's verdict")
        lb.stop()
    doc = json.loads(out.read_text())
    assert doc["fills"] == [] and lb.held(lb.me) == 0
    assert doc["status"]["order_stats"]["skipped"] == {"launch_score_unknown": 1}, doc["status"]["order_stats"]
    assert doc["reconcile"] == "ledger matches the chain", doc["reconcile"]


def test_wallets_funders_read_from_the_chain_leave_a_farm_out_of_the_ranking(memebot, tmp_path):
    """`memebot wallets funders`: three wallets funded by one farm and one funded on its own, on the loopback chain
    (real System Program transfers in LiteSVM, read back by getSignaturesForAddress and getTransaction); the farm is a
    cluster of three, stored, and `wallets rank` leaves it out."""
    from solders.keypair import Keypair
    from solders.message import MessageV0
    from solders.system_program import TransferParams, transfer
    from solders.transaction import VersionedTransaction
    from memebot.testing import LocalChain, LocalChainServer

    chain = LocalChain()
    farm, solo, ws = Keypair(), Keypair(), [Keypair() for _ in range(4)]
    for k in (farm, solo):
        chain.airdrop(k.pubkey(), 10 * 10**9)

    def send(kp, to, lamports):
        ix = transfer(TransferParams(from_pubkey=kp.pubkey(), to_pubkey=to, lamports=lamports))
        msg = MessageV0.try_compile(kp.pubkey(), [ix], [], chain.blockhash()[0])
        assert chain.process(VersionedTransaction(msg, [kp])).err is None

    for w in ws[:3]:
        send(farm, w.pubkey(), 5 * 10**8)
    send(solo, ws[3].pubkey(), 5 * 10**8)
    send(farm, ws[3].pubkey(), 10**6)  # later dust from the farm does not make it the funder
    names = [str(w.pubkey()) for w in ws]
    rows = [(f"M{j}", "P", 1_780_000_000 + 100 * j, 1_780_000_000 + 100 * j + 2 + i, "buy", 1.0, 1e6, 1e-6, n, "X",
             f"b{i}{j}") for j in range(2) for i, n in enumerate(names)]  # fmt: skip
    rows += [(f"M{j}", "P", 1_780_000_000 + 100 * j, 1_780_000_000 + 100 * j + 30 + i, "sell", 1.5, 1e6, 1.5e-6, n,
              "X", f"s{i}{j}") for j in range(2) for i, n in enumerate(names)]  # fmt: skip
    cols = ["mint", "pool", "created", "ts", "side", "sol", "tokens", "price_sol", "trader", "src", "sig"]
    pd.DataFrame(rows, columns=cols).to_parquet(tmp_path / "tape.parquet")
    memebot("data", "import", tmp_path / "tape.parquet", check=True)
    before = json.loads(memebot("wallets", "rank", "--json", check=True).stdout)
    assert sorted(r["trader"] for r in before) == sorted(names)
    with LocalChainServer(chain) as srv:
        r = memebot("wallets", "funders", "--wallet", ",".join(names), "--json", "-",
                    env={"MEMEBOT_ENDPOINTS_SOLANA_RPC": srv.url}, check=True)  # fmt: skip
    found = {x["wallet"]: x for x in json.loads(r.stdout)}
    assert [found[n]["funder"] for n in names] == [str(farm.pubkey())] * 3 + [str(solo.pubkey())]
    assert [found[n]["cluster"] for n in names] == [3, 3, 3, 1] and found[names[0]]["sol"] == pytest.approx(0.5)
    after = json.loads(memebot("wallets", "rank", "--json", check=True).stdout)
    assert [r["trader"] for r in after] == [names[3]]  # the farm's three are left out
