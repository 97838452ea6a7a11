"""Operations: the shipped Prometheus rules and Alertmanager routing checked by their own tools, and a real
Prometheus scraping a running paper node, firing rules that a real Alertmanager delivers to local Slack, PagerDuty
and Telegram receivers in the formats those services take."""

import json, os, shutil, signal, socket, subprocess, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx, pytest, yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
EXE = Path(sys.executable).parent / "memebot"
TOOLS = {t: shutil.which(t) for t in ("prometheus", "promtool", "prometheus-alertmanager", "amtool")}


def _need(*tools):
    missing = [t for t in tools if TOOLS[t] is None]
    if missing:
        if os.environ.get("CI") or os.environ.get("MEMEBOT_REQUIRE_SHARED") == "1":
            pytest.fail(f"{', '.join(missing)} required in CI (.ci/run installs prometheus, prometheus-alertmanager)")
        pytest.skip(f"{', '.join(missing)} not installed (apt-get install prometheus prometheus-alertmanager)")


def _run(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_prometheus_config_and_rules_pass_promtool():
    "The scrape config and rules are valid, and the rules' unit tests (firing and not firing) pass."
    _need("promtool")
    for cmd in (
        ("check", "config", "deploy/prometheus/prometheus.yml"),
        ("check", "rules", "deploy/prometheus/rules/memebot.yml"),
        ("test", "rules", "deploy/prometheus/tests/memebot_test.yml"),
    ):
        r = _run(TOOLS["promtool"], *cmd)
        assert r.returncode == 0 and "SUCCESS" in r.stdout + r.stderr, (cmd, r.stdout, r.stderr)


def test_alert_rules_read_series_memebot_exports():
    "Every memebot_ series a rule reads is one the code registers (a renamed metric would silence an alert)."
    import re

    rules = "\n".join(ln for ln in (DEPLOY / "prometheus/rules/memebot.yml").read_text().splitlines() if "#" not in ln)
    used = {re.sub(r"_(bucket|count|sum)$", "", n) for n in re.findall(r"\bmemebot_[a-z_]+", rules)}
    src = "\n".join(p.read_text() for p in (ROOT / "memebot").rglob("*.py"))
    declared = {f"memebot_{n}" for n in re.findall(r'(?:counter|gauge|histogram)\(\s*"([a-z_]+)"', src)}
    declared |= set(re.findall(r'"(memebot_[a-z_]+)"', src))  # collectors (disk)
    assert len(used) >= 10 and used <= declared, used - declared


def test_alertmanager_config_routes_by_severity():
    "amtool accepts the configuration; critical alerts reach PagerDuty, Telegram and Slack, warnings only Slack."
    _need("amtool")
    cfg = "deploy/alertmanager/alertmanager.yml"
    assert _run(TOOLS["amtool"], "check-config", cfg).returncode == 0
    for labels, want in (
        (["severity=critical", "alertname=MemebotRiskHalted"], {"pagerduty", "telegram", "slack"}),
        (["severity=warning", "alertname=MemebotFeedStale"], {"slack"}),
    ):
        r = _run(TOOLS["amtool"], "config", "routes", "test", "--config.file", cfg, *labels)
        assert r.returncode == 0 and set(r.stdout.split()[0].split(",")) == want, r.stdout


# --- a real Prometheus, a real Alertmanager, a running paper node ----------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receivers:
    "Slack incoming webhook, PagerDuty Events v2 and Telegram Bot API on 127.0.0.1, answering as those services do."

    def __init__(self):
        self.got: list[tuple[str, bytes]] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                outer.got.append((self.path, body))
                if self.path.startswith("/slack"):
                    code, ctype, out = 200, "text/plain", b"ok"
                elif self.path.startswith("/v2/enqueue"):
                    dk = json.loads(body).get("dedup_key", "")
                    out = json.dumps({"status": "success", "message": "Event processed", "dedup_key": dk}).encode()
                    code, ctype = 202, "application/json"
                else:  # Telegram sendMessage
                    msg = {"message_id": len(outer.got), "date": int(time.time()), "chat": {"id": -1001234567890}}
                    code, ctype, out = 200, "application/json", json.dumps({"ok": True, "result": msg}).encode()
                self.send_response(code)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *a):
                pass

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.srv.server_port}"
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def pagerduty(self) -> list[dict]:
        return [json.loads(b) for p, b in self.got if p.startswith("/v2/enqueue")]

    def slack(self) -> list[dict]:
        return [json.loads(b) for p, b in self.got if p.startswith("/slack")]

    def telegram(self) -> list[bytes]:
        return [b for p, b in self.got if "/sendMessage" in p]


