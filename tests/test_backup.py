"""Backup and disaster recovery: a backup taken while a paper node writes restores consistently (the node serves its
ledger's snapshot between two events); after a crash and the loss of the data folder, the restored ledger resumes to
the same orders as a run that was never interrupted (none twice, none lost); PostgreSQL round-trips through
pg_dump/pg_restore; bad archives and running nodes are refused."""

import json, re, shutil, signal, subprocess, sys, tarfile
from pathlib import Path

import pytest, sqlalchemy as sa

EXE = Path(sys.executable).parent / "memebot"


def _cli(env, *args, check=True, timeout=300):
    r = subprocess.run([EXE, *map(str, args)], env=env, capture_output=True, text=True, timeout=timeout)
    if check:
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return r


def _orders(ledger: Path) -> list[tuple]:
    import duckdb

    with duckdb.connect(str(ledger), read_only=True) as c:
        rows = c.execute("SELECT client_id, symbol, side, round(qty, 6), status FROM orders ORDER BY client_id")
        return rows.fetchall()


def _wait_events(node, n: int) -> None:
    "Read the node's own status lines until one reports at least `n` events (its word, not a timer)."
    for line in node.stdout:
        m = re.search(r" events=(\d+) ", line)
        if m and int(m.group(1)) >= n:
            return
    pytest.fail(f"the node ended before it reported {n} events")


SPEC = ["--strategy", "ema_cross", "--param", "fast=3", "--param", "slow=8", "--tf", "1m", "--feed", "sim",
        "--minutes", "300", "--no-dashboard"]  # fmt: skip


def test_backup_during_a_run_then_crash_loss_restore_and_resume(tmp_path, cli_env):
    """The drill: a node runs; a backup is taken (its ledger snapshot served by the node); the node is killed and the
    data folder destroyed; the backup is verified and restored; the run resumes and ends with exactly the orders of
    an uninterrupted run of the same market."""
    env = dict(cli_env, MEMEBOT_LIVE_HEARTBEAT_SECONDS="0.2")
    runs = Path(env["MEMEBOT_STORE_LEDGER_DIR"])
    ref_env = dict(env, MEMEBOT_STORE_LEDGER_DIR=str(tmp_path / "ref"))
    _cli(ref_env, "paper", *SPEC, "--run-id", "drill", "--speed", "0")  # the same market, never interrupted
    want = _orders(tmp_path / "ref" / "drill.duckdb")
    assert len(want) >= 3, want

    log = open(tmp_path / "node.log", "w")
    node = subprocess.Popen([EXE, "paper", *SPEC, "--run-id", "drill", "--speed", "120"], env=env,
                            stdout=subprocess.PIPE, stderr=log, text=True)  # fmt: skip
    try:
        _wait_events(node, 40)  # some bars in: the ledger is being written
        out = json.loads(_cli(env, "backup", "create", "--no-postgres", "--out", tmp_path / "bk", "--json").stdout)
        assert node.poll() is None  # the node kept running through the backup
        node.send_signal(signal.SIGKILL)  # the crash
        node.wait(30)
    finally:
        if node.poll() is None:
            node.kill()
        log.close()
    archive = Path(out["path"])
    with tarfile.open(archive) as tar:
        man = json.load(tar.extractfile(next(m for m in tar.getmembers() if m.name.endswith("manifest.json"))))
    ledger_part = next(p for p in man["parts"] if p["name"] == "ledgers/drill.duckdb")
    assert ledger_part["how"] == "snapshot by the running process"
    snap_orders = ledger_part["tables"]["orders"]
    assert 0 < snap_orders <= len(want)

    shutil.rmtree(runs)  # the disaster: the data folder is gone
    assert json.loads(_cli(env, "backup", "verify", archive, "--json").stdout)[0]["ok"]
    r = _cli(env, "backup", "restore", archive, "--no-postgres", check=False)
    assert r.returncode == 2 and "--yes" in r.stderr  # a usage error, nothing touched
    _cli(env, "backup", "restore", archive, "--yes", "--no-postgres")
    assert len(_orders(runs / "drill.duckdb")) == snap_orders
    _cli(env, "paper", "--run-id", "drill", "--resume", "--speed", "0", "--no-dashboard")
    assert _orders(runs / "drill.duckdb") == want  # none twice, none lost


