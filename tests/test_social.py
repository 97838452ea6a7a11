"""Social collectors end to end: `memebot social collect|ls|features` against a local server answering with the
networks' recorded payloads (X recent search, Telegram getUpdates, Discord channel messages, Reddit listing); posts
stored once in the DuckDB store with their token mentions; cursors; rate-limit answers retried; tokens never shown."""

import json
import pytest
from pytest_httpserver import HTTPServer
from memebot.data.store import Store

MINT = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
PEPE = "0x6982508145454Ce325dDbE47a25d4ec3d2311933"
SECRETS = {"keys.x_bearer_token": "x-bearer-SECRET", "keys.telegram_bot_token": "4242:tg-SECRET",
           "keys.discord_bot_token": "discord-SECRET", "keys.reddit_token": "reddit-SECRET"}  # fmt: skip


def _fx(shared, name):
    return json.loads((shared / "fixtures/social" / name).read_text())


@pytest.fixture
def net(shared):
    srv = HTTPServer(host="127.0.0.1", port=0)
    srv.start()
    url = srv.url_for("").rstrip("/")
    flags = []
    for k in ("x", "telegram", "discord", "reddit"):
        flags += ["--set", f"endpoints.{k}={url}"]
    for k, v in SECRETS.items():
        flags += ["--set", f"{k}={v}"]
    flags += ["--set", "data.http_max_retries=2", "--set", "data.http_backoff_max_s=0.05"]
    flags += ["--set", "ai.sentiment_analysis_enabled=true"]  # VADER scores each new post
    yield srv, flags
    srv.clear()
    srv.stop()


def _x_payload(shared):
    "The recorded recent-search answer (10 tweets), three of them given memecoin texts."
    x = _fx(shared, "x_api_v2_tweets_search_recent_tweepy_cassette.THIRDPARTY.json")
    x["meta"].pop("next_token")
    texts = [f"$WIF breaking out, love it, great entry! {MINT}", "buy $WIF now", "buy $WIF now"]
    for t, text in zip(x["data"], texts):
        t["text"] = text
    return x


def test_x_collects_once_with_mentions_and_a_cursor(shared, net, memebot, cli_env):
    srv, flags = net
    x = _x_payload(shared)
    srv.expect_request("/tweets/search/recent", headers={"authorization": "Bearer x-bearer-SECRET"},
                       query_string={"query": "$WIF", "max_results": "100",
                                     "tweet.fields": "created_at,public_metrics,author_id", "expansions": "author_id",
                                     "user.fields": "username,verified"}).respond_with_json(x)  # fmt: skip
    srv.expect_request("/tweets/search/recent").respond_with_json(x)  # a later call: with since_id
    r = json.loads(
        memebot(*flags, "social", "collect", "--source", "x", "--channel", "$WIF", "--json", check=True).stdout
    )
    assert r == [{"source": "x", "channel": "$WIF", "read": 10, "new": 10}]
    again = json.loads(memebot(*flags, "social", "collect", "--source", "x", "--channel", "$WIF", "--json",
                               check=True).stdout)  # fmt: skip
    assert again[0]["new"] == 0  # the same ten posts: stored once
    sent = [dict(req.args) for req, _ in srv.log if req.path == "/tweets/search/recent"]
    assert "since_id" not in sent[0] and sent[1]["since_id"] == x["meta"]["newest_id"]
    with Store(cli_env["MEMEBOT_STORE_PATH"], read_only=True) as st:
        men = (
            st.cursor().execute("SELECT token, kind, count(*) FROM social_mentions GROUP BY ALL ORDER BY 1").fetchall()
        )
        sent_scores = dict(st.cursor().execute("SELECT text, sentiment FROM social_posts").fetchall())
    assert men == [(MINT, "solana", 1), ("WIF", "cashtag", 3)]
    assert sent_scores[texts0 := x["data"][0]["text"]] > 0.3, texts0  # VADER: bullish
    ls = memebot(*flags, "social", "ls", "--token", "wif", check=True).stdout
    assert "3 posts" in ls and max(map(len, ls.splitlines())) <= 80
    doc = json.loads(memebot("social", "ls", "--token", MINT, "--json", check=True).stdout)
    assert [d["id"] for d in doc] == [x["data"][0]["id"]]
    f = json.loads(memebot("social", "features", "--bar", "1h", "--token", "WIF", "--json", check=True).stdout)
    assert sum(b["mentions"] for b in f) == 3 and max(b["bot_share"] for b in f) > 0  # the copy-pasted pair
    text = memebot("social", "features", "--bar", "1h", check=True).stdout
    assert "WIF" in text and max(map(len, text.splitlines())) <= 80


def test_telegram_reads_from_the_next_offset_and_never_shows_its_token(shared, net, memebot):
    srv, flags = net
    up = _fx(shared, "telegram_getUpdates_channel_post_2018.THIRDPARTY.json")
    up["result"][0]["channel_post"]["text"] = "$BONK listed, CA " + MINT
    path = "/bot4242:tg-SECRET/getUpdates"
    srv.expect_ordered_request(path).respond_with_json(up)
    srv.expect_ordered_request(path, query_string={"limit": "100", "allowed_updates": '["channel_post","message"]',
                               "offset": "500676846"}).respond_with_json({"ok": True, "result": []})  # fmt: skip
    r = json.loads(memebot(*flags, "social", "collect", "--source", "telegram", "--json", check=True).stdout)
    assert r == [{"source": "telegram", "channel": "*", "read": 2, "new": 2}]
    r = json.loads(memebot(*flags, "social", "collect", "--source", "telegram", "--json", check=True).stdout)
    assert r[0]["read"] == 0
    srv.clear()
    srv.expect_request(path).respond_with_json({"ok": False, "error_code": 401, "description": "Unauthorized"}, 401)
    bad = memebot(*flags, "social", "collect", "--source", "telegram")
    assert bad.returncode != 0 and "/bot***/getUpdates" in bad.stderr and "401" in bad.stderr
    assert "tg-SECRET" not in bad.stderr + bad.stdout