def _wait(cond, what: str, timeout: float = 90.0, procs=()):
    "Poll `cond` until it returns something truthy; fail naming `what` (and any process that died) at the deadline."
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        for p in procs:
            assert p.poll() is None, f"{p.args[0]} exited while waiting for {what}"
        time.sleep(0.25)
    pytest.fail(f"timed out waiting for {what}")


def _stop(procs) -> None:
    "Terminate the processes still running, then wait for each (killed after 30 s)."
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()


def _query(url: str, q: str) -> list:
    try:
        return httpx.get(f"{url}/api/v1/query", params={"query": q}, timeout=5).json()["data"]["result"]
    except (httpx.HTTPError, KeyError, ValueError):
        return []


def _stack_configs(tmp: Path, node_port: int, am_port: int, rx: Receivers) -> tuple[Path, Path]:
    "The shipped rules and routing, pointed at the test's ports and receivers, with waits shortened to seconds."
    rules = yaml.safe_load((DEPLOY / "prometheus/rules/memebot.yml").read_text())
    for g in rules["groups"]:
        for r in g["rules"]:
            if "alert" in r:
                r["for"] = "0s"
    (tmp / "rules.yml").write_text(yaml.safe_dump(rules))
    prom = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(tmp / "rules.yml")],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]},
        "scrape_configs": [
            {"job_name": "memebot-node", "static_configs": [{"targets": [f"127.0.0.1:{node_port}"]}]},
        ],
    }
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(prom))
    am = yaml.safe_load((DEPLOY / "alertmanager/alertmanager.yml").read_text())
    am["route"].update(group_wait="0s", group_interval="1s", repeat_interval="1h")
    for rcv in am["receivers"]:
        for c in rcv.get("pagerduty_configs", []):
            c.pop("routing_key_file")
            c.update(routing_key="e93facc04764012d7bfb002500d5d1a6", url=f"{rx.url}/v2/enqueue")
        for c in rcv.get("slack_configs", []):
            c.pop("api_url_file")
            c["api_url"] = f"{rx.url}/slack/services/T000/B000/XXXX"
        for c in rcv.get("telegram_configs", []):
            c.update(bot_token="123456:test-token", api_url=rx.url)
    (tmp / "alertmanager.yml").write_text(yaml.safe_dump(am))
    return tmp / "prometheus.yml", tmp / "alertmanager.yml"


