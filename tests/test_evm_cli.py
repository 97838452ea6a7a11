"""`memebot live buy|sell|reconcile|revoke --chain ...`, `wallet balance --chain all` and `testchain serve --chain evm`
as a user runs them, against a Hardhat node with Uniswap V2 on 127.0.0.1 (no other address is ever configured)."""

import json, os, signal, subprocess, sys, socket, threading
from pathlib import Path

import pytest
from eth_account import Account

from memebot.testing.evm import HardhatNode, UniswapTestbed, FaultProxy

ROOT = Path(__file__).resolve().parent.parent


def _dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture(scope="module")
def bsc(tmp_path_factory):
    node = HardhatNode(chain_id=56).start()
    node.rpc("evm_setIntervalMining", 100)
    bed = UniswapTestbed(node).deploy()
    me = Account.create()
    node.rpc("hardhat_setBalance", me.address, hex(50 * 10**18))
    key = tmp_path_factory.mktemp("key") / "evm.key"
    key.write_text(me.key.hex())
    key.chmod(0o600)
    dead = _dead_url()
    env = {
        **bed.settings_env("bsc"),
        "MEMEBOT_EVM_KEYSTORE_PATH": str(key),
        "MEMEBOT_EVM_BSC_CONFIRMATIONS": "1",
        "MEMEBOT_LIVE_LIVE_TRADING_ENABLED": "true",
        "MEMEBOT_LIVE_PAPER_TRADING_MODE": "false",
        "MEMEBOT_CROSSCHAIN_BSC_ENABLED": "true",
        "MEMEBOT_RISK_MAX_ORDER_USD": "1000",
        "MEMEBOT_ENDPOINTS_ETHEREUM_RPC": dead,  # never a non-local address, even for `--chain all`
        "MEMEBOT_ENDPOINTS_POLYGON_RPC": dead,
        "MEMEBOT_ENDPOINTS_SOLANA_RPC": dead,
        "MEMEBOT_ENDPOINTS_JUPITER": dead,
        "MEMEBOT_DATA_HTTP_MAX_RETRIES": "0",
    }
    yield node, bed, me, env
    node.stop()


def test_live_buy_sell_reconcile_revoke_on_bsc(bsc, memebot):
    node, bed, me, env = bsc
    tok = bed.tokens["MEME"]
    r = memebot("live", "reconcile", "--chain", "bsc", "--yes-i-mean-live", "--json", env=env)
    assert r.returncode == 1 and json.loads(r.stdout)["differences"]  # a new ledger: the chain's coins are unknown
    r = memebot("live", "buy", tok, "--chain", "bsc", "--native", "0.5", "--yes-i-mean-live", env=env)
    assert r.returncode == 2 and "trading halted" in r.stderr and "--acknowledge" in r.stderr
    r = memebot("live", "reconcile", "--chain", "bsc", "--acknowledge", "--yes-i-mean-live", "--json", env=env)
    assert r.returncode == 0 and json.loads(r.stdout)["ok_now"], r.stdout + r.stderr
    r = memebot("live", "buy", tok, "--chain", "bsc", "--native", "0.5", "--yes-i-mean-live", "--json", env=env)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["status"] == "filled" and out["filled_qty"] > 0 and out["tx_hash"].startswith("0x")
    r = memebot("live", "sell", tok, "--chain", "bsc", "--amount", "all", "--yes-i-mean-live", env=env)
    assert r.returncode == 0 and "filled" in r.stdout, r.stdout + r.stderr
    r = memebot("live", "reconcile", "--chain", "bsc", "--yes-i-mean-live", "--json", env=env)
    assert r.returncode == 0 and json.loads(r.stdout)["ok"], r.stdout
    r = memebot("live", "revoke", tok, "--chain", "bsc", "--yes-i-mean-live", env=env)
    assert r.returncode == 0 and "revoked" in r.stdout, r.stderr
    allowance = (
        bed.c(
            tok,
            {
                "abi": [
                    {
                        "name": "allowance",
                        "type": "function",
                        "stateMutability": "view",
                        "inputs": [{"type": "address"}, {"type": "address"}],
                        "outputs": [{"type": "uint256"}],
                    }
                ]
            },
        )
        .functions.allowance(me.address, bed.w3.to_checksum_address(bed.router))
        .call()
    )
    assert allowance == 0
    r = memebot("wallet", "balance", "--chain", "all", "--json", env=env)
    assert r.returncode == 0, r.stderr
    rows = {x["chain"]: x for x in json.loads(r.stdout)["chains"]}
    assert rows["bsc"]["wallet"] == me.address.lower() and rows["bsc"]["usd"] > 0
    assert [t["token"] for t in rows["bsc"]["tokens"]] == [tok]  # the ledger knows it; none is left
    assert "error" in rows["ethereum"] and "error" in rows["solana"]
    r = memebot("wallet", "balance", "--chain", "all", env=env)
    assert r.returncode == 0 and "ethereum: not read" in r.stdout and "BNB ($" in r.stdout
    secret = me.key.hex().removeprefix("0x")
    r = memebot("live", "reconcile", "--chain", "bsc", "--yes-i-mean-live", "--debug", env=env)
    assert secret not in r.stdout + r.stderr  # the key is never printed or logged, even with --debug