def test_discord_retries_its_rate_limit_answer_then_reads_after_the_newest(shared, net, memebot):
    srv, flags = net
    msgs = [
        _fx(shared, "discord_message_object_example_crossposted.json"),
        _fx(shared, "discord_message_object_example.json"),
    ]
    ch = msgs[1]["channel_id"]
    limited = _fx(shared, "discord_429_user_rate_limit_response_body.json")  # retry_after 64.57 s in the body
    srv.expect_ordered_request(f"/channels/{ch}/messages").respond_with_json(limited, status=429)
    srv.expect_ordered_request(f"/channels/{ch}/messages", headers={"authorization": "Bot discord-SECRET"},
                               query_string={"limit": "100"}).respond_with_json(msgs)  # fmt: skip
    srv.expect_ordered_request(f"/channels/{ch}/messages", query_string={"limit": "100",
                               "after": max(m["id"] for m in msgs)}).respond_with_json([])  # fmt: skip
    r = json.loads(memebot(*flags, "social", "collect", "--source", "discord", "--channel", ch, "--json",
                           check=True).stdout)  # fmt: skip
    assert msgs[0]["id"] == msgs[1]["id"]  # the docs show one message twice (plain and crossposted)
    assert r[0]["read"] == 2 and r[0]["new"] == 1  # stored once
    r = json.loads(memebot(*flags, "social", "collect", "--source", "discord", "--channel", ch, "--json",
                           check=True).stdout)  # fmt: skip
    assert r[0]["read"] == 0
    srv.check_assertions()


def test_reddit_listing_with_its_user_agent(shared, net, memebot, cli_env):
    srv, flags = net
    lst = _fx(shared, "reddit_listing_r_golang_1_post_2018.THIRDPARTY.json")
    srv.expect_request("/r/golang/new.json", headers={"authorization": "bearer reddit-SECRET",
                       "user-agent": "python:memebot:0.1 (social collector)"}).respond_with_json(lst)  # fmt: skip
    r = json.loads(memebot(*flags, "social", "collect", "--source", "reddit", "--channel", "r/golang", "--json",
                           check=True).stdout)  # fmt: skip
    assert r == [{"source": "reddit", "channel": "r/golang", "read": 1, "new": 1}]
    with Store(cli_env["MEMEBOT_STORE_PATH"], read_only=True) as st:
        cur = st.cursor().execute("SELECT cursor FROM social_cursors WHERE source = 'reddit'").fetchone()[0]
    assert cur == "t3_8ad4v0"
    bad = memebot(*flags, "social", "collect", "--source", "reddit", "--channel", "not a sub!")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "subreddit" in bad.stderr


def test_bad_input_names_the_field_and_touches_nothing(memebot, cli_env):
    from pathlib import Path

    for args, needle in ((("--source", "myspace", "--channel", "a"), "--source"),
                         (("--source", "x", "--channel", "a"), "x_bearer_token"),
                         (("--source", "discord"), "--channel")):  # fmt: skip
        r = memebot("social", "collect", *args)
        assert r.returncode == 2 and r.stderr.startswith("error:") and needle in r.stderr, r.stderr
    assert not Path(cli_env["MEMEBOT_STORE_PATH"]).exists()
    r = memebot("social", "features", "--bar", "fortnight")
    assert r.returncode == 2 and "--bar" in r.stderr


def test_sentiment_off_by_default_and_from_a_registered_model(shared, net, memebot, cli_env, tmp_path):
    "Off ([ai] default), posts are stored unscored; on with [ai] sentiment_model, the registered model scores them."
    from memebot.models.registry import log_sentiment, promote
    from memebot.models.sentiment import VaderSentiment

    srv, flags = net
    srv.expect_request("/tweets/search/recent").respond_with_json(_x_payload(shared))
    off = [f for f in flags if f != "ai.sentiment_analysis_enabled=true"][:-1]  # the defaults: no scoring
    memebot(*off, "social", "collect", "--source", "x", "--channel", "q1", check=True)
    with Store(cli_env["MEMEBOT_STORE_PATH"], read_only=True) as st:
        assert st.cursor().execute("SELECT count(*), count(sentiment) FROM social_posts").fetchone() == (10, 0)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    vader = VaderSentiment().fit([], [])
    promote("sent-test", log_sentiment(vader, "sent-test", uri), uri)
    on = flags + ["--set", "ai.sentiment_model=sent-test", "--set", f"ai.tracking_uri={uri}"]
    x2 = _x_payload(shared)
    for t in x2["data"]:
        t["id"] = str(int(t["id"]) + 1)  # ten new posts
    srv.clear()
    srv.expect_request("/tweets/search/recent").respond_with_json(x2)
    memebot(*on, "social", "collect", "--source", "x", "--channel", "q2", check=True)
    with Store(cli_env["MEMEBOT_STORE_PATH"], read_only=True) as st:
        got = st.cursor().execute("SELECT text, sentiment FROM social_posts WHERE channel = 'q2'").fetchall()
    assert len(got) == 10 and [v for _, v in got] == pytest.approx(list(vader.score([t for t, _ in got])))
    bad = memebot(*flags, "--set", "ai.sentiment_model=nope", "--set", f"ai.tracking_uri={uri}", "social", "collect",
                  "--source", "x", "--channel", "q3")  # fmt: skip
    assert bad.returncode != 0 and "nope" in bad.stderr
