"""Connectors against a local HTTP server on 127.0.0.1 serving the recorded payloads in ../shared/fixtures:
request shape, parsing, API keys, batching, rate limiter, retries/faults and failover."""

import asyncio, json, time
import numpy as np
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response
from memebot.config import load_settings
from memebot.core import Chain, Side
from memebot.data import sources as S
from _marketdata import gt_token_pools

PROVIDER_ENDPOINTS = ("geckoterminal", "dexscreener", "coingecko", "jupiter", "jupiter_tokens", "raydium", "meteora")


@pytest.fixture(scope="module")
def _server():
    s = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    s.start()
    yield s
    s.stop()


@pytest.fixture
def srv(_server):
    _server.clear()
    yield _server
    _server.clear()


def settings_for(srv, **over):
    base = srv.url_for("").rstrip("/")
    ov = {f"endpoints.{p}": base for p in PROVIDER_ENDPOINTS}
    ov.update(
        {
            "data.http_backoff_base_s": "0.001",
            "data.http_backoff_max_s": "0.01",
            "data.http_timeout_s": "0.3",
            "data.http_max_retries": "3",
        }
    )
    for p in ("geckoterminal", "dexscreener", "coingecko", "jupiter", "raydium", "meteora"):
        ov[f"data.rate_{p}_per_min"] = "100000"
    ov.update({k.replace("__", "."): str(v) for k, v in over.items()})
    return load_settings(None, env={}, overrides=ov)


@pytest.fixture
def fx(shared):
    return lambda rel: json.loads((shared / "fixtures" / rel).read_text())


async def _done(coro):
    try:
        return await coro
    finally:
        await S.close_http()


# ---------------------------------------------------------------- every connector on its recorded payload


async def test_geckoterminal_endpoints(srv, fx):
    st = settings_for(srv)
    srv.expect_request("/networks/solana/pools/P/ohlcv/hour").respond_with_json(fx("geckoterminal/onchain_OHLCV.json"))
    srv.expect_request("/networks/solana/pools/P").respond_with_json(fx("geckoterminal/onchain_CategoriesPools.json"))
    srv.expect_request("/networks/solana/trending_pools").respond_with_json(fx("geckoterminal/onchain_Pool.json"))
    srv.expect_request("/networks/solana/new_pools").respond_with_json(fx("geckoterminal/onchain_Pool.json"))
    srv.expect_request("/networks/solana/pools/P/trades").respond_with_json(fx("geckoterminal/onchain_Trades.json"))
    gt = S.GeckoTerminal(st)

    async def go():
        page = await gt.ohlcv_page("solana", "P", "4h", before_s=1712534401, limit=3)
        pool = await gt.pool("solana", "P")
        tr, new = await gt.trending_pools("solana"), await gt.new_pools("solana")
        trades = await gt.trades("solana", "P")
        return page, pool, tr, new, trades

    page, pool, tr, new, trades = await _done(go())
    q = srv.log[0][0].args
    assert (q["aggregate"], q["limit"], q["before_timestamp"]) == ("4", "3", "1712534401")
    assert list(page.columns) == list(S.CANDLE_COLUMNS) and page.ts.is_monotonic_increasing and len(page) == 3
    assert (
        pool.pool.dex == "raydium-clmm"
        and pool.pool.chain is Chain.SOLANA
        and abs(pool.price_usd - 0.0109071807291731) < 1e-15
    )
    assert "include" in srv.log[1][0].args and tr[0].pool.base.symbol == "WETH" and new[0].liquidity_usd > 0
    assert trades[0].side is Side.BUY and trades[0].sig.startswith("0x0b8ac5")