def test_refusals_are_one_error_line(bsc, memebot):
    node, bed, me, env = bsc
    tok = bed.tokens["HONEY"]
    r = memebot("live", "reconcile", "--chain", "bsc", "--acknowledge", "--yes-i-mean-live", env=env)
    assert r.returncode == 0, r.stderr
    nonce = int(node.rpc("eth_getTransactionCount", me.address, "latest"), 16)
    cases = [
        (["live", "buy", tok, "--chain", "bsc", "--native", "0.1", "--yes-i-mean-live"], {}, "sell reverted"),
        (["live", "buy", tok, "--chain", "bsc", "--native", "0.1"], {}, "--yes-i-mean-live"),
        (
            ["live", "buy", tok, "--chain", "bsc", "--native", "0.1", "--yes-i-mean-live"],
            {"MEMEBOT_CROSSCHAIN_BSC_ENABLED": "false"},
            "[crosschain] bsc_enabled=true",
        ),
        (["live", "buy", tok, "--chain", "bsc", "--sol", "0.1", "--yes-i-mean-live"], {}, "--sol: on bsc"),
        (["live", "buy", "0x1234", "--chain", "bsc", "--native", "0.1", "--yes-i-mean-live"], {}, "not a 0x address"),
        (["live", "buy", tok, "--chain", "dogechain", "--native", "0.1", "--yes-i-mean-live"], {}, "--chain"),
        (
            ["live", "run", "--chain", "bsc", "--mint", tok, "--strategy", "ema_cross", "--yes-i-mean-live"],
            {},
            "--token",
        ),
        (
            ["live", "run", "--chain", "bsc", "--token", "0xbad", "--strategy", "ema_cross", "--yes-i-mean-live"],
            {},
            "not a 0x address",
        ),
        (["live", "run", "--chain", "bsc", "--token", tok, "--strategy", "ema_cross"], {}, "--yes-i-mean-live"),
    ]
    for args, extra, want in cases:
        r = memebot(*args, env={**env, **extra})
        assert r.returncode in (1, 2) and want in r.stderr, (args, r.stdout, r.stderr)
        errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]  # the rest are JSON log records
        assert len(errors) == 1 and want in errors[0] and "Traceback" not in r.stderr, r.stderr
    assert int(node.rpc("eth_getTransactionCount", me.address, "latest"), 16) == nonce  # nothing was sent


