"""Cross-chain arbitrage detection: the closed-form size, every cost term, the detector over a simulated multi-chain
market, the opportunity log in a real DuckDB file, the study over the research data, and the commands."""

import asyncio, json, math
from dataclasses import asdict
import pytest
from hypothesis import given, settings as hsettings, strategies as hs
from memebot.core import Chain, PoolUpdate
from memebot.data.store import Store
from memebot.live.crosschain import (
    ArbCosts,
    ArbDetector,
    CrossChainSim,
    PoolState,
    cp_out,
    evaluate,
    load_arb_candidates,
    opportunities,
    store_opportunities,
    study_candidates,
    two_pool_optimum,
)

reserve = hs.floats(1e3, 1e9)
fee = hs.floats(0.0, 0.01)


@hsettings(max_examples=300, deadline=None)
@given(xa=reserve, ya=reserve, fa=fee, xb=reserve, gap=hs.floats(-0.05, 0.2), fb=fee, f=hs.floats(0.01, 3.0))
def test_the_closed_form_is_the_best_size(xa, ya, fa, xb, gap, fb, f):
    yb = xb * (ya / xa) * (1 + gap)  # pool B's price is `gap` above pool A's
    dy, back = two_pool_optimum(xa, ya, 1 - fa, xb, yb, 1 - fb)
    profit = lambda q: cp_out(cp_out(q, ya, xa, 1 - fa), xb, yb, 1 - fb) - q
    if dy == 0:
        assert back == 0 and profit(ya * 1e-6) <= 1e-9 * ya  # no size profits
        return
    assert math.isclose(back, cp_out(cp_out(dy, ya, xa, 1 - fa), xb, yb, 1 - fb), rel_tol=1e-9)
    assert profit(dy) >= profit(dy * f) - 1e-9 * max(1.0, abs(profit(dy)))


@hsettings(max_examples=200, deadline=None)
@given(
    gap=hs.one_of(hs.just(0.0), hs.floats(1e-6, 0.3)),
    depth=hs.floats(1e4, 1e8),
    gas=hs.floats(0, 50),
    mode=hs.sampled_from(["inventory", "bridge"]),
)
def test_every_cost_term_adds_up(gap, depth, gas, mode):
    costs = ArbCosts(gas_usd={Chain.ETHEREUM: gas, Chain.SOLANA: 0.01})
    a = PoolState(Chain.ETHEREUM, "a", "T", "USD", 30, depth * 1000, depth)
    b = PoolState(Chain.SOLANA, "b", "T", "USD", 25, depth * 1000 / (1 + gap), depth)
    o = evaluate(a, b, {"USD": 1.0}, costs, mode)
    if gap == 0:
        assert o is None
        return
    assert math.isclose(o.spread_usd - o.lp_fee_usd - o.impact_usd, o.gross_usd, rel_tol=1e-9, abs_tol=1e-6)
    total = o.gas_buy_usd + o.gas_sell_usd + o.bridge_fee_usd + o.price_risk_usd
    assert math.isclose(o.gross_usd - total, o.net_usd, rel_tol=1e-9, abs_tol=1e-6)
    assert o.profitable == (o.net_usd >= costs.min_profit_usd and o.size_usd > 0)
    assert (o.bridge_fee_usd > 0) == (mode == "bridge" and o.size_usd > 0)


def test_inventory_caps_the_size_and_says_so():
    det = ArbDetector(ArbCosts(gas_usd={Chain.BSC: 0.1, Chain.POLYGON: 0.02}), modes=("inventory",))
    det.watch("bsc", "p1", "T", "USD", 25)
    det.watch("polygon", "p2", "T", "USD", 25)
    det.on_pool_update(PoolUpdate(1, Chain.BSC, "p1", 1e9, 1e6))
    free = det.on_pool_update(PoolUpdate(2, Chain.POLYGON, "p2", 1e9 / 1.05, 1e6))[0]
    det.inventory[(Chain.POLYGON, "T")] = 0.0  # nothing to sell on the sell side
    none = det.on_pool_update(PoolUpdate(3, Chain.POLYGON, "p2", 1e9 / 1.05, 1e6))[0]
    det.inventory[(Chain.POLYGON, "T")] = 1e6  # a million tokens: less than the free size needs
    capped = det.on_pool_update(PoolUpdate(4, Chain.POLYGON, "p2", 1e9 / 1.05, 1e6))[0]
    assert free.profitable and free.size_usd > capped.size_usd > 0
    assert (none.size_usd, none.profitable, none.reason) == (0.0, False, "no inventory on one side")
    tokens_bought = cp_out(capped.size_usd, 1e6, 1e9, 1 - 25e-4)
    assert math.isclose(tokens_bought, 1e6, rel_tol=1e-9)


