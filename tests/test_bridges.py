"""Bridge quotes and status from the providers' recorded payloads, served on 127.0.0.1: the parsers, the clients
(through memebot's HTTP client, limiter and retry helper) and `memebot bridge quote|status` as a user runs them."""

import asyncio, json
import pytest
from pytest_httpserver import HTTPServer
from memebot.config import load_settings
from memebot.data.bridges import Across, Debridge, Lifi

LIFI_QUOTE = "lifi_v1_quote_ETH_mainnet_to_USDC_arbitrum_celercircle.PARTIAL.THIRDPARTY.json"
LIFI_STATUS = "lifi_v1_status_DONE_docs_sample.json"
ACROSS = "across_api_suggested_fees_WETH_1_to_10.THIRDPARTY.json"
DEBRIDGE = "debridge_dln_v1_order_create_tx_ARB_arbitrum_to_MATIC_polygon_docs_example.PARTIAL.json"
WETH = "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"


@pytest.fixture
def bridges(shared):
    "A local server answering as LI.FI, Across and deBridge with the recorded payloads; the first LI.FI quote is a 503."
    fx = lambda n: json.loads((shared / "fixtures/bridges" / n).read_text())
    srv = HTTPServer(host="127.0.0.1", port=0)
    srv.start()
    srv.expect_oneshot_request("/lifi/quote").respond_with_data("busy", status=503)
    srv.expect_request("/lifi/quote", query_string={"fromChain": "1", "toChain": "42161", "fromToken": "ETH",
                       "toToken": "USDC", "fromAmount": str(10**18), "fromAddress": "0x" + "0" * 39 + "1"}
                       ).respond_with_json(fx(LIFI_QUOTE))  # fmt: skip
    srv.expect_request("/lifi/status").respond_with_json(fx(LIFI_STATUS))
    srv.expect_request("/across/suggested-fees").respond_with_json(fx(ACROSS))
    srv.expect_request("/debridge/dln/order/create-tx").respond_with_json(fx(DEBRIDGE))
    url = srv.url_for("").rstrip("/")
    sets = {
        "endpoints.lifi": f"{url}/lifi",
        "endpoints.across": f"{url}/across",
        "endpoints.debridge": f"{url}/debridge",
    }
    sets |= {"data.rate_lifi_per_min": "600", "data.http_backoff_base_s": "0.001", "data.http_backoff_max_s": "0.01"}
    yield srv, sets
    srv.clear()
    srv.stop()


def test_clients_read_every_provider(bridges):
    srv, sets = bridges
    s = load_settings(env={}, overrides=sets)

    async def go():
        q = await Lifi(s).quote(1, 42161, "ETH", "USDC", 10**18, "0x" + "0" * 39 + "1")  # after one 503: retried
        st = await Lifi(s).status("0xabc")
        a = await Across(s).quote(WETH, 1, 10, 10**18)
        d = await Debridge(s).quote(
            42161, "0x912ce59144191c1204e64559fe8253a0e49e6548", 10**21, 137, "0x" + "0" * 40, "0x1"
        )
        return q, st, a, d

    q, st, a, d = asyncio.run(go())
    assert (q.tool, q.amount_out, q.seconds) == ("celercircle", 2694021249, 964.0)
    assert q.in_usd - q.out_usd + q.gas_usd == pytest.approx(q.cost_usd) and 0 < q.cost_pct < 1
    assert st.final and st.status == "DONE"
    assert a.amount_in - a.amount_out == sum(f.amount for f in a.fees) and a.cost_usd is None
    assert d.tx["to"].startswith("0x") and d.fees[-1].name == "fixFee" and not d.fees[-1].included
    log = [r.path for r, _ in srv.log]
    assert log.count("/lifi/quote") == 2  # the 503, then the answer


def test_bridge_commands(bridges, memebot):
    _, sets = bridges
    flags = [x for k, v in sets.items() for x in ("--set", f"{k}={v}")]
    r = memebot(*flags, "bridge", "quote", "--token", "ETH", "--to-token", "USDC", "--amount", str(10**18),
                "--from", "ethereum", "--to", "42161", check=True)  # fmt: skip
    assert "lifi (celercircle): chain 1 -> 42161" in r.stdout and "LIFI Fixed Fee" in r.stdout
    assert max(len(line) for line in r.stdout.splitlines()) <= 80
    j = memebot(*flags, "bridge", "quote", "--provider", "across", "--token", WETH, "--amount", str(10**18),
                "--from", "1", "--to", "10", "--json", check=True)  # fmt: skip
    doc = json.loads(j.stdout)
    assert doc["amount_out"] == 999921107770818075 and doc["fee_pct"] == pytest.approx(0.0078892229, rel=1e-6)
    st = memebot(*flags, "bridge", "status", "0xabc", "--json", check=True)
    assert json.loads(st.stdout)["final"] is True
    for args, needle in (
        (["--amount", "0"], "--amount"),
        (["--provider", "wormhole"], "--provider"),
        (["--from", "solana"], "--from"),
    ):
        base = {"--token": "ETH", "--amount": "1", "--from": "1", "--to": "10"}
        for i in range(0, len(args), 2):
            base[args[i]] = args[i + 1]
        bad = memebot(*flags, "bridge", "quote", *[x for kv in base.items() for x in kv])
        lines = bad.stderr.strip().splitlines()
        assert bad.returncode == 2 and len(lines) == 1 and needle in lines[0], bad.stderr