async def test_dexscreener_endpoints_and_token_batching(srv, fx):
    st = settings_for(srv)
    pairs = fx("dexscreener/recorded_latest_dex_pairs_solana_two_pumpfun_pairs.THIRDPARTY.json")
    srv.expect_request("/latest/dex/pairs/solana/AR6ocEMeRwMM3oJPKpL1B3zqGbEoW9ArQaawKAmdNwwT").respond_with_json(pairs)
    srv.expect_request("/latest/dex/search", query_string={"q": "sym/SOL"}).respond_with_json(pairs)
    srv.expect_request("/token-profiles/latest/v1").respond_with_json(
        fx("dexscreener/docs_example_token_profiles_latest_v1.PLACEHOLDER.json")
    )
    srv.expect_request("/token-boosts/top/v1").respond_with_json(
        [fx("dexscreener/docs_example_token_boosts_top_v1.PLACEHOLDER.json")] * 2
    )
    seen = []

    def tokens(req):
        seen.append(req.path.rsplit("/", 1)[1].split(","))
        return Response(json.dumps(pairs), 200, {"content-type": "application/json"})

    srv.expect_request(__import__("re").compile(r"^/latest/dex/tokens/.*")).respond_with_handler(tokens)
    ds = S.DexScreener(st)

    async def go():
        return (
            await ds.pairs("solana", ["AR6ocEMeRwMM3oJPKpL1B3zqGbEoW9ArQaawKAmdNwwT"]),
            await ds.search("sym/SOL"),
            await ds.token_profiles(),
            await ds.token_boosts(top=True),
            await ds.tokens([f"T{i}" for i in range(35)]),
        )

    p, s, prof, boosts, tok = await _done(go())
    assert p[0].pool.address == "AR6ocEMeRwMM3oJPKpL1B3zqGbEoW9ArQaawKAmdNwwT" and s[1].price_usd == 0.000007488
    assert {x["type"] for x in p[0].extra["socials"]} == {"twitter", "telegram"}  # live shape {type, url}
    assert prof[0].chain == "text" and len(boosts) == 2 and boosts[0].total_amount == 0
    assert [len(b) for b in seen] == [30, 5] and len(tok) == 4  # <= 30 addresses per request


async def test_coingecko_endpoints_and_key_header(srv, fx):
    srv.expect_request("/coins/bitcoin/ohlc").respond_with_json(fx("coingecko/coins_id_ohlc_response.json"))
    srv.expect_request("/coins/bitcoin/market_chart").respond_with_json(
        fx("coingecko/coins_id_market_chart_response.ASSEMBLED.json")
    )
    srv.expect_request("/simple/price").respond_with_json(fx("coingecko/simple_price_response.json"))
    srv.expect_request("/simple/token_price/ethereum").respond_with_json(
        fx("coingecko/simple_token_price_response.json")
    )
    keyless = S.CoinGecko(settings_for(srv))
    base_ov = {f"endpoints.{p}": srv.url_for("").rstrip("/") for p in PROVIDER_ENDPOINTS} | {
        "data.rate_coingecko_per_min": "100000"
    }
    demo = S.CoinGecko(load_settings(None, env={"MEMEBOT_KEYS_COINGECKO_API_KEY": "cg-secret"}, overrides=base_ov))

    async def go():
        o = await keyless.ohlc("bitcoin", days=7)
        mc = await keyless.market_chart("bitcoin", days=3)
        sp = await demo.simple_price(["bitcoin"], include_market_cap=True)
        tp = await keyless.token_price("ethereum", ["0x2260fac5e5542a773aa44fbcfedf7c193bc2c599"])
        return o, mc, sp, tp

    o, mc, sp, tp = await _done(go())
    assert o.tf.iloc[0] == "4h" and o.symbol.iloc[0] == "bitcoin" and len(mc) == 3
    assert sp["bitcoin"]["usd_market_cap"] > 1e12 and tp["0x2260fac5e5542a773aa44fbcfedf7c193bc2c599"]["usd"] > 0
    heads = [r.headers for r, _ in srv.log]
    assert not any("x-cg-demo-api-key" in h or "x-cg-pro-api-key" in h for h in (heads[0], heads[1], heads[3]))
    assert heads[2]["x-cg-demo-api-key"] == "cg-secret" and srv.log[2][0].args["include_market_cap"] == "true"