def test_detector_over_a_four_chain_market_and_the_log(tmp_path):
    sim = CrossChainSim(tokens=30, seed=11)
    got = []
    det = ArbDetector(ArbCosts(min_profit_usd=3.0), on_opportunity=got.append)
    for p in sim.pools():
        det.watch(*p)
    for c, usd in {"solana": 0.01, "ethereum": 5.0, "bsc": 0.1, "polygon": 0.02}.items():
        det.set_gas(c, usd)
    n = 0
    for ev in sim.updates(3_000):
        out = det.on_pool_update(ev)
        n += len(out)
        for o in out:
            assert o.sell_price_usd > o.buy_price_usd and o.buy_chain != o.sell_chain and o.asset in ev.pool
    ev_list = list(det.evaluated)
    taken = [o for o in ev_list if o.profitable]
    assert len(ev_list) == n and got == taken and 0 < len(taken) < n
    assert {o.mode for o in taken} <= {"inventory", "bridge"}
    with Store(tmp_path / "m.duckdb") as st:
        assert store_opportunities(st, ev_list) == n
    with Store(tmp_path / "m.duckdb", read_only=True) as st:  # reopened: every term is there
        df = opportunities(st, profitable=True)
    assert len(df) == len(taken)
    assert (
        (df.gross_usd - df.gas_buy_usd - df.gas_sell_usd - df.bridge_fee_usd - df.price_risk_usd - df.net_usd).abs()
        < 1e-6
    ).all()


def test_the_same_seed_gives_the_same_market():
    a = [asdict(u) for u in CrossChainSim(tokens=5, seed=2).updates(200)]
    b = [asdict(u) for u in CrossChainSim(tokens=5, seed=2).updates(200)]
    c = [asdict(u) for u in CrossChainSim(tokens=5, seed=3).updates(200)]
    assert a == b and a != c


def test_study_over_the_research_pairs(shared, memebot):
    cand = load_arb_candidates(shared / "data/cross_chain_arbs")
    res = study_candidates(cand, ArbCosts())
    assert len(cand) == 3677 and 0 < len(res) <= int((cand.cycle & (cand.raw_diff_pct_1 <= 0.005)).sum())
    assert (res.net_high_usd <= res.net_low_usd).all() and res.flagged_high.sum() <= res.flagged_low.sum()
    inv = res.seconds <= 60
    assert (res.bridge_usd[inv] == 0).all() and (res.bridge_usd[~inv] > 0).all()
    r = memebot("arb", "study", "--json", check=True)
    doc = json.loads(r.stdout)
    assert (doc["valued"], doc["flagged_low_gas"], doc["flagged_high_gas"]) == (
        len(res),
        int(res.flagged_low.sum()),
        int(res.flagged_high.sum()),
    )
    assert sum(b["candidates"] for b in doc["by_size"]) == len(res)


def test_scan_command_stores_and_refuses_bad_input(memebot, cli_env):
    r = memebot("arb", "scan", "--tokens", "10", "--updates", "500", "--json", check=True)
    doc = json.loads(r.stdout)
    assert doc["stored"] == doc["evaluated"] >= doc["taken"] and len(doc["best"]) == min(10, doc["taken"])
    assert doc["evaluated"] - doc["taken"] == sum(doc["not_taken"].values())
    for args, needle in (
        (["--feed", "live"], "--feed"),
        (["--gas", "ethereum=lots"], "--gas"),
        (["--tokens", "0"], "--tokens"),
    ):
        bad = memebot("arb", "scan", *args)
        lines = bad.stderr.strip().splitlines()
        assert bad.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], (
            bad.stderr
        )