def test_prometheus_scrapes_node_and_alertmanager_delivers(tmp_path, cli_env):
    """A paper node serves /metrics; Prometheus scrapes it (a PromQL query returns its series); a kill halts it and
    MemebotRiskHalted reaches PagerDuty, Slack and Telegram; stopping the node fires MemebotNodeDown, and the halt
    alert is resolved on PagerDuty under the same dedup key."""
    _need("prometheus", "prometheus-alertmanager")
    rx = Receivers()
    node_port, am_port, prom_port = _free_port(), _free_port(), _free_port()
    prom_cfg, am_cfg = _stack_configs(tmp_path, node_port, am_port, rx)
    env = dict(cli_env, MEMEBOT_LIVE_HEARTBEAT_SECONDS="0.2")
    node_args = ["paper", "--strategy", "ema_cross", "--feed", "sim", "--minutes", "600", "--speed", "30"]
    log = open(tmp_path / "stack.log", "w")
    procs = []
    try:
        node = subprocess.Popen(
            [EXE, *node_args, "--no-dashboard", "--metrics-port", str(node_port)], env=env, stdout=log, stderr=log
        )
        am = subprocess.Popen(
            [
                TOOLS["prometheus-alertmanager"],
                f"--config.file={am_cfg}",
                f"--storage.path={tmp_path / 'am'}",
                f"--web.listen-address=127.0.0.1:{am_port}",
                "--cluster.listen-address=",
            ],
            stdout=log,
            stderr=log,
        )
        prom = subprocess.Popen(
            [
                TOOLS["prometheus"],
                f"--config.file={prom_cfg}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            stdout=log,
            stderr=log,
        )
        procs = [node, am, prom]
        purl = f"http://127.0.0.1:{prom_port}"

        # scraped: the node's event counter grows in Prometheus, and the node says it is ready
        first = _wait(
            lambda: _query(purl, 'memebot_node_events_total{job="memebot-node"} > 0'), "a scrape", procs=procs
        )
        run_id = first[0]["metric"]["run_id"]
        assert run_id.startswith("paper-ema_cross-")
        _wait(lambda: _query(purl, f'memebot:node_events:rate1m{{run_id="{run_id}"}} > 0'), "the recording rule")
        assert httpx.get(f"http://127.0.0.1:{node_port}/readyz").json()["status"] == "ready"

        # a kill: the node halts, the rule fires, every channel gets it
        subprocess.run([EXE, "kill", "--reason", "monitoring drill"], env=env, check=True, capture_output=True)
        _wait(lambda: _query(purl, 'ALERTS{alertname="MemebotRiskHalted", alertstate="firing"}'), "the halt alert")
        ready = httpx.get(f"http://127.0.0.1:{node_port}/readyz")
        assert ready.status_code == 503 and "monitoring drill" in ready.text

        def paged(name, action="trigger"):
            return [e for e in rx.pagerduty() if e["event_action"] == action and name in json.dumps(e)]

        pd = _wait(lambda: paged("MemebotRiskHalted"), "PagerDuty trigger", procs=procs)[0]
        assert len(pd["routing_key"]) == 32 and pd["dedup_key"]
        assert pd["payload"]["severity"] == "critical" and "halted trading" in pd["payload"]["summary"]
        assert len(pd["payload"]["summary"]) <= 1024 and pd["payload"]["source"]
        sl = _wait(lambda: [m for m in rx.slack() if "MemebotRiskHalted" in json.dumps(m)], "Slack", procs=procs)[0]
        att = sl["attachments"][0]
        assert att["title"] == "[FIRING] MemebotRiskHalted" and "halted trading" in att["text"]
        tg = _wait(lambda: [b for b in rx.telegram() if b"MemebotRiskHalted" in b], "Telegram", procs=procs)
        assert b"-1001234567890" in tg[0]

        # the node stops: the scrape fails, MemebotNodeDown fires; the halt alert resolves under its dedup key
        node.send_signal(signal.SIGTERM)
        assert node.wait(60) == 0
        down = _wait(lambda: paged("MemebotNodeDown"), "the node-down page", procs=[am, prom])[0]
        assert down["payload"]["severity"] == "critical"
        resolved = _wait(lambda: paged("MemebotRiskHalted", "resolve"), "the halt resolve", procs=[am, prom])[0]
        assert resolved["dedup_key"] == pd["dedup_key"]
        assert "MemebotNodeDown" in json.dumps([m for m in rx.slack()])
    finally:
        _stop(procs)
        log.close()


def test_prometheus_scrapes_the_api_service(tmp_path, cli_env):
    """`memebot api serve` as the shipped scrape config's `memebot-api` job: Prometheus reads its request counter and
    latency histogram (by route and status class), and the service answers /healthz and /readyz beside them."""
    import uuid
    from memebot.db import migrate, scratch_database

    _need("prometheus")
    api_port, prom_port = _free_port(), _free_port()
    prom = {
        "global": {"scrape_interval": "1s"},
        "scrape_configs": [{"job_name": "memebot-api", "static_configs": [{"targets": [f"127.0.0.1:{api_port}"]}]}],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(prom))
    with scratch_database() as url:
        migrate(url)
        env = dict(cli_env, MEMEBOT_ENTERPRISE_API_ENABLED="true", MEMEBOT_ENTERPRISE_DATABASE_URL=url,
                   MEMEBOT_ENTERPRISE_API_SECRET_KEY=uuid.uuid4().hex + uuid.uuid4().hex,
                   MEMEBOT_ENTERPRISE_REDIS_PREFIX=f"t{uuid.uuid4().hex[:10]}",
                   MEMEBOT_ENTERPRISE_JOB_WORKERS="0")  # fmt: skip
        log = open(tmp_path / "stack.log", "w")
        api = subprocess.Popen([EXE, "api", "serve", "--port", str(api_port)], env=env, stdout=subprocess.PIPE,
                               stderr=log, text=True)  # fmt: skip
        procs = [api]
        try:
            assert f"127.0.0.1:{api_port}" in api.stdout.readline()  # printed once the socket listens
            base = f"http://127.0.0.1:{api_port}"
            assert httpx.get(f"{base}/healthz").status_code == 200
            assert httpx.get(f"{base}/readyz").json()["status"] == "ready"
            assert httpx.get(f"{base}/api/v1/me").status_code == 401  # a 4xx to count
            p = subprocess.Popen([TOOLS["prometheus"], f"--config.file={tmp_path / 'prometheus.yml'}",
                                  f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                  f"--web.listen-address=127.0.0.1:{prom_port}"], stdout=log, stderr=log)  # fmt: skip
            procs.append(p)
            purl = f"http://127.0.0.1:{prom_port}"
            got = _wait(lambda: _query(purl, 'memebot_api_requests_total{job="memebot-api", code="4xx"} > 0'),
                        "the API's request counter", procs=procs)  # fmt: skip
            assert got[0]["metric"]["route"] == "me"  # the route's name: a bounded label
            assert _wait(lambda: _query(purl, 'up{job="memebot-api"} == 1'), "the API target up", procs=procs)
            assert _query(purl, 'memebot_api_request_seconds_count{job="memebot-api"} > 0')
        finally:
            _stop(procs)
            log.close()
            import redis

            r = redis.Redis.from_url("redis://127.0.0.1:6379/0")
            for k in r.scan_iter(f"{env['MEMEBOT_ENTERPRISE_REDIS_PREFIX']}:*"):
                r.delete(k)


# --- memebot's own alert sender, from the command line and from a running node ---------------------------------------
def _alert_env(cli_env, rx: Receivers, **more) -> dict:
    base = dict(
        cli_env,
        MEMEBOT_MONITORING_ALERTING_ENABLED="true",
        MEMEBOT_MONITORING_ALERT_SLACK_WEBHOOK_URL=f"{rx.url}/slack/services/T000/B000/SECRETHOOK",
        MEMEBOT_MONITORING_ALERT_PAGERDUTY_ROUTING_KEY="e93facc04764012d7bfb002500d5d1a6",
        MEMEBOT_MONITORING_ALERT_TELEGRAM_BOT_TOKEN="123456:SECRET-TOKEN",
        MEMEBOT_MONITORING_ALERT_TELEGRAM_CHAT_ID="-1001234567890",
        MEMEBOT_ENDPOINTS_PAGERDUTY=rx.url,
        MEMEBOT_ENDPOINTS_TELEGRAM=rx.url,
    )
    return {**base, **more}


def test_alerts_test_command_fires_and_resolves_on_every_channel(cli_env, memebot):
    "`memebot alerts test`: a trigger and a resolve per channel in the services' formats; `ls` shows no secret."
    rx = Receivers()
    env = _alert_env(cli_env, rx)
    r = memebot("alerts", "test", "--severity", "critical", "--json", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = json.loads(r.stdout)
    assert {(d["channel"], d["action"], d["ok"]) for d in rows} == {
        (c, a, True) for c in ("slack", "pagerduty", "telegram") for a in ("trigger", "resolve")
    }
    pd = rx.pagerduty()
    assert [e["event_action"] for e in pd] == ["trigger", "resolve"] and pd[0]["dedup_key"] == pd[1]["dedup_key"]
    assert pd[0]["payload"]["severity"] == "critical" and pd[0]["payload"]["source"] == "memebot-cli"
    assert [m["text"].split()[0] for m in rx.slack()] == ["[FIRING]", "[RESOLVED]"]
    assert all(json.loads(b)["chat_id"] == "-1001234567890" for b in rx.telegram())
    ls = memebot("alerts", "ls", env=env)
    assert ls.returncode == 0 and "SECRET" not in ls.stdout + ls.stderr and "yes" in ls.stdout


def test_alerts_test_reports_a_channel_that_is_down(cli_env, memebot):
    "A receiver that does not answer: exit 1, the channel marked FAILED, the others delivered, no secret printed."
    rx = Receivers()
    env = _alert_env(cli_env, rx, MEMEBOT_ENDPOINTS_TELEGRAM=f"http://127.0.0.1:{_free_port()}")
    r = memebot("alerts", "test", env=env)
    out = r.stdout + r.stderr
    assert r.returncode == 1 and "FAILED" in out and "SECRET" not in out, out
    assert len(rx.pagerduty()) == 2 and len(rx.slack()) == 2 and not rx.telegram()
    off = memebot("alerts", "test", env=dict(env, MEMEBOT_MONITORING_ALERTING_ENABLED="false"))
    assert off.returncode != 0 and "alerting is off" in off.stderr and "Traceback" not in off.stderr


def test_paper_node_alerts_on_kill_without_alertmanager(tmp_path, cli_env):
    "A paper node with alerting on: a kill sends RiskHalted to Slack once, while the node keeps running."
    rx = Receivers()
    env = _alert_env(cli_env, rx, MEMEBOT_LIVE_HEARTBEAT_SECONDS="0.2")
    node_port = _free_port()
    args = ["paper", "--strategy", "ema_cross", "--feed", "sim", "--minutes", "600", "--speed", "30", "--no-dashboard"]
    log = open(tmp_path / "node.log", "w")
    node = subprocess.Popen([EXE, *args, "--metrics-port", str(node_port)], env=env, stdout=log, stderr=log)
    try:
        _wait(lambda: _query_ready(node_port), "the node", procs=[node])
        subprocess.run([EXE, "kill", "--reason", "alert drill"], env=env, check=True, capture_output=True)
        msgs = _wait(lambda: [m for m in rx.slack() if "RiskHalted" in m["text"]], "the Slack alert", procs=[node])
        assert "alert drill" in msgs[0]["text"] and msgs[0]["text"].startswith("[FIRING] critical RiskHalted")
        _wait(lambda: [e for e in rx.pagerduty() if "RiskHalted" in e["dedup_key"]], "the page", procs=[node])
        node.send_signal(signal.SIGTERM)
        assert node.wait(60) == 0
        assert len([m for m in rx.slack() if m["text"].startswith("[FIRING] critical RiskHalted")]) == 1
    finally:
        if node.poll() is None:
            node.kill()
        log.close()


def _query_ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).json()["status"] == "ready"
    except (httpx.HTTPError, ValueError, KeyError):
        return False
