"""The ledger on both of its backends: the same behaviour tests run against DuckDB and a migrated PostgreSQL database
(write-ahead, idempotent fills, restart, held orders, intents, the journal, reorgs, run records), a property test that
any sequence of orders and fills leaves both books equal, and what only PostgreSQL does (one writer per run, readers
while it writes, read-only sessions). Then `memebot paper` with `[enterprise] database_enabled`, as a user runs it."""

import json, os, threading
from pathlib import Path
import pytest
from hypothesis import given, settings as hsettings, strategies as hs, HealthCheck
from memebot.core import Chain, Fill, NS, Order, OrderStatus, OrderType, Side, SimClock
from memebot.data.store import Store, StoreError, StoreLockedError
from memebot.exec.ledger import Ledger, TxIntent, ledger_exists, ledger_runs, ledger_where
from memebot.exec.ledger_pg import PgStore
from memebot.live import load_run, save_run


@pytest.fixture(scope="module")
def pg():
    "A scratch database migrated to the head revision (ledger tables included)."
    from memebot.db import migrate, scratch_database

    try:
        cm = scratch_database()
        url = cm.__enter__()
    except Exception as e:  # every machine runs PostgreSQL; a missing one is a setup error, said plainly
        pytest.fail(f"the ledger's PostgreSQL tests need PostgreSQL on 127.0.0.1 (.ci/run starts it): {e}")
    migrate(url)
    yield url
    cm.__exit__(None, None, None)


_runs = iter(range(10**6))


@pytest.fixture(params=["duckdb", "postgres"])
def opener(request, tmp_path):
    "open(run_id) -> a fresh store for that run on the backend; the run id is unique per test."
    stores = []

    def open_(run_id, journal=False):
        if request.param == "duckdb":
            st = Store(tmp_path / f"{run_id}.duckdb")
        else:
            st = PgStore(request.getfixturevalue("pg"), run_id, journal_dir=tmp_path / "pg.journal")
        stores.append(st)
        return st

    open_.backend = request.param
    yield open_
    for st in stores:
        st.close()


def _rid(name):
    return f"{name}-{next(_runs)}-{os.getpid()}"


def _order(cid, side=Side.BUY, qty=100.0, price=0.01, ts=0, symbol="BONK"):
    return Order(symbol, side, qty, price=price, client_id=cid, ts=ts)


def _fill(led, o, qty, price, fid, fee=0.0):
    o.filled_qty += qty
    o.avg_fill_price = price
    if o.status is OrderStatus.NEW:
        o.transition(OrderStatus.SUBMITTED)
    if o.filled_qty >= o.qty:
        o.transition(OrderStatus.FILLED)
    f = Fill(o.client_id, led.clock.now_ns(), o.symbol, o.side, qty, price, fee, fill_id=fid)
    sign = 1 if o.side is Side.BUY else -1
    return led.record_fill(f, moves={"SOL": -sign * round(qty * price * 1e9), o.symbol: sign * round(qty * 1e5)},
                           order=o)  # fmt: skip


def test_write_ahead_idempotent_fills_and_restart(opener):
    run = _rid("wa")
    st = opener(run)
    clk = SimClock(1_700_000_000 * NS)
    led = Ledger(st, run, Chain.SOLANA, "W", clk)
    o = _order(f"{run}-c1", ts=clk.now_ns())
    assert led.record_order(o, params={"slippage_bps": 50}) and not led.record_order(o)
    assert _fill(led, o, 60.0, 0.01, f"{run}-f1", fee=0.001)
    clk.advance(1)
    assert _fill(led, o, 40.0, 0.02, f"{run}-f2")
    assert not led.record_fill(led.fills()[0])  # a fill booked twice counts once
    again = Ledger(st, run, Chain.SOLANA, "W", clk)  # a restart rebuilds the book from the store
    assert again.pnl() == led.pnl() and again.balances() == led.balances() == {
        "BONK": 10_000_000,
        "SOL": -1_400_000_000,
    }
    assert again.portfolio.positions["BONK"].qty == 100.0 and again.order(o.client_id).status is OrderStatus.FILLED
    assert again.order_params(o.client_id) == {"slippage_bps": 50} and again.open_orders() == []
    row = st.cursor().execute("SELECT qty, fees FROM positions WHERE run_id=? AND symbol='BONK'", [run]).fetchall()
    assert [tuple(r) for r in row] == [(100.0, 0.001)]
    with pytest.raises(Exception, match="record_order first"):
        led.update_order(_order(f"{run}-never"))