def test_global_limits_count_every_chain():
    from memebot.config import RiskConfig
    from memebot.core import Order, Portfolio, Side, Tick
    from memebot.exec.ledger import Ledger
    from memebot.live.crosschain import AssetRegistry, ChainToken, GlobalExposure
    from memebot.risk import RiskEngine

    reg = AssetRegistry().add("A", ChainToken(Chain.SOLANA, "MintA", 6)).add("A", ChainToken(Chain.BSC, "0xa", 18))
    reg.add("B", ChainToken(Chain.SOLANA, "MintB", 6))
    led_s, led_b = Ledger(Store(":memory:"), "n1", Chain.SOLANA, "w"), Ledger(Store(":memory:"), "n2", Chain.BSC, "0xw")
    led_s.record_move("d1", "SOL", 100 * 10**9, kind="deposit")  # coins are not exposure
    led_s.record_move("d2", "MintB", 2_000 * 10**6, kind="deposit")  # 2,000 USD of B on Solana
    led_b.record_move("d3", "0xa", 600 * 10**18, kind="deposit")  # 600 USD of A on BSC
    ge = GlobalExposure([led_s, led_b], reg, {"A": 1.0, "B": 1.0, "SOL": 150.0}, "solana", max_age_s=0)
    assert ge("MintA") == ("A", 2_600.0, 2_000.0, 600.0)
    cfg = RiskConfig(max_order_usd=1e6, max_position_usd=1e6, max_gross_exposure_usd=1e6, max_asset_exposure_usd=1_000,
                     max_chain_exposure_usd=2_500, max_total_exposure_usd=3_500)  # fmt: skip
    eng = RiskEngine(cfg, global_exposure=ge)
    for s in ("MintA", "MintB"):
        eng.on_market(Tick(1, s, 1.0, source="jupiter"))
    pf = Portfolio(cash=1e6)
    assert eng.check(Order("MintA", Side.BUY, 300), pf, 2) is None
    assert eng.check(Order("MintA", Side.BUY, 401), pf, 3).startswith("max_asset_exposure: A across chains")
    assert eng.check(Order("MintB", Side.BUY, 501), pf, 4).startswith("max_chain_exposure")
    led_b.record_move("d4", "0xa", 800 * 10**18, kind="deposit")  # BSC grows: 3,400 in total
    assert eng.check(Order("MintB", Side.BUY, 150), pf, 5).startswith("max_total_exposure")


def test_paper_arb_run_command(memebot, tmp_path):
    env = {"MEMEBOT_STORE_LEDGER_DIR": str(tmp_path)}
    r = memebot("arb", "run", "--tokens", "10", "--updates", "2000", "--seed", "5", "--run-id", "a1", "--json",
                env=env, check=True)  # fmt: skip
    doc = json.loads(r.stdout)
    assert doc["executions"] > 0 and doc["by_status"]["done"] == doc["executions"]
    assert doc["pnl_usd"] == pytest.approx(doc["expected_usd"], rel=1e-3) and doc["pnl_usd"] > 0
    with Store(tmp_path / "a1.duckdb", read_only=True) as st:  # every execution and leg is in the run's ledger
        n = st.cursor().execute("SELECT count(*) FROM arb_executions WHERE status = 'done'").fetchone()[0]
        legs = st.cursor().execute("SELECT count(*) FROM fills").fetchone()[0]
    assert n == doc["executions"] and legs == 2 * n
    again = memebot("arb", "run", "--run-id", "a1", env=env)
    assert again.returncode == 2 and "already exists" in again.stderr
    pf = json.loads(memebot("portfolio", "--price", "SOL=150", "--no-fetch", "--json", env=env, check=True).stdout)
    assert {b["run"] for b in pf["balances"]} == {"a1"} and {b["chain"] for b in pf["balances"]} == {
        "solana", "ethereum", "bsc", "polygon"}  # fmt: skip


def test_executor_refuses_what_its_brokers_cannot_buy_with():
    from memebot.core import ValidationError
    from memebot.live.crosschain import ArbExecutor, AssetRegistry

    a = PoolState(Chain.ETHEREUM, "a", "T", "USD", 30, 2e9, 2e6)  # quoted in USD: the brokers spend the chain's coin
    b = PoolState(Chain.BSC, "b", "T", "USD", 25, 2e9 / 1.03, 2e6)
    o = evaluate(a, b, {"USD": 1.0}, ArbCosts(gas_usd={Chain.ETHEREUM: 1.0, Chain.BSC: 0.1}))
    assert o.profitable and o.buy_quote == "USD"
    x = ArbExecutor({}, AssetRegistry(), Store(":memory:"))
    with pytest.raises(ValidationError, match="quoted in USD"):
        asyncio.run(x.execute(o))
    with pytest.raises(ValidationError, match="only inventory"):
        asyncio.run(x.execute(evaluate(a, b, {"USD": 1.0}, ArbCosts(gas_usd={Chain.ETHEREUM: 1.0}), mode="bridge")))


def _coin(cid, home, platforms):
    "A coin as CoinGecko's `/coins/{id}` answers, in its documented shape (made-up contracts)."
    detail = {p: {"decimal_place": d, "contract_address": a} for p, (a, d) in platforms.items()}
    detail[""] = {"decimal_place": None, "contract_address": ""}
    return {"id": cid, "symbol": cid, "asset_platform_id": home, "detail_platforms": detail,
            "platforms": {p: a for p, (a, _) in platforms.items()}}  # fmt: skip