def test_backup_refuses_bad_archives_and_running_nodes(tmp_path, cli_env):
    "A truncated archive fails verify (exit 1, nothing restored); a restore while a node holds its ledger is refused."
    env = dict(cli_env, MEMEBOT_LIVE_HEARTBEAT_SECONDS="0.2")
    _cli(env, "paper", *SPEC, "--run-id", "r1", "--speed", "0", "--minutes", "60")
    path = Path(json.loads(_cli(env, "backup", "create", "--no-postgres", "--json").stdout)["path"])
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(path.read_bytes()[:-200])
    r = _cli(env, "backup", "verify", bad, check=False)
    assert r.returncode == 1 and "unreadable archive" in r.stderr
    node = subprocess.Popen([EXE, "paper", *SPEC, "--run-id", "r1", "--resume", "--speed", "1"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)  # fmt: skip
    try:
        _wait_events(node, 1)  # up and holding its ledger
        r = _cli(env, "backup", "restore", path, "--yes", "--force", "--no-postgres", check=False)
        assert r.returncode == 1 and "open by a running process" in r.stderr, r.stderr
    finally:
        node.kill()
        node.wait(30)


def test_postgres_round_trip(tmp_path, cli_env):
    "The service database goes into the archive with pg_dump and comes back with pg_restore over later changes."
    from memebot.db import migrate, scratch_database, db_url

    if shutil.which("pg_dump") is None:
        pytest.fail("pg_dump is required (PostgreSQL's client, on every machine)")
    with scratch_database() as url:
        migrate(url)
        eng = sa.create_engine(db_url(url), poolclass=sa.pool.NullPool)
        cols = "username, password_hash, role, disabled, created_at"
        add = sa.text(f"INSERT INTO users({cols}) VALUES (:u, 'x', 'viewer', false, now())")
        with eng.begin() as c:
            c.execute(add, {"u": "kept"})
        env = dict(cli_env, MEMEBOT_ENTERPRISE_DATABASE_URL=url)
        path = json.loads(_cli(env, "backup", "create", "--require-postgres", "--json").stdout)["path"]
        with eng.begin() as c:
            c.execute(sa.text("DELETE FROM users"))
            c.execute(add, {"u": "later"})
        checks = json.loads(_cli(env, "backup", "verify", path, "--json").stdout)
        assert any(c["part"] == "postgres.dump" and c["ok"] for c in checks)
        from memebot.exec.ledger_pg import PgStore

        with PgStore(url, "a-running-node"):  # a node writing its ledger in this database: no restore under it
            busy = _cli(dict(env, MEMEBOT_ENTERPRISE_DATABASE_ENABLED="true"), "backup", "restore", path, "--yes",
                        "--force", check=False)  # fmt: skip
            assert busy.returncode != 0 and "writing their ledgers in PostgreSQL" in busy.stderr
        with eng.connect() as c:  # nothing was restored
            assert [r[0] for r in c.execute(sa.text("SELECT username FROM users ORDER BY id"))] == ["later"]
        _cli(env, "backup", "restore", path, "--yes", "--force")
        with eng.connect() as c:
            assert [r[0] for r in c.execute(sa.text("SELECT username FROM users ORDER BY id"))] == ["kept"]
        eng.dispose()


def test_live_restore_drill_on_the_test_chain(tmp_path, cli_env):
    """A live Solana account on LiteSVM: a buy, a backup, a second buy; then the data folder is lost and the backup
    restored. The restored ledger knows only the first buy, so reconciling halts on the second one's transaction;
    `live reconcile --adopt` books it from the chain as a filled order, and the account trades on with every order in
    its ledger once and the ledger equal to the chain."""
    from solders.keypair import Keypair
    from memebot.testing import LocalChain, LocalChainServer, LocalJupiter

    chain = LocalChain()
    jup = LocalJupiter(chain)
    mint = chain.create_mint(6)
    jup.create_pool(mint, 10**15, 100 * 10**9)
    kp = Keypair()
    chain.airdrop(kp.pubkey(), 10 * 10**9)
    runs = Path(cli_env["MEMEBOT_STORE_LEDGER_DIR"])
    with LocalChainServer(chain, jup) as srv:
        env = dict(cli_env, MEMEBOT_SOLANA_PRIVATE_KEY=str(kp), MEMEBOT_LIVE_LIVE_TRADING_ENABLED="true",
                   MEMEBOT_LIVE_PAPER_TRADING_MODE="false", MEMEBOT_RISK_SAFETY_ALLOW_MINT_AUTHORITY="true",
                   MEMEBOT_RISK_SAFETY_MIN_POOL_AGE_S="0", MEMEBOT_RISK_SAFETY_MAX_TOP10_HOLDER_PCT="100",
                   **{f"MEMEBOT_{k.replace('.', '_').upper()}": v for k, v in srv.endpoints().items()})  # fmt: skip
        live = ["--yes-i-mean-live", "--allow-cosigner", jup.cosigners[0], "--json"]
        _cli(env, "live", "reconcile", "--acknowledge", *live)  # the opening balance
        first = json.loads(_cli(env, "live", "buy", mint, "--sol", "0.5", *live).stdout.splitlines()[-1])
        out = json.loads(_cli(env, "backup", "create", "--no-postgres", "--out", tmp_path / "bk", "--json").stdout)
        second = json.loads(_cli(env, "live", "buy", mint, "--sol", "0.3", *live).stdout.splitlines()[-1])
        assert first["status"] == second["status"] == "filled"
        before = _orders(runs / "live.duckdb")
        shutil.rmtree(runs)  # the disaster
        _cli(env, "backup", "restore", out["path"], "--yes", "--no-postgres")
        assert len(_orders(runs / "live.duckdb")) == 1  # the backup's: the second buy is not in it
        r = _cli(env, "live", "reconcile", *live, check=False)
        rep = json.loads(r.stdout)
        assert r.returncode == 1 and rep["unknown_signatures"] == [second["signature"]] and not rep["ok_now"]
        sell = _cli(env, "live", "sell", mint, "--amount", "all", *live[:-1], check=False)
        assert sell.returncode != 0 and "trading halted" in sell.stderr  # no trading on a ledger behind the chain
        doc = json.loads(_cli(env, "live", "reconcile", "--adopt", *live).stdout)
        assert doc["ok_now"] and not doc["acknowledged"] and len(doc["adopted"]) == 1, doc
        (got,) = doc["adopted"]
        assert got["client_id"] == f"chain:{second['signature']}" and got["status"] == "filled"
        assert got["qty"] == pytest.approx(second["filled_qty"], rel=1e-9)
        after = _orders(runs / "live.duckdb")
        assert len(after) == len(before) == 2 and sorted(o[3] for o in after) == sorted(o[3] for o in before)
        again = json.loads(_cli(env, "live", "reconcile", "--adopt", *live).stdout)
        assert again["ok"] and again["adopted"] == []  # nothing booked twice
        sold = json.loads(_cli(env, "live", "sell", mint, "--amount", "all", *live).stdout.splitlines()[-1])
        assert sold["status"] == "filled" and json.loads(_cli(env, "live", "reconcile", *live).stdout)["ok"]


def test_live_restore_drill_on_an_evm_test_node(tmp_path, cli_env):
    """A live BSC account on a Hardhat node: a buy, a backup, a sell (with its router approval); then the data folder is
    lost and the backup restored. Reconciling names the account's two transactions since, found by nonce in the node's
    history; `live reconcile --adopt --chain bsc` books the sell as a filled order and the approval as its gas, and the
    ledger equals the chain again."""
    from eth_account import Account
    from memebot.testing.evm import HardhatNode, UniswapTestbed

    with HardhatNode(chain_id=56) as node:
        node.rpc("evm_setIntervalMining", 100)
        bed = UniswapTestbed(node).deploy()
        me = Account.create()
        node.rpc("hardhat_setBalance", me.address, hex(20 * 10**18))
        key = tmp_path / "evm.key"
        key.write_text(me.key.hex())
        key.chmod(0o600)
        env = dict(cli_env, **bed.settings_env("bsc"), MEMEBOT_EVM_KEYSTORE_PATH=str(key),
                   MEMEBOT_EVM_BSC_CONFIRMATIONS="1", MEMEBOT_LIVE_LIVE_TRADING_ENABLED="true",
                   MEMEBOT_LIVE_PAPER_TRADING_MODE="false", MEMEBOT_CROSSCHAIN_BSC_ENABLED="true",
                   MEMEBOT_RISK_MAX_ORDER_USD="1000")  # fmt: skip
        live, tok = ["--chain", "bsc", "--yes-i-mean-live", "--json"], bed.tokens["MEME"]
        runs = Path(cli_env["MEMEBOT_STORE_LEDGER_DIR"])
        _cli(env, "live", "reconcile", "--acknowledge", *live)  # the opening balance
        buy = json.loads(_cli(env, "live", "buy", tok, "--native", "0.5", *live).stdout.splitlines()[-1])
        out = json.loads(_cli(env, "backup", "create", "--no-postgres", "--out", tmp_path / "bk", "--json").stdout)
        sell = json.loads(_cli(env, "live", "sell", tok, "--amount", "all", *live).stdout.splitlines()[-1])
        assert buy["status"] == sell["status"] == "filled"
        shutil.rmtree(runs)  # the disaster
        _cli(env, "backup", "restore", out["path"], "--yes", "--no-postgres")
        r = _cli(env, "live", "reconcile", *live, check=False)
        rep = json.loads(r.stdout)
        assert r.returncode == 1 and len(rep["unknown_signatures"]) == 2 and not rep["ok_now"]  # approve, sell
        assert rep["unknown_signatures"][1] == sell["tx_hash"]
        doc = json.loads(_cli(env, "live", "reconcile", "--adopt", *live).stdout)
        assert doc["ok_now"] and not doc["acknowledged"], doc
        (got,) = doc["adopted"]
        assert (got["client_id"], got["side"], got["status"]) == (f"chain:{sell['tx_hash']}", "sell", "filled")
        assert got["qty"] == pytest.approx(sell["filled_qty"], rel=1e-12)
        again = json.loads(_cli(env, "live", "reconcile", "--adopt", *live).stdout)
        assert again["ok"] and again["adopted"] == []  # nothing booked twice