def test_held_orders_intents_and_moves(opener):
    run = _rid("held")
    st = opener(run)
    led = Ledger(st, run, Chain.BSC, "0xabc", SimClock(1_700_000_000 * NS))
    stop = Order("0xtok", Side.SELL, 5.0, OrderType.STOP, 1.5, client_id=f"{run}-s1", chain=Chain.BSC)
    led.record_held(stop, oco="g1")
    led.record_held(stop, oco="g1")  # idempotent
    assert [(o.client_id, o.type, g) for o, g in led.held()] == [(stop.client_id, OrderType.STOP, "g1")]
    led.release_held(stop.client_id)
    assert led.held() == []
    o = _order(f"{run}-c1", symbol="0xtok")
    it = TxIntent(f"0xsig{run}", o.client_id, 123, "AAAA", wallet="0xabc", chain="bsc")
    led.record_submission(o, it, params={"atoms": 10**24})
    with pytest.raises(Exception, match="already in the ledger"):
        led.record_submission(o, it)
    assert [i.signature for i in led.intents(pending=True)] == [it.signature]
    led.set_intent(it.signature, "confirmed", slot=99)
    assert led.intents(pending=True) == [] and led.intents(o.client_id)[0].slot == 99
    assert led.order_params(o.client_id) == {"atoms": 10**24}
    assert led.record_move(f"fee:{run}", "BNB", -(10**20), kind="fee") and not led.record_move(f"fee:{run}", "BNB", 1)
    assert led.record_move(f"dep:{run}", "BNB", 3 * 10**20, kind="deposit")  # wei amounts beyond 2^63
    assert led.balances() == {"BNB": 2 * 10**20}


def test_reorg_unbooks_a_fill(opener):
    run = _rid("reorg")
    st = opener(run)
    led = Ledger(st, run, Chain.BSC, "0xabc", SimClock(1_700_000_000 * NS))
    o = _order(f"{run}-c1", qty=5.0, price=2.0, symbol="0xtok")
    led.record_order(o)
    _fill(led, o, 5.0, 2.0, f"{run}-f1")
    assert led.unbook_fill(f"{run}-f1", order=o, note="orphaned") and not led.unbook_fill(f"{run}-f1")
    assert led.fills() == [] and led.balances().get("0xtok", 0) == 0 and o.status is OrderStatus.SUBMITTED
    rows = st.cursor().execute("SELECT count(*) FROM positions WHERE run_id=?", [run]).fetchone()[0]
    assert rows == 0 and Ledger(st, run, Chain.BSC, "0xabc").order(o.client_id).status is OrderStatus.SUBMITTED


def test_the_journal_is_replayed_after_a_crash(opener):
    run = _rid("jr")
    st = opener(run)
    led = Ledger(st, run, Chain.SOLANA, "W", SimClock(1_700_000_000 * NS))
    assert led.open_journal() is not None
    o = _order(f"{run}-j1")
    led.record_submission(o, TxIntent(f"sig-{run}", o.client_id, 10, "AA"))
    assert st.cursor().execute("SELECT count(*) FROM orders WHERE run_id=?", [run]).fetchone()[0] == 0
    st.close()  # the process dies with the record only in the journal
    st2 = opener(run)
    led2 = Ledger(st2, run, Chain.SOLANA, "W")
    led2.open_journal()  # replays it
    assert led2.order(o.client_id) is not None and [i.signature for i in led2.intents()] == [f"sig-{run}"]
    led2.close_journal()


def test_run_records(opener):
    run = _rid("rec")
    st = opener(run)
    save_run(st, run, "ema_cross", {"fast": 3}, {"feed": "sim"}, 1000.0, "created")
    save_run(st, run, status="running", last_ts=5, events=7)
    rec = load_run(st, run)
    assert (rec["strategy"], rec["params"], rec["spec"], rec["status"], rec["events"]) == (
        "ema_cross", {"fast": 3}, {"feed": "sim"}, "running", 7)  # fmt: skip
    assert load_run(st, run + "-none") is None