def test_asset_registry_from_coingecko_platforms(memebot):
    from pytest_httpserver import HTTPServer

    frog_eth, frog_bsc = "0x" + "ab" * 20, "0x" + "cd" * 20
    usdt_bsc = "0x55d398326F99059fF775485246999027B3197955"  # already USD on BSC in the default registry
    srv = HTTPServer(host="127.0.0.1", port=0)
    srv.start()
    try:
        srv.expect_request("/coins/frog", query_string={"localization": "false", "tickers": "false",
                           "market_data": "false", "community_data": "false", "developer_data": "false"}
                           ).respond_with_json(_coin("frog", "ethereum", {"ethereum": (frog_eth, 18),
                           "binance-smart-chain": (frog_bsc, 9), "arbitrum-one": ("0x" + "ef" * 20, 18),
                           "solana": ("Frog1111", None)}))  # fmt: skip
        srv.expect_request("/coins/fake").respond_with_json(_coin("fake", "ethereum", {
                           "binance-smart-chain": (usdt_bsc, 18)}))  # fmt: skip
        srv.expect_request("/coins/nope").respond_with_json({"error": "coin not found"}, status=404)
        flags = ["--set", f"endpoints.coingecko={srv.url_for('').rstrip('/')}", "--set", "data.http_max_retries=0"]
        r = memebot(*flags, "arb", "assets", "--coingecko", "frog", "--json", check=True)
        doc = json.loads(r.stdout)
        frog = {(a["chain"], a["address"], a["decimals"], a["kind"]) for a in doc["assets"] if a["asset"] == "FROG"}
        assert frog == {("ethereum", frog_eth, 18, "native"), ("bsc", frog_bsc, 9, "bridged")}
        assert sorted(doc["left_out"]) == ["frog on arbitrum-one: not a chain memebot trades",
                                          "frog on solana: CoinGecko gives no decimals"]  # fmt: skip
        kept = memebot("--set", f"crosschain.assets={doc['setting']}", "arb", "assets", "--json", check=True)
        assert {(a["chain"], a["decimals"]) for a in json.loads(kept.stdout)["assets"] if a["asset"] == "FROG"} == {
            ("ethereum", 18),
            ("bsc", 9),
        }  # the printed settings line gives the same registry without CoinGecko
        text = memebot(*flags, "arb", "assets", "--coingecko", "frog", check=True).stdout
        assert "assets = FROG@ethereum=" in text and max(map(len, text.splitlines()[:14])) <= 80
        for cid, needle in (("fake", "already USD"), ("nope", "coingecko")):
            bad = memebot(*flags, "arb", "assets", "--coingecko", cid)
            lines = bad.stderr.strip().splitlines()
            assert bad.returncode == 2 and len(lines) == 1 and needle in lines[0], bad.stderr
    finally:
        srv.stop()


def _prices_server(shared, fail_token_price: bool = False):
    "A local CoinGecko and Jupiter answering with their recorded payloads, re-keyed to the test's coins and tokens."
    from pytest_httpserver import HTTPServer

    fx = shared / "fixtures"
    cg = json.loads((fx / "coingecko/simple_price_response.json").read_text())["bitcoin"]
    tok = next(iter(json.loads((fx / "coingecko/simple_token_price_response.json").read_text()).values()))
    jup = json.loads((fx / "jupiter/price_v3_response_openapi.json").read_text())
    sol_entry = jup["So11111111111111111111111111111111111111112"]
    srv = HTTPServer(host="127.0.0.1", port=0)
    srv.start()
    srv.expect_request("/simple/price").respond_with_json(
        {"solana": cg | {"usd": 150.0}, "binancecoin": cg | {"usd": 600.0}})  # fmt: skip
    if fail_token_price:
        srv.expect_request("/simple/token_price/binance-smart-chain").respond_with_data("busy", status=503)
    else:
        srv.expect_request("/simple/token_price/binance-smart-chain").respond_with_json({MEME_BSC: tok | {"usd": 0.07}})
    srv.expect_request("/price/v3").respond_with_json({MEME_SOL: sol_entry | {"usdPrice": 0.05}})
    url = srv.url_for("").rstrip("/")
    flags = ["--set", f"endpoints.coingecko={url}", "--set", f"endpoints.jupiter={url}",
             "--set", "data.http_max_retries=0", "--set", f"crosschain.assets={MEME_ASSETS}"]  # fmt: skip
    return srv, flags


MEME_SOL, MEME_BSC = "MemeMint1111111111111111111111111111111111", "0x" + "ab" * 20
MEME_ASSETS = f"MEME@solana={MEME_SOL}:6,MEME@bsc={MEME_BSC}:18"