async def test_jupiter_batches_50_and_omits_unpriced(srv, fx):
    priced = fx("jupiter/price_v3_response_guide.json")
    calls = []

    def price(req):
        ids = req.args["ids"].split(",")
        calls.append(ids)
        return Response(
            json.dumps({m: v for m, v in priced.items() if m in ids}), 200, {"content-type": "application/json"}
        )

    srv.expect_request("/price/v3").respond_with_handler(price)
    srv.expect_request("/search").respond_with_json(fx("jupiter/tokens_v2_search_response_openapi.json"))
    st = load_settings(
        None,
        env={"MEMEBOT_KEYS_JUPITER_API_KEY": "jup-secret"},
        overrides={f"endpoints.{p}": srv.url_for("").rstrip("/") for p in PROVIDER_ENDPOINTS}
        | {"data.rate_jupiter_per_min": "100000"},
    )
    mints = [f"Mint{i}" for i in range(118)] + list(priced)

    async def go():
        return await S.Jupiter(st).prices(mints), await S.Jupiter(st).tokens("JUP")

    px, toks = await _done(go())
    assert [len(c) for c in calls] == [50, 50, 20] and set(px) == set(priced)  # unpriced mints are simply absent
    assert px["So11111111111111111111111111111111111111112"].price == 147.48
    assert all(r.headers["x-api-key"] == "jup-secret" for r, _ in srv.log) and toks[0].decimals == 6


async def test_meteora_and_raydium(srv, fx):
    srv.expect_request("/pair/5rCf1DM8LjKTw4YqhnoLcngyZYeNnQqztScTogYHAS6").respond_with_json(
        fx("meteora/recorded_dlmm_api_pair_SOL-USDC.THIRDPARTY.json")
    )
    # Raydium publishes no sample: an envelope built from the SDK's documented ApiV3PoolInfoItem fields
    srv.expect_request("/pools/info/ids").respond_with_json(
        {
            "id": "r1",
            "success": True,
            "data": [
                {
                    "type": "Standard",
                    "id": "RPOOL",
                    "price": 2.5,
                    "tvl": 1000.0,
                    "openTime": "1700000000",
                    "day": {"volume": 10.0},
                    "mintA": {"address": "MA", "symbol": "A", "decimals": 6},
                    "mintB": {"address": "MB", "symbol": "B", "decimals": 9},
                }
            ],
        }
    )
    st = settings_for(srv)

    async def go():
        return await S.Meteora(st).pair("5rCf1DM8LjKTw4YqhnoLcngyZYeNnQqztScTogYHAS6"), await S.Raydium(st).pools(
            ["RPOOL"]
        )

    m, r = await _done(go())
    assert m.price_quote == 120.226675809934 and m.pool.dex == "meteora-dlmm"
    assert r[0].pool.base.decimals == 6 and r[0].created_ns == 1700000000 * 10**9


def test_ccxt_parses_binance_payloads(shared):
    import ccxt, pandas as pd

    real = pd.read_parquet(
        shared / "data/binance_memecoins/ohlcv_5m_2025-01_2025-04.parquet", filters=[("symbol", "==", "WIF/USDT")]
    ).head(50)
    kl = [
        [
            int(r.date.timestamp() * 1000),
            repr(r.open),
            repr(r.high),
            repr(r.low),
            repr(r.close),
            repr(r.volume),
            0,
            "0",
            1,
            "0",
            "0",
            "0",
        ]
        for r in real.itertuples()
    ]
    df = S.ccxt_candles(ccxt.binance().parse_ohlcvs(kl, None, "5m"), "WIF/USDT", "5m")
    assert len(df) == 50 and (df.close.to_numpy() == real.close.to_numpy()).all() and df.source.iloc[0] == "binance"
    with pytest.raises(S.SourceError, match="binance: ohlcv"):
        S.ccxt_candles([[1, 2, 3]], "WIF/USDT", "5m")
    ex = S.Ccxt(load_settings(None, env={}, overrides={"endpoints.binance": "http://127.0.0.1:9"})).exchange()
    assert ex.urls["api"]["public"].startswith("http://127.0.0.1:9") and not ex.enableRateLimit


# ---------------------------------------------------------------- faults, per source

SOURCE_CALLS = {
    "geckoterminal": (
        "/networks/solana/pools/P/ohlcv/hour",
        "geckoterminal/onchain_OHLCV.json",
        lambda st: S.GeckoTerminal(st).ohlcv_page("solana", "P", "1h"),
    ),
    "dexscreener": (
        "/latest/dex/search",
        "dexscreener/recorded_latest_dex_pairs_solana_two_pumpfun_pairs.THIRDPARTY.json",
        lambda st: S.DexScreener(st).search("x"),
    ),
    "coingecko": (
        "/coins/bitcoin/ohlc",
        "coingecko/coins_id_ohlc_response.json",
        lambda st: S.CoinGecko(st).ohlc("bitcoin"),
    ),
    "jupiter": (
        "/price/v3",
        "jupiter/price_v3_response_openapi.json",
        lambda st: S.Jupiter(st).prices(["So11111111111111111111111111111111111111112"]),
    ),
}