_ops = hs.lists(
    hs.tuples(hs.sampled_from(["buy", "sell", "fill", "move", "reject"]), hs.integers(0, 3),
              hs.floats(0.5, 50.0, allow_nan=False), hs.floats(0.001, 2.0, allow_nan=False)),
    min_size=1, max_size=25)  # fmt: skip


@hsettings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=_ops)
def test_any_sequence_leaves_both_backends_equal(pg, ops):
    "The same orders, fills, moves and rejections through DuckDB and PostgreSQL leave equal books, rows and PnL."
    run = _rid("prop")
    books = []
    with Store(":memory:") as dk, PgStore(pg, run) as pgs:
        for st in (dk, pgs):
            clk = SimClock(1_700_000_000 * NS)
            led = Ledger(st, run, Chain.SOLANA, "W", clk)
            open_, n = [], 0
            for kind, k, qty, price in ops:
                clk.advance(0.5 if k % 2 else 0)  # same-time events too: the order of ties must agree
                n += 1
                sym = f"T{k}"
                if kind in ("buy", "sell"):
                    o = _order(f"{run}-o{n}", Side.BUY if kind == "buy" else Side.SELL, qty, price, clk.now_ns(), sym)
                    led.record_order(o)
                    open_.append(o)
                elif kind == "fill" and open_:
                    o = open_[k % len(open_)]
                    if o.filled_qty < o.qty:
                        _fill(led, o, min(qty, o.qty - o.filled_qty), price, f"{run}-f{n}", fee=price / 100)
                elif kind == "move":
                    led.record_move(f"{run}-m{n}", sym, int(qty * 10**18), kind="deposit")
                elif kind == "reject":
                    o = _order(f"{run}-r{n}", qty=qty, ts=clk.now_ns(), symbol=sym)
                    o.transition(OrderStatus.REJECTED, "risk: max_position")
                    led.record_rejected(o)
            r = Ledger(st, run, Chain.SOLANA, "W", clk)  # what a restart finds
            pos = (
                st.cursor()
                .execute(
                    "SELECT symbol, qty, avg_price, realized_pnl, fees FROM positions WHERE run_id=? ORDER BY symbol",
                    [run],
                )
                .fetchall()
            )
            books.append((
                sorted((o.client_id, o.status, o.filled_qty, o.avg_fill_price, o.reason) for o in r.orders.values()),
                [(f.fill_id, f.ts, f.qty, f.price, f.fee) for f in r.fills()],
                r.balances(), r.pnl(), [tuple(p) for p in pos],
                {s: (p.qty, p.avg_price, p.realized_pnl) for s, p in r.portfolio.positions.items()},
            ))  # fmt: skip
    assert books[0] == books[1]


def test_one_writer_per_run_readers_any_time_and_read_only_sessions(pg):
    run = _rid("lock")
    with PgStore(pg, run) as w:
        with pytest.raises(StoreLockedError, match="another process"):
            PgStore(pg, run)
        with PgStore(pg, _rid("other")):  # another run is not locked
            pass
        led = Ledger(w, run, Chain.SOLANA, "W")
        o = _order(f"{run}-c1")
        led.record_order(o)
        with PgStore(pg, read_only=True) as ro:  # a reader while the writer holds the run
            assert Ledger(ro, run, Chain.SOLANA, "W").order(o.client_id) is not None
            with pytest.raises(Exception, match="read-only"):
                Ledger(ro, run, Chain.SOLANA, "W").record_move("x", "SOL", 1)
            assert ro.has_run(run) and run in ro.runs()
    with PgStore(pg, run):  # the lock went with the writer's session
        pass