def test_portfolio_prices_every_chain_from_the_providers(shared, memebot, cli_env):
    from pathlib import Path
    from memebot.exec.ledger import Ledger

    runs = Path(cli_env["MEMEBOT_STORE_LEDGER_DIR"])
    runs.mkdir(parents=True, exist_ok=True)
    with Store(runs / "sol.duckdb") as st:
        led = Ledger(st, "sol", Chain.SOLANA, "SolWallet")
        led.record_move("d1", "SOL", 2 * 10**9, kind="deposit")
        led.record_move("d2", MEME_SOL, 1_000 * 10**6, kind="deposit")
    with Store(runs / "bsc.duckdb") as st:
        led = Ledger(st, "bsc", Chain.BSC, "0xw")
        led.record_move("d3", "BNB", 10**18, kind="deposit")
        led.record_move("d4", MEME_BSC, 3_000 * 10**18, kind="deposit")
    srv, flags = _prices_server(shared)
    try:
        doc = json.loads(memebot(*flags, "portfolio", "--json", check=True).stdout)
        assert doc["prices"]["MEME"] == pytest.approx(0.06) and doc["price_problems"] == []  # median of both chains
        assert doc["total_usd"] == pytest.approx(2 * 150 + 600 + 4_000 * 0.06)
        given = json.loads(memebot(*flags, "portfolio", "--price", "MEME=1", "--json", check=True).stdout)
        assert given["prices"]["MEME"] == 1.0 and given["total_usd"] == pytest.approx(900 + 4_000)  # --price wins
        off = json.loads(memebot(*flags, "portfolio", "--no-fetch", "--json", check=True).stdout)
        assert off["prices"] == {"USD": 1.0} and off["total_usd"] == 0  # no price: every value unknown
    finally:
        srv.stop()
    srv, flags = _prices_server(shared, fail_token_price=True)  # CoinGecko's token prices fail: Jupiter's stays
    try:
        doc = json.loads(memebot(*flags, "portfolio", "--json", check=True).stdout)
        assert doc["prices"]["MEME"] == pytest.approx(0.05) and len(doc["price_problems"]) == 1
        assert "coingecko token_price/binance-smart-chain" in doc["price_problems"][0]
        text = memebot(*flags, "portfolio", check=True).stdout
        assert "prices: coingecko token_price/binance-smart-chain" in text and "no price for" not in text
    finally:
        srv.stop()


def test_global_limits_fetch_other_chains_prices_in_the_background(shared, cli_env):
    "A Solana engine's view of a BSC node: no BNB price at first (its tokens count as nothing), then fetched."
    from memebot.config import load_settings
    from memebot.core import Fill, Order, Portfolio, Side, Tick
    from memebot.exec.ledger import Ledger
    from memebot.live.crosschain import GlobalExposure, default_registry
    from memebot.risk import RiskEngine
    from memebot.config import RiskConfig

    srv, flags = _prices_server(shared)
    over = dict(f.split("=", 1) for f in flags[1::2])
    s = load_settings(env={}, overrides=over)
    led = Ledger(Store(":memory:"), "bsc-node", Chain.BSC, "0xw")
    led.record_fill(Fill("b1", 1, MEME_BSC, Side.BUY, 15_000, 0.0001, fill_id="f1", chain=Chain.BSC),
                    moves={MEME_BSC: 15_000 * 10**18, "BNB": -15 * 10**17})  # fmt: skip
    ge = GlobalExposure([led], default_registry(s), {"SOL": 150.0}, "solana", refresh_s=60.0, settings=s)
    eng = RiskEngine(RiskConfig(max_asset_exposure_usd=1_000), global_exposure=ge)
    eng.on_market(Tick(1, MEME_SOL, 0.06, source="jupiter"))

    async def go():
        first = eng.check(Order(MEME_SOL, Side.BUY, 200 / 0.06), Portfolio(cash=10_000), 2)
        await ge._fetch  # the check did not wait for it
        return first, eng.check(Order(MEME_SOL, Side.BUY, 200 / 0.06), Portfolio(cash=10_000), 3)

    try:
        first, then = asyncio.run(go())
    finally:
        srv.stop()
    assert first is None  # BSC's MEME had no value yet (BNB unknown, MEME unpriced)
    assert then.startswith("max_asset_exposure: MEME across chains")  # 15,000 x 0.06 + 200 > 1,000
    assert ge.usd["BNB"] == 600.0 and ge.usd["SOL"] == 150.0 and ge.price_problems == []