def hits(srv, path):
    "Requests to `path` (a slow response from an earlier test may still land in the shared server's log)."
    return sum(1 for r, _ in srv.log if r.path == path)


def _fault(kind, body):
    if kind == "429":
        return Response(b'{"message": "Rate limit exceeded"}', 429, {"Retry-After": "0"})
    if kind == "500":
        return Response(b"oops", 500)
    if kind == "badjson":
        return Response(body[: len(body) // 2], 200, {"content-type": "application/json"})
    if kind == "truncated":
        return Response(
            iter([body[: len(body) // 2]]), 200, {"Content-Length": str(len(body))}, direct_passthrough=True
        )
    if kind == "timeout":
        time.sleep(0.6)
        return Response(body, 200)


@pytest.mark.parametrize("provider", list(SOURCE_CALLS))
@pytest.mark.parametrize("kind", ["429", "500", "timeout", "badjson", "truncated"])
async def test_transient_fault_is_retried(srv, fx, provider, kind):
    path, fixture, call = SOURCE_CALLS[provider]
    body = json.dumps(fx(fixture)).encode()
    n = {"i": 0}

    def handler(req):
        n["i"] += 1
        return _fault(kind, body) if n["i"] == 1 else Response(body, 200, {"content-type": "application/json"})

    srv.expect_request(path).respond_with_handler(handler)
    before = S.HTTP_RETRIES.labels(
        provider, {"badjson": "bad_json", "truncated": "transport"}.get(kind, kind)
    )._value.get()
    out = await _done(call(settings_for(srv)))
    assert len(out) > 0 and n["i"] == 2
    assert (
        S.HTTP_RETRIES.labels(provider, {"badjson": "bad_json", "truncated": "transport"}.get(kind, kind))._value.get()
        == before + 1
    )


@pytest.mark.parametrize("provider", list(SOURCE_CALLS))
async def test_persistent_failure_names_provider(srv, fx, provider):
    path, fixture, call = SOURCE_CALLS[provider]
    srv.expect_request(path).respond_with_data("down", status=503)
    with pytest.raises(S.SourceUnavailable, match=rf"^{provider}: .*HTTP 503.*gave up after 4 attempts") as e:
        await _done(call(settings_for(srv)))
    assert e.value.status == 503 and hits(srv, path) == 4  # http_max_retries=3 -> 4 attempts


@pytest.mark.parametrize("provider", list(SOURCE_CALLS))
async def test_client_error_is_not_retried(srv, fx, provider):
    path, fixture, call = SOURCE_CALLS[provider]
    srv.expect_request(path).respond_with_json({"code": 401, "message": "Unauthorized"}, status=401)
    with pytest.raises(S.SourceUnavailable, match="HTTP 401"):
        await _done(call(settings_for(srv)))
    assert hits(srv, path) == 1


@pytest.mark.parametrize(
    "provider,mutate,field",
    [
        ("geckoterminal", lambda p: p["data"]["attributes"].pop("ohlcv_list"), "data.attributes.ohlcv_list"),
        ("dexscreener", lambda p: p["pairs"][1].pop("pairAddress"), "pairs[1].pairAddress"),
        ("coingecko", lambda p: p[2].pop(), "ohlc[2]"),
        (
            "jupiter",
            lambda p: p["So11111111111111111111111111111111111111112"].pop("usdPrice"),
            "So11111111111111111111111111111111111111112.usdPrice",
        ),
    ],
)
async def test_missing_field_is_a_typed_error(srv, fx, provider, mutate, field):
    path, fixture, call = SOURCE_CALLS[provider]
    p = fx(fixture)
    mutate(p)
    srv.expect_request(path).respond_with_json(p)
    with pytest.raises(S.SourceError) as e:
        await _done(call(settings_for(srv)))
    assert (e.value.provider, e.value.field) == (provider, field) and hits(srv, path) == 1  # deterministic: no retry


async def test_retry_after_is_honoured(srv, fx):
    path, fixture, call = SOURCE_CALLS["geckoterminal"]
    body = json.dumps(fx(fixture)).encode()
    n = {"i": 0}

    def handler(req):
        n["i"] += 1
        return Response(b"{}", 429, {"Retry-After": "1"}) if n["i"] == 1 else Response(body, 200)

    srv.expect_request(path).respond_with_handler(handler)
    t0 = time.monotonic()
    await _done(call(settings_for(srv, data__http_backoff_max_s=5)))
    assert time.monotonic() - t0 >= 1.0  # waited the server's Retry-After, not the 1 ms backoff


async def test_rate_limiter_from_settings(srv):
    st = settings_for(srv, data__rate_meteora_per_min=2)

    async def go():
        lim = S.rate_limiter("meteora", st)
        assert (
            lim.max_rate == 2
            and S.rate_limiter("meteora", st) is lim
            and S.rate_per_min("dexscreener_profiles", st) == 60
        )
        await lim.acquire()
        await lim.acquire()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(lim.acquire(), 0.2)  # the third request in a minute has to wait

    await go()


# ---------------------------------------------------------------- failover


async def test_pool_price_failover_on_error(srv, fx):
    srv.expect_request("/networks/solana/pools/AR6ocEMeRwMM3oJPKpL1B3zqGbEoW9ArQaawKAmdNwwT").respond_with_data(
        "down", status=500
    )
    srv.expect_request("/latest/dex/pairs/solana/AR6ocEMeRwMM3oJPKpL1B3zqGbEoW9ArQaawKAmdNwwT").respond_with_json(
        fx("dexscreener/recorded_latest_dex_pairs_solana_two_pumpfun_pairs.THIRDPARTY.json")
    )
    st = settings_for(srv)
    chain = S.pool_price_chain(st)
    before = S.SOURCE_FAILOVER.labels("pool_price", "geckoterminal", "error")._value.get()
    src, snap = await _done(chain.get(Chain.SOLANA, "AR6ocEMeRwMM3oJPKpL1B3zqGbEoW9ArQaawKAmdNwwT"))
    assert src == "dexscreener" and snap.price_usd == 0.0007094 and chain.active == "dexscreener"
    assert S.SOURCE_FAILOVER.labels("pool_price", "geckoterminal", "error")._value.get() == before + 1
    assert "memebot_source_failover_total" in __import__("memebot.obs", fromlist=["x"]).metrics_text()


async def test_all_sources_failed_is_one_clear_error(srv):
    srv.expect_request(__import__("re").compile(".*")).respond_with_data("down", status=502)
    with pytest.raises(
        S.AllSourcesFailed,
        match=r"failover:pool_price: geckoterminal,dexscreener: geckoterminal: .*502.*dexscreener: .*502",
    ):
        await _done(S.pool_price_chain(settings_for(srv)).get("solana", "X"))


def test_unknown_failover_source_is_rejected():
    with pytest.raises(S.ValidationError, match="data.pool_price_sources"):
        S.pool_price_chain(load_settings(None, env={}, overrides={"data.pool_price_sources": "geckoterminal,nope"}))


async def test_fetch_candles_geckoterminal(srv, fx):
    srv.expect_request("/networks/solana/pools/P/ohlcv/day").respond_with_json(fx("geckoterminal/onchain_OHLCV.json"))
    df = await _done(
        S.fetch_candles(
            "geckoterminal", "solana", "P", "1d", 1712361600 * 10**9, 1712534400 * 10**9, settings=settings_for(srv)
        )
    )
    assert len(df) == 2 and df.ts.iloc[-1].value == 1712448000 * 10**9  # [start, end)
    with pytest.raises(S.ValidationError, match="unknown candle source"):
        await S.fetch_candles("kraken", "solana", "P", "1d", 0, 1)


async def test_candles_failover_when_primary_is_stale(srv, fx):
    from memebot.core import SimClock

    cg = fx("coingecko/coins_id_ohlc_response.json")
    ref = S.parse_cg_ohlc(cg, "bitcoin")
    old = ref.assign(ts=ref.ts - __import__("pandas").Timedelta(days=1))  # the primary lags a day behind
    srv.expect_request("/networks/solana/pools/P/ohlcv/hour").respond_with_json(S.render_gt_ohlcv(old))
    srv.expect_request("/coins/bitcoin/ohlc").respond_with_json(cg)
    last_close = int(ref.ts.iloc[-1].value) + 4 * 3600 * 10**9
    chain = S.candles_chain(
        {"geckoterminal": "P", "coingecko": "bitcoin"}, "4h", settings_for(srv), clock=SimClock(last_close + 60 * 10**9)
    )
    before = S.SOURCE_FAILOVER.labels("candles", "geckoterminal", "stale")._value.get()
    src, df = await _done(chain.get("solana", int(ref.ts.iloc[0].value) - 2 * 86400 * 10**9, last_close))
    assert (
        src == "coingecko"
        and len(df) == len(ref)
        and S.SOURCE_FAILOVER.labels("candles", "geckoterminal", "stale")._value.get() == before + 1
    )


async def test_dexscreener_token_pairs_array(srv, fx):
    arr = fx("dexscreener/recorded_latest_dex_pairs_solana_two_pumpfun_pairs.THIRDPARTY.json")["pairs"]
    srv.expect_request("/token-pairs/v1/solana/TOKEN").respond_with_json(arr)
    out = await _done(S.DexScreener(settings_for(srv)).token_pairs("solana", "TOKEN"))
    assert [p.pool.dex for p in out] == ["raydium", "raydium"]


# ---------------------------------------------------------------- ccxt against a local Binance

BINANCE_INFO = {
    "timezone": "UTC",
    "serverTime": 1735689600000,
    "rateLimits": [],
    "exchangeFilters": [],
    "symbols": [
        {
            "symbol": "BONKUSDT",
            "status": "TRADING",
            "baseAsset": "BONK",
            "baseAssetPrecision": 8,
            "quoteAsset": "USDT",
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "orderTypes": ["LIMIT", "MARKET"],
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": "0.00000001", "maxPrice": "1000", "tickSize": "0.00000001"},
                {"filterType": "LOT_SIZE", "minQty": "1", "maxQty": "9000000000", "stepSize": "1"},
            ],
            "permissions": ["SPOT"],
            "permissionSets": [["SPOT"]],
        }
    ],
}


def binance_server(srv, real):
    """Binance's exchangeInfo (one market) and klines (startTime/limit paging) for real candles."""
    ms = np.asarray([int(t.timestamp() * 1000) for t in real.date])
    rows = [
        [
            int(t),
            f"{r.open:.10f}",
            f"{r.high:.10f}",
            f"{r.low:.10f}",
            f"{r.close:.10f}",
            f"{r.volume:.4f}",
            int(t) + 299_999,
            "0",
            1,
            "0",
            "0",
            "0",
        ]
        for t, r in zip(ms, real.itertuples())
    ]

    def klines(req):
        start, limit = int(req.args.get("startTime", 0)), int(req.args.get("limit", 500))
        sel = [r for r in rows if r[0] >= start][:limit]
        return Response(json.dumps(sel), 200, {"content-type": "application/json"})

    srv.expect_request("/api/v3/exchangeInfo").respond_with_json(BINANCE_INFO)
    srv.expect_request("/api/v3/klines").respond_with_handler(klines)
    srv.expect_request("/api/v3/ticker/24hr").respond_with_json(
        {
            "symbol": "BONKUSDT",
            "lastPrice": "0.00003512",
            "closeTime": int(ms[-1]) + 299_999,
            "openTime": int(ms[0]),
            "highPrice": "0.00004",
            "lowPrice": "0.00003",
            "volume": "1e12",
            "quoteVolume": "3.5e7",
        }
    )
    return ms


async def test_ccxt_against_local_binance(srv, shared):
    import pandas as pd

    real = (
        pd.read_parquet(
            shared / "data/binance_memecoins/ohlcv_5m_2025-01_2025-04.parquet", filters=[("symbol", "==", "BONK/USDT")]
        )
        .sort_values("date")
        .head(250)
    )
    ms = binance_server(srv, real)
    st = load_settings(
        None,
        env={},
        overrides={"endpoints.binance": srv.url_for("").rstrip("/"), "data.rate_binance_per_min": "100000"},
    )
    c = S.Ccxt(st)
    try:
        df = await c.ohlcv("BONK/USDT", "5m", int(ms[0]) * 10**6, (int(ms[-1]) + 300_000) * 10**6, limit=100)
        tick = await c.ticker("BONK/USDT")
    finally:
        await c.close()
    assert (
        len(df) == 250
        and np.allclose(df.close.to_numpy(), real.close.to_numpy(), rtol=1e-9)
        and df.symbol.iloc[0] == "BONK/USDT"
    )
    assert [r.args["limit"] for r, _ in srv.log if r.path == "/api/v3/klines"] == ["100"] * 3
    assert tick.price == 0.00003512 and tick.source == "binance"


# ---------------------------------------------------------------- a token's deepest SOL/USDC pool (token safety)

MINT = "TrnnxPQvYkMtakCYGToFHs1uYMqumpWeE93W9fFpump"


async def test_token_pool_chain_picks_the_deepest_sol_pool(srv, fx):
    pairs = fx("dexscreener/recorded_latest_dex_pairs_solana_two_pumpfun_pairs.THIRDPARTY.json")["pairs"]
    thin = dict(pairs[1], baseToken=pairs[0]["baseToken"])  # a second, thinner pool of the same token
    other = dict(
        pairs[0],
        pairAddress="X",
        liquidity={"usd": 10**9},
        quoteToken={"address": "NotSolOrUsdc111111111111111111111111111111", "symbol": "ZZZ"},
    )
    srv.expect_request(f"/token-pairs/v1/solana/{MINT}").respond_with_json([thin, other, pairs[0]])
    src, p = await _done(S.token_pool_chain(settings_for(srv)).get(Chain.SOLANA, MINT))
    assert (
        src == "dexscreener" and p.pool.address == "AR6ocEMeRwMM3oJPKpL1B3zqGbEoW9ArQaawKAmdNwwT"
    )  # deepest paired with SOL
    assert p.liquidity_usd == 98992.13 and p.created_ns == 1724367939000 * 10**6
    assert [r.path for r, _ in srv.log] == [f"/token-pairs/v1/solana/{MINT}"]


async def test_token_pool_chain_fails_over_to_geckoterminal(srv, shared):
    srv.expect_request(f"/token-pairs/v1/solana/{MINT}").respond_with_data("upstream down", status=503)
    srv.expect_request(f"/networks/solana/tokens/{MINT}/pools").respond_with_json(
        gt_token_pools(
            shared,
            MINT,
            [
                ("PoolUsdc", "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", "250000.5", "2024-08-22T23:05:39Z"),
                ("PoolSol", "So11111111111111111111111111111111111111112", "40000", "2024-08-23T01:00:00Z"),
            ],
        )
    )
    before = S.SOURCE_FAILOVER.labels("token_pool", "dexscreener", "error")._value.get()
    src, p = await _done(S.token_pool_chain(settings_for(srv)).get("solana", MINT))
    assert src == "geckoterminal" and p.pool.address == "PoolUsdc" and p.liquidity_usd == 250000.5
    assert (
        p.created_ns == 1724367939 * 10**9 and hits(srv, f"/token-pairs/v1/solana/{MINT}") == 4
    )  # DexScreener retried, then skipped
    assert S.SOURCE_FAILOVER.labels("token_pool", "dexscreener", "error")._value.get() == before + 1
    assert srv.log[-1][0].args["include"] == "base_token,quote_token,dex"


async def test_token_pool_chain_without_a_pool_or_sources_is_one_error(srv, fx):
    pairs = fx("dexscreener/recorded_latest_dex_pairs_solana_two_pumpfun_pairs.THIRDPARTY.json")["pairs"]
    srv.expect_request("/token-pairs/v1/solana/Unlisted").respond_with_json(
        [pairs[0]]
    )  # lists only other tokens' pools
    srv.expect_request("/networks/solana/tokens/Unlisted/pools").respond_with_data("down", status=502)
    with pytest.raises(
        S.AllSourcesFailed,
        match=r"failover:token_pool: dexscreener,geckoterminal: dexscreener: empty; geckoterminal: .*502",
    ):
        await _done(S.token_pool_chain(settings_for(srv)).get("solana", "Unlisted"))
    with pytest.raises(S.ValidationError, match="data.token_pool_sources"):
        S.token_pool_chain(load_settings(None, env={}, overrides={"data.token_pool_sources": "dexscreener,birdeye"}))