def test_reads_wait_for_a_write_transaction_in_another_thread(pg):
    "A reader never sees half of a fill: the fill row, its moves and its position commit together."
    run = _rid("tx")
    with PgStore(pg, run) as st:
        led = Ledger(st, run, Chain.SOLANA, "W", SimClock(1_700_000_000 * NS))
        seen, stop = [], threading.Event()

        def reader():
            while not stop.is_set():
                f, m = st.cursor().execute(
                    "SELECT (SELECT count(*) FROM fills WHERE run_id=?), (SELECT count(*) FROM ledger_moves WHERE"
                    " run_id=?)", [run, run]).fetchone()  # fmt: skip
                seen.append((f, m))

        t = threading.Thread(target=reader)
        t.start()
        for i in range(40):
            o = _order(f"{run}-c{i}")
            led.record_order(o)
            _fill(led, o, 100.0, 0.01, f"{run}-f{i}")
        stop.set()
        t.join()
    assert seen and all(m == 2 * f for f, m in seen)


def test_missing_tables_and_bad_urls_are_clear_errors(pg):
    from memebot.core import ValidationError
    from memebot.db import scratch_database

    with scratch_database() as empty:
        with pytest.raises(StoreError, match="memebot db upgrade"):
            PgStore(empty, "x")
    with pytest.raises(ValidationError, match="database_url"):
        PgStore("mysql://root@127.0.0.1/x")
    with pytest.raises(StoreError, match="127.0.0.1:1/"):
        PgStore("postgresql://postgres:hunter2@127.0.0.1:1/memebot")


def test_paper_runs_keep_their_ledger_in_postgres(pg, memebot, tmp_path):
    "`memebot paper` with `[enterprise] database_enabled`: its orders, fills and run record in PostgreSQL, no file."
    from memebot.config import load_settings

    env = {"MEMEBOT_ENTERPRISE_DATABASE_ENABLED": "true", "MEMEBOT_ENTERPRISE_DATABASE_URL": pg}
    run = _rid("paper")
    args = ["paper", "--strategy", "pump_launch", "--feed", "sim", "--run-id", run, "--no-dashboard", "--json", "-"]
    doc = json.loads(memebot(*args, env=env, check=True).stdout)
    assert len(doc["fills"]) >= 4 and doc["consistency"] == []
    assert doc["ledger"] == f"postgresql://127.0.0.1:5432/{pg.rsplit('/', 1)[1]} (run {run})"
    s = load_settings(env={}, overrides={"enterprise.database_enabled": True, "enterprise.database_url": pg,
                                         "store.ledger_dir": str(tmp_path / "runs")})  # fmt: skip
    assert ledger_exists(run, s) and run in ledger_runs(s) and not list((tmp_path / "runs").glob("*.duckdb"))
    assert ledger_where(run, s).endswith(f"(run {run})")
    with PgStore(pg, read_only=True) as ro:
        fills = ro.cursor().execute("SELECT fill_id FROM fills WHERE run_id=? ORDER BY ts, fill_id", [run]).fetchall()
        assert sorted(f["fill_id"] for f in doc["fills"]) == sorted(r[0] for r in fills)
        assert load_run(ro, run)["strategy"] == "pump_launch"
    pf = json.loads(
        memebot("portfolio", "--no-fetch", "--json", env=env, check=True).stdout
    )  # every node's ledger, from PostgreSQL
    assert {p["run"] for p in pf["positions"]} >= {run} and pf["busy"] == []
    again = memebot(*args, env=env)  # the run id is taken: a clear error, nothing changed
    assert again.returncode != 0 and "already exists" in again.stderr
    with PgStore(pg, read_only=True) as ro:
        assert ro.cursor().execute("SELECT count(*) FROM fills WHERE run_id=?", [run]).fetchone()[0] == len(fills)


@pytest.fixture
def pg_alone(pg):
    "A migrated database of its own (the module's holds every other test's runs)."
    from memebot.db import migrate, scratch_database

    with scratch_database() as url:
        migrate(url)
        yield url