def test_testchain_serve_evm_prints_working_settings(cli_env, tmp_path):
    exe = Path(sys.executable).parent / "memebot"
    key = tmp_path / "k.key"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = subprocess.Popen(
        [
            str(exe),
            "testchain",
            "serve",
            "--chain",
            "evm",
            "--chain-id",
            "137",
            "--port",
            str(port),
            "--key-out",
            str(key),
            "--seconds",
            "120",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=cli_env,
        cwd=ROOT,
    )
    lines = []
    try:
        for line in p.stdout:
            lines.append(line.strip())
            if line.startswith("# MEME is plain"):
                break
    finally:
        p.terminate()
        p.wait(30)
    exports = dict(ln[len("export ") :].split("=", 1) for ln in lines if ln.startswith("export "))
    assert exports["MEMEBOT_ENDPOINTS_POLYGON_RPC"] == f"http://127.0.0.1:{port}"
    assert exports["MEMEBOT_EVM_POLYGON_CHAIN_ID"] == "137" and exports["MEMEBOT_EVM_KEYSTORE_PATH"] == str(key)
    assert oct(key.stat().st_mode & 0o777) == "0o600"


def test_killed_between_send_and_confirm_reconciles_on_restart_with_no_second_buy(bsc, memebot, cli_env):
    node, bed, me, env = bsc
    tok = bed.tokens["MEME"]
    assert memebot("live", "reconcile", "--chain", "bsc", "--acknowledge", "--yes-i-mean-live", env=env).returncode == 0
    nonce = int(node.rpc("eth_getTransactionCount", me.address, "latest"), 16)
    exe = Path(sys.executable).parent / "memebot"
    node.rpc("evm_setIntervalMining", 0)
    node.automine(False)
    try:
        with FaultProxy(node.url, rate=0.0) as proxy:  # the buy goes through it, so the test can see the send
            p = subprocess.Popen(
                [str(exe), "live", "buy", tok, "--chain", "bsc", "--native", "0.2", "--yes-i-mean-live"],
                env={**cli_env, **env, "MEMEBOT_ENDPOINTS_BSC_RPC": proxy.url},
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            # the signed swap reached the node; the process now waits for it to be mined
            assert proxy.wait_answered("eth_sendRawTransaction", 1, timeout=60), "the buy never reached the node"
            p.send_signal(signal.SIGKILL)
            p.wait(10)
        sent = node.pending()
    finally:
        node.automine(True)
        node.rpc("evm_setIntervalMining", 100)
    r = memebot("live", "reconcile", "--chain", "bsc", "--yes-i-mean-live", "--json", env=env)
    assert r.returncode == 0 and json.loads(r.stdout)["ok"], r.stdout + r.stderr  # recovered, booked, in balance
    assert int(node.rpc("eth_getTransactionCount", me.address, "latest"), 16) == nonce + 1  # one swap, no second
    assert node.rpc("eth_getTransactionReceipt", sent[0])["status"] == "0x1"
    from memebot.config import load_settings
    from memebot.exec.ledger import Ledger, ledger_store

    s = load_settings(env={**cli_env, **env})
    st = ledger_store("live", s, read_only=True)
    try:
        fills = Ledger(st, "live", "bsc", me.address.lower()).fills()
    finally:
        st.close()
    assert [f.fill_id for f in fills] == sent


ROUND_TRIP = """
from memebot.strategy import Strategy
class EvmRoundTrip(Strategy):
    name = "evm_round_trip"
    def on_start(self, ctx): self.n, self.closed = 0, False
    def on_bar(self, ctx, bars):
        self.n += 1
        for sym in bars.symbols:
            if self.n == 2: ctx.buy(sym, notional=0.3)
            elif ctx.position(sym) > 0 and not self.closed:  # the buy landed (confirmations take a few bars)
                ctx.close(sym)
                self.closed = True
"""


def test_live_run_trades_a_strategy_on_the_node_and_reconciles(bsc, memebot, tmp_path):
    node, bed, me, env = bsc
    (tmp_path / "strats").mkdir()
    (tmp_path / "strats" / "rt.py").write_text(ROUND_TRIP)
    own = Account.create()  # an account of its own: what other tests left in the shared one is not in this ledger
    node.rpc("hardhat_setBalance", own.address, hex(50 * 10**18))
    key = tmp_path / "own.key"
    key.write_text(own.key.hex())
    key.chmod(0o600)
    env = {**env, "MEMEBOT_BACKTEST_STRATEGY_DIR": str(tmp_path / "strats"), "MEMEBOT_EVM_KEYSTORE_PATH": str(key)}
    assert memebot("live", "reconcile", "--chain", "bsc", "--acknowledge", "--yes-i-mean-live", env=env).returncode == 0
    stop = threading.Event()

    def others_trade():  # someone else trades the pool: Swap and Sync logs, so bars form every second
        while not stop.wait(0.25):
            bed.trade_external("MEME", 0.01)

    t = threading.Thread(target=others_trade, daemon=True)
    t.start()
    try:
        r = memebot(
            "live",
            "run",
            "--chain",
            "bsc",
            "--token",
            bed.tokens["MEME"],
            "--strategy",
            "evm_round_trip",
            "--tf",
            "1s",
            "--seconds",
            "10",
            "--yes-i-mean-live",
            "--json",
            "-",
            env=env,
        )
    finally:
        stop.set()
        t.join(10)
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads(r.stdout[r.stdout.index("{") :])
    assert [f["side"] for f in doc["fills"]] == ["buy", "sell"] and all(f["tx_hash"] for f in doc["fills"]), (
        doc,
        r.stderr[-3000:],
    )
    assert doc["consistency"] == [] and doc["reconcile"] == "ledger matches the chain"
    assert doc["status"]["open_orders"] == 0 and doc["status"]["risk"]["state"] == "active"


def test_wallets_watch_copies_an_evm_wallet_with_real_swaps(bsc, memebot, cli_env, tmp_path):
    "`memebot wallets watch --chain bsc --wallet 0x... --yes-i-mean-live`: the watched wallet buys and sells MEME"
    " through the router; the node hears both from the blocks and copies them with its own swaps; the ledger matches."
    from memebot.testing.evm import contract, uniswap

    node, bed, me, env = bsc
    own, leader = Account.create(), Account.create()
    for a in (own, leader):
        node.rpc("hardhat_setBalance", a.address, hex(50 * 10**18))
    key = tmp_path / "own.key"
    key.write_text(own.key.hex())
    key.chmod(0o600)
    env = {**env, "MEMEBOT_EVM_KEYSTORE_PATH": str(key)}
    assert memebot("live", "reconcile", "--chain", "bsc", "--acknowledge", "--yes-i-mean-live", env=env).returncode == 0
    meme, w3 = bed.tokens["MEME"], bed.w3
    router = bed.c(bed.router, uniswap("UniswapV2Router02"))
    path = [w3.to_checksum_address(bed.weth), w3.to_checksum_address(meme)]
    tok = bed.c(meme, contract("TestToken"))
    args = ["wallets", "watch", "--chain", "bsc", "--wallet", leader.address, "--size", "0.01", "--seconds", "25",
            "--yes-i-mean-live", "--json", "-"]  # fmt: skip
    p = subprocess.Popen([str(Path(sys.executable).parent / "memebot"), *args], env={**cli_env, **env}, cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        first = p.stdout.readline()  # printed once the node is up
        assert "Ctrl-C stops" in first, first + p.stderr.read()
        bed._send(router.functions.swapExactETHForTokens(0, path, leader.address, 2**40), leader, value=10**18)
        got = tok.functions.balanceOf(leader.address).call()
        for _ in range(100):  # the copy lands in a block or two
            if tok.functions.balanceOf(own.address).call() > 0:
                break
            threading.Event().wait(0.1)
        bed._send(tok.functions.approve(router.address, got), leader)
        bed._send(router.functions.swapExactTokensForETH(got, 0, path[::-1], leader.address, 2**40), leader)
        out, err = p.communicate(timeout=120)
    finally:
        p.kill()
    assert p.returncode == 0, err[-3000:]
    doc = json.loads(out[out.index("{") :])
    assert [(f["side"], f["symbol"]) for f in doc["fills"]] == [("buy", meme.lower()), ("sell", meme.lower())], doc
    assert all(f["tx_hash"] for f in doc["fills"]) and doc["reconcile"] == "ledger matches the chain"
    assert tok.functions.balanceOf(own.address).call() == 0 and own.key.hex() not in out + err
    for extra, says in [([], "--yes-i-mean-live"), (["--yes-i-mean-live", "--wallet", "So1ana"], "--wallet")]:
        r = memebot("wallets", "watch", "--chain", "bsc", "--wallet", leader.address, *extra, env=env)
        assert r.returncode == 2 and says in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
