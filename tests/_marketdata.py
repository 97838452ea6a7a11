"""A token's pools as DexScreener and GeckoTerminal report them, built from the recorded payloads in
../shared/fixtures, re-pointed at a test mint, plus a local 127.0.0.1 server that serves them (with 5xx faults)."""

import json, threading
from pytest_httpserver import HTTPServer
from werkzeug import Response

DS_PAIRS = "dexscreener/recorded_latest_dex_pairs_solana_two_pumpfun_pairs.THIRDPARTY.json"
GT_POOLS = "geckoterminal/onchain_Pool.json"
SOL = "So11111111111111111111111111111111111111112"


def _fx(shared, rel):
    return json.loads((shared / "fixtures" / rel).read_text())


def ds_token_pairs(shared, mint, liquidity_usd=None, created_ms=None):
    """DexScreener's `/token-pairs/v1` answer: the recorded SOL pair with `mint` as its base (liquidity,
    age overridable)."""
    p = _fx(shared, DS_PAIRS)["pairs"][0]
    p["baseToken"] = dict(p["baseToken"], address=mint)
    if liquidity_usd is not None:
        p["liquidity"] = dict(p["liquidity"], usd=liquidity_usd)
    if created_ms is not None:
        p["pairCreatedAt"] = created_ms
    return [p]


def gt_token_pools(shared, mint, pools):
    """GeckoTerminal's `Pool` payload re-pointed at Solana: one entry per (address, quote mint, reserve_in_usd,
    pool_created_at)."""
    rec = _fx(shared, GT_POOLS)["data"][0]
    data = []
    for addr, quote, reserve, created in pools:
        p = json.loads(json.dumps(rec))
        p["id"], p["attributes"]["address"] = f"solana_{addr}", addr
        p["attributes"]["reserve_in_usd"], p["attributes"]["pool_created_at"] = reserve, created
        p["relationships"]["base_token"]["data"]["id"] = f"solana_{mint}"
        p["relationships"]["quote_token"]["data"]["id"] = f"solana_{quote}"
        p["relationships"]["dex"]["data"]["id"] = "raydium"
        data.append(p)
    return {"data": data}


class MarketServer:
    """DexScreener token pairs and GeckoTerminal token pools on 127.0.0.1; `answers[(provider, mint)]` is a payload
    or an HTTP status (a fault); unknown mints get a 404. `hits` counts requests per provider."""

    def __init__(self):
        self.answers, self.hits, self.lock = {}, {"dexscreener": 0, "geckoterminal": 0}, threading.Lock()
        self.srv = HTTPServer(host="127.0.0.1", port=0, threaded=True)
        self.srv.expect_request(
            __import__("re").compile(r"^/(token-pairs/v1/solana|networks/solana/tokens)/.*")
        ).respond_with_handler(self.handle)
        self.srv.start()

    @property
    def url(self):
        return self.srv.url_for("").rstrip("/")

    def settings(self) -> dict:
        "`[endpoints]` and a quick retry policy pointing memebot's market-data sources here."
        return {
            "endpoints.dexscreener": self.url,
            "endpoints.geckoterminal": self.url,
            "data.http_max_retries": "2",
            "data.http_backoff_base_s": "0.001",
            "data.http_backoff_max_s": "0.01",
        }

    def handle(self, req):
        parts = req.path.strip("/").split("/")
        prov, mint = ("dexscreener", parts[3]) if parts[0] == "token-pairs" else ("geckoterminal", parts[3])
        with self.lock:
            self.hits[prov] += 1
        a = self.answers.get((prov, mint), 404)
        if isinstance(a, int):
            return Response(f"HTTP {a} from the test server", a)
        return Response(json.dumps(a), 200, {"content-type": "application/json"})

    def stop(self):
        self.srv.clear()
        self.srv.stop()