def test_global_limits_count_every_nodes_holdings_in_postgres(pg_alone, tmp_path):
    """A live account's risk engine, given the global limits by the live commands, counts what another node holds in
    the ledger database: 900 USD of MEME there leaves room for 75 USD more, not 150 (max_asset_exposure 1,000)."""
    from memebot.commands.live import attach_global_limits
    from memebot.config import load_settings
    from memebot.core import Portfolio, Tick
    from memebot.risk import RiskEngine

    s = load_settings(env={}, overrides={
        "enterprise.database_enabled": True, "enterprise.database_url": pg_alone, "store.ledger_dir": str(tmp_path),
        "risk.max_asset_exposure_usd": 1000.0, "crosschain.assets": "MEME@solana=MemeMint1111:6"})  # fmt: skip
    other_run, own_run = _rid("sniper"), _rid("live")
    with (
        PgStore(pg_alone, other_run) as ost,
        PgStore(pg_alone, own_run) as st,
    ):  # two nodes (two processes in real life)
        other = Ledger(ost, other_run, Chain.SOLANA, "OtherWallet", SimClock(1_700_000_000 * NS))
        o = _order(f"{other_run}-c1", qty=30_000.0, price=0.0002, symbol="MemeMint1111")
        other.record_order(o)
        o.transition(OrderStatus.SUBMITTED)
        o.filled_qty, o.avg_fill_price = 30_000.0, 0.0002
        o.transition(OrderStatus.FILLED)
        other.record_fill(
            Fill(o.client_id, 1, "MemeMint1111", Side.BUY, 30_000.0, 0.0002, fill_id=f"{other_run}-f1"),
            moves={"MemeMint1111": 30_000 * 10**6, "SOL": -6 * 10**9},
            order=o,
        )  # 6 SOL, 900 USD
        own = Ledger(st, own_run, Chain.SOLANA, "MyWallet")
        risk = RiskEngine.from_settings(s, watch_kill_file=False, account_usd=150.0, stale_on_check=False)
        attach_global_limits(risk, s, own)
        assert risk.global_exposure("MemeMint1111") == ("MEME", 900.0, 900.0, 900.0)
        risk.on_market(Tick(1, "MemeMint1111", 0.0002, source="jupiter"))
        pf = Portfolio(cash=100.0)
        assert risk.check(Order("MemeMint1111", Side.BUY, 0.5 / 0.0002), pf, 2) is None  # 75 USD: 975 in all
        why = risk.check(Order("MemeMint1111", Side.BUY, 1.0 / 0.0002), pf, 3)  # 150 USD: 1,050 in all
        assert why is not None and why.startswith("max_asset_exposure") and "MEME across chains" in why
        later_run = _rid("later")
        with PgStore(pg_alone, later_run) as lst:  # a node started after this one buys 150 USD of MEME
            later = Ledger(lst, later_run, Chain.SOLANA, "LaterWallet", SimClock(1_700_000_100 * NS))
            f = Fill(f"{later_run}-c1", 1, "MemeMint1111", Side.BUY, 5_000.0, 0.0002, fill_id=f"{later_run}-f1")
            later.record_fill(f, moves={"MemeMint1111": 5_000 * 10**6, "SOL": -(10**9)})
            risk.global_exposure.discover_s = risk.global_exposure.max_age_s = 0.0  # ask again now
            why = risk.check(Order("MemeMint1111", Side.BUY, 0.5 / 0.0002), pf, 4)  # 75 USD: 1,125 in all now
            assert why is not None and why.startswith("max_asset_exposure"), why
            assert {led.run_id for led in risk.global_exposure.ledgers} == {other_run, own_run, later_run}


def test_global_limits_with_ledger_files_count_the_account_alone(tmp_path):
    "With ledger files a live node does not hold other nodes' files open (they could not run): its own account only."
    from memebot.commands.live import attach_global_limits
    from memebot.config import load_settings
    from memebot.risk import RiskEngine

    s = load_settings(env={}, overrides={"store.ledger_dir": str(tmp_path)})
    with Store(tmp_path / "other.duckdb") as ost:  # a stopped node's file, holding MEME
        Ledger(ost, "other", Chain.SOLANA, "W").record_move("dep", "MemeMint1111", 10**12, kind="deposit")
    with Store(tmp_path / "live.duckdb") as st:
        own = Ledger(st, "live", Chain.SOLANA, "MyWallet")
        risk = RiskEngine.from_settings(s, watch_kill_file=False, account_usd=150.0, stale_on_check=False)
        attach_global_limits(risk, s, own)
        assert risk.global_exposure.ledgers == [own]
        with Store(tmp_path / "other.duckdb"):  # and the other run's file can still be opened for writing
            pass
